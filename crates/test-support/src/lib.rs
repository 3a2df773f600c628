//! Test support for the l402 toolkit (not published).
//!
//! * [`interop`] runs third-party implementations (pymacaroons, npm `macaroon`, lsat-js) as peers:
//!   it installs them on first use (`scripts/interop/setup.sh`) and speaks to them with one JSON
//!   request and one JSON response per call.
//! * [`conformance`] is the suite every Lightning backend adapter runs.
//! * [`invoice`] makes real, signed BOLT11 invoices for tests that need one.
//! * [`lnbits`] installs and starts a real LNbits (`scripts/lnbits/up.sh`) with two funded test
//!   wallets, once per test process, and stops it when the process exits.
//! * [`postgres`] starts a throw-away PostgreSQL server for store tests.

pub mod conformance;
pub mod interop;
pub mod invoice;
pub mod lnbits;
pub mod postgres;

/// The workspace root (where `Cargo.toml`, `scripts/` and `target/` live).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// 32 random bytes.
pub fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("OS random source");
    b
}

/// The clock, in whole seconds since the Unix epoch (what `_valid_until` caveats hold).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The value of the first first-party caveat of `macaroon` whose condition is `condition`.
pub fn caveat_value(macaroon: &l402_macaroon::Macaroon, condition: &str) -> Option<String> {
    macaroon.caveats().iter().find_map(|c| {
        let c = l402::Caveat::decode(c.id()).ok()?;
        (c.condition() == condition).then(|| c.value().to_owned())
    })
}
