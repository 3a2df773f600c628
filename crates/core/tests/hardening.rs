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

/// A macaroon remembered after one verification is trusted again only when it is the very same
/// macaroon under the very same key; everything else gets the full signature chain.
#[test]
fn a_signature_memo_only_vouches_for_the_macaroon_it_remembers() {
    use l402::macaroon::{Caveat, Macaroon};

    let (cred, key) = token(&["services=api:0", "api_valid_until=1000"]);
    let v = Verifier::new().service("api");
    let at = Context::at(10);
    let (token, memo) = v
        .preflight(&cred)
        .unwrap()
        .finish_with_memo(&v, &key, &at, None)
        .unwrap();
    let memo = memo.expect("a first verification yields a memo");

    // The same macaroon again: accepted through the memo (no new memo), same token.
    let (again, none) = v
        .preflight(&cred)
        .unwrap()
        .finish_with_memo(&v, &key, &at, Some(&memo))
        .unwrap();
    assert!(none.is_none(), "the memo was used");
    assert_eq!(again, token);

    // Caveats are still checked on the memo path.
    assert!(matches!(
        v.preflight(&cred)
            .unwrap()
            .finish_with_memo(&v, &key, &Context::at(1000), Some(&memo)),
        Err(Error::Caveat(_))
    ));

    // Other caveats carrying the remembered signature: the chain is computed, and fails.
    let m = cred.macaroon();
    let forged_caveats = vec![
        Caveat::first_party("services=api:0"),
        Caveat::first_party("api_valid_until=9999999999"),
    ];
    let forged = Credential::new(
        Macaroon::from_raw_parts(
            m.location(),
            m.identifier().to_vec(),
            forged_caveats,
            *m.signature(),
        ),
        cred.preimage().clone(),
    );
    assert_eq!(
        v.preflight(&forged)
            .unwrap()
            .finish_with_memo(&v, &key, &at, Some(&memo))
            .unwrap_err(),
        Error::BadSignature
    );
    // Dropping a caveat, keeping the signature: also refused.
    let shorter = Credential::new(
        Macaroon::from_raw_parts(
            m.location(),
            m.identifier().to_vec(),
            m.caveats()[..1].to_vec(),
            *m.signature(),
        ),
        cred.preimage().clone(),
    );
    assert_eq!(
        v.preflight(&shorter)
            .unwrap()
            .finish_with_memo(&v, &key, &at, Some(&memo))
            .unwrap_err(),
        Error::BadSignature
    );

    // Under another root key the memo does not apply.
    let other = RootKey::generate();
    assert_eq!(
        v.preflight(&cred)
            .unwrap()
            .finish_with_memo(&v, &other, &at, Some(&memo))
            .unwrap_err(),
        Error::BadSignature
    );

    // A genuinely attenuated macaroon verifies by its chain and yields its own memo.
    let narrowed = Credential::new(
        m.with_first_party_caveat("api_valid_until=500"),
        cred.preimage().clone(),
    );
    let (_, fresh) = v
        .preflight(&narrowed)
        .unwrap()
        .finish_with_memo(&v, &key, &at, Some(&memo))
        .unwrap();
    assert!(fresh.is_some());
}
