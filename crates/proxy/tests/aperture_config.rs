//! Aperture's `aperture.yaml`, read as it is: mapping, refusals, warnings and YAML quirks,
//! through the public configuration API.

use std::path::Path;
use std::time::Duration;

use l402::Msat;
use l402_proxy::config::{
    AuthLevel, Config, ConfigError, Dialect, LimitKey, Rate, TlsConfig, UpstreamProtocol,
};

const BASE: &str = "/etc/aperture";

/// Parses as an Aperture file and validates; returns the warnings too.
fn load(yaml: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let (raw, dialect, warnings) = Config::parse(yaml, false)?;
    assert_eq!(dialect, Dialect::Aperture);
    Ok((Config::from_raw(&raw, Path::new(BASE))?, warnings))
}

fn err(yaml: &str) -> ConfigError {
    match load(yaml) {
        Ok(_) => panic!("should be refused:\n{yaml}"),
        Err(e) => e,
    }
}

/// The smallest file that loads: a listener, a node, a database, one service. The defaults for
/// `insecure`, `sqlite` and `price` give way when the test text sets them.
fn minimal(extra_top: &str, service: &str) -> String {
    let insecure = if extra_top.contains("insecure:") {
        ""
    } else {
        "insecure: true\n"
    };
    let sqlite = if extra_top.contains("sqlite:") {
        ""
    } else {
        "sqlite: { databasefilename: ap.db }\n"
    };
    let dbbackend = if extra_top.contains("dbbackend:") {
        ""
    } else {
        "dbbackend: sqlite\n"
    };
    let price = if service.contains("price:") {
        ""
    } else {
        "    price: 2\n"
    };
    format!(
        "listenaddr: 127.0.0.1:8081\n{insecure}{dbbackend}{sqlite}\
         authenticator: {{ backend: 'devnode:' }}\n{extra_top}\n\
         services:\n  - name: svc\n    address: 127.0.0.1:3000\n{price}{service}\n"
    )
}

const FULL: &str = r#"
# An operator's production file, written as Aperture documents it.
listenaddr: "0.0.0.0:8443"
servername: paywall.example.org
basedir: /var/lib/aperture
debuglevel: debug
dbbackend: postgres
postgres:
  host: db.internal
  port: 5433
  user: l402
  password: "p@ss:w/rd %20?#"
  dbname: aperture
  requiressl: true
  maxconnections: 10
prometheus:
  enabled: true
  listenaddr: "127.0.0.1:9100"
blocklist:
  - 198.51.100.23
  - "2001:db8::7"
authenticator:
  backend: "lnd+rest://node.internal:8080?macaroon=/secrets/invoice.macaroon&cert=/secrets/tls.cert"
  network: mainnet
services:
  - name: quotes
    hostregexp: '^paywall\.example\.org(:\d+)?$'
    pathregexp: '^/quotes/'
    address: "quotes.internal:9000"
    protocol: https
    tlscertpath: /secrets/quotes-ca.pem
    auth: "freebie 3"
    price: 25
    authwhitelistpaths:
      - '^/quotes/health$'
    authskipinvoicecreationpaths:
      - '^/quotes/stream'
    headers:
      X-Api-Key: "!file+hex:/secrets/quotes.key"
      X-Static: "fixed"
    rewrite:
      prefix: /api/v1
    capabilities: "read, history"
    constraints:
      tier_name: "gold"
      valid_until: 1682483169
    timeout: 86400
    ratelimits:
      - pathregexp: '^/quotes/search'
        requests: 10
        per: 1s
        burst: 20
      - requests: 600
        per: 1m
  - name: grpc
    pathregexp: '^/pkg\.Service/'
    address: "127.0.0.1:50051"
    protocol: h2c
    auth: on
    price: 1000
  - name: health
    pathregexp: '^/status'
    address: "127.0.0.1:8000"
    auth: off
"#;

#[test]
fn a_full_file_maps_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quotes.key"), [0x01, 0xab]).unwrap();
    let full = FULL.replace(
        "/secrets/quotes.key",
        &dir.path().join("quotes.key").display().to_string(),
    );
    let (c, warnings) = load(&full).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:8443");
    // insecure not set: TLS with a self-signed certificate in basedir, servername added.
    assert_eq!(
        c.tls,
        Some(TlsConfig::SelfSigned {
            dir: "/var/lib/aperture".into(),
            hosts: vec!["paywall.example.org".into()],
        })
    );
    assert_eq!(
        c.store.expose(),
        "postgres://l402:p%40ss%3Aw%2Frd%20%2520%3F%23@db.internal:5433/aperture?sslmode=require"
    );
    assert_eq!(c.metrics_listen.unwrap().to_string(), "127.0.0.1:9100");
    assert!(c.admin_token.is_none());
    assert_eq!(
        c.blocklist
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["198.51.100.23/32", "2001:db8::7/128"]
    );
    assert_eq!(
        c.lightning.expose(),
        "lnd+rest://node.internal:8080?macaroon=/secrets/invoice.macaroon&cert=/secrets/tls.cert"
    );
    // Aperture answers an invalid credential with a new challenge.
    assert!(c.challenge.invalid_is_challenge);
    assert!(c.challenge.lsat_line);
    assert!(c.trusted_proxies.is_empty());
    assert_eq!(c.services.len(), 3);

    let q = &c.services[0];
    assert_eq!(q.name, "quotes");
    assert_eq!(
        q.host.as_ref().unwrap().as_str(),
        r"^paywall\.example\.org(:\d+)?$"
    );
    assert_eq!(q.path.as_ref().unwrap().as_str(), "^/quotes/");
    assert_eq!(q.protocol, UpstreamProtocol::Https);
    assert_eq!(q.upstream_authority, "quotes.internal:9000");
    assert_eq!(q.upstream_path, "/api/v1");
    assert_eq!(
        q.upstream_ca.as_deref(),
        Some(Path::new("/secrets/quotes-ca.pem"))
    );
    assert_eq!(q.auth, AuthLevel::Freebie(3));
    assert_eq!(q.price, Msat::from_sat(25));
    assert!(q.path_prices.is_empty() && q.pricer.is_none());
    assert_eq!(q.free_paths.len(), 1);
    assert_eq!(q.free_paths[0].as_str(), "^/quotes/health$");
    assert_eq!(q.no_challenge_paths[0].as_str(), "^/quotes/stream");
    assert_eq!(
        q.capabilities.as_deref(),
        Some(&["read".to_owned(), "history".to_owned()][..])
    );
    assert_eq!(
        q.constraints,
        [
            ("tier_name".to_owned(), "gold".to_owned()),
            ("valid_until".to_owned(), "1682483169".to_owned()),
        ]
    );
    assert_eq!(q.token_lifetime, Some(Duration::from_secs(86400)));
    assert_eq!(q.tier, 0);
    assert_eq!(q.rate_limits.len(), 2);
    let r = &q.rate_limits[0];
    assert_eq!(r.key, LimitKey::Token);
    assert_eq!(
        r.rate,
        Rate {
            count: 10,
            per: Duration::from_secs(1),
            burst: 20
        }
    );
    assert_eq!(r.path.as_ref().unwrap().as_str(), "^/quotes/search");
    let r = &q.rate_limits[1];
    assert_eq!(
        r.rate,
        Rate {
            count: 600,
            per: Duration::from_secs(60),
            burst: 600
        }
    );
    assert!(r.path.is_none());

    let g = &c.services[1];
    assert_eq!(g.protocol, UpstreamProtocol::H2c);
    assert_eq!(g.upstream_authority, "127.0.0.1:50051");
    assert_eq!(g.auth, AuthLevel::On);
    assert_eq!(g.price, Msat::from_sat(1000));
    assert!(g.host.is_none() && g.capabilities.is_none() && g.token_lifetime.is_none());

    let h = &c.services[2];
    assert_eq!(h.protocol, UpstreamProtocol::Http);
    assert_eq!(h.auth, AuthLevel::Off);
    assert_eq!(h.price, Msat::from_sat(1));

    let has = |needle: &str| warnings.iter().any(|w| w.contains(needle));
    assert!(has("debuglevel: ignored"), "{warnings:#?}");
    assert!(has("authenticator.network: ignored"), "{warnings:#?}");
    assert!(has("postgres.maxconnections: ignored"), "{warnings:#?}");
    assert!(has(
        "services[0].protocol: the upstream's TLS certificate is verified"
    ));
    assert!(has("402"), "the invalid-credential warning: {warnings:#?}");
    // No price warning for an auth: off service; none about dbbackend (it is given).
    assert!(!has("services[2].price"), "{warnings:#?}");
    assert!(!has("dbbackend"), "{warnings:#?}");
    // Header directives are passed through to the raw form, then resolved.
    let (raw, _, _) = Config::parse(FULL, false).unwrap();
    assert_eq!(
        raw.services[0].headers["X-Api-Key"],
        "!file+hex:/secrets/quotes.key"
    );
    let headers: Vec<_> = q
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    assert_eq!(headers, [("x-api-key", "01ab"), ("x-static", "fixed")]);
}

#[test]
fn header_directives_are_resolved_like_aperture() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.bin"), [0xde, 0xad]).unwrap();
    let yaml = minimal(
        "",
        &format!(
            "    headers:\n      X-Hex: '!file+hex:{0}/key.bin'\n      X-B64: '!file+base64:{0}/key.bin'\n      X-Num: 42\n",
            dir.path().display()
        ),
    );
    let (c, _) = load(&yaml).unwrap();
    let get = |n: &str| {
        c.services[0]
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(get("x-hex"), "dead");
    assert_eq!(get("x-b64"), "3q0=");
    assert_eq!(get("x-num"), "42");
}

#[test]
fn tls_choices() {
    let top = |t: &str| {
        format!(
            "listenaddr: ':8081'\n{t}\nauthenticator: {{ backend: 'devnode:' }}\n\
             services: [{{ name: a, address: 'h:1' }}]\n"
        )
    };
    let (c, w) = load(&top("insecure: true\nbasedir: /srv/ap")).unwrap();
    assert_eq!(c.tls, None);
    assert_eq!(c.listen.to_string(), "0.0.0.0:8081");
    assert!(
        w.iter().any(|w| w.starts_with("basedir: ignored")),
        "{w:#?}"
    );

    let (c, _) = load(&top(
        "tlscertpath: certs/fullchain.pem\ntlskeypath: certs/key.pem",
    ))
    .unwrap();
    assert_eq!(
        c.tls,
        Some(TlsConfig::Files {
            cert: "/etc/aperture/certs/fullchain.pem".into(),
            key: "/etc/aperture/certs/key.pem".into(),
        })
    );

    let (c, _) = load(&top("insecure: false")).unwrap();
    assert_eq!(
        c.tls,
        Some(TlsConfig::SelfSigned {
            dir: BASE.into(),
            hosts: vec![],
        })
    );

    let e = err(&top("tlscertpath: c.pem"));
    assert_eq!(e.key, "tlscertpath");
    assert!(e.message.contains("tlskeypath"));
}

#[test]
fn sqlite_accepts_both_spellings() {
    for (section, warns) in [
        ("sqlite: { dbfile: /data/ap.db }", true),
        ("sqlite: { databasefilename: /data/ap.db }", false),
        (
            "sqlite: { dbfile: /data/ap.db, databasefilename: /data/ap.db }",
            true,
        ),
    ] {
        let (c, w) = load(&minimal(section, "")).unwrap();
        assert_eq!(c.store.expose(), "sqlite:/data/ap.db", "{section}");
        assert_eq!(
            w.iter().any(|w| w.starts_with("sqlite.dbfile:")),
            warns,
            "{section}: {w:#?}"
        );
    }
    // No path: our default file beside the configuration, said in a warning.
    let (c, w) = load(&minimal("sqlite: { skipmigrations: true }", "")).unwrap();
    assert_eq!(c.store.expose(), "sqlite:/etc/aperture/l402.db");
    assert!(w.iter().any(|w| w.starts_with("sqlite: no database file")));
    assert!(
        w.iter()
            .any(|w| w.starts_with("sqlite.skipmigrations: ignored"))
    );
}

#[test]
fn dbbackend_defaults_to_sqlite_with_a_warning() {
    let yaml = minimal("", "").replace("dbbackend: sqlite\n", "");
    let (c, w) = load(&yaml).unwrap();
    assert!(c.store.expose().starts_with("sqlite:"));
    assert!(
        w.iter()
            .any(|w| w.starts_with("dbbackend:") && w.contains("etcd")),
        "{w:#?}"
    );
}

#[test]
fn postgres_urls() {
    let pg = |section: &str| {
        let yaml = minimal(&format!("postgres: {section}"), "")
            .replace("dbbackend: sqlite", "dbbackend: postgres");
        load(&yaml).map(|(c, w)| (c.store.expose().to_owned(), w))
    };
    let (url, _) =
        pg("{ host: localhost, user: ap, password: 'a b/c@d:e%f', dbname: 'my db' }").unwrap();
    assert_eq!(
        url,
        "postgres://ap:a%20b%2Fc%40d%3Ae%25f@localhost/my%20db?sslmode=disable"
    );
    // Aperture's documented spelling requireSSL is honoured (and flagged: Aperture ignores it).
    let (url, w) = pg("{ host: '::1', port: 5432, dbname: ap, requireSSL: true }").unwrap();
    assert_eq!(url, "postgres://[::1]:5432/ap?sslmode=require");
    assert!(w.iter().any(|w| w.starts_with("postgres.requireSSL:")));
    let (url, _) =
        pg("{ host: /run/postgresql, user: ap, dbname: ap, maxopenconnections: 5 }").unwrap();
    assert_eq!(
        url,
        "postgres://ap@localhost/ap?sslmode=disable&host=%2Frun%2Fpostgresql"
    );
    let e = pg("{ user: ap }").unwrap_err();
    assert_eq!(e.key, "postgres.host");
    let e = pg("{ host: h, requiressl: true, requireSSL: false }").unwrap_err();
    assert_eq!(e.key, "postgres.requireSSL");
}

#[test]
fn yaml_quirks() {
    // auth values: YAML booleans, Aperture's strings, any case.
    for (v, want) in [
        ("on", AuthLevel::On),
        ("true", AuthLevel::On),
        ("'on'", AuthLevel::On),
        ("'ON'", AuthLevel::On),
        ("''", AuthLevel::On),
        ("off", AuthLevel::Off),
        ("false", AuthLevel::Off),
        // YAML 1.1 words arrive as booleans here; Aperture's parser keeps them as strings and
        // then (for "yes") serves without payment. Reading them as on/off is the safe side.
        ("yes", AuthLevel::On),
        ("no", AuthLevel::Off),
        ("'false'", AuthLevel::Off),
        ("freebie 3", AuthLevel::Freebie(3)),
        ("'Freebie 0'", AuthLevel::Freebie(0)),
    ] {
        let (c, _) = load(&minimal("", &format!("    auth: {v}"))).unwrap();
        assert_eq!(c.services[0].auth, want, "auth: {v}");
    }
    // `auth:` with no value is Aperture's default: on.
    let (c, _) = load(&minimal("", "    auth:")).unwrap();
    assert_eq!(c.services[0].auth, AuthLevel::On);

    // Scalars into string fields: numbers and booleans become their text.
    let (c, _) = load(&minimal(
        "",
        "    constraints: { valid_until: 1682483169, ratio: 0.5, beta: true }\n    capabilities: 7",
    ))
    .unwrap();
    assert_eq!(
        c.services[0].constraints,
        [
            ("beta".to_owned(), "true".to_owned()),
            ("ratio".to_owned(), "0.5".to_owned()),
            ("valid_until".to_owned(), "1682483169".to_owned()),
        ]
    );
    assert_eq!(
        c.services[0].capabilities.as_deref(),
        Some(&["7".to_owned()][..])
    );

    // Numbers written as strings, and booleans written as strings.
    let (c, _) = load(&minimal(
        "prometheus: { enabled: 'true', listenaddr: ':9090' }",
        "    timeout: '60'",
    ))
    .unwrap();
    assert_eq!(c.services[0].token_lifetime, Some(Duration::from_secs(60)));
    assert_eq!(c.metrics_listen.unwrap().to_string(), "0.0.0.0:9090");

    // Go durations in rate limits.
    let (c, _) = load(&minimal(
        "",
        "    ratelimits: [{ requests: 3, per: 1m30s }, { requests: 5, per: 500ms }]",
    ))
    .unwrap();
    assert_eq!(
        c.services[0].rate_limits[0].rate.per,
        Duration::from_secs(90)
    );
    assert_eq!(
        c.services[0].rate_limits[1].rate.per,
        Duration::from_millis(500)
    );
}

#[test]
fn price_zero_or_missing_is_one_sat_with_a_warning() {
    for price in ["    price: 0", ""] {
        let yaml = minimal("", price).replace("    price: 2\n", "");
        let (c, w) = load(&yaml).unwrap();
        assert_eq!(c.services[0].price, Msat::from_sat(1), "{price:?}");
        assert!(
            w.iter()
                .any(|w| w.starts_with("services[0].price:") && w.contains("1 sat")),
            "{w:#?}"
        );
    }
}

#[test]
fn authenticator_disable_needs_every_service_off() {
    let yaml = "listenaddr: 127.0.0.1:1\ninsecure: true\nauthenticator: { disable: true }\n\
                services: [{ name: a, address: 'h:1', auth: off }, { name: b, address: 'h:2', auth: false }]";
    let (c, _) = load(yaml).unwrap();
    assert!(c.services.iter().all(|s| s.auth == AuthLevel::Off));
}

#[test]
fn errors_name_the_key() {
    let lnd = "authenticator: { lndhost: 'lnd:10009', tlspath: /l/tls.cert, macdir: /l/mac }";
    // (top-level text, service text, key, needle in the message)
    let cases: &[(&str, &str, &str, &str)] = &[
        // unknown keys at every level
        (
            "",
            "    pricee: 3",
            "services[0].pricee",
            "did you mean price?",
        ),
        ("listenadr: x", "", "listenadr", "unknown Aperture key"),
        ("listen: 127.0.0.1:1", "", "listen", "native format"),
        (
            "sqlite: { dbpath: x }",
            "",
            "sqlite.dbpath",
            "unknown Aperture key",
        ),
        (
            "postgres: { hots: x }",
            "",
            "postgres.hots",
            "did you mean host?",
        ),
        (
            "prometheus: { enable: true }",
            "",
            "prometheus.enable",
            "enabled",
        ),
        (
            "",
            "    rewrite: { prefx: /a }",
            "services[0].rewrite.prefx",
            "prefix",
        ),
        (
            "",
            "    ratelimits: [{ requests: 1, per: 1s }, { requests: 1, per: 1s, brust: 2 }]",
            "services[0].ratelimits[1].brust",
            "burst",
        ),
        (
            "",
            "    dynamicprice: { enbled: true, grpcaddress: 'p:1' }",
            "services[0].dynamicprice.enbled",
            "did you mean enabled?",
        ),
        ("tor: { v4: true }", "", "tor.v4", "unknown"),
        ("admin: { enable: true }", "", "admin.enable", "unknown"),
        (
            "hashmail: { enabld: true }",
            "",
            "hashmail.enabld",
            "unknown",
        ),
        // refused features
        ("autocert: true", "", "autocert", "tlscertpath"),
        (
            "servestatic: true\nstaticroot: /www",
            "",
            "servestatic",
            "auth: off",
        ),
        ("tor: { v3: true, listenport: 8082 }", "", "tor.v3", "tor"),
        (
            "hashmail: { enabled: true }",
            "",
            "hashmail.enabled",
            "Lightning Node Connect",
        ),
        (
            "admin: { enabled: true }",
            "",
            "admin.enabled",
            "metrics.admin_token",
        ),
        (
            "",
            "    dynamicprice: { enabled: true, grpcaddress: 'p:1' }",
            "services[0].dynamicprice.enabled",
            "pricer",
        ),
        (
            "",
            "    authscheme: l402+mpp",
            "services[0].authscheme",
            "MPP",
        ),
        // auth values Aperture would silently treat as "no authentication"
        (
            "",
            "    auth: required",
            "services[0].auth",
            "without any payment",
        ),
        ("", "    auth: 'freebie'", "services[0].auth", "freebie N"),
        ("", "    auth: 'freebie x'", "services[0].auth", "freebie N"),
        // upstream
        ("", "    protocol: grpc", "services[0].protocol", "h2c"),
        ("", "    pathregexp: '('", "services[0].pathregexp", "regex"),
        ("", "    hostregexp: '['", "services[0].hostregexp", "regex"),
        (
            "",
            "    authwhitelistpaths: ['^/ok', '(']",
            "services[0].authwhitelistpaths[1]",
            "regex",
        ),
        (
            "",
            "    authskipinvoicecreationpaths: ['(']",
            "services[0].authskipinvoicecreationpaths[0]",
            "regex",
        ),
        (
            "",
            "    rewrite: { prefix: api }",
            "services[0].rewrite.prefix",
            "starting with /",
        ),
        ("", "    price: -5", "services[0].price", "negative"),
        ("", "    price: 1.5", "services[0].price", "whole number"),
        ("", "    timeout: -1", "services[0].timeout", "negative"),
        (
            "",
            "    ratelimits: [{ requests: 0, per: 1s }]",
            "services[0].ratelimits[0].requests",
            "positive",
        ),
        (
            "",
            "    ratelimits: [{ requests: 5, per: 5 }]",
            "services[0].ratelimits[0].per",
            "duration",
        ),
        (
            "",
            "    ratelimits: [{ requests: 5 }]",
            "services[0].ratelimits[0].per",
            "required",
        ),
        (
            "",
            "    ratelimits: [{ requests: 5, per: 1s, burst: -1 }]",
            "services[0].ratelimits[0].burst",
            "positive",
        ),
        (
            "",
            "    headers: { 'Bad Header': x }",
            "services[0].headers.Bad Header",
            "header name",
        ),
        (
            "",
            "    constraints: { svc_capabilities: x }",
            "services[0].constraints.svc_capabilities",
            "reserved",
        ),
        // storage
        (
            "dbbackend: etcd\netcd: { host: 'e:2379' }",
            "",
            "dbbackend",
            "sqlite",
        ),
        ("dbbackend: mysql", "", "dbbackend", "mysql"),
        (
            "sqlite: { dbfile: a.db, databasefilename: b.db }",
            "",
            "sqlite.dbfile",
            "databasefilename",
        ),
        // the network
        (
            "blocklist: [203.0.113.9, bogus]",
            "",
            "blocklist[1]",
            "bogus",
        ),
        (
            "prometheus: { enabled: true }",
            "",
            "prometheus.listenaddr",
            "required",
        ),
        ("insecure: maybe", "", "insecure", "true or false"),
    ];
    for (top, service, key, needle) in cases {
        let e = err(&minimal(top, service));
        assert_eq!(e.key, *key, "{top} {service}: {e}");
        assert!(
            e.message.contains(needle),
            "{top} {service}: {e} should mention {needle:?}"
        );
    }

    // Cases that replace parts of the minimal file.
    let without_backend = minimal("", "").replace("authenticator: { backend: 'devnode:' }\n", "");
    let full_cases: Vec<(String, &str, &str)> = vec![
        (without_backend.clone(), "authenticator.backend", "required"),
        (
            without_backend.replace(
                "listenaddr: 127.0.0.1:8081\n",
                &format!("listenaddr: 127.0.0.1:8081\n{lnd}\n"),
            ),
            "authenticator.lndhost",
            "lnd+rest://lnd:8080?macaroon=/l/mac/invoice.macaroon&cert=/l/tls.cert",
        ),
        (
            minimal("", "").replace("backend: 'devnode:'", "backend: 'devnode:', macdir: /l/mac"),
            "authenticator.macdir",
            "remove it",
        ),
        (
            minimal("", "").replace(
                "backend: 'devnode:'",
                "backend: 'devnode:', passphrase: 'a b c'",
            ),
            "authenticator.passphrase",
            "Lightning Node Connect",
        ),
        (
            minimal("", "").replace(
                "backend: 'devnode:'",
                "backend: 'devnode:', mailboxaddress: 'm:443'",
            ),
            "authenticator.mailboxaddress",
            "Lightning Node Connect",
        ),
        (
            minimal("", "").replace(
                "backend: 'devnode:'",
                "backend: 'devnode:', enablempp: true",
            ),
            "authenticator.enablempp",
            "MPP",
        ),
        (
            minimal("", "").replace("backend: 'devnode:'", "backend: 'devnode:', lnd: x"),
            "authenticator.lnd",
            "unknown Aperture key",
        ),
        (
            minimal("", "").replace("backend: 'devnode:'", "disable: true"),
            "authenticator.disable",
            "services[0]",
        ),
        (
            minimal("", "").replace("listenaddr: 127.0.0.1:8081\n", ""),
            "listenaddr",
            "required",
        ),
        (
            minimal("", "").replace("    address: 127.0.0.1:3000\n", ""),
            "services[0].address",
            "required",
        ),
        (
            minimal("", "").replace("address: 127.0.0.1:3000", "address: http://127.0.0.1:3000"),
            "services[0].address",
            "host:port",
        ),
        (
            minimal("", "").replace("name: svc", "name: 'my svc'"),
            "services[0].name",
            "name",
        ),
        (
            minimal("", "").replace("dbbackend: sqlite", "dbbackend: postgres"),
            "postgres",
            "missing",
        ),
    ];
    for (yaml, key, needle) in full_cases {
        let e = err(&yaml);
        assert_eq!(e.key, key, "{yaml}\n{e}");
        assert!(e.message.contains(needle), "{e} should mention {needle:?}");
    }
}

#[test]
fn ignored_keys_warn_and_say_why() {
    // (top-level text, service text, warning prefix)
    let cases: &[(&str, &str, &str)] = &[
        ("debuglevel: trace", "", "debuglevel: ignored"),
        (
            "logging: { console: { level: debug, callsite: off }, file: { disable: true } }",
            "",
            "logging: ignored",
        ),
        ("profile: 9736", "", "profile: ignored"),
        ("idletimeout: 2m", "", "idletimeout: ignored"),
        ("readtimeout: 15s", "", "readtimeout: ignored"),
        ("writetimeout: 30s", "", "writetimeout: ignored"),
        ("wspinginterval: 30s", "", "wspinginterval: ignored"),
        ("wspongwait: 15s", "", "wspongwait: ignored"),
        ("invoicebatchsize: 1000", "", "invoicebatchsize: ignored"),
        ("strictverify: true", "", "strictverify: ignored"),
        ("staticroot: /www", "", "staticroot: ignored"),
        ("configfile: /x/aperture.yaml", "", "configfile: ignored"),
        ("autocert: false", "", "autocert: ignored"),
        ("servestatic: false", "", "servestatic: ignored"),
        ("tor: { v3: false, listenport: 8082 }", "", "tor: ignored"),
        (
            "hashmail: { enabled: false, messagerate: 20ms }",
            "",
            "hashmail: ignored",
        ),
        (
            "admin: { enabled: false, corsorigin: '*' }",
            "",
            "admin: ignored",
        ),
        (
            "prometheus: { enabled: false, listenaddr: ':9090' }",
            "",
            "prometheus: ignored",
        ),
        ("etcd: { host: 'e:2379' }", "", "etcd: ignored"),
        ("postgres: { host: h }", "", "postgres: ignored"),
        (
            "sqlite: { dbfile: a.db, skipmigrations: true }",
            "",
            "sqlite.skipmigrations: ignored",
        ),
        (
            "insecure: true\ntlscertpath: c.pem",
            "",
            "tlscertpath: ignored",
        ),
        ("servername: a.example", "", "servername: ignored"),
        (
            "",
            "    dynamicprice: { enabled: false, grpcaddress: 'p:1' }",
            "services[0].dynamicprice: ignored",
        ),
        (
            "",
            "    tlscertpath: ca.pem",
            "services[0].tlscertpath: ignored",
        ),
        (
            "",
            "    headers: { X-K: 'env:HOME' }",
            "services[0].headers.X-K: this value is read",
        ),
    ];
    for (top, service, prefix) in cases {
        let (_, w) =
            load(&minimal(top, service)).unwrap_or_else(|e| panic!("{top} {service}: {e}"));
        assert!(
            w.iter().any(|w| w.starts_with(prefix)),
            "{top} {service}: no warning starting with {prefix:?} in {w:#?}"
        );
    }

    // authenticator keys that only Aperture's node connection or MPP need.
    let yaml = minimal("", "").replace(
        "backend: 'devnode:'",
        "backend: 'devnode:', network: regtest, disable: false, devserver: true, enablempp: false, \
         mpprealm: r, sessionidletimeout: 300, lndhost: ''",
    );
    let (_, w) = load(&yaml).unwrap();
    for k in [
        "network",
        "disable",
        "devserver",
        "enablempp",
        "mpprealm",
        "sessionidletimeout",
        "lndhost",
    ] {
        assert!(
            w.iter()
                .any(|w| w.starts_with(&format!("authenticator.{k}: ignored"))),
            "{k}: {w:#?}"
        );
    }
}

#[test]
fn the_invalid_credential_warning_is_always_given() {
    let (c, w) = load(&minimal("", "")).unwrap();
    assert!(c.challenge.invalid_is_challenge);
    assert!(
        w.iter()
            .any(|w| w.contains("fresh 402 challenge") && w.contains("401"))
    );
    assert_eq!(w.len(), 1, "a clean file gets only that warning: {w:#?}");
}

#[test]
fn native_files_are_not_mistaken_for_aperture() {
    let (_, dialect, w) =
        Config::parse("services: [{ name: a, upstream: 'http://h:1' }]", false).unwrap();
    assert_eq!(dialect, Dialect::Native);
    assert!(w.is_empty());
    // A file without listenaddr but with Aperture service keys is still read as one: the error
    // is Aperture's missing listenaddr, not an unknown native key.
    let e = Config::parse("services: [{ name: a, address: 'h:1' }]", false).unwrap_err();
    assert_eq!(e.key, "listenaddr");
    assert!(e.message.contains("aperture.yaml"), "{e}");
}
