//! What the phoenixd adapter does beyond the conformance suite: the form fields it sends, the
//! whole-satoshi rule, phoenixd's failure shapes (200 + reason, plain-text errors, two kinds of
//! 404), the limited password, never paying twice, and keeping the password secret.

mod standin;

use std::str::FromStr;
use std::time::{Duration, Instant};

use l402::{
    ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, InvoiceState, Msat, PayRequest,
    PaymentHash, PaymentState,
};
use l402_phoenixd::PhoenixdBackend;
use standin::{Network, Options, PhoenixNode, Version};

async fn pair() -> (PhoenixdBackend, PhoenixdBackend, PhoenixNode, PhoenixNode) {
    let net = Network::new();
    let shop = net.node(Options::default()).await;
    let alice = net.node(Options::default()).await;
    (
        PhoenixdBackend::from_uri(&shop.uri()).unwrap(),
        PhoenixdBackend::from_uri(&alice.uri()).unwrap(),
        shop,
        alice,
    )
}

fn fields(node: &PhoenixNode, path: &str) -> Vec<(String, String)> {
    node.requests()
        .into_iter()
        .rev()
        .find(|(p, _)| p == path)
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("no {path} call"))
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn create_invoice_sends_whole_sats_and_unique_external_ids() {
    let (shop, _, shop_node, _) = pair().await;
    let inv = shop
        .create_invoice(
            InvoiceRequest::new(Msat::from_sat(21), "coffee").expiry(Duration::from_millis(2500)),
        )
        .await
        .unwrap();
    let f = fields(&shop_node, "createinvoice");
    assert_eq!(field(&f, "amountSat"), Some("21"));
    assert_eq!(field(&f, "description"), Some("coffee"));
    assert_eq!(field(&f, "expirySeconds"), Some("3"), "rounded up");
    let first_id = field(&f, "externalId").unwrap().to_owned();
    assert!(first_id.starts_with("l402-"), "{first_id}");
    assert_eq!(f.len(), 4, "{f:?}");
    let decoded = lightning_invoice::Bolt11Invoice::from_str(&inv.bolt11).unwrap();
    assert_eq!(decoded.amount_milli_satoshis(), Some(21_000));
    assert_eq!(decoded.expiry_time(), Duration::from_secs(3));
    shop.create_invoice(InvoiceRequest::new(Msat::from_sat(21), "coffee"))
        .await
        .unwrap();
    let second_id = field(&fields(&shop_node, "createinvoice"), "externalId")
        .unwrap()
        .to_owned();
    assert_ne!(first_id, second_id);
}

#[tokio::test]
async fn non_whole_sat_prices_are_refused_before_asking() {
    let (shop, _, shop_node, _) = pair().await;
    for msat in [1, 999, 1_500, 21_001] {
        let e = shop
            .create_invoice(InvoiceRequest::new(Msat::new(msat), "x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{msat}: {e}");
        assert!(e.to_string().contains("whole satoshis"), "{e}");
    }
    assert!(shop_node.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn paid_amount_is_the_invoice_msat_and_fees_are_reported() {
    let (shop, alice, _, alice_node) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1_000), "x"))
        .await
        .unwrap();
    let before = alice_node.balance_msat();
    let paid = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .unwrap();
    let f = fields(&alice_node, "payinvoice");
    assert_eq!(
        f,
        vec![("invoice".to_owned(), inv.bolt11.clone())],
        "only the invoice"
    );
    // The stand-in charges 4 sat + 0.4 % = 8000 msat; `pay` reports phoenixd's whole-sat fee.
    assert_eq!(paid.amount, Msat::from_sat(1_000));
    assert_eq!(paid.fee, Msat::new(8_000));
    assert_eq!(before - alice_node.balance_msat(), 1_008_000);
    match alice.payment(&inv.payment_hash).await.unwrap() {
        PaymentState::Succeeded(p) => {
            assert_eq!(p.preimage, paid.preimage);
            assert_eq!(p.amount, Msat::from_sat(1_000));
            assert_eq!(p.fee, Msat::new(8_000), "exact msat `fees`");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_fee_above_the_limit_cannot_be_prevented() {
    // Documented limitation: phoenixd takes no fee limit.
    let (shop, alice, ..) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(5), "x"))
        .await
        .unwrap();
    let paid = alice
        .pay(PayRequest::new(inv.bolt11, Msat::ZERO))
        .await
        .unwrap();
    assert_eq!(paid.fee, Msat::from_sat(4));
}

#[tokio::test]
async fn a_second_payment_returns_the_first_result_without_paying() {
    let (shop, alice, _, alice_node) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(7), "x"))
        .await
        .unwrap();
    let first = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .unwrap();
    let balance = alice_node.balance_msat();
    let second = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .unwrap();
    assert_eq!(second.preimage, first.preimage);
    assert_eq!(second.amount, first.amount);
    assert_eq!(alice_node.balance_msat(), balance, "nothing paid twice");
    assert_eq!(alice_node.outgoing_count(), 1);
    // phoenixd was asked and refused; the adapter then looked the first payment up.
    let calls: Vec<String> = alice_node.requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        calls[calls.len() - 2..],
        [
            "payinvoice".to_owned(),
            format!("payments/outgoingbyhash/{}", inv.payment_hash)
        ]
    );
}

#[tokio::test]
async fn failures_answered_with_200_keep_their_kinds() {
    let net = Network::new();
    let shop_node = net.node(Options::default()).await;
    let poor_node = net
        .node(Options {
            balance_msat: 10_000,
            ..Options::default()
        })
        .await;
    let shop = PhoenixdBackend::from_uri(&shop_node.uri()).unwrap();
    let poor = PhoenixdBackend::from_uri(&poor_node.uri()).unwrap();

    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(50), "x"))
        .await
        .unwrap();
    let e = poor
        .pay(PayRequest::new(inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientBalance, "{e}");
    assert!(
        matches!(
            poor.payment(&inv.payment_hash).await.unwrap(),
            PaymentState::Failed { .. }
        ),
        "phoenixd records the failed attempt"
    );

    // A node nobody can reach.
    let hash = PaymentHash::from_bytes([4; 32]);
    let stranger = l402_test::invoice::regtest_invoice(&hash, 1_000, "x");
    let e = poor
        .pay(PayRequest::new(stranger, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PaymentFailed, "{e}");
    assert!(e.to_string().contains("recipient"), "{e}");
    assert!(matches!(
        poor.payment(&hash).await.unwrap(),
        PaymentState::Failed { .. }
    ));
}

#[tokio::test]
async fn expired_invoices_are_not_sent_to_phoenixd() {
    let (shop, alice, _, alice_node) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x").expiry(Duration::from_secs(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let e = alice
        .pay(PayRequest::new(inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvoiceExpired, "{e}");
    assert!(
        alice_node.requests().is_empty(),
        "{:?}",
        alice_node.requests()
    );
}

#[tokio::test]
async fn old_versions_expire_by_the_invoice_itself() {
    let net = Network::new();
    let shop_node = net
        .node(Options {
            version: Version::V0_5,
            ..Options::default()
        })
        .await;
    let shop = PhoenixdBackend::from_uri(&shop_node.uri()).unwrap();
    let create =
        |expiry| shop.create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x").expiry(expiry));
    // Open inside its expiry (an hour, however slow the machine) ...
    let open = create(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(
        shop.invoice_state(&open.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
    // ... and expired after it (BOLT11 timestamps are whole seconds: 1 s of expiry ends
    // within 2 s).
    let inv = create(Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        shop.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Expired
    );
}

#[tokio::test]
async fn the_limited_password_cannot_pay() {
    let (shop, _, shop_node, _) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
        .await
        .unwrap();
    let limited = PhoenixdBackend::from_uri(&shop_node.limited_uri()).unwrap();
    assert_eq!(
        limited.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
    assert_eq!(
        limited.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::NotFound
    );
    let e = limited
        .pay(PayRequest::new(inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn a_hanging_payment_times_out_and_reads_in_flight() {
    let (shop, alice, _, alice_node) = pair().await;
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(3), "x"))
        .await
        .unwrap();
    alice_node.set_hang_pays(true);
    let mut req = PayRequest::new(inv.bolt11, Msat::from_sat(10));
    req.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let e = alice.pay(req).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_transient());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        alice.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::InFlight
    );
}

#[tokio::test]
async fn an_unknown_endpoint_is_not_a_missing_payment() {
    let (_, _, shop_node, _) = pair().await;
    // A wrong base path: phoenixd answers 404 "Unknown endpoint (check api doc)".
    let wrong = PhoenixdBackend::from_uri(&format!(
        "phoenixd://:{}@{}/api",
        shop_node.password, shop_node.addr
    ))
    .unwrap();
    let hash = PaymentHash::from_bytes([2; 32]);
    let e = wrong.payment(&hash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("Unknown endpoint"), "{e}");
    let e = wrong.invoice_state(&hash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

#[tokio::test]
async fn phoenixd_refusals_are_invalid_requests() {
    let (shop, ..) = pair().await;
    // phoenixd allows at most 128 characters of description.
    let e = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x".repeat(129)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("too long"), "{e}");
    shop.create_invoice(InvoiceRequest::new(Msat::from_sat(1), "é".repeat(128)))
        .await
        .unwrap();
}

#[tokio::test]
async fn passwords_with_url_characters_and_redaction() {
    let net = Network::new();
    let password = "p@ss:w/rd?#%+ end";
    let node = net
        .node(Options {
            password: Some(password.to_owned()),
            ..Options::default()
        })
        .await;
    let ok = PhoenixdBackend::from_uri(&node.uri()).unwrap();
    assert!(!format!("{ok:?}").contains("p@ss"));
    ok.create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
        .await
        .unwrap();

    let wrong_password = "WRONG-Pa55word";
    let wrong = PhoenixdBackend::from_uri(&node.uri_with_password(wrong_password)).unwrap();
    let e = wrong
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let shown = format!("{e} {e:?} {wrong:?}");
    assert!(!shown.contains(wrong_password), "{shown}");
    assert!(shown.contains("Invalid authentication"), "{shown}");
}
