//! phoenixd's HTTP API as this adapter uses it: form requests, JSON answers, plain-text errors,
//! and the free-text payment failure reasons.
//!
//! Answers are pretty-printed JSON with `null` fields left out (kotlinx `explicitNulls=false`),
//! so every optional field is `Option` here. Amounts ending in `Sat` are whole satoshis; `fees`
//! is millisatoshis; times are milliseconds since the epoch.

use l402::ErrorKind;
use serde::Deserialize;

/// `POST /createinvoice` → `GeneratedInvoice`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GeneratedInvoice {
    /// Absent for an amountless invoice.
    #[serde(default)]
    pub(crate) amount_sat: Option<u64>,
    pub(crate) payment_hash: String,
    pub(crate) serialized: String,
}

/// `GET /payments/incoming/{paymentHash}` → `IncomingPayment` (`"type":"incoming_payment"`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IncomingPayment {
    pub(crate) is_paid: bool,
    /// Computed by the server from now; only from v0.6.1.
    #[serde(default)]
    pub(crate) is_expired: Option<bool>,
    /// Milliseconds; only from v0.6.1.
    #[serde(default)]
    pub(crate) expires_at: Option<u64>,
    /// The BOLT11 string (absent for BOLT12 payments).
    #[serde(default)]
    pub(crate) invoice: Option<String>,
}

/// `POST /payinvoice`: `PaymentSent` or `PaymentFailed`, both HTTP 200. Only `paymentPreimage`
/// tells them apart.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayAnswer {
    #[serde(default)]
    pub(crate) payment_hash: Option<String>,
    #[serde(default)]
    pub(crate) payment_preimage: Option<String>,
    #[serde(default)]
    pub(crate) routing_fee_sat: Option<u64>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// `GET /payments/outgoingbyhash/{paymentHash}` → `OutgoingPayment` (the succeeded one first,
/// then a pending one, then a failed one).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutgoingPayment {
    #[serde(default)]
    pub(crate) payment_hash: Option<String>,
    #[serde(default)]
    pub(crate) preimage: Option<String>,
    pub(crate) is_paid: bool,
    /// Whole satoshis, fees included (truncated).
    pub(crate) sent: u64,
    /// Millisatoshis.
    pub(crate) fees: u64,
    #[serde(default)]
    pub(crate) invoice: Option<String>,
    /// Set once the payment has succeeded or failed; absent while it is pending.
    #[serde(default)]
    pub(crate) completed_at: Option<u64>,
}

/// The lookup-miss body: phoenixd turns "no such payment" (204) into 404 with this text.
pub(crate) const NOT_FOUND_BODY: &str = "Not found";

/// lightning-kmp's `FinalFailure` texts (its `toString()`, which phoenixd returns as `reason`)
/// that deserve a kind other than [`ErrorKind::PaymentFailed`]. Matched case-insensitively as
/// substrings; anything else (including part-level failures phoenixd may explain instead) is
/// `PaymentFailed`.
pub(crate) const REASONS: &[(&str, ErrorKind)] = &[
    (
        "not enough funds in wallet to afford payment",
        ErrorKind::InsufficientBalance,
    ),
    ("this invoice has already been paid", ErrorKind::AlreadyPaid),
    // Nothing was sent; the node says to retry once its channel is up.
    (
        "channel is not connected yet, please retry when connected",
        ErrorKind::Unavailable,
    ),
    (
        "channel creation is in progress, please retry when ready",
        ErrorKind::Unavailable,
    ),
    ("payment amount must be positive", ErrorKind::InvalidRequest),
    (
        "payment request features not supported",
        ErrorKind::InvalidRequest,
    ),
];

/// The kind of a failed payment's `reason`.
pub(crate) fn kind_of_reason(reason: &str) -> ErrorKind {
    let reason = reason.to_ascii_lowercase();
    REASONS
        .iter()
        .find(|(text, _)| reason.contains(text))
        .map(|(_, kind)| *kind)
        .unwrap_or(ErrorKind::PaymentFailed)
}

/// The kind of an unsuccessful HTTP answer. `body` is phoenixd's plain-text message.
pub(crate) fn kind_of_status(status: u16, body: &str) -> ErrorKind {
    match status {
        // Wrong or missing password, or the limited password on a paying endpoint.
        401 | 403 => ErrorKind::Unauthorized,
        404 if body.trim() == NOT_FOUND_BODY => ErrorKind::NotFound,
        // "Unknown endpoint (check api doc)" / "Invalid http method": not phoenixd, or too old.
        404 | 405 => ErrorKind::Unsupported,
        400 => ErrorKind::InvalidRequest,
        408 => ErrorKind::Timeout,
        // 500 is "anything else thrown" (e.g. the node not ready yet).
        429 | 500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_to_kinds() {
        assert_eq!(
            kind_of_reason("not enough funds in wallet to afford payment"),
            ErrorKind::InsufficientBalance
        );
        assert_eq!(
            kind_of_reason("This invoice has already been paid"),
            ErrorKind::AlreadyPaid
        );
        assert_eq!(
            kind_of_reason("channel is not connected yet, please retry when connected"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind_of_reason(
                "the recipient was offline or did not have enough liquidity to receive the payment"
            ),
            ErrorKind::PaymentFailed
        );
        assert_eq!(
            kind_of_reason("payment attempts exhausted without success"),
            ErrorKind::PaymentFailed
        );
        assert_eq!(kind_of_reason(""), ErrorKind::PaymentFailed);
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(
            kind_of_status(
                401,
                "Invalid authentication (use basic auth with the http password set in phoenix.conf)"
            ),
            ErrorKind::Unauthorized
        );
        assert_eq!(kind_of_status(404, "Not found"), ErrorKind::NotFound);
        assert_eq!(kind_of_status(404, "Not found\n"), ErrorKind::NotFound);
        assert_eq!(
            kind_of_status(404, "Unknown endpoint (check api doc)"),
            ErrorKind::Unsupported
        );
        assert_eq!(
            kind_of_status(405, "Invalid http method (use the correct GET/POST)"),
            ErrorKind::Unsupported
        );
        assert_eq!(
            kind_of_status(400, "Request parameter amountSat is missing"),
            ErrorKind::InvalidRequest
        );
        assert_eq!(kind_of_status(500, "boom"), ErrorKind::Unavailable);
        assert!(kind_of_status(503, "").is_transient());
        assert_eq!(kind_of_status(302, ""), ErrorKind::Protocol);
    }

    #[test]
    fn answers_parse_with_absent_fields() {
        // v0.5.x: no isExpired, no expiresAt.
        let old: IncomingPayment = serde_json::from_str(
            r#"{"type":"incoming_payment","subType":"lightning","paymentHash":"00","preimage":"00",
                "description":"d","invoice":"lnbcrt1","isPaid":false,"receivedSat":0,"fees":0,
                "createdAt":1}"#,
        )
        .unwrap();
        assert!(old.is_expired.is_none() && old.expires_at.is_none());
        let failed: PayAnswer =
            serde_json::from_str(r#"{"paymentHash":"ab","reason":"no"}"#).unwrap();
        assert!(failed.payment_preimage.is_none());
        let pending: OutgoingPayment = serde_json::from_str(
            r#"{"type":"outgoing_payment","subType":"lightning","paymentId":"u","paymentHash":"ab",
                "isPaid":false,"sent":0,"fees":0,"createdAt":1}"#,
        )
        .unwrap();
        assert!(pending.completed_at.is_none() && pending.preimage.is_none());
    }
}
