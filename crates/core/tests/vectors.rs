//! The L402 end-to-end vector and the values from Aperture's tests, checked byte for byte.

use l402::macaroon::{Macaroon, crypto};
use l402::{
    CaveatError, Context, Credential, CredentialForm, Error, Identifier, KeyId, PaymentHash,
    Preimage, RootKey, Scheme, TokenId, TokenSpec, Verifier, mint,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn vector() -> Value {
    load("l402.json")
}

fn root_key(v: &Value) -> RootKey {
    s(&v["root_key"]).parse().unwrap()
}

#[test]
fn identifier_and_key_id() {
    let v = vector();
    let hash: PaymentHash = s(&v["payment_hash"]).parse().unwrap();
    let token: TokenId = s(&v["token_id"]).parse().unwrap();
    let preimage: Preimage = s(&v["preimage"]).parse().unwrap();
    assert_eq!(preimage.payment_hash(), hash);
    let id = Identifier::new(hash, token);
    assert_eq!(hex::encode(id.encode()), s(&v["identifier"]));
    assert_eq!(id.key_id().to_hex(), s(&v["key_id"]));
    assert_eq!(
        KeyId::of_identifier(&hex::decode(s(&v["identifier"])).unwrap()),
        id.key_id()
    );
}

#[test]
fn mint_matches_byte_for_byte() {
    let v = vector();
    let key = root_key(&v);
    assert_eq!(
        hex::encode(&crypto::derive_key(key.as_bytes())[..]),
        s(&v["derived_key"])
    );
    let id = Identifier::decode(&hex::decode(s(&v["identifier"])).unwrap()).unwrap();

    let mut m = mint(&key, &id, s(&v["location"]), &[]);
    assert_eq!(hex::encode(m.signature()), s(&v["sig_0"]));
    for step in v["chain"].as_array().unwrap() {
        m.add_first_party_caveat(s(&step["caveat"]));
        assert_eq!(hex::encode(m.signature()), s(&step["signature"]));
    }
    assert_eq!(m.to_hex(), s(&v["v2_hex"]));
    assert_eq!(m.to_base64(), s(&v["v2_base64"]));
    assert_eq!(m.to_json_v2(), s(&v["go_json"]));

    // The same through the TokenSpec builder (Aperture's caveat order).
    let caveats = TokenSpec::new(s(&v["service"]), 0)
        .capabilities(["forecast", "history"])
        .valid_until(v["valid_until"].as_i64().unwrap())
        .caveats()
        .unwrap();
    assert_eq!(
        mint(&key, &id, "lsat", &caveats).to_base64(),
        s(&v["v2_base64"])
    );

    // The erratum: HMAC with the root key directly gives a signature that must not verify.
    let wrong = s(&v["wrong_sig_without_key_derivation"]);
    assert_ne!(hex::encode(m.signature()), wrong);
}

#[test]
fn credential_verifies_for_the_right_service_time_and_preimage() {
    let v = vector();
    let key = root_key(&v);
    let valid_until = v["valid_until"].as_i64().unwrap();
    let cred = Credential::parse_authorization(s(&v["authorization"]))
        .unwrap()
        .unwrap();
    let weather = Verifier::new().service("weather");
    let token = weather
        .verify(&cred, &key, &Context::at(valid_until - 1))
        .unwrap();
    assert_eq!(token.token_id().to_hex(), s(&v["token_id"]));
    assert_eq!(token.tier(), Some(0));
    assert_eq!(
        token.capabilities().unwrap(),
        &["forecast".to_string(), "history".to_string()]
    );
    assert_eq!(token.valid_until(), Some(valid_until));
    assert!(
        weather
            .verify(
                &cred,
                &key,
                &Context::at(valid_until - 1).with_capability("history")
            )
            .is_ok()
    );

    // Expired.
    assert!(matches!(
        weather.verify(&cred, &key, &Context::at(valid_until)),
        Err(Error::Caveat(CaveatError::Expired { .. }))
    ));
    // Another service.
    assert!(matches!(
        Verifier::new()
            .service("maps")
            .verify(&cred, &key, &Context::at(0)),
        Err(Error::Caveat(CaveatError::ServiceNotAuthorized { .. }))
    ));
    // A capability it does not grant.
    assert!(matches!(
        weather.verify(&cred, &key, &Context::at(0).with_capability("admin")),
        Err(Error::Caveat(CaveatError::CapabilityNotAuthorized { .. }))
    ));
    // Another preimage.
    let mut other = cred.to_authorization(Scheme::L402);
    other.replace_range(other.len() - 2.., "21");
    let other = Credential::parse_authorization(&other).unwrap().unwrap();
    assert_eq!(
        weather.verify(&other, &key, &Context::at(0)),
        Err(Error::PreimageMismatch)
    );
    // Another root key.
    assert_eq!(
        weather.verify(&cred, &RootKey::from_bytes([9; 32]), &Context::at(0)),
        Err(Error::BadSignature)
    );
}

#[test]
fn hex_header_form() {
    let v = vector();
    let key = root_key(&v);
    let hv = &v["hex_header"];
    let cred = Credential::parse_hex("grpc-metadata-macaroon", s(&hv["value"])).unwrap();
    assert_eq!(
        cred.form(),
        CredentialForm::HexHeader("grpc-metadata-macaroon")
    );
    assert_eq!(cred.preimage().to_hex(), s(&v["preimage"]));
    assert_eq!(
        hex::encode(cred.macaroon().signature()),
        s(&hv["final_signature"])
    );
    assert!(
        Verifier::new()
            .service("weather")
            .verify(&cred, &key, &Context::at(0))
            .is_ok()
    );
    // And we produce exactly that value from the base credential.
    let base = Credential::parse_authorization(s(&v["authorization"]))
        .unwrap()
        .unwrap();
    assert_eq!(base.to_hex_header(), s(&hv["value"]));
}

#[test]
fn attenuation_narrows_and_widening_fails() {
    let v = vector();
    let key = root_key(&v);
    let preimage = s(&v["preimage"]);
    let weather = Verifier::new().service("weather");

    let ok = &v["attenuation_valid"];
    let base = Macaroon::from_text(s(&v["v2_base64"])).unwrap();
    let narrowed = base.with_first_party_caveat(s(&ok["caveat"]));
    assert_eq!(hex::encode(narrowed.signature()), s(&ok["signature"]));
    assert_eq!(narrowed.to_base64(), s(&ok["base64"]));
    let cred = Credential::parse_authorization(&format!("L402 {}:{preimage}", s(&ok["base64"])))
        .unwrap()
        .unwrap();
    let token = weather.verify(&cred, &key, &Context::at(0)).unwrap();
    assert_eq!(token.valid_until(), Some(1_800_000_000));
    assert!(
        weather
            .verify(&cred, &key, &Context::at(1_800_000_000))
            .is_err()
    );

    let bad = &v["attenuation_widening"];
    let widened = base.with_first_party_caveat(s(&bad["caveat"]));
    assert_eq!(hex::encode(widened.signature()), s(&bad["signature"]));
    assert_eq!(widened.to_base64(), s(&bad["base64"]));
    let cred = Credential::parse_authorization(&format!("L402 {}:{preimage}", s(&bad["base64"])))
        .unwrap()
        .unwrap();
    assert!(matches!(
        weather.verify(&cred, &key, &Context::at(0)),
        Err(Error::Caveat(CaveatError::NotNarrowing { .. }))
    ));
    // Widening fails even when the verifier targets no service at all.
    assert!(matches!(
        Verifier::new().verify(&cred, &key, &Context::at(0)),
        Err(Error::Caveat(CaveatError::NotNarrowing { .. }))
    ));
}

fn ascii_mac(v: &Value, caveat: Option<&str>) -> Macaroon {
    let mut m = Macaroon::new(
        s(&v["root_key_ascii"]).as_bytes(),
        s(&v["identifier_ascii"]).as_bytes().to_vec(),
        s(&v["location"]),
    );
    if let Some(c) = caveat {
        m.add_first_party_caveat(c);
    }
    m
}

#[test]
fn aperture_test_inputs() {
    let ap = load("aperture.json");
    let a = &ap["authenticator"];
    let m = ascii_mac(a, Some(s(&a["caveat"])));
    assert_eq!(m.to_hex(), s(&a["v2_hex"]));
    assert_eq!(m.to_base64(), s(&a["base64"]));

    let c = &ap["client_interceptor"];
    let m = ascii_mac(c, None);
    assert_eq!(m.to_base64(), s(&c["base64"]));
    assert_eq!(hex::encode(m.signature()), s(&c["signature"]));

    let p = &ap["pr208_header"];
    assert_eq!(ascii_mac(p, None).to_base64(), s(&p["base64"]));

    let g = &ap["grpc_dummy"];
    assert_eq!(ascii_mac(g, None).to_hex(), s(&g["v2_hex"]));

    let i = &ap["identifier"];
    let id = Identifier::new(
        s(&i["payment_hash"]).parse().unwrap(),
        s(&i["token_id"]).parse().unwrap(),
    );
    assert_eq!(hex::encode(id.encode()), s(&i["hex"]));

    let mut tid = [0u8; 32];
    tid[..3].copy_from_slice(&hex::decode(s(&ap["token_id_format"]["bytes_prefix"])).unwrap());
    assert_eq!(
        TokenId::from_bytes(tid).to_string(),
        s(&ap["token_id_format"]["hex"])
    );
}

#[test]
fn aperture_challenge_with_testnet_invoice_parses() {
    let ap = load("aperture.json");
    let c = &ap["client_interceptor"];
    let header = format!(
        "LSAT macaroon=\"{}\", invoice=\"{}\"",
        s(&c["base64"]),
        s(&c["invoice"])
    );
    let got = l402::Challenge::parse_all([header.as_str()]).unwrap();
    assert_eq!(got[0].scheme(), Scheme::Lsat);
    assert_eq!(got[0].invoice(), s(&c["invoice"]));
    assert_eq!(got[0].macaroon(), &ascii_mac(c, None));
}
