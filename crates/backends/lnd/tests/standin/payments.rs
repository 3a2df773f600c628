//! The stand-in's payment routes: SendPaymentV2 and TrackPaymentV2, and the routing outcome.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use lightning_invoice::{Bolt11Invoice, Currency};
use serde_json::json;

use super::api::{Ctx, Perm};
use super::json::{self, Body, Status};
use super::{InvState, Network, PayStatus, PaymentRec, unix_nanos, unix_secs};

// === SendPaymentV2 ===

/// `routerrpc.SendPaymentRequest` field names.
const SEND_FIELDS: &[&str] = &[
    "dest",
    "amt",
    "amt_msat",
    "payment_hash",
    "final_cltv_delta",
    "payment_addr",
    "payment_request",
    "timeout_seconds",
    "fee_limit_sat",
    "fee_limit_msat",
    "outgoing_chan_id",
    "outgoing_chan_ids",
    "last_hop_pubkey",
    "cltv_limit",
    "route_hints",
    "dest_custom_records",
    "allow_self_payment",
    "dest_features",
    "max_parts",
    "no_inflight_updates",
    "max_shard_size_msat",
    "amp",
    "time_pref",
    "cancelable",
    "first_hop_custom_records",
];

struct SendArgs {
    payment_request: String,
    timeout_seconds: i32,
    fee_limit_sat: i64,
    fee_limit_msat: i64,
    amt: i64,
    amt_msat: i64,
    no_inflight_updates: bool,
}

fn send_args(body: &Body) -> Result<SendArgs, Status> {
    Ok(SendArgs {
        payment_request: body.string("payment_request")?,
        timeout_seconds: body.int32("timeout_seconds")?,
        fee_limit_sat: body.int64("fee_limit_sat")?,
        fee_limit_msat: body.int64("fee_limit_msat")?,
        amt: body.int64("amt")?,
        amt_msat: body.int64("amt_msat")?,
        no_inflight_updates: body.bool("no_inflight_updates")?,
    })
}

/// `POST /v2/router/send`: `routerrpc.Server.SendPaymentV2`. The body is decoded by the
/// gateway (unary error shape); everything after that, including the macaroon check in the
/// stream interceptor, fails in the stream envelope.
pub(crate) async fn send_payment_v2(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let args = match Body::parse(&body, SEND_FIELDS).and_then(|b| send_args(&b)) {
        Ok(a) => a,
        Err(s) => return s.unary(),
    };
    if let Err(msg) = ctx.auth(&headers, Perm::OffchainWrite) {
        return json::stream_error(2, &msg);
    }
    ctx.net.shared.ledger.lock().unwrap().nodes[ctx.node].send_calls += 1;
    let fail = |msg: String| json::stream_error(2, &msg);
    // lnd 0.18 (0.19+ defaults 0 to 60 s).
    if args.timeout_seconds == 0 {
        return fail("timeout_seconds must be specified".into());
    }
    // extractIntentFromSendRequest: amounts, then the payment request.
    let unmarshall_amt = |sat: i64, msat: i64| {
        if sat != 0 && msat != 0 {
            Err("sat and msat arguments are mutually exclusive".to_owned())
        } else if sat < 0 || msat < 0 {
            Err("amount cannot be negative".to_owned())
        } else {
            Ok(if sat != 0 { sat * 1000 } else { msat })
        }
    };
    let fee_limit = match unmarshall_amt(args.fee_limit_sat, args.fee_limit_msat) {
        Ok(v) => v,
        Err(m) => return fail(m),
    };
    let amt = match unmarshall_amt(args.amt, args.amt_msat) {
        Ok(v) => v,
        Err(m) => return fail(m),
    };
    if args.payment_request.is_empty() {
        return fail("the stand-in pays BOLT11 payment requests only".into());
    }
    let invoice = match Bolt11Invoice::from_str(&args.payment_request) {
        Ok(i) => i,
        Err(e) => return fail(format!("invalid payment request: {e}")),
    };
    if invoice.currency() != Currency::Regtest {
        return fail("invoice not for current active network 'regtest'".into());
    }
    // ValidatePayReqExpiry
    let valid_until = invoice.duration_since_epoch() + invoice.expiry_time();
    let now = SystemTime::now();
    if now.duration_since(SystemTime::UNIX_EPOCH).unwrap() > valid_until {
        return fail(format!(
            "invoice expired. Valid until {}",
            go_time(SystemTime::UNIX_EPOCH + valid_until)
        ));
    }
    let value_msat = match (invoice.amount_milli_satoshis(), amt) {
        (None, 0) => {
            return fail("amount must be specified when paying a zero amount invoice".into());
        }
        (None, a) => a,
        (Some(_), a) if a != 0 => {
            return fail(
                "amount must not be specified when paying a non-zero amount invoice".into(),
            );
        }
        (Some(v), _) => v as i64,
    };
    let hash: [u8; 32] = *AsRef::<[u8; 32]>::as_ref(invoice.payment_hash());

    // PreparePayment → the payment DB's InitPayment: one payment per hash unless it FAILED.
    let rx = {
        let mut l = ctx.net.shared.ledger.lock().unwrap();
        let node = &mut l.nodes[ctx.node];
        if let Some(existing) = node.payments.get(&hash) {
            let refusal = match existing.borrow().status {
                PayStatus::Succeeded => Some("invoice is already paid"),
                PayStatus::InFlight => Some("payment is in transition"),
                PayStatus::Failed => None,
            };
            if let Some(msg) = refusal {
                node.duplicates_refused += 1;
                return json::stream_error(6, msg);
            }
        }
        let payment_index = node.next_payment_index;
        node.next_payment_index += 1;
        let rec = PaymentRec {
            hash,
            payment_request: args.payment_request.clone(),
            value_msat,
            fee_msat: 0,
            status: PayStatus::InFlight,
            failure_reason: "FAILURE_REASON_NONE",
            preimage: None,
            created_ns: unix_nanos(now),
            resolved_ns: 0,
            payment_index,
            attempted: false,
        };
        let (tx, rx) = tokio::sync::watch::channel(rec);
        node.payments.insert(hash, tx);
        rx
    };
    // SendPaymentAsync: the payment goes on even if the client hangs up.
    let net = ctx.net.clone();
    let payer = ctx.node;
    let payee = invoice.recover_payee_pub_key();
    tokio::spawn(async move {
        tokio::time::sleep(net.shared.config.settle_delay).await;
        resolve(&net, payer, payee, hash, value_msat, fee_limit);
    });
    payment_stream(rx, args.no_inflight_updates)
}

/// The routing outcome, applied to the ledger (payer, payee, invoice) in one step.
fn resolve(
    net: &Network,
    payer: usize,
    payee_key: bitcoin::secp256k1::PublicKey,
    hash: [u8; 32],
    value_msat: i64,
    fee_limit_msat: i64,
) {
    let fee = net.shared.config.fee_msat as i64;
    let mut l = net.shared.ledger.lock().unwrap();
    let now = SystemTime::now();
    l.run_expiry_watcher(now);
    let payee = l.nodes.iter().position(|n| n.pubkey == payee_key);
    let outcome: Result<[u8; 32], &'static str> = (|| {
        // No channel to an unknown node, and no self-payment without allow_self_payment.
        let payee = payee
            .filter(|p| *p != payer)
            .ok_or("FAILURE_REASON_NO_ROUTE")?;
        if fee > fee_limit_msat {
            return Err("FAILURE_REASON_NO_ROUTE");
        }
        let total = (value_msat + fee) as u64;
        if total > l.nodes[payer].balance_msat {
            return Err("FAILURE_REASON_INSUFFICIENT_BALANCE");
        }
        // The payee's invoice registry: known hash, OPEN, enough paid.
        let inv = l.invoices.get(&hash).filter(|i| i.owner == payee);
        let inv = inv.ok_or("FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")?;
        if inv.state != InvState::Open || value_msat < inv.value_msat {
            return Err("FAILURE_REASON_INCORRECT_PAYMENT_DETAILS");
        }
        Ok(inv.preimage)
    })();
    let settle_index = match (&outcome, payee) {
        (Ok(_), Some(p)) => {
            let n = &mut l.nodes[p];
            n.balance_msat += value_msat as u64;
            n.next_settle_index += 1;
            Some(n.next_settle_index - 1)
        }
        _ => None,
    };
    if let Some(settle_index) = settle_index {
        l.nodes[payer].balance_msat -= (value_msat + fee) as u64;
        let inv = l.invoices.get_mut(&hash).unwrap();
        inv.state = InvState::Settled;
        inv.settle_date = unix_secs(now);
        inv.amt_paid_msat = value_msat;
        inv.settle_index = settle_index;
    }
    let tx = &l.nodes[payer].payments[&hash];
    tx.send_modify(|p| {
        p.resolved_ns = unix_nanos(now);
        match outcome {
            Ok(preimage) => {
                p.status = PayStatus::Succeeded;
                p.preimage = Some(preimage);
                p.fee_msat = fee;
                p.attempted = true;
            }
            Err(reason) => {
                p.status = PayStatus::Failed;
                p.failure_reason = reason;
                p.attempted = reason == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS";
            }
        }
    });
}

/// `routerrpc.Server.trackPaymentStream`: the current state first, then every update, ending
/// after the final one; with `no_inflight_updates` only the final one.
fn payment_stream(rx: tokio::sync::watch::Receiver<PaymentRec>, no_inflight: bool) -> Response {
    let lines = futures_util::stream::unfold(
        (rx, true, false),
        move |(mut rx, mut first, done)| async move {
            if done {
                return None;
            }
            loop {
                if !first && rx.changed().await.is_err() {
                    return None;
                }
                first = false;
                let p = rx.borrow_and_update().clone();
                if no_inflight && !p.status.is_final() {
                    continue;
                }
                let line = format!("{}\n", json!({"result": json::payment(&p)}));
                return Some((line, (rx, false, p.status.is_final())));
            }
        },
    );
    json::stream_response(lines)
}

// === TrackPaymentV2 ===

/// `GET /v2/router/track/{payment_hash}`: the gateway parses the `bytes` path parameter with
/// `runtime.Bytes` (standard, then URL-safe base64, both padded) after splitting the decoded
/// path on `/`; then `routerrpc.Server.TrackPaymentV2` (`lntypes.MakeHash`, then the control
/// tower's subscription: "payment isn't initiated" → NotFound).
pub(crate) async fn track_payment_v2(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if raw.contains('/') {
        // An escaped "/" still splits the path in the gateway's router (lnd #5090, #6029).
        return json::unary_error(5, "Not Found");
    }
    let bytes = match STANDARD.decode(&raw).or_else(|_| URL_SAFE.decode(&raw)) {
        Ok(b) => b,
        Err(e) => {
            let at = match e {
                base64::DecodeError::InvalidByte(i, _)
                | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                _ => raw.len(),
            };
            return json::unary_error(
                3,
                &format!(
                    "type mismatch, parameter: payment_hash, error: illegal base64 data at input byte {at}"
                ),
            );
        }
    };
    let no_inflight = match query.get("no_inflight_updates").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return json::unary_error(
                3,
                &format!("parsing field \"no_inflight_updates\": invalid bool {other:?}"),
            );
        }
    };
    if let Err(msg) = ctx.auth(&headers, Perm::OffchainRead) {
        return json::stream_error(2, &msg);
    }
    if bytes.len() != 32 {
        return json::stream_error(
            2,
            &format!("invalid hash length of {}, want 32", bytes.len()),
        );
    }
    let rx = {
        let l = ctx.net.shared.ledger.lock().unwrap();
        match l.nodes[ctx.node].payments.get(&bytes[..]) {
            Some(tx) => tx.subscribe(),
            None => return json::stream_error(5, "payment isn't initiated"),
        }
    };
    payment_stream(rx, no_inflight)
}

/// Go's default `time.Time` format, as in lnd's "Valid until" message.
fn go_time(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} +0000 UTC", s.trim_end_matches('Z').replace('T', " "))
}
