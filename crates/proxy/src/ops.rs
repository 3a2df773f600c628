//! The operations listener: Prometheus metrics, health, and the admin API.
//!
//! | method | path | auth | answer |
//! |---|---|---|---|
//! | `GET` | `/metrics` | none | Prometheus text format |
//! | `GET` | `/health` | none | `ok` |
//! | `GET` | `/admin/stats` | bearer | `{"tokens", "paid", "revoked", "revenue_msat"}` |
//! | `GET` | `/admin/tokens?limit=N` | bearer | the newest tokens |
//! | `GET` | `/admin/tokens/{token_id}` | bearer | one token |
//! | `POST` | `/admin/tokens/{token_id}/revoke` | bearer | revokes it everywhere |

use std::sync::OnceLock;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use l402::{RootKeyStore, TokenId};
use l402_store::{Store, TokenInfo};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::json;

use crate::config::Secret;
use crate::route::ProxyAuthority;

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("l402_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )
            .expect("static buckets")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

#[derive(Clone)]
struct Ops {
    store: Store,
    authority: ProxyAuthority,
}

fn token_json(t: &TokenInfo) -> serde_json::Value {
    json!({
        "token_id": t.token_id.to_hex(),
        "payment_hash": t.payment_hash.to_hex(),
        "service": t.service,
        "price_msat": t.price.as_u64(),
        "created_at": t.created_at,
        "invoice_expires_at": t.invoice_expires_at,
        "paid_at": t.paid_at,
        "revoked_at": t.revoked_at,
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn parse_token(id: &str) -> Result<TokenId, Box<Response>> {
    id.parse()
        .map_err(|e: l402::Error| Box::new(error(StatusCode::BAD_REQUEST, &e.to_string())))
}

fn store_error(e: l402::StoreError) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<u32>,
}

async fn stats(State(ops): State<Ops>) -> Response {
    match ops.store.stats().await {
        Ok(s) => Json(json!({
            "tokens": s.tokens, "paid": s.paid, "revoked": s.revoked, "revenue_msat": s.revenue.as_u64(),
        }))
        .into_response(),
        Err(e) => store_error(e),
    }
}

async fn tokens(State(ops): State<Ops>, Query(q): Query<Limit>) -> Response {
    match ops
        .store
        .recent_tokens(q.limit.unwrap_or(50).min(1000))
        .await
    {
        Ok(list) => Json(json!({ "tokens": list.iter().map(token_json).collect::<Vec<_>>() }))
            .into_response(),
        Err(e) => store_error(e),
    }
}

async fn token_info(State(ops): State<Ops>, Path(id): Path<String>) -> Response {
    let id = match parse_token(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match ops.store.token(&id).await {
        Ok(Some(t)) => Json(token_json(&t)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such token"),
        Err(e) => store_error(e),
    }
}

async fn revoke(State(ops): State<Ops>, Path(id): Path<String>) -> Response {
    let id = match parse_token(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match ops.store.revoke(&id).await {
        Ok(Some(key_id)) => {
            ops.authority.invalidate(&key_id);
            tracing::info!(token = %id, "token revoked");
            Json(json!({ "revoked": true, "token_id": id.to_hex() })).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no such token"),
        Err(e) => store_error(e),
    }
}

/// The operations router.
pub(crate) fn router(
    store: Store,
    authority: ProxyAuthority,
    admin_token: Option<Secret>,
) -> Router {
    let mut app = Router::new()
        .route("/metrics", get(|| async { prometheus().render() }))
        .route("/health", get(|| async { "ok\n" }));
    if let Some(token) = admin_token {
        let admin = Router::new()
            .route("/admin/stats", get(stats))
            .route("/admin/tokens", get(tokens))
            .route("/admin/tokens/{id}", get(token_info))
            .route("/admin/tokens/{id}/revoke", post(revoke))
            .with_state(Ops { store, authority })
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let token = token.clone();
                    async move {
                        use subtle::ConstantTimeEq;
                        let given = req
                            .headers()
                            .get(axum::http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .unwrap_or("");
                        if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
                            next.run(req).await
                        } else {
                            error(
                                StatusCode::UNAUTHORIZED,
                                "missing or wrong admin token (Authorization: Bearer …)",
                            )
                        }
                    }
                },
            ));
        app = app.merge(admin);
    }
    app
}
