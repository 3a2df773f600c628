//! The L402 layer end to end: dev node invoices, a real SQLite store, and every outcome.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use l402::{
    BackendError, Challenge, CreatedInvoice, Credential, ErrorKind, Identifier, InvoiceIssuer,
    InvoicePayer, InvoiceRequest, InvoiceState, KeyId, Msat, PayRequest, PaymentHash, RootKey,
    RootKeyStore, Scheme, StoreError, TokenId, TokenRecord, VerifiedToken,
};
use l402_devnode::{DevNode, DevNodeConfig, DevWallet};
use l402_store::Store;
use l402_test::{caveat_value, unix_now};
use l402_tower::{
    Authority, AuthorityOptions, L402Layer, OnInvalid, OnMissing, Policy, PriceBinding,
};
use tower::{Service, ServiceBuilder, ServiceExt};

/// A store whose reads and writes can be made to fail.
#[derive(Clone)]
struct Flaky {
    store: Store,
    fail_reads: Arc<AtomicBool>,
    fail_writes: Arc<AtomicBool>,
}

impl RootKeyStore for Flaky {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StoreError::transient("disk on fire"));
        }
        self.store.insert(record).await
    }
    async fn root_key(&self, identifier: &Identifier) -> Result<Option<RootKey>, StoreError> {
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(StoreError::transient("connection refused"));
        }
        self.store.root_key(identifier).await
    }
    async fn mark_paid(&self, identifier: &Identifier) -> Result<Option<Msat>, StoreError> {
        self.store.mark_paid(identifier).await
    }
    async fn revoke(&self, token_id: &TokenId) -> Result<Option<KeyId>, StoreError> {
        self.store.revoke(token_id).await
    }
}

/// An issuer that can be made unreachable.
#[derive(Clone)]
struct Switch {
    wallet: DevWallet,
    down: Arc<AtomicBool>,
}

impl InvoiceIssuer for Switch {
    fn name(&self) -> &'static str {
        "switch"
    }
    async fn create_invoice(&self, r: InvoiceRequest) -> Result<CreatedInvoice, BackendError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BackendError::new(
                ErrorKind::Unreachable,
                "switch",
                "create invoice",
                "down",
            ));
        }
        self.wallet.create_invoice(r).await
    }
    async fn invoice_state(&self, h: &PaymentHash) -> Result<InvoiceState, BackendError> {
        self.wallet.invoice_state(h).await
    }
}

struct World {
    node: DevNode,
    store: Store,
    flaky: Flaky,
    issuer_down: Arc<AtomicBool>,
    authority: Authority<Switch, Flaky>,
}

async fn world() -> World {
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    let store = Store::sqlite(&dir.join("l402.db")).await.unwrap();
    let flaky = Flaky {
        store: store.clone(),
        fail_reads: Arc::default(),
        fail_writes: Arc::default(),
    };
    let issuer_down = Arc::new(AtomicBool::new(false));
    let issuer = Switch {
        wallet: node.wallet("shop"),
        down: issuer_down.clone(),
    };
    let authority = Authority::new(issuer, flaky.clone(), AuthorityOptions::default());
    World {
        node,
        store,
        flaky,
        issuer_down,
        authority,
    }
}

type Svc = tower::util::BoxCloneService<
    Request<Full<Bytes>>,
    Response<l402_tower::ResponseBody<Full<Bytes>>>,
    Infallible,
>;

/// The protected API: answers with the verified token id.
fn api(w: &World, policy: Policy) -> Svc {
    let svc = ServiceBuilder::new()
        .layer(L402Layer::new(w.authority.clone(), policy))
        .service_fn(|req: Request<Full<Bytes>>| async move {
            let token = req
                .extensions()
                .get::<VerifiedToken>()
                .expect("verified token");
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                token.token_id().to_hex(),
            ))))
        });
    tower::util::BoxCloneService::new(svc)
}

fn request(auth: Option<&str>, grpc: bool) -> Request<Full<Bytes>> {
    let mut b = Request::builder().uri("/forecast");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    if grpc {
        b = b.header("content-type", "application/grpc");
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

async fn call(svc: &mut Svc, req: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String) {
    let resp = svc.ready().await.unwrap().call(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Gets a challenge and pays it; returns the challenge and the Authorization value.
async fn buy(w: &World, svc: &mut Svc) -> (Challenge, String) {
    let (status, headers, body) = call(svc, request(None, false)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body, "payment required\n");
    let lines: Vec<&str> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "LSAT line then L402 line");
    assert!(lines[0].starts_with("LSAT macaroon=\""));
    assert!(lines[1].starts_with("L402 macaroon=\""));
    assert_eq!(headers["cache-control"], "no-store");
    let challenge = Challenge::preferred(&Challenge::parse_all(lines).unwrap())
        .unwrap()
        .clone();
    let paid = w
        .node
        .wallet("alice")
        .pay(PayRequest::new(challenge.invoice(), Msat::ZERO))
        .await
        .unwrap();
    let auth =
        Credential::new(challenge.macaroon().clone(), paid.preimage).to_authorization(Scheme::L402);
    (challenge, auth)
}

#[tokio::test]
async fn pay_then_pass() {
    let w = world().await;
    let mut svc = api(&w, Policy::new("weather", Msat::from_sat(10)));
    let (challenge, auth) = buy(&w, &mut svc).await;
    let (status, _, body) = call(&mut svc, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::OK);
    let id = l402::Identifier::decode(challenge.macaroon().identifier()).unwrap();
    assert_eq!(body, id.token_id().to_hex());
    // The token stays good.
    let (status, ..) = call(&mut svc, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::OK);
    // And the store learns it was paid (written in the background; ten seconds at most).
    let mut info = w.store.token(id.token_id()).await.unwrap().unwrap();
    for _ in 0..100 {
        if info.paid_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        info = w.store.token(id.token_id()).await.unwrap().unwrap();
    }
    assert!(info.paid_at.is_some());
    assert_eq!(info.price, Msat::from_sat(10));
}

#[tokio::test]
async fn invalid_credentials_get_401_or_a_fresh_402() {
    let w = world().await;
    let mut svc = api(&w, Policy::new("weather", Msat::from_sat(10)));
    let (challenge, _) = buy(&w, &mut svc).await;
    let wrong = Credential::new(challenge.macaroon().clone(), l402::Preimage::random())
        .to_authorization(Scheme::L402);
    let (status, headers, body) = call(&mut svc, request(Some(&wrong), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("preimage does not match"), "{body}");
    assert!(headers.get("www-authenticate").is_none());

    let mut compat = api(
        &w,
        Policy::new("weather", Msat::from_sat(10)).on_invalid(OnInvalid::Challenge),
    );
    let (status, headers, _) = call(&mut compat, request(Some(&wrong), false)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(headers.get("www-authenticate").is_some());

    let (status, _, body) = call(&mut svc, request(Some("L402 garbage"), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("Authorization"), "{body}");
}

#[tokio::test]
async fn a_token_for_another_service_is_refused() {
    let w = world().await;
    let mut weather = api(&w, Policy::new("weather", Msat::from_sat(10)));
    let mut maps = api(&w, Policy::new("maps", Msat::from_sat(10)));
    let (_, auth) = buy(&w, &mut weather).await;
    let (status, _, body) = call(&mut maps, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not valid for service \"maps\""), "{body}");
}

#[tokio::test]
async fn expired_tokens_and_missing_capabilities_are_refused() {
    let w = world().await;
    // A lifetime no test run reaches: this token is inside it however slow the machine.
    let policy = Policy::new("weather", Msat::from_sat(10))
        .capabilities(["forecast"])
        .token_lifetime(Duration::from_secs(3600));
    let mut svc = api(&w, policy.clone());
    let (_, auth) = buy(&w, &mut svc).await;
    let mut needs_admin = api(&w, policy.clone().require_capability("admin"));
    let (status, _, body) = call(&mut needs_admin, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("capability \"admin\""), "{body}");
    let (status, ..) = call(&mut svc, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::OK);

    // A one-second lifetime is minted as the issue time plus one, and refused once it passes.
    let mut brief = api(&w, policy.token_lifetime(Duration::from_secs(1)));
    let before = unix_now();
    let (challenge, short) = buy(&w, &mut brief).await;
    let after = unix_now();
    let until: i64 = caveat_value(challenge.macaroon(), "weather_valid_until")
        .expect("a valid_until caveat")
        .parse()
        .unwrap();
    assert!(
        (before + 1..=after + 1).contains(&until),
        "{before} {until} {after}"
    );
    while unix_now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, body) = call(&mut brief, request(Some(&short), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("expired"), "{body}");
    // The lifetime is the token's, not the service's: the long one still works here.
    let (status, ..) = call(&mut brief, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn constraints_are_minted_and_enforced() {
    let w = world().await;
    let policy =
        Policy::new("weather", Msat::from_sat(10)).constraints([("region".into(), "eu".into())]);
    let mut svc = api(&w, policy.clone());
    let (challenge, auth) = buy(&w, &mut svc).await;
    assert!(
        challenge
            .macaroon()
            .caveats()
            .iter()
            .any(|c| c.id() == b"region=eu")
    );
    assert_eq!(
        call(&mut svc, request(Some(&auth), false)).await.0,
        StatusCode::OK
    );
    // The same service now configured for another region refuses the token.
    let mut us = api(
        &w,
        Policy::new("weather", Msat::from_sat(10)).constraints([("region".into(), "us".into())]),
    );
    let (status, _, body) = call(&mut us, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("region"), "{body}");
}

/// A constraint named like the price binding's condition decides it (the binding's own check
/// does not replace it).
#[tokio::test]
async fn a_constraint_decides_a_condition_it_shares_with_the_binding() {
    let w = world().await;
    let bound = Policy::new("weather", Msat::from_sat(10)).price_binding(PriceBinding::Path);
    let mut svc = api(&w, bound.clone());
    let (_, auth) = buy(&w, &mut svc).await;
    assert_eq!(
        call(&mut svc, request(Some(&auth), false)).await.0,
        StatusCode::OK,
        "the token carries weather_path=/forecast"
    );
    let mut pinned = api(
        &w,
        bound.constraints([("weather_path".into(), "/elsewhere".into())]),
    );
    let (status, _, body) = call(&mut pinned, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("/elsewhere"), "{body}");
}

#[tokio::test]
async fn a_credential_is_parsed_once_and_still_checked_on_every_request() {
    let w = world().await;
    let policy = Policy::new("weather", Msat::from_sat(10)).capabilities(["forecast"]);
    let mut svc = api(&w, policy.clone());
    let (challenge, auth) = buy(&w, &mut svc).await;
    assert_eq!(w.authority.cached_credentials(), 0);
    // A wrong preimage never enters the cache.
    let forged = format!(
        "{}{}",
        &auth[..auth.len() - 1],
        if auth.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(
        call(&mut svc, request(Some(&forged), false)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.authority.cached_credentials(), 0);
    for _ in 0..3 {
        assert_eq!(
            call(&mut svc, request(Some(&auth), false)).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(w.authority.cached_credentials(), 1, "parsed once, kept");
    // Taken from the cache, the credential is still held to this request's terms…
    let mut admin = api(&w, policy.clone().require_capability("admin"));
    let (status, _, body) = call(&mut admin, request(Some(&auth), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("capability \"admin\""), "{body}");
    // …and two Authorization values are parsed (and must agree), never looked up.
    let mut twice = request(Some(&auth), false);
    twice
        .headers_mut()
        .append("authorization", forged.parse().unwrap());
    assert_eq!(call(&mut svc, twice).await.0, StatusCode::UNAUTHORIZED);
    // Revocation applies to a cached credential at once.
    revoke_then_refused(&w, &mut svc, &challenge, &auth).await;
}

/// Revokes the challenge's token (as an operator would) and checks `auth` is refused at once.
async fn revoke_then_refused(w: &World, svc: &mut Svc, challenge: &Challenge, auth: &str) {
    let id = l402::Identifier::decode(challenge.macaroon().identifier()).unwrap();
    let key = w.store.revoke(id.token_id()).await.unwrap().unwrap();
    w.authority.invalidate(&key);
    let (status, _, body) = call(svc, request(Some(auth), false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("unknown or revoked"), "{body}");
}

#[tokio::test]
async fn revoked_tokens_stop_working() {
    let w = world().await;
    let mut svc = api(&w, Policy::new("weather", Msat::from_sat(10)));
    let (challenge, auth) = buy(&w, &mut svc).await;
    assert_eq!(
        call(&mut svc, request(Some(&auth), false)).await.0,
        StatusCode::OK
    );
    revoke_then_refused(&w, &mut svc, &challenge, &auth).await;
}

#[tokio::test]
async fn store_down_means_503_never_a_new_402() {
    let w = world().await;
    let mut svc = api(&w, Policy::new("weather", Msat::from_sat(10)));
    let (_, auth) = buy(&w, &mut svc).await;

    // A token whose key is not cached yet, with the store unreadable: 503, not 402.
    let mut other_svc = api(&w, Policy::new("weather", Msat::from_sat(10)));
    let (_, auth2) = buy(&w, &mut other_svc).await;
    // Warm the cache for the first token only.
    assert_eq!(
        call(&mut svc, request(Some(&auth), false)).await.0,
        StatusCode::OK
    );
    w.flaky.fail_reads.store(true, Ordering::SeqCst);
    let (status, headers, body) = call(&mut svc, request(Some(&auth2), false)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get("retry-after").is_some());
    assert!(
        headers.get("www-authenticate").is_none(),
        "no challenge to pay twice"
    );
    assert!(body.contains("token store"), "{body}");
    // The cached token still works without the store: no database read per request.
    assert_eq!(
        call(&mut svc, request(Some(&auth), false)).await.0,
        StatusCode::OK
    );
    w.flaky.fail_reads.store(false, Ordering::SeqCst);
    assert_eq!(
        call(&mut svc, request(Some(&auth2), false)).await.0,
        StatusCode::OK
    );

    // Minting with an unwritable store: 503, and no invoice reaches the client.
    w.flaky.fail_writes.store(true, Ordering::SeqCst);
    let (status, headers, _) = call(&mut svc, request(None, false)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get("www-authenticate").is_none());
    w.flaky.fail_writes.store(false, Ordering::SeqCst);

    // Minting with the Lightning backend down: 503 too.
    w.issuer_down.store(true, Ordering::SeqCst);
    let (status, _, body) = call(&mut svc, request(None, false)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("Lightning backend"), "{body}");
}

#[tokio::test]
async fn grpc_requests_get_trailers_only_responses() {
    let w = world().await;
    let mut svc = api(&w, Policy::new("weather", Msat::from_sat(10)));
    let (status, headers, body) = call(&mut svc, request(None, true)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["grpc-status"], "13");
    assert_eq!(headers["grpc-message"], "payment required");
    assert_eq!(headers.get_all("www-authenticate").iter().count(), 2);
    assert!(body.is_empty());
    let (status, headers, _) = call(&mut svc, request(Some("L402 bad"), true)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["grpc-status"], "16");
}

#[tokio::test]
async fn paths_that_never_mint_get_401() {
    let w = world().await;
    let mut svc = api(
        &w,
        Policy::new("weather", Msat::from_sat(10)).on_missing(OnMissing::Unauthorized),
    );
    let (status, headers, _) = call(&mut svc, request(None, false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(w.store.stats().await.unwrap().tokens, 0, "nothing minted");
}

#[tokio::test]
async fn price_zero_is_free() {
    let w = world().await;
    let svc = ServiceBuilder::new()
        .layer(L402Layer::new(
            w.authority.clone(),
            Policy::new("free", Msat::ZERO),
        ))
        .service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
        });
    let resp = svc.oneshot(request(None, false)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

struct FixedPricer(Result<Msat, String>);

impl l402_tower::Pricer for FixedPricer {
    fn price<'a>(
        &'a self,
        _r: &'a http::request::Parts,
    ) -> l402_tower::BoxFuture<'a, Result<Msat, String>> {
        let v = self.0.clone();
        Box::pin(async move { v })
    }
}

#[tokio::test]
async fn dynamic_prices_set_the_invoice_or_make_it_free_or_503() {
    use std::str::FromStr;
    let w = world().await;
    let policy = |p: Result<Msat, String>| {
        Policy::new("weather", Msat::from_sat(10)).pricer(Arc::new(FixedPricer(p)))
    };
    let mut svc = api(&w, policy(Ok(Msat::new(7_000))));
    let (_, headers, _) = call(&mut svc, request(None, false)).await;
    let lines: Vec<&str> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let c = Challenge::parse_all(lines).unwrap();
    let inv = lightning_invoice::Bolt11Invoice::from_str(c[0].invoice()).unwrap();
    assert_eq!(
        inv.amount_milli_satoshis(),
        Some(7_000),
        "the pricer's price, not the static one"
    );

    let free = ServiceBuilder::new()
        .layer(L402Layer::new(w.authority.clone(), policy(Ok(Msat::ZERO))))
        .service_fn(|req: Request<Full<Bytes>>| async move {
            assert!(req.extensions().get::<VerifiedToken>().is_none());
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("free"))))
        });
    assert_eq!(
        free.oneshot(request(None, false)).await.unwrap().status(),
        StatusCode::OK
    );

    let mut broken = api(&w, policy(Err("pricer down".into())));
    let (status, headers, _) = call(&mut broken, request(None, false)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get("www-authenticate").is_none());
}

struct NoMore;

impl l402_tower::MintGuard for NoMore {
    fn check(&self, _r: &http::request::Parts) -> Result<(), l402_tower::Rejection> {
        Err(l402_tower::Rejection::TooManyRequests {
            retry_after: Duration::from_secs(30),
            reason: "challenges for this address".into(),
        })
    }
}

#[tokio::test]
async fn the_mint_guard_can_refuse_a_challenge() {
    let w = world().await;
    let mut svc = api(
        &w,
        Policy::new("weather", Msat::from_sat(10)).mint_guard(Arc::new(NoMore)),
    );
    let (status, headers, body) = call(&mut svc, request(None, false)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "30");
    assert!(body.contains("challenges for this address"), "{body}");
    assert_eq!(w.store.stats().await.unwrap().tokens, 0);
}
