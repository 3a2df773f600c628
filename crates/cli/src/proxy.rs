//! `l402 proxy` and `l402 config check`.

use std::path::PathBuf;

use clap::Args;
use l402_proxy::{Config, Dialect, Proxy};
use tokio_util::sync::CancellationToken;

use crate::Failure;
use crate::backend::{connect, redact};

/// Arguments of `l402 proxy`.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Configuration file: ours (YAML or TOML) or Aperture's aperture.yaml.
    #[arg(long, short)]
    config: PathBuf,
}

/// Arguments of `l402 config check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The configuration file to check.
    file: PathBuf,
}

fn load(path: &std::path::Path) -> Result<(Config, Dialect, Vec<String>), Failure> {
    Config::load(path).map_err(|e| Failure::invalid(format!("{}: {e}", path.display())))
}

pub(crate) async fn run(a: ProxyArgs) -> Result<(), Failure> {
    let (config, dialect, warnings) = load(&a.config)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if dialect == Dialect::Aperture {
        tracing::info!("read {} as an Aperture configuration", a.config.display());
    }
    let backend = connect(config.lightning.expose()).await?;
    let store = l402_store::Store::connect(config.store.expose())
        .await
        .map_err(|e| Failure::invalid(format!("store {}: {e}", redact(config.store.expose()))))?;
    let proxy = Proxy::bind(config, Some(a.config.clone()), backend.issuer, store)
        .await
        .map_err(|e| Failure::invalid(e.to_string()))?;
    let addr = proxy.local_addr();
    println!(
        "{}",
        serde_json::json!({"listen": addr.to_string(), "metrics": proxy.ops_addr().map(|a| a.to_string())})
    );
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        trigger.cancel();
    });
    proxy.run(stop).await;
    Ok(())
}

pub(crate) fn check(a: CheckArgs) -> Result<(), Failure> {
    let (c, dialect, warnings) = load(&a.file)?;
    println!(
        "{}: OK ({})",
        a.file.display(),
        match dialect {
            Dialect::Native => "l402 format",
            Dialect::Aperture => "Aperture format",
        }
    );
    for w in &warnings {
        println!("warning: {w}");
    }
    println!(
        "listen:     {}{}",
        c.listen,
        if c.tls.is_some() {
            " (TLS)"
        } else {
            " (plaintext, h2c)"
        }
    );
    if let Some(m) = c.metrics_listen {
        println!(
            "metrics:    {m}{}",
            if c.admin_token.is_some() {
                " (+ admin API)"
            } else {
                ""
            }
        );
    }
    println!("lightning:  {}", redact(c.lightning.expose()));
    println!("store:      {}", redact(c.store.expose()));
    println!(
        "challenges: {} invalid credentials get {}; invoices expire after {:?}",
        if c.challenge.lsat_line {
            "LSAT + L402 lines;"
        } else {
            "L402 line;"
        },
        if c.challenge.invalid_is_challenge {
            "402 (Aperture style)"
        } else {
            "401"
        },
        c.challenge.invoice_expiry
    );
    println!("services (matched in order):");
    for (i, s) in c.services.iter().enumerate() {
        let scheme = match s.protocol {
            l402_proxy::config::UpstreamProtocol::Http => "http",
            l402_proxy::config::UpstreamProtocol::Https => "https",
            l402_proxy::config::UpstreamProtocol::H2c => "h2c",
        };
        println!(
            "  {i}. {} host={} path={} -> {scheme}://{}{}",
            s.name,
            s.host.as_ref().map_or("*", |r| r.as_str()),
            s.path.as_ref().map_or("*", |r| r.as_str()),
            s.upstream_authority,
            s.upstream_path
        );
        let auth = match s.auth {
            l402_proxy::config::AuthLevel::On => "on".to_string(),
            l402_proxy::config::AuthLevel::Off => "off".to_string(),
            l402_proxy::config::AuthLevel::Freebie(n) => format!("freebie {n}"),
        };
        println!(
            "     auth {auth}; price {} msat{}{}; tier {}",
            s.price,
            if s.path_prices.is_empty() {
                String::new()
            } else {
                format!(" (+{} path prices)", s.path_prices.len())
            },
            if s.pricer.is_some() {
                " (dynamic pricer)"
            } else {
                ""
            },
            s.tier
        );
        if let Some(caps) = &s.capabilities {
            println!("     capabilities [{}]", caps.join(","));
        }
        if let Some(l) = s.token_lifetime {
            println!("     tokens valid for {l:?}");
        }
        if !s.free_paths.is_empty() || !s.no_challenge_paths.is_empty() {
            println!(
                "     {} free paths, {} no-challenge paths",
                s.free_paths.len(),
                s.no_challenge_paths.len()
            );
        }
        if !s.rate_limits.is_empty() {
            println!("     {} rate limits", s.rate_limits.len());
        }
    }
    Ok(())
}
