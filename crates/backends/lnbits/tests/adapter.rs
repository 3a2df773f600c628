//! LNbits-specific behaviour, against a real LNbits 1.6.2 (FakeWallet) that `l402_test::lnbits`
//! installs and starts once for this test binary.

mod common;

use std::time::Duration;

use l402::{
    ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, InvoiceState, Msat, PayRequest,
    PaymentHash, PaymentState,
};
use l402_backend_http::reqwest::Method;
use l402_test::conformance::{self as suite, Quirks};
use l402_test::lnbits::lnbits;
use serde_json::json;

use common::{backend, backend_at, balance_msat, call, funded_wallet, prefix_proxy, unknown_key};

async fn invoice(sat: u64, memo: &str) -> l402::CreatedInvoice {
    backend(&lnbits().payee.inkey)
        .create_invoice(InvoiceRequest::new(Msat::from_sat(sat), memo))
        .await
        .unwrap()
}

fn pay_request(bolt11: &str) -> PayRequest {
    PayRequest::new(bolt11, Msat::from_sat(10))
}

#[tokio::test]
async fn unknown_key_is_unauthorized_while_an_unknown_hash_is_not_found() {
    let ln = lnbits();
    let key = unknown_key();
    let wrong = backend(&key);
    let payee = backend(&ln.payee.inkey);
    let payer = backend(&ln.payer.adminkey);
    let open = invoice(4, "wrong key").await;
    let paid_inv = invoice(5, "paid, then looked up with a wrong key").await;
    payer.pay(pay_request(&paid_inv.bolt11)).await.unwrap();
    let never = PaymentHash::from_bytes(l402_test::random32());

    let mut errors = Vec::new();
    // Calls that require a key: LNbits answers 404 "Wallet not found.".
    errors.push(
        wrong
            .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
            .await
            .unwrap_err(),
    );
    errors.push(wrong.pay(pay_request(&open.bolt11)).await.unwrap_err());
    // Lookups, where LNbits treats the key as optional: an unknown hash (404, then the key check
    // decides) and hashes LNbits knows (200 without `details`).
    errors.push(wrong.invoice_state(&never).await.unwrap_err());
    errors.push(wrong.invoice_state(&open.payment_hash).await.unwrap_err());
    errors.push(wrong.payment(&never).await.unwrap_err());
    errors.push(wrong.payment(&paid_inv.payment_hash).await.unwrap_err());
    for e in &errors {
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        assert!(!e.is_transient());
        assert!(!e.to_string().contains(&key), "the key leaks into {e}");
    }
    assert!(
        errors[0]
            .to_string()
            .contains("no wallet with this API key"),
        "{}",
        errors[0]
    );

    // With a valid key, the same unknown hash is "not found".
    assert_eq!(
        payee.invoice_state(&never).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(payer.payment(&never).await.unwrap(), PaymentState::NotFound);
    // Nothing was paid by the refused call.
    assert_eq!(
        payee.invoice_state(&open.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
}

#[tokio::test]
async fn invoice_key_cannot_pay_but_can_look_up() {
    let ln = lnbits();
    let payer_inkey = backend(&ln.payer.inkey);
    let inv = invoice(6, "invoice key pays").await;
    let e = payer_inkey.pay(pay_request(&inv.bolt11)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("admin key"), "{e}");
    assert_eq!(
        backend(&ln.payee.inkey)
            .invoice_state(&inv.payment_hash)
            .await
            .unwrap(),
        InvoiceState::Open,
        "nothing paid"
    );
    assert_eq!(
        payer_inkey.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::NotFound
    );

    // The admin key pays; the invoice key then sees the payment.
    let paid = backend(&ln.payer.adminkey)
        .pay(pay_request(&inv.bolt11))
        .await
        .unwrap();
    match payer_inkey.payment(&inv.payment_hash).await.unwrap() {
        PaymentState::Succeeded(p) => assert_eq!(p.preimage, paid.preimage),
        other => panic!("{other:?}"),
    }
    // The payee's wallet made no payment for that hash.
    assert_eq!(
        backend(&ln.payee.inkey)
            .payment(&inv.payment_hash)
            .await
            .unwrap(),
        PaymentState::NotFound
    );
}

#[tokio::test]
async fn an_invoice_of_another_node_is_payment_failed() {
    let hash = PaymentHash::from_bytes(l402_test::random32());
    let foreign = l402_test::invoice::regtest_invoice(&hash, 1000, "elsewhere");
    let payer = backend(&lnbits().payer.adminkey);
    let e = payer.pay(pay_request(&foreign)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PaymentFailed, "{e}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("Only internal invoices"), "{e}");
    assert!(
        matches!(
            payer.payment(&hash).await.unwrap(),
            PaymentState::NotFound | PaymentState::Failed { .. }
        ),
        "no successful payment"
    );
}

#[tokio::test]
async fn an_expired_invoice_is_refused_even_before_lnbits_noticed() {
    // Nobody looks the invoice up after its expiry, so LNbits itself would still pay it (see
    // `lnbits_quirks_the_adapter_guards_against`); the adapter must not.
    let ln = lnbits();
    let wallet = funded_wallet("expiry-payer", 100).await;
    let inv = backend(&ln.payee.inkey)
        .create_invoice(
            InvoiceRequest::new(Msat::from_sat(2), "expires").expiry(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let payer = backend(&wallet.adminkey);
    let e = payer.pay(pay_request(&inv.bolt11)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvoiceExpired, "{e}");
    assert_eq!(balance_msat(&wallet).await, 100_000, "nothing paid");
    assert_eq!(
        payer.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::NotFound
    );
    assert_eq!(
        backend(&ln.payee.inkey)
            .invoice_state(&inv.payment_hash)
            .await
            .unwrap(),
        InvoiceState::Expired
    );
}

/// Documents the LNbits 1.6.2 behaviour behind two of the adapter's checks (INTEROP.md §1.6,
/// backends.md §5.3), so a new LNbits version that changes it shows up here.
#[tokio::test]
async fn lnbits_quirks_the_adapter_guards_against() {
    let ln = lnbits();
    let wallet = funded_wallet("quirk-payer", 100).await;
    let issuer = backend(&ln.payee.inkey);
    let expiring = || async {
        issuer
            .create_invoice(
                InvoiceRequest::new(Msat::from_sat(2), "quirk").expiry(Duration::from_secs(1)),
            )
            .await
            .unwrap()
    };
    let unchecked = expiring().await;
    let checked = expiring().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        issuer.invoice_state(&checked.payment_hash).await.unwrap(),
        InvoiceState::Expired
    );

    // 1. An expired invoice nobody has looked up is paid anyway.
    let (status, body) = call(
        ln,
        Method::POST,
        "/api/v1/payments",
        Some(&wallet.adminkey),
        Some(json!({ "out": true, "bolt11": unchecked.bolt11 })),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (201, Some("success")),
        "{body}"
    );
    assert_eq!(balance_msat(&wallet).await, 98_000);

    // 2. Once marked expired, paying it answers 201 with the payee's failed record, paying nothing.
    let (status, body) = call(
        ln,
        Method::POST,
        "/api/v1/payments",
        Some(&wallet.adminkey),
        Some(json!({ "out": true, "bolt11": checked.bolt11 })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    assert!(
        body["amount"].as_i64().unwrap() > 0,
        "the payee's record: {body}"
    );
    assert_eq!(body["wallet_id"], ln.payee.id.as_str());
    assert_eq!(balance_msat(&wallet).await, 98_000, "nothing paid");
}

#[tokio::test]
async fn paying_twice_returns_the_first_result_and_pays_once() {
    let wallet = funded_wallet("twice-payer", 100).await;
    let payer = backend(&wallet.adminkey);
    let inv = invoice(7, "twice").await;
    let first = payer.pay(pay_request(&inv.bolt11)).await.unwrap();
    let second = payer.pay(pay_request(&inv.bolt11)).await.unwrap();
    assert_eq!(second, first);
    // Concurrent attempts on another invoice: at most one payment.
    let inv = invoice(8, "racing").await;
    let (a, b) = tokio::join!(
        payer.pay(pay_request(&inv.bolt11)),
        payer.pay(pay_request(&inv.bolt11))
    );
    for r in [&a, &b] {
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::AlreadyPaid, "{e}");
        }
    }
    let preimages: Vec<_> = [a, b].into_iter().flatten().map(|p| p.preimage).collect();
    assert!(!preimages.is_empty(), "one of them pays");
    assert!(preimages.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        balance_msat(&wallet).await,
        100_000 - 7_000 - 8_000,
        "each invoice paid once"
    );
}

#[tokio::test]
async fn a_paid_invoice_reports_amount_fee_and_balance() {
    let wallet = funded_wallet("amount-payer", 50).await;
    let inv = invoice(1, "one sat").await;
    let paid = backend(&wallet.adminkey)
        .pay(pay_request(&inv.bolt11))
        .await
        .unwrap();
    assert_eq!(paid.amount, Msat::new(1000));
    assert_eq!(paid.fee, Msat::ZERO, "internal payments have no fee");
    assert_eq!(balance_msat(&wallet).await, 49_000);
}

#[tokio::test]
async fn amounts_and_memos_lnbits_cannot_take_are_invalid_requests() {
    let issuer = backend(&lnbits().payee.inkey);
    let refuse = |amount: Msat, memo: String| {
        let issuer = issuer.clone();
        async move {
            let e = issuer
                .create_invoice(InvoiceRequest::new(amount, memo))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
            e.to_string()
        }
    };
    // LNbits would truncate 21.5 sat to a 21 sat invoice: refused before asking.
    let e = refuse(Msat::new(21_500), "fraction".into()).await;
    assert!(e.contains("whole satoshis"), "{e}");
    // Over LNbits' default cap of 10 000 000 sat per invoice.
    let e = refuse(Msat::from_sat(20_000_000), "too much".into()).await;
    assert!(e.contains("too high"), "{e}");
    // LNbits takes at most 640 characters of memo.
    let e = refuse(Msat::from_sat(1), "m".repeat(700)).await;
    assert!(e.contains("640"), "{e}");
    // A sub-second expiry is rounded up to a whole second (0 would mean LNbits' default hour).
    let inv = issuer
        .create_invoice(
            InvoiceRequest::new(Msat::from_sat(1), "short").expiry(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        issuer.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Expired
    );
}

#[tokio::test]
async fn lnbits_behind_a_reverse_proxy_at_a_sub_path() {
    let ln = lnbits();
    let proxy = prefix_proxy(ln.url.clone(), "/lnbits").await;
    let proxy = proxy.to_string();
    let issuer = backend_at(&proxy, &ln.payee.inkey, "/lnbits");
    let payer = backend_at(&proxy, &ln.payer.adminkey, "/lnbits/");
    suite::create_pay_settle(&issuer, &payer, &Quirks::default()).await;

    // Without the prefix the proxy answers its own 404 page: never "not found", never "no payment".
    let lost = backend_at(&proxy, &ln.payee.inkey, "");
    let hash = PaymentHash::from_bytes(l402_test::random32());
    let e = lost.invoice_state(&hash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("path prefix"), "{e}");
    assert_eq!(
        lost.payment(&hash).await.unwrap_err().kind(),
        ErrorKind::Protocol
    );
    // A prefix LNbits itself does not serve: its JSON 404 `{"detail": "Not Found"}`, same answer.
    let wrong = backend_at(ln.host_port(), &ln.payee.inkey, "/nope");
    assert_eq!(
        wrong.invoice_state(&hash).await.unwrap_err().kind(),
        ErrorKind::Protocol
    );
    assert_eq!(
        wrong.payment(&hash).await.unwrap_err().kind(),
        ErrorKind::Protocol
    );
}

#[tokio::test]
async fn debug_output_hides_the_key() {
    let ln = lnbits();
    let b = backend(&ln.payer.adminkey);
    let shown = format!("{b:?}");
    assert!(!shown.contains(&ln.payer.adminkey), "{shown}");
    assert!(shown.contains(ln.host_port()), "{shown}");
}
