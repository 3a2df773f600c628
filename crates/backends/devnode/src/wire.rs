//! The dev node's HTTP API: JSON bodies and the error envelope, shared by server and client.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `GET` | `/v1/info` | | `{"node_id", "network"}` |
//! | `GET` | `/v1/wallets/{wallet}` | | `{"name", "balance_msat"}` |
//! | `POST` | `/v1/wallets/{wallet}/invoices` | `{"amount_msat", "memo", "expiry_secs"}` | `{"bolt11", "payment_hash"}` |
//! | `GET` | `/v1/wallets/{wallet}/invoices/{hash}` | | `{"state": "open"\|"settled"\|"cancelled"\|"expired"}` |
//! | `POST` | `/v1/wallets/{wallet}/payments` | `{"bolt11", "max_fee_msat"}` | `{"preimage", "amount_msat", "fee_msat"}` |
//! | `GET` | `/v1/wallets/{wallet}/payments/{hash}` | | `{"state": "succeeded"\|"not_found", "preimage"?, "amount_msat"?, "fee_msat"?}` |
//!
//! Errors: an HTTP status and `{"error": {"kind": "<kind>", "message": "…"}}`, where `kind` is the
//! snake-case [`ErrorKind`] so the client reproduces the exact kind.

use l402::ErrorKind;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(crate) struct CreateInvoice {
    pub(crate) amount_msat: u64,
    #[serde(default)]
    pub(crate) memo: String,
    #[serde(default = "default_expiry")]
    pub(crate) expiry_secs: u64,
}

fn default_expiry() -> u64 {
    3600
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Invoice {
    pub(crate) bolt11: String,
    pub(crate) payment_hash: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) state: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Pay {
    pub(crate) bolt11: String,
    #[serde(default)]
    pub(crate) max_fee_msat: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Payment {
    pub(crate) state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preimage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) amount_msat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fee_msat: Option<u64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Wallet {
    pub(crate) name: String,
    pub(crate) balance_msat: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Info {
    pub(crate) node_id: String,
    pub(crate) network: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ErrorDetail {
    pub(crate) kind: String,
    pub(crate) message: String,
}

const KINDS: [(ErrorKind, &str, u16); 12] = [
    (ErrorKind::Unreachable, "unreachable", 502),
    (ErrorKind::Timeout, "timeout", 504),
    (ErrorKind::Unavailable, "unavailable", 503),
    (ErrorKind::Unauthorized, "unauthorized", 401),
    (ErrorKind::NotFound, "not_found", 404),
    (ErrorKind::AlreadyPaid, "already_paid", 409),
    (ErrorKind::InvoiceExpired, "invoice_expired", 410),
    (ErrorKind::InsufficientBalance, "insufficient_balance", 402),
    (ErrorKind::PaymentFailed, "payment_failed", 422),
    (ErrorKind::InvalidRequest, "invalid_request", 400),
    (ErrorKind::Unsupported, "unsupported", 501),
    (ErrorKind::Protocol, "protocol", 500),
];

/// The wire name and HTTP status of a kind.
pub(crate) fn kind_to_wire(kind: ErrorKind) -> (&'static str, u16) {
    KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, name, status)| (*name, *status))
        .unwrap_or(("protocol", 500))
}

/// The kind named on the wire.
pub(crate) fn kind_from_wire(name: &str) -> Option<ErrorKind> {
    KINDS
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(k, _, _)| *k)
}
