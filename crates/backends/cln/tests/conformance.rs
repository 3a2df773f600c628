//! The backend conformance suite, run against the clnrest stand-in over HTTPS (trusting its CA,
//! or pinning its certificate) and over plain HTTP.

mod standin;

use l402_cln::ClnBackend;
use l402_test::conformance::{self as suite, Quirks};
use standin::{ClnNode, Network, Options};

/// A shop node and a paying node on one network, and adapters for both.
async fn pair(options: Options) -> (ClnBackend, ClnBackend, ClnNode, ClnNode) {
    let net = Network::new();
    let shop = net.node("shop", options.clone()).await;
    let alice = net.node("alice", options).await;
    (
        ClnBackend::from_uri(&shop.uri()).unwrap(),
        ClnBackend::from_uri(&alice.uri()).unwrap(),
        shop,
        alice,
    )
}

/// Like [`pair`] over HTTPS, but pinning each node's `server.pem` instead of trusting `ca.pem`.
async fn pinned_pair() -> (ClnBackend, ClnBackend, ClnNode, ClnNode) {
    let net = Network::new();
    let shop = net.node("shop", Options::default()).await;
    let alice = net.node("alice", Options::default()).await;
    let pin = |n: &ClnNode| {
        ClnBackend::from_uri(&format!(
            "cln+rest://{}?rune={}&cert={}",
            n.addr,
            n.rune,
            n.certs.as_ref().unwrap().server.display()
        ))
        .unwrap()
    };
    (pin(&shop), pin(&alice), shop, alice)
}

fn https() -> Options {
    Options::default()
}

fn http() -> Options {
    Options {
        tls: false,
        ..Options::default()
    }
}

macro_rules! suite_tests {
    ($modname:ident, $make:expr) => {
        mod $modname {
            use super::*;

            l402_test::state_tests!($make, Quirks::default());

            #[tokio::test]
            async fn wrong_credentials() {
                let (_, _, shop, _) = $make;
                let c =
                    ClnBackend::from_uri(&shop.uri_with_rune("bm90LWEtcnVuZS1vZi10aGlzLW5vZGU"))
                        .unwrap();
                suite::wrong_credentials(&c, &c).await;
            }
        }
    };
}

suite_tests!(over_https, pair(https()).await);
suite_tests!(over_https_pinned, pinned_pair().await);
suite_tests!(over_http, pair(http()).await);

#[tokio::test]
async fn unreachable() {
    suite::unreachable(|addr| {
        ClnBackend::from_uri(&format!("cln+rest://{addr}?rune=abc")).unwrap()
    })
    .await;
    suite::unreachable(|addr| {
        ClnBackend::from_uri(&format!("cln+rest+http://{addr}?rune=abc")).unwrap()
    })
    .await;
}

#[tokio::test]
async fn timeout() {
    // Over HTTPS the silent server stalls the TLS handshake; over HTTP, the answer.
    suite::timeout(|addr| {
        ClnBackend::from_uri(&format!("cln+rest://{addr}?rune=abc&timeout=1s")).unwrap()
    })
    .await;
    suite::timeout(|addr| {
        ClnBackend::from_uri(&format!("cln+rest+http://{addr}?rune=abc&timeout=1s")).unwrap()
    })
    .await;
}
