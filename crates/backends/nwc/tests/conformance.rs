//! The backend conformance suite over a real relay:
//! `NwcBackend` → relay → `NwcWalletService` → dev node wallet, for the issuer ("shop") and the
//! payer ("alice"), once with NIP-44 v2 negotiated and once with a NIP-04-only wallet service.

mod common;

use std::time::Duration;

use l402_nwc::{Encryption, NwcBackend, ServiceOptions};
use l402_test::conformance::{self as suite, Quirks};

fn nip04_only() -> ServiceOptions {
    ServiceOptions {
        encryptions: vec![Encryption::Nip04],
        ..ServiceOptions::default()
    }
}

macro_rules! suite_tests {
    ($modname:ident, $options:expr, $scheme:expr) => {
        mod $modname {
            use super::*;

            #[tokio::test]
            async fn negotiates_the_expected_scheme() {
                let (i, p, _env) = common::pair($options).await;
                assert_eq!(i.encryption().await.unwrap(), $scheme);
                assert_eq!(p.encryption().await.unwrap(), $scheme);
            }

            l402_test::state_tests!(common::pair($options).await, Quirks::default());

            #[tokio::test]
            async fn wrong_credentials() {
                // The right wallet and relay, a secret the service never issued: the service
                // answers UNAUTHORIZED at once.
                let (_i, _p, env) = common::pair($options).await;
                let wallet = env.shop.connection_uri().to_owned();
                let wallet = NwcBackend::from_uri(&wallet).unwrap().wallet_pubkey();
                let stranger = NwcBackend::from_uri(&common::uri_with_random_secret(
                    &wallet,
                    &env.relay.url,
                    "&timeout=60s",
                ))
                .unwrap();
                let started = std::time::Instant::now();
                suite::wrong_credentials(&stranger, &stranger).await;
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "refused fast, not timed out: {:?}",
                    started.elapsed()
                );
            }
        }
    };
}

suite_tests!(nip44, ServiceOptions::default(), Encryption::Nip44V2);
suite_tests!(nip04, nip04_only(), Encryption::Nip04);

fn uri_for(addr: std::net::SocketAddr, extra: &str) -> String {
    let wallet = nostr::key::Keys::generate().public_key().to_hex();
    common::uri_with_random_secret(&wallet, &format!("ws://{addr}"), extra)
}

#[tokio::test]
async fn unreachable_relay() {
    suite::unreachable(|addr| NwcBackend::from_uri(&uri_for(addr, "")).unwrap()).await;
}

#[tokio::test]
async fn relay_that_never_completes_the_handshake() {
    suite::timeout(|addr| NwcBackend::from_uri(&uri_for(addr, "&timeout=1s")).unwrap()).await;
}
