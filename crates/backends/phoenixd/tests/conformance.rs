//! The backend conformance suite, run against the phoenixd stand-in: current answers (v0.6.1+),
//! old answers (v0.5.x, no `isExpired`/`expiresAt`), and a paywall on the limited-access password.

mod standin;

use l402_phoenixd::PhoenixdBackend;
use l402_test::conformance::{self as suite, Quirks};
use standin::{Network, Options, PhoenixNode, Version};

/// A shop node and a paying node on one network, and adapters for both (full passwords).
async fn pair(version: Version) -> (PhoenixdBackend, PhoenixdBackend, PhoenixNode, PhoenixNode) {
    let net = Network::new();
    let options = Options {
        version,
        ..Options::default()
    };
    let shop = net.node(options.clone()).await;
    let alice = net.node(options).await;
    (
        PhoenixdBackend::from_uri(&shop.uri()).unwrap(),
        PhoenixdBackend::from_uri(&alice.uri()).unwrap(),
        shop,
        alice,
    )
}

/// The shop issues with `http-password-limited-access`, as a paywall should.
async fn limited_pair() -> (PhoenixdBackend, PhoenixdBackend, PhoenixNode, PhoenixNode) {
    let (_, alice, shop, alice_node) = pair(Version::V0_6_1).await;
    (
        PhoenixdBackend::from_uri(&shop.limited_uri()).unwrap(),
        alice,
        shop,
        alice_node,
    )
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
                    PhoenixdBackend::from_uri(&shop.uri_with_password("not-the-password")).unwrap();
                suite::wrong_credentials(&c, &c).await;
            }
        }
    };
}

suite_tests!(v0_6_1, pair(Version::V0_6_1).await);
suite_tests!(v0_5, pair(Version::V0_5).await);
suite_tests!(limited_password_issuer, limited_pair().await);

#[tokio::test]
async fn unreachable() {
    suite::unreachable(|addr| {
        PhoenixdBackend::from_uri(&format!("phoenixd://:pw@{addr}")).unwrap()
    })
    .await;
    suite::unreachable(|addr| {
        PhoenixdBackend::from_uri(&format!("phoenixd+https://:pw@{addr}")).unwrap()
    })
    .await;
}

#[tokio::test]
async fn timeout() {
    suite::timeout(|addr| {
        PhoenixdBackend::from_uri(&format!("phoenixd://:pw@{addr}?timeout=1s")).unwrap()
    })
    .await;
}
