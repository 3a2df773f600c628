//! The paying client against real L402 servers (our layer, and hand-made servers that speak
//! other wire variants or send challenges that must not be paid).

/// How a variant server writes its challenge line from the macaroon and invoice.
type LineFn = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;
/// Makes a replacement invoice for a payment hash.
type InvoiceFn = Box<dyn Fn(&PaymentHash) -> String>;
/// A named challenge-line format.
type NamedLine = (&'static str, fn(&str, &str) -> String);

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use l402::RootKeyStore;
use l402::{
    Credential, Identifier, Msat, PaymentHash, Preimage, RootKey, SharedPayer, TokenId, Verifier,
    mint,
};
use l402_client::{Budget, ClientError, ClientStore, Currency, L402Client, Request};
use l402_devnode::{DevNode, DevNodeConfig};
use l402_test::invoice::{InvoiceSpec, custom_invoice};
use l402_tower::{Authority, AuthorityOptions, L402Layer, Policy};

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Shop {
    node: DevNode,
    addr: SocketAddr,
    store: l402_store::Store,
    authority: Authority<l402_devnode::DevWallet, l402_store::Store>,
}

/// A paywalled API on our own tower layer, with the dev node.
async fn shop(config: DevNodeConfig, price: Msat) -> Shop {
    let node = DevNode::in_memory(config).await.unwrap();
    let store = l402_store::Store::connect("sqlite::memory:").await.unwrap();
    let authority = Authority::new(
        node.wallet("shop"),
        store.clone(),
        AuthorityOptions::default(),
    );
    let app = Router::new()
        .route("/api/data", get(|| async { "data" }))
        .route("/api/more", get(|| async { "more" }))
        .route("/other/x", get(|| async { "other" }))
        .layer(L402Layer::new(authority.clone(), Policy::new("api", price)));
    let addr = serve(app).await;
    Shop {
        node,
        addr,
        store,
        authority,
    }
}

async fn client_for(node: &DevNode, budget: Budget) -> L402Client {
    L402Client::builder(
        SharedPayer::new(node.wallet("alice")),
        ClientStore::in_memory().await.unwrap(),
    )
    .budget(budget)
    .network(Currency::Regtest)
    .build()
    .unwrap()
}

fn url(addr: SocketAddr, path: &str) -> url::Url {
    format!("http://{addr}{path}").parse().unwrap()
}

#[tokio::test]
async fn pays_once_then_reuses_the_token_within_its_scope() {
    let s = shop(DevNodeConfig::default(), Msat::from_sat(10)).await;
    let c = client_for(&s.node, Budget::default()).await;
    let alice = s.node.wallet("alice");
    let before = alice.balance().await.unwrap();

    let r = c
        .send(Request::get(url(s.addr, "/api/data")))
        .await
        .unwrap();
    assert_eq!(r.inner.status(), 200);
    let paid = r.payment.clone().unwrap();
    assert!(paid.paid_now);
    assert_eq!(paid.amount, Msat::from_sat(10));
    assert_eq!(r.inner.text().await.unwrap(), "data");

    // Same scope (/api/): the token is reused, nothing paid.
    let r = c
        .send(Request::get(url(s.addr, "/api/more")))
        .await
        .unwrap();
    assert_eq!(r.inner.status(), 200);
    assert!(!r.payment.unwrap().paid_now);
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(before.as_u64() - 10_000)
    );
    // Another scope buys its own token.
    let r = c.send(Request::get(url(s.addr, "/other/x"))).await.unwrap();
    assert!(r.payment.unwrap().paid_now);
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(before.as_u64() - 20_000)
    );
    assert_eq!(
        c.store().spent_since(0, None).await.unwrap(),
        Msat::from_sat(20)
    );
}

#[tokio::test]
async fn budgets_refuse_before_any_payment() {
    let s = shop(DevNodeConfig::default(), Msat::from_sat(10)).await;
    let alice = s.node.wallet("alice");
    let before = alice.balance().await.unwrap();
    let tight = Budget {
        max_per_request: Msat::from_sat(9),
        ..Budget::default()
    };
    let c = client_for(&s.node, tight).await;
    let err = c
        .send(Request::get(url(s.addr, "/api/data")))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::OverBudget { .. }), "{err}");
    assert_eq!(err.exit_code(), 10);
    assert!(
        err.to_string()
            .contains("10000 msat exceeds the limit of 9000 msat"),
        "{err}"
    );
    assert!(
        c.store().entries().await.unwrap().is_empty(),
        "nothing journaled"
    );

    // Per host per day: 25 sat with 10 sat of fee headroom allows one 10-sat token.
    let daily = Budget {
        max_per_host_per_day: Some(Msat::from_sat(25)),
        max_fee: Msat::from_sat(10),
        ..Budget::default()
    };
    let c = client_for(&s.node, daily).await;
    assert_eq!(
        c.send(Request::get(url(s.addr, "/api/data")))
            .await
            .unwrap()
            .inner
            .status(),
        200
    );
    let err = c
        .send(Request::get(url(s.addr, "/other/x")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("daily limit"), "{err}");

    // Total.
    let total = Budget {
        max_total: Some(Msat::from_sat(15)),
        max_fee: Msat::ZERO,
        ..Budget::default()
    };
    let c = client_for(&s.node, total).await;
    assert_eq!(
        c.send(Request::get(url(s.addr, "/api/data")))
            .await
            .unwrap()
            .inner
            .status(),
        200
    );
    let err = c
        .send(Request::get(url(s.addr, "/other/x")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("total limit"), "{err}");
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(before.as_u64() - 20_000)
    );
}

#[tokio::test]
async fn concurrent_payments_cannot_together_pass_a_limit() {
    let s = shop(DevNodeConfig::default(), Msat::from_sat(10)).await;
    let alice = s.node.wallet("alice");
    let before = alice.balance().await.unwrap();
    // Room for one 10-sat token, not two; the two requests have different scopes, so neither
    // can reuse the other's token.
    let budget = Budget {
        max_total: Some(Msat::from_sat(15)),
        max_fee: Msat::ZERO,
        ..Budget::default()
    };
    let c = client_for(&s.node, budget).await;
    let (a, b) = tokio::join!(
        c.send(Request::get(url(s.addr, "/api/data"))),
        c.send(Request::get(url(s.addr, "/other/x")))
    );
    let results = [a, b];
    let paid = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::OverBudget { .. })))
        .count();
    assert_eq!((paid, refused), (1, 1), "{results:?}");
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(before.as_u64() - 10_000)
    );
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let target = serve(Router::new().route("/", get(|| async { "elsewhere" }))).await;
    let moved =
        serve(Router::new().route(
            "/old",
            get(move || async move {
                axum::response::Redirect::temporary(&format!("http://{target}/"))
            }),
        ))
        .await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let c = client_for(&node, Budget::default()).await;
    let r = c.send(Request::get(url(moved, "/old"))).await.unwrap();
    assert_eq!(r.inner.status(), 307);
    assert_eq!(
        r.inner.headers()["location"],
        format!("http://{target}/").as_str()
    );
}

#[tokio::test]
async fn a_fee_above_the_limit_fails_without_paying() {
    let s = shop(
        DevNodeConfig {
            fee_ppm: 100_000,
            ..DevNodeConfig::default()
        },
        Msat::from_sat(100),
    )
    .await;
    let c = client_for(
        &s.node,
        Budget {
            max_fee: Msat::from_sat(5),
            ..Budget::default()
        },
    )
    .await;
    let err = c
        .send(Request::get(url(s.addr, "/api/data")))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::PaymentFailed { .. }), "{err}");
    let entries = c.store().entries().await.unwrap();
    assert_eq!(entries[0].state, l402_client::EntryState::Failed);
}

#[tokio::test]
async fn revoked_tokens_are_repaid_only_when_allowed() {
    let s = shop(DevNodeConfig::default(), Msat::from_sat(10)).await;
    let store = ClientStore::in_memory().await.unwrap();
    let build = |repay: bool| {
        L402Client::builder(SharedPayer::new(s.node.wallet("alice")), store.clone())
            .network(Currency::Regtest)
            .allow_repay(repay)
            .build()
            .unwrap()
    };
    let revoke = |hash: PaymentHash| {
        let (store, server, authority) = (store.clone(), s.store.clone(), s.authority.clone());
        async move {
            let token = store.entry(&hash).await.unwrap().unwrap();
            let id = Identifier::decode(token.macaroon.identifier()).unwrap();
            let key = server.revoke(id.token_id()).await.unwrap().unwrap();
            authority.invalidate(&key);
        }
    };
    let lenient = build(true);
    let first = lenient
        .send(Request::get(url(s.addr, "/api/data")))
        .await
        .unwrap();
    let first = first.payment.unwrap().payment_hash;
    revoke(first).await;
    // Allowed: the refused token is dropped and a new one bought in the same call.
    let r = lenient
        .send(Request::get(url(s.addr, "/api/data")))
        .await
        .unwrap();
    assert_eq!(r.inner.status(), 200);
    let second = r.payment.unwrap();
    assert!(second.paid_now);
    assert_ne!(second.payment_hash, first);
    assert!(
        store
            .entry(&first)
            .await
            .unwrap()
            .unwrap()
            .rejected_at
            .is_some()
    );

    // Not allowed: the refusal is reported and nothing more is paid.
    revoke(second.payment_hash).await;
    let strict = build(false);
    let spent = store.spent_since(0, None).await.unwrap();
    let err = strict
        .send(Request::get(url(s.addr, "/api/data")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::CredentialRefused { status: 401, .. }),
        "{err}"
    );
    assert_eq!(err.exit_code(), 12);
    assert_eq!(store.spent_since(0, None).await.unwrap(), spent);
}

/// A server that emits a chosen challenge line and accepts any credential whose preimage
/// matches, recording the scheme it was sent with.
#[derive(Clone)]
struct Variant {
    line: LineFn,
    key: Arc<RootKey>,
    preimage: Arc<Preimage>,
    invoice: Arc<String>,
    macaroon: Arc<l402::macaroon::Macaroon>,
    schemes: Arc<std::sync::Mutex<Vec<String>>>,
    body: Arc<Option<String>>,
}

async fn variant_handler(State(v): State<Variant>, headers: HeaderMap) -> Response {
    if let Some(auth) = headers.get("authorization").and_then(|h| h.to_str().ok()) {
        v.schemes
            .lock()
            .unwrap()
            .push(auth.split(' ').next().unwrap_or("").to_owned());
        let cred = Credential::parse_authorization(auth).unwrap().unwrap();
        let ok = Verifier::new()
            .verify(&cred, &v.key, &l402::Context::now())
            .is_ok();
        return if ok {
            (StatusCode::OK, "paid content").into_response()
        } else {
            StatusCode::UNAUTHORIZED.into_response()
        };
    }
    let mac = v.macaroon.to_base64();
    let mut r = (
        StatusCode::PAYMENT_REQUIRED,
        v.body.as_deref().unwrap_or("pay").to_owned(),
    )
        .into_response();
    r.headers_mut().insert(
        "www-authenticate",
        (v.line)(&mac, &v.invoice).parse().unwrap(),
    );
    r
}

/// Builds a variant server whose challenge is bound to a dev node invoice (payable), unless
/// `invoice` overrides it.
async fn variant(
    node: &DevNode,
    line: impl Fn(&str, &str) -> String + Send + Sync + 'static,
    override_invoice: Option<InvoiceFn>,
    body: Option<String>,
) -> SocketAddr {
    use l402::InvoiceIssuer;
    let inv = node
        .wallet("shop")
        .create_invoice(l402::InvoiceRequest::new(Msat::from_sat(7), "variant"))
        .await
        .unwrap();
    let key = RootKey::generate();
    let id = Identifier::new(inv.payment_hash, TokenId::random());
    let macaroon = mint(&key, &id, "lsat", &[]);
    let invoice = match override_invoice {
        Some(f) => f(&inv.payment_hash),
        None => inv.bolt11,
    };
    let state = Variant {
        line: Arc::new(line),
        key: Arc::new(key),
        preimage: Arc::new(Preimage::random()),
        invoice: Arc::new(invoice),
        macaroon: Arc::new(macaroon),
        schemes: Arc::default(),
        body: Arc::new(body),
    };
    let _ = &state.preimage;
    serve(
        Router::new()
            .route("/x", get(variant_handler))
            .with_state(state),
    )
    .await
}

#[tokio::test]
async fn every_challenge_variant_is_understood_and_answered_in_its_scheme() {
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let lines: Vec<NamedLine> = vec![
        ("token= first", |m, i| {
            format!(r#"L402 token="{m}", invoice="{i}""#)
        }),
        ("version without comma", |m, i| {
            format!(r#"L402 version="0" token="{m}", invoice="{i}""#)
        }),
        ("LSAT only", |m, i| {
            format!(r#"LSAT macaroon="{m}", invoice="{i}""#)
        }),
        ("invoice first", |m, i| {
            format!(r#"L402 invoice="{i}", macaroon="{m}""#)
        }),
        ("unquoted", |m, i| {
            format!(r#"l402 macaroon={m}, invoice={i}"#)
        }),
    ];
    for (name, line) in lines {
        let addr = variant(&node, line, None, None).await;
        let c = client_for(&node, Budget::default()).await;
        let r = c
            .send(Request::get(url(addr, "/x")))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.inner.status(), 200, "{name}");
        assert_eq!(r.inner.text().await.unwrap(), "paid content", "{name}");
    }
}

#[tokio::test]
async fn lsat_challenges_get_lsat_credentials() {
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let schemes: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    // Rebuild a variant whose recorded schemes we can read.
    use l402::InvoiceIssuer;
    let inv = node
        .wallet("shop")
        .create_invoice(l402::InvoiceRequest::new(Msat::from_sat(7), "v"))
        .await
        .unwrap();
    let key = RootKey::generate();
    let mac = mint(
        &key,
        &Identifier::new(inv.payment_hash, TokenId::random()),
        "lsat",
        &[],
    );
    let state = Variant {
        line: Arc::new(|m, i| format!(r#"LSAT macaroon="{m}", invoice="{i}""#)),
        key: Arc::new(key),
        preimage: Arc::new(Preimage::random()),
        invoice: Arc::new(inv.bolt11),
        macaroon: Arc::new(mac),
        schemes: schemes.clone(),
        body: Arc::new(None),
    };
    let addr = serve(
        Router::new()
            .route("/x", get(variant_handler))
            .with_state(state),
    )
    .await;
    let c = client_for(&node, Budget::default()).await;
    assert_eq!(
        c.send(Request::get(url(addr, "/x")))
            .await
            .unwrap()
            .inner
            .status(),
        200
    );
    assert_eq!(schemes.lock().unwrap().as_slice(), ["LSAT"]);
}

#[tokio::test]
async fn challenges_that_must_not_be_paid() {
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let aperture = |m: &str, i: &str| format!(r#"L402 macaroon="{m}", invoice="{i}""#);
    let cases: Vec<(&str, InvoiceFn, Option<String>, &str)> = vec![
        (
            "amountless",
            Box::new(|h: &PaymentHash| {
                custom_invoice(
                    h,
                    &InvoiceSpec {
                        amount_msat: None,
                        ..InvoiceSpec::default()
                    },
                )
            }),
            None,
            "no amount",
        ),
        (
            "mainnet",
            Box::new(|h: &PaymentHash| {
                custom_invoice(
                    h,
                    &InvoiceSpec {
                        currency: Currency::Bitcoin,
                        ..InvoiceSpec::default()
                    },
                )
            }),
            None,
            "this wallet is on",
        ),
        (
            "expired",
            Box::new(|h: &PaymentHash| {
                custom_invoice(
                    h,
                    &InvoiceSpec {
                        timestamp: 1_600_000_000,
                        expiry: 60,
                        ..InvoiceSpec::default()
                    },
                )
            }),
            None,
            "expired",
        ),
        (
            "another hash",
            Box::new(|_h: &PaymentHash| {
                custom_invoice(&Preimage::random().payment_hash(), &InvoiceSpec::default())
            }),
            None,
            "bound to",
        ),
        (
            "advertised price",
            Box::new(|h: &PaymentHash| {
                custom_invoice(
                    h,
                    &InvoiceSpec {
                        amount_msat: Some(7000),
                        ..InvoiceSpec::default()
                    },
                )
            }),
            Some(r#"{"price_msat": 5000}"#.to_string()),
            "advertised 5000 msat",
        ),
    ];
    for (name, inv, body, needle) in cases {
        let addr = variant(&node, aperture, Some(inv), body).await;
        let c = client_for(&node, Budget::default()).await;
        let err = c.send(Request::get(url(addr, "/x"))).await.unwrap_err();
        assert!(
            matches!(err, ClientError::ChallengeRefused { .. }),
            "{name}: {err}"
        );
        assert_eq!(err.exit_code(), 14);
        assert!(err.to_string().contains(needle), "{name}: {err}");
        assert!(
            c.store().entries().await.unwrap().is_empty(),
            "{name}: nothing journaled"
        );
    }
}

#[tokio::test]
async fn concurrent_requests_share_one_payment() {
    let s = shop(DevNodeConfig::default(), Msat::from_sat(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let alice = s.node.wallet("alice");
    let before = alice.balance().await.unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        // Separate clients on one store file: as if several processes ran at once.
        let store = ClientStore::open(&path).await.unwrap();
        let c = L402Client::builder(SharedPayer::new(s.node.wallet("alice")), store)
            .network(Currency::Regtest)
            .build()
            .unwrap();
        let (addr, ok) = (s.addr, ok.clone());
        tasks.push(tokio::spawn(async move {
            let r = c.send(Request::get(url(addr, "/api/data"))).await;
            if r.map(|r| r.inner.status() == 200).unwrap_or(false) {
                ok.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 8);
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(before.as_u64() - 10_000),
        "exactly one payment"
    );
}

#[tokio::test]
async fn a_402_without_l402_is_a_protocol_error_and_errors_are_categorised() {
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let addr = serve(Router::new().route(
        "/x",
        get(|| async {
            (
                StatusCode::PAYMENT_REQUIRED,
                [("www-authenticate", "Payment id=\"x\"")],
                "pay",
            )
        }),
    ))
    .await;
    let c = client_for(&node, Budget::default()).await;
    let err = c.send(Request::get(url(addr, "/x"))).await.unwrap_err();
    assert_eq!(err.exit_code(), 15, "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = c.send(Request::get(url(closed, "/x"))).await.unwrap_err();
    assert_eq!(err.exit_code(), 13, "{err}");
}
