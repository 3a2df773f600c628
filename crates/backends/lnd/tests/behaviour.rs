//! lnd-specific behaviour of the adapter against the stand-in: never paying twice (409 and
//! TrackPaymentV2), in-flight payments, fee limits, units, permissions, error mapping and
//! secret redaction.

mod standin;

use std::str::FromStr;
use std::time::Duration;

use l402::{
    ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, InvoiceState, Msat, PayRequest,
    PaymentHash, PaymentState,
};
use l402_backend_http::{HttpOptions, TlsTrust};
use l402_lnd::LndBackend;
use standin::{InvState, NetConfig, Network, Node};

const BALANCE: u64 = 1_000_000_000;

struct Setup {
    net: Network,
    shop: Node,
    alice: Node,
    issuer: LndBackend,
    payer: LndBackend,
}

async fn setup(config: NetConfig) -> Setup {
    let net = Network::new(config);
    let shop = net.node(0).await;
    let alice = net.node(BALANCE).await;
    let issuer = LndBackend::from_uri(&shop.uri()).unwrap();
    let payer = LndBackend::from_uri(&alice.uri()).unwrap();
    Setup {
        net,
        shop,
        alice,
        issuer,
        payer,
    }
}

async fn invoice(s: &Setup, sat: u64) -> l402::CreatedInvoice {
    s.issuer
        .create_invoice(InvoiceRequest::new(Msat::from_sat(sat), "test"))
        .await
        .unwrap()
}

fn pay_request(bolt11: &str, timeout: Duration) -> PayRequest {
    PayRequest {
        timeout,
        ..PayRequest::new(bolt11, Msat::from_sat(10))
    }
}

#[tokio::test]
async fn a_second_payment_is_refused_by_lnd_and_answered_from_the_first() {
    let s = setup(NetConfig {
        fee_msat: 1000,
        ..NetConfig::default()
    })
    .await;
    let inv = invoice(&s, 21).await;
    let first = s
        .payer
        .pay(PayRequest::new(&inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap();
    assert_eq!(first.amount, Msat::from_sat(21));
    assert_eq!(first.fee, Msat::new(1000));
    let second = s
        .payer
        .pay(PayRequest::new(&inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap();
    assert_eq!(second, first, "the repeat returns the first payment");
    assert_eq!(
        s.alice.send_calls(),
        2,
        "both attempts reached SendPaymentV2"
    );
    assert_eq!(
        s.alice.duplicates_refused(),
        1,
        "lnd refused the second with 409"
    );
    assert_eq!(s.alice.balance_msat(), BALANCE - 21_000 - 1000, "paid once");
    assert_eq!(s.shop.balance_msat(), 21_000);
}

#[tokio::test]
async fn an_in_flight_payment_times_out_and_is_never_paid_twice() {
    // The payment settles 8 s after it is sent: room for two 1 s timeouts and the lookups
    // between them on a slow machine.
    let s = setup(NetConfig {
        settle_delay: Duration::from_secs(8),
        ..NetConfig::default()
    })
    .await;
    let inv = invoice(&s, 5).await;
    let started = std::time::Instant::now();
    let e = s
        .payer
        .pay(pay_request(&inv.bolt11, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("look it up"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the pay timeout applies, not the settle delay"
    );
    assert_eq!(
        s.payer.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::InFlight
    );
    // Paying again while in flight: lnd says "payment is in transition"; the adapter follows
    // the first payment instead of starting another.
    let e = s
        .payer
        .pay(pay_request(&inv.bolt11, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(s.alice.duplicates_refused(), 1);
    // Following it to the end this time.
    let paid = s
        .payer
        .pay(pay_request(&inv.bolt11, Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(paid.preimage.matches(&inv.payment_hash));
    assert_eq!(s.alice.duplicates_refused(), 2);
    match s.payer.payment(&inv.payment_hash).await.unwrap() {
        PaymentState::Succeeded(p) => assert_eq!(p, paid),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.alice.balance_msat(), BALANCE - 5000, "paid exactly once");
}

#[tokio::test]
async fn fee_limits_apply_and_a_failed_payment_can_be_retried() {
    let s = setup(NetConfig {
        fee_msat: 2000,
        ..NetConfig::default()
    })
    .await;
    let inv = invoice(&s, 100).await;
    let e = s
        .payer
        .pay(PayRequest::new(&inv.bolt11, Msat::new(1999)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PaymentFailed, "{e}");
    assert!(e.to_string().contains("FAILURE_REASON_NO_ROUTE"), "{e}");
    match s.payer.payment(&inv.payment_hash).await.unwrap() {
        PaymentState::Failed { reason } => assert!(reason.contains("NO_ROUTE"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.alice.balance_msat(), BALANCE, "nothing spent");
    assert_eq!(
        s.issuer.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
    let paid = s
        .payer
        .pay(PayRequest::new(&inv.bolt11, Msat::new(2000)))
        .await
        .unwrap();
    assert_eq!(paid.fee, Msat::new(2000));
    assert_eq!(s.alice.balance_msat(), BALANCE - 100_000 - 2000);
}

#[tokio::test]
async fn more_than_the_balance_is_insufficient_balance() {
    let s = setup(NetConfig::default()).await;
    let inv = invoice(&s, BALANCE / 1000 + 1).await;
    let e = s
        .payer
        .pay(PayRequest::new(&inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientBalance, "{e}");
    assert!(!e.is_transient());
    assert!(matches!(
        s.payer.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::Failed { .. }
    ));
}

#[tokio::test]
async fn an_expired_invoice_is_cancelled_and_refused_by_the_payer() {
    let s = setup(NetConfig::default()).await;
    let inv = s
        .issuer
        .create_invoice(
            InvoiceRequest::new(Msat::from_sat(1), "short").expiry(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        s.issuer.invoice_state(&inv.payment_hash).await.unwrap(),
        InvoiceState::Cancelled
    );
    assert_eq!(
        s.net.invoice_state(inv.payment_hash.as_bytes()),
        Some(InvState::Canceled),
        "lnd's expiry watcher cancelled it"
    );
    let e = s
        .payer
        .pay(PayRequest::new(&inv.bolt11, Msat::from_sat(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvoiceExpired, "{e}");
    assert!(e.to_string().contains("Valid until"), "{e}");
    assert_eq!(
        s.payer.payment(&inv.payment_hash).await.unwrap(),
        PaymentState::NotFound,
        "lnd refused it before creating a payment"
    );
}

#[tokio::test]
async fn millisatoshi_amounts_and_invoice_fields_are_kept() {
    let s = setup(NetConfig::default()).await;
    let inv = s
        .issuer
        .create_invoice(
            InvoiceRequest::new(Msat::new(21_500), "memo text").expiry(Duration::from_millis(1500)),
        )
        .await
        .unwrap();
    let decoded = lightning_invoice::Bolt11Invoice::from_str(&inv.bolt11).unwrap();
    decoded.check_signature().unwrap();
    assert_eq!(decoded.recover_payee_pub_key(), s.shop.pubkey());
    assert_eq!(
        decoded.amount_milli_satoshis(),
        Some(21_500),
        "no rounding to sats"
    );
    assert_eq!(
        decoded.expiry_time(),
        Duration::from_secs(2),
        "1.5 s rounds up to whole seconds"
    );
    assert_eq!(
        AsRef::<[u8; 32]>::as_ref(decoded.payment_hash()),
        inv.payment_hash.as_bytes()
    );
    let paid = s
        .payer
        .pay(PayRequest::new(&inv.bolt11, Msat::ZERO))
        .await
        .unwrap();
    assert_eq!(paid.amount, Msat::new(21_500));
    assert_eq!(paid.fee, Msat::ZERO);
    assert_eq!(s.shop.balance_msat(), 21_500);
}

#[tokio::test]
async fn invalid_invoices_are_refused_before_anything_is_sent() {
    let s = setup(NetConfig::default()).await;
    let e = s
        .payer
        .pay(PayRequest::new("lnbcrt1garbage", Msat::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    // An amountless invoice (lnd makes one for a 0 amount): the price would be unknown.
    let amountless = {
        use bitcoin::hashes::{Hash, sha256};
        use bitcoin::secp256k1::{Secp256k1, SecretKey};
        use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
        let key = SecretKey::from_slice(&[3; 32]).unwrap();
        InvoiceBuilder::new(Currency::Regtest)
            .description("any amount".into())
            .payment_hash(sha256::Hash::from_byte_array([4; 32]))
            .payment_secret(PaymentSecret([5; 32]))
            .current_timestamp()
            .min_final_cltv_expiry_delta(18)
            .build_signed(|m| Secp256k1::new().sign_ecdsa_recoverable(m, &key))
            .unwrap()
            .to_string()
    };
    let e = s
        .payer
        .pay(PayRequest::new(amountless, Msat::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert_eq!(s.alice.send_calls(), 0, "nothing reached lnd");
}

#[tokio::test]
async fn the_invoice_macaroon_issues_but_cannot_pay() {
    let s = setup(NetConfig::default()).await;
    let uri = s.alice.uri_with(
        &s.alice.invoice_macaroon_path(),
        &format!("cert={}", s.alice.cert_path().display()),
    );
    let lnd = LndBackend::from_uri(&uri).unwrap();
    let own = lnd
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "ok"))
        .await
        .unwrap();
    assert_eq!(
        lnd.invoice_state(&own.payment_hash).await.unwrap(),
        InvoiceState::Open
    );
    let inv = invoice(&s, 1).await;
    let e = lnd
        .pay(PayRequest::new(&inv.bolt11, Msat::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("permission denied"), "{e}");
    let e = lnd.payment(&inv.payment_hash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}

#[tokio::test]
async fn a_wrong_url_is_not_a_missing_record() {
    let s = setup(NetConfig::default()).await;
    let uri = format!(
        "lnd+rest://{}/not-lnd/?macaroon={}&cert={}",
        s.alice.addr,
        s.alice.admin_macaroon_path().display(),
        s.alice.cert_path().display()
    );
    let lnd = LndBackend::from_uri(&uri).unwrap();
    let hash = PaymentHash::from_bytes([7; 32]);
    let e = lnd.invoice_state(&hash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("REST port"), "{e}");
    // Above all, a payment lookup must not claim "not found" (which would allow paying).
    let e = lnd.payment(&hash).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
}

#[tokio::test]
async fn hashes_whose_base64_has_slashes_are_tracked() {
    let s = setup(NetConfig::default()).await;
    // 0xfb… is "+/…" in standard base64: the adapter must send URL-safe base64.
    let hash = PaymentHash::from_bytes([0xfb; 32]);
    assert_eq!(
        s.payer.payment(&hash).await.unwrap(),
        PaymentState::NotFound
    );
    // The stand-in really splits on "/" like the gateway: standard base64 gets the routing 404.
    use base64::Engine;
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(hash.as_bytes());
    let http = l402_backend_http::client(
        "test",
        &HttpOptions {
            tls: TlsTrust::Pinned(s.alice.cert_path()),
            ..HttpOptions::default()
        },
    )
    .unwrap();
    let resp = http
        .get(format!(
            "https://{}/v2/router/track/{}",
            s.alice.addr,
            std_b64.replace('/', "%2F").replace('+', "%2B")
        ))
        .header("Grpc-Metadata-macaroon", s.alice.admin_macaroon_hex())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": 5, "message": "Not Found", "details": []})
    );
}

#[tokio::test]
async fn a_foreign_macaroon_is_unauthorized_and_never_echoed() {
    let s = setup(NetConfig::default()).await;
    let secret = "0201036c6e64".to_owned() + &"ab".repeat(40);
    let lnd = LndBackend::from_uri(&format!(
        "lnd+rest://{}?macaroon_hex={secret}&cert={}",
        s.alice.addr,
        s.alice.cert_path().display()
    ))
    .unwrap();
    assert!(!format!("{lnd:?}").contains(&secret), "{lnd:?}");
    let e = lnd
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("verification failed"), "{e}");
    assert!(!e.to_string().contains(&secret) && !format!("{e:?}").contains(&secret));
    let e = lnd
        .payment(&PaymentHash::from_bytes([1; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(!format!("{e:?}").contains(&secret));
    // A malformed value is refused without repeating it.
    let e = LndBackend::from_uri(&format!(
        "lnd+rest://{}?macaroon_hex={secret}zz",
        s.alice.addr
    ))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(!e.to_string().contains(&secret), "{e}");
}
