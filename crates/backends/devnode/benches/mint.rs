//! What minting a challenge costs, next to its floor: signing a BOLT11 invoice.
//!
//! * `bolt11_sign` — build and sign a regtest invoice with a fixed key (what any Lightning node
//!   must do per challenge); `bolt11_sign_encode` adds the bech32 string;
//!   `ecdsa_sign_recoverable` is the signature alone over a 32-byte hash, the floor of both.
//! * `devnode_create_invoice` — [`DevWallet::create_invoice`] on an in-memory dev node (signing
//!   plus its SQLite insert of the preimage).
//! * `challenge_*` — a whole [`Authority::challenge`]: price, caveats, invoice from the in-memory
//!   dev node, a fresh root key stored (durably: SQLite file, WAL, `synchronous=FULL`; or
//!   `sqlite::memory:` for comparison), macaroon minted. `seq` runs one at a time (the latency a
//!   lone client sees, one fsync each); `par64` runs 64 at once, which is what a loaded proxy
//!   does and what the store's group commit is for (reported per challenge).
//!
//! Run: `cargo bench -p l402-devnode --bench mint`.

#[path = "support/signing.rs"]
mod signing;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use l402::{InvoiceIssuer, InvoiceRequest, Msat};
use l402_devnode::{DevNode, DevNodeConfig, DevWallet};
use l402_store::Store;
use l402_tower::{Authority, AuthorityOptions, Grant, Policy, Rejection};
use signing::{hash_of, sign_invoice};

/// Concurrent challenges per iteration of the `par64` cases.
const PAR: usize = 64;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

type BenchAuthority = Authority<DevWallet, Store>;

async fn authority(node: &DevNode, store_url: &str) -> BenchAuthority {
    let store = Store::connect(store_url).await.expect("store");
    Authority::new(node.wallet("shop"), store, AuthorityOptions::default())
}

async fn one_challenge(a: &BenchAuthority, parts: &http::request::Parts, policy: &Policy) {
    match a.challenge(parts, policy).await {
        Err(Rejection::PaymentRequired { challenge, .. }) => {
            black_box(challenge);
        }
        Err(other) => panic!("unexpected rejection: {other:?}"),
        Ok(Grant::Free | Grant::Token(_)) => panic!("a priced policy must not be free"),
    }
}

fn challenge_cases(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    label: &str,
    a: &BenchAuthority,
) {
    let parts = http::Request::get("/weather/today")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    // Aperture's caveats: services, capabilities, valid_until.
    let policy = Policy::new("weather", Msat::from_sat(10))
        .capabilities(["forecast"])
        .token_lifetime(Duration::from_secs(3600));

    c.bench_function(&format!("challenge_{label}_seq"), |b| {
        b.iter(|| rt.block_on(one_challenge(a, &parts, &policy)))
    });

    let mut g = c.benchmark_group(format!("challenge_{label}_par{PAR}"));
    g.throughput(Throughput::Elements(PAR as u64));
    g.bench_function("batch", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..PAR {
                        let a = a.clone();
                        let parts = parts.clone();
                        let policy = policy.clone();
                        set.spawn(async move { one_challenge(&a, &parts, &policy).await });
                    }
                    while let Some(r) = set.join_next().await {
                        r.expect("challenge task");
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[0x11; 32]).unwrap();
    let mut n = 0u64;
    c.bench_function("bolt11_sign", |b| {
        b.iter(|| {
            n += 1;
            sign_invoice(&secp, &key, black_box(n))
        })
    });
    c.bench_function("bolt11_sign_encode", |b| {
        b.iter(|| {
            n += 1;
            sign_invoice(&secp, &key, black_box(n)).to_string()
        })
    });
    c.bench_function("ecdsa_sign_recoverable", |b| {
        b.iter(|| {
            n += 1;
            secp.sign_ecdsa_recoverable(&Message::from_digest(black_box(hash_of(n))), &key)
        })
    });

    let rt = runtime();
    let node = rt
        .block_on(DevNode::in_memory(DevNodeConfig::default()))
        .expect("dev node");
    let shop = node.wallet("shop");
    c.bench_function("devnode_create_invoice", |b| {
        b.iter(|| {
            rt.block_on(
                shop.create_invoice(InvoiceRequest::new(Msat::from_sat(10), "L402 weather")),
            )
            .unwrap()
        })
    });

    // A durable store on the same disk as the build (not a tmpfs), as `l402 proxy` keeps it.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("l402.db").display());
    let durable = rt.block_on(authority(&node, &url));
    challenge_cases(c, &rt, "sqlite_file", &durable);
    let memory = rt.block_on(authority(&node, "sqlite::memory:"));
    challenge_cases(c, &rt, "sqlite_memory", &memory);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
