//! `l402`: the command-line face of the l402 toolkit.
//!
//! This binary is the composition root: the only crate that knows every adapter. It offers the
//! token tools, wallet checks against any backend, the embedded dev node as a server, and the
//! reverse proxy.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backend;
mod demo;
mod devnode;
mod get;
mod proxy;
mod token;
mod wallet;

/// L402 (HTTP 402 + Lightning) toolkit.
#[derive(Debug, Parser)]
#[command(name = "l402", version, about, propagate_version = true)]
struct Cli {
    /// Log format for long-running commands.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode, mint, attenuate and verify L402 tokens (macaroons).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Talk to a Lightning backend: create, pay and look up invoices.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Run the embedded dev node as a server other processes can issue and pay through.
    Devnode(devnode::DevnodeArgs),
    /// Run the L402 reverse proxy.
    Proxy(proxy::ProxyArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the whole L402 loop on this machine, step by step (dev node, sample API, proxy,
    /// paying client).
    Demo(demo::DemoArgs),
    /// Fetch a URL, paying L402 challenges with a wallet (curl-like).
    Get(get::GetArgs),
    /// The tokens this client holds.
    #[command(subcommand)]
    Tokens(get::TokensCommand),
    /// What this client has spent.
    Spend(get::HomeArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and print the resolved services.
    Check(proxy::CheckArgs),
}

/// A failure to report: one line on stderr and a distinct exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Exit code.
    code: u8,
    /// One-line message.
    message: String,
}

impl Failure {
    /// The input is bad (exit 1).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// The token was read fine but does not verify (exit 4).
    pub(crate) fn rejected(message: impl Into<String>) -> Self {
        Failure {
            code: 4,
            message: message.into(),
        }
    }

    /// A Lightning backend call failed (exit 3).
    pub(crate) fn backend(message: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs `task` on a Tokio runtime: one worker per CPU the process may run on (or
/// `TOKIO_WORKER_THREADS` of them), work-stealing between them; with one worker (a pinned
/// process, a one-CPU container) Tokio's single-threaded scheduler instead, which runs the same
/// tasks without the work-stealing queues' atomics and hand-offs (measured: 2.5 % less CPU per
/// verified request, 13 % per challenge; BENCHMARKS.md).
fn on_runtime(task: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let workers = match std::env::var("TOKIO_WORKER_THREADS") {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            Failure::invalid(format!(
                "TOKIO_WORKER_THREADS must be a whole number of threads, at least 1 (it is {v:?})"
            ))
        })?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| Failure::invalid(format!("cannot start the Tokio runtime: {e}")))?;
    runtime.block_on(task)
}

/// mimalloc (v2, without transparent huge pages) instead of glibc's malloc: a challenge frees
/// its records in batches, after the group commit, and on another thread; glibc then sorts and
/// consolidates its bins (≈ 10 µs of a challenge's CPU). Measured with `bench/run.sh --co`: 5 %
/// less CPU per challenge, 1.6 % per verified request, the same RSS at 10 000 idle connections
/// (with huge pages its arenas were 16 MiB resident from the start). See BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process (ring), for every HTTP client built later.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token(cmd) => token::run(cmd),
        Command::Config(ConfigCommand::Check(a)) => proxy::check(a),
        Command::Wallet(cmd) => on_runtime(wallet::run(cmd)),
        Command::Demo(a) => {
            if std::env::var_os("RUST_LOG").is_some() {
                init_logging(&cli.log_format);
            }
            on_runtime(demo::run(a))
        }
        Command::Get(a) => on_runtime(get::run(a)),
        Command::Tokens(cmd) => on_runtime(get::tokens(cmd)),
        Command::Spend(a) => on_runtime(get::spend(a)),
        Command::Devnode(a) => {
            init_logging(&cli.log_format);
            on_runtime(devnode::run(a))
        }
        Command::Proxy(a) => {
            init_logging(&cli.log_format);
            on_runtime(proxy::run(a))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("l402: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
