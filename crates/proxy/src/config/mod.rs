//! Configuration: our own YAML/TOML format, or Aperture's `aperture.yaml` read as it is.
//!
//! Loading goes file → raw values ([`RawConfig`], unknown keys refused with their path) →
//! environment overrides → one validation pass into the typed [`Config`], whose errors name the
//! key (`services[1].path: invalid regex …`). Aperture files are recognised by their keys
//! (`listenaddr`, `authenticator`, …) and translated into the same raw form first.

pub mod aperture;
pub mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use l402::Msat;
use regex::Regex;
use url::Url;

pub use raw::RawConfig;

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key path, e.g. `services[1].path` (empty for whole-file problems).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A secret configuration value; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// TLS for the main listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsConfig {
    /// Certificate chain and key from PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A self-signed certificate generated on first start and kept in `dir`.
    SelfSigned {
        /// Where `tls.cert` and `tls.key` live.
        dir: PathBuf,
        /// Names besides `localhost`.
        hosts: Vec<String>,
    },
}

/// The complete, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Main listener.
    pub listen: SocketAddr,
    /// TLS; `None` serves plaintext HTTP/1.1 and h2c.
    pub tls: Option<TlsConfig>,
    /// Metrics (and admin) listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token for the admin API.
    pub admin_token: Option<Secret>,
    /// Lightning backend URI (resolved by the program that runs the proxy).
    pub lightning: Secret,
    /// Token store URL.
    pub store: Secret,
    /// Challenge format and credential handling.
    pub challenge: ChallengeConfig,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The header those proxies write the client address into.
    pub forwarding_header: crate::client_ip::ForwardingHeader,
    /// Read a PROXY protocol v2 header first on every connection.
    pub proxy_protocol: bool,
    /// Refused client networks.
    pub blocklist: Vec<IpNet>,
    /// Limit on challenges per client network.
    pub challenges_per_ip: Option<Rate>,
    /// IPv4 prefix that counts as one client network.
    pub ipv4_prefix: u8,
    /// IPv6 prefix that counts as one client network.
    pub ipv6_prefix: u8,
    /// How often unpaid, expired challenges are removed (`None`: never).
    pub cleanup_interval: Option<Duration>,
    /// Services, matched in order.
    pub services: Vec<ServiceConfig>,
}

/// How challenges look and how credentials are judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeConfig {
    /// `LSAT` line first.
    pub lsat_line: bool,
    /// `version="0", token=…` on the `L402` line.
    pub spec_params: bool,
    /// 402 instead of 401 for invalid credentials.
    pub invalid_is_challenge: bool,
    /// Invoice expiry.
    pub invoice_expiry: Duration,
    /// Refuse unknown caveats.
    pub strict_caveats: bool,
    /// Macaroon location.
    pub location: String,
}

/// How a service authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthLevel {
    /// L402 on every request.
    On,
    /// No authentication.
    Off,
    /// This many free requests per client network, then L402.
    Freebie(u32),
}

/// The upstream protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 over TCP.
    Http,
    /// TLS (verified), HTTP/2 or HTTP/1.1 by ALPN.
    Https,
    /// HTTP/2 over TCP with prior knowledge (gRPC without TLS).
    H2c,
}

/// A rate: `count` per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed per period.
    pub count: u32,
    /// The period.
    pub per: Duration,
    /// Bucket size.
    pub burst: u32,
}

/// Who a rate limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKey {
    /// Each paid token (unpaid requests count per client IP).
    Token,
    /// Each client IP.
    Ip,
}

/// A rate limit rule.
#[derive(Clone, Debug)]
pub struct RateLimit {
    /// Who is counted.
    pub key: LimitKey,
    /// The rate.
    pub rate: Rate,
    /// Only on matching paths.
    pub path: Option<Regex>,
}

/// One service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Name.
    pub name: String,
    /// Host regex.
    pub host: Option<Regex>,
    /// Path regex.
    pub path: Option<Regex>,
    /// Upstream protocol.
    pub protocol: UpstreamProtocol,
    /// Upstream authority, `host:port`.
    pub upstream_authority: String,
    /// Upstream base path (prefixed to every forwarded path, with `rewrite_prefix`).
    pub upstream_path: String,
    /// Extra CA for an https upstream.
    pub upstream_ca: Option<PathBuf>,
    /// Connect + response-header timeout.
    pub upstream_timeout: Duration,
    /// Authentication level.
    pub auth: AuthLevel,
    /// Service price.
    pub price: Msat,
    /// Per-path prices.
    pub path_prices: Vec<(Regex, Msat)>,
    /// Dynamic price URL.
    pub pricer: Option<Url>,
    /// Paths without payment.
    pub free_paths: Vec<Regex>,
    /// Paths answering 401 instead of challenges.
    pub no_challenge_paths: Vec<Regex>,
    /// Headers set upstream (values resolved at load).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Tier.
    pub tier: u8,
    /// Capabilities minted.
    pub capabilities: Option<Vec<String>>,
    /// Capabilities required per path.
    pub capability_paths: Vec<(Regex, String)>,
    /// Constraint caveats.
    pub constraints: Vec<(String, String)>,
    /// Token lifetime.
    pub token_lifetime: Option<Duration>,
    /// Rate limits.
    pub rate_limits: Vec<RateLimit>,
}

// === loading ===

/// The file format, from the extension: `.toml` is TOML, anything else YAML.
fn is_toml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// What a configuration file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Our own format.
    Native,
    /// Aperture's `aperture.yaml`.
    Aperture,
}

impl Config {
    /// Reads, translates (Aperture), overrides from the environment (`L402_LISTEN`,
    /// `L402_LIGHTNING`, `L402_STORE`) and validates a configuration file. Relative paths in it
    /// are resolved against the file's directory. Returns the configuration and any warnings.
    pub fn load(path: &Path) -> Result<(Config, Dialect, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        let (mut raw, dialect, warnings) = Self::parse(&text, is_toml(path))?;
        apply_env(&mut raw);
        let base = path.parent().unwrap_or(Path::new("."));
        let config = Self::from_raw(&raw, base)?;
        Ok((config, dialect, warnings))
    }

    /// Parses file text into raw values (and the dialect, and translation warnings).
    pub fn parse(
        text: &str,
        toml_syntax: bool,
    ) -> Result<(RawConfig, Dialect, Vec<String>), ConfigError> {
        let value: serde_json::Value = if toml_syntax {
            toml::from_str(text).map_err(|e| ConfigError::new("", format!("TOML syntax: {e}")))?
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| ConfigError::new("", format!("YAML syntax: {e}")))?
        };
        if value.is_null() {
            return Err(ConfigError::new("", "the configuration file is empty"));
        }
        if aperture::looks_like_aperture(&value) {
            let (raw, warnings) = aperture::translate(&value)?;
            return Ok((raw, Dialect::Aperture, warnings));
        }
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::new(
                if key == "." { String::new() } else { key },
                e.inner().to_string(),
            )
        })?;
        Ok((raw, Dialect::Native, Vec::new()))
    }

    /// Validates raw values into a configuration; relative paths resolve against `base`.
    pub fn from_raw(raw: &RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let listen = parse_addr("listen", raw.listen.as_deref().unwrap_or("127.0.0.1:8080"))?;
        let tls = match &raw.tls {
            None => None,
            Some(t) => Some(match (&t.cert, &t.key, &t.self_signed_dir) {
                (Some(c), Some(k), None) => TlsConfig::Files {
                    cert: resolve(base, c),
                    key: resolve(base, k),
                },
                (None, None, Some(d)) => TlsConfig::SelfSigned {
                    dir: resolve(base, d),
                    hosts: t.hosts.clone(),
                },
                _ => {
                    return Err(ConfigError::new(
                        "tls",
                        "give either cert and key, or self_signed_dir",
                    ));
                }
            }),
        };
        let metrics = raw.metrics.clone().unwrap_or_default();
        let metrics_listen = metrics
            .listen
            .as_deref()
            .map(|a| parse_addr("metrics.listen", a))
            .transpose()?;
        let admin_token = metrics
            .admin_token
            .as_deref()
            .map(|v| resolve_value("metrics.admin_token", v, base).map(Secret))
            .transpose()?;
        if admin_token.as_ref().is_some_and(|t| t.0.len() < 16) {
            return Err(ConfigError::new(
                "metrics.admin_token",
                "the admin token must be at least 16 characters (an empty one would open the admin API)",
            ));
        }
        if admin_token.is_some() && metrics_listen.is_none() {
            return Err(ConfigError::new(
                "metrics.admin_token",
                "the admin API is served on metrics.listen, which is not set",
            ));
        }
        let ch = raw.challenge.clone().unwrap_or_default();
        let challenge = ChallengeConfig {
            lsat_line: ch.lsat_line.unwrap_or(true),
            spec_params: ch.spec_params.unwrap_or(false),
            invalid_is_challenge: match ch.invalid_credential.as_deref().unwrap_or("unauthorized") {
                "unauthorized" | "401" => false,
                "challenge" | "402" => true,
                other => {
                    return Err(ConfigError::new(
                        "challenge.invalid_credential",
                        format!("{other:?} is neither \"unauthorized\" nor \"challenge\""),
                    ));
                }
            },
            invoice_expiry: duration("challenge.invoice_expiry", ch.invoice_expiry.as_deref())?
                .unwrap_or(Duration::from_secs(3600)),
            strict_caveats: ch.strict_caveats.unwrap_or(false),
            location: ch.location.unwrap_or_else(|| l402::DEFAULT_LOCATION.into()),
        };
        if challenge.invoice_expiry < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "challenge.invoice_expiry",
                "must be at least 1s",
            ));
        }
        let net = raw.network.clone().unwrap_or_default();
        let trusted_proxies = nets("network.trusted_proxies", &net.trusted_proxies)?;
        let forwarding_header = match net
            .forwarding_header
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("x-forwarded-for") => crate::client_ip::ForwardingHeader::XForwardedFor,
            Some("forwarded") => crate::client_ip::ForwardingHeader::Forwarded,
            Some(other) => {
                return Err(ConfigError::new(
                    "network.forwarding_header",
                    format!("{other:?} is neither x-forwarded-for nor forwarded"),
                ));
            }
        };
        let blocklist = nets("network.blocklist", &net.blocklist)?;
        let limits = raw.limits.clone().unwrap_or_default();
        let challenges_per_ip = limits
            .challenges_per_ip
            .as_deref()
            .map(|r| parse_rate("limits.challenges_per_ip", r, limits.challenges_burst))
            .transpose()?;
        let ipv4_prefix = limits.ipv4_prefix.unwrap_or(24);
        let ipv6_prefix = limits.ipv6_prefix.unwrap_or(48);
        if ipv4_prefix > 32 {
            return Err(ConfigError::new("limits.ipv4_prefix", "must be 0-32"));
        }
        if ipv6_prefix > 128 {
            return Err(ConfigError::new("limits.ipv6_prefix", "must be 0-128"));
        }
        let cleanup_interval = match duration("cleanup_interval", raw.cleanup_interval.as_deref())?
        {
            None => Some(Duration::from_secs(600)),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        if raw.services.is_empty() {
            return Err(ConfigError::new(
                "services",
                "at least one service is required",
            ));
        }
        let mut services = Vec::with_capacity(raw.services.len());
        for (i, s) in raw.services.iter().enumerate() {
            let svc = service(&format!("services[{i}]"), s, base)?;
            if services.iter().any(|o: &ServiceConfig| o.name == svc.name) {
                return Err(ConfigError::new(
                    format!("services[{i}].name"),
                    format!("duplicate service name {:?}", svc.name),
                ));
            }
            services.push(svc);
        }
        Ok(Config {
            listen,
            tls,
            metrics_listen,
            admin_token,
            lightning: Secret(raw.lightning.clone().unwrap_or_else(|| "devnode:".into())),
            store: Secret(store_url(raw.store.as_deref(), base)),
            challenge,
            trusted_proxies,
            forwarding_header,
            proxy_protocol: net.proxy_protocol.unwrap_or(false),
            blocklist,
            challenges_per_ip,
            ipv4_prefix,
            ipv6_prefix,
            cleanup_interval,
            services,
        })
    }
}

/// The store URL, with a relative SQLite path resolved against the configuration's directory.
fn store_url(given: Option<&str>, base: &Path) -> String {
    let Some(url) = given else {
        return format!("sqlite:{}", base.join("l402.db").display());
    };
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    match path {
        Some(p) if p != ":memory:" && !Path::new(p).is_absolute() => {
            format!("sqlite:{}", base.join(p).display())
        }
        _ => url.to_owned(),
    }
}

/// Environment overrides: `L402_LISTEN`, `L402_LIGHTNING`, `L402_STORE`.
fn apply_env(raw: &mut RawConfig) {
    if let Ok(v) = std::env::var("L402_LISTEN") {
        raw.listen = Some(v);
    }
    if let Ok(v) = std::env::var("L402_LIGHTNING") {
        raw.lightning = Some(v);
    }
    if let Ok(v) = std::env::var("L402_STORE") {
        raw.store = Some(v);
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parse_addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConfigError::new(key, format!("{s:?} is not a host:port address")))
}

fn duration(key: &str, s: Option<&str>) -> Result<Option<Duration>, ConfigError> {
    s.map(|s| {
        humantime::parse_duration(s.trim()).map_err(|e| {
            ConfigError::new(
                key,
                format!("{s:?} is not a duration like 30s, 5m, 1h: {e}"),
            )
        })
    })
    .transpose()
}

fn nets(key: &str, list: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        format!("{key}[{i}]"),
                        format!("{s:?} is not an address or CIDR"),
                    )
                })
        })
        .collect()
}

fn regex(key: &str, s: &str) -> Result<Regex, ConfigError> {
    Regex::new(s).map_err(|e| ConfigError::new(key, format!("invalid regex: {e}")))
}

/// Parses `10/s`, `600/min`, `5000/h`, `100/d`, or `N/<duration>` like `5/30s`.
pub fn parse_rate(key: &str, s: &str, burst: Option<u32>) -> Result<Rate, ConfigError> {
    let bad = || {
        ConfigError::new(
            key,
            format!("{s:?} is not a rate like 10/s, 600/min or 5/30s"),
        )
    };
    let (n, per) = s.split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    let per = match per.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        other => humantime::parse_duration(other).map_err(|_| bad())?,
    };
    if count == 0 || per.is_zero() {
        return Err(ConfigError::new(
            key,
            format!("{s:?}: the rate must be positive"),
        ));
    }
    let burst = burst.unwrap_or(count);
    if burst == 0 {
        return Err(ConfigError::new(key, "burst must be positive"));
    }
    Ok(Rate { count, per, burst })
}

/// Resolves a value source: `env:NAME`, `file:PATH` (trimmed), Aperture's `!file+hex:PATH` and
/// `!file+base64:PATH`, `${NAME}` expansion, or a literal.
pub fn resolve_value(key: &str, v: &str, base: &Path) -> Result<String, ConfigError> {
    let read = |p: &str| {
        std::fs::read(resolve(base, p))
            .map_err(|e| ConfigError::new(key, format!("cannot read {p}: {e}")))
    };
    if let Some(name) = v.strip_prefix("env:") {
        return std::env::var(name)
            .map_err(|_| ConfigError::new(key, format!("environment variable {name} is not set")));
    }
    if let Some(p) = v.strip_prefix("file:") {
        return String::from_utf8(read(p)?)
            .map(|s| s.trim().to_owned())
            .map_err(|_| ConfigError::new(key, format!("{p} is not UTF-8 text")));
    }
    if let Some(p) = v.strip_prefix("!file+hex:") {
        return Ok(hex::encode(read(p)?));
    }
    if let Some(p) = v.strip_prefix("!file+base64:") {
        return Ok(l402::macaroon::encode_base64_std(&read(p)?));
    }
    if v.starts_with("!file") {
        return Err(ConfigError::new(
            key,
            format!("unknown file directive in {v:?} (use !file+hex: or !file+base64:)"),
        ));
    }
    // ${NAME} expansion (Aperture master).
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ConfigError::new(key, format!("unclosed ${{ in {v:?}")))?;
        let name = &after[..end];
        let val = std::env::var(name)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::new(key, format!("environment variable {name} is not set"))
            })?;
        out.push_str(&val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_auth(key: &str, s: Option<&str>) -> Result<AuthLevel, ConfigError> {
    let s = s.unwrap_or("on").trim().to_ascii_lowercase();
    match s.as_str() {
        "on" | "true" | "" => Ok(AuthLevel::On),
        "off" | "false" => Ok(AuthLevel::Off),
        _ => {
            let n = s
                .strip_prefix("freebie")
                .map(str::trim)
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| {
                    ConfigError::new(key, format!("{s:?} is not one of on, off, freebie N"))
                })?;
            Ok(AuthLevel::Freebie(n))
        }
    }
}

fn price(key: &str, msat: Option<u64>, sat: Option<u64>) -> Result<Option<Msat>, ConfigError> {
    match (msat, sat) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            key,
            "give price_msat or price_sat, not both",
        )),
        (Some(m), None) => Ok(Some(Msat::new(m))),
        (None, Some(s)) => s
            .checked_mul(1000)
            .map(|m| Some(Msat::new(m)))
            .ok_or_else(|| ConfigError::new(key, "price too large")),
        (None, None) => Ok(None),
    }
}

fn service(key: &str, s: &raw::RawService, base: &Path) -> Result<ServiceConfig, ConfigError> {
    let k = |f: &str| format!("{key}.{f}");
    if s.name.is_empty()
        || s.name.contains([',', ':', '='])
        || s.name.chars().any(char::is_whitespace)
    {
        return Err(ConfigError::new(
            k("name"),
            format!(
                "{:?}: a service name must be non-empty, without spaces, ',', ':' or '='",
                s.name
            ),
        ));
    }
    let url = Url::parse(&s.upstream)
        .map_err(|e| ConfigError::new(k("upstream"), format!("{:?}: {e}", s.upstream)))?;
    let protocol = match url.scheme() {
        "http" => UpstreamProtocol::Http,
        "https" => UpstreamProtocol::Https,
        "h2c" => UpstreamProtocol::H2c,
        other => {
            return Err(ConfigError::new(
                k("upstream"),
                format!("scheme {other:?} is not http, https or h2c"),
            ));
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| ConfigError::new(k("upstream"), "no host"))?;
    let default_port = if protocol == UpstreamProtocol::Https {
        443
    } else {
        80
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let upstream_authority = format!("{host}:{}", url.port().unwrap_or(default_port));
    let mut upstream_path = url.path().trim_end_matches('/').to_owned();
    if let Some(prefix) = &s.rewrite_prefix {
        if !prefix.starts_with('/') || prefix.contains(['?', '#']) {
            return Err(ConfigError::new(
                k("rewrite_prefix"),
                format!("{prefix:?} must be a path starting with /"),
            ));
        }
        upstream_path.push_str(prefix.trim_end_matches('/'));
    }
    if s.upstream_ca.is_some() && protocol != UpstreamProtocol::Https {
        return Err(ConfigError::new(
            k("upstream_ca"),
            "only meaningful with an https:// upstream",
        ));
    }
    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        let hk = format!("{key}.headers.{name}");
        let hn = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::new(&hk, "not a valid header name"))?;
        // How a request is framed and kept alive is the proxy's to say: a configured
        // `Content-Length` or `Transfer-Encoding` would make the upstream read the next request
        // as this one's body.
        const FRAMING: [&str; 8] = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
        ];
        if FRAMING.contains(&hn.as_str()) {
            return Err(ConfigError::new(
                &hk,
                "this header frames the request or the connection; it cannot be configured",
            ));
        }
        let v = resolve_value(&hk, value, base)?;
        let hv = HeaderValue::from_str(&v)
            .map_err(|_| ConfigError::new(&hk, "the value is not a valid header value"))?;
        headers.push((hn, hv));
    }
    let mut path_prices = Vec::new();
    for (i, p) in s.prices.iter().enumerate() {
        let pk = format!("{key}.prices[{i}]");
        let value = price(&pk, p.price_msat, p.price_sat)?
            .ok_or_else(|| ConfigError::new(&pk, "price_msat or price_sat is required"))?;
        path_prices.push((regex(&format!("{pk}.path"), &p.path)?, value));
    }
    let mut rate_limits = Vec::new();
    for (i, r) in s.rate_limits.iter().enumerate() {
        let rk = format!("{key}.rate_limits[{i}]");
        let lk = match r.per.as_str() {
            "token" => LimitKey::Token,
            "ip" => LimitKey::Ip,
            other => {
                return Err(ConfigError::new(
                    format!("{rk}.per"),
                    format!("{other:?} is not token or ip"),
                ));
            }
        };
        rate_limits.push(RateLimit {
            key: lk,
            rate: parse_rate(&format!("{rk}.rate"), &r.rate, r.burst)?,
            path: r
                .path
                .as_deref()
                .map(|p| regex(&format!("{rk}.path"), p))
                .transpose()?,
        });
    }
    let regexes = |f: &str, list: &[String]| -> Result<Vec<Regex>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, p)| regex(&format!("{key}.{f}[{i}]"), p))
            .collect()
    };
    let mut constraints = Vec::new();
    for (c, v) in &s.constraints {
        if c.is_empty() || c.contains('=') {
            return Err(ConfigError::new(
                format!("{key}.constraints.{c}"),
                "a condition must be non-empty and contain no '='",
            ));
        }
        if c == l402::SERVICES
            || c.ends_with(l402::CAPABILITIES_SUFFIX)
            || c.ends_with(l402::VALID_UNTIL_SUFFIX)
            || c == l402::PREIMAGE
        {
            return Err(ConfigError::new(
                format!("{key}.constraints.{c}"),
                "reserved condition; use the service's own settings",
            ));
        }
        constraints.push((c.clone(), v.clone()));
    }
    Ok(ServiceConfig {
        name: s.name.clone(),
        host: s
            .host
            .as_deref()
            .map(|h| regex(&k("host"), h))
            .transpose()?,
        path: s
            .path
            .as_deref()
            .map(|p| regex(&k("path"), p))
            .transpose()?,
        protocol,
        upstream_authority,
        upstream_path,
        upstream_ca: s.upstream_ca.as_deref().map(|p| resolve(base, p)),
        upstream_timeout: duration(&k("upstream_timeout"), s.upstream_timeout.as_deref())?
            .unwrap_or(Duration::from_secs(30)),
        auth: parse_auth(&k("auth"), s.auth.as_deref())?,
        price: price(key, s.price_msat, s.price_sat)?.unwrap_or(Msat::from_sat(1)),
        path_prices,
        pricer: s
            .pricer
            .as_deref()
            .map(|u| {
                Url::parse(u).map_err(|e| ConfigError::new(k("pricer"), format!("{u:?}: {e}")))
            })
            .transpose()?,
        free_paths: regexes("free_paths", &s.free_paths)?,
        no_challenge_paths: regexes("no_challenge_paths", &s.no_challenge_paths)?,
        headers,
        tier: s.tier.unwrap_or(0),
        capabilities: s.capabilities.clone(),
        capability_paths: s
            .capability_paths
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok((
                    regex(&format!("{key}.capability_paths[{i}].path"), &c.path)?,
                    c.capability.clone(),
                ))
            })
            .collect::<Result<_, ConfigError>>()?,
        constraints,
        token_lifetime: duration(&k("token_lifetime"), s.token_lifetime.as_deref())?,
        rate_limits,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod store_url_tests {
    use super::*;

    #[test]
    fn relative_sqlite_paths_follow_the_config_file() {
        let b = Path::new("/etc/l402");
        assert_eq!(
            store_url(Some("sqlite:l402.db"), b),
            "sqlite:/etc/l402/l402.db"
        );
        assert_eq!(
            store_url(Some("sqlite://data/x.db"), b),
            "sqlite:/etc/l402/data/x.db"
        );
        assert_eq!(store_url(Some("sqlite:/var/x.db"), b), "sqlite:/var/x.db");
        assert_eq!(store_url(Some("sqlite::memory:"), b), "sqlite::memory:");
        assert_eq!(store_url(Some("postgres://u@h/d"), b), "postgres://u@h/d");
    }
}
