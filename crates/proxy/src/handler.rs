//! The request path, in order:
//!
//! ```text
//! client IP (trusted proxies) → blocklist (403) → route (404) → per-IP limits (429)
//!   → admission: free path | auth off | freebie → free;  else → L402 policy for the path
//!   → L402 decision: Authority::authorize (402 / 401 / 503 …) → per-token limits (429)
//!   → upstream (502 / 504)
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{Request, Response};
use http_body_util::BodyExt;
use l402_tower::{Grant, Rejection, is_grpc};

use crate::client_ip::{client_ip, client_net};
use crate::route::{Admission, ConnInfo, ProxyAuthority, RouteTable, no_route};
use crate::upstream::{Body, ReqBody};

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) table: ArcSwap<RouteTable>,
    pub(crate) authority: ProxyAuthority,
}

/// Refuses paths that upstreams may read differently from the way routes match them (so a free
/// or cheap path cannot reach another): dot segments, empty segments, backslashes, and
/// percent-encoded unreserved characters, slashes, backslashes or dots.
pub(crate) fn check_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Ok(()); // `*` (OPTIONS) and authority-form targets carry no path to confuse.
    }
    // One pass over the bytes (every request goes through here).
    let bytes = path.as_bytes();
    // Where the current segment began (just after its slash).
    let mut segment = 1;
    let mut i = 1;
    loop {
        let b = bytes.get(i).copied();
        if matches!(b, None | Some(b'/')) {
            match &bytes[segment..i] {
                b"." | b".." => return Err("dot segment"),
                b"" if b.is_some() => return Err("empty segment"),
                _ => {}
            }
            let Some(_) = b else { return Ok(()) };
            segment = i + 1;
            i += 1;
            continue;
        }
        match b {
            Some(b'\\') => return Err("backslash"),
            Some(b'%') => {
                let hex = path.get(i + 1..i + 3).ok_or("truncated percent-encoding")?;
                let b = u8::from_str_radix(hex, 16).map_err(|_| "bad percent-encoding")?;
                if b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\')
                {
                    return Err("percent-encoded character that needs no encoding");
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
}

/// Whether the request carries anything that looks like an L402 credential (a full parse
/// happens in the L402 decision; this only decides whether a freebie applies).
/// `authorization`: a value held apart from `headers`.
fn has_credential(headers: &http::HeaderMap, authorization: Option<&[u8]>) -> bool {
    let l402 = |v: &[u8]| {
        v.get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"l402 ") || p.eq_ignore_ascii_case(b"lsat "))
    };
    let l402_auth = authorization.is_some_and(l402)
        || headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .any(|v| l402(v.as_bytes()));
    // Most requests carry few headers: scanning them beats four hashed lookups.
    l402_auth
        || headers
            .keys()
            .any(|k| l402::HEX_HEADERS.contains(&k.as_str()))
}

fn rejection_response(r: Rejection, grpc: bool) -> Response<Body> {
    r.into_response(grpc)
        .map(|b| b.map_err(|never| match never {}).boxed_unsync())
}

/// What became of a request (the `outcome` label of `l402_requests_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    PaymentRequired,
    Unauthorized,
    Forbidden,
    RateLimited,
    Unavailable,
    UpstreamError,
    BadRequest,
    NoRoute,
}

impl Outcome {
    const ALL: [Outcome; 9] = [
        Outcome::Ok,
        Outcome::PaymentRequired,
        Outcome::Unauthorized,
        Outcome::Forbidden,
        Outcome::RateLimited,
        Outcome::Unavailable,
        Outcome::UpstreamError,
        Outcome::BadRequest,
        Outcome::NoRoute,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::PaymentRequired => "payment_required",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::RateLimited => "rate_limited",
            Outcome::Unavailable => "unavailable",
            Outcome::UpstreamError => "upstream_error",
            Outcome::BadRequest => "bad_request",
            Outcome::NoRoute => "no_route",
        }
    }
}

/// A service's request metrics, registered once: looking a metric up by its labels on every
/// request would allocate and hash them each time.
pub(crate) struct RequestMetrics {
    requests: [metrics::Counter; Outcome::ALL.len()],
    duration: metrics::Histogram,
}

impl RequestMetrics {
    /// Handles for `service` (`-` for requests that matched no service).
    pub(crate) fn new(service: &str) -> Self {
        RequestMetrics {
            requests: Outcome::ALL.map(|o| {
                metrics::counter!("l402_requests_total", "service" => service.to_owned(), "outcome" => o.label())
            }),
            duration: metrics::histogram!("l402_request_duration_seconds", "service" => service.to_owned()),
        }
    }

    fn record(&self, outcome: Outcome, started: Instant) {
        self.requests[outcome as usize].increment(1);
        self.duration.record(started.elapsed().as_secs_f64());
    }
}

/// The outcome label of a response from the forwarder (the upstream's, or a per-token limit's
/// 429, or our own 502/504).
fn forwarded_outcome(status: http::StatusCode) -> Outcome {
    match status.as_u16() {
        429 => Outcome::RateLimited,
        502 | 504 => Outcome::UpstreamError,
        _ => Outcome::Ok,
    }
}

/// Handles one request (`authorization`: its only `Authorization` value when the caller holds
/// it apart from the headers, see [`crate::h1::Plain`]; `raw_fields`: see
/// [`ConnInfo::raw_fields`]).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    mut req: Request<ReqBody>,
    authorization: Option<bytes::Bytes>,
    peer: IpAddr,
    tls: bool,
    raw_fields: bool,
) -> Response<Body> {
    let started = Instant::now();
    let table = shared.table.load_full();
    let grpc = is_grpc(req.headers());
    let ip = client_ip(
        peer,
        req.headers(),
        &table.trusted_proxies,
        table.forwarding_header,
    );
    if table.blocklist.iter().any(|n| n.contains(&ip)) {
        table.unrouted_metrics.record(Outcome::Forbidden, started);
        return rejection_response(
            Rejection::Forbidden {
                reason: "this address is blocked".into(),
            },
            grpc,
        );
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or_default();
    let path = req.uri().path();
    if let Err(why) = check_path(path) {
        table.unrouted_metrics.record(Outcome::BadRequest, started);
        return crate::upstream::local_response(
            http::StatusCode::BAD_REQUEST,
            &format!("ambiguous request path: {why}"),
            grpc,
        );
    }
    let Some(route) = table.route(host, path).cloned() else {
        table.unrouted_metrics.record(Outcome::NoRoute, started);
        return no_route(grpc);
    };
    if let Err(r) = route.limits.check_ip(path, ip) {
        route.metrics.record(Outcome::RateLimited, started);
        return rejection_response(r, grpc);
    }
    let net = client_net(ip, table.ipv4_prefix, table.ipv6_prefix);
    let conn = ConnInfo {
        tls,
        peer,
        client: ip,
        raw_fields,
    };
    let token = match route.admit(
        path,
        net,
        !has_credential(req.headers(), authorization.as_deref()),
    ) {
        // Free: straight to the forwarder, no L402 decision.
        Admission::Free => None,
        Admission::L402(own) => {
            let policy = own.as_ref().unwrap_or(route.base_policy());
            if policy.is_free() {
                // Priced at zero, with no pricer: nothing to verify.
                None
            } else {
                // The L402 decision, then the forwarder, called directly: the verified token is
                // handed over as an argument rather than through the request's extensions.
                let (mut parts, body) = req.into_parts();
                if policy.mint_guard.is_some() {
                    // The per-network challenge limit reads the client from here.
                    parts.extensions.insert(conn);
                }
                let grant = match route
                    .authority
                    .authorize_with(&parts, authorization.as_deref(), policy)
                    .await
                {
                    Ok(grant) => grant,
                    Err(rejection) => {
                        route.metrics.record(rejection_outcome(&rejection), started);
                        return rejection_response(rejection, grpc);
                    }
                };
                req = Request::from_parts(parts, body);
                match grant {
                    Grant::Token(token) => Some(token),
                    Grant::Free => None,
                }
            }
        }
    };
    let resp = match route.forwarder.prepare(
        req.uri().path(),
        authorization.as_deref(),
        conn,
        token.as_ref(),
        grpc,
    ) {
        Ok((upstream, meta)) => upstream.forward(req, &meta).await,
        Err(limited) => rejection_response(limited, grpc),
    };
    route
        .metrics
        .record(forwarded_outcome(resp.status()), started);
    resp
}

/// The outcome label of a request the L402 decision refused.
fn rejection_outcome(rejection: &Rejection) -> Outcome {
    match rejection {
        Rejection::PaymentRequired { .. } => Outcome::PaymentRequired,
        Rejection::Unauthorized { .. } => Outcome::Unauthorized,
        Rejection::Forbidden { .. } => Outcome::Forbidden,
        Rejection::TooManyRequests { .. } => Outcome::RateLimited,
        _ => Outcome::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::check_path;

    #[test]
    fn ambiguous_paths_are_refused() {
        for ok in [
            "/",
            "/weather/today",
            "/a%20b",
            "/files/%E2%82%AC",
            "/x/",
            "*",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/public/../secret",
            "/public/./x",
            "/..",
            "//admin",
            "/a//b",
            "/%61dmin",
            "/public%2F..%2Fsecret",
            "/%2e%2e/x",
            "/a\\b",
            "/%5c",
            "/%zz",
            "/%4",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    /// The rules, one at a time (the one-pass check must decide exactly as they do).
    fn reference(path: &str) -> bool {
        if !path.starts_with('/') {
            return true;
        }
        if path.contains('\\')
            || path[1..].split('/').any(|s| s == "." || s == "..")
            || path.contains("//")
        {
            return false;
        }
        let mut rest = path;
        while let Some(at) = rest.find('%') {
            let Some(b) = rest
                .get(at + 1..at + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            else {
                return false;
            };
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\') {
                return false;
            }
            rest = &rest[at + 3..];
        }
        true
    }

    #[test]
    fn the_one_pass_check_agrees_with_the_rules_on_every_short_path() {
        const ALPHABET: &[u8] = b"/.a%2eF\\";
        let mut path = Vec::new();
        for len in 0..=6u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                path.clear();
                path.push(b'/');
                for _ in 0..len {
                    path.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                let p = std::str::from_utf8(&path).unwrap();
                assert_eq!(check_path(p).is_ok(), reference(p), "{p}");
            }
        }
    }
}
