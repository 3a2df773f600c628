//! Core Lightning as an l402 backend, through its REST plugin `clnrest`.
//!
//! [`ClnBackend`] implements both ports: [`InvoiceIssuer`] (a paywall creates invoices and checks
//! them) and [`InvoicePayer`] (a client pays and looks payments up). It speaks to `clnrest`
//! (Core Lightning v24.x Python plugin or v25.02+ Rust plugin), which must be enabled with
//! `clnrest-port`.
//!
//! # Backend URI
//!
//! ```text
//! cln+rest://HOST[:PORT]?rune=RUNE[&cacert=/path/ca.pem | &cert=/path/server.pem][&timeout=30s][&connect_timeout=10s]
//! cln+rest+http://HOST[:PORT]?rune=RUNE        (clnrest-protocol=http, e.g. on loopback)
//! ```
//!
//! * The port defaults to 3010, clnrest's conventional port.
//! * `rune` is required. Create one with, for a paywall,
//!   `lightning-cli createrune restrictions='[["method=invoice","method=listinvoices"]]'`; a payer
//!   needs `pay` and `listpays`. It travels in the `Rune` header and never appears in `Debug`
//!   output or error messages.
//! * clnrest serves HTTPS with a certificate signed by its own CA (`ca.pem` in
//!   `<lightning-dir>/<network>/`, or `clnrest-certs`). Pass that file as `cacert=`; the server
//!   certificate names `cln`, `localhost` and, when `clnrest-host` is an IP address, that address.
//!   `cert=` pins one certificate instead (e.g. `server.pem`, whatever its names).
//! * Unknown query parameters are an error, so a misspelt `rune` does not go unnoticed.
//!
//! # Calls
//!
//! | port method | clnrest call | parameters sent | tested by |
//! |---|---|---|---|
//! | [`InvoiceIssuer::create_invoice`] | `POST /v1/invoice` | `amount_msat`, `label` (unique, `l402-<time>-<random>`), `description`, `expiry` | local stand-in (conformance suite + adapter tests) |
//! | [`InvoiceIssuer::invoice_state`] | `POST /v1/listinvoices` | `payment_hash` | local stand-in |
//! | [`InvoicePayer::pay`] | `POST /v1/pay` (then `listpays` by `bolt11` when xpay says "already paid") | `bolt11`, `maxfee` (msat), `retry_for` (s) | local stand-in |
//! | [`InvoicePayer::payment`] | `POST /v1/listpays` | `payment_hash` | local stand-in |
//! | error mapping (HTTP status + RPC code → [`ErrorKind`]) | — | — | unit tests + local stand-in |
//! | URI parsing, secret redaction | — | — | unit tests + local stand-in |
//!
//! No real `lightningd` can run where this crate is tested, so the stand-in in `tests/standin`
//! reproduces clnrest's documented behaviour: HTTPS with an rcgen CA and server certificate as
//! clnrest generates them, the `Rune` header checks (403/401), HTTP 201 on success, the
//! `{"code","message","data"}` error body with HTTP 500, state kept across calls, and real BOLT11
//! invoices.
//!
//! # Mapping
//!
//! * Invoice states: `unpaid` → open (or expired once `expires_at` has passed, in case the node
//!   has not flipped the status yet), `paid` → settled, `expired` → expired. An unknown hash is an
//!   empty `listinvoices` list → [`ErrorKind::NotFound`].
//! * Payments: `listpays` may hold several attempts for one hash; any `complete` one means paid
//!   (its `preimage` field — not `payment_preimage` as in `pay`), else any `pending` means in
//!   flight, else all failed. An empty list is [`PaymentState::NotFound`].
//! * Paying twice: `pay` itself returns the stored result for a hash already paid (it checks
//!   `listsendpays` first), so a second [`InvoicePayer::pay`] returns the first preimage. When xpay
//!   handles `pay` and answers "already paid" (codes 218/219), the adapter looks the payment up and
//!   returns the first result; code 201 (same hash, other amount) is [`ErrorKind::AlreadyPaid`].
//! * Fee limit: `maxfee` = [`PayRequest::max_fee`] in msat (an absolute cap; CLN refuses it
//!   together with `maxfeepercent`/`exemptfee`, which are never sent).
//! * Timeout: `retry_for` = [`PayRequest::timeout`] in whole seconds (at least 1), and the HTTP
//!   request waits 5 s longer so CLN's own "stopped retrying" answer (code 210) arrives first. If
//!   the HTTP wait still runs out, the error is [`ErrorKind::Timeout`] and the payment may be in
//!   flight: ask [`InvoicePayer::payment`].
//! * Errors: HTTP 401/403 → `Unauthorized`; 404 (unknown method) → `Unsupported`; 500 → by RPC
//!   code, e.g. 201 and 219 → `AlreadyPaid`, 205/206/210 → `PaymentFailed`, 207 → `InvoiceExpired`,
//!   215 → `InsufficientBalance`, -4/-5/200 → `Unavailable` (transient); the full table is
//!   [`error_codes`].
//!
//! # Not verified against a live node
//!
//! Response shapes and codes come from Core Lightning's source (v24.08 to v26.06) and docs.
//! Unconfirmed: xpay's exact answer to paying an already-paid invoice (handled both ways), and
//! whether every node version flips `status` to `expired` on time (the adapter also checks
//! `expires_at`).
//!
//! ```
//! use l402_cln::ClnBackend;
//!
//! let cln = ClnBackend::from_uri("cln+rest+http://127.0.0.1:3010?rune=c2VjcmV0LXJ1bmU&timeout=5s")?;
//! assert!(!format!("{cln:?}").contains("c2VjcmV0LXJ1bmU"), "the rune is redacted");
//! assert!(ClnBackend::from_uri("cln+rest://127.0.0.1:3010?rnue=typo").is_err());
//! # Ok::<(), l402::BackendError>(())
//! ```

mod wire;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l402::{
    BackendError, CreatedInvoice, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest,
    InvoiceState, Msat, Paid, PayRequest, PaymentHash, PaymentState, Preimage,
};
use l402_backend_http::reqwest::header::{ACCEPT, HeaderValue};
use l402_backend_http::{
    HTTP_PARAMS, HttpOptions, Secret, UriParams, config_error, parse_uri, reqwest, transport_error,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::wire::Side;

/// The backend name in errors and logs.
pub const NAME: &str = "cln";

/// clnrest's conventional port.
pub const DEFAULT_PORT: u16 = 3010;

/// How much longer the HTTP request for `pay` waits than `retry_for`, so CLN answers first.
const PAY_GRACE: Duration = Duration::from_secs(5);

/// The documented Core Lightning JSON-RPC error codes and the [`ErrorKind`] each maps to:
/// `(code, name in common/jsonrpc_errors.h, kind)`. Codes -1 (`LIGHTNINGD`), -3 (`PLUGIN_ERROR`)
/// and any code not listed are [`ErrorKind::PaymentFailed`] from `pay` and
/// [`ErrorKind::Unavailable`] (transient) from the other calls. HTTP 401/403 are always
/// [`ErrorKind::Unauthorized`] and 404 [`ErrorKind::Unsupported`], whatever the code.
pub fn error_codes() -> &'static [(i64, &'static str, ErrorKind)] {
    wire::CODES
}

/// A Core Lightning node reached through clnrest. Cheap to clone.
#[derive(Clone)]
pub struct ClnBackend {
    http: reqwest::Client,
    base: Url,
    rune: Secret,
    rune_header: HeaderValue,
}

impl std::fmt::Debug for ClnBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClnBackend")
            .field("base", &self.base.as_str())
            .field("rune", &self.rune)
            .finish()
    }
}

/// A failed call, with the RPC error code when clnrest gave one.
struct Failure {
    error: BackendError,
    code: Option<i64>,
}

impl From<Failure> for BackendError {
    fn from(f: Failure) -> Self {
        f.error
    }
}

// === impl ClnBackend ===

impl ClnBackend {
    /// Builds the backend from a `cln+rest://` or `cln+rest+http://` URI (no request is made
    /// yet). Errors are [`ErrorKind::InvalidRequest`] and never contain the rune.
    pub fn from_uri(uri: &str) -> Result<Self, BackendError> {
        let url = parse_uri(uri, NAME)?;
        let scheme = match url.scheme() {
            "cln+rest" => "https",
            "cln+rest+http" => "http",
            other => {
                return Err(config_error(
                    NAME,
                    &format!(
                        "unsupported scheme {other:?} (use cln+rest://, or cln+rest+http:// for a plain-HTTP clnrest)"
                    ),
                ));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                NAME,
                "the URI takes no user or password; pass the rune as ?rune=",
            ));
        }
        let host = url.host_str().ok_or_else(|| {
            config_error(NAME, "the URI needs a host: cln+rest://host:3010?rune=…")
        })?;
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let params = UriParams::of(&url);
        let mut known = vec!["rune"];
        known.extend(HTTP_PARAMS);
        params.reject_unknown(&known, NAME)?;
        let rune = params.get("rune").unwrap_or_default();
        if rune.is_empty() {
            return Err(config_error(
                NAME,
                "the URI needs ?rune=… (create one with `lightning-cli createrune`)",
            ));
        }
        let mut rune_header = HeaderValue::from_str(rune).map_err(|_| {
            config_error(
                NAME,
                "the rune holds characters an HTTP header cannot carry",
            )
        })?;
        rune_header.set_sensitive(true);
        let options = HttpOptions::from_params(&params, NAME)?;
        if scheme == "http" && (params.get("cacert").is_some() || params.get("cert").is_some()) {
            return Err(config_error(
                NAME,
                "cacert= and cert= only apply to cln+rest:// (HTTPS)",
            ));
        }
        let path = url.path().trim_matches('/');
        let base = if path.is_empty() {
            format!("{scheme}://{host}:{port}/")
        } else {
            format!("{scheme}://{host}:{port}/{path}/")
        };
        let base =
            Url::parse(&base).map_err(|e| config_error(NAME, &format!("invalid address: {e}")))?;
        Ok(ClnBackend {
            http: l402_backend_http::client(NAME, &options)?,
            base,
            rune: Secret::new(rune),
            rune_header,
        })
    }

    /// Removes the rune from text that came from elsewhere (some nodes echo parameters in error
    /// messages), so it cannot leak into logs.
    fn scrub(&self, text: String) -> String {
        let rune = self.rune.expose();
        if text.contains(rune) {
            text.replace(rune, "<redacted>")
        } else {
            text
        }
    }

    /// Calls an RPC method through clnrest.
    async fn call<T: DeserializeOwned>(
        &self,
        call: &'static str,
        method: &str,
        params: &impl Serialize,
        side: Side,
        timeout: Option<Duration>,
    ) -> Result<T, Failure> {
        let url = self
            .base
            .join(&format!("v1/{method}"))
            .expect("method names are valid path segments");
        let mut req = self
            .http
            .post(url)
            .header("Rune", self.rune_header.clone())
            .header(ACCEPT, "application/json")
            .json(params);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let failed = |error| Failure { error, code: None };
        let resp = req
            .send()
            .await
            .map_err(|e| failed(transport_error(NAME, call, e)))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| failed(transport_error(NAME, call, e)))?;
        if status.is_success() {
            return serde_json::from_str(&body).map_err(|e| {
                failed(BackendError::new(
                    ErrorKind::Protocol,
                    NAME,
                    call,
                    self.scrub(format!("unexpected `{method}` result: {e}")),
                ))
            });
        }
        let (kind, detail) = wire::classify(status.as_u16(), &body, side);
        let code = serde_json::from_str::<wire::RpcError>(&body)
            .ok()
            .and_then(|e| e.code);
        Err(Failure {
            error: BackendError::new(kind, NAME, call, self.scrub(detail)),
            code,
        })
    }

    fn protocol(&self, call: &'static str, detail: String) -> BackendError {
        BackendError::new(ErrorKind::Protocol, NAME, call, self.scrub(detail))
    }

    fn hash(&self, s: &str, call: &'static str) -> Result<PaymentHash, BackendError> {
        s.parse()
            .map_err(|e: l402::Error| self.protocol(call, format!("payment hash {s:?}: {e}")))
    }

    fn preimage(&self, s: &str, call: &'static str) -> Result<Preimage, BackendError> {
        s.parse()
            .map_err(|e: l402::Error| self.protocol(call, format!("preimage: {e}")))
    }

    /// The first result of a payment `listpays` reports complete, if any.
    async fn completed_payment(
        &self,
        call: &'static str,
        params: &impl Serialize,
    ) -> Result<PaymentState, BackendError> {
        let pays: wire::Pays = self
            .call(call, "listpays", params, Side::Lookup, None)
            .await?;
        self.payment_state(call, pays.pays)
    }

    fn payment_state(
        &self,
        call: &'static str,
        pays: Vec<wire::PayEntry>,
    ) -> Result<PaymentState, BackendError> {
        if let Some(done) = pays.iter().find(|p| p.status == "complete") {
            let hash = self.hash(&done.payment_hash, call)?;
            let preimage = self.preimage(
                done.preimage.as_deref().ok_or_else(|| {
                    self.protocol(call, "a complete payment without preimage".into())
                })?,
                call,
            )?;
            if !preimage.matches(&hash) {
                return Err(self.protocol(
                    call,
                    format!("the preimage of payment {hash} does not match its hash"),
                ));
            }
            let sent = done.amount_sent_msat.unwrap_or(0);
            let amount = done.amount_msat.unwrap_or(sent);
            return Ok(PaymentState::Succeeded(Paid {
                preimage,
                amount: Msat::new(amount),
                fee: Msat::new(sent.saturating_sub(amount)),
            }));
        }
        if pays.iter().any(|p| p.status == "pending") {
            return Ok(PaymentState::InFlight);
        }
        match pays.len() {
            0 => Ok(PaymentState::NotFound),
            n => Ok(PaymentState::Failed {
                reason: format!(
                    "{n} payment attempt{} failed",
                    if n == 1 { "" } else { "s" }
                ),
            }),
        }
    }

    fn paid(&self, r: wire::PayResult) -> Result<Paid, BackendError> {
        const CALL: &str = "pay";
        match r.status.as_str() {
            "complete" => {}
            "pending" => {
                return Err(BackendError::new(
                    ErrorKind::Timeout,
                    NAME,
                    CALL,
                    "the payment is still in flight; look it up by payment hash later",
                ));
            }
            other => {
                return Err(BackendError::new(
                    ErrorKind::PaymentFailed,
                    NAME,
                    CALL,
                    format!("payment status {other:?}"),
                ));
            }
        }
        let hash = self.hash(&r.payment_hash, CALL)?;
        let preimage = self.preimage(&r.payment_preimage, CALL)?;
        if !preimage.matches(&hash) {
            return Err(self.protocol(
                CALL,
                format!("the preimage returned for {hash} does not match it"),
            ));
        }
        Ok(Paid {
            preimage,
            amount: Msat::new(r.amount_msat),
            fee: Msat::new(r.amount_sent_msat.saturating_sub(r.amount_msat)),
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A label no other invoice on the node has: CLN refuses duplicates (code 900).
fn unique_label() -> String {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("the operating system's random source failed");
    format!("l402-{}-{}", unix_now(), hex::encode(random))
}

/// Whole seconds, rounded up, at least 1 (CLN takes integer seconds).
fn whole_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl InvoiceIssuer for ClnBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "create invoice";
        if request.amount == Msat::ZERO {
            // CLN would make an amountless invoice only for "any"; 0 is refused either way.
            return Err(BackendError::new(
                ErrorKind::InvalidRequest,
                NAME,
                CALL,
                "the amount must be positive",
            ));
        }
        let label = unique_label();
        let params = wire::Invoice {
            amount_msat: request.amount.as_u64(),
            label: &label,
            description: &request.memo,
            expiry: whole_secs(request.expiry),
        };
        let created: wire::InvoiceCreated = self
            .call(CALL, "invoice", &params, Side::Lookup, None)
            .await?;
        Ok(CreatedInvoice {
            payment_hash: self.hash(&created.payment_hash, CALL)?,
            bolt11: created.bolt11,
        })
    }

    async fn invoice_state(
        &self,
        payment_hash: &PaymentHash,
    ) -> Result<InvoiceState, BackendError> {
        const CALL: &str = "invoice state";
        let params = wire::ByHash {
            payment_hash: payment_hash.to_hex(),
        };
        let list: wire::Invoices = self
            .call(CALL, "listinvoices", &params, Side::Lookup, None)
            .await?;
        let want = payment_hash.to_hex();
        let invoice = list
            .invoices
            .into_iter()
            .find(|i| i.payment_hash.eq_ignore_ascii_case(&want))
            .ok_or_else(|| {
                BackendError::new(
                    ErrorKind::NotFound,
                    NAME,
                    CALL,
                    format!("no invoice with payment hash {payment_hash}"),
                )
            })?;
        match invoice.status.as_str() {
            "paid" => Ok(InvoiceState::Settled),
            "expired" => Ok(InvoiceState::Expired),
            "unpaid" if invoice.expires_at.is_some_and(|t| t <= unix_now()) => {
                Ok(InvoiceState::Expired)
            }
            "unpaid" => Ok(InvoiceState::Open),
            other => Err(self.protocol(CALL, format!("unknown invoice status {other:?}"))),
        }
    }
}

impl InvoicePayer for ClnBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn pay(&self, request: PayRequest) -> Result<Paid, BackendError> {
        const CALL: &str = "pay";
        let params = wire::Pay {
            bolt11: &request.bolt11,
            maxfee: request.max_fee.as_u64(),
            retry_for: whole_secs(request.timeout),
        };
        let result = self
            .call::<wire::PayResult>(
                CALL,
                "pay",
                &params,
                Side::Pay,
                Some(request.timeout + PAY_GRACE),
            )
            .await;
        match result {
            Ok(r) => self.paid(r),
            // xpay answers a repeat with an error instead of the stored result: fetch it.
            Err(Failure {
                error,
                code: Some(218 | 219),
            }) => {
                let params = wire::ByBolt11 {
                    bolt11: &request.bolt11,
                };
                match self.completed_payment(CALL, &params).await {
                    Ok(PaymentState::Succeeded(paid)) => Ok(paid),
                    _ => Err(error),
                }
            }
            Err(f) => Err(f.error),
        }
    }

    async fn payment(&self, payment_hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        const CALL: &str = "payment lookup";
        let params = wire::ByHash {
            payment_hash: payment_hash.to_hex(),
        };
        let pays: wire::Pays = self
            .call(CALL, "listpays", &params, Side::Lookup, None)
            .await?;
        let want = payment_hash.to_hex();
        let pays = pays
            .pays
            .into_iter()
            .filter(|p| p.payment_hash.eq_ignore_ascii_case(&want))
            .collect();
        self.payment_state(CALL, pays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        let c = ClnBackend::from_uri("cln+rest+http://127.0.0.1?rune=abc").unwrap();
        assert_eq!(c.base.as_str(), "http://127.0.0.1:3010/");
        let c = ClnBackend::from_uri("cln+rest+http://node.example:8080/cln/?rune=abc").unwrap();
        assert_eq!(c.base.as_str(), "http://node.example:8080/cln/");
        let c = ClnBackend::from_uri("cln+rest://[::1]:3011?rune=abc&timeout=2s").unwrap();
        assert_eq!(c.base.as_str(), "https://[::1]:3011/");
    }

    #[test]
    fn bad_uris_are_refused_without_echoing_the_rune() {
        for uri in [
            "cln://h:1?rune=SECRETRUNE",
            "cln+rest://h:1",
            "cln+rest://h:1?rune=",
            "cln+rest://h:1?rune=SECRETRUNE&runee=x",
            "cln+rest://user:pw@h:1?rune=SECRETRUNE",
            "cln+rest://h:1?rune=SECRETRUNE&timeout=soon",
            "cln+rest+http://h:1?rune=SECRETRUNE&cacert=/tmp/ca.pem",
            "cln+rest://h:1?rune=SECRET%0ARUNE",
            "cln+rest://h:1?rune=SECRETRUNE&cacert=/nonexistent/ca.pem",
        ] {
            let e = ClnBackend::from_uri(uri).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{uri}: {e}");
            assert!(!e.to_string().contains("SECRET"), "{uri}: {e}");
            assert!(!format!("{e:?}").contains("SECRET"), "{uri}: {e:?}");
        }
    }

    #[test]
    fn debug_redacts_the_rune() {
        let c = ClnBackend::from_uri("cln+rest+http://h:1?rune=SECRETRUNE").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRETRUNE"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!format!("{:?}", c.rune_header).contains("SECRETRUNE"));
    }

    #[test]
    fn scrub_removes_the_rune() {
        let c = ClnBackend::from_uri("cln+rest+http://h:1?rune=SECRETRUNE").unwrap();
        assert_eq!(
            c.scrub("rune: should be base64: invalid token 'SECRETRUNE'".into()),
            "rune: should be base64: invalid token '<redacted>'"
        );
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_secs(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs(Duration::ZERO), 1);
        assert_eq!(whole_secs(Duration::from_millis(1500)), 2);
        assert_eq!(whole_secs(Duration::from_secs(3600)), 3600);
    }

    #[test]
    fn labels_are_unique() {
        let a = unique_label();
        let b = unique_label();
        assert_ne!(a, b);
        assert!(a.starts_with("l402-") && a.len() <= 128, "{a}");
    }

    #[test]
    fn listpays_entries_fold_into_one_state() {
        let c = ClnBackend::from_uri("cln+rest+http://h:1?rune=r").unwrap();
        let p = Preimage::from_bytes([7; 32]);
        let h = p.payment_hash().to_hex();
        let entry = |status: &str, preimage: Option<String>| wire::PayEntry {
            payment_hash: h.clone(),
            status: status.into(),
            preimage,
            amount_msat: Some(21_000),
            amount_sent_msat: Some(21_500),
        };
        assert_eq!(
            c.payment_state("t", vec![]).unwrap(),
            PaymentState::NotFound
        );
        assert_eq!(
            c.payment_state("t", vec![entry("failed", None), entry("pending", None)])
                .unwrap(),
            PaymentState::InFlight
        );
        assert!(matches!(
            c.payment_state("t", vec![entry("failed", None), entry("failed", None)])
                .unwrap(),
            PaymentState::Failed { .. }
        ));
        match c
            .payment_state(
                "t",
                vec![entry("failed", None), entry("complete", Some(p.to_hex()))],
            )
            .unwrap()
        {
            PaymentState::Succeeded(paid) => {
                assert_eq!(paid.preimage, p);
                assert_eq!(paid.amount, Msat::new(21_000));
                assert_eq!(paid.fee, Msat::new(500));
            }
            other => panic!("{other:?}"),
        }
        // A preimage that does not hash to the payment hash is refused, not passed on.
        let wrong = Preimage::from_bytes([8; 32]).to_hex();
        let e = c
            .payment_state("t", vec![entry("complete", Some(wrong))])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }
}
