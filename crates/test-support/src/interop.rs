//! Third-party L402/macaroon implementations as test peers.
//!
//! Each peer is a small script under `scripts/interop/` that reads one JSON request on stdin and
//! writes one JSON response on stdout. The packages they use are installed by
//! `scripts/interop/setup.sh` into `target/interop` (or `$L402_INTEROP_DIR`); [`Peer::call`] runs
//! the setup first, which returns at once when everything is already installed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::workspace_root;

/// A third-party implementation to test against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// pymacaroons 0.13.0 (Python).
    Pymacaroons,
    /// npm `macaroon` 3.0.4 (JavaScript, js-macaroon), with its buffer-growth bug patched.
    NpmMacaroon,
    /// lsat-js 2.0.6 (JavaScript, Tierion's L402/LSAT library).
    LsatJs,
}

/// Where the peers are installed.
pub fn interop_dir() -> PathBuf {
    match std::env::var_os("L402_INTEROP_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("target/interop"),
    }
}

fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = workspace_root().join("scripts/interop/setup.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(interop_dir())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed (it needs python3, node, npm and the PyPI/npm registries):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

impl Peer {
    fn command(self) -> Command {
        let scripts = workspace_root().join("scripts/interop");
        let mut cmd = match self {
            Peer::Pymacaroons => {
                let mut c = Command::new(interop_dir().join("venv/bin/python"));
                c.arg(scripts.join("pymac.py"));
                c
            }
            Peer::NpmMacaroon | Peer::LsatJs => {
                let mut c = Command::new("node");
                let file = if self == Peer::LsatJs {
                    "lsat.js"
                } else {
                    "npm_mac.js"
                };
                c.arg(scripts.join(file));
                c
            }
        };
        cmd.env("L402_INTEROP_DIR", interop_dir());
        cmd
    }

    /// Sends one request and returns the response. Panics (with the peer's stderr) when the
    /// harness itself fails; a refused macaroon is a normal response with `"ok": false`.
    pub fn call(self, request: &Value) -> Value {
        ensure_installed();
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {self:?}: {e}"));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(request.to_string().as_bytes())
            .expect("write request");
        let out = child.wait_with_output().expect("peer finished");
        assert!(
            out.status.success(),
            "{self:?} failed on {request}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{self:?} wrote no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}
