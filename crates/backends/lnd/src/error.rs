//! From LND's answers to [`BackendError`] kinds.
//!
//! LND returns most of its errors as plain Go errors, which gRPC reports as code 2 (Unknown) and
//! the gateway as HTTP 500 — macaroon failures, "wallet locked" and "invoice expired" alike. So
//! the HTTP status alone says little: this module classifies by the gRPC `code` first and, for
//! code 2, by the message. A 404 is a missing invoice or payment only when the message says so;
//! the gateway's own "Not Found" means the URL is wrong.

use l402::{BackendError, ErrorKind};
use l402_backend_http::{clip, reqwest, status_error, transport_error};

use crate::NAME;
use crate::wire::RpcStatus;

/// gRPC codes the adapter treats specially.
pub(crate) const CODE_NOT_FOUND: i32 = 5;
pub(crate) const CODE_ALREADY_EXISTS: i32 = 6;

/// Messages (lowercase substrings) of code-2 errors, by kind. Order matters: the first match
/// wins.
const UNKNOWN_CODE_MESSAGES: &[(&str, ErrorKind)] = &[
    // macaroons/service.go and the bakery: no header, bad hex, wrong root key, missing
    // permission, unknown root key id.
    ("expected 1 macaroon", ErrorKind::Unauthorized),
    ("verification failed", ErrorKind::Unauthorized),
    ("permission denied", ErrorKind::Unauthorized),
    ("cannot get macaroon", ErrorKind::Unauthorized),
    ("unknown macaroon version", ErrorKind::Unauthorized),
    ("macaroon", ErrorKind::Unauthorized),
    // routerrpc ValidatePayReqExpiry.
    ("invoice expired", ErrorKind::InvoiceExpired),
    ("already paid", ErrorKind::AlreadyPaid),
    ("insufficient", ErrorKind::InsufficientBalance),
    // The node is not ready (yet): worth retrying.
    ("wallet locked", ErrorKind::Unavailable),
    ("starting up", ErrorKind::Unavailable),
    ("not yet ready", ErrorKind::Unavailable),
    ("shutting down", ErrorKind::Unavailable),
    ("syncing", ErrorKind::Unavailable),
    ("not synced", ErrorKind::Unavailable),
    // Refusals of the request itself (AddInvoice limits, hash and invoice parsing).
    ("too large", ErrorKind::InvalidRequest),
    ("greater than max expiry", ErrorKind::InvalidRequest),
    ("payment hash must be exactly", ErrorKind::InvalidRequest),
    ("invalid hash length", ErrorKind::InvalidRequest),
    ("not for current active network", ErrorKind::InvalidRequest),
    ("negative value", ErrorKind::InvalidRequest),
    ("amount must", ErrorKind::InvalidRequest),
    ("must be specified", ErrorKind::InvalidRequest),
    ("checksum", ErrorKind::InvalidRequest),
    ("invalid", ErrorKind::InvalidRequest),
];

/// The kind of an LND error status.
pub(crate) fn kind_of(status: &RpcStatus) -> ErrorKind {
    let msg = status.message.to_ascii_lowercase();
    match status.code {
        // The gateway's own 404 for an unknown path says just "Not Found".
        CODE_NOT_FOUND if is_missing_record(&msg) => ErrorKind::NotFound,
        CODE_NOT_FOUND => ErrorKind::Protocol,
        CODE_ALREADY_EXISTS => ErrorKind::AlreadyPaid,
        1 | 8 | 10 | 13 | 14 | 15 => ErrorKind::Unavailable,
        3 | 9 | 11 => ErrorKind::InvalidRequest,
        4 => ErrorKind::Timeout,
        7 | 16 => ErrorKind::Unauthorized,
        12 => ErrorKind::Unsupported,
        // Code 2 (Unknown) and anything else: by message. An unrecognised plain error is taken
        // as transient: lnd reports passing conditions this way too, and a retried payment is
        // still protected by lnd's own duplicate check (409).
        _ => UNKNOWN_CODE_MESSAGES
            .iter()
            .find(|(needle, _)| msg.contains(needle))
            .map_or(ErrorKind::Unavailable, |(_, kind)| *kind),
    }
}

/// Messages of a real "no such invoice / payment" (not a wrong URL).
fn is_missing_record(msg: &str) -> bool {
    msg.contains("unable to locate invoice")
        || msg.contains("there are no existing invoices")
        || msg.contains("isn't initiated")
}

/// An error from an LND status.
pub(crate) fn from_status(call: &'static str, status: &RpcStatus) -> BackendError {
    let kind = kind_of(status);
    let mut detail = format!("{} (gRPC code {})", clip(&status.message), status.code);
    if kind == ErrorKind::Protocol && status.code == CODE_NOT_FOUND {
        detail.push_str(
            "; the REST gateway has no such route: is the URI pointing at lnd's REST port \
             (restlisten, default 8080) with the right path?",
        );
    }
    BackendError::new(kind, NAME, call, detail)
}

/// An error from an unsuccessful HTTP answer: LND's status body if there is one, otherwise the
/// shared status mapping (e.g. a reverse proxy's HTML 502).
pub(crate) fn from_response(
    call: &'static str,
    http: reqwest::StatusCode,
    body: &str,
) -> BackendError {
    match RpcStatus::parse(body) {
        Some(status) => from_status(call, &status),
        None => status_error(NAME, call, http, body),
    }
}

/// A transport failure, with a hint when the TLS certificate was the problem.
pub(crate) fn transport(call: &'static str, e: reqwest::Error) -> BackendError {
    let hint = tls_hint(&chain(&e));
    let err = transport_error(NAME, call, e);
    match hint {
        Some(hint) => BackendError::new(
            err.kind(),
            NAME,
            call,
            format!("{}; hint: {hint}", err.detail()),
        )
        .with_source(err),
        None => err,
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// What to do about a certificate rustls refused.
fn tls_hint(chain: &str) -> Option<&'static str> {
    if chain.contains("CaUsedAsEndEntity") {
        Some(
            "lnd's tls.cert is self-signed and marked as a CA, which rustls refuses as a server \
             certificate (also when given as cacert=): pin it with cert=/path/to/tls.cert",
        )
    } else if chain.contains("UnknownIssuer") {
        Some(
            "the server's certificate is not signed by a trusted CA; for lnd's self-signed \
             tls.cert, pin it with cert=/path/to/tls.cert (cacert= is for a certificate signed \
             by your own CA)",
        )
    } else if chain.contains("not the pinned certificate") {
        Some(
            "the server's certificate differs from the pinned cert= file; lnd regenerates \
             tls.cert when it expires or its tlsextraip/tlsextradomain change: copy the current one",
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: i32, message: &str) -> ErrorKind {
        kind_of(&RpcStatus {
            code,
            message: message.to_owned(),
        })
    }

    #[test]
    fn not_found_only_when_lnd_says_so() {
        assert_eq!(kind(5, "unable to locate invoice"), ErrorKind::NotFound);
        assert_eq!(
            kind(5, "there are no existing invoices"),
            ErrorKind::NotFound
        );
        assert_eq!(kind(5, "payment isn't initiated"), ErrorKind::NotFound);
        // The gateway's routing 404: a wrong base URL, not a missing invoice.
        assert_eq!(kind(5, "Not Found"), ErrorKind::Protocol);
        let e = from_status(
            "invoice state",
            &RpcStatus {
                code: 5,
                message: "Not Found".into(),
            },
        );
        assert!(e.to_string().contains("REST port"), "{e}");
    }

    #[test]
    fn macaroon_failures_are_unauthorized_despite_http_500() {
        for msg in [
            "expected 1 macaroon, got 0",
            "verification failed: signature mismatch after caveat verification",
            "permission denied",
            "cannot get macaroon: root key with id 0 doesn't exist",
            "unknown macaroon version: 1",
        ] {
            let e = from_response(
                "create invoice",
                reqwest::StatusCode::INTERNAL_SERVER_ERROR,
                &format!(r#"{{"code":2,"message":"{msg}","details":[]}}"#),
            );
            assert_eq!(e.kind(), ErrorKind::Unauthorized, "{msg}");
            assert!(!e.is_transient());
        }
        assert_eq!(kind(7, "anything"), ErrorKind::Unauthorized);
        assert_eq!(kind(16, "anything"), ErrorKind::Unauthorized);
    }

    #[test]
    fn plain_errors_by_message() {
        assert_eq!(
            kind(
                2,
                "invoice expired. Valid until 2026-01-01 00:00:00 +0000 UTC"
            ),
            ErrorKind::InvoiceExpired
        );
        assert_eq!(
            kind(2, "wallet locked, unlock it to enable full RPC access"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(
                2,
                "the RPC server is in the process of starting up, but not yet ready to accept calls"
            ),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(
                2,
                "invoice amount 2000000000000001 is too large, max is 10000000000000"
            ),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            kind(2, "payment hash must be exactly 32 bytes, is instead 31"),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            kind(2, "invoice not for current active network 'regtest'"),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            kind(2, "timeout_seconds must be specified"),
            ErrorKind::InvalidRequest
        );
        // Unrecognised plain errors are taken as transient.
        assert!(kind(2, "something odd happened").is_transient());
    }

    #[test]
    fn codes_without_messages() {
        assert_eq!(kind(6, "invoice is already paid"), ErrorKind::AlreadyPaid);
        assert_eq!(
            kind(3, "invoice ref must be set"),
            ErrorKind::InvalidRequest
        );
        assert_eq!(kind(4, "deadline"), ErrorKind::Timeout);
        assert_eq!(kind(12, "Method Not Allowed"), ErrorKind::Unsupported);
        assert!(kind(14, "unavailable").is_transient());
        assert!(kind(8, "rate limited").is_transient());
    }

    #[test]
    fn bodies_that_are_not_lnd_statuses_use_the_http_status() {
        let e = from_response("pay", reqwest::StatusCode::BAD_GATEWAY, "<html>502</html>");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("502"), "{e}");
        let e = from_response("pay", reqwest::StatusCode::UNAUTHORIZED, "no");
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn tls_hints() {
        assert!(
            tls_hint("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))")
                .unwrap()
                .contains("cert=")
        );
        assert!(tls_hint("invalid peer certificate: UnknownIssuer").is_some());
        assert!(
            tls_hint("server certificate is not the pinned certificate")
                .unwrap()
                .contains("pinned")
        );
        assert!(tls_hint("connection refused").is_none());
    }
}
