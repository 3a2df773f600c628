//! Costs of L402 verification and minting, next to their floor: the HMAC-SHA256 and SHA-256 calls
//! verification cannot avoid (key derivation, identifier, one per caveat, and the preimage hash).
//!
//! Run: `cargo bench -p l402 --bench verify`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use l402::{
    Context, Credential, Identifier, Preimage, RootKey, TokenId, TokenSpec, Verifier, mint,
};
use sha2::{Digest, Sha256};

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().into()
}

fn bench(c: &mut Criterion) {
    let key = RootKey::from_bytes([7; 32]);
    let preimage = Preimage::from_bytes([9; 32]);
    let id = Identifier::new(preimage.payment_hash(), TokenId::from_bytes([3; 32]));
    // Four caveats: Aperture's three plus a client's attenuation of the expiry.
    let mut caveats = TokenSpec::new("weather", 0)
        .capabilities(["forecast", "history"])
        .valid_until(1_900_000_000)
        .caveats()
        .unwrap();
    caveats.push(l402::Caveat::valid_until("weather", 1_800_000_000));
    let macaroon = mint(&key, &id, "lsat", &caveats);
    let credential = Credential::new(macaroon.clone(), preimage.clone());
    let header = credential.to_authorization(l402::Scheme::L402);
    let verifier = Verifier::new().service("weather");
    let ctx = Context::at(1_700_000_000).with_capability("forecast");
    let messages: Vec<Vec<u8>> = caveats.iter().map(|c| c.to_string().into_bytes()).collect();
    let id_bytes = id.encode();

    c.bench_function("floor_6_hmac_1_sha256", |b| {
        b.iter(|| {
            let k = hmac(b"macaroons-key-generator", black_box(key.as_bytes()));
            let mut sig = hmac(&k, black_box(&id_bytes));
            for m in &messages {
                sig = hmac(&sig, m);
            }
            let h: [u8; 32] = Sha256::digest(black_box(preimage.as_bytes())).into();
            (sig, h)
        })
    });
    c.bench_function("verify_4_caveats", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&credential), black_box(&key), &ctx)
                .unwrap()
        })
    });
    c.bench_function("parse_authorization_4_caveats", |b| {
        b.iter(|| {
            Credential::parse_authorization(black_box(&header))
                .unwrap()
                .unwrap()
        })
    });
    c.bench_function("parse_and_verify_4_caveats", |b| {
        b.iter(|| {
            let cred = Credential::parse_authorization(black_box(&header))
                .unwrap()
                .unwrap();
            verifier.verify(&cred, &key, &ctx).unwrap()
        })
    });
    // The macaroon part of the header alone: base64 → bytes → V2 decode.
    let macaroon_b64 = macaroon.to_base64();
    c.bench_function("decode_macaroon_base64_4_caveats", |b| {
        b.iter(|| {
            let bytes = l402::macaroon::decode_base64(black_box(&macaroon_b64)).unwrap();
            l402::macaroon::Macaroon::from_binary(&bytes).unwrap()
        })
    });
    c.bench_function("mint_3_caveats", |b| {
        b.iter(|| mint(black_box(&key), &id, "lsat", &caveats[..3]))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
