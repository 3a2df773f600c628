//! LNbits' error answers as [`BackendError`]s.
//!
//! LNbits has no machine-readable error codes: its errors are `{"detail": "<text>"}` (a list of
//! field errors for request validation), plus `"status"` on its 520 payment/invoice errors. So
//! [`error_for`] matches the texts of LNbits 1.6.2 (`lnbits/core/services/payments.py`,
//! `lnbits/decorators.py`) and falls back to the `status` field and the HTTP status for texts it
//! does not know.

use l402::{BackendError, ErrorKind};
use l402_backend_http::{clip, protocol_error, reqwest::StatusCode, status_error};
use serde::Deserialize;

use crate::NAME;

/// LNbits' error body: `{"detail": "text"}` or, for validation errors, `{"detail": [{"loc":
/// [...], "msg": "..."}]}`; its 520 errors add `"status"`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    detail: serde_json::Value,
    #[serde(default)]
    status: Option<String>,
}

/// Which kind of call failed: the same LNbits text can mean different things for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Creating an invoice.
    Create,
    /// Paying an invoice.
    Pay,
    /// `GET /api/v1/payments/<hash>` or `GET /api/v1/wallet`.
    Read,
}

/// Maps an unsuccessful answer to an error, by LNbits' `detail` text where it has a known meaning.
pub(crate) fn error_for(
    op: Op,
    call: &'static str,
    status: StatusCode,
    body: &str,
) -> BackendError {
    let Ok(err) = serde_json::from_str::<ErrorBody>(body) else {
        // Not LNbits' error shape (a reverse proxy's page, say): the generic mapping, except that
        // a 404 must never read as "no such payment".
        if status == StatusCode::NOT_FOUND {
            return no_api(call, body);
        }
        return status_error(NAME, call, status, body);
    };
    let detail = detail_text(&err.detail);
    let new = |kind: ErrorKind, text: String| BackendError::new(kind, NAME, call, text);
    let said = format!("LNbits: {}", clip(&detail));
    match status.as_u16() {
        401 => new(ErrorKind::Unauthorized, said),
        403 if detail == "Invoice (or Admin) key required." => new(
            ErrorKind::Unauthorized,
            format!(
                "paying needs the wallet's admin key, but this URI holds its invoice key ({said})"
            ),
        ),
        403 => new(ErrorKind::Unauthorized, said),
        404 if detail == "Wallet not found." => new(
            ErrorKind::Unauthorized,
            format!("LNbits knows no wallet with this API key ({said})"),
        ),
        404 if detail == "Payment does not exist." => new(ErrorKind::NotFound, said),
        404 => no_api(call, &detail),
        400 | 422 => new(ErrorKind::InvalidRequest, said),
        520 => new(kind_520(op, &detail, err.status.as_deref()), said),
        _ => status_error(NAME, call, status, &detail),
    }
}

/// LNbits answers 520 for its `PaymentError` / `InvoiceError`, with the texts below (1.6.2).
fn kind_520(op: Op, detail: &str, status: Option<&str>) -> ErrorKind {
    match detail {
        "Insufficient balance." => return ErrorKind::InsufficientBalance,
        "Internal invoice already paid."
        | "Payment already paid."
        | "Failed payment was already paid on the fundingsource."
        | "Payment is still pending." => return ErrorKind::AlreadyPaid,
        "Bolt11 decoding failed." | "Amountless invoices not supported." => {
            return ErrorKind::InvalidRequest;
        }
        "Invalid invoice. Bolt11 changed."
        | "Payment is failed node, retrying is not possible." => {
            return ErrorKind::PaymentFailed;
        }
        _ => {}
    }
    if detail.starts_with("You must reserve at least") {
        ErrorKind::InsufficientBalance
    } else if detail.starts_with("Payment failed:") {
        ErrorKind::PaymentFailed
    } else if detail.starts_with("Wallet does not have permission") {
        ErrorKind::Unauthorized
    } else if detail.starts_with("The time limit of") {
        // A rate limit between payments.
        ErrorKind::Unavailable
    } else if detail.contains("is too high. Max allowed")
        || detail.starts_with("Wallet balance cannot exceed")
    {
        // Over the instance's limits: the invoice is refused when issuing, the payment when paying.
        match op {
            Op::Pay => ErrorKind::PaymentFailed,
            _ => ErrorKind::InvalidRequest,
        }
    } else {
        // Unknown text: trust the status LNbits gives the error.
        match (op, status) {
            (Op::Pay, Some("failed")) => ErrorKind::PaymentFailed,
            (Op::Pay, Some("success")) => ErrorKind::AlreadyPaid,
            (Op::Create, Some("failed")) => ErrorKind::InvalidRequest,
            // `pending` (the default) or nothing: e.g. the funding source did not answer.
            _ => ErrorKind::Unavailable,
        }
    }
}

fn no_api(call: &'static str, detail: &str) -> BackendError {
    protocol_error(
        NAME,
        call,
        format!(
            "no LNbits API answered at this address (HTTP 404: {}); check the host, port and path prefix",
            clip(detail)
        ),
    )
}

/// The `detail` as one line: a string, or FastAPI's validation list as `field: message; …`.
fn detail_text(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| {
                let field = item
                    .get("loc")
                    .and_then(|l| l.as_array())
                    .and_then(|l| l.last())
                    .map(|f| f.to_string().trim_matches('"').to_owned());
                let msg = item
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .unwrap_or("invalid");
                match field {
                    Some(f) => format!("{f}: {msg}"),
                    None => msg.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../tests/fixtures/", $name, ".json"))
        };
    }

    fn kind(op: Op, status: u16, body: &str) -> ErrorKind {
        error_for(op, "call", StatusCode::from_u16(status).unwrap(), body).kind()
    }

    #[test]
    fn recorded_errors_map_to_kinds() {
        use ErrorKind::*;
        assert_eq!(kind(Op::Pay, 520, fixture!("pay_twice_520")), AlreadyPaid);
        assert_eq!(
            kind(Op::Pay, 520, fixture!("pay_insufficient_520")),
            InsufficientBalance
        );
        assert_eq!(
            kind(Op::Pay, 520, fixture!("pay_garbage_520")),
            InvalidRequest
        );
        assert_eq!(
            kind(Op::Pay, 520, fixture!("pay_foreign_invoice_520")),
            PaymentFailed
        );
        assert_eq!(
            kind(Op::Pay, 403, fixture!("pay_with_invoice_key_403")),
            Unauthorized
        );
        assert_eq!(
            kind(Op::Pay, 404, fixture!("pay_wrong_key_404")),
            Unauthorized
        );
        assert_eq!(
            kind(Op::Read, 404, fixture!("wallet_wrong_key_404")),
            Unauthorized
        );
        assert_eq!(
            kind(Op::Read, 404, fixture!("lookup_unknown_404")),
            NotFound
        );
        assert_eq!(
            kind(Op::Create, 520, fixture!("create_zero_520")),
            InvalidRequest
        );
        assert_eq!(
            kind(Op::Create, 520, fixture!("create_too_high_520")),
            InvalidRequest
        );
        assert_eq!(
            kind(Op::Pay, 520, fixture!("create_too_high_520")),
            PaymentFailed
        );
        assert_eq!(
            kind(Op::Create, 400, fixture!("create_memo_too_long_400")),
            InvalidRequest
        );
        // A 404 that is not LNbits' "no such payment" (wrong path prefix) is never NotFound.
        assert_eq!(kind(Op::Read, 404, fixture!("wrong_prefix_404")), Protocol);
        assert_eq!(kind(Op::Read, 404, "<html>nginx 404</html>"), Protocol);
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let e = error_for(
            Op::Pay,
            "pay",
            StatusCode::FORBIDDEN,
            fixture!("pay_with_invoice_key_403"),
        );
        assert!(e.to_string().contains("admin key"), "{e}");
        let e = error_for(
            Op::Create,
            "create invoice",
            StatusCode::BAD_REQUEST,
            fixture!("create_memo_too_long_400"),
        );
        assert!(
            e.to_string()
                .contains("memo: ensure this value has at most 640 characters"),
            "{e}"
        );
        let e = error_for(
            Op::Read,
            "lookup",
            StatusCode::NOT_FOUND,
            fixture!("wrong_prefix_404"),
        );
        assert!(e.to_string().contains("path prefix"), "{e}");
    }

    #[test]
    fn unknown_520_texts_follow_the_status_field() {
        use ErrorKind::*;
        let body = |status: &str| format!(r#"{{"detail":"Something new.","status":"{status}"}}"#);
        assert_eq!(kind(Op::Pay, 520, &body("failed")), PaymentFailed);
        assert_eq!(kind(Op::Pay, 520, &body("success")), AlreadyPaid);
        assert_eq!(kind(Op::Pay, 520, &body("pending")), Unavailable);
        assert_eq!(kind(Op::Create, 520, &body("pending")), Unavailable);
        assert_eq!(kind(Op::Create, 520, &body("failed")), InvalidRequest);
        assert_eq!(
            kind(
                Op::Pay,
                520,
                r#"{"detail":"You must reserve at least (2  sat) to cover potential routing fees.","status":"failed"}"#
            ),
            InsufficientBalance
        );
        assert_eq!(
            kind(
                Op::Pay,
                520,
                r#"{"detail":"The time limit of 10 seconds between payments has been reached.","status":"failed"}"#
            ),
            Unavailable
        );
        assert!(kind(Op::Read, 500, r#"{"detail":"Unexpected error! ID: x"}"#).is_transient());
        assert!(kind(Op::Read, 502, "bad gateway").is_transient());
    }
}
