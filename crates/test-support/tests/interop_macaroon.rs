//! Macaroons cross-checked against pymacaroons and npm `macaroon`: they verify what we mint, we
//! verify what they mint, and the bytes agree.

use l402::macaroon::Macaroon;
use l402::{Identifier, PaymentHash, RootKey, TokenId, TokenSpec, mint};
use l402_test::interop::Peer;
use l402_test::random32;
use serde_json::{Value, json};

fn random_u32() -> u32 {
    u32::from_le_bytes(random32()[..4].try_into().unwrap())
}

/// Between 0 and 7 caveats: Aperture's kinds plus free text, some non-ASCII, some with `=` in
/// the value. Seven matters: npm `macaroon` 3.0.4 needed a patch for four or more.
fn random_caveats() -> Vec<String> {
    let pool = [
        "services=weather:0".to_string(),
        format!("weather_capabilities=forecast,history{}", random_u32() % 9),
        format!(
            "weather_valid_until={}",
            1_700_000_000 + u64::from(random_u32())
        ),
        format!("account = {}", random_u32()),
        "région=été".to_string(),
        format!("expiration={}=", random_u32()),
        format!("k{}=v with spaces", random_u32() % 100),
    ];
    let n = (random_u32() % 8) as usize;
    (0..n)
        .map(|_| pool[(random_u32() as usize) % pool.len()].clone())
        .collect()
}

fn aperture_identifier() -> Vec<u8> {
    Identifier::new(PaymentHash::from_bytes(random32()), TokenId::random())
        .encode()
        .to_vec()
}

fn text_identifier() -> Vec<u8> {
    format!("key-{}", random_u32()).into_bytes()
}

fn ours(key: &[u8; 32], id: &[u8], location: &str, caveats: &[String]) -> Macaroon {
    let mut m = Macaroon::new(key, id.to_vec(), location);
    for c in caveats {
        m.add_first_party_caveat(c);
    }
    m
}

fn verify(peer: Peer, key: &[u8; 32], text: &str, allow: &[String]) -> Value {
    peer.call(&json!({
        "op": "verify",
        "root_key_hex": hex::encode(key),
        "macaroon": text,
        "allow": allow,
    }))
}

#[test]
fn peers_verify_what_we_mint() {
    for round in 0..6 {
        let key = random32();
        let id = if round % 2 == 0 {
            aperture_identifier()
        } else {
            text_identifier()
        };
        let caveats = random_caveats();
        let m = ours(&key, &id, "l402-interop", &caveats);
        let mut forms = vec![
            ("v2 std base64", m.to_base64()),
            ("v2 url base64", m.to_base64_url()),
            ("v2 json", m.to_json_v2()),
        ];
        if let Ok(v1json) = m.to_json_v1() {
            forms.push(("v1 json", v1json));
        }
        for peer in [Peer::Pymacaroons, Peer::NpmMacaroon] {
            for (form, text) in &forms {
                let got = verify(peer, &key, text, &caveats);
                assert_eq!(got["ok"], true, "{peer:?} {form} {caveats:?}: {got}");
                assert_eq!(got["identifier_hex"], hex::encode(&id), "{peer:?} {form}");
                assert_eq!(
                    got["signature_hex"],
                    hex::encode(m.signature()),
                    "{peer:?} {form}"
                );
                assert_eq!(got["caveats"], json!(caveats), "{peer:?} {form}");

                let wrong = verify(peer, &random32(), text, &caveats);
                assert_eq!(wrong["ok"], false, "{peer:?} {form}: wrong key accepted");
                if let Some(first) = caveats.first() {
                    let fewer: Vec<String> =
                        caveats.iter().filter(|c| *c != first).cloned().collect();
                    let refused = verify(peer, &key, text, &fewer);
                    assert_eq!(refused["ok"], false, "{peer:?} {form}: caveat not enforced");
                }
            }
        }
        // V1 binary is readable by pymacaroons only (npm refuses V1 binary outright).
        if let Ok(v1) = m.to_binary_v1() {
            let text = l402::macaroon::encode_base64_url(&v1);
            let got = verify(Peer::Pymacaroons, &key, &text, &caveats);
            assert_eq!(got["ok"], true, "pymacaroons v1 binary: {got}");
        }
    }
}

#[test]
fn we_verify_what_peers_mint() {
    for peer in [Peer::Pymacaroons, Peer::NpmMacaroon] {
        for round in 0..4 {
            let key = random32();
            let id = if round % 2 == 0 {
                aperture_identifier()
            } else {
                text_identifier()
            };
            let caveats = random_caveats();
            let location = if round == 3 { "" } else { "l402-interop" };
            let minted = peer.call(&json!({
                "op": "mint",
                "root_key_hex": hex::encode(key),
                "identifier_hex": hex::encode(&id),
                "location": location,
                "caveats": caveats,
            }));
            let want = ours(&key, &id, location, &caveats);
            for form in ["v2_b64url", "v2_b64std_padded", "v2_json", "v1_b64"] {
                let Some(text) = minted[form].as_str() else {
                    continue;
                };
                let m = Macaroon::from_text(text)
                    .unwrap_or_else(|e| panic!("{peer:?} {form} {text}: {e}"));
                assert_eq!(m, want, "{peer:?} {form}: decoded differently");
                let conditions = m.verify_signature(&key).unwrap();
                assert_eq!(conditions.len(), caveats.len());
                m.verify(&key, |c| {
                    if caveats.iter().any(|x| x.as_bytes() == c) {
                        Ok(())
                    } else {
                        Err("not allowed")
                    }
                })
                .unwrap();
                assert!(m.verify_signature(&random32()).is_err(), "{peer:?} {form}");
                if form == "v2_b64url" && !location.is_empty() {
                    // Byte-identical V2 binary (pymacaroons adds an empty location field when
                    // there is none, which we read but do not write).
                    assert_eq!(m.to_base64_url(), text, "{peer:?}: V2 bytes differ");
                }
            }
            assert_eq!(minted["signature_hex"], hex::encode(want.signature()));
        }
    }
}

#[test]
fn peers_verify_an_aperture_style_l402_macaroon() {
    let key = RootKey::generate();
    let id = Identifier::new(PaymentHash::from_bytes(random32()), TokenId::random());
    let caveats = TokenSpec::new("weather", 0)
        .capabilities(["forecast", "history"])
        .valid_until(1_893_456_000)
        .caveats()
        .unwrap();
    let m = mint(&key, &id, "lsat", &caveats);
    let allow: Vec<String> = caveats.iter().map(ToString::to_string).collect();
    for peer in [Peer::Pymacaroons, Peer::NpmMacaroon] {
        let got = verify(peer, key.as_bytes(), &m.to_base64(), &allow);
        assert_eq!(got["ok"], true, "{peer:?}: {got}");
        assert_eq!(got["identifier_hex"], hex::encode(id.encode()));
    }
}
