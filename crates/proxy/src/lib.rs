//! An L402 reverse proxy: put a Lightning paywall in front of any HTTP or gRPC API without
//! touching it — Aperture's feature set, its `aperture.yaml`, and what it lacks.
//!
//! ```text
//! accept (TLS with ALPN h2/http1.1, or plaintext h1 + h2c; optional PROXY protocol v2)
//!   → client IP (trusted proxies: Forwarded / X-Forwarded-For)
//!   → route table snapshot (ArcSwap; hot reload never blocks a request)
//!   → blocklist 403 → route 404 → per-IP limits 429
//!   → free path | auth off | freebie  → free
//!   → L402 layer (l402-tower): verify with cached root keys, or mint a challenge
//!        (price: static | per path | pricer hook; challenge limit per client network; invoice;
//!         root key durable first) — 402 / 401 / 503, gRPC as trailers-only responses
//!   → per-token limits 429 → upstream (pooled; http | verified https | h2c; streaming both
//!        ways; trailers; WebSocket upgrades) — 502 / 504
//! ```
//!
//! What it does that Aperture does not: never re-challenges (and so never invites a second
//! payment) when the store or the Lightning node is down — it answers 503; keeps verified root
//! keys in memory; believes forwarding headers only from trusted proxies; reloads its
//! configuration without stalling traffic; verifies upstream TLS; enforces every caveat it
//! mints; limits how many challenges one client network may mint; speaks to every backend of the
//! toolkit.

pub mod client_ip;
pub mod config;
mod front;
mod h1;
mod handler;
mod limits;
pub mod ops;
mod park;
mod pool;
mod pricer;
mod route;
mod server;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use l402::SharedIssuer;
use l402_store::{Revocation, Store};
use l402_tower::{Authority, AuthorityOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, Dialect};
pub use route::ProxyAuthority;
pub use upstream::{Body, BoxError};

use crate::handler::Shared;
use crate::route::RouteTable;

/// A failure to start the proxy.
#[derive(Debug)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// A bound, not yet running proxy.
pub struct Proxy {
    config: Config,
    config_path: Option<PathBuf>,
    listener: TcpListener,
    ops_listener: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    store: Store,
}

impl Proxy {
    /// Binds the listeners and builds the route table. `issuer` issues the invoices (the
    /// program resolves `config.lightning` into it); `store` keeps root keys.
    ///
    /// `config_path` enables hot reload: on `SIGHUP` and whenever the file changes, it is read
    /// again and, if valid, its services replace the running ones.
    pub async fn bind(
        config: Config,
        config_path: Option<PathBuf>,
        issuer: SharedIssuer,
        store: Store,
    ) -> Result<Proxy, StartError> {
        let options = AuthorityOptions {
            location: config.challenge.location.clone(),
            invoice_expiry: config.challenge.invoice_expiry,
            challenge_format: l402::ChallengeFormat {
                lsat_line: config.challenge.lsat_line,
                spec_params: config.challenge.spec_params,
            },
            strict_caveats: config.challenge.strict_caveats,
            ..AuthorityOptions::default()
        };
        let authority = Authority::new(issuer, store.clone(), options);
        // The recorder first: the route table registers its metric handles with it.
        ops::prometheus();
        let table = RouteTable::build(&config, &authority).map_err(StartError)?;
        let tls = config
            .tls
            .as_ref()
            .map(server::tls_acceptor)
            .transpose()
            .map_err(|e| StartError(format!("tls: {e}")))?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
        let ops_listener =
            match config.metrics_listen {
                Some(a) => Some(TcpListener::bind(a).await.map_err(|e| {
                    StartError(format!("cannot listen on {a} (metrics.listen): {e}"))
                })?),
                None => None,
            };
        Ok(Proxy {
            config,
            config_path,
            listener,
            ops_listener,
            tls,
            shared: Arc::new(Shared {
                table: ArcSwap::from_pointee(table),
                authority,
            }),
            store,
        })
    }

    /// The main listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound socket")
    }

    /// The operations listener's address.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops_listener
            .as_ref()
            .map(|l| l.local_addr().expect("bound socket"))
    }

    /// The authority (for revocations and tests).
    pub fn authority(&self) -> &ProxyAuthority {
        &self.shared.authority
    }

    /// Serves until `shutdown` is cancelled, then drains requests in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let Proxy {
            config,
            config_path,
            listener,
            ops_listener,
            tls,
            shared,
            store,
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        // Revocations (local and, on PostgreSQL, from other instances) drop cached keys.
        {
            let authority = shared.authority.clone();
            let mut rx = store.revocations();
            let stop = shutdown.clone();
            tasks.spawn(async move {
                loop {
                    let r = tokio::select! { r = rx.recv() => r, () = stop.cancelled() => return };
                    match r {
                        Ok(Revocation::Key(k)) => authority.invalidate(&k),
                        Ok(Revocation::All)
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            authority.invalidate_all();
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
        }
        // Unpaid, expired challenges are removed (after asking the issuer).
        if let Some(every) = config.cleanup_interval {
            let store = store.clone();
            let authority = shared.authority.clone();
            let stop = shutdown.clone();
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tokio::select! { _ = tick.tick() => {}, () = stop.cancelled() => return }
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    match store
                        .cleanup(authority.issuer(), now, Duration::from_secs(3600), 1000)
                        .await
                    {
                        Ok(r) if r.deleted + r.found_paid > 0 => {
                            tracing::info!(
                                deleted = r.deleted,
                                found_paid = r.found_paid,
                                deferred = r.deferred,
                                "cleaned up expired challenges"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "cleanup failed"),
                    }
                }
            });
        }
        // Idle rate-limit buckets are forgotten.
        {
            let shared = shared.clone();
            let stop = shutdown.clone();
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! { _ = tick.tick() => {}, () = stop.cancelled() => return }
                    shared.table.load().shrink();
                }
            });
        }
        if let Some(path) = config_path {
            tasks.spawn(reload::watch(
                path,
                config.clone(),
                shared.clone(),
                shutdown.clone(),
            ));
        }
        if let Some(l) = ops_listener {
            let app = ops::router(
                store.clone(),
                shared.authority.clone(),
                config.admin_token.clone(),
            );
            let stop = shutdown.clone();
            tasks.spawn(async move {
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
            });
        }
        tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = tls.is_some(), services = config.services.len(), "proxy running");
        server::serve(
            listener,
            tls,
            config.proxy_protocol,
            shared,
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
    }
}

mod reload {
    //! Hot reload: on SIGHUP and when the file's modification time changes.

    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use tokio_util::sync::CancellationToken;

    use crate::config::Config;
    use crate::handler::Shared;
    use crate::route::RouteTable;

    fn mtime(path: &std::path::Path) -> Option<SystemTime> {
        std::fs::metadata(path).and_then(|m| m.modified()).ok()
    }

    /// Names the settings that differ between `old` and `new` but only take effect after a
    /// restart (they are bound into listeners, the store, the backend or the authority).
    pub(super) fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |differs: bool, key: &'static str| {
            if differs {
                changed.push(key);
            }
        };
        check(new.listen != old.listen, "listen");
        check(new.tls != old.tls, "tls");
        check(new.store != old.store, "store");
        check(new.lightning != old.lightning, "lightning");
        check(new.metrics_listen != old.metrics_listen, "metrics.listen");
        check(new.admin_token != old.admin_token, "metrics.admin_token");
        check(
            new.proxy_protocol != old.proxy_protocol,
            "network.proxy_protocol",
        );
        check(
            new.cleanup_interval != old.cleanup_interval,
            "cleanup_interval",
        );
        let (a, b) = (&old.challenge, &new.challenge);
        check(a.lsat_line != b.lsat_line, "challenge.lsat_line");
        check(a.spec_params != b.spec_params, "challenge.spec_params");
        check(
            a.invoice_expiry != b.invoice_expiry,
            "challenge.invoice_expiry",
        );
        check(
            a.strict_caveats != b.strict_caveats,
            "challenge.strict_caveats",
        );
        check(a.location != b.location, "challenge.location");
        changed
    }

    /// What the watcher knows about the configuration in force.
    pub(super) struct Running {
        /// The configuration the services were last built from.
        pub(super) config: Config,
        /// The file's bytes at that time; an unchanged file is not rebuilt.
        pub(super) bytes: Option<Vec<u8>>,
    }

    /// Applies a changed configuration: services, prices, limits and trust lists are swapped
    /// in at once; settings bound at start are reported and keep their running value.
    /// Unless `force`d (SIGHUP re-reads files the configuration points at), returns
    /// `Ok(false)` without rebuilding when the file's content has not changed.
    pub(super) fn apply(
        path: &std::path::Path,
        running: &mut Running,
        shared: &Shared,
        force: bool,
    ) -> Result<bool, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !force && running.bytes.as_deref() == Some(bytes.as_slice()) {
            return Ok(false);
        }
        let (config, _, warnings) = Config::load(path).map_err(|e| e.to_string())?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let table = RouteTable::build(&config, &shared.authority)?;
        let pending = restart_only_changes(&running.config, &config);
        if !pending.is_empty() {
            tracing::warn!(
                settings = %pending.join(", "),
                "changed settings keep their running value until the proxy restarts"
            );
        }
        shared.table.store(Arc::new(table));
        tracing::info!(services = config.services.len(), "configuration reloaded");
        running.config = config;
        running.bytes = Some(bytes);
        Ok(true)
    }

    pub(super) async fn watch(
        path: PathBuf,
        running: Config,
        shared: Arc<Shared>,
        stop: CancellationToken,
    ) {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut last = mtime(&path);
        let mut running = Running {
            bytes: std::fs::read(&path).ok(),
            config: running,
        };
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            let reason = tokio::select! {
                () = hangup => "SIGHUP",
                _ = tick.tick() => {
                    let now = mtime(&path);
                    if now == last { continue; }
                    last = now;
                    "file changed"
                }
                () = stop.cancelled() => return,
            };
            match apply(&path, &mut running, &shared, reason == "SIGHUP") {
                Ok(true) => tracing::info!(%reason, "reloaded {}", path.display()),
                Ok(false) => tracing::debug!(%reason, "{} unchanged", path.display()),
                Err(e) => {
                    tracing::error!(%reason, error = %e, "reload refused; keeping the running configuration")
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn config(extra: &str) -> Config {
            let text = format!("{extra}\nservices: [{{name: a, upstream: http://127.0.0.1:1}}]\n");
            let (raw, _, _) = Config::parse(&text, false).unwrap();
            Config::from_raw(&raw, std::path::Path::new(".")).unwrap()
        }

        #[test]
        fn restart_only_settings_are_named() {
            let base = config("");
            assert!(restart_only_changes(&base, &config("")).is_empty());
            let changed = config(
                "challenge: {location: https://example.com, invoice_expiry: 10m}\ncleanup_interval: 5m",
            );
            let names = restart_only_changes(&base, &changed);
            for key in [
                "challenge.location",
                "challenge.invoice_expiry",
                "cleanup_interval",
            ] {
                assert!(names.contains(&key), "{key} missing from {names:?}");
            }
            let token = config("metrics: {listen: 127.0.0.1:0, admin_token: 0123456789abcdef0123}");
            let names = restart_only_changes(&base, &token);
            assert!(names.contains(&"metrics.admin_token") && names.contains(&"metrics.listen"));
        }
    }
}
