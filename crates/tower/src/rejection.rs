//! Every refusal, turned into a response in one place.
//!
//! HTTP requests get the status code; gRPC requests (`Content-Type: application/grpc…`) get what
//! gRPC clients understand, as Aperture does: a trailers-only HTTP 200 carrying `grpc-status` and
//! `grpc-message` (and, for a challenge, the `www-authenticate` metadata).

use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use l402::{Challenge, ChallengeFormat};

/// Why a request was not served.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// 402: pay this challenge's invoice and retry with the credential.
    PaymentRequired {
        /// The challenge.
        challenge: Box<Challenge>,
        /// How to write it.
        format: ChallengeFormat,
    },
    /// 401: the credential is invalid (or, on paths that never mint, missing).
    Unauthorized {
        /// What was wrong with it.
        reason: String,
    },
    /// 403: this client may not use this service (blocklist, wrong tier).
    Forbidden {
        /// Why.
        reason: String,
    },
    /// 429: too many requests; retry after the given time.
    TooManyRequests {
        /// When to retry.
        retry_after: Duration,
        /// Which limit was hit.
        reason: String,
    },
    /// 503: the server could not tell whether the request may pass (token store or Lightning
    /// backend unavailable). Never answered with a fresh challenge, which a client might pay
    /// again.
    Unavailable {
        /// When to retry.
        retry_after: Duration,
        /// What was unavailable (no secrets, no internals beyond the component's name).
        reason: String,
    },
}

/// gRPC status codes used here.
mod grpc_code {
    pub(super) const INTERNAL: u8 = 13;
    pub(super) const UNAUTHENTICATED: u8 = 16;
    pub(super) const PERMISSION_DENIED: u8 = 7;
    pub(super) const RESOURCE_EXHAUSTED: u8 = 8;
    pub(super) const UNAVAILABLE: u8 = 14;
}

fn retry_secs(d: Duration) -> String {
    d.as_secs().max(1).to_string()
}

/// Whether a request is gRPC (its content type starts with `application/grpc`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// gRPC messages are percent-encoded for bytes outside printable ASCII (and `%` itself).
fn grpc_message(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Rejection {
    /// The HTTP status for plain HTTP requests.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::PaymentRequired { .. } => StatusCode::PAYMENT_REQUIRED,
            Rejection::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden { .. } => StatusCode::FORBIDDEN,
            Rejection::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejection::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status code for gRPC requests.
    pub fn grpc_code(&self) -> u8 {
        match self {
            // Aperture's code and message: its gRPC clients look for exactly these.
            Rejection::PaymentRequired { .. } => grpc_code::INTERNAL,
            Rejection::Unauthorized { .. } => grpc_code::UNAUTHENTICATED,
            Rejection::Forbidden { .. } => grpc_code::PERMISSION_DENIED,
            Rejection::TooManyRequests { .. } => grpc_code::RESOURCE_EXHAUSTED,
            Rejection::Unavailable { .. } => grpc_code::UNAVAILABLE,
        }
    }

    /// A short label for metrics and logs: `payment_required`, `unauthorized`, `forbidden`,
    /// `rate_limited` or `unavailable`.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::PaymentRequired { .. } => "payment_required",
            Rejection::Unauthorized { .. } => "unauthorized",
            Rejection::Forbidden { .. } => "forbidden",
            Rejection::TooManyRequests { .. } => "rate_limited",
            Rejection::Unavailable { .. } => "unavailable",
        }
    }

    fn message(&self) -> String {
        match self {
            Rejection::PaymentRequired { .. } => "payment required".into(),
            Rejection::Unauthorized { reason } => format!("unauthorized: {reason}"),
            Rejection::Forbidden { reason } => format!("forbidden: {reason}"),
            Rejection::TooManyRequests { reason, .. } => format!("rate limit exceeded: {reason}"),
            Rejection::Unavailable { reason, .. } => {
                format!("service unavailable, retry later: {reason}")
            }
        }
    }

    fn extra_headers(&self, headers: &mut HeaderMap) {
        match self {
            Rejection::PaymentRequired { challenge, format } => {
                for line in challenge.header_values(*format) {
                    if let Ok(v) = HeaderValue::from_str(&line) {
                        headers.append(WWW_AUTHENTICATE, v);
                    }
                }
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            Rejection::TooManyRequests { retry_after, .. }
            | Rejection::Unavailable { retry_after, .. } => {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from_str(&retry_secs(*retry_after)).expect("digits"),
                );
            }
            Rejection::Unauthorized { .. } | Rejection::Forbidden { .. } => {}
        }
    }

    /// The response: plain HTTP (status, headers, a one-line text body) or, when `grpc`, a
    /// trailers-only gRPC response.
    pub fn into_response(self, grpc: bool) -> Response<Full<Bytes>> {
        let message = self.message();
        let mut response = if grpc {
            let mut r = Response::new(Full::new(Bytes::new()));
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert(
                "grpc-status",
                HeaderValue::from(u16::from(self.grpc_code())),
            );
            h.insert(
                "grpc-message",
                HeaderValue::from_str(&grpc_message(&message)).expect("printable ASCII"),
            );
            r
        } else {
            let mut r = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
            *r.status_mut() = self.status();
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            r
        };
        self.extra_headers(response.headers_mut());
        response
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(grpc_message("payment required"), "payment required");
        assert_eq!(grpc_message("50% é"), "50%25 %C3%A9");
    }

    #[test]
    fn unavailable_has_retry_after_on_both_paths() {
        let r = Rejection::Unavailable {
            retry_after: Duration::from_millis(200),
            reason: "token store".into(),
        };
        let http = r.clone().into_response(false);
        assert_eq!(http.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(http.headers()[RETRY_AFTER], "1");
        let grpc = r.into_response(true);
        assert_eq!(grpc.status(), StatusCode::OK);
        assert_eq!(grpc.headers()["grpc-status"], "14");
        assert_eq!(grpc.headers()[RETRY_AFTER], "1");
    }
}
