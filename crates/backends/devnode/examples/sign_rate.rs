//! How fast this core signs BOLT11 invoices: the baseline `bench/run.sh` divides the challenge
//! minting rate by, measured in the same run, on the same core, between minting rounds (a rate
//! from another time on a shared machine can differ by half).
//!
//! Usage: `sign_rate SECONDS` — signs for SECONDS on this thread, half of it building and signing
//! regtest invoices with lightning-invoice's builder (what any node does per invoice), half
//! making the ECDSA signature alone over a 32-byte hash (the floor of any invoice). Prints one
//! line: `build_sign <per second> <µs each> ecdsa <per second> <µs each>`.

#[path = "../benches/support/signing.rs"]
mod signing;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use signing::{hash_of, sign_invoice};

/// Calls `f` with a counter until `secs` have passed; returns calls per second.
fn rate(secs: f64, mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while start.elapsed() < limit {
        // Check the clock every 64 calls: a call costs tens of microseconds.
        for _ in 0..64 {
            n += 1;
            f(n);
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = match std::env::args().nth(1).map(|s| s.parse()) {
        Some(Ok(s)) if s > 0.0 => s,
        _ => {
            eprintln!("usage: sign_rate SECONDS (a positive number)");
            std::process::exit(2);
        }
    };
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[0x11; 32]).expect("a valid key");
    let build_sign = rate(secs / 2.0, |n| {
        black_box(sign_invoice(&secp, &key, n));
    });
    let ecdsa = rate(secs / 2.0, |n| {
        let msg = Message::from_digest(black_box(hash_of(n)));
        black_box(secp.sign_ecdsa_recoverable(&msg, &key));
    });
    println!(
        "build_sign {build_sign:.0} {:.2} ecdsa {ecdsa:.0} {:.2}",
        1e6 / build_sign,
        1e6 / ecdsa
    );
}
