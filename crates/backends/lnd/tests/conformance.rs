//! The backend conformance suite, against the lnd REST stand-in over HTTPS with a pinned,
//! CA-flagged self-signed certificate (as lnd's `tls.cert` is).

mod standin;

use std::net::SocketAddr;
use std::time::Duration;

use l402_lnd::LndBackend;
use l402_test::conformance::{self as suite, Quirks};
use standin::{NetConfig, Network, Node};

/// lnd reports expired invoices as CANCELED: it has no expired state.
fn quirks() -> Quirks {
    Quirks {
        expired_is_cancelled: true,
        ..Quirks::default()
    }
}

/// A shop node and a payer node on one stand-in network, and an adapter for each.
async fn pair() -> (LndBackend, LndBackend, Node, Node) {
    let net = Network::new(NetConfig::default());
    let shop = net.node(0).await;
    let alice = net.node(1_000_000_000).await;
    let issuer = LndBackend::from_uri(&shop.uri()).unwrap();
    let payer = LndBackend::from_uri(&alice.uri()).unwrap();
    (issuer, payer, shop, alice)
}

/// The issuer with `invoice.macaroon`, as a paywall runs it.
async fn pair_with_invoice_macaroon() -> (LndBackend, LndBackend, Node, Node) {
    let (_, payer, shop, alice) = pair().await;
    let issuer = LndBackend::from_uri(&shop.uri_with(
        &shop.invoice_macaroon_path(),
        &format!("cert={}", shop.cert_path().display()),
    ))
    .unwrap();
    (issuer, payer, shop, alice)
}

macro_rules! suite_tests {
    ($modname:ident, $make:expr) => {
        mod $modname {
            use super::*;

            l402_test::state_tests!($make, quirks());
        }
    };
}

suite_tests!(admin_macaroon, pair().await);
suite_tests!(invoice_macaroon_issuer, pair_with_invoice_macaroon().await);

#[tokio::test]
async fn wrong_credentials() {
    let net = Network::new(NetConfig::default());
    let node = net.node(1_000_000).await;
    let other = net.node(1_000_000).await;
    let cert = format!("cert={}", node.cert_path().display());
    // Another node's macaroon: lnd's bakery answers "verification failed: signature mismatch".
    let lnd = LndBackend::from_uri(&node.uri_with(&other.admin_macaroon_path(), &cert)).unwrap();
    suite::wrong_credentials(&lnd, &lnd).await;
}

fn pinned(addr: SocketAddr, extra: &str) -> LndBackend {
    // Any readable PEM will do: nothing is listening.
    let cert = standin::lnd_like_certificate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.cert");
    std::fs::write(&path, cert.pem).unwrap();
    LndBackend::from_uri(&format!(
        "lnd+rest://{addr}?macaroon_hex=0201036c6e64&cert={}{extra}",
        path.display()
    ))
    .unwrap()
}

#[tokio::test]
async fn unreachable() {
    suite::unreachable(|addr| pinned(addr, "")).await;
}

#[tokio::test]
async fn timeout() {
    let started = std::time::Instant::now();
    suite::timeout(|addr| pinned(addr, "&timeout=1s")).await;
    assert!(started.elapsed() < Duration::from_secs(10));
}
