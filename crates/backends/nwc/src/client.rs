//! The client side: [`NwcBackend`], an [`InvoiceIssuer`] and [`InvoicePayer`] that talks to a
//! wallet service through a relay.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l402::{
    BackendError, CreatedInvoice, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest,
    InvoiceState, Msat, Paid, PayRequest, PaymentHash, PaymentState,
};
use l402_backend_http::{config_error, protocol_error};
use lightning_invoice::Bolt11Invoice;
use nostr::event::{Event, EventBuilder, FinalizeEvent, Kind, Tag};
use nostr::filter::Filter;
use nostr::key::{Keys, PublicKey};
use nostr::types::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::NAME;
use crate::relay::{Notice, PublishError, Relay};
use crate::states::{checked_preimage, invoice_state, parse_hash, payment_state};
use crate::uri::ConnectionUri;
use crate::wire::{
    self, ENCRYPTION_TAG, Encryption, ErrorCode, LOOKUP_INVOICE, LookupInvoice, MAKE_INVOICE,
    MakeInvoice, PAY_INVOICE, PayInvoice, PayResult, Request, Response, Transaction, WalletInfo,
};

/// A Lightning wallet reached over Nostr Wallet Connect (NIP-47).
///
/// Built from the connection string a wallet hands out:
/// `nostr+walletconnect://<wallet pubkey>?relay=wss://…&secret=<hex>[&relay=…][&lud16=…]`, plus
/// our options `timeout=` (each call, default 30 s), `connect_timeout=` (each relay, default
/// 10 s), and `cacert=` / `cert=` to trust a private `wss://` relay's certificate.
///
/// The relay connection is opened on first use (the first relay that answers, in order) and
/// reused; a lost connection is reopened on the next call. Cheap to clone.
#[derive(Clone)]
pub struct NwcBackend {
    inner: Arc<Inner>,
}

struct Inner {
    wallet: PublicKey,
    keys: Keys,
    relays: Vec<Url>,
    lud16: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
    relay: tokio::sync::Mutex<Option<Relay>>,
    /// The wallet's info event, once read.
    info: Mutex<Option<WalletInfo>>,
    /// Payment hashes this process is paying right now.
    paying: Mutex<HashSet<PaymentHash>>,
}

impl std::fmt::Debug for NwcBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let relays: Vec<&str> = self.inner.relays.iter().map(Url::as_str).collect();
        f.debug_struct("NwcBackend")
            .field("wallet", &self.inner.wallet.to_hex())
            .field("relays", &relays)
            .field("lud16", &self.inner.lud16)
            .field("timeout", &self.inner.timeout)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn err(kind: ErrorKind, call: &'static str, detail: impl Into<String>) -> BackendError {
    BackendError::new(kind, NAME, call, detail)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// === impl NwcBackend ===

impl NwcBackend {
    /// Reads a `nostr+walletconnect://` connection string. No connection is made yet.
    pub fn from_uri(uri: &str) -> Result<Self, BackendError> {
        let u = ConnectionUri::parse(uri)?;
        let tls = crate::relay::tls_config(&u.tls).map_err(|e| config_error(NAME, &e))?;
        Ok(NwcBackend {
            inner: Arc::new(Inner {
                wallet: u.wallet,
                keys: u.keys,
                relays: u.relays,
                lud16: u.lud16,
                timeout: u.timeout,
                connect_timeout: u.connect_timeout,
                tls: Arc::new(tls),
                relay: tokio::sync::Mutex::new(None),
                info: Mutex::new(None),
                paying: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The wallet service's public key (hex).
    pub fn wallet_pubkey(&self) -> String {
        self.inner.wallet.to_hex()
    }

    /// This client's public key (hex), derived from the connection secret.
    pub fn client_pubkey(&self) -> String {
        self.inner.keys.public_key().to_hex()
    }

    /// The relays of the connection string, in order.
    pub fn relays(&self) -> &[Url] {
        &self.inner.relays
    }

    /// The lightning address the wallet suggested (`lud16=`), if any.
    pub fn lud16(&self) -> Option<&str> {
        self.inner.lud16.as_deref()
    }

    /// The encryption scheme requests use, negotiated from the wallet's info event (NIP-44 v2
    /// when offered, else NIP-04; NIP-04 too while no info event can be found). Connects if
    /// needed.
    pub async fn encryption(&self) -> Result<Encryption, BackendError> {
        const CALL: &str = "negotiate encryption";
        let deadline = Instant::now() + self.inner.timeout;
        let work = async {
            let relay = self.relay(CALL).await?;
            let info = self.wallet_info(&relay, CALL).await?;
            choose(info.as_ref(), CALL)
        };
        tokio::time::timeout_at(deadline, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(CALL)))
    }

    fn timed_out(&self, call: &'static str) -> BackendError {
        err(
            ErrorKind::Timeout,
            call,
            format!(
                "no answer from the wallet within {}",
                fmt_secs(self.inner.timeout)
            ),
        )
    }

    /// The open relay connection, or a new one to the first relay that answers.
    async fn relay(&self, call: &'static str) -> Result<Relay, BackendError> {
        let inner = &self.inner;
        let mut slot = inner.relay.lock().await;
        if let Some(r) = slot.as_ref().filter(|r| !r.is_closed()) {
            return Ok(r.clone());
        }
        *slot = None;
        let mut failures: Vec<(ErrorKind, String)> = Vec::new();
        for url in &inner.relays {
            let limit = inner.connect_timeout.min(inner.timeout);
            match tokio::time::timeout(limit, Relay::connect(url, inner.tls.clone())).await {
                Ok(Ok(relay)) => {
                    tracing::debug!(relay = %url, "connected to NWC relay");
                    *slot = Some(relay.clone());
                    return Ok(relay);
                }
                Ok(Err(failure)) => failures.push(failure),
                Err(_) => failures.push((
                    ErrorKind::Timeout,
                    format!(
                        "relay {url}: no WebSocket handshake within {}",
                        fmt_secs(limit)
                    ),
                )),
            }
        }
        // Timeouts win (a relay is there but slow), then plain unreachability.
        let kind = if failures.iter().any(|(k, _)| *k == ErrorKind::Timeout) {
            ErrorKind::Timeout
        } else if failures.iter().all(|(k, _)| *k == ErrorKind::Unreachable) {
            ErrorKind::Unreachable
        } else {
            failures[0].0
        };
        let detail: Vec<String> = failures.into_iter().map(|(_, d)| d).collect();
        Err(err(kind, call, detail.join("; ")))
    }

    /// The wallet's info event (kind 13194), read once and cached. `None` when the relay has
    /// none (then nothing is cached, so a wallet that appears later is still negotiated with).
    async fn wallet_info(
        &self,
        relay: &Relay,
        call: &'static str,
    ) -> Result<Option<WalletInfo>, BackendError> {
        if let Some(info) = self.inner.info.lock().expect("lock").clone() {
            return Ok(Some(info));
        }
        let wallet = self.inner.wallet;
        let filter = Filter::new()
            .kind(Kind::WalletConnectInfo)
            .author(wallet)
            .limit(1);
        let mut sub = relay.subscribe(filter).ok_or_else(|| lost(relay, call))?;
        let mut newest: Option<Box<Event>> = None;
        loop {
            match sub.next().await {
                Some(Notice::Event(e)) => {
                    if e.pubkey == wallet
                        && e.kind == Kind::WalletConnectInfo
                        && e.verify().is_ok()
                        && newest.as_ref().is_none_or(|n| e.created_at > n.created_at)
                    {
                        newest = Some(e);
                    }
                }
                Some(Notice::Eose) => break,
                Some(Notice::Closed(message)) => return Err(relay_refused(call, &message)),
                None => return Err(lost(relay, call)),
            }
        }
        let info = newest.map(|e| WalletInfo::from_event(&e));
        match &info {
            Some(i) => {
                tracing::debug!(capabilities = ?i.capabilities, encryptions = ?i.encryptions, "NWC wallet info");
                *self.inner.info.lock().expect("lock") = Some(i.clone());
            }
            None => tracing::debug!(
                wallet = %wallet.to_hex(),
                "no NWC info event on the relay; assuming NIP-04"
            ),
        }
        Ok(info)
    }

    /// Sends one request and returns its `result`, within `timeout`.
    async fn call<P: Serialize>(
        &self,
        call: &'static str,
        method: &'static str,
        params: P,
        timeout: Duration,
    ) -> Result<Value, BackendError> {
        let deadline = Instant::now() + timeout;
        let params = serde_json::to_value(params).expect("parameters serialise");
        match tokio::time::timeout_at(deadline, self.exchange(call, method, params, timeout)).await
        {
            Ok(result) => result,
            Err(_) => {
                // The connection may be half-open; open a fresh one next time (unless another
                // call is reconnecting right now).
                if let Ok(mut slot) = self.inner.relay.try_lock() {
                    *slot = None;
                }
                Err(err(
                    ErrorKind::Timeout,
                    call,
                    format!(
                        "no answer from the wallet to {method} within {}",
                        fmt_secs(timeout)
                    ),
                ))
            }
        }
    }

    async fn exchange(
        &self,
        call: &'static str,
        method: &'static str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, BackendError> {
        let inner = &self.inner;
        let relay = self.relay(call).await?;
        let info = self.wallet_info(&relay, call).await?;
        if let Some(i) = &info
            && !i.supports(method)
        {
            return Err(err(
                ErrorKind::Unsupported,
                call,
                format!(
                    "the wallet does not offer {method} (it offers: {})",
                    i.capabilities.join(" ")
                ),
            ));
        }
        let scheme = choose(info.as_ref(), call)?;
        let request = build_request(
            &inner.keys,
            &inner.wallet,
            scheme,
            &Request {
                method: method.to_owned(),
                params,
            },
            timeout,
        )
        .map_err(|e| {
            err(
                ErrorKind::Protocol,
                call,
                format!("cannot build request: {e}"),
            )
        })?;

        // Ephemeral events are not stored: subscribe to the answer before asking.
        let filter = Filter::new()
            .kind(Kind::WalletConnectResponse)
            .author(inner.wallet)
            .event(request.id)
            .pubkey(inner.keys.public_key());
        let mut sub = relay.subscribe(filter).ok_or_else(|| lost(&relay, call))?;
        let request_id = request.id;
        let mut request = Some(request);
        loop {
            match sub.next().await {
                Some(Notice::Eose) => {
                    if let Some(request) = request.take() {
                        relay
                            .publish(request)
                            .await
                            .map_err(|e| publish_error(&relay, call, e))?;
                    }
                }
                Some(Notice::Event(event)) => {
                    if let Some(result) = self.read_response(&event, request_id, method, call)? {
                        return result;
                    }
                }
                Some(Notice::Closed(message)) => return Err(relay_refused(call, &message)),
                None => return Err(lost(&relay, call)),
            }
        }
    }

    /// Reads a candidate response. `Ok(None)`: not a response to us (ignored); `Ok(Some(..))`:
    /// the wallet's answer.
    fn read_response(
        &self,
        event: &Event,
        request_id: nostr::event::EventId,
        method: &str,
        call: &'static str,
    ) -> Result<Option<Result<Value, BackendError>>, BackendError> {
        let inner = &self.inner;
        // The relay is not trusted: only the wallet's signed answer to this request counts.
        if event.pubkey != inner.wallet
            || event.kind != Kind::WalletConnectResponse
            || !event.tags.event_ids().any(|id| id == request_id)
            || event.verify().is_err()
        {
            return Ok(None);
        }
        let (_, plain) = wire::decrypt(inner.keys.secret_key(), &inner.wallet, &event.content)
            .map_err(|e| protocol_error(NAME, call, format!("cannot decrypt the answer: {e}")))?;
        let response: Response = serde_json::from_str(&plain).map_err(|e| {
            protocol_error(
                NAME,
                call,
                format!("the answer is not a NIP-47 response: {e}"),
            )
        })?;
        if let Some(error) = response.error {
            let code = ErrorCode::parse(&error.code);
            if code == ErrorCode::UnsupportedEncryption {
                // Our idea of the wallet is stale; read its info event again next time.
                *inner.info.lock().expect("lock") = None;
            }
            let kind = code.kind(method);
            let mut detail = format!("{}: {}", code.as_str(), error.message);
            if kind == ErrorKind::Unauthorized {
                detail.push_str(
                    " (the wallet does not accept this connection's key: check the secret)",
                );
            }
            return Ok(Some(Err(err(kind, call, detail))));
        }
        if response.result_type != method {
            return Err(protocol_error(
                NAME,
                call,
                format!(
                    "asked {method}, the wallet answered {:?}",
                    response.result_type
                ),
            ));
        }
        Ok(Some(Ok(response.result.unwrap_or(Value::Null))))
    }

    /// `lookup_invoice` by payment hash; `None` when the wallet answers `NOT_FOUND`.
    async fn lookup(
        &self,
        hash: &PaymentHash,
        call: &'static str,
    ) -> Result<Option<Transaction>, BackendError> {
        let params = LookupInvoice {
            payment_hash: Some(hash.to_hex()),
            invoice: None,
        };
        match self
            .call(call, LOOKUP_INVOICE, params, self.inner.timeout)
            .await
        {
            Ok(v) => parse(v, call).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn claim(&self, hash: PaymentHash) -> Result<PayGuard<'_>, BackendError> {
        let mut paying = self.inner.paying.lock().expect("lock");
        if !paying.insert(hash) {
            return Err(err(
                ErrorKind::AlreadyPaid,
                "pay",
                format!("invoice {hash} is being paid by another call right now"),
            ));
        }
        Ok(PayGuard {
            backend: self,
            hash,
        })
    }
}

struct PayGuard<'a> {
    backend: &'a NwcBackend,
    hash: PaymentHash,
}

impl Drop for PayGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.backend.inner.paying.lock() {
            p.remove(&self.hash);
        }
    }
}

// === helpers ===

fn fmt_secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn choose(info: Option<&WalletInfo>, call: &'static str) -> Result<Encryption, BackendError> {
    match info {
        // No info event: NIP-47's default for wallets that do not announce a scheme.
        None => Ok(Encryption::Nip04),
        Some(i) => i.choose().ok_or_else(|| {
            err(
                ErrorKind::Unsupported,
                call,
                format!(
                    "the wallet offers no encryption this client speaks (nip44_v2, nip04); \
                     its info event lists {:?}",
                    i.encryptions
                ),
            )
        }),
    }
}

/// A signed request event: `p` = the wallet, `expiration` = when we stop waiting, and an
/// `encryption` tag for NIP-44 (none for NIP-04, which old wallets expect).
pub(crate) fn build_request(
    keys: &Keys,
    wallet: &PublicKey,
    scheme: Encryption,
    request: &Request,
    ttl: Duration,
) -> Result<Event, String> {
    let plain = serde_json::to_string(request).map_err(|e| e.to_string())?;
    let content =
        wire::encrypt(scheme, keys.secret_key(), wallet, &plain).map_err(|e| e.to_string())?;
    let expiration = now_secs() + ttl.as_secs() + 1;
    EventBuilder::new(Kind::WalletConnectRequest, content)
        .tag(Tag::public_key(*wallet))
        .tag(Tag::expiration(Timestamp::from_secs(expiration)))
        .tag_maybe(
            (scheme == Encryption::Nip44V2).then(|| Tag::custom(ENCRYPTION_TAG, [scheme.as_str()])),
        )
        .finalize(keys)
        .map_err(|e| e.to_string())
}

fn lost(relay: &Relay, call: &'static str) -> BackendError {
    err(
        ErrorKind::Unavailable,
        call,
        format!("the connection to relay {} was lost", relay.url()),
    )
}

/// A relay's `CLOSED` or `OK false` message, by its NIP-01 prefix.
fn relay_refused(call: &'static str, message: &str) -> BackendError {
    let prefix = message.split(':').next().unwrap_or("").trim();
    let kind = match prefix {
        "auth-required" | "restricted" | "blocked" => ErrorKind::Unauthorized,
        "invalid" | "pow" | "unsupported" => ErrorKind::Protocol,
        // rate-limited, error, and anything else: try again later.
        _ => ErrorKind::Unavailable,
    };
    err(kind, call, format!("the relay refused: {message}"))
}

fn publish_error(relay: &Relay, call: &'static str, e: PublishError) -> BackendError {
    match e {
        PublishError::Lost => lost(relay, call),
        PublishError::Rejected(message) => relay_refused(call, &message),
    }
}

fn parse<T: DeserializeOwned>(v: Value, call: &'static str) -> Result<T, BackendError> {
    serde_json::from_value(v)
        .map_err(|e| protocol_error(NAME, call, format!("unexpected result: {e}")))
}

fn decode_invoice(bolt11: &str, call: &'static str) -> Result<Bolt11Invoice, BackendError> {
    Bolt11Invoice::from_str(bolt11.trim()).map_err(|e| {
        err(
            ErrorKind::InvalidRequest,
            call,
            format!("not a BOLT11 invoice: {e}"),
        )
    })
}

fn hash_of(invoice: &Bolt11Invoice) -> PaymentHash {
    PaymentHash::from_bytes(*AsRef::<[u8; 32]>::as_ref(invoice.payment_hash()))
}

// === ports ===

impl InvoiceIssuer for NwcBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "create invoice";
        if request.amount == Msat::ZERO {
            return Err(err(
                ErrorKind::InvalidRequest,
                CALL,
                "amountless invoices are not supported",
            ));
        }
        let params = MakeInvoice {
            amount: request.amount.as_u64(),
            description: Some(request.memo),
            description_hash: None,
            expiry: Some(request.expiry.as_secs().max(1)),
        };
        let v = self
            .call(CALL, MAKE_INVOICE, params, self.inner.timeout)
            .await?;
        let tx: Transaction = parse(v, CALL)?;
        let bolt11 = tx
            .invoice
            .filter(|i| !i.trim().is_empty())
            .ok_or_else(|| protocol_error(NAME, CALL, "the answer has no invoice"))?;
        let invoice = Bolt11Invoice::from_str(bolt11.trim()).map_err(|e| {
            protocol_error(
                NAME,
                CALL,
                format!("the wallet's invoice does not decode: {e}"),
            )
        })?;
        let payment_hash = hash_of(&invoice);
        if let Some(h) = &tx.payment_hash
            && parse_hash(h, CALL)? != payment_hash
        {
            return Err(protocol_error(
                NAME,
                CALL,
                "payment_hash does not match the invoice",
            ));
        }
        // The price must be exact: a wallet that rounds to whole satoshis would change it.
        let got = invoice.amount_milli_satoshis();
        if got != Some(request.amount.as_u64()) {
            return Err(err(
                ErrorKind::InvalidRequest,
                CALL,
                format!(
                    "asked for {} msat, the wallet's invoice is for {} (it may only handle whole \
                     satoshis; use whole-satoshi prices)",
                    request.amount,
                    got.map_or("no amount".to_owned(), |a| format!("{a} msat")),
                ),
            ));
        }
        Ok(CreatedInvoice {
            bolt11: bolt11.trim().to_owned(),
            payment_hash,
        })
    }

    async fn invoice_state(
        &self,
        payment_hash: &PaymentHash,
    ) -> Result<InvoiceState, BackendError> {
        const CALL: &str = "invoice state";
        let params = LookupInvoice {
            payment_hash: Some(payment_hash.to_hex()),
            invoice: None,
        };
        let v = self
            .call(CALL, LOOKUP_INVOICE, params, self.inner.timeout)
            .await?;
        let tx: Transaction = parse(v, CALL)?;
        if let Some(h) = &tx.payment_hash
            && parse_hash(h, CALL)? != *payment_hash
        {
            return Err(protocol_error(
                NAME,
                CALL,
                "the wallet answered about another payment hash",
            ));
        }
        if tx.direction.as_deref() == Some("outgoing") {
            return Err(err(
                ErrorKind::NotFound,
                CALL,
                format!("the wallet has no invoice {payment_hash}, only a payment"),
            ));
        }
        Ok(invoice_state(&tx, now_secs()))
    }
}

impl InvoicePayer for NwcBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Pays through `pay_invoice`.
    ///
    /// NIP-47 says nothing about paying an invoice twice, so before paying this asks the wallet
    /// (`lookup_invoice` by payment hash) and returns the earlier result when there is one; a
    /// payment still in flight is [`ErrorKind::AlreadyPaid`]. Calls in this process for the
    /// same hash are serialised the same way. A wallet that cannot look up payments is paid
    /// without the check.
    ///
    /// NIP-47 has no fee limit: the wallet applies its own budget, and `max_fee` is only
    /// compared afterwards (a warning is logged when the wallet spent more).
    async fn pay(&self, request: PayRequest) -> Result<Paid, BackendError> {
        const CALL: &str = "pay";
        let invoice = decode_invoice(&request.bolt11, CALL)?;
        let hash = hash_of(&invoice);
        let amount = invoice.amount_milli_satoshis().ok_or_else(|| {
            err(
                ErrorKind::InvalidRequest,
                CALL,
                "amountless invoices are not supported",
            )
        })?;
        let _guard = self.claim(hash)?;
        match self.lookup(&hash, CALL).await {
            Ok(None) => {}
            // The wallet's own invoice tells nothing about a payment: go on.
            Ok(Some(tx)) if tx.direction.as_deref() == Some("incoming") => {}
            // An earlier payment decides, including one made without a preimage (that error
            // again, rather than a second payment).
            Ok(Some(tx)) => match payment_state(&tx, &hash, CALL)? {
                PaymentState::Succeeded(earlier) => {
                    tracing::debug!(%hash, "invoice already paid by this wallet; not paying again");
                    return Ok(earlier);
                }
                PaymentState::InFlight => {
                    return Err(err(
                        ErrorKind::AlreadyPaid,
                        CALL,
                        format!("a payment of invoice {hash} is already in flight"),
                    ));
                }
                PaymentState::NotFound | PaymentState::Failed { .. } => {}
            },
            // The wallet cannot look payments up (method not offered, NOT_IMPLEMENTED).
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                tracing::debug!(%hash, error = %e, "cannot check for an earlier payment");
            }
            Err(e) => return Err(e),
        }
        if invoice.is_expired() {
            return Err(err(
                ErrorKind::InvoiceExpired,
                CALL,
                format!("invoice {hash} has expired"),
            ));
        }
        let params = PayInvoice {
            invoice: request.bolt11.trim().to_owned(),
            amount: None,
        };
        let v = self
            .call(CALL, PAY_INVOICE, params, request.timeout)
            .await?;
        let result: PayResult = parse(v, CALL)?;
        let preimage = checked_preimage(result.preimage.as_deref(), &hash, CALL)?;
        let fee = Msat::new(result.fees_paid.unwrap_or(0));
        if fee > request.max_fee {
            tracing::warn!(%hash, %fee, max_fee = %request.max_fee, "the NWC wallet paid more in fees than the limit (NIP-47 cannot pass a fee limit)");
        }
        Ok(Paid {
            preimage,
            amount: Msat::new(amount),
            fee,
        })
    }

    async fn payment(&self, payment_hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        const CALL: &str = "payment lookup";
        match self.lookup(payment_hash, CALL).await? {
            None => Ok(PaymentState::NotFound),
            Some(tx) => payment_state(&tx, payment_hash, CALL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_p_expiration_and_encryption_tags() {
        let client = Keys::generate();
        let wallet = Keys::generate();
        let req = Request {
            method: "get_info".into(),
            params: serde_json::json!({}),
        };
        for scheme in [Encryption::Nip44V2, Encryption::Nip04] {
            let before = now_secs();
            let e = build_request(
                &client,
                &wallet.public_key(),
                scheme,
                &req,
                Duration::from_secs(30),
            )
            .unwrap();
            let after = now_secs();
            e.verify().unwrap();
            assert_eq!(e.kind, Kind::WalletConnectRequest);
            assert_eq!(
                e.tags.public_keys().collect::<Vec<_>>(),
                [wallet.public_key()]
            );
            let exp = e.tags.expiration().unwrap().as_secs();
            // The timeout, and a second for the rounding down of `now`.
            assert!((before + 31..=after + 31).contains(&exp), "{exp}");
            let declared = wire::declared_scheme(&e).unwrap();
            assert_eq!(declared, scheme);
            let (got, plain) =
                wire::decrypt(wallet.secret_key(), &client.public_key(), &e.content).unwrap();
            assert_eq!(got, scheme);
            assert!(plain.contains("\"get_info\""), "{plain}");
        }
    }

    #[test]
    fn relay_refusals_map_by_prefix() {
        assert_eq!(
            relay_refused("c", "rate-limited: slow down").kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            relay_refused("c", "auth-required: log in").kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            relay_refused("c", "blocked: no").kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            relay_refused("c", "invalid: bad sig").kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            relay_refused("c", "error: db").kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = "71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c";
        let b = NwcBackend::from_uri(&format!(
            "nostr+walletconnect://{}?relay=ws://127.0.0.1:1&secret={secret}",
            Keys::generate().public_key().to_hex()
        ))
        .unwrap();
        let shown = format!("{b:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(shown.contains(&b.wallet_pubkey()), "{shown}");
    }
}
