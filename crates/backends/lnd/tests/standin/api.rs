//! The stand-in's router, macaroon check and invoice routes (AddInvoice, LookupInvoice). Each
//! handler names the lnd (or grpc-gateway) code it mirrors.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::Secp256k1;
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use serde_json::json;

use super::json::{self, Body, Status};
use super::{InvState, InvoiceRec, Network, payments};

/// The permissions lnd's `macPermissions` require for the calls served here.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Perm {
    InvoicesRead,
    InvoicesWrite,
    OffchainRead,
    OffchainWrite,
}

#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) net: Network,
    pub(crate) node: usize,
}

pub(crate) fn router(net: Network, node: usize) -> Router {
    Router::new()
        .route("/v1/invoices", post(add_invoice))
        .route("/v1/invoice/{r_hash_str}", get(lookup_invoice))
        .route("/v2/router/send", post(payments::send_payment_v2))
        .route(
            "/v2/router/track/{payment_hash}",
            get(payments::track_payment_v2),
        )
        // grpc-gateway's routing errors (runtime/errors.go): 404 code 5 "Not Found", and 501
        // code 12 "Method Not Allowed".
        .fallback(|| async { json::unary_error(5, "Not Found") })
        .method_not_allowed_fallback(|| async { json::unary_error(12, "Method Not Allowed") })
        .with_state(Ctx { net, node })
}

impl Ctx {
    /// lnd's macaroon interceptor (`macaroons.Service.ValidateMacaroon`): exactly one
    /// `macaroon` metadata value, hex, then the bakery check. Every failure is a plain error.
    pub(crate) fn auth(&self, headers: &HeaderMap, perm: Perm) -> Result<(), String> {
        let values: Vec<_> = headers.get_all("grpc-metadata-macaroon").iter().collect();
        if values.len() != 1 {
            return Err(format!("expected 1 macaroon, got {}", values.len()));
        }
        let text = values[0].to_str().unwrap_or("\u{fffd}");
        let bytes = go_hex_decode(text)?;
        let l = self.net.shared.ledger.lock().unwrap();
        let node = &l.nodes[self.node];
        if bytes == node.admin_macaroon {
            Ok(())
        } else if bytes == node.invoice_macaroon {
            match perm {
                Perm::InvoicesRead | Perm::InvoicesWrite => Ok(()),
                Perm::OffchainRead | Perm::OffchainWrite => Err("permission denied".to_owned()),
            }
        } else {
            Err("verification failed: signature mismatch after caveat verification".to_owned())
        }
    }
}

/// Go's `hex.DecodeString`, with its error texts.
fn go_hex_decode(s: &str) -> Result<Vec<u8>, String> {
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "encoding/hex: invalid byte: U+{:04X} {c:?}",
            c as u32
        ));
    }
    hex::decode(s).map_err(|_| "encoding/hex: odd length hex string".to_owned())
}

// === AddInvoice ===

/// `lnrpc.Invoice` field names (a body with any other key is refused).
const INVOICE_FIELDS: &[&str] = &[
    "memo",
    "r_preimage",
    "r_hash",
    "value",
    "value_msat",
    "settled",
    "creation_date",
    "settle_date",
    "payment_request",
    "description_hash",
    "expiry",
    "fallback_addr",
    "cltv_expiry",
    "route_hints",
    "private",
    "add_index",
    "settle_index",
    "amt_paid",
    "amt_paid_sat",
    "amt_paid_msat",
    "state",
    "htlcs",
    "features",
    "is_keysend",
    "payment_addr",
    "is_amp",
    "amp_invoice_state",
    "is_blinded",
    "blinded_path_config",
];

/// lnd's 100k BTC cap on invoices (`invoicesrpc.AddInvoice`).
const MAX_INVOICE_SAT: i64 = 100_000 * 100_000_000;

/// `POST /v1/invoices`: `rpcServer.AddInvoice` → `lnrpc.UnmarshallAmt` →
/// `invoicesrpc.AddInvoice`.
async fn add_invoice(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match Body::parse(&body, INVOICE_FIELDS) {
        Ok(b) => b,
        Err(s) => return s.unary(),
    };
    if let Err(msg) = ctx.auth(&headers, Perm::InvoicesWrite) {
        return json::unary_error(2, &msg);
    }
    let fields = (|| {
        Ok::<_, Status>((
            body.string("memo")?,
            body.int64("value")?,
            body.int64("value_msat")?,
            body.int64("expiry")?,
            body.bytes("r_preimage")?,
        ))
    })();
    let (memo, value, value_msat, expiry, r_preimage) = match fields {
        Ok(f) => f,
        Err(s) => return s.unary(),
    };
    let fail = |msg: String| json::unary_error(2, &msg);
    // lnrpc.UnmarshallAmt
    if value != 0 && value_msat != 0 {
        return fail("sat and msat arguments are mutually exclusive".into());
    }
    if value < 0 || value_msat < 0 {
        return fail("amount cannot be negative".into());
    }
    let amt_msat = if value != 0 {
        value.saturating_mul(1000)
    } else {
        value_msat
    };
    // invoicesrpc.AddInvoice
    if memo.len() > 1024 {
        return fail(format!(
            "memo too large: {} bytes (maxsize=1024)",
            memo.len()
        ));
    }
    if amt_msat / 1000 > MAX_INVOICE_SAT {
        return fail(format!(
            "invoice amount {} BTC is too large, max is {} BTC",
            amt_msat as f64 / 1e11,
            MAX_INVOICE_SAT / 100_000_000
        ));
    }
    let expiry = match expiry {
        0 => 86_400,
        e if e > 365 * 24 * 3600 => {
            return fail(format!(
                "expiry of {e} seconds greater than max expiry of 3.1536e+07 seconds"
            ));
        }
        e => e,
    };
    let preimage: [u8; 32] = match r_preimage.len() {
        0 => l402_test::random32(),
        32 => r_preimage.try_into().unwrap(),
        n => return fail(format!("invalid preimage length of {n}, want 32")),
    };
    let hash = sha256::Hash::hash(&preimage).to_byte_array();
    let payment_addr = l402_test::random32();
    let now = SystemTime::now();

    let mut l = ctx.net.shared.ledger.lock().unwrap();
    if l.invoices.contains_key(&hash) {
        return fail("invoice with payment hash already exists".into());
    }
    let key = l.nodes[ctx.node].key;
    let secp = Secp256k1::new();
    let mut builder = InvoiceBuilder::new(Currency::Regtest)
        .description(memo.clone())
        .payment_hash(sha256::Hash::from_byte_array(hash))
        .payment_secret(PaymentSecret(payment_addr))
        .duration_since_epoch(now.duration_since(SystemTime::UNIX_EPOCH).unwrap())
        .min_final_cltv_expiry_delta(80)
        .expiry_time(Duration::from_secs(expiry as u64));
    // lnd leaves the amount out of a 0-value invoice: anyone may then pay any amount.
    if amt_msat > 0 {
        builder = builder.amount_milli_satoshis(amt_msat as u64);
    }
    let bolt11 = builder
        .build_signed(|msg| secp.sign_ecdsa_recoverable(msg, &key))
        .unwrap()
        .to_string();
    let node = &mut l.nodes[ctx.node];
    let add_index = node.next_add_index;
    node.next_add_index += 1;
    l.invoices.insert(
        hash,
        InvoiceRec {
            owner: ctx.node,
            memo,
            preimage,
            hash,
            value_msat: amt_msat,
            created: now,
            expiry_secs: expiry,
            payment_request: bolt11.clone(),
            payment_addr,
            state: InvState::Open,
            settle_date: 0,
            amt_paid_msat: 0,
            add_index,
            settle_index: 0,
        },
    );
    axum::Json(json!({
        "r_hash": STANDARD.encode(hash),
        "payment_request": bolt11,
        "add_index": add_index.to_string(),
        "payment_addr": STANDARD.encode(payment_addr),
    }))
    .into_response()
}

// === LookupInvoice ===

/// `GET /v1/invoice/{r_hash_str}`: `rpcServer.LookupInvoice` — hex in the path, exactly 32
/// bytes, NotFound (404, code 5) with the invoice registry's message.
async fn lookup_invoice(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(r_hash_str): Path<String>,
) -> Response {
    if let Err(msg) = ctx.auth(&headers, Perm::InvoicesRead) {
        return json::unary_error(2, &msg);
    }
    let bytes = match go_hex_decode(&r_hash_str) {
        Ok(b) => b,
        Err(msg) => return json::unary_error(2, &msg),
    };
    if bytes.len() != 32 {
        return json::unary_error(
            2,
            &format!(
                "payment hash must be exactly 32 bytes, is instead {}",
                bytes.len()
            ),
        );
    }
    let mut l = ctx.net.shared.ledger.lock().unwrap();
    l.run_expiry_watcher(SystemTime::now());
    let mine = |i: &&InvoiceRec| i.owner == ctx.node;
    match l.invoices.get(&bytes[..]).filter(mine) {
        Some(inv) => axum::Json(json::invoice(inv)).into_response(),
        // The KV invoice store answers ErrNoInvoicesCreated while it holds none.
        None if !l.invoices.values().any(|i| i.owner == ctx.node) => {
            json::unary_error(5, "there are no existing invoices")
        }
        None => json::unary_error(5, "unable to locate invoice"),
    }
}
