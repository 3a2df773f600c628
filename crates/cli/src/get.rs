//! `l402 get <URL>`: curl with a wallet. Also `l402 tokens …` and `l402 spend`.
//!
//! Exit codes: 0 response received; 1 invalid input; 10 over budget; 11 payment failed (or
//! still pending); 12 the server refused the paid credential; 13 network; 14 challenge refused
//! (amountless, other network, expired, not bound to the macaroon, not the advertised price);
//! 15 unusable server answer; 16 token store.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use l402::Msat;
use l402_client::{
    Budget, ClientError, ClientStore, Currency, EntryState, Event, L402Client, Request,
};
use serde_json::json;

use crate::Failure;
use crate::backend::connect;

/// Arguments of `l402 get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The URL.
    url: String,
    /// HTTP method.
    #[arg(short = 'X', long = "request", default_value = "GET")]
    method: String,
    /// Extra header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Request body; `@FILE` reads a file.
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// Write the body to this file instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// The wallet that pays (a backend URI: devnode://…, lnbits://…, nostr+walletconnect://…).
    #[arg(long, env = "L402_WALLET")]
    wallet: Option<String>,
    /// Most a request may cost, in satoshis.
    #[arg(long, default_value_t = 1000)]
    max_cost: u64,
    /// Most routing fee per payment, in satoshis.
    #[arg(long, default_value_t = 10)]
    max_fee: u64,
    /// Most spent on one host within 24 hours, in satoshis.
    #[arg(long)]
    max_per_host_day: Option<u64>,
    /// Most spent in total (by this token store), in satoshis.
    #[arg(long)]
    max_total: Option<u64>,
    /// Do not buy a new token when the server refuses one it accepted before.
    #[arg(long)]
    no_repay: bool,
    /// Show the challenge and its price, pay nothing.
    #[arg(long)]
    no_pay: bool,
    /// Print the 402, the invoice, the payment and the retry on stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Print one JSON object: status, headers, amount paid, fee, payment hash, body.
    #[arg(long)]
    json: bool,
    /// Only pay invoices for this network: bitcoin, testnet, signet, regtest, or any
    /// (default: regtest for dev node wallets, bitcoin otherwise).
    #[arg(long)]
    network: Option<String>,
    /// Accept any TLS certificate (for local self-signed servers).
    #[arg(short = 'k', long = "insecure")]
    insecure: bool,
    /// Request timeout, seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Where tokens and the payment journal live.
    #[arg(long, env = "L402_HOME")]
    data_dir: Option<PathBuf>,
}

/// `l402 tokens …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokensCommand {
    /// List tokens (paid, pending, failed, refused).
    List(HomeArgs),
    /// Show one token by payment hash.
    Show(TokenRef),
    /// Forget a token (it stays in the spend log).
    Rm(TokenRef),
}

/// Where the store is.
#[derive(Debug, Args)]
pub(crate) struct HomeArgs {
    /// Where tokens and the payment journal live.
    #[arg(long, env = "L402_HOME")]
    data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A token by payment hash.
#[derive(Debug, Args)]
pub(crate) struct TokenRef {
    /// The payment hash, hex.
    payment_hash: String,
    #[command(flatten)]
    home: HomeArgs,
}

fn home(dir: Option<PathBuf>) -> PathBuf {
    if let Some(d) = dir {
        return d;
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("l402");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/l402"),
        None => PathBuf::from(".l402"),
    }
}

async fn open_store(dir: Option<PathBuf>) -> Result<ClientStore, Failure> {
    let path = home(dir).join("client.db");
    ClientStore::open(&path).await.map_err(client_failure)
}

fn client_failure(e: ClientError) -> Failure {
    Failure {
        code: e.exit_code(),
        message: e.to_string(),
    }
}

fn network(arg: Option<&str>, wallet: &str) -> Result<Option<Currency>, Failure> {
    let name = match arg {
        Some(n) => n,
        None if wallet.starts_with("devnode") => "regtest",
        None => "bitcoin",
    };
    Ok(Some(match name {
        "any" => return Ok(None),
        "bitcoin" | "mainnet" => Currency::Bitcoin,
        "testnet" => Currency::BitcoinTestnet,
        "signet" => Currency::Signet,
        "regtest" => Currency::Regtest,
        "simnet" => Currency::Simnet,
        other => {
            return Err(Failure::invalid(format!(
                "--network {other:?}: use bitcoin, testnet, signet, regtest or any"
            )));
        }
    }))
}

fn request(a: &GetArgs) -> Result<Request, Failure> {
    let url: url::Url = a
        .url
        .parse()
        .map_err(|e| Failure::invalid(format!("URL {:?}: {e}", a.url)))?;
    let method = a
        .method
        .parse()
        .map_err(|_| Failure::invalid(format!("-X {:?} is not an HTTP method", a.method)))?;
    let mut headers = http::HeaderMap::new();
    for h in &a.headers {
        let (k, v) = h.split_once(':').ok_or_else(|| {
            Failure::invalid(
                "-H: expected \"Name: value\" (the header is not shown: it may hold a secret)",
            )
        })?;
        let name = http::HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| {
            Failure::invalid(format!("-H: {:?} is not a valid header name", k.trim()))
        })?;
        let value = http::HeaderValue::from_str(v.trim()).map_err(|_| {
            Failure::invalid(format!(
                "-H {}: the value has characters a header cannot carry (not shown)",
                k.trim()
            ))
        })?;
        headers.append(name, value);
    }
    let body = match a.data.as_deref() {
        None => None,
        Some(d) => Some(match d.strip_prefix('@') {
            Some(file) => std::fs::read(file)
                .map_err(|e| Failure::invalid(format!("-d @{file}: {e}")))?
                .into(),
            None => bytes::Bytes::from(d.to_owned()),
        }),
    };
    Ok(Request {
        method,
        url,
        headers,
        body,
    })
}

fn describe(e: &Event) -> String {
    match e {
        Event::Challenged { scheme, invoice } => {
            let amount = l402::bolt11::decode(invoice)
                .ok()
                .and_then(|i| i.amount)
                .map(|m| format!("{m} msat"))
                .unwrap_or_else(|| "no amount".into());
            format!("< 402 Payment Required ({scheme} challenge, {amount})\n* invoice {invoice}")
        }
        Event::Paying {
            payment_hash,
            amount,
            ..
        } => format!("* paying {amount} msat for {payment_hash}"),
        Event::Paid { payment_hash, fee } => format!("* paid {payment_hash} (fee {fee} msat)"),
        Event::Resumed { payment_hash } => {
            format!("* looked up the earlier payment {payment_hash} on the wallet")
        }
        Event::TokenReused { payment_hash } => {
            format!("* using the token already held for {payment_hash}")
        }
        Event::TokenRefused {
            payment_hash,
            status,
        } => format!("* the server refused token {payment_hash} ({status})"),
        Event::Retrying => "> retrying with the credential".into(),
        other => format!("* {other:?}"),
    }
}

/// `l402 get --no-pay`: one request, and the challenge shown.
async fn show_challenge(a: &GetArgs) -> Result<(), Failure> {
    let req = request(a)?;
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(a.insecure)
        .timeout(Duration::from_secs(a.timeout))
        .build()
        .map_err(|e| Failure::invalid(e.to_string()))?;
    let mut b = client.request(req.method, req.url).headers(req.headers);
    if let Some(body) = req.body {
        b = b.body(body);
    }
    let resp = b.send().await.map_err(|e| Failure {
        code: 13,
        message: format!("network error: {e}"),
    })?;
    let status = resp.status().as_u16();
    let values: Vec<String> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    if status != 402 {
        println!("{}", json!({"status": status, "challenge": null}));
        return Ok(());
    }
    let all =
        l402::Challenge::parse_all(values.iter().map(String::as_str)).map_err(|e| Failure {
            code: 15,
            message: format!("402 without a usable L402 challenge: {e}"),
        })?;
    let c = l402::Challenge::preferred(&all).expect("one");
    let inv = l402::bolt11::decode(c.invoice()).ok();
    let id = l402::Identifier::decode(c.macaroon().identifier()).ok();
    let out = json!({
        "status": 402,
        "scheme": c.scheme().as_str(),
        "price_msat": inv.as_ref().and_then(|i| i.amount).map(Msat::as_u64),
        "network": inv.as_ref().map(|i| i.currency.to_string()),
        "invoice": c.invoice(),
        "payment_hash": id.as_ref().map(|i| i.payment_hash().to_hex()),
        "token_id": id.as_ref().map(|i| i.token_id().to_hex()),
        "caveats": c.macaroon().caveats().iter().map(|c| String::from_utf8_lossy(c.id()).into_owned()).collect::<Vec<_>>(),
    });
    if a.json {
        println!("{out}");
    } else {
        println!("402 Payment Required ({} challenge)", c.scheme());
        println!("price:        {} msat", out["price_msat"]);
        println!("network:      {}", out["network"].as_str().unwrap_or("?"));
        println!(
            "payment hash: {}",
            out["payment_hash"].as_str().unwrap_or("?")
        );
        println!("invoice:      {}", c.invoice());
        for cav in out["caveats"].as_array().expect("array") {
            println!("caveat:       {}", cav.as_str().unwrap_or(""));
        }
    }
    Ok(())
}

pub(crate) async fn run(a: GetArgs) -> Result<(), Failure> {
    if a.no_pay {
        return show_challenge(&a).await;
    }
    let wallet = a.wallet.clone().ok_or_else(|| {
        Failure::invalid(
            "no wallet: pass --wallet URI (or set L402_WALLET), or use --no-pay to only look",
        )
    })?;
    let backend = connect(&wallet).await?;
    let store = open_store(a.data_dir.clone()).await?;
    let budget = Budget {
        max_per_request: Msat::from_sat(a.max_cost),
        max_fee: Msat::from_sat(a.max_fee),
        max_per_host_per_day: a.max_per_host_day.map(Msat::from_sat),
        max_total: a.max_total.map(Msat::from_sat),
    };
    let mut builder = L402Client::builder(backend.payer, store)
        .budget(budget)
        .allow_repay(!a.no_repay)
        .timeout(Duration::from_secs(a.timeout))
        .dangerous_accept_invalid_certs(a.insecure);
    if let Some(n) = network(a.network.as_deref(), &wallet)? {
        builder = builder.network(n);
    }
    if a.verbose {
        builder = builder.on_event(|e| eprintln!("{}", describe(e)));
    }
    let client = builder.build().map_err(client_failure)?;
    let req = request(&a)?;
    if a.verbose {
        eprintln!("> {} {}", req.method, req.url);
    }
    let resp = client.send(req).await.map_err(client_failure)?;
    let status = resp.inner.status();
    if a.verbose {
        eprintln!(
            "< {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
    }
    let headers = resp.inner.headers().clone();
    let payment = resp.payment.clone();

    if a.json {
        let body = resp.inner.bytes().await.map_err(|e| Failure {
            code: 13,
            message: format!("network error reading the body: {e}"),
        })?;
        let (body_text, encoding) = match std::str::from_utf8(&body) {
            Ok(t) => (t.to_owned(), "utf-8"),
            Err(_) => (l402::macaroon::encode_base64_std(&body), "base64"),
        };
        let hmap: serde_json::Map<String, serde_json::Value> = headers
            .keys()
            .map(|k| {
                let vals: Vec<String> = headers
                    .get_all(k)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                (k.as_str().to_owned(), json!(vals.join(", ")))
            })
            .collect();
        println!(
            "{}",
            json!({
                "status": status.as_u16(),
                "headers": hmap,
                "amount_paid_msat": payment.as_ref().map(|p| p.amount.as_u64()).unwrap_or(0),
                "fee_msat": payment.as_ref().map(|p| p.fee.as_u64()).unwrap_or(0),
                "payment_hash": payment.as_ref().map(|p| p.payment_hash.to_hex()),
                "token_reused": payment.as_ref().map(|p| !p.paid_now),
                "body": body_text,
                "body_encoding": encoding,
            })
        );
        return Ok(());
    }

    let total = resp.inner.content_length();
    let mut sink: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| Failure::invalid(format!("-o {}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let bar = if a.output.is_some() && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = match total {
            Some(t) => indicatif::ProgressBar::new(t),
            None => indicatif::ProgressBar::new_spinner(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bytes}/{total_bytes} {bar:40} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut inner = resp.inner;
    loop {
        match inner.chunk().await {
            Ok(Some(chunk)) => {
                sink.write_all(&chunk)
                    .map_err(|e| Failure::invalid(format!("writing the body: {e}")))?;
                if let Some(b) = &bar {
                    b.inc(chunk.len() as u64);
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(Failure {
                    code: 13,
                    message: format!("network error reading the body: {e}"),
                });
            }
        }
    }
    sink.flush().map_err(|e| Failure::invalid(e.to_string()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(p) = payment.filter(|p| p.paid_now && (a.verbose || a.output.is_some())) {
        eprintln!(
            "paid {} msat + {} msat fee ({})",
            p.amount, p.fee, p.payment_hash
        );
    }
    Ok(())
}

fn entry_json(e: &l402_client::Entry) -> serde_json::Value {
    let id = l402::Identifier::decode(e.macaroon.identifier()).ok();
    json!({
        "payment_hash": e.payment_hash.to_hex(),
        "token_id": id.map(|i| i.token_id().to_hex()),
        "origin": e.origin,
        "scope": e.scope,
        "scheme": e.scheme.as_str(),
        "state": if e.rejected_at.is_some() && e.state == EntryState::Paid { "refused" } else { e.state.as_str() },
        "amount_msat": e.amount.as_u64(),
        "fee_msat": e.fee.map(Msat::as_u64),
        "created_at": e.created_at,
    })
}

pub(crate) async fn tokens(cmd: TokensCommand) -> Result<(), Failure> {
    match cmd {
        TokensCommand::List(h) => {
            let store = open_store(h.data_dir).await?;
            let entries = store.entries().await.map_err(client_failure)?;
            if h.json {
                println!(
                    "{}",
                    json!(entries.iter().map(entry_json).collect::<Vec<_>>())
                );
            } else if entries.is_empty() {
                println!("no tokens");
            } else {
                for e in &entries {
                    let j = entry_json(e);
                    println!(
                        "{}  {:8} {:>10} msat  {}{}",
                        e.payment_hash,
                        j["state"].as_str().unwrap_or(""),
                        e.amount,
                        e.origin,
                        e.scope
                    );
                }
            }
        }
        TokensCommand::Show(t) => {
            let store = open_store(t.home.data_dir).await?;
            let hash = t
                .payment_hash
                .parse()
                .map_err(|e: l402::Error| Failure::invalid(e.to_string()))?;
            let e = store
                .entry(&hash)
                .await
                .map_err(client_failure)?
                .ok_or_else(|| Failure::invalid(format!("no token with payment hash {hash}")))?;
            let mut j = entry_json(&e);
            j["macaroon"] = json!(e.macaroon.to_base64());
            j["invoice"] = json!(e.invoice);
            println!(
                "{}",
                if t.home.json {
                    j.to_string()
                } else {
                    serde_json::to_string_pretty(&j).unwrap_or_default()
                }
            );
        }
        TokensCommand::Rm(t) => {
            let store = open_store(t.home.data_dir).await?;
            let hash = t
                .payment_hash
                .parse()
                .map_err(|e: l402::Error| Failure::invalid(e.to_string()))?;
            if !store.remove_token(&hash).await.map_err(client_failure)? {
                return Err(Failure::invalid(format!(
                    "no usable token with payment hash {hash}"
                )));
            }
            println!("removed {hash}");
        }
    }
    Ok(())
}

pub(crate) async fn spend(h: HomeArgs) -> Result<(), Failure> {
    let store = open_store(h.data_dir).await?;
    let entries = store.entries().await.map_err(client_failure)?;
    let paid: Vec<_> = entries
        .iter()
        .filter(|e| e.state == EntryState::Paid)
        .collect();
    let total: u64 = paid
        .iter()
        .map(|e| e.amount.as_u64() + e.fee.map_or(0, Msat::as_u64))
        .sum();
    let day = store
        .spent_since(l402_client_now() - 86_400, None)
        .await
        .map_err(client_failure)?;
    let pending = entries
        .iter()
        .filter(|e| e.state == EntryState::Pending)
        .count();
    if h.json {
        println!(
            "{}",
            json!({"payments": paid.len(), "total_msat": total, "last_24h_msat": day.as_u64(), "pending": pending,
                   "log": paid.iter().map(|e| entry_json(e)).collect::<Vec<_>>()})
        );
    } else {
        for e in &paid {
            println!(
                "{}  {:>10} msat + {:>6} msat fee  {}{}",
                e.created_at,
                e.amount,
                e.fee.map_or(0, Msat::as_u64),
                e.origin,
                e.scope
            );
        }
        println!(
            "{} payments, {total} msat in total, {day} msat in the last 24 h, {pending} pending",
            paid.len()
        );
    }
    Ok(())
}

fn l402_client_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
