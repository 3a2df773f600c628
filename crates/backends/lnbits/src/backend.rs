//! [`LnbitsBackend`]: the HTTP calls and the port implementations.

use std::fmt;
use std::time::{Duration, Instant};

use l402::{
    BackendError, CreatedInvoice, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest,
    InvoiceState, Paid, PayRequest, PaymentHash, PaymentState,
};
use l402_backend_http::{Secret, reqwest, transport_error};
use reqwest::StatusCode;
use url::Url;

use crate::errors::{self, Op};
use crate::wire::{self, PayOutcome};
use crate::{NAME, uri};

/// How often a pending payment is looked up while `pay` waits for it.
const PENDING_POLL: Duration = Duration::from_millis(500);

/// One LNbits wallet, reached over its REST API with one of its keys.
///
/// With the wallet's **invoice key** it issues invoices and looks up invoices and payments; with
/// its **admin key** it can also pay. See the [crate docs](crate) for the URI form and the calls.
#[derive(Clone)]
pub struct LnbitsBackend {
    http: reqwest::Client,
    base: Url,
    key: Secret,
}

impl fmt::Debug for LnbitsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LnbitsBackend")
            .field("base", &self.base.as_str())
            .field("key", &self.key)
            .finish()
    }
}

/// What `GET /api/v1/payments/<hash>` found.
enum Found {
    /// An answer (with `details` when the key is valid).
    Answer(wire::Lookup),
    /// `404 Payment does not exist.`: no record for this key's wallet, **or** a key LNbits does
    /// not know (the lookup then searches every wallet): [`LnbitsBackend::check_key`] tells.
    Nothing,
}

impl LnbitsBackend {
    /// A backend for the wallet whose key is in the URI (no request is made yet):
    ///
    /// * `lnbits://<key>@host[:port][/prefix]`: plain HTTP, port 5000 (LNbits' default) unless
    ///   given;
    /// * `lnbits+https://<key>@host[:port][/prefix]`: HTTPS, port 443 unless given.
    ///
    /// `/prefix` is where a reverse proxy serves LNbits (`/lnbits` for
    /// `https://host/lnbits/api/v1/...`). Query parameters: `timeout`, `connect_timeout` (e.g.
    /// `5s`, `250ms`), and for HTTPS `cacert=<CA PEM>` or `cert=<pinned PEM>`; any other is an
    /// error. The key never appears in `Debug` output or errors.
    pub fn from_uri(uri: &str) -> Result<Self, BackendError> {
        let endpoint = uri::parse(uri)?;
        Ok(LnbitsBackend {
            http: l402_backend_http::client(NAME, &endpoint.options)?,
            base: endpoint.base,
            key: endpoint.key,
        })
    }

    fn url(&self, tail: &str) -> Url {
        self.base
            .join(tail)
            .expect("API paths are valid relative URLs")
    }

    /// Sends a request with the key; returns the status and the body.
    async fn send(
        &self,
        call: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, String), BackendError> {
        let resp = req
            .header("X-Api-Key", self.key.expose())
            .send()
            .await
            .map_err(|e| transport_error(NAME, call, e))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| transport_error(NAME, call, e))?;
        Ok((status, body))
    }

    async fn lookup(&self, call: &'static str, hash: &PaymentHash) -> Result<Found, BackendError> {
        let (status, body) = self
            .send(
                call,
                self.http.get(self.url(&format!("api/v1/payments/{hash}"))),
            )
            .await?;
        if status.is_success() {
            return wire::parse(call, &body).map(Found::Answer);
        }
        let e = errors::error_for(Op::Read, call, status, &body);
        if e.kind() == ErrorKind::NotFound {
            Ok(Found::Nothing)
        } else {
            Err(e)
        }
    }

    /// Proves the key with `GET /api/v1/wallet` (LNbits answers `404 Wallet not found.` for a
    /// key it does not know).
    async fn check_key(&self, call: &'static str) -> Result<(), BackendError> {
        let (status, body) = self
            .send(call, self.http.get(self.url("api/v1/wallet")))
            .await?;
        if status.is_success() {
            return wire::parse::<wire::Wallet>(call, &body).map(drop);
        }
        Err(errors::error_for(Op::Read, call, status, &body))
    }

    /// Waits for a pending payment until `deadline`.
    async fn await_pending(
        &self,
        call: &'static str,
        hash: &PaymentHash,
        deadline: Instant,
    ) -> Result<Paid, BackendError> {
        loop {
            if Instant::now() + PENDING_POLL > deadline {
                return Err(BackendError::new(
                    ErrorKind::Timeout,
                    NAME,
                    call,
                    "the payment is still in flight; look it up by its payment hash later \
                     (paying again will not pay twice)",
                ));
            }
            tokio::time::sleep(PENDING_POLL).await;
            if let Found::Answer(l) = self.lookup(call, hash).await? {
                match wire::payment_state(call, &l, hash)? {
                    PaymentState::Succeeded(paid) => return Ok(paid),
                    PaymentState::Failed { reason } => {
                        return Err(BackendError::new(
                            ErrorKind::PaymentFailed,
                            NAME,
                            call,
                            reason,
                        ));
                    }
                    PaymentState::InFlight | PaymentState::NotFound => {}
                }
            }
        }
    }
}

// === impl InvoiceIssuer ===

impl InvoiceIssuer for LnbitsBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "create invoice";
        let sats = wire::whole_sats(request.amount)
            .map_err(|e| BackendError::new(ErrorKind::InvalidRequest, NAME, CALL, e))?;
        let body = wire::CreateInvoice {
            out: false,
            amount: sats,
            unit: "sat",
            memo: &request.memo,
            expiry: wire::expiry_secs(request.expiry),
        };
        let (status, text) = self
            .send(
                CALL,
                self.http.post(self.url("api/v1/payments")).json(&body),
            )
            .await?;
        if !status.is_success() {
            return Err(errors::error_for(Op::Create, CALL, status, &text));
        }
        let record: wire::Record = wire::parse(CALL, &text)?;
        let (bolt11, payment_hash) = wire::created_invoice(CALL, &record, request.amount)?;
        Ok(CreatedInvoice {
            bolt11,
            payment_hash,
        })
    }

    async fn invoice_state(
        &self,
        payment_hash: &PaymentHash,
    ) -> Result<InvoiceState, BackendError> {
        const CALL: &str = "invoice state";
        match self.lookup(CALL, payment_hash).await? {
            Found::Answer(l) => wire::invoice_state(CALL, &l, wire::now()),
            Found::Nothing => {
                self.check_key(CALL).await?;
                Err(BackendError::new(
                    ErrorKind::NotFound,
                    NAME,
                    CALL,
                    format!("this wallet has no invoice with payment hash {payment_hash}"),
                ))
            }
        }
    }
}

// === impl InvoicePayer ===

impl InvoicePayer for LnbitsBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn pay(&self, request: PayRequest) -> Result<Paid, BackendError> {
        const CALL: &str = "pay";
        let started = Instant::now();
        let invalid =
            |detail: String| BackendError::new(ErrorKind::InvalidRequest, NAME, CALL, detail);
        let invoice = wire::decode_invoice(&request.bolt11).map_err(invalid)?;
        if invoice.amount.is_none() {
            return Err(invalid("amountless invoices are not supported".into()));
        }
        // LNbits pays an expired invoice of its own as long as nobody has looked it up since it
        // expired (backends.md §5.3), so the payer checks itself.
        if invoice.is_expired_at(wire::now()) {
            return Err(BackendError::new(
                ErrorKind::InvoiceExpired,
                NAME,
                CALL,
                "the invoice has expired; nothing was paid",
            ));
        }
        let hash = invoice.payment_hash;
        let body = wire::Pay {
            out: true,
            bolt11: request.bolt11.trim(),
        };
        let (status, text) = self
            .send(
                CALL,
                self.http
                    .post(self.url("api/v1/payments"))
                    .json(&body)
                    .timeout(request.timeout),
            )
            .await?;
        if !status.is_success() {
            let e = errors::error_for(Op::Pay, CALL, status, &text);
            if e.kind() == ErrorKind::AlreadyPaid {
                // LNbits refuses a second payment of the same hash; if the first one was ours,
                // return its result.
                if let Ok(Found::Answer(l)) = self.lookup(CALL, &hash).await
                    && let Ok(PaymentState::Succeeded(paid)) = wire::payment_state(CALL, &l, &hash)
                {
                    return Ok(paid);
                }
            }
            return Err(e);
        }
        let record: wire::Record = wire::parse(CALL, &text)?;
        let paid = match wire::pay_outcome(CALL, &record, &hash, wire::now())? {
            PayOutcome::Paid(paid) => paid,
            PayOutcome::Refused(e) => return Err(e),
            PayOutcome::Pending => {
                self.await_pending(CALL, &hash, started + request.timeout)
                    .await?
            }
        };
        if paid.fee > request.max_fee {
            // LNbits takes no fee limit per payment (its own fee reserve caps the routing fee).
            tracing::warn!(
                fee_msat = paid.fee.as_u64(),
                max_fee_msat = request.max_fee.as_u64(),
                %hash,
                "LNbits paid a routing fee above the requested limit"
            );
        }
        Ok(paid)
    }

    async fn payment(&self, payment_hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        const CALL: &str = "payment lookup";
        match self.lookup(CALL, payment_hash).await? {
            Found::Answer(l) => wire::payment_state(CALL, &l, payment_hash),
            Found::Nothing => {
                self.check_key(CALL).await?;
                Ok(PaymentState::NotFound)
            }
        }
    }
}
