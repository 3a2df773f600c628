//! Forwarding to upstreams: pooled connections (HTTP/1.1, HTTP/2 over verified TLS, h2c),
//! streaming bodies both ways, trailers kept, WebSocket (and any HTTP/1.1) upgrades tunnelled.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use l402::VerifiedToken;

use crate::config::{ServiceConfig, UpstreamProtocol};
use crate::pool::H1Pool;

/// Errors carried by response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the proxy sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A request body as the proxy received it: hyper's, or none (a request read by the proxy's own
/// HTTP/1.1 lane, which takes only requests without a body; see [`crate::front`]).
pub(crate) enum ReqBody {
    /// From a hyper server connection.
    Hyper(Incoming),
    /// No body at all.
    Empty,
}

impl http_body::Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ReqBody::Hyper(b) => std::pin::Pin::new(b).poll_frame(cx),
            ReqBody::Empty => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Hyper(b) => b.is_end_stream(),
            ReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ReqBody::Hyper(b) => b.size_hint(),
            ReqBody::Empty => http_body::SizeHint::with_exact(0),
        }
    }
}

/// A body from bytes.
pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response the proxy makes itself (no upstream involved): a status and a one-line message,
/// or for gRPC requests a trailers-only response with the matching `grpc-status`.
pub(crate) fn local_response(status: StatusCode, message: &str, grpc: bool) -> Response<Body> {
    if grpc {
        let code: u16 = match status {
            StatusCode::NOT_FOUND => 12,        // UNIMPLEMENTED
            StatusCode::FORBIDDEN => 7,         // PERMISSION_DENIED
            StatusCode::GATEWAY_TIMEOUT => 4,   // DEADLINE_EXCEEDED
            StatusCode::TOO_MANY_REQUESTS => 8, // RESOURCE_EXHAUSTED
            _ => 14,                            // UNAVAILABLE
        };
        let mut r = Response::new(full(Bytes::new()));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", HeaderValue::from(code));
        if let Ok(v) = HeaderValue::from_str(message) {
            h.insert("grpc-message", v);
        }
        return r;
    }
    let mut r = Response::new(full(format!("{message}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

enum Pool {
    /// Plaintext HTTP/1.1: our own pool (see [`crate::pool`]).
    H1(H1Pool),
    /// h2c: one multiplexed connection, through hyper-util's client.
    H2c(Client<HttpConnector, ReqBody>),
    /// TLS, HTTP/2 or HTTP/1.1 by ALPN.
    Tls(Client<HttpsConnector<HttpConnector>, ReqBody>),
}

/// One service's upstream: where, how, and its connection pool.
pub(crate) struct Upstream {
    protocol: UpstreamProtocol,
    authority: http::uri::Authority,
    base_path: String,
    timeout: Duration,
    headers: Vec<(HeaderName, HeaderValue)>,
    pool: Pool,
}

fn tls_config(ca: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {}", path.display()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

impl Upstream {
    pub(crate) fn new(s: &ServiceConfig) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(s.upstream_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(90));
        let pool = match s.protocol {
            UpstreamProtocol::Http => {
                Pool::H1(H1Pool::new(&s.upstream_authority, s.upstream_timeout)?)
            }
            UpstreamProtocol::H2c => Pool::H2c(builder.http2_only(true).build(http)),
            UpstreamProtocol::Https => {
                let tls = tls_config(s.upstream_ca.as_deref())?;
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_only()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(http);
                Pool::Tls(builder.build(https))
            }
        };
        Ok(Upstream {
            protocol: s.protocol,
            authority: s
                .upstream_authority
                .parse()
                .map_err(|e| format!("upstream address {:?}: {e}", s.upstream_authority))?,
            base_path: s.upstream_path.clone(),
            timeout: s.upstream_timeout,
            headers: s.headers.clone(),
            pool,
        })
    }

    /// The request target for an HTTP/1.1 upstream: origin-form (`/path?query`), under the
    /// upstream's base path. `None`: the request's own target already is that.
    fn origin_form(&self, uri: &Uri) -> Result<Option<Uri>, http::Error> {
        if self.base_path.is_empty() && uri.scheme().is_none() && uri.authority().is_none() {
            return Ok(None);
        }
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        Uri::builder()
            .path_and_query(format!("{}{pq}", self.base_path))
            .build()
            .map(Some)
    }

    fn target(&self, uri: &Uri) -> Result<Uri, http::Error> {
        let scheme = if self.protocol == UpstreamProtocol::Https {
            "https"
        } else {
            "http"
        };
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let pq = if self.base_path.is_empty() {
            pq.to_owned()
        } else {
            format!("{}{pq}", self.base_path)
        };
        Uri::builder()
            .scheme(scheme)
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }

    /// Forwards `req` and returns the upstream's response (or a 502/504 of our own).
    pub(crate) async fn forward(
        &self,
        mut req: Request<ReqBody>,
        meta: &ForwardMeta<'_>,
    ) -> Response<Body> {
        let grpc = meta.grpc;
        let upgrade = is_upgrade(&req);
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let original_host = match req.uri().authority() {
            Some(a) => HeaderValue::from_str(a.as_str()).ok(),
            None => req.headers().get(header::HOST).cloned(),
        };
        let target = match &self.pool {
            Pool::H1(_) => self.origin_form(req.uri()),
            _ => self.target(req.uri()).map(Some),
        };
        match target {
            Ok(Some(u)) => *req.uri_mut() = u,
            Ok(None) => {}
            Err(e) => {
                return local_response(
                    StatusCode::BAD_REQUEST,
                    &format!("bad request target: {e}"),
                    grpc,
                );
            }
        }
        *req.version_mut() = match self.protocol {
            UpstreamProtocol::H2c => Version::HTTP_2,
            // hyper picks HTTP/2 by ALPN for TLS upstreams.
            UpstreamProtocol::Http | UpstreamProtocol::Https => Version::HTTP_11,
        };
        let mut added =
            prepare_request_headers(req.headers_mut(), upgrade, grpc, original_host, meta);
        for (k, v) in &self.headers {
            added.forget(k);
            req.headers_mut().insert(k.clone(), v.clone());
        }

        // `Err(None)`: no answer within the timeout.
        let sent: Result<Response<Body>, Option<BoxError>> = match &self.pool {
            Pool::H1(p) => {
                // The upstream's own address, unless the service configures a Host.
                if self.headers.is_empty() || !req.headers().contains_key(header::HOST) {
                    added.host = Some(p.host().clone());
                }
                // The pool keeps the deadline itself (a timer per connection, not per request).
                let deadline = tokio::time::Instant::now() + self.timeout;
                // The direct lane's future is awaited here, not through `send`'s (larger,
                // and moved on every request); the rest is boxed.
                let sent = if crate::pool::takes_direct_lane(&req, upgrade) {
                    p.send_direct(req, &added, deadline, meta.raw_fields).await
                } else {
                    Box::pin(p.send(req, upgrade, added, deadline, meta.raw_fields)).await
                };
                match sent {
                    Ok(resp) => Ok(resp.map(|b| b.boxed_unsync())),
                    Err(crate::pool::PoolError::TimedOut) => Err(None),
                    Err(e) => Err(Some(BoxError::from(e))),
                }
            }
            // hyper-util's client writes the target URI's authority unless a Host is set.
            Pool::H2c(c) => {
                added.insert_into(req.headers_mut());
                timed(self.timeout, c.request(req)).await
            }
            Pool::Tls(c) => {
                added.insert_into(req.headers_mut());
                timed(self.timeout, c.request(req)).await
            }
        };
        let mut resp = match sent {
            Err(None) => {
                return local_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!(
                        "upstream of {} did not answer within {:?}",
                        meta.service_name(),
                        self.timeout
                    ),
                    grpc,
                );
            }
            Err(Some(e)) => {
                tracing::warn!(service = meta.service_name(), error = %e, source = ?std::error::Error::source(&*e), "upstream request failed");
                return local_response(
                    StatusCode::BAD_GATEWAY,
                    &format!("upstream of {} is unreachable", meta.service_name()),
                    grpc,
                );
            }
            Ok(r) => r,
        };

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_side) = client_upgrade {
                let upstream_side = hyper::upgrade::on(&mut resp);
                let service = meta.service_name().to_owned();
                tokio::spawn(async move {
                    match tokio::try_join!(client_side, upstream_side) {
                        Ok((c, u)) => {
                            let mut c = TokioIo::new(c);
                            let mut u = TokioIo::new(u);
                            if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
                                tracing::debug!(%service, error = %e, "upgraded connection ended");
                            }
                        }
                        Err(e) => tracing::debug!(%service, error = %e, "upgrade failed"),
                    }
                });
            }
        } else {
            strip_hop_by_hop(resp.headers_mut(), false);
        }
        resp
    }
}

/// A hyper-util client's answer within `timeout`, its body boxed; `Err(None)` when it took
/// longer.
async fn timed(
    timeout: Duration,
    request: impl Future<Output = Result<Response<Incoming>, hyper_util::client::legacy::Error>>,
) -> Result<Response<Body>, Option<BoxError>> {
    match tokio::time::timeout(timeout, request).await {
        Err(_) => Err(None),
        Ok(Ok(resp)) => Ok(resp.map(|b| b.map_err(BoxError::from).boxed_unsync())),
        Ok(Err(e)) => Err(Some(BoxError::from(e))),
    }
}

/// What the proxy tells the upstream about a request.
pub(crate) struct ForwardMeta<'a> {
    /// The service name (sent as `X-L402-Service`).
    pub(crate) service: HeaderValue,
    /// The address that connected to us; appended to `X-Forwarded-For` (the upstream decides
    /// which hops it trusts, as we do).
    pub(crate) peer: std::net::IpAddr,
    pub(crate) tls: bool,
    pub(crate) token: Option<&'a VerifiedToken>,
    /// The request's `Authorization` value, held apart from its headers (see
    /// [`crate::h1::Plain::authorization`]); forwarded as the first of the added fields.
    pub(crate) authorization: Option<&'a [u8]>,
    /// The request is gRPC.
    pub(crate) grpc: bool,
    /// See [`crate::route::ConnInfo::raw_fields`].
    pub(crate) raw_fields: bool,
}

impl ForwardMeta<'_> {
    fn service_name(&self) -> &str {
        self.service.to_str().unwrap_or("?")
    }
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

// Header names as constants: a `&str` name is parsed again on every lookup.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_L402_SERVICE: HeaderName = HeaderName::from_static("x-l402-service");
const X_L402_TOKEN_ID: HeaderName = HeaderName::from_static("x-l402-token-id");
const X_L402_TIER: HeaderName = HeaderName::from_static("x-l402-tier");
const X_L402_CAPABILITIES: HeaderName = HeaderName::from_static("x-l402-capabilities");

/// The headers the proxy sets; a client's copies are removed.
const OURS: [HeaderName; 6] = [
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_L402_SERVICE,
    X_L402_TOKEN_ID,
    X_L402_TIER,
    X_L402_CAPABILITIES,
];

/// Which headers a scan of a header map found (one pass over the names instead of a hashed
/// lookup for each header that is usually absent).
#[derive(Default)]
struct Seen {
    /// A hop-by-hop header, `Connection` or `Upgrade`.
    hop: bool,
    /// `X-Forwarded-For`.
    forwarded_for: bool,
    /// A header only the proxy may set (`X-L402-*`, `X-Forwarded-Proto`, `X-Forwarded-Host`):
    /// a client's copy goes.
    ours: bool,
}

fn scan(headers: &HeaderMap) -> Seen {
    let mut seen = Seen::default();
    for name in headers.keys() {
        if HOP_BY_HOP.contains(name) || name == header::UPGRADE {
            seen.hop = true;
        } else if name == X_FORWARDED_FOR {
            seen.forwarded_for = true;
        } else if OURS.contains(name) {
            seen.ours = true;
        }
    }
    seen
}

/// Removes hop-by-hop headers (and those the `Connection` header names). An upgrade keeps
/// `Connection: upgrade` and `Upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    if scan(headers).hop {
        strip_found_hop_by_hop(headers, upgrade);
    }
}

/// [`strip_hop_by_hop`] once a scan found at least one (an upgrade always has `Connection`).
fn strip_found_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
            .filter(|n| !(upgrade && n == header::UPGRADE))
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    for h in &HOP_BY_HOP {
        headers.remove(h);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The longest text of an IP address (`ffff:…:ffff:255.255.255.255`).
const IP_TEXT_MAX: usize = 45;

/// `ip` as text into `out`, without the formatting machinery for the common IPv4 case; returns
/// its length.
fn ip_text(ip: std::net::IpAddr, out: &mut [u8; IP_TEXT_MAX]) -> usize {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut n = 0;
            let mut push = |b: u8| {
                out[n] = b;
                n += 1;
            };
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    push(b'.');
                }
                if octet >= 100 {
                    push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    push(b'0' + octet / 10 % 10);
                }
                push(b'0' + octet % 10);
            }
            n
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let mut cursor = std::io::Cursor::new(&mut out[..]);
            let _ = write!(cursor, "{v6}");
            cursor.position() as usize
        }
    }
}

/// The header fields the proxy adds to a forwarded request, kept as what they are made of.
/// The hyper lanes insert them into the request's header map ([`Added::insert_into`]); the
/// direct HTTP/1.1 lane writes them into the request head ([`Added::write`]) without building a
/// header value or hashing a name for any of them.
#[derive(Debug, Default)]
pub(crate) struct Added<'a> {
    /// The upstream's `Host` (only when the request has none).
    pub(crate) host: Option<HeaderValue>,
    /// Earlier `X-Forwarded-For` hops, each followed by `", "`; then comes `peer`.
    hops: Vec<u8>,
    peer: Option<std::net::IpAddr>,
    proto: Option<&'static str>,
    forwarded_host: Option<HeaderValue>,
    service: Option<HeaderValue>,
    token: Option<&'a VerifiedToken>,
    /// The client's `Authorization` value, when it was held apart from the header map.
    authorization: Option<&'a [u8]>,
    /// Fields a configured header of the service replaces (the `FIELD_*` bits).
    forgotten: u8,
}

const FIELD_FOR: u8 = 1;
const FIELD_PROTO: u8 = 2;
const FIELD_HOST: u8 = 4;
const FIELD_SERVICE: u8 = 8;
const FIELD_TOKEN_ID: u8 = 16;
const FIELD_TIER: u8 = 32;
const FIELD_CAPABILITIES: u8 = 64;

/// Each byte's two lower-case hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [DIGITS[b >> 4], DIGITS[b & 15]];
        b += 1;
    }
    pairs
};

/// `bytes` in lower-case hex (a table lookup per byte: the `hex` crate's general encoder costs
/// several times more on every verified request).
fn hex_text(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    out
}

/// Whether `b` may appear in a header value (the `http` crate's rule).
fn value_byte(b: u8) -> bool {
    b >= 32 && b != 127 || b == b'\t'
}

impl Added<'_> {
    /// Leaves out the field named `name` (a configured header of the service replaces it).
    pub(crate) fn forget(&mut self, name: &HeaderName) {
        let bit = match name {
            n if n == header::HOST => {
                self.host = None;
                return;
            }
            n if n == header::AUTHORIZATION => {
                self.authorization = None;
                return;
            }
            n if n == X_FORWARDED_FOR => FIELD_FOR,
            n if n == X_FORWARDED_PROTO => FIELD_PROTO,
            n if n == X_FORWARDED_HOST => FIELD_HOST,
            n if n == X_L402_SERVICE => FIELD_SERVICE,
            n if n == X_L402_TOKEN_ID => FIELD_TOKEN_ID,
            n if n == X_L402_TIER => FIELD_TIER,
            n if n == X_L402_CAPABILITIES => FIELD_CAPABILITIES,
            _ => return,
        };
        self.forgotten |= bit;
    }

    /// Calls `field` with each field but `Host` (its lower-case name followed by `": "`, and
    /// its value), in order.
    fn each(&self, mut field: impl FnMut(&'static str, &[u8])) {
        if let Some(v) = self.authorization {
            field("authorization: ", v);
        }
        let on = |bit: u8| self.forgotten & bit == 0;
        if let Some(peer) = self.peer.filter(|_| on(FIELD_FOR)) {
            let mut text = [0u8; IP_TEXT_MAX];
            let n = ip_text(peer, &mut text);
            let ip = &text[..n];
            if self.hops.is_empty() {
                field("x-forwarded-for: ", ip);
            } else {
                field("x-forwarded-for: ", &[&self.hops[..], ip].concat());
            }
        }
        if let Some(proto) = self.proto.filter(|_| on(FIELD_PROTO)) {
            field("x-forwarded-proto: ", proto.as_bytes());
        }
        if let Some(v) = self.forwarded_host.as_ref().filter(|_| on(FIELD_HOST)) {
            field("x-forwarded-host: ", v.as_bytes());
        }
        if let Some(v) = self.service.as_ref().filter(|_| on(FIELD_SERVICE)) {
            field("x-l402-service: ", v.as_bytes());
        }
        let Some(t) = self.token else {
            return;
        };
        if on(FIELD_TOKEN_ID) {
            field("x-l402-token-id: ", &hex_text(t.token_id().as_bytes()));
        }
        if let Some(tier) = t.tier().filter(|_| on(FIELD_TIER)) {
            field(
                "x-l402-tier: ",
                crate::h1::decimal_text(u64::from(tier), &mut [0; 20]),
            );
        }
        if let Some(caps) = t.capabilities().filter(|_| on(FIELD_CAPABILITIES))
            && caps.iter().all(|c| c.bytes().all(value_byte))
        {
            match caps {
                [one] => field("x-l402-capabilities: ", one.as_bytes()),
                _ => field("x-l402-capabilities: ", caps.join(",").as_bytes()),
            }
        }
    }

    /// Writes the fields but `Host` as header lines.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        self.each(|prefix, value| {
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        });
    }

    /// Inserts the fields into `headers` (each replacing any field of its name).
    pub(crate) fn insert_into(self, headers: &mut HeaderMap) {
        headers.reserve(8);
        self.each(|prefix, value| {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                let name = &prefix[..prefix.len() - 2];
                headers.insert(HeaderName::from_static(name), v);
            }
        });
        if let Some(host) = self.host {
            headers.insert(header::HOST, host);
        }
    }
}

/// Request headers for the upstream: hop-by-hop removed (gRPC keeps `te: trailers`), the
/// client's `Host` removed (it goes on as `X-Forwarded-Host`; the upstream gets its own, or a
/// configured one), client-sent copies of the proxy's own headers removed; returns the fields
/// to add: forwarding headers, and L402 headers from the verified token.
fn prepare_request_headers<'a>(
    headers: &mut HeaderMap,
    upgrade: bool,
    grpc: bool,
    original_host: Option<HeaderValue>,
    meta: &ForwardMeta<'a>,
) -> Added<'a> {
    let seen = scan(headers);
    if seen.hop || upgrade {
        strip_found_hop_by_hop(headers, upgrade);
    }
    if grpc {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    headers.remove(header::HOST);
    let mut hops = Vec::new();
    if seen.forwarded_for {
        // Every earlier hop, in order, then ours (none left if `Connection` named the header).
        for v in headers.get_all(&X_FORWARDED_FOR) {
            let v = v.as_bytes().trim_ascii();
            if !v.is_empty() {
                hops.extend_from_slice(v);
                hops.extend_from_slice(b", ");
            }
        }
        headers.remove(&X_FORWARDED_FOR);
    }
    if seen.ours {
        for name in &OURS {
            headers.remove(name);
        }
    }
    Added {
        host: None,
        hops,
        peer: Some(meta.peer),
        proto: Some(if meta.tls { "https" } else { "http" }),
        forwarded_host: original_host,
        service: Some(meta.service.clone()),
        token: meta.token,
        authorization: meta.authorization,
        forgotten: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the proxy tells the upstream for a client at `peer`, without a token.
    fn meta(peer: &str, tls: bool) -> ForwardMeta<'static> {
        ForwardMeta {
            service: HeaderValue::from_static("weather"),
            peer: peer.parse().unwrap(),
            tls,
            token: None,
            authorization: None,
            grpc: false,
            raw_fields: false,
        }
    }

    #[test]
    fn one_list_of_hop_by_hop_fields() {
        let ours = HOP_BY_HOP;
        let names: Vec<&str> = ours.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, crate::h1::HOP_BY_HOP);
    }

    #[test]
    fn hop_by_hop_headers_go_and_forwarding_headers_come() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.insert("x-l402-token-id", HeaderValue::from_static("forged"));
        h.insert("host", HeaderValue::from_static("api.example.com"));
        let meta = meta("203.0.113.9", true);
        prepare_request_headers(
            &mut h,
            false,
            true,
            Some(HeaderValue::from_static("api.example.com")),
            &meta,
        )
        .insert_into(&mut h);
        assert!(h.get("connection").is_none());
        assert!(h.get("x-secret-hop").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get("host").is_none(), "the client's Host goes");
        assert_eq!(h["te"], "trailers", "gRPC needs te: trailers");
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert_eq!(h["x-l402-service"], "weather");
        assert!(
            h.get("x-l402-token-id").is_none(),
            "client copies are removed"
        );
    }

    #[test]
    fn the_direct_lane_head_has_host_first_and_each_added_field_once() {
        let head_forgetting = |method: &str, forget: Option<HeaderName>| {
            let mut req = Request::builder()
                .method(method)
                .uri("/a?b=1")
                .header("host", "client.example")
                .header("x-l402-service", "forged")
                .header("accept", "*/*")
                .header("x-forwarded-proto", "forged")
                .header("x-forwarded-host", "forged")
                .body(())
                .unwrap();
            let mut added = prepare_request_headers(
                req.headers_mut(),
                false,
                false,
                Some(HeaderValue::from_static("client.example")),
                &meta("203.0.113.9", false),
            );
            added.host = Some(HeaderValue::from_static("10.0.0.2:8080"));
            if let Some(name) = forget {
                added.forget(&name);
            }
            let (parts, ()) = req.into_parts();
            let mut out = Vec::new();
            crate::pool::encode_request_head(&parts, &added, &mut out);
            String::from_utf8(out).unwrap()
        };
        let head = |method: &str| head_forgetting(method, None);
        let fields = "host: 10.0.0.2:8080\r\naccept: */*\r\nx-forwarded-for: 203.0.113.9\r\n\
             x-forwarded-proto: http\r\nx-forwarded-host: client.example\r\n\
             x-l402-service: weather\r\n";
        assert_eq!(head("GET"), format!("GET /a?b=1 HTTP/1.1\r\n{fields}\r\n"));
        // A configured header of the service replaces the proxy's field of that name.
        assert_eq!(
            head_forgetting("GET", Some(X_FORWARDED_PROTO)),
            format!(
                "GET /a?b=1 HTTP/1.1\r\n{}\r\n",
                fields.replace("x-forwarded-proto: http\r\n", "")
            )
        );
        assert!(!head_forgetting("GET", Some(header::HOST)).contains("host: 10.0.0.2"));
        assert_eq!(
            head("POST"),
            format!("POST /a?b=1 HTTP/1.1\r\n{fields}content-length: 0\r\n\r\n")
        );
    }

    #[test]
    fn forwarded_for_keeps_every_earlier_hop_and_l402_headers_come_only_from_us() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.2, 10.0.0.1"),
        );
        h.insert("x-l402-tier", HeaderValue::from_static("9"));
        h.insert("x-l402-capabilities", HeaderValue::from_static("admin"));
        let meta = meta("2001:db8::7", false);
        prepare_request_headers(&mut h, false, false, None, &meta).insert_into(&mut h);
        assert_eq!(
            h.get_all("x-forwarded-for").iter().collect::<Vec<_>>(),
            ["198.51.100.1, 198.51.100.2, 10.0.0.1, 2001:db8::7"]
        );
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(h.get("x-forwarded-host").is_none());
        assert!(h.get("x-l402-tier").is_none());
        assert!(h.get("x-l402-capabilities").is_none());
    }

    #[test]
    fn empty_forwarded_for_values_add_no_empty_hop() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static(""));
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("  "));
        let meta = meta("203.0.113.9", false);
        prepare_request_headers(&mut h, false, false, None, &meta).insert_into(&mut h);
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
    }

    #[test]
    fn forwarded_for_named_by_connection_is_dropped_not_left_empty() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("x-forwarded-for"));
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        let meta = meta("203.0.113.9", false);
        prepare_request_headers(&mut h, false, false, None, &meta).insert_into(&mut h);
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
    }

    #[test]
    fn hex_text_matches_the_hex_crate() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0xa5;
        }
        for input in [[0u8; 32], [0xff; 32], bytes] {
            assert_eq!(hex_text(&input).as_slice(), hex::encode(input).as_bytes());
        }
    }

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "127.0.0.1",
            "192.168.1.20",
            "2001:db8::7",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = [0u8; IP_TEXT_MAX];
            let n = ip_text(ip, &mut out);
            assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn responses_lose_hop_by_hop_headers_only_when_present() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 2, "nothing hop-by-hop: nothing removed");
        h.insert("connection", HeaderValue::from_static("x-hop"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["content-type"]);
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
    }
}
