//! Reading Aperture's `aperture.yaml` as it is (translation to our raw configuration).
//!
//! The file is parsed into a [`Value`] first (bare `on`/`off`/`yes`/`no` arrive as booleans,
//! numbers as numbers), then every key is looked at here:
//!
//! * keys with an equivalent are mapped into [`RawConfig`];
//! * keys that only tune Aperture internals are accepted with a warning saying they are ignored;
//! * keys whose behaviour we refuse to imitate, and any key Aperture does not know, are errors
//!   naming the full key path (`services[0].pricee`). Aperture itself silently ignores unknown
//!   keys, so a typo there quietly changes behaviour; here it stops the start.
//!
//! The one change an Aperture file needs is `authenticator: { backend: <URI> }` in place of the
//! lnd connection keys. See `docs/MIGRATING-FROM-APERTURE.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::raw::{RawMetrics, RawNetwork, RawRateLimit, RawService, RawTls};
use super::{ConfigError, RawConfig};

/// Aperture's top-level keys, plus `tlscertpath`/`tlskeypath` (ours: a certificate from files).
const TOP_KEYS: &[&str] = &[
    "listenaddr",
    "servername",
    "autocert",
    "insecure",
    "tlscertpath",
    "tlskeypath",
    "staticroot",
    "servestatic",
    "dbbackend",
    "sqlite",
    "postgres",
    "etcd",
    "authenticator",
    "tor",
    "services",
    "hashmail",
    "prometheus",
    "admin",
    "debuglevel",
    "configfile",
    "basedir",
    "profile",
    "idletimeout",
    "readtimeout",
    "writetimeout",
    "wspinginterval",
    "wspongwait",
    "invoicebatchsize",
    "strictverify",
    "blocklist",
    "logging",
];

/// Top-level keys of our own format (a file mixing them in is told so).
const NATIVE_TOP_KEYS: &[&str] = &[
    "listen",
    "tls",
    "metrics",
    "lightning",
    "store",
    "challenge",
    "network",
    "limits",
    "cleanup_interval",
];

const SQLITE_KEYS: &[&str] = &["dbfile", "databasefilename", "skipmigrations"];
const POSTGRES_KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "requiressl",
    "requireSSL",
    "maxconnections",
    "maxopenconnections",
    "skipmigrations",
];
const ETCD_KEYS: &[&str] = &["host", "user", "password"];
const PROMETHEUS_KEYS: &[&str] = &["enabled", "listenaddr"];
const TOR_KEYS: &[&str] = &["control", "listenport", "virtualport", "v3"];
const HASHMAIL_KEYS: &[&str] = &[
    "enabled",
    "messagerate",
    "messageburstallowance",
    "staletimeout",
];
const ADMIN_KEYS: &[&str] = &["enabled", "macaroonpath", "corsorigins", "corsorigin"];
const AUTHENTICATOR_KEYS: &[&str] = &[
    "backend",
    "network",
    "disable",
    "lndhost",
    "tlspath",
    "macdir",
    "passphrase",
    "mailboxaddress",
    "devserver",
    "wavelengthgateway",
    "wavelengthmacaroonpath",
    "enablempp",
    "mpprealm",
    "enablesessions",
    "sessiondepositmultiplier",
    "sessionidletimeout",
];
const SERVICE_KEYS: &[&str] = &[
    "name",
    "hostregexp",
    "pathregexp",
    "address",
    "protocol",
    "tlscertpath",
    "auth",
    "authscheme",
    "headers",
    "timeout",
    "capabilities",
    "constraints",
    "price",
    "dynamicprice",
    "authwhitelistpaths",
    "authskipinvoicecreationpaths",
    "ratelimits",
    "rewrite",
];
const DYNAMICPRICE_KEYS: &[&str] = &[
    "enabled",
    "grpcaddress",
    "insecure",
    "tlscertpath",
    "metered",
    "usagetailbytes",
];
const RATELIMIT_KEYS: &[&str] = &["pathregexp", "requests", "per", "burst"];
const REWRITE_KEYS: &[&str] = &["prefix"];

/// Top-level tuning knobs accepted and ignored, with the reason.
const IGNORED_TOP: &[(&str, &str)] = &[
    (
        "debuglevel",
        "log verbosity is set on the command line or in the environment, not in this file",
    ),
    (
        "logging",
        "log output is set on the command line or in the environment, not in this file",
    ),
    ("profile", "there is no Go pprof profiler here"),
    (
        "idletimeout",
        "a Go HTTP server timeout with no setting here",
    ),
    (
        "readtimeout",
        "a Go HTTP server timeout with no setting here",
    ),
    (
        "writetimeout",
        "a Go HTTP server timeout with no setting here; responses and streams are not cut by a \
         write deadline",
    ),
    (
        "wspinginterval",
        "only used by Aperture's hashmail WebSocket proxy, which does not exist here",
    ),
    (
        "wspongwait",
        "only used by Aperture's hashmail WebSocket proxy, which does not exist here",
    ),
    (
        "invoicebatchsize",
        "only used to page through the node's invoices at start; invoices are never listed here",
    ),
    (
        "strictverify",
        "a payment is proven by its preimage and the token's signature; the node is never needed \
         per request",
    ),
    (
        "staticroot",
        "only used with servestatic, which is not supported",
    ),
    (
        "configfile",
        "a command-line setting; the file read is the one given with --config",
    ),
];

/// Whether a parsed file is an Aperture configuration: it has a top-level key only Aperture has
/// (`listenaddr`, `authenticator`, `insecure`, …), or a service with Aperture's `address`,
/// `hostregexp` or `pathregexp`.
pub fn looks_like_aperture(v: &Value) -> bool {
    let Some(top) = v.as_object() else {
        return false;
    };
    if top
        .keys()
        .any(|k| k != "services" && TOP_KEYS.contains(&k.as_str()))
    {
        return true;
    }
    top.get("services")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().filter_map(Value::as_object).any(|s| {
                ["address", "hostregexp", "pathregexp"]
                    .iter()
                    .any(|k| s.contains_key(*k))
            })
        })
}

/// Translates an Aperture configuration into our raw form, with warnings for settings that are
/// accepted but have no effect, or that behave differently here.
pub fn translate(v: &Value) -> Result<(RawConfig, Vec<String>), ConfigError> {
    let top = v
        .as_object()
        .ok_or_else(|| ConfigError::new("", "an aperture.yaml must be a mapping of keys"))?;
    check_keys("", top, TOP_KEYS)?;
    let mut t = Translator::default();
    let mut raw = RawConfig {
        listen: Some(t.listen(top)?),
        ..RawConfig::default()
    };
    raw.tls = t.tls(top)?;
    raw.store = t.store(top)?;
    raw.metrics = t.prometheus(top)?;
    let blocklist = string_list("blocklist", top.get("blocklist"))?;
    for (i, entry) in blocklist.iter().enumerate() {
        let ok = entry.parse::<std::net::IpAddr>().is_ok() || entry.parse::<ipnet::IpNet>().is_ok();
        if !ok {
            return Err(ConfigError::new(
                format!("blocklist[{i}]"),
                format!(
                    "{entry:?} is not an IP address (Aperture skips such entries; refused here so \
                     nothing meant to be blocked gets through)"
                ),
            ));
        }
    }
    if !blocklist.is_empty() {
        raw.network = Some(RawNetwork {
            blocklist,
            ..RawNetwork::default()
        });
    }
    t.refused_and_ignored(top)?;

    let services = match top.get("services") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(ConfigError::new("services", "must be a list of services")),
    };
    let mut auth_on = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let (svc, needs_lightning) = t.service(&format!("services[{i}]"), s)?;
        if needs_lightning {
            auth_on.push(i);
        }
        raw.services.push(svc);
    }
    raw.lightning = t.authenticator(top, &auth_on)?;

    // Aperture answers an invalid credential with a fresh challenge; keep that.
    raw.challenge = Some(super::raw::RawChallenge {
        invalid_credential: Some("challenge".into()),
        ..Default::default()
    });
    t.warn(
        "",
        "an invalid or expired credential is answered with a fresh 402 challenge, as Aperture \
         does (our native default is 401, which keeps paying clients from paying twice; see \
         challenge.invalid_credential in the native format)",
    );
    Ok((raw, t.warnings))
}

#[derive(Default)]
struct Translator {
    warnings: Vec<String>,
}

impl Translator {
    fn warn(&mut self, key: &str, msg: impl AsRef<str>) {
        if key.is_empty() {
            self.warnings.push(msg.as_ref().to_owned());
        } else {
            self.warnings.push(format!("{key}: {}", msg.as_ref()));
        }
    }

    fn ignored(&mut self, key: &str, why: &str) {
        self.warn(key, format!("ignored: {why}"));
    }

    fn listen(&mut self, top: &Map<String, Value>) -> Result<String, ConfigError> {
        let addr = string("listenaddr", top.get("listenaddr"))?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    "listenaddr",
                    "required (the address to listen on, e.g. \"0.0.0.0:8081\"); this file is \
                     read as an aperture.yaml because of its keys",
                )
            })?;
        Ok(listen_addr(&addr))
    }

    fn tls(&mut self, top: &Map<String, Value>) -> Result<Option<RawTls>, ConfigError> {
        let insecure = boolean("insecure", top.get("insecure"))?.unwrap_or(false);
        let cert = string("tlscertpath", top.get("tlscertpath"))?.filter(|s| !s.is_empty());
        let key = string("tlskeypath", top.get("tlskeypath"))?.filter(|s| !s.is_empty());
        let servername = string("servername", top.get("servername"))?.filter(|s| !s.is_empty());
        let basedir = string("basedir", top.get("basedir"))?
            .filter(|s| !s.is_empty())
            .map(|s| expand_home(&s));
        if insecure {
            for (k, present) in [
                ("tlscertpath", cert.is_some()),
                ("tlskeypath", key.is_some()),
                ("servername", servername.is_some()),
            ] {
                if present {
                    self.ignored(k, "insecure: true serves plaintext (HTTP/1.1 and h2c)");
                }
            }
            if basedir.is_some() {
                self.ignored(
                    "basedir",
                    "it only holds Aperture's own files (TLS certificate, log), and insecure: \
                     true needs no certificate",
                );
            }
            return Ok(None);
        }
        match (cert, key) {
            (Some(cert), Some(key)) => {
                if servername.is_some() {
                    self.ignored(
                        "servername",
                        "it only names the self-signed certificate, and tlscertpath is given",
                    );
                }
                if basedir.is_some() {
                    self.ignored(
                        "basedir",
                        "it only holds Aperture's own files (self-signed certificate, log), and \
                         tlscertpath is given",
                    );
                }
                Ok(Some(RawTls {
                    cert: Some(cert),
                    key: Some(key),
                    ..RawTls::default()
                }))
            }
            (None, None) => Ok(Some(RawTls {
                self_signed_dir: Some(basedir.unwrap_or_else(|| ".".into())),
                hosts: servername.into_iter().collect(),
                ..RawTls::default()
            })),
            (Some(_), None) => Err(ConfigError::new(
                "tlscertpath",
                "tlskeypath is missing (give both, or neither for a self-signed certificate)",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "tlskeypath",
                "tlscertpath is missing (give both, or neither for a self-signed certificate)",
            )),
        }
    }

    fn store(&mut self, top: &Map<String, Value>) -> Result<Option<String>, ConfigError> {
        let sqlite = section("sqlite", top.get("sqlite"))?;
        let postgres = section("postgres", top.get("postgres"))?;
        let etcd = section("etcd", top.get("etcd"))?;
        if let Some(m) = sqlite {
            check_keys("sqlite", m, SQLITE_KEYS)?;
        }
        if let Some(m) = postgres {
            check_keys("postgres", m, POSTGRES_KEYS)?;
        }
        if let Some(m) = etcd {
            check_keys("etcd", m, ETCD_KEYS)?;
        }
        let explicit = string("dbbackend", top.get("dbbackend"))?.filter(|s| !s.is_empty());
        let backend = explicit.clone().unwrap_or_else(|| "sqlite".into());
        let backend = backend.to_ascii_lowercase();
        match backend.as_str() {
            "sqlite" | "postgres" => {}
            "etcd" => {
                return Err(ConfigError::new(
                    "dbbackend",
                    "etcd is not supported; use dbbackend: sqlite (with sqlite.dbfile) or \
                     dbbackend: postgres (with the postgres section)",
                ));
            }
            other => {
                return Err(ConfigError::new(
                    "dbbackend",
                    format!("{other:?} is not sqlite or postgres"),
                ));
            }
        }
        if explicit.is_none() {
            self.warn(
                "dbbackend",
                "not set: using sqlite (Aperture's code default is etcd, which is not supported \
                 here)",
            );
        }
        if let Some(m) = etcd
            && !m.is_empty()
        {
            self.ignored("etcd", "dbbackend is not etcd");
        }
        let skip = |t: &mut Self, section: &str, m: &Map<String, Value>| {
            if m.contains_key("skipmigrations") {
                t.ignored(
                    &format!("{section}.skipmigrations"),
                    "our tables are created or checked at every start",
                );
            }
        };
        if backend == "sqlite" {
            if let Some(m) = postgres
                && !m.is_empty()
            {
                self.ignored("postgres", "dbbackend is sqlite");
            }
            let m = sqlite.cloned().unwrap_or_default();
            skip(self, "sqlite", &m);
            let dbfile = string("sqlite.dbfile", m.get("dbfile"))?.filter(|s| !s.is_empty());
            let dbname = string("sqlite.databasefilename", m.get("databasefilename"))?
                .filter(|s| !s.is_empty());
            let path = match (dbfile, dbname) {
                (Some(a), Some(b)) if a != b => {
                    return Err(ConfigError::new(
                        "sqlite.dbfile",
                        format!(
                            "{a:?} contradicts sqlite.databasefilename {b:?} (the same setting \
                             under two names; keep one)"
                        ),
                    ));
                }
                (Some(a), _) => {
                    self.warn(
                        "sqlite.dbfile",
                        "used; note that Aperture itself ignores this spelling (it reads \
                         databasefilename), so it was using ~/.aperture/aperture.db",
                    );
                    Some(a)
                }
                (None, b) => b,
            };
            return Ok(match path {
                Some(p) => Some(format!("sqlite:{}", expand_home(&p))),
                None => {
                    self.warn(
                        "sqlite",
                        "no database file given: using l402.db beside the configuration file \
                         (Aperture's default is ~/.aperture/aperture.db)",
                    );
                    None
                }
            });
        }
        if let Some(m) = sqlite
            && !m.is_empty()
        {
            self.ignored("sqlite", "dbbackend is postgres");
        }
        let m = postgres.ok_or_else(|| {
            ConfigError::new(
                "postgres",
                "dbbackend is postgres, but the postgres section is missing",
            )
        })?;
        skip(self, "postgres", m);
        Ok(Some(self.postgres_url(m)?))
    }

    fn postgres_url(&mut self, m: &Map<String, Value>) -> Result<String, ConfigError> {
        let host = string("postgres.host", m.get("host"))?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::new("postgres.host", "required"))?;
        let port = match integer("postgres.port", m.get("port"))? {
            None | Some(0) => None,
            Some(p @ 1..=65535) => Some(p),
            Some(p) => {
                return Err(ConfigError::new(
                    "postgres.port",
                    format!("{p} is not a port number"),
                ));
            }
        };
        let user = string("postgres.user", m.get("user"))?.unwrap_or_default();
        let password = string("postgres.password", m.get("password"))?.unwrap_or_default();
        let dbname = string("postgres.dbname", m.get("dbname"))?.unwrap_or_default();
        let lower = boolean("postgres.requiressl", m.get("requiressl"))?;
        let upper = boolean("postgres.requireSSL", m.get("requireSSL"))?;
        let require_ssl = match (lower, upper) {
            (Some(a), Some(b)) if a != b => {
                return Err(ConfigError::new(
                    "postgres.requireSSL",
                    "contradicts postgres.requiressl (the same setting under two names; keep one)",
                ));
            }
            (Some(a), _) => a,
            (None, Some(b)) => {
                if b {
                    self.warn(
                        "postgres.requireSSL",
                        "used; note that Aperture itself ignores this spelling (it reads \
                         requiressl), so it was connecting without TLS",
                    );
                }
                b
            }
            (None, None) => false,
        };
        for k in ["maxconnections", "maxopenconnections"] {
            if m.contains_key(k) {
                self.ignored(
                    &format!("postgres.{k}"),
                    "the connection pool size is not configurable here",
                );
            }
        }
        let mut url = String::from("postgres://");
        if !user.is_empty() || !password.is_empty() {
            url.push_str(&percent_encode(&user));
            if !password.is_empty() {
                url.push(':');
                url.push_str(&percent_encode(&password));
            }
            url.push('@');
        }
        let socket = host.starts_with('/');
        if socket {
            url.push_str("localhost");
        } else if host.contains(':') && !host.starts_with('[') {
            url.push_str(&format!("[{host}]"));
        } else {
            url.push_str(&host);
        }
        if let Some(p) = port {
            url.push_str(&format!(":{p}"));
        }
        url.push('/');
        url.push_str(&percent_encode(&dbname));
        url.push_str(if require_ssl {
            "?sslmode=require"
        } else {
            "?sslmode=disable"
        });
        if socket {
            url.push_str("&host=");
            url.push_str(&percent_encode(&host));
        }
        Ok(url)
    }

    fn prometheus(&mut self, top: &Map<String, Value>) -> Result<Option<RawMetrics>, ConfigError> {
        let Some(m) = section("prometheus", top.get("prometheus"))? else {
            return Ok(None);
        };
        check_keys("prometheus", m, PROMETHEUS_KEYS)?;
        let enabled = boolean("prometheus.enabled", m.get("enabled"))?.unwrap_or(false);
        let addr = string("prometheus.listenaddr", m.get("listenaddr"))?.filter(|s| !s.is_empty());
        if !enabled {
            if !m.is_empty() {
                self.ignored("prometheus", "enabled is false");
            }
            return Ok(None);
        }
        let addr = addr.ok_or_else(|| {
            ConfigError::new(
                "prometheus.listenaddr",
                "required when prometheus.enabled is true",
            )
        })?;
        Ok(Some(RawMetrics {
            listen: Some(listen_addr(&addr)),
            admin_token: None,
        }))
    }

    /// The top-level keys that are refused, or accepted and ignored.
    fn refused_and_ignored(&mut self, top: &Map<String, Value>) -> Result<(), ConfigError> {
        if let Some(b) = boolean("autocert", top.get("autocert"))? {
            if b {
                return Err(ConfigError::new(
                    "autocert",
                    "Let's Encrypt certificates are not obtained here; get a certificate with \
                     your ACME client and give tlscertpath and tlskeypath, or terminate TLS in \
                     front and set insecure: true",
                ));
            }
            self.ignored("autocert", "disabled");
        }
        if let Some(b) = boolean("servestatic", top.get("servestatic"))? {
            if b {
                return Err(ConfigError::new(
                    "servestatic",
                    "serving static files is not supported; put the files behind an HTTP server \
                     and add it as a service with auth: off",
                ));
            }
            self.ignored("servestatic", "disabled");
        }
        for (key, why) in IGNORED_TOP {
            if top.contains_key(*key) {
                self.ignored(key, why);
            }
        }
        if let Some(m) = section("tor", top.get("tor"))? {
            check_keys("tor", m, TOR_KEYS)?;
            if boolean("tor.v3", m.get("v3"))?.unwrap_or(false) {
                return Err(ConfigError::new(
                    "tor.v3",
                    "onion services are not created here; run tor yourself with a \
                     HiddenServicePort pointing at listenaddr",
                ));
            }
            self.ignored("tor", "v3 is false");
        }
        if let Some(m) = section("hashmail", top.get("hashmail"))? {
            check_keys("hashmail", m, HASHMAIL_KEYS)?;
            if boolean("hashmail.enabled", m.get("enabled"))?.unwrap_or(false) {
                return Err(ConfigError::new(
                    "hashmail.enabled",
                    "the Lightning Node Connect mailbox is not supported; keep running it with \
                     Aperture or another LNC mailbox server",
                ));
            }
            self.ignored("hashmail", "enabled is false");
        }
        if let Some(m) = section("admin", top.get("admin"))? {
            check_keys("admin", m, ADMIN_KEYS)?;
            if boolean("admin.enabled", m.get("enabled"))?.unwrap_or(false) {
                return Err(ConfigError::new(
                    "admin.enabled",
                    "Aperture's macaroon-protected admin API is not available; our admin API is \
                     configured with metrics.admin_token in the native configuration format",
                ));
            }
            self.ignored("admin", "enabled is false");
        }
        Ok(())
    }

    /// The `authenticator` section; returns the Lightning backend URI.
    fn authenticator(
        &mut self,
        top: &Map<String, Value>,
        auth_on: &[usize],
    ) -> Result<Option<String>, ConfigError> {
        let empty = Map::new();
        let m = section("authenticator", top.get("authenticator"))?.unwrap_or(&empty);
        check_keys("authenticator", m, AUTHENTICATOR_KEYS)?;
        let s = |k: &str| {
            string(&format!("authenticator.{k}"), m.get(k)).map(|v| v.filter(|s| !s.is_empty()))
        };
        let b = |k: &str| boolean(&format!("authenticator.{k}"), m.get(k));
        let backend = s("backend")?;

        // lnd / LNC connection keys: refused, with the URI to use instead.
        let lndhost = s("lndhost")?;
        let tlspath = s("tlspath")?;
        let macdir = s("macdir")?;
        let suggestion = {
            let host = lndhost
                .as_deref()
                .map(|h| h.rsplit_once(':').map_or(h, |(h, _)| h))
                .unwrap_or("HOST");
            let mac = macdir.as_deref().map_or_else(
                || "PATH/invoice.macaroon".to_owned(),
                |d| format!("{}/invoice.macaroon", d.trim_end_matches('/')),
            );
            let cert = tlspath.as_deref().unwrap_or("PATH/tls.cert");
            format!(
                "authenticator: {{ backend: \"lnd+rest://{host}:8080?macaroon={mac}&cert={cert}\" }} \
                 (lnd's REST port, 8080 by default, not its gRPC port)"
            )
        };
        for (k, v) in [
            ("lndhost", &lndhost),
            ("tlspath", &tlspath),
            ("macdir", &macdir),
        ] {
            if v.is_some() {
                return Err(ConfigError::new(
                    format!("authenticator.{k}"),
                    if backend.is_some() {
                        format!(
                            "remove it: authenticator.backend says how to reach the node (e.g. {suggestion})"
                        )
                    } else {
                        format!("replace the lnd keys with {suggestion}")
                    },
                ));
            }
        }
        for k in ["passphrase", "mailboxaddress"] {
            if s(k)?.is_some() {
                return Err(ConfigError::new(
                    format!("authenticator.{k}"),
                    format!(
                        "Lightning Node Connect is not supported; reach lnd directly with \
                         {suggestion}"
                    ),
                ));
            }
        }
        for k in ["wavelengthgateway", "wavelengthmacaroonpath"] {
            if s(k)?.is_some() {
                return Err(ConfigError::new(
                    format!("authenticator.{k}"),
                    "the Wavelength gateway is not supported; set authenticator.backend to a \
                     supported node URI (lnd+rest://, lnbits://, …)",
                ));
            }
        }
        for k in ["enablempp", "enablesessions"] {
            if b(k)?.unwrap_or(false) {
                return Err(ConfigError::new(
                    format!("authenticator.{k}"),
                    "the Payment (MPP) authentication scheme is not supported; only L402 is \
                     offered",
                ));
            }
        }
        for (k, why) in [
            (
                "network",
                "the network is the one of the node behind authenticator.backend",
            ),
            (
                "devserver",
                "only used by Lightning Node Connect, which is not supported",
            ),
            ("enablempp", "disabled"),
            ("enablesessions", "disabled"),
            ("mpprealm", "the Payment (MPP) scheme is not supported"),
            (
                "sessiondepositmultiplier",
                "the Payment (MPP) scheme is not supported",
            ),
            (
                "sessionidletimeout",
                "the Payment (MPP) scheme is not supported",
            ),
            ("lndhost", "empty"),
            ("tlspath", "empty"),
            ("macdir", "empty"),
            ("passphrase", "empty"),
            ("mailboxaddress", "empty"),
            ("wavelengthgateway", "empty"),
            ("wavelengthmacaroonpath", "empty"),
        ] {
            if m.contains_key(k) {
                self.ignored(&format!("authenticator.{k}"), why);
            }
        }

        match b("disable")? {
            Some(true) => {
                if let Some(&i) = auth_on.first() {
                    return Err(ConfigError::new(
                        "authenticator.disable",
                        format!(
                            "true, but services[{i}] needs payments (its auth is not off); set \
                             auth: off on every service, or remove authenticator.disable"
                        ),
                    ));
                }
                return Ok(backend);
            }
            Some(false) => self.ignored("authenticator.disable", "false is the default"),
            None => {}
        }
        backend.map(Some).ok_or_else(|| {
            ConfigError::new(
                "authenticator.backend",
                format!(
                    "required: the Lightning node that creates invoices, as a URI, e.g. \
                     {suggestion}, or lnbits://KEY@HOST:5000, or devnode: for tests"
                ),
            )
        })
    }

    /// One service; also says whether it needs the Lightning node (auth not off).
    fn service(&mut self, key: &str, v: &Value) -> Result<(RawService, bool), ConfigError> {
        let k = |f: &str| format!("{key}.{f}");
        let m = v
            .as_object()
            .ok_or_else(|| ConfigError::new(key, "a service must be a mapping of keys"))?;
        check_keys(key, m, SERVICE_KEYS)?;
        let name = string(&k("name"), m.get("name"))?.unwrap_or_default();

        // auth
        let auth = match m.get("auth") {
            None | Some(Value::Null) => "on".to_owned(),
            Some(Value::Bool(true)) => "on".to_owned(),
            Some(Value::Bool(false)) => "off".to_owned(),
            Some(other) => {
                let s = string(&k("auth"), Some(other))?
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                match s.as_str() {
                    "" | "on" | "true" => "on".to_owned(),
                    "off" | "false" => "off".to_owned(),
                    _ => match s.strip_prefix("freebie ").map(|n| n.trim().parse::<u16>()) {
                        Some(Ok(n)) => format!("freebie {n}"),
                        _ => {
                            return Err(ConfigError::new(
                                k("auth"),
                                format!(
                                    "{s:?} is not on, off or \"freebie N\" (Aperture would \
                                     silently serve this service without any payment)"
                                ),
                            ));
                        }
                    },
                }
            }
        };
        let auth_off = auth == "off";

        if let Some(scheme) = string(&k("authscheme"), m.get("authscheme"))? {
            let scheme = scheme.to_ascii_lowercase();
            if scheme.contains("mpp") {
                return Err(ConfigError::new(
                    k("authscheme"),
                    "the Payment (MPP) scheme is not supported; use l402 (or remove the key)",
                ));
            }
            if !scheme.is_empty() && scheme != "l402" {
                return Err(ConfigError::new(
                    k("authscheme"),
                    format!("{scheme:?} is not l402"),
                ));
            }
        }

        // upstream
        let address = string(&k("address"), m.get("address"))?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::new(k("address"), "required: the upstream host:port"))?;
        if address.contains('/') {
            return Err(ConfigError::new(
                k("address"),
                format!(
                    "{address:?} must be host:port only; the scheme comes from protocol and a \
                     path prefix from rewrite.prefix"
                ),
            ));
        }
        let protocol = string(&k("protocol"), m.get("protocol"))?
            .unwrap_or_default()
            .to_ascii_lowercase();
        let scheme = match protocol.as_str() {
            "" | "http" => "http",
            "https" => "https",
            "h2c" => "h2c",
            other => {
                return Err(ConfigError::new(
                    k("protocol"),
                    format!("{other:?} is not http, https or h2c"),
                ));
            }
        };
        let upstream = format!("{scheme}://{address}");
        match url::Url::parse(&upstream) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {}
            _ => {
                return Err(ConfigError::new(
                    k("address"),
                    format!("{address:?} is not a host:port address"),
                ));
            }
        }
        let mut upstream_ca =
            string(&k("tlscertpath"), m.get("tlscertpath"))?.filter(|s| !s.is_empty());
        if scheme == "https" {
            self.warn(
                &k("protocol"),
                "the upstream's TLS certificate is verified (Aperture does not verify it); for a \
                 self-signed upstream, give its certificate in tlscertpath",
            );
        } else if upstream_ca.take().is_some() {
            self.ignored(&k("tlscertpath"), "the protocol is not https");
        }

        // price
        let price = integer(&k("price"), m.get("price"))?.unwrap_or(0);
        let price_sat = match price {
            p if p < 0 => {
                return Err(ConfigError::new(k("price"), format!("{p} is negative")));
            }
            0 => {
                if !auth_off {
                    self.warn(
                        &k("price"),
                        "not set or 0: the price is 1 sat, as in Aperture (a price of 0 does not \
                         make a service free; use auth: off for that)",
                    );
                }
                1
            }
            p => p.unsigned_abs(),
        };

        if let Some(dp) = section(&k("dynamicprice"), m.get("dynamicprice"))? {
            let dk = k("dynamicprice");
            check_keys(&dk, dp, DYNAMICPRICE_KEYS)?;
            if boolean(&format!("{dk}.enabled"), dp.get("enabled"))?.unwrap_or(false) {
                return Err(ConfigError::new(
                    format!("{dk}.enabled"),
                    "the gRPC pricer is not supported; dynamic prices come from an HTTP JSON hook \
                     (pricer: URL), which only the native configuration format can express",
                ));
            }
            self.ignored(&dk, "enabled is false");
        }

        // paths
        let host = optional_regex(&k("hostregexp"), m.get("hostregexp"))?;
        let path = optional_regex(&k("pathregexp"), m.get("pathregexp"))?;
        let free_paths = regex_list(&k("authwhitelistpaths"), m.get("authwhitelistpaths"))?;
        let no_challenge_paths = regex_list(
            &k("authskipinvoicecreationpaths"),
            m.get("authskipinvoicecreationpaths"),
        )?;

        // headers
        let mut headers = BTreeMap::new();
        if let Some(h) = section(&k("headers"), m.get("headers"))? {
            for (hname, hv) in h {
                let hk = format!("{key}.headers.{hname}");
                http::HeaderName::from_bytes(hname.as_bytes())
                    .map_err(|_| ConfigError::new(&hk, "not a valid header name"))?;
                let value = string(&hk, Some(hv))?.unwrap_or_default();
                if value.starts_with("env:") || value.starts_with("file:") {
                    self.warn(
                        &hk,
                        "this value is read as a value source (env:NAME or file:PATH) here, \
                         while Aperture sends it literally",
                    );
                }
                headers.insert(hname.clone(), value);
            }
        }

        // rewrite
        let mut rewrite_prefix = None;
        if let Some(r) = section(&k("rewrite"), m.get("rewrite"))? {
            let rk = k("rewrite");
            check_keys(&rk, r, REWRITE_KEYS)?;
            let pk = format!("{rk}.prefix");
            if let Some(p) = string(&pk, r.get("prefix"))?.filter(|s| !s.is_empty()) {
                if !p.starts_with('/') || p.contains(['?', '#']) || p.contains("://") {
                    return Err(ConfigError::new(
                        pk,
                        format!("{p:?} must be a path starting with /"),
                    ));
                }
                rewrite_prefix = Some(p);
            }
        }

        // token contents
        let capabilities = match m.get("capabilities") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        string(&format!("{key}.capabilities[{i}]"), Some(c))
                            .map(Option::unwrap_or_default)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => Some(
                string(&k("capabilities"), Some(other))?
                    .unwrap_or_default()
                    .split(',')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty())
                    .collect(),
            ),
        }
        .filter(|l: &Vec<String>| !l.is_empty());
        let mut constraints = BTreeMap::new();
        if let Some(c) = section(&k("constraints"), m.get("constraints"))? {
            for (cname, cv) in c {
                let ck = format!("{key}.constraints.{cname}");
                constraints.insert(cname.clone(), string(&ck, Some(cv))?.unwrap_or_default());
            }
        }
        let token_lifetime = match integer(&k("timeout"), m.get("timeout"))? {
            None | Some(0) => None,
            Some(n) if n < 0 => {
                return Err(ConfigError::new(
                    k("timeout"),
                    format!("{n} is negative (tokens would be expired when minted)"),
                ));
            }
            Some(n) => Some(format!("{n}s")),
        };

        // rate limits
        let mut rate_limits = Vec::new();
        match m.get("ratelimits") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (j, r) in list.iter().enumerate() {
                    rate_limits.push(rate_limit(&format!("{key}.ratelimits[{j}]"), r)?);
                }
            }
            Some(_) => {
                return Err(ConfigError::new(
                    k("ratelimits"),
                    "must be a list of {pathregexp, requests, per, burst}",
                ));
            }
        }

        Ok((
            RawService {
                name,
                host,
                path,
                upstream,
                upstream_ca,
                auth: Some(auth),
                price_sat: Some(price_sat),
                free_paths,
                no_challenge_paths,
                headers,
                rewrite_prefix,
                capabilities,
                constraints,
                token_lifetime,
                rate_limits,
                ..RawService::default()
            },
            !auth_off,
        ))
    }
}

fn rate_limit(key: &str, v: &Value) -> Result<RawRateLimit, ConfigError> {
    let k = |f: &str| format!("{key}.{f}");
    let m = v.as_object().ok_or_else(|| {
        ConfigError::new(
            key,
            "a rate limit must be a mapping {pathregexp, requests, per, burst}",
        )
    })?;
    check_keys(key, m, RATELIMIT_KEYS)?;
    let requests = match integer(&k("requests"), m.get("requests"))? {
        Some(n) if n > 0 && n <= i64::from(u32::MAX) => n,
        Some(n) => {
            return Err(ConfigError::new(
                k("requests"),
                format!("{n} is not a positive count"),
            ));
        }
        None => return Err(ConfigError::new(k("requests"), "required")),
    };
    let per = match m.get("per") {
        None | Some(Value::Null) => {
            return Err(ConfigError::new(
                k("per"),
                "required (a duration like \"1s\")",
            ));
        }
        Some(Value::String(s)) => go_duration(&k("per"), s)?,
        Some(other) => {
            return Err(ConfigError::new(
                k("per"),
                format!(
                    "{other} is not a duration like \"1s\" or \"1m\" (a bare number is refused by Aperture too)"
                ),
            ));
        }
    };
    if per.is_zero() {
        return Err(ConfigError::new(k("per"), "must be positive"));
    }
    let burst = match integer(&k("burst"), m.get("burst"))? {
        None | Some(0) => None,
        Some(n) if n > 0 && n <= i64::from(u32::MAX) => u32::try_from(n).ok(),
        Some(n) => {
            return Err(ConfigError::new(
                k("burst"),
                format!("{n} is not a positive count"),
            ));
        }
    };
    Ok(RawRateLimit {
        per: "token".into(),
        rate: format!("{requests}/{}", format_duration(per)),
        burst,
        path: optional_regex(&k("pathregexp"), m.get("pathregexp"))?,
    })
}

// === helpers ===

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_owned()
    } else {
        format!("{prefix}.{k}")
    }
}

/// Refuses keys not in `known`, naming the full path and a likely intended key.
fn check_keys(prefix: &str, m: &Map<String, Value>, known: &[&str]) -> Result<(), ConfigError> {
    for k in m.keys() {
        if known.contains(&k.as_str()) {
            continue;
        }
        let mut msg = String::from("unknown Aperture key");
        if prefix.is_empty() && NATIVE_TOP_KEYS.contains(&k.as_str()) {
            msg.push_str(
                " (it belongs to our native format; this file is read as an aperture.yaml \
                 because of its other keys, and the two formats cannot be mixed)",
            );
        } else if let Some(best) = known
            .iter()
            .filter(|c| c.eq_ignore_ascii_case(k) || edit_distance(c, k) <= 2)
            .min_by_key(|c| edit_distance(c, k))
        {
            msg.push_str(&format!(" (did you mean {best}?)"));
        }
        return Err(ConfigError::new(join(prefix, k), msg));
    }
    Ok(())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A mapping, or nothing for an absent or empty (`key:` with no value) section.
fn section<'a>(
    key: &str,
    v: Option<&'a Value>,
) -> Result<Option<&'a Map<String, Value>>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ConfigError::new(key, "must be a mapping of keys")),
    }
}

/// A string field: like Aperture, numbers and booleans are taken as their text.
fn string(key: &str, v: Option<&Value>) -> Result<Option<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(ConfigError::new(
            key,
            "must be a single value, not a list or mapping",
        )),
    }
}

fn boolean(key: &str, v: Option<&Value>) -> Result<Option<bool>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(ConfigError::new(
            key,
            format!("{other} is not true or false"),
        )),
    }
}

fn integer(key: &str, v: Option<&Value>) -> Result<Option<i64>, ConfigError> {
    let bad = |v: &Value| ConfigError::new(key, format!("{v} is not a whole number"));
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(v.unwrap_or(&Value::Null))),
        Some(s @ Value::String(text)) => text.trim().parse().map(Some).map_err(|_| bad(s)),
        Some(other) => Err(bad(other)),
    }
}

fn string_list(key: &str, v: Option<&Value>) -> Result<Vec<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, e)| string(&format!("{key}[{i}]"), Some(e)).map(Option::unwrap_or_default))
            .collect(),
        Some(_) => Err(ConfigError::new(key, "must be a list")),
    }
}

fn check_regex(key: &str, s: &str) -> Result<(), ConfigError> {
    regex::Regex::new(s)
        .map(drop)
        .map_err(|e| ConfigError::new(key, format!("invalid regex: {e}")))
}

/// A regex field; empty means "match everything", as in Aperture.
fn optional_regex(key: &str, v: Option<&Value>) -> Result<Option<String>, ConfigError> {
    let s = string(key, v)?.filter(|s| !s.is_empty());
    if let Some(s) = &s {
        check_regex(key, s)?;
    }
    Ok(s)
}

fn regex_list(key: &str, v: Option<&Value>) -> Result<Vec<String>, ConfigError> {
    let list = string_list(key, v)?;
    for (i, s) in list.iter().enumerate() {
        check_regex(&format!("{key}[{i}]"), s)?;
    }
    Ok(list)
}

/// Go's `:8081` (all interfaces) becomes `0.0.0.0:8081`.
fn listen_addr(s: &str) -> String {
    if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    }
}

/// `~` and `~/…` relative to `$HOME`, as Aperture does for `basedir`.
fn expand_home(p: &str) -> String {
    let rest = match p.strip_prefix('~') {
        Some(r) if r.is_empty() || r.starts_with('/') => r,
        _ => return p.to_owned(),
    };
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() => format!("{}{rest}", home.trim_end_matches('/')),
        _ => p.to_owned(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses a Go `time.ParseDuration` string: `1s`, `1m30s`, `1.5h`, `500ms`, `0`.
fn go_duration(key: &str, s: &str) -> Result<Duration, ConfigError> {
    let bad = || {
        ConfigError::new(
            key,
            format!("{s:?} is not a duration like \"1s\", \"1m\" or \"1h30m\""),
        )
    };
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.starts_with('-') {
        return Err(ConfigError::new(key, format!("{s:?} is negative")));
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut rest = t;
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let units: [(&str, f64); 8] = [
            ("ns", 1.0),
            ("us", 1e3),
            ("µs", 1e3),
            ("μs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 60e9),
            ("h", 3600e9),
        ];
        let (unit, scale) = units
            .iter()
            .find(|(u, _)| rest.starts_with(u))
            .ok_or_else(bad)?;
        nanos += number * scale;
        rest = &rest[unit.len()..];
    }
    if !nanos.is_finite() || nanos > 1e18 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// A duration in the largest whole unit our parser reads back exactly.
fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| go_duration("k", s).unwrap();
        assert_eq!(d("1s"), Duration::from_secs(1));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("0"), Duration::ZERO);
        for bad in ["", "5", "1x", "-1s", "s"] {
            assert!(go_duration("k", bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(60)), "60s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_nanos(10)), "10ns");
    }

    #[test]
    fn encoding_and_names() {
        assert_eq!(percent_encode("a b@c:d/é"), "a%20b%40c%3Ad%2F%C3%A9");
        assert_eq!(edit_distance("enbled", "enabled"), 1);
        assert_eq!(listen_addr(":8081"), "0.0.0.0:8081");
        assert_eq!(listen_addr("localhost:8081"), "localhost:8081");
        assert_eq!(expand_home("/x/~"), "/x/~");
    }

    #[test]
    fn detection() {
        let v = |s: &str| -> Value { serde_saphyr::from_str(s).unwrap() };
        assert!(looks_like_aperture(&v("listenaddr: x")));
        assert!(looks_like_aperture(&v("services: [{address: x}]")));
        assert!(looks_like_aperture(&v("insecure: true")));
        assert!(!looks_like_aperture(&v("services: [{upstream: x}]")));
        assert!(!looks_like_aperture(&v("listen: x")));
    }
}
