//! Helpers shared by the tests against the real LNbits (`l402_test::lnbits`).

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use l402_backend_http::{HttpOptions, reqwest};
use l402_lnbits::LnbitsBackend;
use l402_test::lnbits::{Lnbits, Wallet, lnbits};
use serde_json::{Value, json};

/// A backend for `key` on this process's LNbits.
pub fn backend(key: &str) -> LnbitsBackend {
    backend_at(lnbits().host_port(), key, "")
}

/// A backend for `key` at `host_port` with a path prefix (`""` or `/prefix`).
pub fn backend_at(host_port: &str, key: &str, prefix: &str) -> LnbitsBackend {
    LnbitsBackend::from_uri(&format!("lnbits://{key}@{host_port}{prefix}")).unwrap()
}

/// A key LNbits has never issued (32 hex characters, like its own).
pub fn unknown_key() -> String {
    l402::PaymentHash::from_bytes(l402_test::random32()).to_hex()[..32].to_owned()
}

pub fn http() -> reqwest::Client {
    l402_backend_http::client("test", &HttpOptions::default()).unwrap()
}

/// A raw LNbits call: (status, JSON body).
pub async fn call(
    ln: &Lnbits,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http().request(method, format!("{}{path}", ln.url));
    if let Some(k) = key {
        req = req.header("X-Api-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A new wallet (a new LNbits account) holding `sats`, so a test can assert on its balance while
/// other tests use the shared payer.
pub async fn funded_wallet(name: &str, sats: u64) -> Wallet {
    let ln = lnbits();
    let (status, w) = call(
        ln,
        reqwest::Method::POST,
        "/api/v1/account",
        None,
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(status, 200, "{w}");
    let wallet: Wallet = serde_json::from_value(w).unwrap();
    if sats > 0 {
        let resp = http()
            .put(format!("{}/users/api/v1/balance", ln.url))
            .bearer_auth(&ln.admin_token)
            .json(&json!({ "id": wallet.id, "amount": sats }))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "top-up: {}",
            resp.text().await.unwrap()
        );
    }
    assert_eq!(balance_msat(&wallet).await, sats * 1000);
    wallet
}

/// A wallet's balance in msat.
pub async fn balance_msat(wallet: &Wallet) -> u64 {
    let (status, w) = call(
        lnbits(),
        reqwest::Method::GET,
        "/api/v1/wallet",
        Some(&wallet.inkey),
        None,
    )
    .await;
    assert_eq!(status, 200, "{w}");
    w["balance"].as_u64().unwrap()
}

/// A reverse proxy on a loopback port that serves `upstream` (e.g. `http://127.0.0.1:5000`)
/// under `prefix` (e.g. `/lnbits`), as nginx's `location /lnbits/ { proxy_pass …/; }` does, and
/// answers anything else with an HTML 404 page.
pub async fn prefix_proxy(upstream: String, prefix: &'static str) -> SocketAddr {
    let client = http();
    let app = axum::Router::new().fallback(move |req: Request| {
        let client = client.clone();
        let upstream = upstream.clone();
        async move {
            let path = req.uri().path().to_owned();
            let Some(rest) = path.strip_prefix(prefix).filter(|r| r.starts_with('/')) else {
                let mut resp = Response::new(Body::from("<html><body>404 Not Found</body></html>"));
                *resp.status_mut() = StatusCode::NOT_FOUND;
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                return resp;
            };
            let query = req
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let mut out = client.request(req.method().clone(), format!("{upstream}{rest}{query}"));
            for name in ["x-api-key", "content-type", "authorization"] {
                if let Some(v) = req.headers().get(name) {
                    out = out.header(name, v.as_bytes());
                }
            }
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap();
            let upstream_resp = out.body(body).send().await.unwrap();
            let status = upstream_resp.status().as_u16();
            let content_type = upstream_resp.headers().get("content-type").cloned();
            let bytes = upstream_resp.bytes().await.unwrap();
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Some(ct) = content_type {
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(ct.as_bytes()).unwrap(),
                );
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
