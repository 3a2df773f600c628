//! [`LndBackend`]: configuration from a URI, and the request plumbing (unary calls and
//! newline-delimited JSON streams).

use std::path::Path;

use l402::{BackendError, PaymentHash};
use l402_backend_http::{
    HTTP_PARAMS, HttpOptions, Secret, TlsTrust, UriParams, config_error, parse_uri, protocol_error,
    reqwest,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::wire::{self, StreamLine};
use crate::{NAME, error};

/// The header the REST gateway turns into the gRPC metadata `macaroon`.
const MACAROON_HEADER: &str = "Grpc-Metadata-macaroon";

/// lnd's default REST port (`restlisten`).
pub const DEFAULT_PORT: u16 = 8080;

/// An LND node reached over its REST API; implements [`InvoiceIssuer`](l402::InvoiceIssuer)
/// and [`InvoicePayer`](l402::InvoicePayer).
///
/// Build it with [`LndBackend::from_uri`]; `Debug` never shows the macaroon.
#[derive(Clone)]
pub struct LndBackend {
    pub(crate) http: reqwest::Client,
    base: Url,
    macaroon: Secret,
    tls: TlsTrust,
}

impl std::fmt::Debug for LndBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LndBackend")
            .field("base", &self.base.as_str())
            .field("tls", &self.tls)
            .field("macaroon", &self.macaroon)
            .finish()
    }
}

impl LndBackend {
    /// Reads a `lnd+rest://host[:port][/prefix]?macaroon=PATH&cert=PATH` URI (see the crate
    /// docs for every parameter). The macaroon and certificate files are read now; no request is
    /// made yet.
    pub fn from_uri(uri: &str) -> Result<Self, BackendError> {
        let url = parse_uri(uri, NAME)?;
        if url.scheme() != "lnd+rest" {
            return Err(config_error(
                NAME,
                &format!(
                    "unsupported scheme {:?} (use lnd+rest://host:port?macaroon=PATH&cert=PATH)",
                    url.scheme()
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                NAME,
                "credentials go in macaroon= (a file) or macaroon_hex=, not before the host",
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| config_error(NAME, "the URI needs a host: lnd+rest://host:port"))?;
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let params = UriParams::of(&url);
        let mut known = vec!["macaroon", "macaroon_hex"];
        known.extend(HTTP_PARAMS);
        params.reject_unknown(&known, NAME)?;
        let macaroon = match (params.get("macaroon"), params.get("macaroon_hex")) {
            (Some(path), None) => read_macaroon(Path::new(path))?,
            (None, Some(hex)) => macaroon_from_hex(hex)?,
            (Some(_), Some(_)) => {
                return Err(config_error(
                    NAME,
                    "give either macaroon= (a file) or macaroon_hex=, not both",
                ));
            }
            (None, None) => {
                return Err(config_error(
                    NAME,
                    "the URI needs macaroon=PATH (e.g. invoice.macaroon or admin.macaroon) or \
                     macaroon_hex=HEX",
                ));
            }
        };
        let options = HttpOptions::from_params(&params, NAME)?;
        let mut path = url.path().to_owned();
        if !path.ends_with('/') {
            path.push('/');
        }
        let base = Url::parse(&format!("https://{host}:{port}{path}"))
            .map_err(|e| config_error(NAME, &format!("invalid address: {e}")))?;
        Self::new(base, &macaroon, options)
    }

    /// A backend for the REST API at `base` (e.g. `https://127.0.0.1:8080/`) with the binary
    /// macaroon `macaroon` and the HTTP options `options` (TLS trust, timeouts). An `http://`
    /// base is used as given, for lnd run with `no-rest-tls` behind a TLS-terminating proxy.
    pub fn new(base: Url, macaroon: &[u8], options: HttpOptions) -> Result<Self, BackendError> {
        if macaroon.is_empty() {
            return Err(config_error(NAME, "the macaroon is empty"));
        }
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(LndBackend {
            http: l402_backend_http::client(NAME, &options)?,
            base,
            macaroon: Secret::new(hex::encode(macaroon)),
            tls: options.tls,
        })
    }

    /// The base URL of the REST API (no secrets in it).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    // === request plumbing ===

    fn url(&self, tail: &str) -> Url {
        self.base.join(tail).expect("relative API paths join")
    }

    /// A request with the macaroon header, marked sensitive so no log shows it.
    pub(crate) fn request(&self, method: reqwest::Method, tail: &str) -> reqwest::RequestBuilder {
        let mut value = reqwest::header::HeaderValue::from_str(self.macaroon.expose())
            .expect("hex is a valid header value");
        value.set_sensitive(true);
        self.http
            .request(method, self.url(tail))
            .header(MACAROON_HEADER, value)
    }

    /// The TrackPaymentV2 request for `hash` (the path carries URL-safe padded base64).
    pub(crate) fn track(&self, hash: &PaymentHash) -> reqwest::RequestBuilder {
        self.request(
            reqwest::Method::GET,
            &format!("v2/router/track/{}", wire::hash_path_segment(hash)),
        )
    }

    /// Sends a unary call and decodes its JSON answer.
    pub(crate) async fn unary<T: DeserializeOwned>(
        &self,
        call: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, BackendError> {
        let resp = req.send().await.map_err(|e| error::transport(call, e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| error::transport(call, e))?;
        if !status.is_success() {
            return Err(error::from_response(call, status, &body));
        }
        serde_json::from_str(&body)
            .map_err(|e| protocol_error(NAME, call, format!("unexpected answer: {e}")))
    }

    /// Opens a server-streaming call. An error before the first message arrives as a non-2xx
    /// status with a `{"error": …}` body.
    pub(crate) async fn stream(
        &self,
        call: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<LineStream, BackendError> {
        let resp = req.send().await.map_err(|e| error::transport(call, e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.map_err(|e| error::transport(call, e))?;
            return Err(error::from_response(call, status, &body));
        }
        Ok(LineStream {
            resp,
            buf: Vec::new(),
            call,
        })
    }
}

/// The lines of a newline-delimited JSON stream.
pub(crate) struct LineStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    call: &'static str,
}

impl LineStream {
    /// The next line, or `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<StreamLine>, BackendError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if let Some(parsed) = self.parse(&line)? {
                    return Ok(Some(parsed));
                }
                continue;
            }
            match self
                .resp
                .chunk()
                .await
                .map_err(|e| error::transport(self.call, e))?
            {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                // A last line may lack its newline.
                None => {
                    let rest = std::mem::take(&mut self.buf);
                    return self.parse(&rest);
                }
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<Option<StreamLine>, BackendError> {
        let text = std::str::from_utf8(line)
            .map_err(|_| protocol_error(NAME, self.call, "stream line is not UTF-8"))?
            .trim();
        if text.is_empty() {
            return Ok(None);
        }
        StreamLine::parse(text)
            .map(Some)
            .map_err(|e| protocol_error(NAME, self.call, e))
    }
}

fn read_macaroon(path: &Path) -> Result<Vec<u8>, BackendError> {
    let bytes = std::fs::read(path).map_err(|e| {
        config_error(
            NAME,
            &format!("cannot read macaroon file {}: {e}", path.display()),
        )
    })?;
    if bytes.is_empty() {
        return Err(config_error(
            NAME,
            &format!("macaroon file {} is empty", path.display()),
        ));
    }
    Ok(bytes)
}

fn macaroon_from_hex(s: &str) -> Result<Vec<u8>, BackendError> {
    // The value is a secret: the error names the problem, never the value.
    hex::decode(s.trim()).map_err(|e| {
        config_error(
            NAME,
            &format!("macaroon_hex is not valid hex ({})", hex_problem(&e)),
        )
    })
}

fn hex_problem(e: &hex::FromHexError) -> &'static str {
    match e {
        hex::FromHexError::OddLength => "odd length",
        hex::FromHexError::InvalidHexCharacter { .. } => "a character is not a hex digit",
        hex::FromHexError::InvalidStringLength => "bad length",
    }
}

#[cfg(test)]
mod tests {
    use l402::ErrorKind;

    use super::*;

    fn refused(uri: &str) -> String {
        let e = LndBackend::from_uri(uri).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
        e.to_string()
    }

    #[test]
    fn addresses() {
        let at = |uri: &str| LndBackend::from_uri(uri).unwrap().base_url().to_string();
        assert_eq!(at("lnd+rest://h?macaroon_hex=02"), "https://h:8080/");
        assert_eq!(at("lnd+rest://h:10080?macaroon_hex=02"), "https://h:10080/");
        assert_eq!(
            at("lnd+rest://h/lnd?macaroon_hex=02"),
            "https://h:8080/lnd/"
        );
        assert_eq!(
            at("lnd+rest://[::1]:8081/?macaroon_hex=02"),
            "https://[::1]:8081/"
        );
        let lnd = LndBackend::from_uri("lnd+rest://h/p?macaroon_hex=02").unwrap();
        assert_eq!(
            lnd.url("v1/invoices").as_str(),
            "https://h:8080/p/v1/invoices"
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(refused("lnd://h?macaroon_hex=02").contains("lnd+rest://"));
        assert!(refused("lnd+rest://user:pw@h?macaroon_hex=02").contains("macaroon="));
        assert!(refused("lnd+rest://h?macaroon_hex=02&macroon=x").contains("\"macroon\""));
        assert!(refused("lnd+rest://h?macaroon_hex=02&macaroon=/m").contains("not both"));
        assert!(refused("lnd+rest://h").contains("macaroon=PATH"));
        assert!(refused("lnd+rest://h?macaroon_hex=").contains("empty"));
        assert!(refused("lnd+rest://h?macaroon_hex=02&timeout=soon").contains("timeout"));
        assert!(
            refused("lnd+rest://h?macaroon=/no/such/admin.macaroon")
                .contains("/no/such/admin.macaroon")
        );
    }

    #[test]
    fn macaroon_files_and_hex_stay_secret() {
        let dir = std::env::temp_dir().join(format!("l402-lnd-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("admin.macaroon");
        std::fs::write(&file, [0x02, 0x01, 0xab, 0xcd]).unwrap();
        let lnd =
            LndBackend::from_uri(&format!("lnd+rest://h?macaroon={}", file.display())).unwrap();
        assert_eq!(
            lnd.macaroon.expose(),
            "0201abcd",
            "the file's bytes, hex-encoded"
        );
        assert!(!format!("{lnd:?}").contains("0201abcd"));
        std::fs::write(&file, []).unwrap();
        assert!(refused(&format!("lnd+rest://h?macaroon={}", file.display())).contains("empty"));
        std::fs::remove_dir_all(&dir).unwrap();
        // A malformed hex value: the error says why, never what.
        let msg = refused("lnd+rest://h?macaroon_hex=0201deadbeefzz99");
        assert!(!msg.contains("deadbeef") && !msg.contains('z'), "{msg}");
        assert!(refused("lnd+rest://h?macaroon_hex=0201abc").contains("odd length"));
    }

    #[test]
    fn requests_carry_the_macaroon_header_marked_sensitive() {
        let lnd = LndBackend::from_uri("lnd+rest://h?macaroon_hex=0201ABCD").unwrap();
        let req = lnd
            .request(reqwest::Method::GET, "v1/invoice/00")
            .build()
            .unwrap();
        let value = req.headers().get(MACAROON_HEADER).unwrap();
        assert_eq!(value, "0201abcd");
        assert!(value.is_sensitive());
        assert!(!format!("{req:?}").contains("0201abcd"));
        let track = lnd
            .track(&PaymentHash::from_bytes([0xfb; 32]))
            .build()
            .unwrap();
        assert_eq!(
            track.url().path(),
            "/v2/router/track/-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s="
        );
    }
}
