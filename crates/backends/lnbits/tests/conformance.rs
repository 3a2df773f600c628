//! The backend conformance suite against a real LNbits 1.6.2 (FakeWallet funding source), which
//! `l402_test::lnbits` installs and starts once for this test binary.
//!
//! The issuer is the `payee` wallet, once with its invoice key and once with its admin key; the
//! payer is the `payer` wallet's admin key. Payments between them are internal to LNbits.

mod common;

use l402::Msat;
use l402_lnbits::LnbitsBackend;
use l402_test::conformance::{self as suite, Quirks};
use l402_test::lnbits::lnbits;

use common::{backend, unknown_key};

fn quirks() -> Quirks {
    Quirks {
        // Above the payer's 1 000 000 sat but below LNbits' default invoice cap (10 000 000 sat),
        // so the invoice is created and the *payment* must be refused.
        unaffordable: Msat::from_sat(5_000_000),
        ..Quirks::default()
    }
}

fn payer() -> LnbitsBackend {
    backend(&lnbits().payer.adminkey)
}

macro_rules! suite_tests {
    ($modname:ident, $issuer_key:expr) => {
        mod $modname {
            use super::*;

            fn issuer() -> LnbitsBackend {
                backend(&$issuer_key)
            }

            l402_test::state_tests!((issuer(), payer()), quirks());
        }
    };
}

suite_tests!(invoice_key_issuer, lnbits().payee.inkey);
suite_tests!(admin_key_issuer, lnbits().payee.adminkey);

#[tokio::test]
async fn wrong_credentials() {
    let wrong = backend(&unknown_key());
    suite::wrong_credentials(&wrong, &wrong).await;
}

#[tokio::test]
async fn unreachable() {
    suite::unreachable(|addr| {
        LnbitsBackend::from_uri(&format!("lnbits://{}@{addr}", unknown_key())).unwrap()
    })
    .await;
}

#[tokio::test]
async fn timeout() {
    suite::timeout(|addr| {
        LnbitsBackend::from_uri(&format!("lnbits://{}@{addr}?timeout=1s", unknown_key())).unwrap()
    })
    .await;
}
