//! The backend URI: `lnbits://<key>@host:port[/prefix]` and `lnbits+https://<key>@host[:port][/prefix]`.

use l402::BackendError;
use l402_backend_http::{
    HTTP_PARAMS, HttpOptions, Secret, TlsTrust, UriParams, config_error, parse_uri,
};
use url::Url;

use crate::NAME;

/// LNbits' own default port (`lnbits --port`), for `lnbits://` URIs without one.
pub(crate) const DEFAULT_HTTP_PORT: u16 = 5000;
/// For `lnbits+https://` URIs without a port.
pub(crate) const DEFAULT_HTTPS_PORT: u16 = 443;

/// What a backend URI says.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `http(s)://host:port/prefix/`, always ending in `/` so API paths join below the prefix.
    pub(crate) base: Url,
    pub(crate) key: Secret,
    pub(crate) options: HttpOptions,
}

/// Parses a backend URI. Errors never contain the key.
pub(crate) fn parse(uri: &str) -> Result<Endpoint, BackendError> {
    let url = parse_uri(uri, NAME)?;
    let (scheme, default_port) = match url.scheme() {
        "lnbits" => ("http", DEFAULT_HTTP_PORT),
        "lnbits+https" => ("https", DEFAULT_HTTPS_PORT),
        other => {
            return Err(config_error(
                NAME,
                &format!("unsupported scheme {other:?} (use lnbits:// or lnbits+https://)"),
            ));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| config_error(NAME, "the URI needs a host: lnbits://<key>@host:port"))?;
    if url.password().is_some() {
        return Err(config_error(
            NAME,
            "put the wallet key in the user part only: lnbits://<key>@host (the URI has a password part)",
        ));
    }
    let key = percent_decode(url.username()).ok_or_else(|| {
        config_error(
            NAME,
            "the wallet key in the URI is not valid percent-encoded UTF-8",
        )
    })?;
    if key.is_empty() {
        return Err(config_error(
            NAME,
            "the URI needs the wallet's invoice key (to issue) or admin key (to pay): lnbits://<key>@host:port",
        ));
    }
    if url.fragment().is_some() {
        return Err(config_error(NAME, "the URI must not have a #fragment"));
    }
    let params = UriParams::of(&url);
    params.reject_unknown(&HTTP_PARAMS, NAME)?;
    let options = HttpOptions::from_params(&params, NAME)?;
    if scheme == "http" && options.tls != TlsTrust::WebPki {
        return Err(config_error(
            NAME,
            "cacert= and cert= apply to TLS: use lnbits+https://",
        ));
    }
    let port = url.port().unwrap_or(default_port);
    let prefix = url.path().trim_end_matches('/');
    let base = Url::parse(&format!("{scheme}://{host}:{port}{prefix}/"))
        .map_err(|e| config_error(NAME, &format!("invalid address: {e}")))?;
    Ok(Endpoint {
        base,
        key: Secret::new(key),
        options,
    })
}

/// Decodes `%XX` escapes (the URL parser keeps them in the user part).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use l402::ErrorKind;

    use super::*;

    const KEY: &str = "105e36086a42447eb59281ef4b4c31f1";

    fn ok(uri: &str) -> Endpoint {
        parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    fn err(uri: &str) -> String {
        let e = parse(uri).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
        let s = e.to_string();
        assert!(!s.contains(KEY), "the key leaks into {s}");
        s
    }

    #[test]
    fn plain_http_with_port() {
        let e = ok(&format!("lnbits://{KEY}@127.0.0.1:5055"));
        assert_eq!(e.base.as_str(), "http://127.0.0.1:5055/");
        assert_eq!(e.key.expose(), KEY);
        assert_eq!(e.options, HttpOptions::default());
    }

    #[test]
    fn default_ports() {
        assert_eq!(
            ok(&format!("lnbits://{KEY}@lnbits.local")).base.as_str(),
            "http://lnbits.local:5000/"
        );
        assert_eq!(
            ok(&format!("lnbits+https://{KEY}@pay.example.com"))
                .base
                .as_str(),
            "https://pay.example.com/"
        );
        assert_eq!(
            ok(&format!("lnbits+https://{KEY}@pay.example.com:8443"))
                .base
                .as_str(),
            "https://pay.example.com:8443/"
        );
    }

    #[test]
    fn path_prefix_is_kept_and_api_paths_join_below_it() {
        for uri in [
            format!("lnbits+https://{KEY}@example.com/lnbits"),
            format!("lnbits+https://{KEY}@example.com/lnbits/"),
        ] {
            let e = ok(&uri);
            assert_eq!(e.base.as_str(), "https://example.com/lnbits/");
            assert_eq!(
                e.base.join("api/v1/payments").unwrap().as_str(),
                "https://example.com/lnbits/api/v1/payments"
            );
        }
        let e = ok(&format!("lnbits://{KEY}@h:1/a/b"));
        assert_eq!(
            e.base.join("api/v1/wallet").unwrap().as_str(),
            "http://h:1/a/b/api/v1/wallet"
        );
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(
            ok(&format!("lnbits://{KEY}@[::1]:5000")).base.as_str(),
            "http://[::1]:5000/"
        );
    }

    #[test]
    fn http_options_from_the_query() {
        let e = ok(&format!(
            "lnbits+https://{KEY}@h/?timeout=2s&connect_timeout=500ms&cacert=/etc/ca.pem"
        ));
        assert_eq!(e.options.timeout, Duration::from_secs(2));
        assert_eq!(e.options.connect_timeout, Duration::from_millis(500));
        assert_eq!(e.options.tls, TlsTrust::CaFile("/etc/ca.pem".into()));
        assert!(err(&format!("lnbits://{KEY}@h/?cert=/x.pem")).contains("lnbits+https"));
        assert!(err(&format!("lnbits://{KEY}@h/?timout=2s")).contains("\"timout\""));
        assert!(err(&format!("lnbits://{KEY}@h/?timeout=soon")).contains("timeout"));
    }

    #[test]
    fn percent_encoded_keys_are_decoded() {
        assert_eq!(ok("lnbits://ab%2Bcd@h:1").key.expose(), "ab+cd");
        assert!(err("lnbits://ab%zz@h:1").contains("percent"));
    }

    #[test]
    fn refused_uris() {
        assert!(err("lnbits://h:5000").contains("invoice key"));
        assert!(err(&format!("lnbits://:{KEY}@h:5000")).contains("password"));
        assert!(err(&format!("lnbits://user:{KEY}@h:5000")).contains("password"));
        assert!(err(&format!("http://{KEY}@h:5000")).contains("unsupported scheme"));
        assert!(err(&format!("lnbits://{KEY}@h:1/#x")).contains("fragment"));
        assert!(err("not a uri").contains("invalid backend URI"));
    }

    #[test]
    fn the_key_stays_out_of_debug() {
        let e = ok(&format!("lnbits://{KEY}@h:1/p?timeout=1s"));
        let d = format!("{e:?}");
        assert!(!d.contains(KEY), "{d}");
        assert!(d.contains("<redacted>"), "{d}");
    }
}
