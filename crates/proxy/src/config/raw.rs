//! The configuration file as written (YAML or TOML): plain values, unknown keys refused.
//!
//! Converted once into the typed [`Config`](super::Config) by [`super::Config::from_raw`], which
//! validates everything and names the key of any bad value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Accepts a string, or a boolean as `"on"`/`"off"` (YAML reads a bare `on`, `off`, `yes` or
/// `no` as a boolean).
fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrString {
        Bool(bool),
        String(String),
    }
    Ok(match Option::<BoolOrString>::deserialize(d)? {
        None => None,
        Some(BoolOrString::Bool(true)) => Some("on".into()),
        Some(BoolOrString::Bool(false)) => Some("off".into()),
        Some(BoolOrString::String(s)) => Some(s),
    })
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Main listener, `host:port`.
    pub listen: Option<String>,
    /// TLS for the main listener; absent means plaintext (HTTP/1.1 and h2c).
    pub tls: Option<RawTls>,
    /// Prometheus metrics and the admin API.
    pub metrics: Option<RawMetrics>,
    /// The Lightning backend URI (`devnode:…`, `lnbits://…`, `lnd+rest://…`, …).
    pub lightning: Option<String>,
    /// The token store URL (`sqlite:PATH` or `postgres://…`).
    pub store: Option<String>,
    /// How challenges look and how credentials are judged.
    pub challenge: Option<RawChallenge>,
    /// Client addresses: trusted proxies, PROXY protocol, blocklist.
    pub network: Option<RawNetwork>,
    /// Global limits.
    pub limits: Option<RawLimits>,
    /// How often expired, unpaid challenges are cleaned up (duration; `0s` disables).
    pub cleanup_interval: Option<String>,
    /// The services, matched in order.
    #[serde(default)]
    pub services: Vec<RawService>,
}

/// `tls:`
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain.
    pub cert: Option<String>,
    /// PEM private key.
    pub key: Option<String>,
    /// Generate a self-signed certificate on first start and keep it in this directory.
    pub self_signed_dir: Option<String>,
    /// Extra host names for the self-signed certificate (localhost is always included).
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// `metrics:`
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Listener for `/metrics` (and `/admin/…` when a token is set), `host:port`.
    pub listen: Option<String>,
    /// Bearer token for the admin API: `env:NAME`, `file:PATH`, or the literal token.
    pub admin_token: Option<String>,
}

/// `challenge:`
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawChallenge {
    /// Send an `LSAT` line before the `L402` line (default true).
    pub lsat_line: Option<bool>,
    /// Add `version="0", token=…` to the `L402` line (default false).
    pub spec_params: Option<bool>,
    /// Answer to an invalid credential: `unauthorized` (401, default) or `challenge` (402, as
    /// Aperture does).
    pub invalid_credential: Option<String>,
    /// How long invoices can be paid (default `1h`).
    pub invoice_expiry: Option<String>,
    /// Refuse caveats nobody checks (default false).
    pub strict_caveats: Option<bool>,
    /// The macaroon location (default `lsat`).
    pub location: Option<String>,
}

/// `network:`
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// Addresses or CIDRs of proxies whose `X-Forwarded-For` / `Forwarded` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies write the client address into: `x-forwarded-for` (default) or
    /// `forwarded`.
    pub forwarding_header: Option<String>,
    /// Expect a PROXY protocol v2 header on every connection (from a load balancer).
    pub proxy_protocol: Option<bool>,
    /// Client addresses or CIDRs refused with 403.
    #[serde(default)]
    pub blocklist: Vec<String>,
}

/// `limits:`
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// How many challenges one client network may mint: a rate like `30/min`.
    pub challenges_per_ip: Option<String>,
    /// Burst for `challenges_per_ip` (default: the rate's count).
    pub challenges_burst: Option<u32>,
    /// IPv4 prefix length that counts as one client network for challenges and freebies
    /// (default 24).
    pub ipv4_prefix: Option<u8>,
    /// IPv6 prefix length (default 48).
    pub ipv6_prefix: Option<u8>,
}

/// One entry of `services:`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Service name (appears in tokens: `services=<name>:<tier>`).
    pub name: String,
    /// Regex matched against the `Host` header (with port, if sent); absent matches all.
    pub host: Option<String>,
    /// Regex matched against the request path; absent matches all.
    pub path: Option<String>,
    /// Upstream base URL: `http://`, `https://` (TLS verified) or `h2c://` (HTTP/2 cleartext).
    pub upstream: String,
    /// Extra CA certificate (PEM) to trust for an `https://` upstream.
    pub upstream_ca: Option<String>,
    /// Time to connect and receive response headers from the upstream (default `30s`).
    pub upstream_timeout: Option<String>,
    /// `on` (default), `off`, or `freebie N` (YAML booleans count as on/off).
    #[serde(default, deserialize_with = "bool_or_string")]
    pub auth: Option<String>,
    /// Price per token in millisatoshis.
    pub price_msat: Option<u64>,
    /// Price per token in satoshis (alternative to `price_msat`).
    pub price_sat: Option<u64>,
    /// Per-path prices; the first matching entry wins over the service price.
    #[serde(default)]
    pub prices: Vec<RawPathPrice>,
    /// A URL answering price questions (HTTP POST, JSON); see the documentation.
    pub pricer: Option<String>,
    /// Path regexes served without payment.
    #[serde(default)]
    pub free_paths: Vec<String>,
    /// Path regexes that answer 401 instead of minting a challenge.
    #[serde(default)]
    pub no_challenge_paths: Vec<String>,
    /// Headers set on every upstream request: values `env:NAME`, `file:PATH`, or literal.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Prefix added in front of the request path when forwarding.
    pub rewrite_prefix: Option<String>,
    /// Tier minted into tokens (default 0).
    pub tier: Option<u8>,
    /// Capabilities minted into tokens.
    pub capabilities: Option<Vec<String>>,
    /// Capabilities required on matching paths.
    #[serde(default)]
    pub capability_paths: Vec<RawCapabilityPath>,
    /// Extra caveats minted into tokens and enforced: `condition: value`.
    #[serde(default)]
    pub constraints: BTreeMap<String, String>,
    /// How long tokens work after minting (duration; absent: forever).
    pub token_lifetime: Option<String>,
    /// Token-bucket limits on this service.
    #[serde(default)]
    pub rate_limits: Vec<RawRateLimit>,
}

/// A per-path price.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPathPrice {
    /// Path regex.
    pub path: String,
    /// Price in millisatoshis.
    pub price_msat: Option<u64>,
    /// Price in satoshis.
    pub price_sat: Option<u64>,
}

/// A capability required on some paths.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapabilityPath {
    /// Path regex.
    pub path: String,
    /// The capability the token must grant.
    pub capability: String,
}

/// A token-bucket rate limit.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// `token` (per paid token; unpaid requests count per IP) or `ip` (per client address).
    pub per: String,
    /// A rate like `10/s`, `600/min`, `5000/h`.
    pub rate: String,
    /// Bucket size (default: the rate's count).
    pub burst: Option<u32>,
    /// Only on paths matching this regex.
    pub path: Option<String>,
}
