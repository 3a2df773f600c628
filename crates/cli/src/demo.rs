//! `l402 demo`: the whole loop on this machine, step by step, with nothing to install.
//!
//! Starts the embedded dev node, a small sample API and the proxy in front of it (SQLite in a
//! temporary directory), then makes a paid request and prints every step. Without `--once` it
//! keeps running and prints commands to try.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::routing::get;
use clap::Args;
use l402::{
    Challenge, Credential, Identifier, InvoicePayer, Msat, PayRequest, SharedIssuer, SharedPayer,
};
use l402_client::{ClientStore, Currency, L402Client, Request};
use l402_devnode::{DevNode, DevNodeConfig};
use l402_proxy::{Config, Proxy};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::Failure;

/// Arguments of `l402 demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Run the flow once and exit (0 on success).
    #[arg(long)]
    once: bool,
    /// Port for the proxy (0: any free port).
    #[arg(long, default_value_t = 8402)]
    port: u16,
    /// Port for the dev node's API (0: any free port).
    #[arg(long, default_value_t = 9735)]
    devnode_port: u16,
    /// Keep the database here instead of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn step(n: u32, title: &str) {
    println!("\n\x1b[1m{n}. {title}\x1b[0m");
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::invalid(format!("demo step failed: {what}: {e}"))
}

/// Binds `port` on loopback, or any free port when it is taken (or 0).
async fn listener(port: u16) -> Result<tokio::net::TcpListener, Failure> {
    match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => Ok(l),
        Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| fail("listen", e)),
    }
}

async fn sample_api() -> Result<SocketAddr, Failure> {
    let app = axum::Router::new().route(
        "/weather",
        get(|| async { Json(json!({"city": "Lisbon", "forecast": "sunny", "temperature_c": 23})) }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail("sample API", e))?;
    let addr = l.local_addr().map_err(|e| fail("sample API", e))?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(addr)
}

fn config(api: SocketAddr, proxy_port: u16, dir: &Path) -> Result<Config, Failure> {
    let yaml = format!(
        r#"
listen: 127.0.0.1:{proxy_port}
store: "sqlite:{db}"
services:
  - name: weather
    path: ^/weather
    upstream: http://{api}
    price_sat: 21
    capabilities: [forecast]
    token_lifetime: 24h
"#,
        db = dir.join("l402.db").display()
    );
    let (raw, _, _) = Config::parse(&yaml, false).map_err(|e| fail("config", e))?;
    Config::from_raw(&raw, dir).map_err(|e| fail("config", e))
}

pub(crate) async fn run(a: DemoArgs) -> Result<(), Failure> {
    let dir = match &a.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| fail("data dir", e))?;
            d.clone()
        }
        None => tempdir()?,
    };
    println!(
        "L402 demo: a paywalled API, a Lightning dev node and a paying client, all on this machine."
    );

    // The dev node: real regtest BOLT11 invoices, instant settlement between its wallets.
    let node = DevNode::open(&dir.join("devnode.sqlite"), DevNodeConfig::default())
        .await
        .map_err(|e| fail("dev node", e))?;
    let node_listener = listener(a.devnode_port).await?;
    let node_addr = node_listener
        .local_addr()
        .map_err(|e| fail("dev node", e))?;
    {
        let app = node.router(None);
        tokio::spawn(async move { axum::serve(node_listener, app).await });
    }
    let api = sample_api().await?;

    // The proxy, in front of the sample API, issuing invoices from the shop's wallet.
    let proxy_port = match std::net::TcpListener::bind(("127.0.0.1", a.port)) {
        Ok(l) => {
            drop(l);
            a.port
        }
        Err(_) => 0,
    };
    let config = config(api, proxy_port, &dir)?;
    let store = l402_store::Store::connect(config.store.expose())
        .await
        .map_err(|e| fail("store", e))?;
    let proxy = Proxy::bind(config, None, SharedIssuer::new(node.wallet("shop")), store)
        .await
        .map_err(|e| fail("proxy", e))?;
    let proxy_addr = proxy.local_addr();
    let stop = CancellationToken::new();
    let serving = tokio::spawn(proxy.run(stop.clone()));
    println!("  sample API      http://{api}/weather (free, behind the proxy)");
    println!("  L402 proxy      http://{proxy_addr}/weather (21 sat per token)");
    println!(
        "  Lightning node  dev node {} at http://{node_addr}",
        node.node_id()
    );

    let result = walk_through(proxy_addr, &node, &dir).await;
    match (&result, a.once) {
        (Ok(()), true) => println!("\n\x1b[32mdemo complete: a paid request succeeded\x1b[0m"),
        (Err(_), _) => {}
        (Ok(()), false) => {
            let exe = "cargo run --release --";
            println!("\n\x1b[1mTry it yourself\x1b[0m (Ctrl-C stops the demo):");
            println!(
                "  curl -i http://{proxy_addr}/weather                       # the 402 challenge"
            );
            println!(
                "  {exe} get http://{proxy_addr}/weather --wallet devnode://{node_addr}/alice -v"
            );
            println!(
                "  {exe} get --no-pay http://{proxy_addr}/weather            # just the price"
            );
            println!(
                "  {exe} wallet invoice --backend devnode://{node_addr}/shop --amount-msat 1000"
            );
            println!("  {exe} tokens list; {exe} spend");
            crate::shutdown_signal().await;
        }
    }
    stop.cancel();
    let _ = serving.await;
    if a.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn tempdir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("l402-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| fail("temp dir", e))?;
    Ok(dir)
}

async fn walk_through(proxy: SocketAddr, node: &DevNode, dir: &Path) -> Result<(), Failure> {
    let http = reqwest::Client::new();
    let url = format!("http://{proxy}/weather");

    step(1, &format!("GET {url} without paying"));
    let r = http
        .get(&url)
        .send()
        .await
        .map_err(|e| fail("request", e))?;
    println!("  HTTP {}", r.status());
    if r.status() != 402 {
        return Err(fail(
            "challenge",
            format!("expected 402, got {}", r.status()),
        ));
    }
    let lines: Vec<String> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    for l in &lines {
        println!("  WWW-Authenticate: {}…", &l[..l.len().min(90)]);
    }
    let all =
        Challenge::parse_all(lines.iter().map(String::as_str)).map_err(|e| fail("challenge", e))?;
    let challenge = Challenge::preferred(&all).expect("one").clone();

    step(2, "the token (macaroon) in the challenge");
    let id =
        Identifier::decode(challenge.macaroon().identifier()).map_err(|e| fail("identifier", e))?;
    println!("  version       {}", id.version());
    println!("  payment hash  {}", id.payment_hash());
    println!("  token id      {}", id.token_id());
    for c in challenge.macaroon().caveats() {
        println!("  caveat        {}", String::from_utf8_lossy(c.id()));
    }

    step(3, "the invoice it is bound to");
    let inv = l402::bolt11::decode(challenge.invoice()).map_err(|e| fail("invoice", e))?;
    let inv_hash = inv.payment_hash;
    println!(
        "  {}…",
        &challenge.invoice()[..60.min(challenge.invoice().len())]
    );
    println!("  amount        {} msat", inv.amount.unwrap_or_default());
    println!("  network       {}", inv.currency);
    println!(
        "  payment hash  {inv_hash} (same as the token's: {})",
        inv_hash == *id.payment_hash()
    );

    step(4, "pay it from the wallet \"alice\" on the dev node");
    let paid = node
        .wallet("alice")
        .pay(PayRequest::new(challenge.invoice(), Msat::ZERO))
        .await
        .map_err(|e| fail("payment", e))?;
    println!("  preimage      {}", paid.preimage.to_hex());
    println!("  fee           {} msat", paid.fee);
    println!(
        "  sha256(preimage) == payment hash: {}",
        paid.preimage.matches(id.payment_hash())
    );

    step(5, "retry with the credential");
    let auth = Credential::new(challenge.macaroon().clone(), paid.preimage)
        .to_authorization(challenge.scheme());
    println!(
        "  Authorization: {}…:{}…",
        &auth[..40],
        &auth[auth.len() - 8..]
    );
    let r = http
        .get(&url)
        .header("authorization", &auth)
        .send()
        .await
        .map_err(|e| fail("paid request", e))?;
    let status = r.status();
    let body = r.text().await.map_err(|e| fail("paid request", e))?;
    println!("  HTTP {status}  {body}");
    if status != 200 {
        return Err(fail("paid request", format!("expected 200, got {status}")));
    }

    step(6, "the same with the paying client (what `l402 get` does)");
    let store = ClientStore::open(&dir.join("client.db"))
        .await
        .map_err(|e| fail("client store", e))?;
    let client = L402Client::builder(SharedPayer::new(node.wallet("bob")), store)
        .network(Currency::Regtest)
        .build()
        .map_err(|e| fail("client", e))?;
    for attempt in 1..=2 {
        let resp = client
            .send(Request::get(url.parse().expect("valid URL")))
            .await
            .map_err(|e| fail("client request", e))?;
        let paid = resp.payment.clone();
        let status = resp.inner.status();
        match paid {
            Some(p) if p.paid_now => println!(
                "  request {attempt}: HTTP {status}, paid {} msat + {} msat fee",
                p.amount, p.fee
            ),
            Some(_) => {
                println!("  request {attempt}: HTTP {status}, reused the token (nothing paid)")
            }
            None => println!("  request {attempt}: HTTP {status}"),
        }
        if status != 200 {
            return Err(fail(
                "client request",
                format!("expected 200, got {status}"),
            ));
        }
    }
    Ok(())
}
