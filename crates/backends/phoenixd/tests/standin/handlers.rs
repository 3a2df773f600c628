//! The endpoints, each mirroring its handler in phoenixd's `Api.kt`.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::Secp256k1;
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};
use serde_json::{Value, json};

use super::{Ctx, Incoming, Node, Outgoing, Version};

const UNAUTHORIZED: &str =
    "Invalid authentication (use basic auth with the http password set in phoenix.conf)";

/// ktor `StatusPages` answers in plain text.
fn text(status: u16, body: &str) -> Response {
    (StatusCode::from_u16(status).unwrap(), body.to_owned()).into_response()
}

/// A 400 answer from one of ktor's parameter exceptions.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        text(400, &self.0)
    }
}

/// `MissingRequestParameterException`.
fn missing(name: &str) -> BadRequest {
    BadRequest(format!("Request parameter {name} is missing"))
}

/// `ParameterConversionException`.
fn invalid(name: &str, ty: &str) -> BadRequest {
    BadRequest(format!(
        "Request parameter {name} couldn't be parsed/converted to {ty}"
    ))
}

/// A lookup that found nothing: the handler answers 204, which `StatusPages` turns into this.
fn not_found() -> Response {
    text(404, "Not found")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[derive(PartialEq)]
enum Access {
    Full,
    Limited,
}

/// Basic auth: only the password counts.
fn authenticate(headers: &HeaderMap, node: &Node) -> Option<Access> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    if password == node.password {
        Some(Access::Full)
    } else if password == node.limited_password {
        Some(Access::Limited)
    } else {
        None
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `Parameters[name]`: the first value.
fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `getOptionalLong`.
fn optional_long(form: &[(String, String)], name: &str) -> Result<Option<i64>, BadRequest> {
    param(form, name)
        .map(|v| v.parse::<i64>().map_err(|_| invalid(name, "integer")))
        .transpose()
}

fn hex32(s: &str, name: &str) -> Result<[u8; 32], BadRequest> {
    hex::decode(s)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| invalid(name, "hex32"))
}

fn uuid() -> String {
    let b = hex::encode(&l402_test::random32()[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &b[0..8],
        &b[8..12],
        &b[13..16],
        &b[17..20],
        &b[20..32]
    )
}

/// `POST /createinvoice`.
pub(crate) async fn create_invoice(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut net = ctx.net.lock();
    let node = &mut net.nodes[ctx.index];
    if authenticate(&headers, node).is_none() {
        return text(401, UNAUTHORIZED);
    }
    let form = form(&body);
    node.requests.push(("createinvoice".into(), form.clone()));
    let amount_sat = match optional_long(&form, "amountSat") {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let description = param(&form, "description");
    if description.is_some_and(|d| d.encode_utf16().count() > 128) {
        return text(
            400,
            "Request parameter description is too long (max 128 characters)",
        );
    }
    let description_hash = match param(&form, "descriptionHash")
        .map(|h| hex32(h, "descriptionHash"))
        .transpose()
    {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    let expiry = match optional_long(&form, "expirySeconds") {
        Ok(e) => e.unwrap_or(3600),
        Err(r) => return r.into_response(),
    };
    let external_id = param(&form, "externalId").map(str::to_owned);
    let amount_msat = match amount_sat {
        Some(s) if s < 0 => return invalid("amountSat", "integer").into_response(),
        Some(s) => Some(s as u64 * 1000),
        None => None,
    };

    let preimage = l402_test::random32();
    let payment_hash = sha256::Hash::hash(&preimage).to_byte_array();
    let created = SystemTime::now();
    let builder = InvoiceBuilder::new(Currency::Regtest);
    let builder = match (description, description_hash) {
        (Some(d), None) => builder.description(d.to_owned()),
        (None, Some(h)) => builder.description_hash(sha256::Hash::from_byte_array(h)),
        _ => return text(400, "Must provide either a description or descriptionHash"),
    };
    let builder = builder
        .payment_hash(sha256::Hash::from_byte_array(payment_hash))
        .payment_secret(PaymentSecret(l402_test::random32()))
        .timestamp(created)
        .min_final_cltv_expiry_delta(18)
        .expiry_time(Duration::from_secs(expiry as u64));
    let builder = match amount_msat {
        Some(m) => builder.amount_milli_satoshis(m),
        None => builder,
    };
    let secp = Secp256k1::new();
    let bolt11 = match builder.build_signed(|m| secp.sign_ecdsa_recoverable(m, &node.key)) {
        Ok(i) => i.to_string(),
        Err(e) => return text(500, &format!("{e:?}")),
    };
    node.incoming.push(Incoming {
        payment_hash,
        preimage,
        bolt11: bolt11.clone(),
        description: description.unwrap_or_default().to_owned(),
        external_id,
        amount_msat,
        expiry_secs: expiry as u64,
        created_at_ms: created.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64,
        received_msat: 0,
        completed_at_ms: None,
    });
    // `GeneratedInvoice`: `amountSat` left out when there is none (explicitNulls = false).
    let mut answer = json!({
        "paymentHash": hex::encode(payment_hash),
        "serialized": bolt11,
    });
    if let Some(sat) = amount_sat {
        answer["amountSat"] = json!(sat);
    }
    Json(answer).into_response()
}

fn incoming_json(i: &Incoming, version: Version) -> Value {
    let expires_at = i.created_at_ms + i.expiry_secs * 1000;
    let mut v = json!({
        "type": "incoming_payment",
        "subType": "lightning",
        "paymentHash": hex::encode(i.payment_hash),
        // The node knows the preimage of its own unpaid invoices, and says so.
        "preimage": hex::encode(i.preimage),
        "description": i.description,
        "invoice": i.bolt11,
        "isPaid": i.completed_at_ms.is_some(),
        "receivedSat": i.received_msat / 1000,
        "fees": 0,
        "createdAt": i.created_at_ms,
    });
    if let Some(id) = &i.external_id {
        v["externalId"] = json!(id);
    }
    if let Some(t) = i.completed_at_ms {
        v["completedAt"] = json!(t);
    }
    if version == Version::V0_6_1 {
        v["isExpired"] = json!(now_ms() > expires_at);
        v["expiresAt"] = json!(expires_at);
        if let Some(m) = i.amount_msat {
            v["requestedSat"] = json!(m / 1000);
        }
    }
    v
}

/// `GET /payments/incoming/{paymentHash}`.
pub(crate) async fn incoming(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    let mut net = ctx.net.lock();
    let node = &mut net.nodes[ctx.index];
    if authenticate(&headers, node).is_none() {
        return text(401, UNAUTHORIZED);
    }
    node.requests
        .push((format!("payments/incoming/{hash}"), Vec::new()));
    let hash = match hex32(&hash, "paymentHash") {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    match node.incoming.iter().find(|i| i.payment_hash == hash) {
        Some(i) => Json(incoming_json(i, node.version)).into_response(),
        None => not_found(),
    }
}

fn outgoing_json(o: &Outgoing) -> Value {
    let mut v = json!({
        "type": "outgoing_payment",
        "subType": "lightning",
        "paymentId": o.id,
        "paymentHash": hex::encode(o.payment_hash),
        "isPaid": o.preimage.is_some(),
        "sent": (o.amount_msat + o.fees_msat) / 1000,
        "fees": o.fees_msat,
        "invoice": o.bolt11,
        "createdAt": o.created_at_ms,
    });
    if let Some(p) = o.preimage {
        v["preimage"] = json!(hex::encode(p));
    }
    if let Some(t) = o.completed_at_ms {
        v["completedAt"] = json!(t);
    }
    v
}

/// `GET /payments/outgoingbyhash/{paymentHash}`: succeeded, else pending, else failed.
pub(crate) async fn outgoing_by_hash(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    let mut net = ctx.net.lock();
    let node = &mut net.nodes[ctx.index];
    if authenticate(&headers, node).is_none() {
        return text(401, UNAUTHORIZED);
    }
    node.requests
        .push((format!("payments/outgoingbyhash/{hash}"), Vec::new()));
    let hash = match hex32(&hash, "paymentHash") {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    let rank = |o: &&Outgoing| match (o.preimage.is_some(), o.failed) {
        (true, _) => 3,
        (false, false) => 2,
        (false, true) => 1,
    };
    match node
        .outgoing
        .iter()
        .filter(|o| o.payment_hash == hash)
        .max_by_key(rank)
    {
        Some(o) => Json(outgoing_json(o)).into_response(),
        None => not_found(),
    }
}

/// `GET /payments/outgoing/{uuid}`.
pub(crate) async fn outgoing_by_id(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let net = ctx.net.lock();
    let node = &net.nodes[ctx.index];
    if authenticate(&headers, node).is_none() {
        return text(401, UNAUTHORIZED);
    }
    let well_formed = id.len() == 36
        && id.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if !well_formed {
        return invalid("uuid", "uuid").into_response();
    }
    match node.outgoing.iter().find(|o| o.id == id) {
        Some(o) => Json(outgoing_json(o)).into_response(),
        None => not_found(),
    }
}

/// `POST /payinvoice` (full access only). Blocks until the payment ends.
pub(crate) async fn pay_invoice(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match pay(&ctx, &headers, &body) {
        Some(r) => r,
        // Left pending: the HTTP answer never comes.
        None => std::future::pending().await,
    }
}

fn failed(hash: [u8; 32], reason: &str) -> Response {
    // `PaymentFailed`, HTTP 200 like a success; `offerId` is left out for BOLT11.
    Json(json!({"paymentHash": hex::encode(hash), "reason": reason})).into_response()
}

fn pay(ctx: &Ctx, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let mut net = ctx.net.lock();
    let me = ctx.index;
    if authenticate(headers, &net.nodes[me]) != Some(Access::Full) {
        return Some(text(401, UNAUTHORIZED));
    }
    let form = form(body);
    net.nodes[me]
        .requests
        .push(("payinvoice".into(), form.clone()));
    let Some(raw) = param(&form, "invoice") else {
        return Some(missing("invoice").into_response());
    };
    let Ok(invoice) = Bolt11Invoice::from_str(raw) else {
        return Some(invalid("invoice", "bolt11invoice").into_response());
    };
    let amount = match optional_long(&form, "amountSat") {
        Ok(Some(s)) => s as u64 * 1000,
        Ok(None) => match invoice.amount_milli_satoshis() {
            Some(m) => m,
            None => return Some(missing("amountSat").into_response()),
        },
        Err(r) => return Some(r.into_response()),
    };
    let hash = *AsRef::<[u8; 32]>::as_ref(invoice.payment_hash());
    // lightning-kmp refuses a hash that already has a succeeded payment, before recording anything.
    if net.nodes[me]
        .outgoing
        .iter()
        .any(|o| o.payment_hash == hash && o.preimage.is_some())
    {
        return Some(failed(hash, "this invoice has already been paid"));
    }
    // Phoenix's trampoline fee: 4 sat + 0.4 %.
    let fee = 4_000 + amount * 4 / 1000;
    let mut payment = Outgoing {
        id: uuid(),
        payment_hash: hash,
        bolt11: raw.to_owned(),
        amount_msat: amount,
        fees_msat: 0,
        preimage: None,
        failed: false,
        created_at_ms: now_ms(),
        completed_at_ms: None,
    };
    let fail = |net: &mut super::Net, mut payment: Outgoing, reason: &str| {
        payment.failed = true;
        payment.completed_at_ms = Some(now_ms());
        net.nodes[me].outgoing.push(payment);
        Some(failed(hash, reason))
    };
    if amount.saturating_add(fee) > net.nodes[me].balance_msat {
        return fail(
            &mut net,
            payment,
            "not enough funds in wallet to afford payment",
        );
    }
    let destination = invoice.recover_payee_pub_key();
    let Some(payee) = net.nodes.iter().position(|n| n.id == destination) else {
        return fail(
            &mut net,
            payment,
            "the recipient was offline or did not have enough liquidity to receive the payment",
        );
    };
    if net.nodes[me].hang_pays {
        net.nodes[me].outgoing.push(payment);
        return None;
    }
    let now = now_ms();
    let settle = net.nodes[payee].incoming.iter().position(|i| {
        i.payment_hash == hash
            && i.completed_at_ms.is_none()
            && now <= i.created_at_ms + i.expiry_secs * 1000
            && i.amount_msat.is_none_or(|m| amount >= m)
    });
    let Some(inv) = settle else {
        return fail(&mut net, payment, "the recipient rejected the payment");
    };
    net.nodes[me].balance_msat -= amount + fee;
    net.nodes[payee].balance_msat += amount;
    let incoming = &mut net.nodes[payee].incoming[inv];
    incoming.completed_at_ms = Some(now);
    incoming.received_msat = amount;
    let preimage = incoming.preimage;
    payment.preimage = Some(preimage);
    payment.fees_msat = fee;
    payment.completed_at_ms = Some(now);
    let answer = json!({
        "recipientAmountSat": amount / 1000,
        "routingFeeSat": fee / 1000,
        "paymentId": payment.id,
        "paymentHash": hex::encode(hash),
        "paymentPreimage": hex::encode(preimage),
    });
    net.nodes[me].outgoing.push(payment);
    Some(Json(answer).into_response())
}

/// Any other path.
pub(crate) async fn unknown_endpoint() -> Response {
    text(404, "Unknown endpoint (check api doc)")
}

/// A known path with the wrong method.
pub(crate) async fn wrong_method() -> Response {
    text(405, "Invalid http method (use the correct GET/POST)")
}
