//! The NIP-47 wire format: encryption schemes, the info event, the JSON request and response
//! envelopes, error codes and the transaction object.
//!
//! Both ends use these types: the client serialises requests and parses responses leniently (wallets
//! differ), the service does the opposite.

use std::fmt;
use std::str::FromStr;

use l402::ErrorKind;
use nostr::error::Error as NostrError;
use nostr::event::Event;
use nostr::key::{PublicKey, SecretKey};
use nostr::nips::{nip04, nip44};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The NIP-47 methods this crate speaks.
pub(crate) const MAKE_INVOICE: &str = "make_invoice";
pub(crate) const LOOKUP_INVOICE: &str = "lookup_invoice";
pub(crate) const PAY_INVOICE: &str = "pay_invoice";
pub(crate) const GET_INFO: &str = "get_info";

/// Name of the tag that carries the encryption scheme (info event: the list; request: the choice).
pub(crate) const ENCRYPTION_TAG: &str = "encryption";

// === encryption ===

/// A payload encryption scheme of NIP-47.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// NIP-04: AES-256-CBC, `<base64>?iv=<base64>`. The legacy default: a request without an
    /// `encryption` tag uses it.
    Nip04,
    /// NIP-44 version 2: ChaCha20 + HMAC-SHA256, padded. Preferred when the wallet offers it.
    Nip44V2,
}

impl Encryption {
    /// The name used in `encryption` tags: `nip04` or `nip44_v2`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encryption::Nip04 => "nip04",
            Encryption::Nip44V2 => "nip44_v2",
        }
    }

    /// Parses a tag value (`nip04`, `nip44_v2`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "nip04" => Some(Encryption::Nip04),
            "nip44_v2" => Some(Encryption::Nip44V2),
            _ => None,
        }
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encrypts `plaintext` from `secret` to `peer` with `scheme`.
pub(crate) fn encrypt(
    scheme: Encryption,
    secret: &SecretKey,
    peer: &PublicKey,
    plaintext: &str,
) -> Result<String, NostrError> {
    match scheme {
        Encryption::Nip04 => nip04::encrypt(secret, peer, plaintext),
        Encryption::Nip44V2 => nip44::encrypt(secret, peer, plaintext, nip44::Version::V2),
    }
}

/// Decrypts a payload from `peer`, telling the scheme by its shape (NIP-04 payloads end in
/// `?iv=<base64>`; NIP-44 payloads are one base64 string).
pub(crate) fn decrypt(
    secret: &SecretKey,
    peer: &PublicKey,
    content: &str,
) -> Result<(Encryption, String), NostrError> {
    let scheme = scheme_of(content);
    let out = match scheme {
        Encryption::Nip04 => nip04::decrypt(secret, peer, content),
        Encryption::Nip44V2 => nip44::decrypt(secret, peer, content),
    };
    out.map(|p| (scheme, p))
}

/// The scheme a payload is encrypted with, by its shape.
pub(crate) fn scheme_of(content: &str) -> Encryption {
    if content.contains("?iv=") {
        Encryption::Nip04
    } else {
        Encryption::Nip44V2
    }
}

/// The scheme a request event declares: its `encryption` tag, NIP-04 when there is none. `Err`
/// carries an unknown tag value.
pub(crate) fn declared_scheme(event: &Event) -> Result<Encryption, String> {
    match tag_values(event, ENCRYPTION_TAG).next() {
        None => Ok(Encryption::Nip04),
        Some(v) => Encryption::parse(v.trim()).ok_or_else(|| v.to_owned()),
    }
}

/// The values (second elements) of every tag named `name`.
pub(crate) fn tag_values<'a>(event: &'a Event, name: &'a str) -> impl Iterator<Item = &'a str> {
    event.tags.iter().filter_map(move |t| {
        let s = t.as_slice();
        (s.first().map(String::as_str) == Some(name))
            .then(|| s.get(1).map(String::as_str))
            .flatten()
    })
}

// === the info event ===

/// What a wallet service announces in its info event (kind 13194).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WalletInfo {
    /// Supported methods (and `notifications`).
    pub(crate) capabilities: Vec<String>,
    /// Supported encryption schemes, in the wallet's order.
    pub(crate) encryptions: Vec<Encryption>,
}

impl WalletInfo {
    /// Reads an info event.
    ///
    /// * Capabilities are separated by spaces **or commas** (early Alby releases used commas).
    /// * No `encryption` tag means the wallet predates the tag and speaks NIP-04 only, as NIP-47
    ///   says. As a quirk seen in `@getalby/sdk`, a legacy `["v", "… 1.0 …"]` tag also means
    ///   NIP-44 v2 is understood.
    pub(crate) fn from_event(event: &Event) -> Self {
        let capabilities = event
            .content
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut encryptions = Vec::new();
        let mut tagged = false;
        for value in tag_values(event, ENCRYPTION_TAG) {
            tagged = true;
            for name in value.split_whitespace() {
                if let Some(e) = Encryption::parse(name)
                    && !encryptions.contains(&e)
                {
                    encryptions.push(e);
                }
            }
        }
        if !tagged {
            if tag_values(event, "v").any(|v| v.split_whitespace().any(|x| x == "1.0")) {
                encryptions.push(Encryption::Nip44V2);
            }
            encryptions.push(Encryption::Nip04);
        }
        WalletInfo {
            capabilities,
            encryptions,
        }
    }

    /// The scheme to use: NIP-44 v2 when offered, else NIP-04; `None` when the wallet offers
    /// neither.
    pub(crate) fn choose(&self) -> Option<Encryption> {
        [Encryption::Nip44V2, Encryption::Nip04]
            .into_iter()
            .find(|e| self.encryptions.contains(e))
    }

    /// Whether the wallet lists `method`.
    pub(crate) fn supports(&self, method: &str) -> bool {
        self.capabilities.iter().any(|c| c == method)
    }
}

// === envelopes ===

/// The decrypted content of a request (kind 23194).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) method: String,
    #[serde(default)]
    pub(crate) params: Value,
}

/// The decrypted content of a response (kind 23195).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) result_type: String,
    // Serialised as `null` on success, as NIP-47 asks ("the error field must be null").
    #[serde(default)]
    pub(crate) error: Option<WireError>,
    #[serde(default)]
    pub(crate) result: Option<Value>,
}

impl Response {
    /// A successful response.
    pub(crate) fn ok(method: &str, result: impl Serialize) -> Self {
        Response {
            result_type: method.to_owned(),
            error: None,
            result: Some(serde_json::to_value(result).unwrap_or(Value::Null)),
        }
    }

    /// An error response.
    pub(crate) fn err(method: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        Response {
            result_type: method.to_owned(),
            error: Some(WireError {
                code: code.as_str().to_owned(),
                message: message.into(),
            }),
            result: None,
        }
    }
}

/// The `error` object of a response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WireError {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// A NIP-47 error code. Unknown codes are kept (a wallet may be newer than this crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    InsufficientBalance,
    Internal,
    NotFound,
    NotImplemented,
    Other,
    PaymentFailed,
    QuotaExceeded,
    RateLimited,
    Restricted,
    Unauthorized,
    UnsupportedEncryption,
    Unknown(String),
}

impl ErrorCode {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "INSUFFICIENT_BALANCE" => ErrorCode::InsufficientBalance,
            "INTERNAL" => ErrorCode::Internal,
            "NOT_FOUND" => ErrorCode::NotFound,
            "NOT_IMPLEMENTED" => ErrorCode::NotImplemented,
            "OTHER" => ErrorCode::Other,
            "PAYMENT_FAILED" => ErrorCode::PaymentFailed,
            "QUOTA_EXCEEDED" => ErrorCode::QuotaExceeded,
            "RATE_LIMITED" => ErrorCode::RateLimited,
            "RESTRICTED" => ErrorCode::Restricted,
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "UNSUPPORTED_ENCRYPTION" => ErrorCode::UnsupportedEncryption,
            other => ErrorCode::Unknown(other.to_owned()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            ErrorCode::InsufficientBalance => "INSUFFICIENT_BALANCE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::Other => "OTHER",
            ErrorCode::PaymentFailed => "PAYMENT_FAILED",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Restricted => "RESTRICTED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::UnsupportedEncryption => "UNSUPPORTED_ENCRYPTION",
            ErrorCode::Unknown(s) => s,
        }
    }

    /// The [`ErrorKind`] a client reports for this code in answer to `method`.
    ///
    /// * `RATE_LIMITED` and `INTERNAL` are transient (`Unavailable`): NIP-47 says to retry a rate
    ///   limit in a few seconds, and wallets use `INTERNAL` when their node or database hiccups.
    /// * `QUOTA_EXCEEDED` (the connection's spending budget) is `InsufficientBalance`: to this
    ///   connection, the money is not there.
    /// * `OTHER` is what wallets answer when no code fits. For `pay_invoice` that is nearly
    ///   always a failed payment (`PaymentFailed`); elsewhere a refused request
    ///   (`InvalidRequest`).
    /// * An unknown code is `Protocol`.
    pub(crate) fn kind(&self, method: &str) -> ErrorKind {
        match self {
            ErrorCode::RateLimited | ErrorCode::Internal => ErrorKind::Unavailable,
            ErrorCode::InsufficientBalance | ErrorCode::QuotaExceeded => {
                ErrorKind::InsufficientBalance
            }
            ErrorCode::Restricted | ErrorCode::Unauthorized => ErrorKind::Unauthorized,
            ErrorCode::PaymentFailed => ErrorKind::PaymentFailed,
            ErrorCode::NotFound => ErrorKind::NotFound,
            ErrorCode::NotImplemented | ErrorCode::UnsupportedEncryption => ErrorKind::Unsupported,
            ErrorCode::Other if method == PAY_INVOICE => ErrorKind::PaymentFailed,
            ErrorCode::Other => ErrorKind::InvalidRequest,
            ErrorCode::Unknown(_) => ErrorKind::Protocol,
        }
    }

    /// The code a wallet service answers for a backend error of `kind`.
    pub(crate) fn for_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Unreachable | ErrorKind::Timeout | ErrorKind::Unavailable => {
                ErrorCode::Internal
            }
            ErrorKind::Unauthorized => ErrorCode::Unauthorized,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::InsufficientBalance => ErrorCode::InsufficientBalance,
            // NIP-47 has no codes for these; they are all "this payment did not happen".
            ErrorKind::AlreadyPaid | ErrorKind::InvoiceExpired | ErrorKind::PaymentFailed => {
                ErrorCode::PaymentFailed
            }
            ErrorKind::Unsupported => ErrorCode::NotImplemented,
            _ => ErrorCode::Other,
        }
    }
}

// === method parameters and results ===

/// `make_invoice` parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MakeInvoice {
    #[serde(deserialize_with = "de_msat")]
    pub(crate) amount: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expiry: Option<u64>,
}

/// `lookup_invoice` parameters (one of the two).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct LookupInvoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) payment_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) invoice: Option<String>,
}

/// `pay_invoice` parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PayInvoice {
    pub(crate) invoice: String,
    #[serde(
        default,
        deserialize_with = "de_opt_msat",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) amount: Option<u64>,
}

/// `pay_invoice` result. The preimage is required by NIP-47, but some wallets leave it out.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PayResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preimage: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_opt_msat",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) fees_paid: Option<u64>,
}

/// The transaction object of `make_invoice` and `lookup_invoice` results. Everything is optional
/// when reading: wallets differ, and `state` only entered the spec in 2025.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Transaction {
    /// `incoming` (an invoice) or `outgoing` (a payment).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) direction: Option<String>,
    /// `pending`, `settled`, `accepted`, `expired` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) invoice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preimage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) payment_hash: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_opt_msat",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) amount: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_opt_msat",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) fees_paid: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_opt_msat",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) created_at: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_opt_msat",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) expires_at: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_opt_msat",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) settled_at: Option<u64>,
}

/// `get_info` result (the fields a port-backed service can fill).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct InfoResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) network: Option<String>,
    #[serde(default)]
    pub(crate) methods: Vec<String>,
    #[serde(default)]
    pub(crate) notifications: Vec<String>,
}

/// A non-negative whole number. Accepts integral floats (`21000.0`) too, which some JavaScript
/// wallets emit.
fn de_msat<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    number(&v).ok_or_else(|| serde::de::Error::custom(format!("not a whole amount: {v}")))
}

fn de_opt_msat<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => number(&v)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a whole number: {v}"))),
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        // A few wallets quote big numbers.
        Value::String(s) => u64::from_str(s.trim()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nostr::event::{EventBuilder, FinalizeEvent, Kind, Tag};
    use nostr::key::Keys;

    fn info(content: &str, tags: Vec<Tag>) -> Event {
        EventBuilder::new(Kind::WalletConnectInfo, content)
            .tags(tags)
            .finalize(&Keys::generate())
            .unwrap()
    }

    #[test]
    fn negotiation_follows_the_info_event() {
        // Both offered: NIP-44 v2 wins, whatever the order.
        let i = WalletInfo::from_event(&info(
            "pay_invoice make_invoice",
            vec![Tag::custom("encryption", ["nip04 nip44_v2"])],
        ));
        assert_eq!(i.choose(), Some(Encryption::Nip44V2));
        assert!(i.supports("make_invoice") && !i.supports("lookup_invoice"));
        // NIP-04 only.
        let i = WalletInfo::from_event(&info("", vec![Tag::custom("encryption", ["nip04"])]));
        assert_eq!(i.choose(), Some(Encryption::Nip04));
        // No tag: a wallet from before the tag, NIP-04 only.
        let i = WalletInfo::from_event(&info("pay_invoice,get_balance", vec![]));
        assert_eq!(i.choose(), Some(Encryption::Nip04));
        assert_eq!(
            i.capabilities,
            ["pay_invoice", "get_balance"],
            "commas split"
        );
        // Legacy Alby `v` tag.
        let i = WalletInfo::from_event(&info("", vec![Tag::custom("v", ["1.0 0.0"])]));
        assert_eq!(i.choose(), Some(Encryption::Nip44V2));
        // Only schemes we do not know: nothing in common.
        let i = WalletInfo::from_event(&info("", vec![Tag::custom("encryption", ["nip99"])]));
        assert_eq!(i.choose(), None);
    }

    #[test]
    fn both_ciphers_round_trip_and_are_told_apart() {
        let a = Keys::generate();
        let b = Keys::generate();
        for scheme in [Encryption::Nip04, Encryption::Nip44V2] {
            let c = encrypt(scheme, a.secret_key(), &b.public_key(), "{\"x\":1}").unwrap();
            assert_eq!(scheme_of(&c), scheme, "{c}");
            let (got, plain) = decrypt(b.secret_key(), &a.public_key(), &c).unwrap();
            assert_eq!((got, plain.as_str()), (scheme, "{\"x\":1}"));
            // A third key cannot read it.
            let eve = Keys::generate();
            assert!(
                decrypt(eve.secret_key(), &a.public_key(), &c)
                    .map(|(_, p)| p != "{\"x\":1}")
                    .unwrap_or(true)
            );
        }
    }

    #[test]
    fn error_codes_map_to_kinds() {
        let k = |c: &str, m: &str| ErrorCode::parse(c).kind(m);
        assert_eq!(k("RATE_LIMITED", MAKE_INVOICE), ErrorKind::Unavailable);
        assert_eq!(k("INTERNAL", MAKE_INVOICE), ErrorKind::Unavailable);
        assert!(k("INTERNAL", PAY_INVOICE).is_transient());
        assert_eq!(
            k("INSUFFICIENT_BALANCE", PAY_INVOICE),
            ErrorKind::InsufficientBalance
        );
        assert_eq!(
            k("QUOTA_EXCEEDED", PAY_INVOICE),
            ErrorKind::InsufficientBalance
        );
        assert_eq!(k("RESTRICTED", PAY_INVOICE), ErrorKind::Unauthorized);
        assert_eq!(k("UNAUTHORIZED", LOOKUP_INVOICE), ErrorKind::Unauthorized);
        assert_eq!(k("PAYMENT_FAILED", PAY_INVOICE), ErrorKind::PaymentFailed);
        assert_eq!(k("NOT_FOUND", LOOKUP_INVOICE), ErrorKind::NotFound);
        assert_eq!(k("NOT_IMPLEMENTED", LOOKUP_INVOICE), ErrorKind::Unsupported);
        assert_eq!(
            k("UNSUPPORTED_ENCRYPTION", MAKE_INVOICE),
            ErrorKind::Unsupported
        );
        assert_eq!(k("OTHER", PAY_INVOICE), ErrorKind::PaymentFailed);
        assert_eq!(k("OTHER", MAKE_INVOICE), ErrorKind::InvalidRequest);
        assert_eq!(k("SOMETHING_NEW", MAKE_INVOICE), ErrorKind::Protocol);
        for c in [
            "INSUFFICIENT_BALANCE",
            "INTERNAL",
            "NOT_FOUND",
            "NOT_IMPLEMENTED",
            "OTHER",
            "PAYMENT_FAILED",
            "QUOTA_EXCEEDED",
            "RATE_LIMITED",
            "RESTRICTED",
            "UNAUTHORIZED",
            "UNSUPPORTED_ENCRYPTION",
            "X_NEW",
        ] {
            assert_eq!(ErrorCode::parse(c).as_str(), c);
        }
    }

    #[test]
    fn service_codes_round_trip_to_the_same_kind() {
        // What the service sends for a backend error, the client reads back as the same kind
        // (or, where NIP-47 has no code, as a kind with the same retry meaning).
        for (kind, method, back) in [
            (ErrorKind::NotFound, LOOKUP_INVOICE, ErrorKind::NotFound),
            (
                ErrorKind::InsufficientBalance,
                PAY_INVOICE,
                ErrorKind::InsufficientBalance,
            ),
            (
                ErrorKind::PaymentFailed,
                PAY_INVOICE,
                ErrorKind::PaymentFailed,
            ),
            (
                ErrorKind::InvoiceExpired,
                PAY_INVOICE,
                ErrorKind::PaymentFailed,
            ),
            (
                ErrorKind::AlreadyPaid,
                PAY_INVOICE,
                ErrorKind::PaymentFailed,
            ),
            (
                ErrorKind::InvalidRequest,
                MAKE_INVOICE,
                ErrorKind::InvalidRequest,
            ),
            (ErrorKind::Unavailable, MAKE_INVOICE, ErrorKind::Unavailable),
            (ErrorKind::Timeout, PAY_INVOICE, ErrorKind::Unavailable),
            (
                ErrorKind::Unsupported,
                LOOKUP_INVOICE,
                ErrorKind::Unsupported,
            ),
            (
                ErrorKind::Unauthorized,
                MAKE_INVOICE,
                ErrorKind::Unauthorized,
            ),
        ] {
            assert_eq!(ErrorCode::for_kind(kind).kind(method), back, "{kind:?}");
        }
    }

    #[test]
    fn transactions_parse_leniently() {
        let t: Transaction = serde_json::from_str(
            r#"{"type":"incoming","payment_hash":"ab","amount":21000.0,"fees_paid":null,
                "created_at":"1700000000","expires_at":1700003600,"metadata":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(t.amount, Some(21_000));
        assert_eq!(t.fees_paid, None);
        assert_eq!(t.created_at, Some(1_700_000_000));
        assert_eq!(t.state, None, "older wallets send no state");
        assert!(serde_json::from_str::<Transaction>(r#"{"amount":-5}"#).is_err());
        assert!(serde_json::from_str::<Transaction>(r#"{"amount":1.5}"#).is_err());
        // A response with an unknown error code still parses.
        let r: Response = serde_json::from_str(
            r#"{"result_type":"pay_invoice","error":{"code":"UNSUPPORTED_ENCRYPTION","message":"no"},"result":null}"#,
        )
        .unwrap();
        assert_eq!(
            ErrorCode::parse(&r.error.unwrap().code),
            ErrorCode::UnsupportedEncryption
        );
        // Success serialises `"error": null`.
        let ok = serde_json::to_value(Response::ok(PAY_INVOICE, PayResult::default())).unwrap();
        assert_eq!(ok["error"], Value::Null);
        assert_eq!(ok["result_type"], "pay_invoice");
    }
}
