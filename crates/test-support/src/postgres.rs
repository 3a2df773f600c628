//! A throw-away PostgreSQL server for tests.
//!
//! The first call to [`url`] in a test process creates a fresh cluster in a temporary directory
//! (`initdb`), starts it on a free loopback port (`pg_ctl`), and creates a database per call
//! ([`fresh_database`]). A watchdog stops the server when the test process exits, however it
//! exits. As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
//!
//! Needs the PostgreSQL server binaries (Debian: `postgresql`); set `L402_PG_BINDIR` to point at
//! them if they are not under `/usr/lib/postgresql/<version>/bin`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

struct Server {
    port: u16,
    dir: PathBuf,
}

fn bindir() -> PathBuf {
    if let Some(d) = std::env::var_os("L402_PG_BINDIR") {
        return PathBuf::from(d);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin \
             (install the Debian package `postgresql`, or set L402_PG_BINDIR)"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root.
fn pg(bin: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start() -> Server {
    let bin = bindir();
    let dir = std::env::temp_dir().join(format!("l402-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create PostgreSQL temp dir");
    if is_root() {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "cannot chown {} to postgres", dir.display());
    }
    let data = dir.join("data");
    let data_s = data.to_str().expect("utf-8 path");
    let out = pg(
        &bin.join("initdb"),
        &[
            "-D",
            data_s,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
    );
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let opts = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        dir.display()
    );
    let log = dir.join("server.log");
    let out = pg(
        &bin.join("pg_ctl"),
        &[
            "-D",
            data_s,
            "-l",
            log.to_str().expect("utf-8"),
            "-w",
            "-t",
            "60",
            "-o",
            &opts,
            "start",
        ],
    );
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Stop the server when this process goes away, whatever the reason.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pgctl} -D {data_s} -m immediate -w stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        runas = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        },
        pgctl = bin.join("pg_ctl").display(),
        dir = dir.display(),
    );
    // The watchdog outlives us by design (it is what stops the server), so it is not waited for.
    #[allow(clippy::zombie_processes)]
    let _watchdog = Command::new("setsid")
        .args(["bash", "-c", &stop])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the PostgreSQL watchdog");
    Server { port, dir }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// The URL of the `postgres` database of the test server (started on first use).
pub fn url() -> String {
    format!("postgres://postgres@127.0.0.1:{}/postgres", server().port)
}

/// Creates a new, empty database and returns its URL, so tests do not see each other's data.
pub fn fresh_database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let s = server();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let out = pg(
        &bindir().join("createdb"),
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &s.port.to_string(),
            "-U",
            "postgres",
            &name,
        ],
    );
    assert!(
        out.status.success(),
        "createdb failed: {} (server dir {})",
        String::from_utf8_lossy(&out.stderr),
        s.dir.display()
    );
    format!("postgres://postgres@127.0.0.1:{}/{name}", s.port)
}
