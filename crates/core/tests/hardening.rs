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
fn huge_lists_are_refused() {
    let many: Vec<String> = (0..MAX_LIST_ENTRIES + 1).map(|i| format!("c{i}")).collect();
    let first = format!("x_capabilities={}", many.join(","));
    let (cred, key) = token(&[&first]);
    // Appended by the holder, no key needed: the same huge list again.
    let cred = Credential::new(
        cred.macaroon().with_first_party_caveat(&first),
        cred.preimage().clone(),
    );
    let err = Verifier::new()
        .verify(&cred, &key, &Context::at(0))
        .unwrap_err();
    assert!(
        matches!(err, Error::Caveat(CaveatError::Malformed { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("more than 256 entries"), "{err}");
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

/// Constraints: present, unchanged when repeated, equal to the configured value; a custom
/// satisfier for the same condition decides the value instead.
#[test]
fn constraints_are_required_fixed_and_exact() {
    use std::sync::Arc;

    let constraints: Arc<[(String, String)]> = Arc::new([("region".into(), "eu".into())]);
    let v = Verifier::new()
        .service("api")
        .constraints(constraints.clone());
    let at = Context::at(0);
    let (ok, key) = token(&["services=api:0", "region=eu"]);
    assert!(v.verify(&ok, &key, &at).is_ok());

    let (missing, key) = token(&["services=api:0"]);
    assert_eq!(
        v.verify(&missing, &key, &at),
        Err(Error::Caveat(CaveatError::Missing {
            condition: "region".into()
        }))
    );
    let (other, key) = token(&["services=api:0", "region=us"]);
    let err = v.verify(&other, &key, &at).unwrap_err();
    assert!(
        matches!(&err, Error::Caveat(CaveatError::Refused { condition, .. }) if condition == "region"),
        "{err}"
    );
    assert!(err.to_string().contains("\"eu\""), "{err}");
    // Repeated with the same value is fine; changed (even back to the configured value at the
    // end) is not.
    let (same, key) = token(&["services=api:0", "region=eu", "region=eu"]);
    assert!(v.verify(&same, &key, &at).is_ok());
    let (changed, key) = token(&["services=api:0", "region=us", "region=eu"]);
    assert!(matches!(
        v.verify(&changed, &key, &at),
        Err(Error::Caveat(CaveatError::NotNarrowing { .. }))
    ));

    // A custom satisfier for the condition takes precedence over the value check.
    struct AnyRegion;
    impl l402::Satisfier for AnyRegion {
        fn condition(&self) -> &str {
            "region"
        }
        fn satisfy_previous(&self, _: &str, _: &str) -> Result<(), CaveatError> {
            Ok(())
        }
        fn satisfy_final(&self, _: &str) -> Result<(), CaveatError> {
            Ok(())
        }
    }
    let custom = Verifier::new()
        .service("api")
        .constraints(constraints)
        .satisfier(Arc::new(AnyRegion));
    let (other, key) = token(&["services=api:0", "region=us"]);
    assert!(custom.verify(&other, &key, &at).is_ok());
    let (missing, key) = token(&["services=api:0"]);
    assert!(
        custom.verify(&missing, &key, &at).is_err(),
        "still required"
    );
}

/// Tokens with more caveats than fit on the stack are checked the same way.
#[test]
fn many_caveats_are_all_checked() {
    let mut caveats: Vec<String> = (0..24).map(|i| format!("note{i}=x")).collect();
    caveats.push("services=api:0".into());
    caveats.push("api_valid_until=100".into());
    let refs: Vec<&str> = caveats.iter().map(String::as_str).collect();
    let (cred, key) = token(&refs);
    let v = Verifier::new().service("api").require("note23");
    assert!(v.verify(&cred, &key, &Context::at(50)).is_ok());
    assert!(matches!(
        v.verify(&cred, &key, &Context::at(100)),
        Err(Error::Caveat(CaveatError::Expired { .. }))
    ));
    let v = Verifier::new().service("api").require("note24");
    assert!(v.verify(&cred, &key, &Context::at(50)).is_err());
}

/// A prechecked preflight vouches only for a credential with the same identifier and preimage;
/// anything else is preflighted in full (and a wrong preimage still fails).
#[test]
fn a_prechecked_preflight_vouches_only_for_its_own_credential() {
    let (cred, _) = token(&["services=api:0"]);
    let v = Verifier::new().service("api");
    let prior = v.preflight(&cred).unwrap().prechecked();
    let again = v.preflight_with(&cred, &prior).unwrap();
    assert_eq!(again.key_id(), cred.identifier().unwrap().key_id());

    // Same identifier, another preimage: the preimage is checked, and fails.
    let wrong = Credential::new(cred.macaroon().clone(), Preimage::random());
    assert_eq!(
        v.preflight_with(&wrong, &prior).unwrap_err(),
        Error::PreimageMismatch
    );
    // Another token entirely: its own key id, not the prior one's.
    let (other, _) = token(&["services=api:0"]);
    let pre = v.preflight_with(&other, &prior).unwrap();
    assert_eq!(pre.key_id(), other.identifier().unwrap().key_id());
    assert_ne!(pre.key_id(), again.key_id());
}
