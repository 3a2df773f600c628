//! clnrest's wire format: the four RPC calls this adapter makes, and the error envelope with the
//! mapping from Core Lightning's JSON-RPC error codes to [`ErrorKind`].
//!
//! Every call is `POST /v1/<method>` with a JSON object of named parameters and the `Rune` header.
//! Success is HTTP 201 with the RPC `result` as the body. Failure is
//! `{"code": <int or null>, "message": "…", "data": <any or null>}` with HTTP 403 (no rune),
//! 401 (rune refused), 404 (unknown method, code -32601), 406 (bad `Content-Type`/`Accept`) or
//! 500 (every other RPC error).

use l402::ErrorKind;
use serde::{Deserialize, Serialize};

// === requests ===

/// `invoice`: `amount_msat`, a unique `label`, `description`, `expiry` (seconds).
#[derive(Serialize)]
pub(crate) struct Invoice<'a> {
    pub(crate) amount_msat: u64,
    pub(crate) label: &'a str,
    pub(crate) description: &'a str,
    pub(crate) expiry: u64,
}

/// `listinvoices` and `listpays` by payment hash (hex).
#[derive(Serialize)]
pub(crate) struct ByHash {
    pub(crate) payment_hash: String,
}

/// `listpays` by invoice (to fetch the result of an earlier payment of the same invoice).
#[derive(Serialize)]
pub(crate) struct ByBolt11<'a> {
    pub(crate) bolt11: &'a str,
}

/// `pay` with an absolute fee cap (`maxfee`, msat) and a retry deadline (`retry_for`, seconds).
/// `maxfee` excludes `maxfeepercent` and `exemptfee`, which are therefore never sent.
#[derive(Serialize)]
pub(crate) struct Pay<'a> {
    pub(crate) bolt11: &'a str,
    pub(crate) maxfee: u64,
    pub(crate) retry_for: u64,
}

// === responses ===

/// The fields of an `invoice` result this adapter reads.
#[derive(Deserialize)]
pub(crate) struct InvoiceCreated {
    pub(crate) bolt11: String,
    pub(crate) payment_hash: String,
}

/// A `listinvoices` result.
#[derive(Deserialize)]
pub(crate) struct Invoices {
    pub(crate) invoices: Vec<InvoiceEntry>,
}

/// One `listinvoices` entry.
#[derive(Deserialize)]
pub(crate) struct InvoiceEntry {
    pub(crate) payment_hash: String,
    /// `unpaid`, `paid` or `expired`.
    pub(crate) status: String,
    /// Unix seconds.
    #[serde(default)]
    pub(crate) expires_at: Option<u64>,
}

/// A `pay` result.
#[derive(Deserialize)]
pub(crate) struct PayResult {
    pub(crate) payment_preimage: String,
    pub(crate) payment_hash: String,
    /// What the recipient got.
    pub(crate) amount_msat: u64,
    /// What left this node, fees included.
    pub(crate) amount_sent_msat: u64,
    /// `complete`, `pending` or `failed`.
    pub(crate) status: String,
}

/// A `listpays` result.
#[derive(Deserialize)]
pub(crate) struct Pays {
    pub(crate) pays: Vec<PayEntry>,
}

/// One `listpays` entry. The preimage is called `preimage` here, not `payment_preimage`.
#[derive(Deserialize)]
pub(crate) struct PayEntry {
    pub(crate) payment_hash: String,
    /// `pending`, `failed` or `complete`.
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) preimage: Option<String>,
    #[serde(default)]
    pub(crate) amount_msat: Option<u64>,
    #[serde(default)]
    pub(crate) amount_sent_msat: Option<u64>,
}

/// clnrest's error body (`RpcError`, serialized without skipping fields).
#[derive(Deserialize)]
pub(crate) struct RpcError {
    pub(crate) code: Option<i64>,
    pub(crate) message: String,
}

// === error codes ===

/// Which call an RPC error came from; a few generic codes mean different things on each side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// `invoice`, `listinvoices`, `listpays`.
    Lookup,
    /// `pay`.
    Pay,
}

/// The documented Core Lightning error codes this adapter distinguishes (`common/jsonrpc_errors.h`),
/// with the kind each maps to. Codes not listed fall back to [`fallback`].
pub(crate) const CODES: &[(i64, &str, ErrorKind)] = &[
    (
        -32600,
        "JSONRPC2_INVALID_REQUEST",
        ErrorKind::InvalidRequest,
    ),
    (-32601, "JSONRPC2_METHOD_NOT_FOUND", ErrorKind::Unsupported),
    (-32602, "JSONRPC2_INVALID_PARAMS", ErrorKind::InvalidRequest),
    // -1 (LIGHTNINGD) and -3 (PLUGIN_ERROR) depend on the side: see `fallback`.
    (-4, "PLUGIN_TERMINATED", ErrorKind::Unavailable),
    (-5, "LIGHTNINGD_SHUTDOWN", ErrorKind::Unavailable),
    // In flight already: a later `pay` waits for that attempt and replays its result.
    (200, "PAY_IN_PROGRESS", ErrorKind::Unavailable),
    // Succeeded before with another amount or destination for the same hash.
    (201, "PAY_RHASH_ALREADY_USED", ErrorKind::AlreadyPaid),
    (202, "PAY_UNPARSEABLE_ONION", ErrorKind::PaymentFailed),
    (203, "PAY_DESTINATION_PERM_FAIL", ErrorKind::PaymentFailed),
    (204, "PAY_TRY_OTHER_ROUTE", ErrorKind::PaymentFailed),
    (205, "PAY_ROUTE_NOT_FOUND", ErrorKind::PaymentFailed),
    (206, "PAY_ROUTE_TOO_EXPENSIVE", ErrorKind::PaymentFailed),
    (207, "PAY_INVOICE_EXPIRED", ErrorKind::InvoiceExpired),
    (208, "PAY_NO_SUCH_PAYMENT", ErrorKind::NotFound),
    (209, "PAY_UNSPECIFIED_ERROR", ErrorKind::PaymentFailed),
    // `retry_for` ran out with nothing in flight: a definite failure of this attempt.
    (210, "PAY_STOPPED_RETRYING", ErrorKind::PaymentFailed),
    (211, "PAY_STATUS_UNEXPECTED", ErrorKind::PaymentFailed),
    (
        212,
        "PAY_INVOICE_REQUEST_INVALID",
        ErrorKind::InvalidRequest,
    ),
    (
        213,
        "PAY_INVOICE_PREAPPROVAL_DECLINED",
        ErrorKind::PaymentFailed,
    ),
    (
        214,
        "PAY_KEYSEND_PREAPPROVAL_DECLINED",
        ErrorKind::PaymentFailed,
    ),
    (
        215,
        "PAY_INSUFFICIENT_FUNDS",
        ErrorKind::InsufficientBalance,
    ),
    (216, "PAY_UNREACHABLE", ErrorKind::PaymentFailed),
    (217, "PAY_USER_ERROR", ErrorKind::InvalidRequest),
    // xpay reports "Already paid this invoice successfully" with 218; the adapter then looks the
    // payment up and returns the first result (see `ClnBackend::pay`).
    (
        218,
        "PAY_INJECTPAYMENTONION_FAILED",
        ErrorKind::PaymentFailed,
    ),
    (
        219,
        "PAY_INJECTPAYMENTONION_ALREADY_PAID",
        ErrorKind::AlreadyPaid,
    ),
    (
        220,
        "PAY_DESTINATION_INSUFFICIENT_CAPACITY",
        ErrorKind::PaymentFailed,
    ),
    (
        900,
        "INVOICE_LABEL_ALREADY_EXISTS",
        ErrorKind::InvalidRequest,
    ),
    (
        901,
        "INVOICE_PREIMAGE_ALREADY_EXISTS",
        ErrorKind::InvalidRequest,
    ),
    (
        902,
        "INVOICE_HINTS_GAVE_NO_ROUTES",
        ErrorKind::InvalidRequest,
    ),
    (
        903,
        "INVOICE_EXPIRED_DURING_WAIT",
        ErrorKind::InvoiceExpired,
    ),
    (904, "INVOICE_WAIT_TIMED_OUT", ErrorKind::Timeout),
    (905, "INVOICE_NOT_FOUND", ErrorKind::NotFound),
    (906, "INVOICE_STATUS_UNEXPECTED", ErrorKind::InvalidRequest),
    (907, "INVOICE_OFFER_INACTIVE", ErrorKind::InvalidRequest),
    (908, "INVOICE_NO_DESCRIPTION", ErrorKind::InvalidRequest),
    (1501, "RUNE_NOT_AUTHORIZED", ErrorKind::Unauthorized),
    (1502, "RUNE_NOT_PERMITTED", ErrorKind::Unauthorized),
    (1503, "RUNE_BLACKLISTED", ErrorKind::Unauthorized),
    (2000, "WAIT_TIMEOUT", ErrorKind::Timeout),
];

/// The kind for an RPC error code.
pub(crate) fn kind_of_code(code: i64, side: Side) -> ErrorKind {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, _, kind)| *kind)
        .unwrap_or_else(|| fallback(side))
}

/// The kind of an RPC error whose code is generic (-1, -3) or unknown: on the paying side the
/// payment did not happen; on the invoice side the node could not serve the call now (e.g.
/// `Database error`, `Keys exhausted`), which a server answers with 503.
pub(crate) fn fallback(side: Side) -> ErrorKind {
    match side {
        Side::Pay => ErrorKind::PaymentFailed,
        Side::Lookup => ErrorKind::Unavailable,
    }
}

/// The name of a documented code, for error messages.
pub(crate) fn code_name(code: i64) -> Option<&'static str> {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, name, _)| *name)
        .or(match code {
            -1 => Some("LIGHTNINGD"),
            -3 => Some("PLUGIN_ERROR"),
            _ => None,
        })
}

/// Classifies an unsuccessful clnrest answer: the kind and a detail (not yet scrubbed of the
/// rune; the caller does that).
pub(crate) fn classify(status: u16, body: &str, side: Side) -> (ErrorKind, String) {
    let rpc: Option<RpcError> = serde_json::from_str(body).ok();
    let described = match &rpc {
        Some(e) => match e.code {
            Some(code) => match code_name(code) {
                Some(name) => format!("{} (code {code} {name})", e.message),
                None => format!("{} (code {code})", e.message),
            },
            None => e.message.clone(),
        },
        None => l402_backend_http::clip(body).to_owned(),
    };
    let detail = format!("HTTP {status}: {described}");
    let code = rpc.as_ref().and_then(|e| e.code);
    let kind = match (status, code) {
        // clnrest answers 403 without a rune and 401 when `checkrune` refuses it.
        (401 | 403, _) => ErrorKind::Unauthorized,
        // 404 is an unknown RPC method (a plugin not loaded, an old node) or a wrong base URL,
        // never "no such invoice": that is an empty list.
        (404, _) => ErrorKind::Unsupported,
        // 406: clnrest refused our Content-Type or Accept header.
        (406, _) => ErrorKind::Protocol,
        (500, Some(code)) => kind_of_code(code, side),
        // 500 without a code: clnrest itself failed (lightningd's RPC socket unreachable, …).
        (500, None) => ErrorKind::Unavailable,
        // Not clnrest's own answers (a reverse proxy in front of it, say): the usual meanings.
        (408, _) => ErrorKind::Timeout,
        (429 | 501..=599, _) => ErrorKind::Unavailable,
        (400..=499, _) => ErrorKind::InvalidRequest,
        _ => ErrorKind::Protocol,
    };
    (kind, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: i64, message: &str) -> String {
        serde_json::json!({"code": code, "message": message, "data": null}).to_string()
    }

    #[test]
    fn every_documented_pay_code_has_a_permanent_precise_kind() {
        let k = |code| classify(500, &body(code, "x"), Side::Pay).0;
        assert_eq!(k(201), ErrorKind::AlreadyPaid);
        assert_eq!(k(203), ErrorKind::PaymentFailed);
        assert_eq!(k(205), ErrorKind::PaymentFailed);
        assert_eq!(k(206), ErrorKind::PaymentFailed);
        assert_eq!(k(207), ErrorKind::InvoiceExpired);
        assert_eq!(k(209), ErrorKind::PaymentFailed);
        assert_eq!(k(210), ErrorKind::PaymentFailed);
        assert_eq!(k(215), ErrorKind::InsufficientBalance);
        assert_eq!(k(219), ErrorKind::AlreadyPaid);
        for code in [201, 203, 205, 206, 207, 209, 210, 215, 216, 218, 219, 220] {
            assert!(!k(code).is_transient(), "code {code}");
        }
    }

    #[test]
    fn node_trouble_is_transient() {
        let k = |code, side| classify(500, &body(code, "x"), side).0;
        assert_eq!(k(-4, Side::Pay), ErrorKind::Unavailable);
        assert_eq!(k(-5, Side::Lookup), ErrorKind::Unavailable);
        assert_eq!(k(200, Side::Pay), ErrorKind::Unavailable);
        assert_eq!(k(-1, Side::Lookup), ErrorKind::Unavailable);
        assert_eq!(k(-1, Side::Pay), ErrorKind::PaymentFailed);
        assert_eq!(k(-3, Side::Pay), ErrorKind::PaymentFailed);
        assert_eq!(k(12345, Side::Lookup), ErrorKind::Unavailable);
        assert_eq!(k(12345, Side::Pay), ErrorKind::PaymentFailed);
        // No code at all: clnrest could not reach lightningd.
        let (kind, _) = classify(
            500,
            r#"{"code":null,"message":"Could not connect","data":null}"#,
            Side::Lookup,
        );
        assert_eq!(kind, ErrorKind::Unavailable);
        assert_eq!(classify(500, "<html>", Side::Pay).0, ErrorKind::Unavailable);
        assert_eq!(classify(503, "", Side::Pay).0, ErrorKind::Unavailable);
    }

    #[test]
    fn statuses_override_codes() {
        let missing = r#"{"code":1501,"message":"Not authorized: Missing rune","data":null}"#;
        assert_eq!(
            classify(403, missing, Side::Lookup).0,
            ErrorKind::Unauthorized
        );
        let refused = body(1502, "Not permitted: method is not equal to invoice");
        assert_eq!(
            classify(401, &refused, Side::Pay).0,
            ErrorKind::Unauthorized
        );
        let unknown = body(-32601, "Unknown command 'listpays'");
        let (kind, detail) = classify(404, &unknown, Side::Lookup);
        assert_eq!(kind, ErrorKind::Unsupported);
        assert!(detail.contains("Unknown command"), "{detail}");
        assert!(detail.contains("JSONRPC2_METHOD_NOT_FOUND"), "{detail}");
        assert_eq!(
            classify(
                406,
                r#"{"code":null,"message":"Unsupported content-type header: text/plain","data":null}"#,
                Side::Lookup
            )
            .0,
            ErrorKind::Protocol
        );
        assert_eq!(
            classify(400, "bad", Side::Lookup).0,
            ErrorKind::InvalidRequest
        );
    }

    #[test]
    fn invoice_codes() {
        let k = |code| classify(500, &body(code, "x"), Side::Lookup).0;
        assert_eq!(k(-32602), ErrorKind::InvalidRequest);
        assert_eq!(k(900), ErrorKind::InvalidRequest);
        assert_eq!(k(901), ErrorKind::InvalidRequest);
        assert_eq!(k(905), ErrorKind::NotFound);
        assert_eq!(k(904), ErrorKind::Timeout);
    }

    #[test]
    fn detail_names_the_code() {
        let (_, detail) = classify(500, &body(205, "Could not find a route"), Side::Pay);
        assert_eq!(
            detail,
            "HTTP 500: Could not find a route (code 205 PAY_ROUTE_NOT_FOUND)"
        );
        let (_, detail) = classify(500, &body(-1, "Database error"), Side::Lookup);
        assert_eq!(detail, "HTTP 500: Database error (code -1 LIGHTNINGD)");
    }

    #[test]
    fn codes_are_unique() {
        for (i, (a, _, _)) in CODES.iter().enumerate() {
            assert!(
                CODES[i + 1..].iter().all(|(b, _, _)| a != b),
                "code {a} twice"
            );
        }
    }
}
