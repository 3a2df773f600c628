//! Costs of the macaroon layer: the HMAC chain, V2 decoding and encoding.

use criterion::{Criterion, criterion_group, criterion_main};
use l402_macaroon::{Limits, Macaroon, crypto};
use std::hint::black_box;

fn sample(caveats: usize) -> Macaroon {
    let mut m = Macaroon::new(&[7; 32], vec![0; 66], "lsat");
    for i in 0..caveats {
        m.add_first_party_caveat(format!("condition_{i}=some value {i}"));
    }
    m
}

fn bench(c: &mut Criterion) {
    let m = sample(4);
    let bytes = m.to_binary_v2();

    c.bench_function("hmac_sha256_32B", |b| {
        b.iter(|| crypto::hmac(black_box(&[1; 32]), black_box(&[2; 32])))
    });
    c.bench_function("verify_signature_4_caveats", |b| {
        b.iter(|| black_box(&m).verify_signature(black_box(&[7; 32])).unwrap())
    });
    c.bench_function("decode_v2_4_caveats", |b| {
        b.iter(|| Macaroon::from_binary_with(black_box(&bytes), &Limits::DEFAULT).unwrap())
    });
    c.bench_function("encode_v2_4_caveats", |b| {
        b.iter(|| black_box(&m).to_binary_v2())
    });
    c.bench_function("new_plus_4_caveats", |b| b.iter(|| sample(black_box(4))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
