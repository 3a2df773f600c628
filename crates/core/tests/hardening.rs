//! Defences against hostile tokens and careless logging.

use l402::{
    CaveatError, Context, Credential, Error, Identifier, MAX_LIST_ENTRIES, Preimage, RootKey,
    TokenId, Verifier, mint,
};

fn token(caveats: &[&str]) -> (Credential, RootKey) {
    let key = RootKey::generate();
    let preimage = Preimage::random();
    let id = Identifier::new(preimage.payment_hash(), TokenId::random());
    let parsed: Vec<l402::Caveat> = caveats.iter().map(|c| c.parse().unwrap()).collect();
    (
        Credential::new(mint(&key, &id, "lsat", &parsed), preimage),
        key,
    )
}

#[test]
fn required_caveats_must_be_present() {
    let (with, key) = token(&["services=api:0", "region=eu"]);
    let v = Verifier::new().service("api").require("region");
    assert!(v.verify(&with, &key, &Context::at(0)).is_ok());
    let (without, key) = token(&["services=api:0"]);
    assert_eq!(
        v.verify(&without, &key, &Context::at(0)),
        Err(Error::Caveat(CaveatError::Missing {
            condition: "region".into()
        }))
    );
}

#[test]
fn huge_lists_are_refused_quickly() {
    let many: Vec<String> = (0..MAX_LIST_ENTRIES + 1).map(|i| format!("c{i}")).collect();
    let first = format!("x_capabilities={}", many.join(","));
    let (cred, key) = token(&[&first]);
    // Appended by the holder, no key needed: the same huge list again.
    let cred = Credential::new(
        cred.macaroon().with_first_party_caveat(&first),
        cred.preimage().clone(),
    );
    let started = std::time::Instant::now();
    let err = Verifier::new()
        .verify(&cred, &key, &Context::at(0))
        .unwrap_err();
    assert!(
        matches!(err, Error::Caveat(CaveatError::Malformed { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("more than 256 entries"), "{err}");
    // Generous bound; the point is that it is not the quadratic 87 ms of a naive check.
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
}

#[test]
fn debug_never_prints_a_usable_credential() {
    let (cred, _) = token(&["services=api:0"]);
    let hex = Credential::parse_hex("macaroon", &cred.to_hex_header()).unwrap();
    for text in [
        format!("{cred:?}"),
        format!("{hex:?}"),
        format!("{:?}", hex.macaroon()),
    ] {
        assert!(!text.contains(&cred.preimage().to_hex()), "{text}");
    }
    assert!(format!("{:?}", hex.macaroon()).contains("preimage=<redacted>"));
}
