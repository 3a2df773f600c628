//! lnd's REST JSON conventions, as the grpc-gateway in front of lnd applies them:
//!
//! * request bodies are protojson with lnd's `RESTJsonUnmarshalOpts` (unknown fields are
//!   **rejected**, 64-bit integers may be strings or numbers, `bytes` are base64);
//! * responses use `EmitUnpopulated` + `UseProtoNames`: snake_case names, every field present,
//!   64-bit integers as **strings**, `bytes` as standard base64, enums by name;
//! * errors: unary calls answer `{"code","message","details"}` with the HTTP status of
//!   grpc-gateway's `HTTPStatusFromCode`; streaming calls put the same object under `"error"`.

use std::convert::Infallible;

use axum::body::{Body as AxumBody, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{InvState, InvoiceRec, PayStatus, PaymentRec};

// === errors ===

/// grpc-gateway's `HTTPStatusFromCode`.
pub(crate) fn http_status(code: i32) -> StatusCode {
    let s = match code {
        0 => 200,
        1 => 499,
        2 => 500,
        3 => 400,
        4 => 504,
        5 => 404,
        6 => 409,
        7 => 403,
        8 => 429,
        9 => 400,
        10 => 409,
        11 => 400,
        12 => 501,
        13 => 500,
        14 => 503,
        15 => 500,
        16 => 401,
        _ => 500,
    };
    StatusCode::from_u16(s).expect("valid status")
}

fn status_object(code: i32, message: &str) -> Value {
    json!({"code": code, "message": message, "details": []})
}

/// The error of a unary call (or of the gateway itself, before any call).
pub(crate) fn unary_error(code: i32, message: &str) -> Response {
    (
        http_status(code),
        [(header::CONTENT_TYPE, "application/json")],
        status_object(code, message).to_string(),
    )
        .into_response()
}

/// The error of a streaming call that fails before its first message: the status is mapped
/// from the code, and the body is one `{"error": …}` line (grpc-gateway `errorChunk`).
pub(crate) fn stream_error(code: i32, message: &str) -> Response {
    (
        http_status(code),
        [(header::CONTENT_TYPE, "application/json")],
        format!("{}\n", json!({"error": status_object(code, message)})),
    )
        .into_response()
}

/// A gRPC status before it becomes a response (small, unlike `Response`).
#[derive(Debug)]
pub(crate) struct Status {
    pub(crate) code: i32,
    pub(crate) message: String,
}

impl Status {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }

    /// As a unary call's (or the gateway's) error.
    pub(crate) fn unary(self) -> Response {
        unary_error(self.code, &self.message)
    }
}

/// A 200 streaming response of newline-delimited JSON lines.
pub(crate) fn stream_response(
    lines: impl futures_util::Stream<Item = String> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let body = AxumBody::from_stream(lines.map(|l| Ok::<_, Infallible>(Bytes::from(l))));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("valid response")
}

// === request bodies ===

/// A protojson request body, checked against the message's field names.
pub(crate) struct Body(Map<String, Value>);

impl Body {
    /// Parses `bytes` as a JSON object whose keys are all in `known` (proto names).
    pub(crate) fn parse(bytes: &[u8], known: &[&str]) -> Result<Body, Status> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Status::new(3, format!("proto: syntax error: {e}")))?;
        let Value::Object(map) = v else {
            return Err(Status::new(3, "proto: syntax error: expected an object"));
        };
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Status::new(3, format!("proto: unknown field \"{k}\"")));
        }
        Ok(Body(map))
    }

    fn invalid(name: &str, kind: &str, v: &Value) -> Status {
        Status::new(
            3,
            format!("proto: invalid value for {kind} field {name}: {v}"),
        )
    }

    /// An int64 field: a JSON string of digits or an integer number; absent is 0.
    pub(crate) fn int64(&self, name: &str) -> Result<i64, Status> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| Self::invalid(name, "int64", &self.0[name])),
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| Self::invalid(name, "int64", &self.0[name])),
            Some(v) => Err(Self::invalid(name, "int64", v)),
        }
    }

    /// An int32 field (number or string); absent is 0.
    pub(crate) fn int32(&self, name: &str) -> Result<i32, Status> {
        let v = self.int64(name)?;
        i32::try_from(v).map_err(|_| Self::invalid(name, "int32", &self.0[name]))
    }

    /// A string field; absent is "".
    pub(crate) fn string(&self, name: &str) -> Result<String, Status> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(Self::invalid(name, "string", v)),
        }
    }

    /// A bool field; absent is false.
    pub(crate) fn bool(&self, name: &str) -> Result<bool, Status> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(Self::invalid(name, "bool", v)),
        }
    }

    /// A bytes field (base64, std or URL-safe, padded or not); absent is empty.
    pub(crate) fn bytes(&self, name: &str) -> Result<Vec<u8>, Status> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let s = self.string(name)?;
        [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(&s).ok())
            .ok_or_else(|| Self::invalid(name, "bytes", &self.0[name]))
    }
}

// === response objects ===

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `lnrpc.Invoice` with every field, as LookupInvoice returns it.
pub(crate) fn invoice(inv: &InvoiceRec) -> Value {
    let settled = inv.state == InvState::Settled;
    let htlcs: Vec<Value> = if settled {
        vec![json!({
            "chan_id": "124244814004224",
            "htlc_index": "0",
            "amt_msat": inv.amt_paid_msat.to_string(),
            "accept_height": 120,
            "accept_time": inv.settle_date.to_string(),
            "resolve_time": inv.settle_date.to_string(),
            "expiry_height": 200,
            "state": "SETTLED",
            "custom_records": {},
            "mpp_total_amt_msat": inv.amt_paid_msat.to_string(),
            "amp": null,
            "wire_custom_records": {},
        })]
    } else {
        Vec::new()
    };
    json!({
        "memo": inv.memo,
        // lnd returns the preimage of its own invoices even while OPEN.
        "r_preimage": b64(&inv.preimage),
        "r_hash": b64(&inv.hash),
        "value": (inv.value_msat / 1000).to_string(),
        "value_msat": inv.value_msat.to_string(),
        "settled": settled,
        "creation_date": inv.creation_date().to_string(),
        "settle_date": inv.settle_date.to_string(),
        "payment_request": inv.payment_request,
        "description_hash": "",
        "expiry": inv.expiry_secs.to_string(),
        "fallback_addr": "",
        "cltv_expiry": "80",
        "route_hints": [],
        "private": false,
        "add_index": inv.add_index.to_string(),
        "settle_index": inv.settle_index.to_string(),
        "amt_paid": inv.amt_paid_msat.to_string(),
        "amt_paid_sat": (inv.amt_paid_msat / 1000).to_string(),
        "amt_paid_msat": inv.amt_paid_msat.to_string(),
        "state": inv.state.as_str(),
        "htlcs": htlcs,
        "features": {
            "9": {"name": "tlv-onion", "is_required": false, "is_known": true},
            "14": {"name": "payment-addr", "is_required": true, "is_known": true},
            "17": {"name": "multi-path-payments", "is_required": false, "is_known": true},
        },
        "is_keysend": false,
        "payment_addr": b64(&inv.payment_addr),
        "is_amp": false,
        "amp_invoice_state": {},
        "is_blinded": false,
        "blinded_path_config": null,
    })
}

/// `lnrpc.Payment` with every field. `payment_hash` and `payment_preimage` are **hex** (string
/// fields in the proto); the preimage is 64 zeros until the payment succeeded; an HTLC's
/// `preimage` is a bytes field, so base64.
pub(crate) fn payment(p: &PaymentRec) -> Value {
    let preimage = p.preimage.unwrap_or([0; 32]);
    let htlc_status = match p.status {
        PayStatus::InFlight => "IN_FLIGHT",
        PayStatus::Succeeded => "SUCCEEDED",
        PayStatus::Failed => "FAILED",
    };
    let htlcs: Vec<Value> = if p.attempted {
        vec![json!({
            "attempt_id": p.payment_index.to_string(),
            "status": htlc_status,
            "route": {
                "total_time_lock": 250,
                "total_fees": (p.fee_msat / 1000).to_string(),
                "total_amt": ((p.value_msat + p.fee_msat) / 1000).to_string(),
                "hops": [],
                "total_fees_msat": p.fee_msat.to_string(),
                "total_amt_msat": (p.value_msat + p.fee_msat).to_string(),
                "first_hop_amount_msat": (p.value_msat + p.fee_msat).to_string(),
                "custom_channel_data": "",
            },
            "attempt_time_ns": p.created_ns.to_string(),
            "resolve_time_ns": if p.status == PayStatus::InFlight { "0".to_owned() } else { p.resolved_ns.to_string() },
            "failure": null,
            "preimage": b64(&preimage),
        })]
    } else {
        Vec::new()
    };
    json!({
        "payment_hash": hex::encode(p.hash),
        "value": (p.value_msat / 1000).to_string(),
        "creation_date": (p.created_ns / 1_000_000_000).to_string(),
        "fee": (p.fee_msat / 1000).to_string(),
        "payment_preimage": hex::encode(preimage),
        "value_sat": (p.value_msat / 1000).to_string(),
        "value_msat": p.value_msat.to_string(),
        "payment_request": p.payment_request,
        "status": p.status.as_str(),
        "fee_sat": (p.fee_msat / 1000).to_string(),
        "fee_msat": p.fee_msat.to_string(),
        "creation_time_ns": p.created_ns.to_string(),
        "htlcs": htlcs,
        "payment_index": p.payment_index.to_string(),
        "failure_reason": p.failure_reason,
        "first_hop_custom_records": {},
    })
}
