//! The four RPC methods the adapter uses, as `lightningd` and its `pay` plugin implement them.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::Secp256k1;
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};
use serde_json::{Map, Value, json};

use super::Net;

/// An RPC error: `code`, `message`, `data`.
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Value,
}

/// What a call did.
pub enum Outcome {
    Done(Result<Value, RpcError>),
    /// A payment left in flight: the HTTP answer never comes.
    Hang,
}

/// An invoice kept by the payee node.
pub struct Invoice {
    pub label: String,
    pub bolt11: String,
    pub payment_hash: [u8; 32],
    pub preimage: [u8; 32],
    pub amount_msat: Option<u64>,
    pub description: String,
    pub expires_at: u64,
    pub created_index: u64,
    /// `(paid_at, amount_received_msat, pay_index)` once paid.
    pub paid: Option<(u64, u64, u64)>,
}

/// A payment attempt kept by the paying node (`listsendpays`/`listpays`).
pub struct Attempt {
    pub payment_hash: [u8; 32],
    pub bolt11: String,
    pub destination: String,
    pub amount_msat: u64,
    pub amount_sent_msat: u64,
    /// `pending`, `failed` or `complete`.
    pub status: &'static str,
    pub preimage: Option<[u8; 32]>,
    pub created_at: u64,
    pub completed_at: Option<u64>,
    pub created_index: u64,
}

const INVALID_PARAMS: i64 = -32602;

fn err(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
        data: Value::Null,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `param()`: refuses parameters the method does not know.
fn known(params: &Map<String, Value>, allowed: &[&str]) -> Result<(), RpcError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(
            INVALID_PARAMS,
            format!(
                "unknown parameter: {k}, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters."
            ),
        )),
        None => Ok(()),
    }
}

fn required<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a Value, RpcError> {
    params.get(name).ok_or_else(|| {
        err(
            INVALID_PARAMS,
            format!("missing required parameter: {name}"),
        )
    })
}

/// `command_fail_badparam`: the token itself stays in the node's log, not in the answer.
fn bad(name: &str, what: &str) -> RpcError {
    err(
        INVALID_PARAMS,
        format!("{name}: {what}: invalid token (see logs for details)"),
    )
}

/// `param_msat`: an integer (msat) or a string `N`, `Nmsat`, `Nsat`.
fn msat(v: &Value, name: &str) -> Result<u64, RpcError> {
    let parsed = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            if let Some(n) = s.strip_suffix("msat") {
                n.parse().ok()
            } else if let Some(n) = s.strip_suffix("sat") {
                n.parse::<u64>().ok().and_then(|n| n.checked_mul(1000))
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    };
    parsed.ok_or_else(|| bad(name, "should be a millisatoshi amount"))
}

fn hash_param(v: &Value, name: &str) -> Result<[u8; 32], RpcError> {
    v.as_str()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| bad(name, "should be a 32 byte hex value"))
}

/// Runs `method` on node `me`.
pub fn call(net: &mut Net, me: usize, method: &str, params: Map<String, Value>) -> Outcome {
    match method {
        "invoice" => Outcome::Done(invoice(net, me, &params)),
        "listinvoices" => Outcome::Done(listinvoices(net, me, &params)),
        "pay" => pay(net, me, &params),
        "listpays" => Outcome::Done(listpays(net, me, &params)),
        other => Outcome::Done(Err(err(-32601, format!("Unknown command '{other}'")))),
    }
}

/// `invoice` (lightningd/invoice.c `json_invoice`).
fn invoice(net: &mut Net, me: usize, params: &Map<String, Value>) -> Result<Value, RpcError> {
    known(
        params,
        &[
            "amount_msat",
            "label",
            "description",
            "expiry",
            "fallbacks",
            "preimage",
            "exposeprivatechannels",
            "cltv",
            "deschashonly",
        ],
    )?;
    let amount = match required(params, "amount_msat")? {
        Value::String(s) if s == "any" => None,
        v => match msat(v, "amount_msat") {
            Ok(0) | Err(_) => return Err(bad("amount_msat", "should be positive msat or 'any'")),
            Ok(m) => Some(m),
        },
    };
    let label = match required(params, "label")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad("label", "should be a string or number")),
    };
    let description = required(params, "description")?
        .as_str()
        .ok_or_else(|| bad("description", "should be a string"))?
        .to_owned();
    let expiry = match params.get("expiry") {
        None => 604_800,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| bad("expiry", "should be an unsigned 64 bit integer"))?,
    };
    if label.len() > 128 {
        return Err(err(
            INVALID_PARAMS,
            format!("Label '{label}' over 128 bytes"),
        ));
    }
    if description.len() > 639 {
        return Err(err(
            INVALID_PARAMS,
            format!(
                "Description greater than 639 bytes invalid (description length {})",
                description.len()
            ),
        ));
    }
    let preimage = match params.get("preimage") {
        Some(v) => hash_param(v, "preimage")?,
        None => l402_test::random32(),
    };
    let node = &mut net.nodes[me];
    let payment_hash = sha256::Hash::hash(&preimage).to_byte_array();
    if node.invoices.iter().any(|i| i.payment_hash == payment_hash) {
        return Err(err(901, "preimage already used"));
    }
    if node.invoices.iter().any(|i| i.label == label) {
        return Err(err(900, format!("Duplicate label '{label}'")));
    }
    let created = SystemTime::now();
    let builder = InvoiceBuilder::new(Currency::Regtest)
        .description(description.clone())
        .payment_hash(sha256::Hash::from_byte_array(payment_hash))
        .payment_secret(PaymentSecret(l402_test::random32()))
        .timestamp(created)
        .min_final_cltv_expiry_delta(18)
        .expiry_time(Duration::from_secs(expiry));
    let builder = match amount {
        Some(m) => builder.amount_milli_satoshis(m),
        None => builder,
    };
    let secp = Secp256k1::new();
    let bolt11 = builder
        .build_signed(|msg| secp.sign_ecdsa_recoverable(msg, &node.key))
        .map_err(|e| err(-1, format!("cannot encode invoice: {e:?}")))?
        .to_string();
    let timestamp = created.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let created_index = node.next_index;
    node.next_index += 1;
    let expires_at = timestamp + expiry;
    node.invoices.push(Invoice {
        label,
        bolt11: bolt11.clone(),
        payment_hash,
        preimage,
        amount_msat: amount,
        description,
        expires_at,
        created_index,
        paid: None,
    });
    Ok(json!({
        "payment_hash": hex::encode(payment_hash),
        "expires_at": expires_at,
        "bolt11": bolt11,
        "payment_secret": hex::encode(l402_test::random32()),
        "created_index": created_index,
    }))
}

fn invoice_json(i: &Invoice) -> Value {
    let status = if i.paid.is_some() {
        "paid"
    } else if now() > i.expires_at {
        "expired"
    } else {
        "unpaid"
    };
    let mut v = json!({
        "label": i.label,
        "bolt11": i.bolt11,
        "payment_hash": hex::encode(i.payment_hash),
        "status": status,
        "description": i.description,
        "expires_at": i.expires_at,
        "created_index": i.created_index,
    });
    if let Some(m) = i.amount_msat {
        v["amount_msat"] = json!(m);
    }
    if let Some((paid_at, received, pay_index)) = i.paid {
        v["pay_index"] = json!(pay_index);
        v["amount_received_msat"] = json!(received);
        v["paid_at"] = json!(paid_at);
        v["payment_preimage"] = json!(hex::encode(i.preimage));
        v["updated_index"] = json!(pay_index);
    }
    v
}

/// `listinvoices` (`json_listinvoices`): an unknown hash is an empty list, not an error.
fn listinvoices(net: &mut Net, me: usize, params: &Map<String, Value>) -> Result<Value, RpcError> {
    known(
        params,
        &[
            "label",
            "invstring",
            "payment_hash",
            "offer_id",
            "index",
            "start",
            "limit",
        ],
    )?;
    let selectors = ["label", "invstring", "payment_hash", "offer_id"]
        .iter()
        .filter(|k| params.contains_key(**k))
        .count();
    if selectors > 1 {
        return Err(err(
            INVALID_PARAMS,
            "Can only specify one of {label}, {invstring}, {payment_hash} or {offer_id}",
        ));
    }
    let hash = params
        .get("payment_hash")
        .map(|v| hash_param(v, "payment_hash"))
        .transpose()?;
    let label = params.get("label").and_then(Value::as_str);
    let invoices: Vec<Value> = net.nodes[me]
        .invoices
        .iter()
        .filter(|i| hash.is_none_or(|h| i.payment_hash == h))
        .filter(|i| label.is_none_or(|l| i.label == l))
        .map(invoice_json)
        .collect();
    Ok(json!({ "invoices": invoices }))
}

fn success(a: &Attempt, parts: u64) -> Value {
    json!({
        "destination": a.destination,
        "payment_hash": hex::encode(a.payment_hash),
        // xpay and recent pay versions report a fractional time.
        "created_at": a.created_at as f64 + 0.25,
        "parts": parts,
        "amount_msat": a.amount_msat,
        "amount_sent_msat": a.amount_sent_msat,
        "payment_preimage": hex::encode(a.preimage.expect("complete payments have a preimage")),
        "status": "complete",
    })
}

/// `pay` (plugins/pay.c `json_pay` and libplugin-pay).
fn pay(net: &mut Net, me: usize, params: &Map<String, Value>) -> Outcome {
    match pay_inner(net, me, params) {
        Ok(Some(v)) => Outcome::Done(Ok(v)),
        Ok(None) => Outcome::Hang,
        Err(e) => Outcome::Done(Err(e)),
    }
}

fn pay_inner(
    net: &mut Net,
    me: usize,
    params: &Map<String, Value>,
) -> Result<Option<Value>, RpcError> {
    known(
        params,
        &[
            "bolt11",
            "amount_msat",
            "label",
            "riskfactor",
            "maxfeepercent",
            "retry_for",
            "maxdelay",
            "exemptfee",
            "localinvreqid",
            "exclude",
            "maxfee",
            "description",
            "partial_msat",
        ],
    )?;
    let bolt11 = required(params, "bolt11")?
        .as_str()
        .ok_or_else(|| bad("bolt11", "should be a string"))?
        .to_owned();
    let invoice = Bolt11Invoice::from_str(&bolt11)
        .map_err(|e| err(INVALID_PARAMS, format!("Invalid bolt11: {e}")))?;
    let maxfee = params
        .get("maxfee")
        .map(|v| msat(v, "maxfee"))
        .transpose()?;
    if maxfee.is_some()
        && (params.contains_key("maxfeepercent") || params.contains_key("exemptfee"))
    {
        return Err(err(
            INVALID_PARAMS,
            "If you specify maxfee, cannot specify maxfeepercent or exemptfee.",
        ));
    }
    if let Some(v) = params.get("retry_for") {
        v.as_u64()
            .ok_or_else(|| bad("retry_for", "should be an integer"))?;
    }
    let amount = match (invoice.amount_milli_satoshis(), params.get("amount_msat")) {
        (Some(_), Some(_)) => return Err(err(INVALID_PARAMS, "msatoshi parameter unnecessary")),
        (None, None) => return Err(err(INVALID_PARAMS, "msatoshi parameter required")),
        (Some(m), None) => m,
        (None, Some(v)) => msat(v, "amount_msat")?,
    };
    // The expiry check comes before anything else is looked at.
    if invoice.is_expired() {
        return Err(err(207, "Invoice expired"));
    }
    let hash = *AsRef::<[u8; 32]>::as_ref(invoice.payment_hash());
    let destination = invoice.recover_payee_pub_key();
    let payer = &net.nodes[me];
    // `listsendpays` first: a complete payment is returned as is, a pending one is waited for.
    if let Some(done) = payer
        .pays
        .iter()
        .find(|a| a.payment_hash == hash && a.status == "complete")
    {
        return Ok(Some(success(done, 1)));
    }
    if payer
        .pays
        .iter()
        .any(|a| a.payment_hash == hash && a.status == "pending")
    {
        return Ok(None);
    }
    // The default budget: 0.5 % with 5000 msat exempt.
    let budget = maxfee.unwrap_or_else(|| (amount / 200).max(5000));
    let fee = payer.fee_msat;
    let Some(payee) = net.nodes.iter().position(|n| n.id == destination) else {
        return Err(err(205, format!("Could not find a route to {destination}")));
    };
    let total = amount.saturating_add(fee);
    if total > net.nodes[me].balance_msat {
        return Err(err(
            215,
            format!(
                "Insufficient funds to perform the payment: spendable={}msat < payment={total}msat",
                net.nodes[me].balance_msat
            ),
        ));
    }
    if fee > budget {
        return Err(RpcError {
            code: 206,
            message: format!(
                "Fee exceeds our fee budget: {fee}msat > {budget}msat, discarding route"
            ),
            data: json!({"fee": fee, "feepercent": fee as f64 * 100.0 / amount as f64, "delay": 18}),
        });
    }
    let created_index = net.nodes[me].next_index;
    net.nodes[me].next_index += 1;
    let mut attempt = Attempt {
        payment_hash: hash,
        bolt11,
        destination: destination.to_string(),
        amount_msat: amount,
        amount_sent_msat: total,
        status: "pending",
        preimage: None,
        created_at: now(),
        completed_at: None,
        created_index,
    };
    if net.nodes[me].hang_pays {
        net.nodes[me].pays.push(attempt);
        return Ok(None);
    }
    // The payee settles only an unpaid, unexpired invoice of at least the amount.
    let settled = net.nodes[payee].invoices.iter().position(|i| {
        i.payment_hash == hash
            && i.paid.is_none()
            && now() <= i.expires_at
            && i.amount_msat.is_none_or(|m| amount >= m)
    });
    let Some(inv) = settled else {
        attempt.status = "failed";
        attempt.completed_at = Some(now());
        net.nodes[me].pays.push(attempt);
        return Err(RpcError {
            code: 203,
            message: "failed: WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS (reply from remote)".into(),
            data: json!({"payment_hash": hex::encode(hash), "status": "failed"}),
        });
    };
    net.nodes[me].balance_msat -= total;
    let pay_index = net.nodes[payee].next_index;
    net.nodes[payee].next_index += 1;
    net.nodes[payee].balance_msat += amount;
    let invoice = &mut net.nodes[payee].invoices[inv];
    invoice.paid = Some((now(), amount, pay_index));
    attempt.preimage = Some(invoice.preimage);
    attempt.status = "complete";
    attempt.completed_at = Some(now());
    let answer = success(&attempt, 1);
    net.nodes[me].pays.push(attempt);
    Ok(Some(answer))
}

/// `listpays`: attempts by `bolt11` or `payment_hash`; note the preimage field is `preimage`.
fn listpays(net: &mut Net, me: usize, params: &Map<String, Value>) -> Result<Value, RpcError> {
    known(
        params,
        &[
            "bolt11",
            "payment_hash",
            "status",
            "index",
            "start",
            "limit",
        ],
    )?;
    let hash = params
        .get("payment_hash")
        .map(|v| hash_param(v, "payment_hash"))
        .transpose()?;
    let bolt11 = params.get("bolt11").and_then(Value::as_str);
    let pays: Vec<Value> = net.nodes[me]
        .pays
        .iter()
        .filter(|a| hash.is_none_or(|h| a.payment_hash == h))
        .filter(|a| bolt11.is_none_or(|b| a.bolt11 == b))
        .map(|a| {
            let mut v = json!({
                "payment_hash": hex::encode(a.payment_hash),
                "status": a.status,
                "destination": a.destination,
                "created_at": a.created_at,
                "bolt11": a.bolt11,
                "created_index": a.created_index,
                "amount_sent_msat": a.amount_sent_msat,
            });
            if let Some(t) = a.completed_at {
                v["completed_at"] = json!(t);
            }
            if a.status == "complete" {
                v["amount_msat"] = json!(a.amount_msat);
                v["number_of_parts"] = json!(1);
                v["preimage"] = json!(hex::encode(a.preimage.unwrap()));
            }
            v
        })
        .collect();
    Ok(json!({ "pays": pays }))
}
