//! L402 for axum: put [`L402Layer`](l402_tower::L402Layer) in front of a router and read what the
//! token grants with the [`L402Token`] extractor.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use axum::{Router, routing::get};
//! use l402::Msat;
//! use l402_axum::L402Token;
//! use l402_tower::{Authority, AuthorityOptions, L402Layer, Policy};
//!
//! async fn forecast(token: L402Token) -> String {
//!     format!("sunny, for token {} (tier {:?})", token.token_id(), token.tier())
//! }
//!
//! let node = l402_devnode::DevNode::in_memory(Default::default()).await.unwrap();
//! let store = l402_store::Store::connect("sqlite::memory:").await.unwrap();
//! let authority = Authority::new(node.wallet("shop"), store, AuthorityOptions::default());
//! let app: Router = Router::new()
//!     .route("/forecast", get(forecast))
//!     .layer(L402Layer::new(authority, Policy::new("weather", Msat::from_sat(10))));
//! # let _ = app;
//! # });
//! ```

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use l402::VerifiedToken;

/// The verified token of the request, put there by [`L402Layer`](l402_tower::L402Layer).
///
/// Dereferences to [`VerifiedToken`]: token id, payment hash, tier, capabilities, expiry.
#[derive(Clone, Debug)]
pub struct L402Token(pub VerifiedToken);

impl std::ops::Deref for L402Token {
    type Target = VerifiedToken;

    fn deref(&self) -> &VerifiedToken {
        &self.0
    }
}

/// The extractor found no verified token: the handler is not behind an `L402Layer` (a setup
/// error, answered 500 so it cannot be mistaken for free access).
#[derive(Debug)]
pub struct MissingL402Layer;

impl IntoResponse for MissingL402Layer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server misconfigured: this route needs an L402Layer in front of it\n",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for L402Token {
    type Rejection = MissingL402Layer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedToken>()
            .cloned()
            .map(L402Token)
            .ok_or(MissingL402Layer)
    }
}

/// A [`Rejection`](l402_tower::Rejection) as an axum response, for handlers that make their own
/// L402 decisions (for example with [`Authority::authorize`](l402_tower::Authority::authorize)).
#[derive(Debug)]
pub struct L402Rejection {
    /// The rejection.
    pub rejection: l402_tower::Rejection,
    /// Whether the request was gRPC.
    pub grpc: bool,
}

impl IntoResponse for L402Rejection {
    fn into_response(self) -> Response {
        self.rejection
            .into_response(self.grpc)
            .map(axum::body::Body::new)
    }
}
