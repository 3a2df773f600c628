//! The dynamic price hook: an HTTP endpoint that is told about a request and answers a price.
//!
//! `POST <pricer URL>` with JSON
//! `{"service": "weather", "method": "GET", "path": "/weather/today", "query": "city=x", "headers": {"name": "value", …}}`
//! (credential and cookie headers are never sent), answered with `{"price_msat": 1500}` or
//! `{"price_sats": 2}` (Aperture's pricer field name). Zero lets the request through free.
//! Called only when a challenge is about to be minted, never for requests with a valid token.

use std::collections::BTreeMap;
use std::time::Duration;

use http::request::Parts;
use l402::Msat;
use l402_tower::{BoxFuture, Pricer};
use serde::{Deserialize, Serialize};
use url::Url;

/// Headers that carry credentials and are kept from the pricer.
const PRIVATE_HEADERS: [&str; 8] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "macaroon",
    "grpc-metadata-macaroon",
    "token",
    "grpc-metadata-token",
    "x-api-key",
];

#[derive(Serialize)]
struct Question<'a> {
    service: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
struct Answer {
    price_msat: Option<u64>,
    price_sats: Option<u64>,
}

/// A pricer reached over HTTP.
pub(crate) struct HttpPricer {
    client: reqwest::Client,
    url: Url,
    service: String,
}

impl HttpPricer {
    pub(crate) fn new(url: Url, service: String) -> Result<Self, String> {
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        ))
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| format!("pricer client: {e}"))?;
        Ok(HttpPricer {
            client,
            url,
            service,
        })
    }

    async fn ask(&self, request: &Parts) -> Result<Msat, String> {
        let headers = request
            .headers
            .iter()
            .filter(|(k, _)| !PRIVATE_HEADERS.contains(&k.as_str()))
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let q = Question {
            service: &self.service,
            method: request.method.as_str(),
            path: request.uri.path(),
            query: request.uri.query().unwrap_or(""),
            headers,
        };
        let resp = self
            .client
            .post(self.url.clone())
            .json(&q)
            .send()
            .await
            .map_err(|e| format!("pricer {}: {e}", self.url))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("pricer {} answered {status}", self.url));
        }
        let a: Answer = resp
            .json()
            .await
            .map_err(|e| format!("pricer {}: bad answer: {e}", self.url))?;
        match (a.price_msat, a.price_sats) {
            (Some(m), _) => Ok(Msat::new(m)),
            (None, Some(s)) => s
                .checked_mul(1000)
                .map(Msat::new)
                .ok_or_else(|| "pricer price too large".to_string()),
            (None, None) => Err(format!("pricer {}: no price_msat or price_sats", self.url)),
        }
    }
}

impl Pricer for HttpPricer {
    fn price<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Result<Msat, String>> {
        Box::pin(self.ask(request))
    }
}
