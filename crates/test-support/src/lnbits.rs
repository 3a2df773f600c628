//! A real LNbits 1.6.2 (FakeWallet funding source, SQLite) for tests.
//!
//! [`lnbits()`] runs `scripts/lnbits/up.sh` once per test process: it installs LNbits into
//! `target/lnbits/venv` on first use (about a minute, PyPI only; later runs find it installed),
//! starts it on a free loopback port with a fresh data directory, and provisions two wallets:
//! `payee` (empty) and `payer` (1 000 000 sat). Payments between them are internal to LNbits and
//! settle at once.
//!
//! Stopping: the script starts a watchdog that stops LNbits once this test process has exited
//! (checked twice a second), because a test binary ends without running destructors of statics
//! and may be killed outright. [`Lnbits::stop`] stops it earlier. Each test *process* gets its
//! own LNbits (one per integration-test binary under `cargo test`; one per test under
//! `cargo nextest`, which costs a start each).
//!
//! ```no_run
//! let ln = l402_test::lnbits::lnbits();
//! println!("{} payee invoice key {}", ln.url, ln.payee.inkey);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::workspace_root;

/// One LNbits wallet and its keys.
#[derive(Clone, Debug, Deserialize)]
pub struct Wallet {
    /// The wallet id.
    pub id: String,
    /// The invoice (read) key: issue invoices, look up.
    pub inkey: String,
    /// The admin key: also pay.
    pub adminkey: String,
}

/// A running LNbits started by `scripts/lnbits/up.sh`.
#[derive(Clone, Debug, Deserialize)]
pub struct Lnbits {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The uvicorn process.
    pub pid: u32,
    /// Its data directory (SQLite database, `lnbits.log`); deleted when it stops.
    pub data_dir: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    /// A bearer token of the super user (admin API: `/users/api/v1/...`).
    pub admin_token: String,
    /// A wallet with no funds, to issue invoices.
    pub payee: Wallet,
    /// A wallet holding 1 000 000 sat, to pay.
    pub payer: Wallet,
}

/// The LNbits of this test process, started on first use. Panics with the script's output and
/// the tail of the LNbits log when it cannot start (every later call panics the same way).
pub fn lnbits() -> &'static Lnbits {
    static LNBITS: OnceLock<Result<Lnbits, String>> = OnceLock::new();
    match LNBITS.get_or_init(start_instance) {
        Ok(ln) => ln,
        Err(e) => panic!("{e}"),
    }
}

impl Lnbits {
    /// Starts another LNbits, separate from [`lnbits()`]'s (it too stops with this process).
    pub fn start() -> Lnbits {
        start_instance().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// The last `lines` lines of the LNbits log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Whether the LNbits process is still alive.
    pub fn is_running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Stops LNbits now (SIGTERM to its pid). The watchdog removes its data directory once this
    /// test process exits.
    pub fn stop(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
    }
}

fn start_instance() -> Result<Lnbits, String> {
    let script = workspace_root().join("scripts/lnbits/up.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The script names its log ("lnbits-up: log <path>") before it starts LNbits, and prints
        // the log's tail itself when it gives up on a started LNbits.
        let log_tail = if stderr.contains("lnbits-up: --- last") {
            "(in the stderr above)".to_owned()
        } else {
            stderr
                .lines()
                .find_map(|l| l.strip_prefix("lnbits-up: log "))
                .map_or_else(
                    || "(LNbits was not started)".to_owned(),
                    |p| tail(Path::new(p.trim()), 60),
                )
        };
        return Err(format!(
            "{} failed ({}); it needs python3 (3.10-3.12), curl, util-linux and PyPI.\n\
             --- its stderr ---\n{stderr}\n--- LNbits log (tail) ---\n{log_tail}",
            script.display(),
            out.status
        ));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).map_err(|e| {
        format!(
            "{} printed no JSON line ({e}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            script.display()
        )
    })
}

fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
