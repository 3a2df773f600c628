//! Shared HTTP plumbing for the Lightning backend adapters.
//!
//! * [`HttpOptions`] + [`client`]: a `reqwest` client with timeouts and an explicit TLS trust
//!   policy ([`TlsTrust`]): the web PKI, a CA file, or one pinned certificate (LND's self-signed
//!   `tls.cert`, which rustls refuses as an end entity because it is marked as a CA).
//! * [`transport_error`] and [`status_error`]: one mapping from transport failures and HTTP
//!   statuses to [`BackendError`] kinds, so every adapter reports "unreachable", "timed out" and
//!   "credentials refused" the same way.
//! * [`Secret`]: a string that `Debug` never prints.
//! * [`UriParams`]: the query parameters of a backend URI (`?timeout=5s&cert=/path`).

mod tls;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use l402::{BackendError, ErrorKind};
use reqwest::StatusCode;
use url::Url;

pub use reqwest;
pub use tls::pinned_certificate_config;

/// How to trust the backend's TLS certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsTrust {
    /// The public web PKI (Mozilla's roots, bundled).
    #[default]
    WebPki,
    /// Certificates signed by the CA certificate(s) in this PEM file.
    CaFile(PathBuf),
    /// Exactly the certificate in this PEM file (its handshake signature is still checked).
    Pinned(PathBuf),
}

/// Options for a backend's HTTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Total time for one request (connect, send, receive).
    pub timeout: Duration,
    /// Time to establish the connection.
    pub connect_timeout: Duration,
    /// Certificate trust for `https` URLs.
    pub tls: TlsTrust,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            tls: TlsTrust::WebPki,
        }
    }
}

impl HttpOptions {
    /// Reads `timeout`, `connect_timeout`, `cacert` (a CA PEM file) and `cert` (a pinned PEM
    /// certificate) from a backend URI's query.
    pub fn from_params(params: &UriParams, backend: &'static str) -> Result<Self, BackendError> {
        let mut o = HttpOptions::default();
        if let Some(t) = params.duration("timeout", backend)? {
            o.timeout = t;
        }
        if let Some(t) = params.duration("connect_timeout", backend)? {
            o.connect_timeout = t;
        }
        match (params.get("cacert"), params.get("cert")) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    backend,
                    "give either cacert= (a CA to trust) or cert= (one certificate to pin), not both",
                ));
            }
            (Some(ca), None) => o.tls = TlsTrust::CaFile(PathBuf::from(ca)),
            (None, Some(cert)) => o.tls = TlsTrust::Pinned(PathBuf::from(cert)),
            (None, None) => {}
        }
        Ok(o)
    }
}

/// Builds the HTTP client for a backend.
pub fn client(
    backend: &'static str,
    options: &HttpOptions,
) -> Result<reqwest::Client, BackendError> {
    let tls = tls::client_config(&options.tls).map_err(|e| config_error(backend, &e))?;
    reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| config_error(backend, &format!("cannot build HTTP client: {e}")))
}

/// An error in a backend's configuration (URI, files): permanent.
pub fn config_error(backend: &'static str, detail: &str) -> BackendError {
    BackendError::new(ErrorKind::InvalidRequest, backend, "configure", detail)
}

/// Maps a transport-level `reqwest` failure: connection problems are `Unreachable`, timeouts
/// `Timeout` (both transient); an unreadable body is `Protocol`.
pub fn transport_error(
    backend: &'static str,
    call: &'static str,
    e: reqwest::Error,
) -> BackendError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() || e.is_request() {
        ErrorKind::Unreachable
    } else if e.is_decode() {
        ErrorKind::Protocol
    } else {
        ErrorKind::Unavailable
    };
    let detail = l402::error_chain(&e);
    BackendError::new(kind, backend, call, detail).with_source(e)
}

/// The default mapping of an unsuccessful HTTP status: 401/403 `Unauthorized`, 404 `NotFound`,
/// 408/429/5xx transient, other 4xx `InvalidRequest`. `body` (trimmed to 300 bytes) becomes the
/// detail. Adapters refine this where a backend's statuses mean something more specific.
pub fn status_error(
    backend: &'static str,
    call: &'static str,
    status: StatusCode,
    body: &str,
) -> BackendError {
    let kind = match status.as_u16() {
        401 | 403 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        429 | 502 | 503 | 504 => ErrorKind::Unavailable,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidRequest,
    };
    BackendError::new(
        kind,
        backend,
        call,
        format!("HTTP {status}: {}", clip(body)),
    )
}

/// Shortens a response body for an error message.
pub fn clip(body: &str) -> &str {
    let body = body.trim();
    if body.len() <= 300 {
        return body;
    }
    let mut end = 300;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

/// An answer this adapter does not understand.
pub fn protocol_error(
    backend: &'static str,
    call: &'static str,
    detail: impl Into<String>,
) -> BackendError {
    BackendError::new(ErrorKind::Protocol, backend, call, detail)
}

/// A secret string (API key, password, rune, macaroon) that `Debug` and `Display` never print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for putting into a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The query parameters of a backend URI.
#[derive(Clone, Default)]
pub struct UriParams(Vec<(String, String)>);

impl fmt::Debug for UriParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets (runes, passwords); print names only.
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl UriParams {
    /// The query parameters of `url`.
    pub fn of(url: &Url) -> Self {
        UriParams(
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A duration such as `5s`, `250ms` or `2m`.
    pub fn duration(
        &self,
        key: &str,
        backend: &'static str,
    ) -> Result<Option<Duration>, BackendError> {
        self.get(key)
            .map(|v| {
                humantime::parse_duration(v).map_err(|e| {
                    config_error(backend, &format!("query parameter {key}={v:?}: {e}"))
                })
            })
            .transpose()
    }

    /// Fails naming the first parameter not in `known`, so typos do not pass silently.
    pub fn reject_unknown(
        &self,
        known: &[&str],
        backend: &'static str,
    ) -> Result<(), BackendError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(config_error(
                backend,
                &format!(
                    "unknown query parameter {k:?} (known: {})",
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Parses a backend URI, naming the backend in the error.
pub fn parse_uri(uri: &str, backend: &'static str) -> Result<Url, BackendError> {
    Url::parse(uri).map_err(|e| config_error(backend, &format!("invalid backend URI: {e}")))
}

/// Parameters every adapter accepts for its HTTP client.
pub const HTTP_PARAMS: [&str; 4] = ["timeout", "connect_timeout", "cacert", "cert"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let k = |s: u16| status_error("x", "call", StatusCode::from_u16(s).unwrap(), "").kind();
        assert_eq!(k(401), ErrorKind::Unauthorized);
        assert_eq!(k(403), ErrorKind::Unauthorized);
        assert_eq!(k(404), ErrorKind::NotFound);
        assert!(k(503).is_transient());
        assert!(k(500).is_transient());
        assert_eq!(k(400), ErrorKind::InvalidRequest);
    }

    #[test]
    fn params_and_secrets_stay_out_of_debug() {
        let url = Url::parse("lnbits://KEY@h:1/?timeout=2s&rune=SECRETRUNE").unwrap();
        let p = UriParams::of(&url);
        assert_eq!(
            p.duration("timeout", "x").unwrap(),
            Some(Duration::from_secs(2))
        );
        assert!(!format!("{p:?}").contains("SECRETRUNE"));
        assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
        let err = p.reject_unknown(&["timeout"], "x").unwrap_err();
        assert!(err.to_string().contains("\"rune\""), "{err}");
        assert!(
            UriParams::of(&Url::parse("x://h/?timeout=soon").unwrap())
                .duration("timeout", "x")
                .is_err()
        );
    }

    #[tokio::test]
    async fn closed_port_is_unreachable_and_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = client("x", &HttpOptions::default()).unwrap();
        let e = c.get(format!("http://{addr}/")).send().await.unwrap_err();
        let e = transport_error("x", "get", e);
        assert_eq!(e.kind(), ErrorKind::Unreachable);
        assert!(e.is_transient());
    }
}
