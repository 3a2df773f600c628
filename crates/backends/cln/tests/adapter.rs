//! What the CLN adapter does beyond the conformance suite: the parameters it sends, msat amounts,
//! the mapping of clnrest's error shapes, TLS trust, runes, and keeping the rune secret.

mod standin;

use std::str::FromStr;
use std::time::{Duration, Instant};

use l402::{
    ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, InvoiceState, Msat, PayRequest,
    PaymentHash, PaymentState,
};
use l402_cln::ClnBackend;
use serde_json::{Value, json};
use standin::{ClnNode, Network, Options};

async fn pair() -> (ClnBackend, ClnBackend, ClnNode, ClnNode) {
    let net = Network::new();
    let shop = net.node("shop", Options::default()).await;
    let alice = net.node("alice", Options::default()).await;
    (
        ClnBackend::from_uri(&shop.uri()).unwrap(),
        ClnBackend::from_uri(&alice.uri()).unwrap(),
        shop,
        alice,
    )
}

fn last_params(node: &ClnNode, method: &str) -> Value {
    node.requests()
        .into_iter()
        .rev()
        .find(|(m, _)| m == method)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no {method} call"))
}

fn rpc_error(code: i64, message: &str) -> Value {
    json!({"code": code, "message": message, "data": null})
}

#[tokio::test]
async fn invoice_parameters_are_msat_exact_with_unique_labels() {
    let (shop, alice, shop_node, _) = pair().await;
    let a = shop
        .create_invoice(
            InvoiceRequest::new(Msat::new(21_500), "half a sat more")
                .expiry(Duration::from_millis(1500)),
        )
        .await
        .unwrap();
    let p = last_params(&shop_node, "invoice");
    assert_eq!(p["amount_msat"], json!(21_500), "msat, not sat");
    assert_eq!(p["description"], json!("half a sat more"));
    assert_eq!(p["expiry"], json!(2), "whole seconds, rounded up");
    let label_a = p["label"].as_str().unwrap().to_owned();
    assert!(label_a.starts_with("l402-"), "{label_a}");
    shop.create_invoice(InvoiceRequest::new(Msat::new(21_500), "half a sat more"))
        .await
        .unwrap();
    let label_b = last_params(&shop_node, "invoice")["label"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        label_a, label_b,
        "labels must be unique (CLN refuses duplicates)"
    );

    let decoded = lightning_invoice::Bolt11Invoice::from_str(&a.bolt11).unwrap();
    assert_eq!(decoded.amount_milli_satoshis(), Some(21_500));
    assert_eq!(
        decoded.payment_hash().as_ref() as &[u8],
        a.payment_hash.as_bytes()
    );
    let paid = alice
        .pay(PayRequest::new(a.bolt11, Msat::new(1_000)))
        .await
        .unwrap();
    assert_eq!(paid.amount, Msat::new(21_500));
    assert_eq!(
        paid.fee,
        Msat::new(1_000),
        "fee = amount_sent_msat - amount_msat"
    );
}

#[tokio::test]
async fn pay_sends_an_absolute_fee_cap_and_retry_deadline() {
    let (shop, alice, _, alice_node) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(5), "x"))
        .await
        .unwrap();
    let mut req = PayRequest::new(inv.bolt11, Msat::new(1_234));
    req.timeout = Duration::from_secs(42);
    alice.pay(req).await.unwrap();
    let p = last_params(&alice_node, "pay");
    assert_eq!(p["maxfee"], json!(1_234));
    assert_eq!(p["retry_for"], json!(42));
    assert!(
        p.get("maxfeepercent").is_none() && p.get("exemptfee").is_none(),
        "{p}"
    );
    assert!(
        alice_node.requests().iter().all(|(m, _)| m == "pay"),
        "one call, no lookups: {:?}",
        alice_node.requests()
    );
}

#[tokio::test]
async fn fee_above_the_cap_is_refused_and_nothing_moves() {
    let (shop, alice, _, alice_node) = pair().await;
    let before = alice_node.balance_msat();
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(5), "x"))
        .await
        .unwrap();
    // The stand-in's route costs 1000 msat.
    let e = alice
        .pay(PayRequest::new(inv.bolt11, Msat::new(999)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PaymentFailed, "{e}");
    assert!(e.to_string().contains("PAY_ROUTE_TOO_EXPENSIVE"), "{e}");
    assert_eq!(alice_node.balance_msat(), before);
    assert_eq!(
        alice.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::NotFound
    );
    assert_eq!(
        shop.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
}

#[tokio::test]
async fn specific_pay_failures_keep_their_kinds() {
    let net = Network::new();
    let shop_node = net.node("shop", Options::default()).await;
    let poor_node = net
        .node(
            "poor",
            Options {
                balance_msat: 10_000,
                ..Options::default()
            },
        )
        .await;
    let shop = ClnBackend::from_uri(&shop_node.uri()).unwrap();
    let poor = ClnBackend::from_uri(&poor_node.uri()).unwrap();

    // 215: not enough funds.
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(50), "x"))
        .await
        .unwrap();
    let e = poor
        .pay(PayRequest::new(inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientBalance, "{e}");

    // 207: expired.
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x").expiry(Duration::from_secs(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let e = poor
        .pay(PayRequest::new(inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvoiceExpired, "{e}");

    // 205: an invoice of a node nobody can reach.
    let stranger =
        l402_test::invoice::regtest_invoice(&PaymentHash::from_bytes([9; 32]), 1_000, "x");
    let e = poor
        .pay(PayRequest::new(stranger, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PaymentFailed, "{e}");
    assert!(e.to_string().contains("PAY_ROUTE_NOT_FOUND"), "{e}");

    // -32602: not an invoice at all.
    let e = poor
        .pay(PayRequest::new("lnbcrt1garbage", Msat::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
}

#[tokio::test]
async fn a_failed_attempt_is_reported_failed_and_is_safe_to_retry() {
    let net = Network::new();
    let shop_node = net.node("shop", Options::default()).await;
    let carol_node = net.node("carol", Options::default()).await;
    let alice_node = net.node("alice", Options::default()).await;
    let shop = ClnBackend::from_uri(&shop_node.uri()).unwrap();
    let carol = ClnBackend::from_uri(&carol_node.uri()).unwrap();
    let alice = ClnBackend::from_uri(&alice_node.uri()).unwrap();
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(3), "x"))
        .await
        .unwrap();
    carol
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .unwrap();
    // The payee refuses a second payer (203, incorrect_or_unknown_payment_details).
    let e = alice
        .pay(PayRequest::new(inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PaymentFailed, "{e}");
    assert!(matches!(
        alice.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::Failed { .. }
    ));
}

#[tokio::test]
async fn injected_error_shapes_map_to_kinds() {
    let (_, alice, _, alice_node) = pair().await;
    let pay = || alice.pay(PayRequest::new("lnbcrt1x", Msat::ZERO));
    let cases: Vec<(u16, Value, ErrorKind)> = vec![
        (
            500,
            rpc_error(210, "Ran out of routes to try after 3 attempts"),
            ErrorKind::PaymentFailed,
        ),
        (
            500,
            rpc_error(201, "Already succeeded with amount 1000msat (not 2000msat)"),
            ErrorKind::AlreadyPaid,
        ),
        (
            500,
            rpc_error(207, "Invoice expired"),
            ErrorKind::InvoiceExpired,
        ),
        (
            500,
            rpc_error(215, "Insufficient funds"),
            ErrorKind::InsufficientBalance,
        ),
        (
            500,
            rpc_error(200, "Payment with groupid=1 still in progress"),
            ErrorKind::Unavailable,
        ),
        (
            500,
            rpc_error(-4, "Plugin terminated before replying to RPC call."),
            ErrorKind::Unavailable,
        ),
        (
            500,
            rpc_error(-32602, "bolt11: should be an invoice"),
            ErrorKind::InvalidRequest,
        ),
        (
            500,
            json!({"code": null, "message": "Could not connect to RPC", "data": null}),
            ErrorKind::Unavailable,
        ),
        (
            404,
            rpc_error(-32601, "Unknown command 'pay'"),
            ErrorKind::Unsupported,
        ),
        (
            401,
            rpc_error(1503, "Not authorized: Blacklisted rune"),
            ErrorKind::Unauthorized,
        ),
        (503, json!("upstream down"), ErrorKind::Unavailable),
    ];
    for (status, body, want) in cases {
        alice_node.inject(status, body.clone());
        let e = pay().await.unwrap_err();
        assert_eq!(e.kind(), want, "HTTP {status} {body}: {e}");
        assert_eq!(e.is_transient(), want.is_transient());
    }
    // The same generic code means "unavailable" on the invoice side.
    alice_node.inject(500, rpc_error(-1, "Database error"));
    let e = alice
        .invoice_state(&PaymentHash::from_bytes([1; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // A success status with a body that is not the documented result is a protocol error.
    alice_node.inject(201, json!({"unexpected": true}));
    let e = alice
        .invoice_state(&PaymentHash::from_bytes([1; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
}

#[tokio::test]
async fn unpaid_past_expiry_reads_expired() {
    let (shop, _, shop_node, _) = pair().await;
    let hash = PaymentHash::from_bytes([3; 32]);
    // A node that has not flipped the status yet still says "unpaid".
    shop_node.inject(
        201,
        json!({"invoices": [{
            "label": "l", "bolt11": "lnbcrt1", "payment_hash": hash.to_hex(),
            "status": "unpaid", "description": "", "expires_at": 1_000, "created_index": 1
        }]}),
    );
    assert_eq!(
        shop.invoice_state(&hash).await.unwrap(),
        InvoiceState::Expired
    );
}

#[tokio::test]
async fn xpay_already_paid_returns_the_first_result() {
    let (shop, alice, _, alice_node) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(4), "x"))
        .await
        .unwrap();
    let first = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .unwrap();
    alice_node.inject(
        500,
        rpc_error(218, "Already paid this invoice successfully"),
    );
    let again = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .unwrap();
    assert_eq!(again.preimage, first.preimage);
    assert_eq!(alice_node.attempts(), 1, "paid once");
    let lookup = last_params(&alice_node, "listpays");
    assert_eq!(lookup, json!({"bolt11": inv.bolt11}));

    // With nothing paid, 219 stays an AlreadyPaid error.
    let other = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(4), "y"))
        .await
        .unwrap();
    alice_node.inject(500, rpc_error(219, "Already paid"));
    let e = alice
        .pay(PayRequest::new(other.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyPaid, "{e}");
}

#[tokio::test]
async fn a_hanging_payment_times_out_and_reads_in_flight() {
    let (shop, alice, _, alice_node) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(4), "x"))
        .await
        .unwrap();
    alice_node.set_hang_pays(true);
    let mut req = PayRequest::new(inv.bolt11, Msat::from_sat(10));
    req.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let e = alice.pay(req).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        alice.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::InFlight
    );
    assert_eq!(
        shop.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
}

#[tokio::test]
async fn a_restricted_rune_is_unauthorized_for_other_methods() {
    let (_, _, shop_node, _) = pair().await;
    let rune = shop_node.restricted_rune(&["invoice", "listinvoices"]);
    let shop = ClnBackend::from_uri(&shop_node.uri_with_rune(&rune)).unwrap();
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "ok"))
        .await
        .unwrap();
    assert_eq!(
        shop.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
    let e = shop.payment(&inv.payment_hash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("Not permitted"), "{e}");
}

#[tokio::test]
async fn the_rune_never_appears_in_errors() {
    let (_, _, shop_node, _) = pair().await;
    let rune = "U0VDUkVULVJVTkUtZG8tbm90LWxlYWs";
    let c = ClnBackend::from_uri(&shop_node.uri_with_rune(rune)).unwrap();
    assert!(!format!("{c:?}").contains(rune));
    // Refused (401).
    let e = c
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(
        !e.to_string().contains(rune) && !format!("{e:?}").contains(rune),
        "{e:?}"
    );
    // A node that echoes the parameter back (as CLN's badparam does in developer mode).
    let good = ClnBackend::from_uri(&shop_node.uri()).unwrap();
    shop_node.inject(
        500,
        rpc_error(
            -32602,
            &format!(
                "rune: should be base64 string: invalid token '{}'",
                shop_node.rune
            ),
        ),
    );
    let e = good
        .invoice_state(&PaymentHash::from_bytes([1; 32]))
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(&shop_node.rune), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[tokio::test]
async fn tls_trust_follows_the_uri() {
    let net = Network::new();
    let a = net.node("a", Options::default()).await;
    let b = net.node("b", Options::default()).await;
    let probe = |uri: String| async move {
        ClnBackend::from_uri(&uri)
            .unwrap()
            .invoice_state(&PaymentHash::from_bytes([1; 32]))
            .await
    };
    let a_ca = a.certs.as_ref().unwrap().ca.display().to_string();
    let b_ca = b.certs.as_ref().unwrap().ca.display().to_string();
    // The server certificate names `localhost` as clnrest's does.
    let e = probe(format!(
        "cln+rest://localhost:{}?rune={}&cacert={a_ca}",
        a.addr.port(),
        a.rune
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "trusted: {e}");
    // Another node's CA is not trusted: a handshake failure is "unreachable".
    let e = probe(format!(
        "cln+rest://{}?rune={}&cacert={b_ca}",
        a.addr, a.rune
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    // Without cacert=, the public roots do not cover clnrest's CA.
    let e = probe(format!("cln+rest://{}?rune={}", a.addr, a.rune))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    // Pinning the other node's certificate fails too.
    let e = probe(format!(
        "cln+rest://{}?rune={}&cert={}",
        a.addr,
        a.rune,
        b.certs.as_ref().unwrap().server.display()
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
}
