//! LND as a Lightning backend, over lnd's REST API (the grpc-gateway in front of its gRPC
//! services).
//!
//! [`LndBackend`] implements both ports: [`InvoiceIssuer`](l402::InvoiceIssuer) (a paywall
//! creates invoices and checks their state) and [`InvoicePayer`](l402::InvoicePayer) (a client
//! pays invoices and looks up earlier payments). An `invoice.macaroon` is enough for the issuer;
//! paying needs `offchain:read` and `offchain:write` (e.g. `admin.macaroon`).
//!
//! # URI
//!
//! ```text
//! lnd+rest://HOST[:PORT][/PREFIX]?macaroon=PATH&cert=PATH[&timeout=30s][&connect_timeout=10s]
//! ```
//!
//! | parameter | meaning |
//! |---|---|
//! | `PORT` | lnd's `restlisten` port; default **8080** |
//! | `/PREFIX` | optional path prefix, for a reverse proxy that serves lnd's REST API under one |
//! | `macaroon=PATH` | the binary macaroon file; sent hex-encoded in the `Grpc-Metadata-macaroon` header |
//! | `macaroon_hex=HEX` | the macaroon as hex instead of a file (one of the two is required) |
//! | `cert=PATH` | lnd's `tls.cert`, **pinned**: exactly that certificate is accepted |
//! | `cacert=PATH` | a CA that signed the server's certificate (e.g. a reverse proxy's), instead of `cert=` |
//! | `timeout`, `connect_timeout` | per-request and connect timeouts (`5s`, `250ms`, …) |
//!
//! Without `cert=` or `cacert=` the public web PKI is trusted (lnd behind a proxy with a public
//! certificate). lnd's own `tls.cert` is self-signed **and marked as a CA**, which rustls refuses
//! as a server certificate even when it is given as the trusted CA, so it must be pinned with
//! `cert=`; the error for `cacert=` says so. Unknown parameters are errors. The macaroon never
//! appears in `Debug` output, logs or error messages.
//!
//! ```
//! use l402_lnd::LndBackend;
//!
//! let lnd = LndBackend::from_uri("lnd+rest://node.example?macaroon_hex=0201036c6e64").unwrap();
//! assert_eq!(lnd.base_url().as_str(), "https://node.example:8080/");
//! assert!(!format!("{lnd:?}").contains("0201036c6e64"), "the macaroon is redacted");
//! assert!(LndBackend::from_uri("lnd+rest://node.example?macaroon_hex=02&typo=1").is_err());
//! ```
//!
//! # Calls and how each is tested
//!
//! No real lnd can run here, so the integration tests run against a local **stand-in** (in
//! `tests/standin/`): an HTTPS server with an rcgen-made self-signed CA-flagged certificate like
//! lnd's, which checks the macaroon header, keeps invoices, preimages, balances and payments,
//! signs real BOLT11 invoices, and answers in lnd's documented shapes, quirks and errors.
//!
//! | port method | lnd call | REST | tests |
//! |---|---|---|---|
//! | `create_invoice` | AddInvoice | `POST /v1/invoices` (`value_msat`, `memo`, `expiry`) | stand-in (conformance suite) + unit (amount, expiry) |
//! | `invoice_state` | LookupInvoice | `GET /v1/invoice/{r_hash_str}` (hex) | stand-in (conformance suite) + unit (state mapping) |
//! | `pay` | SendPaymentV2 | `POST /v2/router/send`, NDJSON stream until `SUCCEEDED`/`FAILED` | stand-in (suite, fees, timeouts, 409) + unit (failure reasons, preimage check) |
//! | `pay` after 409, `payment` | TrackPaymentV2 | `GET /v2/router/track/{payment_hash}` (URL-safe base64, padded) | stand-in (suite, in-flight, `/`-prone hashes) |
//! | every call | errors | `{"code","message","details"}` and stream `{"error":{…}}` | unit (each documented shape) + stand-in (auth, wrong URL, TLS) |
//!
//! # Choices
//!
//! * **Invoice lookup uses LookupInvoice v1** (`/v1/invoice/{hex}`), not LookupInvoiceV2: v1
//!   needs only `invoices:read` where V2 needs `invoices:write`, and v1 takes the hash as hex in
//!   the path, which avoids lnd's base64-in-query problems (lnd 0.18's gateway accepts only
//!   URL-safe base64 there, lnd issue #9421). v1 is the REST route of a call whose *field*
//!   `r_hash_str` is marked deprecated in the proto; the route itself is served from 0.18 to 0.21.
//! * **Amounts** are sent as `value_msat`, so millisatoshi prices are kept exactly (no rounding).
//!   A zero amount is refused (lnd would make an amountless invoice), and so is anything above
//!   int64. The expiry is rounded **up** to whole seconds and is at least 1 s (0 means 24 h to
//!   lnd).
//! * **Expired invoices are `Cancelled`**: lnd's expiry watcher moves them to `CANCELED` and has
//!   no expired state; an `OPEN` invoice already past its expiry is reported `Cancelled` too, as
//!   the watcher is about to record.
//! * **Paying never pays twice**: a SendPaymentV2 for a hash lnd already knows answers 409
//!   (`invoice is already paid`, `payment is in transition`, `payment already exists`); the
//!   adapter then follows that payment with TrackPaymentV2 and returns its result. A `FAILED`
//!   payment may be retried (lnd allows it). `fee_limit_msat` is always sent (lnd's default 0
//!   allows only fee-free routes) and `timeout_seconds` is the request's timeout (lnd 0.18
//!   refuses 0). If no final state arrives in time, the error is `Timeout` and the payment may
//!   still complete: look it up with [`payment`](l402::InvoicePayer::payment).
//! * **Preimages** are read only from `SUCCEEDED` updates (lnd shows 64 zeros before) and must
//!   hash to the payment hash; created invoices are decoded and must carry the requested hash
//!   and amount.
//! * **Errors**: most lnd errors are plain Go errors, i.e. gRPC code 2 with HTTP 500, including
//!   macaroon failures, so they are classified by code and then message (see `error.rs`):
//!   macaroon messages are `Unauthorized`; "wallet locked" / "starting up" are transient; 404 is
//!   `NotFound` only with lnd's own message ("unable to locate invoice", "payment isn't
//!   initiated"), while the gateway's bare "Not Found" (a wrong URL) is `Protocol`. An
//!   unrecognised code-2 message is taken as transient.
//!
//! # Uncertain
//!
//! Everything here comes from reading lnd's source (0.18–0.21) and its gateway, not from a
//! running lnd. In particular the exact wording of some code-2 messages (macaroon failures, node
//! not ready) is matched by substring and may differ between versions; an unmatched one is
//! reported as transient rather than misreported as permanent.

mod backend;
mod error;
mod ports;
mod wire;

pub use backend::{DEFAULT_PORT, LndBackend};

/// The backend's name in errors and logs.
pub const NAME: &str = "lnd";
