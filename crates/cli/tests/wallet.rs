//! `l402 devnode` and `l402 wallet …` against the dev node (as a server) and a real LNbits.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn l402(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(args)
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

struct Devnode(Child, String);

impl Drop for Devnode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn devnode(extra: &[&str]) -> Devnode {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(["devnode", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let addr = v["listen"].as_str().unwrap().to_owned();
    Devnode(child, addr)
}

/// Issue with one wallet, pay with another, check both views.
fn round_trip(issuer: &str, payer: &str) {
    let inv = json(&l402(&[
        "wallet",
        "invoice",
        "--backend",
        issuer,
        "--amount-msat",
        "21000",
        "--memo",
        "cli",
    ]));
    let bolt11 = inv["bolt11"].as_str().unwrap();
    let hash = inv["payment_hash"].as_str().unwrap();
    assert_eq!(
        json(&l402(&["wallet", "status", hash, "--backend", issuer]))["state"],
        "open"
    );
    let paid = json(&l402(&["wallet", "pay", bolt11, "--backend", payer]));
    let preimage: l402::Preimage = paid["preimage"].as_str().unwrap().parse().unwrap();
    assert_eq!(preimage.payment_hash().to_hex(), hash);
    assert_eq!(paid["amount_msat"], 21000);
    assert_eq!(
        json(&l402(&["wallet", "status", hash, "--backend", issuer]))["state"],
        "settled"
    );
    let p = json(&l402(&["wallet", "payment", hash, "--backend", payer]));
    assert_eq!(p["state"], "succeeded");
    assert_eq!(p["preimage"], paid["preimage"]);
    // Paying again does not pay twice: it fails, and says so.
    let again = l402(&["wallet", "pay", bolt11, "--backend", payer]);
    if !again.status.success() {
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(err.contains("already paid"), "{err}");
        assert_eq!(again.status.code(), Some(3));
    } else {
        assert_eq!(json(&again)["preimage"], paid["preimage"]);
    }
}

#[test]
fn wallet_commands_against_the_devnode_server() {
    let node = devnode(&["--api-key", "k3y"]);
    let shop = format!("devnode://k3y@{}/shop", node.1);
    let alice = format!("devnode://k3y@{}/alice", node.1);
    round_trip(&shop, &alice);

    // Errors name the backend and the call, and say whether retrying helps.
    let wrong = l402(&[
        "wallet",
        "invoice",
        "--backend",
        &format!("devnode://nope@{}/shop", node.1),
        "--amount-msat",
        "1000",
    ]);
    assert_eq!(wrong.status.code(), Some(3));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("devnode create invoice: credentials refused"),
        "{err}"
    );
    assert!(err.contains("retrying will not help"), "{err}");
    assert!(!err.contains("nope"), "the key is not printed: {err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = l402(&[
        "wallet",
        "invoice",
        "--backend",
        &format!("devnode://{closed}/shop"),
        "--amount-msat",
        "1000",
    ]);
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        err.contains("unreachable") && err.contains("retrying later may help"),
        "{err}"
    );

    let bad = l402(&[
        "wallet",
        "invoice",
        "--backend",
        "carrierpigeon://x",
        "--amount-msat",
        "1",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown backend scheme"));
}

#[test]
fn wallet_commands_against_a_real_lnbits() {
    let lnbits = l402_test::lnbits::lnbits();
    let host = lnbits.host_port();
    let issuer = format!("lnbits://{}@{host}", lnbits.payee.inkey);
    let payer = format!("lnbits://{}@{host}", lnbits.payer.adminkey);
    round_trip(&issuer, &payer);
    // An invoice key cannot pay.
    let inv = json(&l402(&[
        "wallet",
        "invoice",
        "--backend",
        &issuer,
        "--amount-msat",
        "1000",
    ]));
    let out = l402(&[
        "wallet",
        "pay",
        inv["bolt11"].as_str().unwrap(),
        "--backend",
        &format!("lnbits://{}@{host}", lnbits.payer.inkey),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin key"), "{err}");
    assert!(!err.contains(&lnbits.payer.inkey), "the key is not printed");
}

/// A `TOKIO_WORKER_THREADS` that is not a positive whole number is refused by name before
/// anything runs, for every command that starts a runtime; one worker is fine.
#[test]
fn a_bad_worker_thread_count_is_named() {
    let node = devnode(&[]);
    let shop = format!("devnode://{}/shop", node.1);
    let invoice_with = |threads: &str| {
        Command::new(env!("CARGO_BIN_EXE_l402"))
            .args([
                "wallet",
                "invoice",
                "--backend",
                &shop,
                "--amount-msat",
                "1000",
            ])
            .env("TOKIO_WORKER_THREADS", threads)
            .output()
            .unwrap()
    };
    for bad in ["0", "two", "-1", ""] {
        let o = invoice_with(bad);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("TOKIO_WORKER_THREADS must be a whole number")
                && !err.contains("panicked"),
            "{bad:?}: {err}"
        );
    }
    let o = invoice_with(" 1 ");
    assert!(json(&o)["bolt11"].as_str().unwrap().starts_with("lnbcrt"));
}
