//! [`L402Service`]: the middleware itself.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use l402::{InvoiceIssuer, RootKeyStore};
use tower::Service;

use crate::{Authority, Grant, Policy, is_grpc};

/// The response body: the inner service's, or a rejection's.
pub type ResponseBody<B> = Either<B, Full<Bytes>>;

/// The middleware built by [`L402Layer`](crate::L402Layer).
pub struct L402Service<S, I, K> {
    inner: S,
    authority: Authority<I, K>,
    /// Shared: a service is cloned for every request, and a policy is a dozen fields.
    default_policy: std::sync::Arc<Policy>,
}

impl<S, I, K> L402Service<S, I, K> {
    /// Wraps `inner`.
    pub fn new(inner: S, authority: Authority<I, K>, default_policy: Policy) -> Self {
        L402Service {
            inner,
            authority,
            default_policy: std::sync::Arc::new(default_policy),
        }
    }
}

impl<S: Clone, I, K> Clone for L402Service<S, I, K> {
    fn clone(&self) -> Self {
        L402Service {
            inner: self.inner.clone(),
            authority: self.authority.clone(),
            default_policy: self.default_policy.clone(),
        }
    }
}

impl<S, I, K, ReqB, ResB> Service<Request<ReqB>> for L402Service<S, I, K>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    I: InvoiceIssuer + 'static,
    K: RootKeyStore + 'static,
    ReqB: Send + 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // The clone is not ready yet; take the ready one (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // The request's own policy is taken out of it (nothing after the layer reads it).
        let policy = match req.extensions_mut().remove::<Policy>() {
            Some(p) => std::sync::Arc::new(p),
            None => self.default_policy.clone(),
        };
        if policy.is_free() {
            // A small future of its own: free requests do not carry verification's state.
            return Box::pin(async move { inner.call(req).await.map(|r| r.map(Either::Left)) });
        }
        let authority = self.authority.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match authority.authorize(&parts, &policy).await {
                Ok(grant) => {
                    if let Grant::Token(token) = grant {
                        parts.extensions.insert(token);
                    }
                    let req = Request::from_parts(parts, body);
                    inner.call(req).await.map(|r| r.map(Either::Left))
                }
                Err(rejection) => {
                    let grpc = is_grpc(&parts.headers);
                    Ok(rejection.into_response(grpc).map(Either::Right))
                }
            }
        })
    }
}
