//! The extractor behind a real layer: 402 first, the token's terms after paying.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use l402::{Challenge, Credential, InvoicePayer, Msat, PayRequest, Scheme};
use l402_axum::L402Token;
use l402_tower::{Authority, AuthorityOptions, L402Layer, Policy};
use tower::ServiceExt;

async fn forecast(token: L402Token) -> String {
    format!(
        "{} tier={:?} caps={:?}",
        token.token_id(),
        token.tier(),
        token.capabilities()
    )
}

#[tokio::test]
async fn handler_sees_the_token() {
    let node = l402_devnode::DevNode::in_memory(Default::default())
        .await
        .unwrap();
    let store = l402_store::Store::connect("sqlite::memory:").await.unwrap();
    let authority = Authority::new(node.wallet("shop"), store, AuthorityOptions::default());
    let app: Router = Router::new()
        .route("/forecast", get(forecast))
        .layer(L402Layer::new(
            authority,
            Policy::new("weather", Msat::from_sat(10))
                .tier(2)
                .capabilities(["forecast"]),
        ));

    let resp = app
        .clone()
        .oneshot(Request::get("/forecast").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYMENT_REQUIRED);
    let lines: Vec<&str> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let challenge = Challenge::preferred(&Challenge::parse_all(lines).unwrap())
        .unwrap()
        .clone();
    let paid = node
        .wallet("alice")
        .pay(PayRequest::new(challenge.invoice(), Msat::ZERO))
        .await
        .unwrap();
    let auth =
        Credential::new(challenge.macaroon().clone(), paid.preimage).to_authorization(Scheme::L402);
    let resp = app
        .oneshot(
            Request::get("/forecast")
                .header("authorization", auth)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    let id = l402::Identifier::decode(challenge.macaroon().identifier()).unwrap();
    assert_eq!(
        text,
        format!("{} tier=Some(2) caps=Some([\"forecast\"])", id.token_id())
    );
}

#[tokio::test]
async fn missing_layer_is_a_500_not_free_access() {
    let app: Router = Router::new().route("/forecast", get(forecast));
    let resp = app
        .oneshot(Request::get("/forecast").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
