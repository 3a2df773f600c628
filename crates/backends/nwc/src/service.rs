//! The wallet side: [`NwcWalletService`] serves any backend that implements our ports to one
//! NIP-47 client over a relay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l402::{
    BackendError, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, InvoiceState, Msat,
    PayRequest, PaymentHash, PaymentState,
};
use l402_backend_http::{TlsTrust, config_error};
use lightning_invoice::Bolt11Invoice;
use nostr::event::{Event, EventBuilder, FinalizeEvent, Kind, Tag};
use nostr::filter::Filter;
use nostr::key::{Keys, SecretKey};
use serde::de::DeserializeOwned;
use tokio::sync::{oneshot, watch};
use url::Url;

use crate::NAME;
use crate::relay::{Notice, Relay};
use crate::wire::{
    self, ENCRYPTION_TAG, Encryption, ErrorCode, GET_INFO, InfoResult, LOOKUP_INVOICE,
    LookupInvoice, MAKE_INVOICE, MakeInvoice, PAY_INVOICE, PayInvoice, PayResult, Request,
    Response, Transaction,
};

/// The methods the service answers, as announced in its info event.
const METHODS: [&str; 4] = [MAKE_INVOICE, LOOKUP_INVOICE, PAY_INVOICE, GET_INFO];

/// How many request ids the service remembers to drop duplicates (a relay may deliver an event
/// twice, e.g. after a reconnect).
const SEEN_CAPACITY: usize = 4096;

/// How long the service waits for the relay when connecting or publishing.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// The two key pairs of a wallet service connection.
///
/// The wallet key signs the service's events; the client secret is what the connection string
/// hands to the one authorised client. NIP-47 advises a wallet service not to keep client
/// secrets; this one keeps it only to print [`NwcWalletService::connection_uri`] (it is a dev
/// tool). Neither secret appears in `Debug`.
#[derive(Clone)]
pub struct ServiceKeys {
    wallet: Keys,
    client: Keys,
}

impl ServiceKeys {
    /// Fresh random keys.
    pub fn generate() -> Self {
        ServiceKeys {
            wallet: Keys::generate(),
            client: Keys::generate(),
        }
    }

    /// Fixed keys, as 32-byte secret keys in hex (so a connection string stays valid across
    /// restarts).
    pub fn from_hex(wallet_secret: &str, client_secret: &str) -> Result<Self, BackendError> {
        let key = |s: &str, what: &str| {
            SecretKey::from_hex(s.trim()).map(Keys::new).map_err(|_| {
                config_error(
                    NAME,
                    &format!("the {what} secret must be 32 bytes of hex (its value is not shown)"),
                )
            })
        };
        Ok(ServiceKeys {
            wallet: key(wallet_secret, "wallet")?,
            client: key(client_secret, "client")?,
        })
    }

    /// The wallet service's public key (hex): the host part of the connection string.
    pub fn wallet_pubkey(&self) -> String {
        self.wallet.public_key().to_hex()
    }

    /// The authorised client's public key (hex).
    pub fn client_pubkey(&self) -> String {
        self.client.public_key().to_hex()
    }
}

impl std::fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKeys")
            .field("wallet", &self.wallet_pubkey())
            .field("client", &self.client_pubkey())
            .finish_non_exhaustive()
    }
}

/// How the wallet service behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceOptions {
    /// The encryption schemes it accepts, announced in this order in the info event's
    /// `encryption` tag. A request in another scheme is answered `UNSUPPORTED_ENCRYPTION`.
    /// Default: NIP-44 v2 and NIP-04.
    pub encryptions: Vec<Encryption>,
    /// The routing-fee budget for `pay_invoice` (NIP-47 has no fee parameter): a fixed part…
    pub max_fee_base: Msat,
    /// …plus this many parts per million of the amount. Default: 10 sat + 1 %.
    pub max_fee_ppm: u64,
    /// How long a payment may take before the backend reports a timeout. Default: 60 s.
    pub pay_timeout: Duration,
    /// The `alias` of `get_info`.
    pub alias: String,
    /// The `network` of `get_info` (`mainnet`, `testnet`, `signet`, `regtest`), if known.
    pub network: Option<String>,
    /// Whether `pay_invoice` and payment lookups reveal the preimage (default `true`). Turn it
    /// off only to test how clients cope with the wallets that withhold it.
    pub reveal_preimages: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            encryptions: vec![Encryption::Nip44V2, Encryption::Nip04],
            max_fee_base: Msat::from_sat(10),
            max_fee_ppm: 10_000,
            pay_timeout: Duration::from_secs(60),
            alias: "l402 NWC wallet service".to_owned(),
            network: None,
            reveal_preimages: true,
        }
    }
}

/// A NIP-47 wallet service in front of any backend `B` implementing [`InvoiceIssuer`] and
/// [`InvoicePayer`] (the dev node's wallets, LND, …).
///
/// It connects to one relay, publishes its info event (kind 13194: methods `make_invoice
/// lookup_invoice pay_invoice get_info`, the `encryption` tag), and answers requests (kind
/// 23194) from the one client whose key is in [`connection_uri`](Self::connection_uri).
///
/// * A request from any other key is answered `UNAUTHORIZED` at once (not ignored), so a client
///   with a wrong secret fails fast with a permanent error instead of waiting for its timeout.
/// * It answers in the scheme the request used; a scheme not in
///   [`ServiceOptions::encryptions`] gets `UNSUPPORTED_ENCRYPTION`.
/// * Requests past their `expiration` tag are ignored, duplicates are dropped.
/// * `lookup_invoice` first asks the backend about an invoice it issued, then about a payment it
///   made, so one connection serves both the issuing and the paying side.
/// * A lost relay connection is re-established with backoff (0.25 s doubling to 30 s).
///
/// Run it with [`run`](Self::run) (until a shutdown future resolves) or [`spawn`](Self::spawn)
/// (a task and a handle). Cheap to clone.
pub struct NwcWalletService<B> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for NwcWalletService<B> {
    fn clone(&self) -> Self {
        NwcWalletService {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<B> {
    relay: Url,
    relay_text: String,
    tls: Arc<rustls::ClientConfig>,
    backend: B,
    keys: ServiceKeys,
    options: ServiceOptions,
    /// What the service knows about invoices it made (the ports only report their state).
    invoices: Mutex<HashMap<PaymentHash, Made>>,
    seen: Mutex<Seen>,
    ready: watch::Sender<bool>,
}

/// What the service remembers of an invoice (all unknown for invoices it did not make).
#[derive(Clone, Default)]
struct Made {
    bolt11: Option<String>,
    amount: Option<u64>,
    description: Option<String>,
    created_at: Option<u64>,
    expires_at: Option<u64>,
    /// When the service first saw it settled.
    settled_at: Option<u64>,
}

#[derive(Default)]
struct Seen {
    order: VecDeque<nostr::event::EventId>,
    set: HashSet<nostr::event::EventId>,
}

impl Seen {
    /// Whether `id` is new (and remembers it).
    fn insert(&mut self, id: nostr::event::EventId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// A running wallet service task (see [`NwcWalletService::spawn`]). Dropping the handle stops
/// the service too.
pub struct ServiceHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    ready: watch::Receiver<bool>,
    uri: String,
}

impl std::fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceHandle")
            .field("ready", &*self.ready.borrow())
            .finish_non_exhaustive()
    }
}

impl ServiceHandle {
    /// Waits until the service is connected, has published its info event and listens for
    /// requests. Fails with `Timeout` after `limit`.
    pub async fn ready(&self, limit: Duration) -> Result<(), BackendError> {
        wait_ready(self.ready.clone(), limit).await
    }

    /// The connection string for the client (contains the client secret).
    pub fn connection_uri(&self) -> &str {
        &self.uri
    }

    /// Stops the service and waits for its task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServiceHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn wait_ready(mut ready: watch::Receiver<bool>, limit: Duration) -> Result<(), BackendError> {
    match tokio::time::timeout(limit, ready.wait_for(|r| *r)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(BackendError::new(
            ErrorKind::Unavailable,
            NAME,
            "serve",
            "the wallet service has stopped",
        )),
        Err(_) => Err(BackendError::new(
            ErrorKind::Timeout,
            NAME,
            "serve",
            format!("the wallet service was not ready within {limit:?}"),
        )),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// === impl NwcWalletService ===

impl<B> NwcWalletService<B>
where
    B: InvoiceIssuer + InvoicePayer + 'static,
{
    /// A service for `backend` on the relay at `relay` (`ws://` or `wss://`), with fixed `keys`
    /// or fresh random ones. Nothing connects until it runs.
    pub fn new(relay: &str, backend: B, keys: Option<ServiceKeys>) -> Result<Self, BackendError> {
        let url = crate::uri::relay_url(relay)?;
        let tls =
            crate::relay::tls_config(&TlsTrust::WebPki).map_err(|e| config_error(NAME, &e))?;
        let (ready, _) = watch::channel(false);
        Ok(NwcWalletService {
            shared: Arc::new(Shared {
                relay: url,
                relay_text: relay.trim().to_owned(),
                tls: Arc::new(tls),
                backend,
                keys: keys.unwrap_or_else(ServiceKeys::generate),
                options: ServiceOptions::default(),
                invoices: Mutex::new(HashMap::new()),
                seen: Mutex::new(Seen::default()),
                ready,
            }),
        })
    }

    /// Replaces the options. Call before running.
    pub fn with_options(self, options: ServiceOptions) -> Result<Self, BackendError> {
        if options.encryptions.is_empty() {
            return Err(config_error(
                NAME,
                "the wallet service needs at least one encryption scheme",
            ));
        }
        self.rebuild(|s| s.options = options)
    }

    /// Trusts the relay's certificate as `trust` says (default: the web PKI). Call before
    /// running.
    pub fn with_tls(self, trust: &TlsTrust) -> Result<Self, BackendError> {
        let tls = crate::relay::tls_config(trust).map_err(|e| config_error(NAME, &e))?;
        self.rebuild(|s| s.tls = Arc::new(tls))
    }

    fn rebuild(self, change: impl FnOnce(&mut Shared<B>)) -> Result<Self, BackendError> {
        let mut shared = Arc::try_unwrap(self.shared).map_err(|_| {
            config_error(
                NAME,
                "configure the wallet service before cloning or running it",
            )
        })?;
        change(&mut shared);
        Ok(NwcWalletService {
            shared: Arc::new(shared),
        })
    }

    /// The connection string for the authorised client:
    /// `nostr+walletconnect://<wallet pubkey>?relay=<relay>&secret=<client secret>`.
    /// It contains a secret: hand it to the client only.
    pub fn connection_uri(&self) -> String {
        let s = &self.shared;
        crate::uri::format(
            &s.keys.wallet.public_key(),
            &s.relay_text,
            s.keys.client.secret_key(),
        )
    }

    /// The service's keys (their `Debug` shows public keys only).
    pub fn keys(&self) -> &ServiceKeys {
        &self.shared.keys
    }

    /// The backend being served.
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }

    /// Waits until the service is connected, announced and listening; `Timeout` after `limit`.
    pub async fn ready(&self, limit: Duration) -> Result<(), BackendError> {
        wait_ready(self.shared.ready.subscribe(), limit).await
    }

    /// Runs on the current tokio runtime until the handle is shut down or dropped.
    pub fn spawn(&self) -> ServiceHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let me = self.clone();
        let task = tokio::spawn(async move {
            me.run(async {
                let _ = stopped.await;
            })
            .await;
        });
        ServiceHandle {
            stop: Some(stop),
            task: Some(task),
            ready: self.shared.ready.subscribe(),
            uri: self.connection_uri(),
        }
    }

    /// Serves until `shutdown` resolves, reconnecting to the relay whenever the connection is
    /// lost.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let initial = Duration::from_millis(250);
        let mut backoff = initial;
        loop {
            let started = tokio::time::Instant::now();
            tokio::select! {
                _ = &mut shutdown => break,
                reason = self.session() => {
                    tracing::warn!(relay = %self.shared.relay, %reason, "NWC wallet service disconnected; reconnecting");
                }
            }
            self.shared.ready.send_replace(false);
            if started.elapsed() > Duration::from_secs(60) {
                backoff = initial;
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        self.shared.ready.send_replace(false);
    }

    /// One connection's life: connect, listen, announce, answer. Returns why it ended.
    async fn session(&self) -> String {
        let shared = &self.shared;
        let relay = match tokio::time::timeout(
            RELAY_TIMEOUT,
            Relay::connect(&shared.relay, shared.tls.clone()),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err((_, detail))) => return detail,
            Err(_) => return format!("relay {}: no WebSocket handshake in time", shared.relay),
        };
        // Listen before announcing, so no request sent in between is missed. No `since`: the
        // relay matches live events against it, and client clocks differ.
        let filter = Filter::new()
            .kind(Kind::WalletConnectRequest)
            .pubkey(shared.keys.wallet.public_key());
        let Some(mut requests) = relay.subscribe(filter) else {
            return "connection lost".to_owned();
        };
        let mut announced = false;
        loop {
            match requests.next().await {
                Some(Notice::Eose) if !announced => {
                    announced = true;
                    let info = match self.info_event() {
                        Ok(e) => e,
                        Err(e) => return format!("cannot sign the info event: {e}"),
                    };
                    match tokio::time::timeout(RELAY_TIMEOUT, relay.publish(info)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            return format!("the relay did not take the info event: {e:?}");
                        }
                        Err(_) => return "the relay did not acknowledge the info event".to_owned(),
                    }
                    tracing::info!(relay = %shared.relay, wallet = %shared.keys.wallet_pubkey(), "NWC wallet service ready");
                    shared.ready.send_replace(true);
                }
                Some(Notice::Eose) => {}
                Some(Notice::Event(event)) => {
                    let me = self.clone();
                    let relay = relay.clone();
                    tokio::spawn(async move {
                        if let Some(answer) = me.respond(&event).await {
                            match tokio::time::timeout(RELAY_TIMEOUT, relay.publish(answer)).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => {
                                    tracing::warn!(error = ?e, "NWC response not published")
                                }
                                Err(_) => tracing::warn!("NWC response not acknowledged"),
                            }
                        }
                    });
                }
                Some(Notice::Closed(message)) => {
                    return format!("the relay closed the subscription: {message}");
                }
                None => return "connection lost".to_owned(),
            }
        }
    }

    fn info_event(&self) -> Result<Event, String> {
        let s = &self.shared;
        let schemes: Vec<&str> = s.options.encryptions.iter().map(|e| e.as_str()).collect();
        EventBuilder::new(Kind::WalletConnectInfo, METHODS.join(" "))
            .tag(Tag::custom(ENCRYPTION_TAG, [schemes.join(" ")]))
            .finalize(&s.keys.wallet)
            .map_err(|e| e.to_string())
    }

    /// The signed answer to a request event, or `None` when it must be ignored (not for us,
    /// forged, expired, a duplicate, or unreadable).
    pub(crate) async fn respond(&self, event: &Event) -> Option<Event> {
        let s = &self.shared;
        let wallet = s.keys.wallet.public_key();
        if event.kind != Kind::WalletConnectRequest
            || !event.tags.public_keys().any(|p| p == wallet)
            || event.verify().is_err()
        {
            return None;
        }
        if event
            .tags
            .expiration()
            .is_some_and(|t| t.as_secs() < now_secs())
        {
            tracing::debug!(id = %event.id, "expired NWC request ignored");
            return None;
        }
        if !s.seen.lock().expect("lock").insert(event.id) {
            return None;
        }
        let declared = wire::declared_scheme(event);
        let (scheme, plain) = match wire::decrypt(
            s.keys.wallet.secret_key(),
            &event.pubkey,
            &event.content,
        ) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(id = %event.id, error = %e, "undecryptable NWC request ignored");
                return None;
            }
        };
        let request: Request = match serde_json::from_str(&plain) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(id = %event.id, error = %e, "malformed NWC request ignored");
                return None;
            }
        };
        let method = request.method.as_str();
        let response = if event.pubkey != s.keys.client.public_key() {
            tracing::debug!(client = %event.pubkey.to_hex(), %method, "NWC request from an unknown key refused");
            Response::err(
                method,
                ErrorCode::Unauthorized,
                "this public key has no wallet connected",
            )
        } else if declared.is_err() || !s.options.encryptions.contains(&scheme) {
            let offered: Vec<&str> = s.options.encryptions.iter().map(|e| e.as_str()).collect();
            Response::err(
                method,
                ErrorCode::UnsupportedEncryption,
                format!(
                    "this wallet speaks {}, not {}",
                    offered.join(" "),
                    declared.err().unwrap_or_else(|| scheme.as_str().to_owned())
                ),
            )
        } else {
            tracing::debug!(%method, "NWC request");
            self.dispatch(request).await
        };
        let plain = serde_json::to_string(&response).expect("responses serialise");
        let content =
            wire::encrypt(scheme, s.keys.wallet.secret_key(), &event.pubkey, &plain).ok()?;
        EventBuilder::new(Kind::WalletConnectResponse, content)
            .tag(Tag::public_key(event.pubkey))
            .tag(Tag::event(event.id))
            .tag_maybe(
                (scheme == Encryption::Nip44V2)
                    .then(|| Tag::custom(ENCRYPTION_TAG, [scheme.as_str()])),
            )
            .finalize(&s.keys.wallet)
            .ok()
    }

    async fn dispatch(&self, request: Request) -> Response {
        let method = request.method.as_str();
        let outcome = match method {
            MAKE_INVOICE => match params(request.params) {
                Ok(p) => self.make_invoice(p).await,
                Err(r) => Err(r),
            },
            LOOKUP_INVOICE => match params(request.params) {
                Ok(p) => self.lookup_invoice(p).await,
                Err(r) => Err(r),
            },
            PAY_INVOICE => match params(request.params) {
                Ok(p) => self.pay_invoice(p).await,
                Err(r) => Err(r),
            },
            GET_INFO => Ok(serde_json::to_value(InfoResult {
                alias: Some(self.shared.options.alias.clone()),
                network: self.shared.options.network.clone(),
                methods: METHODS.iter().map(|m| (*m).to_owned()).collect(),
                notifications: Vec::new(),
            })
            .expect("serialises")),
            other => Err((
                ErrorCode::NotImplemented,
                format!("method {other:?} is not supported"),
            )),
        };
        match outcome {
            Ok(result) => Response::ok(method, result),
            Err((code, message)) => Response::err(method, code, message),
        }
    }

    async fn make_invoice(&self, p: MakeInvoice) -> Outcome {
        if p.description_hash.is_some() && p.description.is_none() {
            return Err((
                ErrorCode::NotImplemented,
                "description_hash is not supported".to_owned(),
            ));
        }
        let expiry = Duration::from_secs(p.expiry.filter(|e| *e > 0).unwrap_or(3600));
        let description = p.description.unwrap_or_default();
        let request = InvoiceRequest::new(Msat::new(p.amount), description.clone()).expiry(expiry);
        let created = self
            .shared
            .backend
            .create_invoice(request)
            .await
            .map_err(backend_error)?;
        let now = now_secs();
        let made = Made {
            bolt11: Some(created.bolt11.clone()),
            amount: Some(p.amount),
            description: Some(description),
            created_at: Some(now),
            expires_at: Some(now + expiry.as_secs()),
            settled_at: None,
        };
        let tx = incoming(&created.payment_hash, &made, "pending");
        self.remember(created.payment_hash, made);
        Ok(serde_json::to_value(tx).expect("serialises"))
    }

    fn remember(&self, hash: PaymentHash, made: Made) {
        let mut invoices = self.shared.invoices.lock().expect("lock");
        if invoices.len() >= 10_000 {
            // Forget invoices that expired a day ago; their state still comes from the backend.
            let cutoff = now_secs().saturating_sub(86_400);
            invoices.retain(|_, m| m.expires_at.is_some_and(|t| t > cutoff));
        }
        invoices.insert(hash, made);
    }

    async fn lookup_invoice(&self, p: LookupInvoice) -> Outcome {
        let hash = match (&p.payment_hash, &p.invoice) {
            (Some(h), _) => PaymentHash::from_str(h.trim())
                .map_err(|e| (ErrorCode::Other, format!("payment_hash: {e}")))?,
            (None, Some(i)) => {
                let inv = Bolt11Invoice::from_str(i.trim())
                    .map_err(|e| (ErrorCode::Other, format!("invoice: {e}")))?;
                PaymentHash::from_bytes(*AsRef::<[u8; 32]>::as_ref(inv.payment_hash()))
            }
            (None, None) => {
                return Err((ErrorCode::Other, "give payment_hash or invoice".to_owned()));
            }
        };
        let backend = &self.shared.backend;
        // An invoice this wallet issued?
        match backend.invoice_state(&hash).await {
            Ok(state) => {
                let now = now_secs();
                let mut invoices = self.shared.invoices.lock().expect("lock");
                let made = invoices.entry(hash).or_insert_with(|| Made {
                    bolt11: p.invoice.clone(),
                    ..Made::default()
                });
                let state = match state {
                    InvoiceState::Open => "pending",
                    InvoiceState::Settled => {
                        made.settled_at.get_or_insert(now);
                        "settled"
                    }
                    InvoiceState::Expired => "expired",
                    InvoiceState::Cancelled => "failed",
                };
                let tx = incoming(&hash, made, state);
                return Ok(serde_json::to_value(tx).expect("serialises"));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(backend_error(e)),
        }
        // A payment this wallet made?
        let now = now_secs();
        let mut tx = Transaction {
            direction: Some("outgoing".to_owned()),
            invoice: p.invoice.clone(),
            payment_hash: Some(hash.to_hex()),
            created_at: Some(now),
            ..Transaction::default()
        };
        match backend.payment(&hash).await.map_err(backend_error)? {
            PaymentState::Succeeded(paid) => {
                tx.state = Some("settled".to_owned());
                tx.preimage = self
                    .shared
                    .options
                    .reveal_preimages
                    .then(|| paid.preimage.to_hex());
                tx.amount = Some(paid.amount.as_u64());
                tx.fees_paid = Some(paid.fee.as_u64());
                tx.settled_at = Some(now);
            }
            PaymentState::InFlight => tx.state = Some("pending".to_owned()),
            PaymentState::Failed { .. } => tx.state = Some("failed".to_owned()),
            PaymentState::NotFound => {
                return Err((
                    ErrorCode::NotFound,
                    format!("no invoice or payment with payment hash {hash}"),
                ));
            }
        }
        Ok(serde_json::to_value(tx).expect("serialises"))
    }

    async fn pay_invoice(&self, p: PayInvoice) -> Outcome {
        let invoice = Bolt11Invoice::from_str(p.invoice.trim())
            .map_err(|e| (ErrorCode::Other, format!("not a BOLT11 invoice: {e}")))?;
        let amount = invoice.amount_milli_satoshis();
        if let Some(wanted) = p.amount
            && amount != Some(wanted)
        {
            return Err((
                ErrorCode::Other,
                "paying an amount other than the invoice's is not supported".to_owned(),
            ));
        }
        let o = &self.shared.options;
        let proportional =
            (u128::from(amount.unwrap_or(0)) * u128::from(o.max_fee_ppm) / 1_000_000) as u64;
        let mut request = PayRequest::new(
            p.invoice.trim().to_owned(),
            o.max_fee_base.saturating_add(Msat::new(proportional)),
        );
        request.timeout = o.pay_timeout;
        let paid = self
            .shared
            .backend
            .pay(request)
            .await
            .map_err(backend_error)?;
        let result = PayResult {
            preimage: o.reveal_preimages.then(|| paid.preimage.to_hex()),
            fees_paid: Some(paid.fee.as_u64()),
        };
        Ok(serde_json::to_value(result).expect("serialises"))
    }
}

impl<B> std::fmt::Debug for NwcWalletService<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shared;
        f.debug_struct("NwcWalletService")
            .field("relay", &s.relay.as_str())
            .field("keys", &s.keys)
            .field("options", &s.options)
            .finish_non_exhaustive()
    }
}

type Outcome = Result<serde_json::Value, (ErrorCode, String)>;

fn params<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, (ErrorCode, String)> {
    serde_json::from_value(v).map_err(|e| (ErrorCode::Other, format!("invalid params: {e}")))
}

fn backend_error(e: BackendError) -> (ErrorCode, String) {
    (ErrorCode::for_kind(e.kind()), e.to_string())
}

fn incoming(hash: &PaymentHash, made: &Made, state: &str) -> Transaction {
    Transaction {
        direction: Some("incoming".to_owned()),
        state: Some(state.to_owned()),
        invoice: made.bolt11.clone(),
        description: made.description.clone(),
        payment_hash: Some(hash.to_hex()),
        amount: made.amount,
        fees_paid: Some(0),
        // Required by some clients; unknown for invoices made elsewhere.
        created_at: made.created_at.or(Some(now_secs())),
        expires_at: made.expires_at,
        settled_at: made.settled_at,
        ..Transaction::default()
    }
}
