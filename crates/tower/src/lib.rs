//! L402 for tower services: verify credentials, mint challenges, and answer every refusal the
//! same way.
//!
//! * [`Authority`] verifies credentials (root keys cached in memory, read through the
//!   [`RootKeyStore`](l402::RootKeyStore) port on a miss) and mints challenges (invoice from the
//!   [`InvoiceIssuer`](l402::InvoiceIssuer) port, root key stored durably first).
//! * [`L402Layer`] / [`L402Service`] put it in front of any tower service; the verified token
//!   reaches the inner service as a request extension ([`VerifiedToken`](l402::VerifiedToken)).
//! * [`Policy`] holds a request's terms: service, price, minted caveats, required capability,
//!   and what to answer to missing or invalid credentials.
//! * [`Rejection`] turns every refusal into a response in one place: 402 with the challenge, 401,
//!   403, 429 and 503 with `Retry-After` — and, for gRPC requests, a trailers-only 200 with
//!   `grpc-status`, `grpc-message` and the `www-authenticate` metadata, as Aperture does.
//!
//! A store or backend that cannot answer always yields 503, never a fresh 402 a client might pay
//! twice.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use l402::Msat;
//! use l402_tower::{Authority, AuthorityOptions, L402Layer, Policy};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let node = l402_devnode::DevNode::in_memory(Default::default()).await.unwrap();
//! let store = l402_store::Store::connect("sqlite::memory:").await.unwrap();
//! let authority = Authority::new(node.wallet("shop"), store, AuthorityOptions::default());
//! let api = ServiceBuilder::new()
//!     .layer(L402Layer::new(authority, Policy::new("weather", Msat::from_sat(10))))
//!     .service_fn(|_req: Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("sunny"))))
//!     });
//! let resp = api.oneshot(Request::new(Full::new(Bytes::new()))).await.unwrap();
//! assert_eq!(resp.status(), StatusCode::PAYMENT_REQUIRED);
//! assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("LSAT macaroon="));
//! # });
//! ```

mod authority;
mod cache;
mod layer;
mod policy;
mod rejection;
mod service;

pub use authority::{Authority, AuthorityOptions, Grant};
pub use layer::L402Layer;
pub use policy::{
    BoxFuture, MintGuard, OnInvalid, OnMissing, Policy, PriceBinding, Pricer, path_condition,
    price_condition,
};
pub use rejection::{Rejection, is_grpc};
pub use service::{L402Service, ResponseBody};
