//! `l402 devnode`: serve the embedded dev node over HTTP so other processes can issue and pay.

use std::path::PathBuf;

use clap::Args;
use l402::Msat;
use l402_devnode::{DevNode, DevNodeConfig};

use crate::Failure;

/// Arguments of `l402 devnode`.
#[derive(Debug, Args)]
pub(crate) struct DevnodeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9735")]
    listen: String,
    /// SQLite file holding the node key, invoices, preimages and balances (memory if absent).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Require `Authorization: Bearer <key>` on every call.
    #[arg(long, env = "L402_DEVNODE_API_KEY")]
    api_key: Option<String>,
    /// Balance a wallet starts with, in satoshis.
    #[arg(long, default_value_t = 1_000_000)]
    initial_balance_sat: u64,
    /// Simulated routing fee, parts per million.
    #[arg(long, default_value_t = 0)]
    fee_ppm: u64,
    /// Simulated routing fee, fixed part in millisatoshis.
    #[arg(long, default_value_t = 0)]
    fee_base_msat: u64,
}

pub(crate) async fn run(a: DevnodeArgs) -> Result<(), Failure> {
    let config = DevNodeConfig {
        initial_balance: Msat::from_sat(a.initial_balance_sat),
        fee_base: Msat::new(a.fee_base_msat),
        fee_ppm: a.fee_ppm,
    };
    let node = match &a.data {
        Some(p) => DevNode::open(p, config).await,
        None => DevNode::in_memory(config).await,
    }
    .map_err(|e| Failure::backend(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .map_err(|e| Failure::invalid(format!("cannot listen on {}: {e}", a.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::invalid(e.to_string()))?;
    // One machine-readable line first, for scripts and tests that start us.
    println!(
        "{}",
        serde_json::json!({"listen": addr.to_string(), "node_id": node.node_id().to_string()})
    );
    eprintln!(
        "dev node {} listening on http://{addr} (backend URI: devnode://{addr}/<wallet>)",
        node.node_id()
    );
    axum::serve(listener, node.router(a.api_key))
        .with_graceful_shutdown(crate::shutdown_signal())
        .await
        .map_err(|e| Failure::invalid(e.to_string()))
}
