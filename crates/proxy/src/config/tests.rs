use super::*;

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    let (raw, dialect, _) = Config::parse(yaml, false)?;
    assert_eq!(dialect, Dialect::Native);
    Config::from_raw(&raw, Path::new("/etc/l402"))
}

const MINIMAL: &str = "
services:
  - name: weather
    upstream: http://127.0.0.1:3000
";

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert!(c.tls.is_none());
    assert_eq!(c.lightning.expose(), "devnode:");
    assert_eq!(c.store.expose(), "sqlite:/etc/l402/l402.db");
    assert!(c.challenge.lsat_line);
    assert!(!c.challenge.invalid_is_challenge);
    let s = &c.services[0];
    assert_eq!(s.protocol, UpstreamProtocol::Http);
    assert_eq!(s.upstream_authority, "127.0.0.1:3000");
    assert_eq!(s.auth, AuthLevel::On);
    assert_eq!(s.price, Msat::from_sat(1));
    assert_eq!(s.upstream_timeout, Duration::from_secs(30));
}

#[test]
fn full_config_in_yaml_and_toml() {
    let yaml = r#"
listen: 0.0.0.0:8443
tls: { self_signed_dir: tls, hosts: [api.example.com] }
metrics: { listen: 127.0.0.1:9090, admin_token: "s3cret-s3cret-s3cret" }
lightning: "lnbits://key@127.0.0.1:5000"
store: postgres://l402@db/l402
challenge: { lsat_line: false, spec_params: true, invalid_credential: challenge, invoice_expiry: 10m }
network: { trusted_proxies: [10.0.0.0/8, "192.168.1.1"], proxy_protocol: true, blocklist: ["203.0.113.7"] }
limits: { challenges_per_ip: 30/min, challenges_burst: 5, ipv4_prefix: 32 }
services:
  - name: weather
    host: '^api\.example\.com(:\d+)?$'
    path: ^/weather
    upstream: h2c://127.0.0.1:50051/base
    auth: freebie 3
    price_sat: 5
    prices: [{ path: ^/weather/premium, price_msat: 9000 }]
    free_paths: [^/weather/health$]
    no_challenge_paths: [^/weather/stream]
    headers: { X-Static: hello }
    rewrite_prefix: /v2
    tier: 2
    capabilities: [forecast, history]
    capability_paths: [{ path: ^/weather/history, capability: history }]
    constraints: { region: eu }
    token_lifetime: 30d
    rate_limits:
      - { per: token, rate: 10/s, burst: 20 }
      - { per: ip, rate: 100/min, path: ^/weather/search }
"#;
    let c = parse(yaml).unwrap();
    assert_eq!(c.listen.port(), 8443);
    assert!(
        matches!(c.tls, Some(TlsConfig::SelfSigned { ref dir, .. }) if dir == Path::new("/etc/l402/tls"))
    );
    assert_eq!(
        c.admin_token.as_ref().unwrap().expose(),
        "s3cret-s3cret-s3cret"
    );
    assert!(c.challenge.invalid_is_challenge && c.challenge.spec_params && !c.challenge.lsat_line);
    assert_eq!(c.challenge.invoice_expiry, Duration::from_secs(600));
    assert_eq!(c.trusted_proxies.len(), 2);
    assert!(c.proxy_protocol);
    assert_eq!(
        c.challenges_per_ip.unwrap(),
        Rate {
            count: 30,
            per: Duration::from_secs(60),
            burst: 5
        }
    );
    let s = &c.services[0];
    assert_eq!(s.protocol, UpstreamProtocol::H2c);
    assert_eq!(s.upstream_path, "/base/v2");
    assert_eq!(s.auth, AuthLevel::Freebie(3));
    assert_eq!(s.price, Msat::from_sat(5));
    assert_eq!(s.path_prices[0].1, Msat::new(9000));
    assert_eq!(s.headers[0].1, "hello");
    assert_eq!(s.token_lifetime, Some(Duration::from_secs(30 * 86400)));
    assert_eq!(s.rate_limits.len(), 2);
    assert!(format!("{c:?}").contains("<redacted>"));
    assert!(!format!("{c:?}").contains("s3cret"));
    let short = parse("metrics: {listen: 127.0.0.1:1, admin_token: \"\"}\nservices: [{name: a, upstream: http://x}]").unwrap_err();
    assert_eq!(short.key, "metrics.admin_token");

    let toml = r#"
listen = "127.0.0.1:9000"
[[services]]
name = "weather"
upstream = "http://127.0.0.1:3000"
price_msat = 1500
"#;
    let (raw, _, _) = Config::parse(toml, true).unwrap();
    let c = Config::from_raw(&raw, Path::new(".")).unwrap();
    assert_eq!(c.services[0].price, Msat::new(1500));
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            "services: [{name: a, upstream: http://x, pric: 3}]",
            "services[0]",
            "pric",
        ),
        ("lisen: x\nservices: []", "", "lisen"),
        (
            "services: [{name: a, upstream: ftp://x}]",
            "services[0].upstream",
            "ftp",
        ),
        (
            "services: [{name: a, upstream: http://x, path: '('}]",
            "services[0].path",
            "regex",
        ),
        (
            "services: [{name: a, upstream: http://x, auth: maybe}]",
            "services[0].auth",
            "freebie",
        ),
        (
            "services: [{name: 'a b', upstream: http://x}]",
            "services[0].name",
            "name",
        ),
        (
            "services: [{name: a, upstream: http://x}, {name: a, upstream: http://y}]",
            "services[1].name",
            "duplicate",
        ),
        (
            "services: [{name: a, upstream: http://x, rate_limits: [{per: user, rate: 1/s}]}]",
            "services[0].rate_limits[0].per",
            "user",
        ),
        (
            "services: [{name: a, upstream: http://x, rate_limits: [{per: ip, rate: often}]}]",
            "services[0].rate_limits[0].rate",
            "rate",
        ),
        (
            "services: [{name: a, upstream: http://x, token_lifetime: forever}]",
            "services[0].token_lifetime",
            "duration",
        ),
        (
            "services: [{name: a, upstream: http://x, headers: {X-K: 'env:L402_SURELY_UNSET_VAR'}}]",
            "services[0].headers.X-K",
            "L402_SURELY_UNSET_VAR",
        ),
        (
            "services: [{name: a, upstream: http://x, headers: {Transfer-Encoding: chunked}}]",
            "services[0].headers.Transfer-Encoding",
            "frames the request",
        ),
        (
            "services: [{name: a, upstream: http://x, constraints: {services: x}}]",
            "services[0].constraints.services",
            "reserved",
        ),
        (
            "network: {blocklist: [banana]}\nservices: [{name: a, upstream: http://x}]",
            "network.blocklist[0]",
            "banana",
        ),
        (
            "metrics: {admin_token: xxxxxxxxxxxxxxxxxxxx}\nservices: [{name: a, upstream: http://x}]",
            "metrics.admin_token",
            "metrics.listen",
        ),
        ("services: []", "services", "at least one"),
    ];
    for (yaml, key, needle) in cases {
        let err = parse(yaml).unwrap_err();
        assert!(
            err.key.starts_with(key),
            "{yaml}: key {:?} should start with {key:?} ({err})",
            err.key
        );
        assert!(
            err.to_string().contains(needle),
            "{yaml}: {err} should mention {needle:?}"
        );
    }
}

#[test]
fn value_sources() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k"), "abc\n").unwrap();
    std::fs::write(dir.path().join("bin"), [1u8, 2, 255]).unwrap();
    assert_eq!(resolve_value("k", "file:k", dir.path()).unwrap(), "abc");
    assert_eq!(
        resolve_value("k", "!file+hex:bin", dir.path()).unwrap(),
        "0102ff"
    );
    assert_eq!(
        resolve_value("k", "!file+base64:bin", dir.path()).unwrap(),
        "AQL/"
    );
    assert_eq!(
        resolve_value("k", "literal", dir.path()).unwrap(),
        "literal"
    );
    assert!(resolve_value("k", "!file+rot13:bin", dir.path()).is_err());
    assert!(
        resolve_value("k", "file:missing", dir.path())
            .unwrap_err()
            .to_string()
            .contains("missing")
    );
    // PATH is set in every test environment.
    let path = std::env::var("PATH").unwrap();
    assert_eq!(
        resolve_value("k", "x${PATH}y", dir.path()).unwrap(),
        format!("x{path}y")
    );
}

#[test]
fn yaml_booleans_for_auth() {
    for (v, want) in [
        ("on", AuthLevel::On),
        ("off", AuthLevel::Off),
        ("true", AuthLevel::On),
        ("no", AuthLevel::Off),
        ("'freebie 5'", AuthLevel::Freebie(5)),
    ] {
        let c = parse(&format!(
            "services: [{{name: a, upstream: http://x, auth: {v}}}]"
        ))
        .unwrap();
        assert_eq!(c.services[0].auth, want, "auth: {v}");
    }
}

#[test]
fn rates() {
    assert_eq!(
        parse_rate("k", "10/s", None).unwrap(),
        Rate {
            count: 10,
            per: Duration::from_secs(1),
            burst: 10
        }
    );
    assert_eq!(
        parse_rate("k", "5/30s", Some(1)).unwrap().per,
        Duration::from_secs(30)
    );
    assert!(parse_rate("k", "0/s", None).is_err());
    assert!(parse_rate("k", "10", None).is_err());
}
