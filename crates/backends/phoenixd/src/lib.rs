//! phoenixd (ACINQ's Phoenix server) as an l402 backend.
//!
//! [`PhoenixdBackend`] implements both ports: [`InvoiceIssuer`] (a paywall creates invoices and
//! checks them) and [`InvoicePayer`] (a client pays and looks payments up). It speaks phoenixd's
//! HTTP API (v0.5.x through v0.8.0: the calls used here did not change).
//!
//! # Backend URI
//!
//! ```text
//! phoenixd://:PASSWORD@HOST[:PORT][?timeout=30s][&connect_timeout=10s]
//! phoenixd+https://:PASSWORD@HOST[:PORT][?cacert=/path/ca.pem | &cert=/path/cert.pem]   (behind a TLS proxy)
//! ```
//!
//! * The port defaults to 9740, phoenixd's. phoenixd itself serves plain HTTP only, so
//!   `phoenixd://` is for loopback or a private network; use `phoenixd+https://` when a TLS proxy
//!   fronts it.
//! * The password goes after the colon (HTTP basic auth; phoenixd ignores the user name, and the
//!   adapter sends an empty one). It is `http-password` from `~/.phoenix/phoenix.conf` for a payer;
//!   `http-password-limited-access` is enough for a paywall (it cannot call `payinvoice`). Percent-
//!   encode characters that are special in URLs. The password never appears in `Debug` output or
//!   error messages.
//! * Unknown query parameters are an error.
//!
//! # Calls
//!
//! | port method | phoenixd call | sent | tested by |
//! |---|---|---|---|
//! | [`InvoiceIssuer::create_invoice`] | `POST /createinvoice` | form: `amountSat`, `description`, `expirySeconds`, `externalId` (`l402-<random>`) | local stand-in (conformance suite + adapter tests) |
//! | [`InvoiceIssuer::invoice_state`] | `GET /payments/incoming/{paymentHash}` | | local stand-in (v0.5 and v0.6.1+ answers) |
//! | [`InvoicePayer::pay`] | `POST /payinvoice` (then `outgoingbyhash` after a failure) | form: `invoice` | local stand-in |
//! | [`InvoicePayer::payment`] | `GET /payments/outgoingbyhash/{paymentHash}` | | local stand-in |
//! | status / reason mapping, msat rule, BOLT11 expiry, URI, redaction | — | | unit tests + local stand-in |
//!
//! No real phoenixd can run where this crate is tested; the stand-in in `tests/standin`
//! reproduces its documented behaviour: basic auth with a full and a limited password,
//! plain-text errors (401, 400, 404 `Not found` vs 404 `Unknown endpoint`), 200 for failed
//! payments with a `reason`, refusal to pay an already-paid hash, state across calls, and real
//! BOLT11 invoices.
//!
//! # Whole satoshis
//!
//! phoenixd takes invoice amounts as `amountSat`, whole satoshis. The adapter **refuses** an
//! [`InvoiceRequest`] whose amount is not a whole number of satoshis ([`ErrorKind::InvalidRequest`],
//! naming the nearest whole-sat price) rather than rounding it up: rounding would make the payer
//! pay more than the price the server committed to. Zero is refused too (phoenixd would make an
//! amountless invoice). [`Paid::amount`] is the invoice's own msat amount, read from the BOLT11
//! string; [`Paid::fee`] is phoenixd's `routingFeeSat` (truncated to whole sats by phoenixd) from
//! `pay`, and the exact msat `fees` from [`InvoicePayer::payment`].
//!
//! # Mapping and limits
//!
//! * Invoice state: `isPaid` → settled; else `isExpired` (v0.6.1+), else `expiresAt` (v0.6.1+),
//!   else the BOLT11 string's own timestamp + expiry (v0.5.x/v0.6.0) → expired; else open. An
//!   unknown hash is 404 `Not found` → [`ErrorKind::NotFound`].
//! * Paying: a failed payment is also HTTP 200, as `{"paymentHash","reason"}`; only
//!   `paymentPreimage` means success. phoenixd refuses to pay a hash it already paid ("this invoice
//!   has already been paid"); after any failure the adapter looks the hash up with
//!   `outgoingbyhash` and, if a payment succeeded, returns that first result. Known reasons map to
//!   kinds (lightning-kmp's `FinalFailure` texts: insufficient funds → `InsufficientBalance`,
//!   channel not connected / opening → `Unavailable`, …); the rest are `PaymentFailed`.
//! * Expired invoices are refused before calling phoenixd ([`ErrorKind::InvoiceExpired`]):
//!   lightning-kmp does not check expiry itself and the payee would reject the payment.
//! * **Fee limit**: phoenixd has no fee-limit parameter; it applies its own trampoline fee policy.
//!   [`PayRequest::max_fee`] cannot be enforced and is only compared afterwards (a warning is
//!   logged when the fee paid exceeded it).
//! * Timeout: `payinvoice` blocks until the payment ends; the HTTP request waits
//!   [`PayRequest::timeout`]. If that runs out the error is [`ErrorKind::Timeout`] and the payment
//!   may be in flight: ask [`InvoicePayer::payment`] (pending = no `completedAt` yet).
//! * HTTP statuses: 401 → `Unauthorized`, 400 → `InvalidRequest`, 404 `Not found` → not found,
//!   404 `Unknown endpoint`/405 → `Unsupported`, 500 and 502–504 → `Unavailable`.
//!
//! # Not verified against a live node
//!
//! Shapes come from phoenixd's source (v0.5.1, v0.6.3, v0.8.0) and lightning-kmp. Unconfirmed:
//! the exact `reason` texts phoenixd returns in every failure (it may explain a part failure
//! instead of the final one), and pending-vs-failed read from `completedAt`.
//!
//! ```
//! use l402_phoenixd::PhoenixdBackend;
//!
//! let phoenix = PhoenixdBackend::from_uri("phoenixd://:s3cret-passw0rd@127.0.0.1:9740?timeout=5s")?;
//! assert!(!format!("{phoenix:?}").contains("s3cret"), "the password is redacted");
//! assert!(PhoenixdBackend::from_uri("phoenixd://127.0.0.1:9740").is_err(), "a password is required");
//! # Ok::<(), l402::BackendError>(())
//! ```

mod wire;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l402::{
    BackendError, CreatedInvoice, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest,
    InvoiceState, Msat, Paid, PayRequest, PaymentHash, PaymentState, Preimage,
};
use l402_backend_http::{
    HTTP_PARAMS, HttpOptions, Secret, UriParams, clip, config_error, parse_uri, reqwest,
    transport_error,
};
use lightning_invoice::Bolt11Invoice;
use serde::de::DeserializeOwned;
use url::Url;

/// The backend name in errors and logs.
pub const NAME: &str = "phoenixd";

/// phoenixd's default HTTP port.
pub const DEFAULT_PORT: u16 = 9740;

/// A phoenixd node. Cheap to clone.
#[derive(Clone)]
pub struct PhoenixdBackend {
    http: reqwest::Client,
    base: Url,
    password: Secret,
}

impl std::fmt::Debug for PhoenixdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoenixdBackend")
            .field("base", &self.base.as_str())
            .field("password", &self.password)
            .finish()
    }
}

/// The whole-satoshi amount phoenixd is asked for, or why the amount cannot be asked for.
///
/// ```
/// use l402::Msat;
/// use l402_phoenixd::invoice_amount_sat;
///
/// assert_eq!(invoice_amount_sat(Msat::from_sat(21)), Ok(21));
/// assert!(invoice_amount_sat(Msat::new(21_500)).is_err(), "not rounded up to 22 sat");
/// assert!(invoice_amount_sat(Msat::ZERO).is_err(), "zero would be an amountless invoice");
/// ```
pub fn invoice_amount_sat(amount: Msat) -> Result<u64, String> {
    if amount == Msat::ZERO {
        return Err("the amount must be positive".into());
    }
    if !amount.as_u64().is_multiple_of(1000) {
        let up = amount.to_sat_ceil();
        return Err(format!(
            "phoenixd invoices are in whole satoshis and {amount} msat is not one; \
             price it at {} or {up} sat instead (the adapter does not round, so the payer pays \
             exactly the price)",
            amount.to_sat_floor()
        ));
    }
    Ok(amount.to_sat_floor())
}

// === impl PhoenixdBackend ===

impl PhoenixdBackend {
    /// Builds the backend from a `phoenixd://` or `phoenixd+https://` URI (no request is made
    /// yet). Errors are [`ErrorKind::InvalidRequest`] and never contain the password.
    pub fn from_uri(uri: &str) -> Result<Self, BackendError> {
        let url = parse_uri(uri, NAME)?;
        let scheme = match url.scheme() {
            "phoenixd" => "http",
            "phoenixd+https" => "https",
            other => {
                return Err(config_error(
                    NAME,
                    &format!(
                        "unsupported scheme {other:?} (use phoenixd://, or phoenixd+https:// behind a TLS proxy)"
                    ),
                ));
            }
        };
        let host = url.host_str().ok_or_else(|| {
            config_error(NAME, "the URI needs a host: phoenixd://:PASSWORD@host:9740")
        })?;
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let password = url
            .password()
            .map(|p| percent_encoding::percent_decode_str(p).decode_utf8())
            .transpose()
            .map_err(|_| config_error(NAME, "the password is not valid UTF-8 once decoded"))?
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                config_error(
                    NAME,
                    "the URI needs the http password after a colon: phoenixd://:PASSWORD@host:9740",
                )
            })?;
        let params = UriParams::of(&url);
        params.reject_unknown(&HTTP_PARAMS, NAME)?;
        if scheme == "http" && (params.get("cacert").is_some() || params.get("cert").is_some()) {
            return Err(config_error(
                NAME,
                "cacert= and cert= only apply to phoenixd+https://",
            ));
        }
        let options = HttpOptions::from_params(&params, NAME)?;
        let path = url.path().trim_matches('/');
        let base = if path.is_empty() {
            format!("{scheme}://{host}:{port}/")
        } else {
            format!("{scheme}://{host}:{port}/{path}/")
        };
        let base =
            Url::parse(&base).map_err(|e| config_error(NAME, &format!("invalid address: {e}")))?;
        Ok(PhoenixdBackend {
            http: l402_backend_http::client(NAME, &options)?,
            base,
            password: Secret::new(password),
        })
    }

    /// Removes the password from text that came from elsewhere.
    fn scrub(&self, text: String) -> String {
        let pw = self.password.expose();
        if text.contains(pw) {
            text.replace(pw, "<redacted>")
        } else {
            text
        }
    }

    fn error(&self, kind: ErrorKind, call: &'static str, detail: String) -> BackendError {
        BackendError::new(kind, NAME, call, self.scrub(detail))
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("paths are valid")
    }

    /// Sends a request; `Ok(None)` is phoenixd's lookup miss (404 `Not found`).
    async fn send<T: DeserializeOwned>(
        &self,
        call: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<Option<T>, BackendError> {
        let resp = req
            .basic_auth("", Some(self.password.expose()))
            .send()
            .await
            .map_err(|e| transport_error(NAME, call, e))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| transport_error(NAME, call, e))?;
        if status.is_success() {
            return serde_json::from_str(&body).map(Some).map_err(|e| {
                self.error(ErrorKind::Protocol, call, format!("unexpected answer: {e}"))
            });
        }
        match wire::kind_of_status(status.as_u16(), &body) {
            ErrorKind::NotFound => Ok(None),
            kind => Err(self.error(kind, call, format!("HTTP {status}: {}", clip(&body)))),
        }
    }

    fn hash(&self, s: &str, call: &'static str) -> Result<PaymentHash, BackendError> {
        s.parse().map_err(|e: l402::Error| {
            self.error(
                ErrorKind::Protocol,
                call,
                format!("payment hash {s:?}: {e}"),
            )
        })
    }

    fn preimage_for(
        &self,
        s: &str,
        hash: &PaymentHash,
        call: &'static str,
    ) -> Result<Preimage, BackendError> {
        let preimage: Preimage = s.parse().map_err(|e: l402::Error| {
            self.error(ErrorKind::Protocol, call, format!("preimage: {e}"))
        })?;
        if !preimage.matches(hash) {
            return Err(self.error(
                ErrorKind::Protocol,
                call,
                format!("the preimage returned for {hash} does not match it"),
            ));
        }
        Ok(preimage)
    }

    async fn outgoing(
        &self,
        call: &'static str,
        hash: &PaymentHash,
    ) -> Result<PaymentState, BackendError> {
        let found: Option<wire::OutgoingPayment> = self
            .send(
                call,
                self.http
                    .get(self.url(&format!("payments/outgoingbyhash/{hash}"))),
            )
            .await?;
        let Some(p) = found else {
            return Ok(PaymentState::NotFound);
        };
        if let Some(h) = &p.payment_hash
            && self.hash(h, call)? != *hash
        {
            return Err(self.error(
                ErrorKind::Protocol,
                call,
                format!("asked for payment {hash}, got {h}"),
            ));
        }
        if p.is_paid {
            let preimage = self.preimage_for(
                p.preimage.as_deref().ok_or_else(|| {
                    self.error(
                        ErrorKind::Protocol,
                        call,
                        "a paid payment without preimage".into(),
                    )
                })?,
                hash,
                call,
            )?;
            let amount = p
                .invoice
                .as_deref()
                .and_then(invoice_msat)
                .unwrap_or_else(|| (p.sent * 1000).saturating_sub(p.fees));
            return Ok(PaymentState::Succeeded(Paid {
                preimage,
                amount: Msat::new(amount),
                fee: Msat::new(p.fees),
            }));
        }
        Ok(match p.completed_at {
            Some(_) => PaymentState::Failed {
                reason: "phoenixd reports the payment failed".into(),
            },
            None => PaymentState::InFlight,
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn invoice_msat(bolt11: &str) -> Option<u64> {
    Bolt11Invoice::from_str(bolt11)
        .ok()?
        .amount_milli_satoshis()
}

/// When a BOLT11 invoice expires, in milliseconds since the epoch.
fn bolt11_expires_at_ms(bolt11: &str) -> Option<u64> {
    let inv = Bolt11Invoice::from_str(bolt11).ok()?;
    let at = inv.duration_since_epoch().checked_add(inv.expiry_time())?;
    Some(at.as_millis() as u64)
}

/// The state of an incoming payment, by the newest field the server sent.
fn incoming_state(p: &wire::IncomingPayment, now_ms: u64) -> InvoiceState {
    if p.is_paid {
        return InvoiceState::Settled;
    }
    let expired = p
        .is_expired
        .or_else(|| p.expires_at.map(|t| now_ms > t))
        .or_else(|| {
            p.invoice
                .as_deref()
                .and_then(bolt11_expires_at_ms)
                .map(|t| now_ms > t)
        })
        .unwrap_or(false);
    if expired {
        InvoiceState::Expired
    } else {
        InvoiceState::Open
    }
}

fn external_id() -> String {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).expect("the operating system's random source failed");
    format!("l402-{}", hex::encode(random))
}

/// Whole seconds, rounded up, at least 1.
fn whole_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl InvoiceIssuer for PhoenixdBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "create invoice";
        let sat = invoice_amount_sat(request.amount)
            .map_err(|why| BackendError::new(ErrorKind::InvalidRequest, NAME, CALL, why))?;
        let form = [
            ("amountSat", sat.to_string()),
            ("description", request.memo),
            ("expirySeconds", whole_secs(request.expiry).to_string()),
            ("externalId", external_id()),
        ];
        let created: wire::GeneratedInvoice = self
            .send(CALL, self.http.post(self.url("createinvoice")).form(&form))
            .await?
            .ok_or_else(|| {
                self.error(ErrorKind::Protocol, CALL, "404 Not found on create".into())
            })?;
        let payment_hash = self.hash(&created.payment_hash, CALL)?;
        // Never hand out an invoice for another amount or hash than asked and reported.
        let decoded = Bolt11Invoice::from_str(&created.serialized).map_err(|e| {
            self.error(
                ErrorKind::Protocol,
                CALL,
                format!("not a BOLT11 invoice: {e}"),
            )
        })?;
        if created.amount_sat != Some(sat)
            || decoded.amount_milli_satoshis() != Some(request.amount.as_u64())
            || decoded.payment_hash().as_ref() as &[u8] != payment_hash.as_bytes()
        {
            return Err(self.error(
                ErrorKind::Protocol,
                CALL,
                format!("phoenixd made an invoice that differs from the request ({sat} sat, {payment_hash})"),
            ));
        }
        Ok(CreatedInvoice {
            bolt11: created.serialized,
            payment_hash,
        })
    }

    async fn invoice_state(
        &self,
        payment_hash: &PaymentHash,
    ) -> Result<InvoiceState, BackendError> {
        const CALL: &str = "invoice state";
        let found: Option<wire::IncomingPayment> = self
            .send(
                CALL,
                self.http
                    .get(self.url(&format!("payments/incoming/{payment_hash}"))),
            )
            .await?;
        match found {
            Some(p) => Ok(incoming_state(&p, now_ms())),
            None => Err(BackendError::new(
                ErrorKind::NotFound,
                NAME,
                CALL,
                format!("no invoice with payment hash {payment_hash}"),
            )),
        }
    }
}

impl InvoicePayer for PhoenixdBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn pay(&self, request: PayRequest) -> Result<Paid, BackendError> {
        const CALL: &str = "pay";
        let invoice = Bolt11Invoice::from_str(request.bolt11.trim()).map_err(|e| {
            BackendError::new(
                ErrorKind::InvalidRequest,
                NAME,
                CALL,
                format!("not a BOLT11 invoice: {e}"),
            )
        })?;
        let hash = PaymentHash::from_bytes(*AsRef::<[u8; 32]>::as_ref(invoice.payment_hash()));
        let Some(amount) = invoice.amount_milli_satoshis() else {
            return Err(BackendError::new(
                ErrorKind::InvalidRequest,
                NAME,
                CALL,
                "amountless invoices are not paid",
            ));
        };
        if invoice.is_expired() {
            return Err(BackendError::new(
                ErrorKind::InvoiceExpired,
                NAME,
                CALL,
                format!("invoice {hash} has expired"),
            ));
        }
        let answer: wire::PayAnswer = self
            .send(
                CALL,
                self.http
                    .post(self.url("payinvoice"))
                    .form(&[("invoice", request.bolt11.trim())])
                    .timeout(request.timeout),
            )
            .await?
            .ok_or_else(|| self.error(ErrorKind::Protocol, CALL, "404 Not found on pay".into()))?;
        if let Some(h) = &answer.payment_hash
            && self.hash(h, CALL)? != hash
        {
            return Err(self.error(
                ErrorKind::Protocol,
                CALL,
                format!("paid {h} instead of {hash}"),
            ));
        }
        if let Some(p) = &answer.payment_preimage {
            let preimage = self.preimage_for(p, &hash, CALL)?;
            let fee = Msat::from_sat(answer.routing_fee_sat.unwrap_or(0));
            if fee > request.max_fee {
                tracing::warn!(
                    %hash,
                    fee_msat = fee.as_u64(),
                    max_fee_msat = request.max_fee.as_u64(),
                    "phoenixd paid more in fees than the limit (it takes no fee limit)"
                );
            }
            return Ok(Paid {
                preimage,
                amount: Msat::new(amount),
                fee,
            });
        }
        // A failure (HTTP 200 all the same). If the hash was paid before — phoenixd refuses to
        // pay it again — the first payment's result is the answer.
        let reason = answer.reason.unwrap_or_default();
        if let Ok(PaymentState::Succeeded(first)) = self.outgoing(CALL, &hash).await {
            return Ok(first);
        }
        Err(self.error(
            wire::kind_of_reason(&reason),
            CALL,
            format!("payment failed: {}", clip(&reason)),
        ))
    }

    async fn payment(&self, payment_hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        self.outgoing("payment lookup", payment_hash).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        let p = PhoenixdBackend::from_uri("phoenixd://:pw@127.0.0.1").unwrap();
        assert_eq!(p.base.as_str(), "http://127.0.0.1:9740/");
        assert_eq!(p.password.expose(), "pw");
        let p = PhoenixdBackend::from_uri(
            "phoenixd+https://ignored:p%40ss%3Aword@node.example:443/phoenix",
        )
        .unwrap();
        assert_eq!(p.base.as_str(), "https://node.example/phoenix/");
        assert_eq!(p.password.expose(), "p@ss:word", "percent-decoded");
        let p = PhoenixdBackend::from_uri("phoenixd://:pw@[::1]:9741?timeout=3s").unwrap();
        assert_eq!(p.base.as_str(), "http://[::1]:9741/");
    }

    #[test]
    fn bad_uris_are_refused_without_echoing_the_password() {
        for uri in [
            "phoenix://:SECRETPW@h:1",
            "phoenixd://h:1",
            "phoenixd://SECRETPW@h:1",
            "phoenixd://:@h:1",
            "phoenixd://:SECRETPW@h:1?password=x",
            "phoenixd://:SECRETPW@h:1?cacert=/tmp/ca.pem",
            "phoenixd://:SECRETPW@h:1?timeout=soon",
            "phoenixd://:SECRET%FFPW@h:1",
            "phoenixd+https://:SECRETPW@h:1?cert=/nonexistent.pem",
        ] {
            let e = PhoenixdBackend::from_uri(uri).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{uri}: {e}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("SECRET"), "{uri}: {shown}");
        }
    }

    #[test]
    fn debug_and_errors_redact_the_password() {
        let p = PhoenixdBackend::from_uri("phoenixd://:SECRETPW@h:1").unwrap();
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("SECRETPW") && shown.contains("redacted"),
            "{shown}"
        );
        let e = p.error(ErrorKind::Protocol, "x", "echo SECRETPW back".into());
        assert!(!e.to_string().contains("SECRETPW"), "{e}");
    }

    #[test]
    fn whole_sat_rule() {
        assert_eq!(invoice_amount_sat(Msat::new(1000)), Ok(1));
        assert_eq!(invoice_amount_sat(Msat::from_sat(2_000_000)), Ok(2_000_000));
        let why = invoice_amount_sat(Msat::new(1500)).unwrap_err();
        assert!(why.contains("1 or 2 sat"), "{why}");
        assert!(invoice_amount_sat(Msat::new(999)).is_err());
        assert!(invoice_amount_sat(Msat::new(1)).is_err());
        assert!(invoice_amount_sat(Msat::ZERO).is_err());
    }

    fn incoming(json: &str) -> wire::IncomingPayment {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn incoming_state_uses_the_newest_field_available() {
        let now = 1_700_000_000_000;
        assert_eq!(
            incoming_state(&incoming(r#"{"isPaid":true,"isExpired":true}"#), now),
            InvoiceState::Settled
        );
        assert_eq!(
            incoming_state(&incoming(r#"{"isPaid":false,"isExpired":true}"#), now),
            InvoiceState::Expired
        );
        assert_eq!(
            incoming_state(
                &incoming(&format!(r#"{{"isPaid":false,"expiresAt":{}}}"#, now - 1)),
                now
            ),
            InvoiceState::Expired
        );
        assert_eq!(
            incoming_state(
                &incoming(&format!(r#"{{"isPaid":false,"expiresAt":{}}}"#, now + 1)),
                now
            ),
            InvoiceState::Open
        );
        // v0.5: only the invoice itself says when it expires.
        let hash = PaymentHash::from_bytes([5; 32]);
        let bolt11 = l402_test::invoice::regtest_invoice(&hash, 1000, "t");
        let at = bolt11_expires_at_ms(&bolt11).unwrap();
        let old = incoming(&format!(r#"{{"isPaid":false,"invoice":"{bolt11}"}}"#));
        assert_eq!(incoming_state(&old, at - 1), InvoiceState::Open);
        assert_eq!(incoming_state(&old, at + 1), InvoiceState::Expired);
        assert_eq!(
            incoming_state(&incoming(r#"{"isPaid":false}"#), now),
            InvoiceState::Open
        );
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_secs(Duration::from_millis(10)), 1);
        assert_eq!(whole_secs(Duration::from_millis(2001)), 3);
    }
}
