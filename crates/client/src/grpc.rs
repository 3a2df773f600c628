//! L402 for gRPC clients: a tower layer for tonic channels.
//!
//! ```no_run
//! # async fn demo(client: l402_client::L402Client) -> Result<(), Box<dyn std::error::Error>> {
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:8080").connect().await?;
//! let channel = tower::ServiceBuilder::new()
//!     .layer(l402_client::L402GrpcLayer::new(client, "http://127.0.0.1:8080")?)
//!     .service(channel);
//! // let mut api = MyServiceClient::new(channel);
//! # Ok(()) }
//! ```
//!
//! A call answered with Aperture's "payment required" (trailers-only, `grpc-status: 13`, the
//! challenge in `www-authenticate`) is paid for and retried once; later calls carry the token as
//! Aperture's gRPC client does: `macaroon` metadata holding the hex macaroon with a `preimage=`
//! caveat. Request messages are buffered (up to 4 MiB) so the call can be replayed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body as _;
use http_body_util::{BodyExt, Full, Limited};
use l402::{Challenge, Credential};
use tower::{Layer, Service, ServiceExt};

use crate::http::origin_and_scope;
use crate::store::Entry;
use crate::{ClientError, L402Client};

/// The most request bytes buffered for a replay.
const MAX_BUFFER: usize = 4 * 1024 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Adds L402 payment to a gRPC channel.
#[derive(Clone)]
pub struct L402GrpcLayer {
    client: L402Client,
    origin: url::Url,
}

impl L402GrpcLayer {
    /// A layer paying through `client` for calls to `endpoint` (the URL the channel connects to,
    /// e.g. `http://127.0.0.1:8080`; tonic hands the layer only the method path, so tokens are
    /// kept under this origin).
    pub fn new(client: L402Client, endpoint: &str) -> Result<Self, ClientError> {
        let origin = url::Url::parse(endpoint).map_err(|e| ClientError::InvalidRequest {
            reason: format!("gRPC endpoint {endpoint:?}: {e}"),
        })?;
        Ok(L402GrpcLayer { client, origin })
    }
}

impl<S> Layer<S> for L402GrpcLayer {
    type Service = L402GrpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        L402GrpcService {
            inner,
            client: self.client.clone(),
            origin: self.origin.clone(),
        }
    }
}

/// The service made by [`L402GrpcLayer`].
#[derive(Clone)]
pub struct L402GrpcService<S> {
    inner: S,
    client: L402Client,
    origin: url::Url,
}

fn grpc_payment_required<B>(resp: &Response<B>) -> bool {
    let status = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok());
    let message = resp
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(status, Some("13") | Some("2")) && message.contains("payment required")
}

fn grpc_refused<B>(resp: &Response<B>) -> bool {
    grpc_payment_required(resp)
        || resp
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            == Some("16")
}

fn metadata(e: &Entry) -> Result<HeaderValue, ClientError> {
    let preimage = e.preimage.clone().ok_or_else(|| ClientError::Store {
        reason: "a paid token without its preimage".into(),
    })?;
    HeaderValue::from_str(&Credential::new(e.macaroon.clone(), preimage).to_hex_header()).map_err(
        |_| ClientError::Protocol {
            reason: "the credential does not fit in a header".into(),
        },
    )
}

fn rebuild(
    parts: &http::request::Parts,
    body: &Bytes,
    token: Option<&Entry>,
) -> Result<Request<tonic::body::Body>, ClientError> {
    let mut req = Request::from_parts(
        parts.clone(),
        tonic::body::Body::new(Full::new(body.clone())),
    );
    if let Some(t) = token {
        req.headers_mut().insert("macaroon", metadata(t)?);
    }
    Ok(req)
}

impl<S, RB> Service<Request<tonic::body::Body>> for L402GrpcService<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: http_body::Body + Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> Self::Future {
        let inner = self.inner.clone();
        let client = self.client.clone();
        let base = self.origin.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            if body.size_hint().lower() as usize > MAX_BUFFER {
                return Err(BoxError::from(ClientError::InvalidRequest {
                    reason: "gRPC request too large to buffer for an L402 retry".into(),
                }));
            }
            let bytes = Limited::new(body, MAX_BUFFER)
                .collect()
                .await
                .map_err(|e| BoxError::from(format!("reading the gRPC request: {e}")))?
                .to_bytes();
            let url = base
                .join(&parts.uri.to_string())
                .map_err(|e| BoxError::from(format!("gRPC request URI: {e}")))?;
            let (origin, scope) = origin_and_scope(&url);
            let path = url.path().to_owned();
            let store = client.store();

            let token = store
                .token_for(&origin, &path)
                .await
                .map_err(BoxError::from)?;
            let resp = inner
                .clone()
                .oneshot(rebuild(&parts, &bytes, token.as_ref())?)
                .await
                .map_err(Into::into)?;
            let resp = if let Some(t) = &token {
                if !grpc_refused(&resp) {
                    return Ok(resp);
                }
                store
                    .reject(&t.payment_hash)
                    .await
                    .map_err(BoxError::from)?;
                if !client.allow_repay || !grpc_payment_required(&resp) {
                    return Ok(resp);
                }
                resp
            } else {
                resp
            };
            if !grpc_payment_required(&resp) {
                return Ok(resp);
            }
            let values = crate::challenge_values(resp.headers());
            let all = Challenge::parse_all(values.iter().map(String::as_str)).map_err(|e| {
                BoxError::from(ClientError::Protocol {
                    reason: format!("payment required without a usable challenge: {e}"),
                })
            })?;
            let challenge = Challenge::preferred(&all).expect("at least one").clone();
            if client.no_pay {
                return Ok(resp);
            }
            let (token, _) = client
                .payer
                .buy(&origin, &scope, &challenge, None)
                .await
                .map_err(BoxError::from)?;
            inner
                .oneshot(rebuild(&parts, &bytes, Some(&token))?)
                .await
                .map_err(Into::into)
        })
    }
}
