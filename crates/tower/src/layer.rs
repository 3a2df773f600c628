//! [`L402Layer`]: wraps a service so every request is authorized first.

use tower::Layer;

use crate::{Authority, L402Service, Policy};

/// Applies L402 to an inner service: requests without a valid credential are answered here
/// (402/401/503…); valid ones reach the inner service with the [`VerifiedToken`](l402::VerifiedToken)
/// in their extensions.
///
/// The policy is `default_policy` unless a request already carries a [`Policy`] extension (which
/// the layer takes out of the request).
pub struct L402Layer<I, K> {
    authority: Authority<I, K>,
    default_policy: Policy,
}

impl<I, K> L402Layer<I, K> {
    /// A layer that applies `default_policy` with `authority`.
    pub fn new(authority: Authority<I, K>, default_policy: Policy) -> Self {
        L402Layer {
            authority,
            default_policy,
        }
    }
}

impl<I, K> Clone for L402Layer<I, K> {
    fn clone(&self) -> Self {
        L402Layer {
            authority: self.authority.clone(),
            default_policy: self.default_policy.clone(),
        }
    }
}

impl<S, I, K> Layer<S> for L402Layer<I, K> {
    type Service = L402Service<S, I, K>;

    fn layer(&self, inner: S) -> Self::Service {
        L402Service::new(inner, self.authority.clone(), self.default_policy.clone())
    }
}
