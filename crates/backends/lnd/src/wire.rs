//! LND's REST (grpc-gateway) JSON shapes, only the fields this adapter reads or writes.
//!
//! The gateway marshals with proto field names and emits every field; 64-bit integers are JSON
//! **strings**, `bytes` fields are **standard base64**, and a few `string` fields hold **hex**
//! (`Payment.payment_hash`, `Payment.payment_preimage`). On input it accepts 64-bit integers as
//! strings or numbers; this adapter sends strings, as the gateway itself emits them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use l402::PaymentHash;
use serde::{Deserialize, Deserializer, Serialize};

// === requests ===

/// `lnrpc.Invoice` as the body of `POST /v1/invoices` (AddInvoice).
#[derive(Debug, Serialize)]
pub(crate) struct AddInvoice<'a> {
    pub(crate) memo: &'a str,
    /// int64 msat, as a string.
    pub(crate) value_msat: String,
    /// int64 seconds, as a string.
    pub(crate) expiry: String,
}

/// `routerrpc.SendPaymentRequest` as the body of `POST /v2/router/send`.
#[derive(Debug, Serialize)]
pub(crate) struct SendPayment<'a> {
    pub(crate) payment_request: &'a str,
    /// int64 msat, as a string. LND's default of 0 would allow only fee-free routes.
    pub(crate) fee_limit_msat: String,
    /// int32 (a JSON number). v0.18 refuses 0.
    pub(crate) timeout_seconds: i32,
    /// Stream `IN_FLIGHT` updates too, so a timeout can say the payment is in flight.
    pub(crate) no_inflight_updates: bool,
}

// === responses ===

/// `lnrpc.AddInvoiceResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct AddInvoiceResponse {
    /// base64 of the 32-byte payment hash.
    pub(crate) r_hash: String,
    pub(crate) payment_request: String,
}

/// `lnrpc.Invoice`, as LookupInvoice returns it.
#[derive(Debug, Deserialize)]
pub(crate) struct Invoice {
    /// base64 of the payment hash.
    #[serde(default)]
    pub(crate) r_hash: String,
    /// `OPEN`, `SETTLED`, `CANCELED` or `ACCEPTED`.
    pub(crate) state: String,
    /// Unix seconds.
    #[serde(default, deserialize_with = "int64")]
    pub(crate) creation_date: i64,
    /// Seconds.
    #[serde(default, deserialize_with = "int64")]
    pub(crate) expiry: i64,
}

/// `lnrpc.Payment`, one update of SendPaymentV2 / TrackPaymentV2.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Payment {
    /// Hex (a `string` field in the proto, unlike the invoice's `r_hash`).
    #[serde(default)]
    pub(crate) payment_hash: String,
    /// Hex; 64 zeros until the payment succeeded.
    #[serde(default)]
    pub(crate) payment_preimage: String,
    #[serde(default, deserialize_with = "int64")]
    pub(crate) value_msat: i64,
    #[serde(default, deserialize_with = "int64")]
    pub(crate) fee_msat: i64,
    /// `IN_FLIGHT`, `SUCCEEDED`, `FAILED`, `INITIATED` (or `UNKNOWN`).
    pub(crate) status: String,
    /// `FAILURE_REASON_…`.
    #[serde(default)]
    pub(crate) failure_reason: String,
}

/// `google.rpc.Status`: the error body of unary calls, and the `error` of a stream line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RpcStatus {
    /// The gRPC code (2 = Unknown, 5 = NotFound, 6 = AlreadyExists, …).
    pub(crate) code: i32,
    pub(crate) message: String,
}

/// One line of a server-streaming response: `{"result": …}` or `{"error": {…}}`.
#[derive(Debug)]
pub(crate) enum StreamLine {
    Result(Payment),
    Error(RpcStatus),
}

impl RpcStatus {
    /// Reads an error body in any of the gateway's shapes:
    /// * `{"code":5,"message":"…","details":[]}` (grpc-gateway v2, unary calls);
    /// * `{"error":{"code":…,"message":…}}` (v2, streaming calls);
    /// * `{"error":"…","code":2,"message":"…"}` (grpc-gateway v1, lnd before 0.14).
    pub(crate) fn parse(body: &str) -> Option<RpcStatus> {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let obj = match v.get("error") {
            Some(inner @ serde_json::Value::Object(_)) => inner,
            _ => &v,
        };
        let code = obj.get("code")?.as_i64()?;
        let message = obj
            .get("message")
            .and_then(|m| m.as_str())
            .filter(|m| !m.is_empty())
            .or_else(|| obj.get("error").and_then(|m| m.as_str()))
            .unwrap_or_default();
        Some(RpcStatus {
            code: i32::try_from(code).ok()?,
            message: message.to_owned(),
        })
    }
}

impl StreamLine {
    /// Parses one non-empty line of a stream.
    pub(crate) fn parse(line: &str) -> Result<StreamLine, String> {
        #[derive(Deserialize)]
        struct Raw {
            result: Option<Payment>,
            error: Option<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_str(line).map_err(|e| format!("bad stream line: {e}"))?;
        match (raw.result, raw.error) {
            (_, Some(err)) => RpcStatus::parse(&err.to_string())
                .map(StreamLine::Error)
                .ok_or_else(|| "stream error without a code".to_owned()),
            (Some(p), None) => Ok(StreamLine::Result(p)),
            (None, None) => Err("stream line has neither result nor error".to_owned()),
        }
    }
}

// === encodings ===

/// A 64-bit integer the gateway sends as a JSON string (`"21000"`); a number is accepted too.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Num(i64),
        Str(String),
    }
    match Int64::deserialize(d)? {
        Int64::Num(n) => Ok(n),
        Int64::Str(s) if s.is_empty() => Ok(0),
        Int64::Str(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Decodes a 32-byte `bytes` field (standard base64, as LND emits it; URL-safe tolerated).
pub(crate) fn hash_from_base64(s: &str) -> Result<PaymentHash, String> {
    let bytes = STANDARD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .map_err(|e| format!("{s:?} is not base64: {e}"))?;
    PaymentHash::try_from(bytes.as_slice()).map_err(|e| e.to_string())
}

/// A payment hash as a URL path segment for a `bytes` path parameter: **URL-safe base64 with
/// `=` padding**. The gateway tries standard then URL-safe base64, both padded; standard base64
/// may contain `/`, which the gateway's router splits on (lnd issues #5090, #6029).
pub(crate) fn hash_path_segment(hash: &PaymentHash) -> String {
    URL_SAFE.encode(hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_fields_are_strings_or_numbers() {
        let p: Payment = serde_json::from_str(
            r#"{"payment_hash":"ab","status":"SUCCEEDED","value_msat":"21000","fee_msat":7}"#,
        )
        .unwrap();
        assert_eq!(p.value_msat, 21_000);
        assert_eq!(p.fee_msat, 7);
        let bad = serde_json::from_str::<Payment>(r#"{"status":"X","value_msat":"21k"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn path_segments_are_url_safe_padded_base64() {
        // 0xfb bytes encode to "+" and "/" in standard base64.
        let h = PaymentHash::from_bytes([0xfb; 32]);
        let seg = hash_path_segment(&h);
        assert_eq!(seg.len(), 44);
        assert!(seg.ends_with('='));
        assert!(!seg.contains('/') && !seg.contains('+'), "{seg}");
        assert_eq!(hash_from_base64(&seg).unwrap(), h);
        assert_eq!(hash_from_base64(&STANDARD.encode([0xfb; 32])).unwrap(), h);
        assert!(hash_from_base64(&STANDARD.encode([1; 31])).is_err());
        // A hex string is valid base64 too, but 48 bytes long (lnd issue #7821).
        assert!(hash_from_base64(&h.to_hex()).is_err());
    }

    #[test]
    fn error_bodies_in_every_gateway_shape() {
        let unary =
            RpcStatus::parse(r#"{"code":5,"message":"unable to locate invoice","details":[]}"#)
                .unwrap();
        assert_eq!(unary.code, 5);
        assert_eq!(unary.message, "unable to locate invoice");
        let stream = RpcStatus::parse(
            r#"{"error":{"code":6,"message":"invoice is already paid","details":[]}}"#,
        )
        .unwrap();
        assert_eq!(
            (stream.code, stream.message.as_str()),
            (6, "invoice is already paid")
        );
        let v1 = RpcStatus::parse(r#"{"error":"invoice expired","code":2}"#).unwrap();
        assert_eq!((v1.code, v1.message.as_str()), (2, "invoice expired"));
        assert!(RpcStatus::parse("<html>bad gateway</html>").is_none());
        assert!(RpcStatus::parse(r#"{"message":"no code"}"#).is_none());
    }

    #[test]
    fn stream_lines() {
        match StreamLine::parse(r#"{"result":{"status":"IN_FLIGHT","payment_hash":"00"}}"#) {
            Ok(StreamLine::Result(p)) => assert_eq!(p.status, "IN_FLIGHT"),
            other => panic!("{other:?}"),
        }
        match StreamLine::parse(r#"{"error":{"code":5,"message":"payment isn't initiated"}}"#) {
            Ok(StreamLine::Error(s)) => assert_eq!(s.code, 5),
            other => panic!("{other:?}"),
        }
        assert!(StreamLine::parse("{}").is_err());
        assert!(StreamLine::parse("not json").is_err());
    }
}
