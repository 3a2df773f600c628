//! The connection string: `nostr+walletconnect://<wallet pubkey>?relay=…&secret=…[&lud16=…]`.

use std::time::Duration;

use l402::BackendError;
use l402_backend_http::{HTTP_PARAMS, HttpOptions, TlsTrust, UriParams, config_error, parse_uri};
use nostr::key::{Keys, PublicKey, SecretKey};
use url::Url;

use crate::NAME;

/// The parameters NIP-47 defines, plus our client options.
const NWC_PARAMS: [&str; 3] = ["relay", "secret", "lud16"];

/// A parsed connection string. The secret stays inside `keys` and is never printed.
pub(crate) struct ConnectionUri {
    pub(crate) wallet: PublicKey,
    pub(crate) keys: Keys,
    pub(crate) relays: Vec<Url>,
    pub(crate) lud16: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) tls: TlsTrust,
}

impl ConnectionUri {
    /// Parses a connection string. Error messages name what is wrong, never the secret's value.
    pub(crate) fn parse(uri: &str) -> Result<Self, BackendError> {
        let url = parse_uri(uri.trim(), NAME)?;
        match url.scheme() {
            "nostr+walletconnect" | "nostrwalletconnect" => {}
            other => {
                return Err(config_error(
                    NAME,
                    &format!("unsupported scheme {other:?} (use nostr+walletconnect://)"),
                ));
            }
        }
        // `scheme://<pubkey>?…` puts the key in the host; the rarer `scheme:<pubkey>?…` in the path.
        let key = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => url.path().trim_matches('/').to_owned(),
        };
        let wallet = PublicKey::from_hex(&key).map_err(|_| {
            config_error(
                NAME,
                "the wallet public key after nostr+walletconnect:// must be 64 hex characters",
            )
        })?;
        let params = UriParams::of(&url);
        let known: Vec<&str> = NWC_PARAMS
            .iter()
            .chain(HTTP_PARAMS.iter())
            .copied()
            .collect();
        params.reject_unknown(&known, NAME)?;
        let secret = params
            .get("secret")
            .ok_or_else(|| config_error(NAME, "the connection string has no secret="))?;
        let secret = SecretKey::from_hex(secret.trim()).map_err(|_| {
            config_error(
                NAME,
                "secret= must be a 32-byte secret key in hex (its value is not shown)",
            )
        })?;
        let mut relays = Vec::new();
        for (k, v) in url.query_pairs() {
            if k == "relay" {
                relays.push(relay_url(&v)?);
            }
        }
        if relays.is_empty() {
            return Err(config_error(NAME, "the connection string has no relay="));
        }
        let http = HttpOptions::from_params(&params, NAME)?;
        Ok(ConnectionUri {
            wallet,
            keys: Keys::new(secret),
            relays,
            lud16: params
                .get("lud16")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            timeout: http.timeout,
            connect_timeout: http.connect_timeout,
            tls: http.tls,
        })
    }
}

/// Checks a relay address: `ws://` or `wss://` with a host.
pub(crate) fn relay_url(s: &str) -> Result<Url, BackendError> {
    let url = Url::parse(s.trim())
        .map_err(|e| config_error(NAME, &format!("relay {s:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "ws" | "wss") || url.host_str().is_none() {
        return Err(config_error(
            NAME,
            &format!("relay {s:?} must be a ws:// or wss:// URL"),
        ));
    }
    Ok(url)
}

/// Formats a connection string for a client.
pub(crate) fn format(wallet: &PublicKey, relay: &str, secret: &SecretKey) -> String {
    let relay: String = url::form_urlencoded::byte_serialize(relay.as_bytes()).collect();
    format!(
        "nostr+walletconnect://{}?relay={relay}&secret={}",
        wallet.to_hex(),
        secret.to_secret_hex()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use l402::ErrorKind;

    const WALLET: &str = "b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4";
    const SECRET: &str = "71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c";

    #[test]
    fn parses_the_spec_example_and_options() {
        let u = ConnectionUri::parse(&format!(
            "nostr+walletconnect://{WALLET}?relay=wss%3A%2F%2Frelay.damus.io&secret={SECRET}"
        ))
        .unwrap();
        assert_eq!(u.wallet.to_hex(), WALLET);
        assert_eq!(u.keys.secret_key().to_secret_hex(), SECRET);
        assert_eq!(u.relays.len(), 1);
        assert_eq!(u.relays[0].host_str(), Some("relay.damus.io"));
        assert_eq!(u.lud16, None);
        assert_eq!(u.timeout, Duration::from_secs(30), "default timeout");

        let u = ConnectionUri::parse(&format!(
            "nostr+walletconnect://{WALLET}?relay=ws://127.0.0.1:7000&relay=wss://r2.example/v1\
             &secret={SECRET}&lud16=me%40example.com&timeout=2s&connect_timeout=500ms"
        ))
        .unwrap();
        assert_eq!(u.relays.len(), 2, "several relays, in order");
        assert_eq!(u.relays[0].port(), Some(7000));
        assert_eq!(u.relays[1].path(), "/v1");
        assert_eq!(u.lud16.as_deref(), Some("me@example.com"));
        assert_eq!(u.timeout, Duration::from_secs(2));
        assert_eq!(u.connect_timeout, Duration::from_millis(500));
        // The form without slashes.
        let u = ConnectionUri::parse(&format!(
            "nostrwalletconnect:{WALLET}?relay=ws://h:1&secret={SECRET}"
        ))
        .unwrap();
        assert_eq!(u.wallet.to_hex(), WALLET);
    }

    #[test]
    fn bad_strings_are_config_errors_that_never_show_the_secret() {
        let bad_secret = "ff".repeat(33);
        for uri in [
            format!("nostr+walletconnect://{WALLET}?relay=ws://h:1"),
            format!("nostr+walletconnect://{WALLET}?secret={SECRET}"),
            format!("nostr+walletconnect://{WALLET}?relay=https://h&secret={SECRET}"),
            format!("nostr+walletconnect://nothex?relay=ws://h:1&secret={SECRET}"),
            format!("nostr+walletconnect://{WALLET}?relay=ws://h:1&secret={bad_secret}"),
            format!("nostr+walletconnect://{WALLET}?relay=ws://h:1&secret={SECRET}&relays=x"),
            format!("nostr+walletconnect://{WALLET}?relay=ws://h:1&secret={SECRET}&timeout=soon"),
            format!("http://{WALLET}?relay=ws://h:1&secret={SECRET}"),
        ] {
            let e = ConnectionUri::parse(&uri).err().expect(&uri);
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains(&bad_secret), "{shown}");
        }
    }

    #[test]
    fn formats_what_it_parses() {
        let keys = Keys::generate();
        let wallet = Keys::generate().public_key();
        let s = format(&wallet, "ws://127.0.0.1:4000/path?x=1", keys.secret_key());
        let u = ConnectionUri::parse(&s).unwrap();
        assert_eq!(u.wallet, wallet);
        assert_eq!(u.keys.public_key(), keys.public_key());
        assert_eq!(u.relays[0].as_str(), "ws://127.0.0.1:4000/path?x=1");
    }
}
