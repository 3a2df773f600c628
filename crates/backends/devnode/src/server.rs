//! Serving a dev node over HTTP.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use l402::{
    BackendError, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, Msat, PayRequest,
    PaymentHash, PaymentState,
};
use std::time::Duration;
use subtle::ConstantTimeEq;

use crate::DevNode;
use crate::wire;

struct ApiError(BackendError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, status) = wire::kind_to_wire(self.0.kind());
        let body = wire::ErrorBody {
            error: wire::ErrorDetail {
                kind: kind.into(),
                message: self.0.to_string(),
            },
        };
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(body),
        )
            .into_response()
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        ApiError(e)
    }
}

fn bad_request(call: &'static str, detail: String) -> ApiError {
    ApiError(BackendError::new(
        ErrorKind::InvalidRequest,
        crate::NAME,
        call,
        detail,
    ))
}

fn hash(s: &str, call: &'static str) -> Result<PaymentHash, ApiError> {
    s.parse()
        .map_err(|e: l402::Error| bad_request(call, e.to_string()))
}

pub(crate) fn router(node: DevNode, api_key: Option<String>) -> Router {
    let app = Router::new()
        .route("/v1/info", get(info))
        .route("/v1/wallets/{wallet}", get(wallet))
        .route("/v1/wallets/{wallet}/invoices", post(create_invoice))
        .route("/v1/wallets/{wallet}/invoices/{hash}", get(invoice_state))
        .route("/v1/wallets/{wallet}/payments", post(pay))
        .route("/v1/wallets/{wallet}/payments/{hash}", get(payment))
        .with_state(node);
    match api_key {
        None => app,
        Some(key) => app.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let key = key.clone();
                async move {
                    let given = req
                        .headers()
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or("");
                    if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
                        next.run(req).await
                    } else {
                        ApiError(BackendError::new(
                            ErrorKind::Unauthorized,
                            crate::NAME,
                            "authenticate",
                            "missing or wrong API key (Authorization: Bearer <key>)",
                        ))
                        .into_response()
                    }
                }
            },
        )),
    }
}

async fn info(State(node): State<DevNode>) -> Json<wire::Info> {
    Json(wire::Info {
        node_id: node.node_id().to_string(),
        network: "regtest".into(),
    })
}

async fn wallet(
    State(node): State<DevNode>,
    Path(name): Path<String>,
) -> Result<Json<wire::Wallet>, ApiError> {
    let balance = node.wallet(name.clone()).balance().await?;
    Ok(Json(wire::Wallet {
        name,
        balance_msat: balance.as_u64(),
    }))
}

async fn create_invoice(
    State(node): State<DevNode>,
    Path(name): Path<String>,
    Json(body): Json<wire::CreateInvoice>,
) -> Result<Json<wire::Invoice>, ApiError> {
    let req = InvoiceRequest::new(Msat::new(body.amount_msat), body.memo)
        .expiry(Duration::from_secs(body.expiry_secs));
    let inv = node.wallet(name).create_invoice(req).await?;
    Ok(Json(wire::Invoice {
        bolt11: inv.bolt11,
        payment_hash: inv.payment_hash.to_hex(),
    }))
}

async fn invoice_state(
    State(node): State<DevNode>,
    Path((name, h)): Path<(String, String)>,
) -> Result<Json<wire::State>, ApiError> {
    let h = hash(&h, "invoice state")?;
    let state = node.wallet(name).invoice_state(&h).await?;
    Ok(Json(wire::State {
        state: state.as_str().into(),
    }))
}

async fn pay(
    State(node): State<DevNode>,
    Path(name): Path<String>,
    Json(body): Json<wire::Pay>,
) -> Result<Json<wire::Payment>, ApiError> {
    let paid = node
        .wallet(name)
        .pay(PayRequest::new(body.bolt11, Msat::new(body.max_fee_msat)))
        .await?;
    Ok(Json(wire::Payment {
        state: "succeeded".into(),
        preimage: Some(paid.preimage.to_hex()),
        amount_msat: Some(paid.amount.as_u64()),
        fee_msat: Some(paid.fee.as_u64()),
    }))
}

async fn payment(
    State(node): State<DevNode>,
    Path((name, h)): Path<(String, String)>,
) -> Result<Json<wire::Payment>, ApiError> {
    let h = hash(&h, "payment lookup")?;
    let out = match node.wallet(name).payment(&h).await? {
        PaymentState::Succeeded(p) => wire::Payment {
            state: "succeeded".into(),
            preimage: Some(p.preimage.to_hex()),
            amount_msat: Some(p.amount.as_u64()),
            fee_msat: Some(p.fee.as_u64()),
        },
        PaymentState::NotFound => wire::Payment {
            state: "not_found".into(),
            preimage: None,
            amount_msat: None,
            fee_msat: None,
        },
        PaymentState::InFlight => wire::Payment {
            state: "in_flight".into(),
            preimage: None,
            amount_msat: None,
            fee_msat: None,
        },
        PaymentState::Failed { reason } => wire::Payment {
            state: format!("failed: {reason}"),
            preimage: None,
            amount_msat: None,
            fee_msat: None,
        },
    };
    Ok(Json(out))
}
