//! The libmacaroons and go-macaroon reference vectors, checked byte for byte.

use l402_macaroon::{Error, Macaroon, decode_base64};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn build(v: &Value) -> Macaroon {
    let mut m = Macaroon::new(
        s(&v["key"]).as_bytes(),
        s(&v["identifier"]).as_bytes().to_vec(),
        s(&v["location"]),
    );
    for c in v["caveats"].as_array().unwrap() {
        m.add_first_party_caveat(s(c));
    }
    m
}

#[test]
fn libmacaroons_serialization_vectors() {
    let vectors = load("libmacaroons.json");
    for v in vectors["serialization"].as_array().unwrap() {
        let name = s(&v["name"]);
        let m = build(v);
        assert_eq!(
            hex::encode(m.signature()),
            s(&v["signature"]),
            "{name}: signature"
        );

        // V2: libmacaroons writes base64url with padding; we decode it and re-encode byte-exact.
        let wire = s(&v["v2_base64url_padded"]);
        let bytes = decode_base64(wire).unwrap();
        assert_eq!(m.to_binary_v2(), bytes, "{name}: V2 bytes");
        assert_eq!(
            Macaroon::from_binary(&bytes).unwrap(),
            m,
            "{name}: V2 decode"
        );
        assert_eq!(
            Macaroon::from_text(wire).unwrap(),
            m,
            "{name}: V2 text decode"
        );
        assert_eq!(
            m.to_base64_url(),
            wire.trim_end_matches('='),
            "{name}: base64url"
        );
        if let Some(h) = v["v2_hex"].as_str() {
            assert_eq!(m.to_hex(), h, "{name}: V2 hex");
            assert_eq!(
                Macaroon::from_text(h).unwrap(),
                m,
                "{name}: hex text decode"
            );
        }
        if let Some(j) = v["v2_json"].as_str() {
            assert_eq!(Macaroon::from_json(j).unwrap(), m, "{name}: V2J decode");
        }
        if let Some(v1) = v["v1_base64url"].as_str() {
            let packets = decode_base64(v1).unwrap();
            assert_eq!(
                Macaroon::from_binary(&packets).unwrap(),
                m,
                "{name}: V1 decode"
            );
            assert_eq!(m.to_binary_v1().unwrap(), packets, "{name}: V1 encode");
            assert_eq!(
                Macaroon::from_text(v1).unwrap(),
                m,
                "{name}: V1 text decode"
            );
        }
        if let Some(prefix) = v["v1_packets_prefix"].as_str() {
            let mut want = prefix.as_bytes().to_vec();
            want.extend_from_slice(m.signature());
            want.push(b'\n');
            assert_eq!(m.to_binary_v1().unwrap(), want, "{name}: V1 packets");
        }
        assert!(
            m.verify_signature(s(&v["key"]).as_bytes()).is_ok(),
            "{name}: verify"
        );
    }
}

#[test]
fn libmacaroons_readme_vector() {
    let v = &load("libmacaroons.json")["readme"];
    let mut m = Macaroon::new(
        s(&v["key"]).as_bytes(),
        s(&v["identifier"]).as_bytes().to_vec(),
        s(&v["location"]),
    );
    assert_eq!(hex::encode(m.signature()), s(&v["signature"]));
    let parsed = Macaroon::from_text(s(&v["v1_base64url"])).unwrap();
    assert_eq!(parsed, m);
    for step in v["chain"].as_array().unwrap() {
        m.add_first_party_caveat(s(&step["caveat"]));
        assert_eq!(hex::encode(m.signature()), s(&step["signature"]));
    }
}

#[test]
fn go_macaroon_third_party_round_trip() {
    let v = &load("go_macaroon.json")["third_party"];
    let bytes = hex::decode(s(&v["v2_hex"])).unwrap();
    let m = Macaroon::from_binary(&bytes).unwrap();
    assert_eq!(m.to_binary_v2(), bytes, "V2 must round-trip byte-exact");
    assert_eq!(m.location(), s(&v["location"]));
    assert_eq!(m.identifier(), s(&v["identifier"]).as_bytes());
    assert_eq!(hex::encode(m.signature()), s(&v["signature"]));
    let caveats = v["caveats"].as_array().unwrap();
    assert_eq!(m.caveats().len(), caveats.len());
    assert!(m.caveats()[0].is_first_party());
    let third = &m.caveats()[1];
    assert_eq!(third.id(), s(&caveats[1]["id"]).as_bytes());
    assert_eq!(
        hex::encode(third.verification_id().unwrap()),
        s(&caveats[1]["vid_hex"])
    );
    assert_eq!(third.location(), Some(s(&caveats[1]["location"])));

    // Every JSON form decodes to the same macaroon; our JSON output is go-macaroon's canonical one.
    for form in ["json_v1", "json_v2_std", "json_v2_canonical"] {
        assert_eq!(Macaroon::from_json(s(&v[form])).unwrap(), m, "{form}");
    }
    assert_eq!(m.to_json_v2(), s(&v["json_v2_canonical"]));
    // V1 JSON re-encodes to the same macaroon.
    assert_eq!(Macaroon::from_json(&m.to_json_v1().unwrap()).unwrap(), m);
    // A third-party caveat never verifies, even with the right key for the rest of the chain.
    assert!(matches!(
        m.verify_signature(b"this is our super secret key; only we should know it"),
        Err(Error::BadSignature | Error::ThirdPartyCaveat { .. })
    ));
}

#[test]
fn go_macaroon_json_errors() {
    for case in load("go_macaroon.json")["json_errors"].as_array().unwrap() {
        let err = Macaroon::from_json(s(&case["json"])).unwrap_err();
        assert!(
            err.to_string().contains(s(&case["error"])),
            "{err} should mention {}",
            case["error"]
        );
    }
}

#[test]
fn go_macaroon_base64_table() {
    let table = &load("go_macaroon.json")["base64"];
    for ok in table["valid"].as_array().unwrap() {
        assert_eq!(
            decode_base64(s(ok)).unwrap(),
            s(&table["decoded"]).as_bytes()
        );
    }
    for bad in table["invalid"].as_array().unwrap() {
        assert!(decode_base64(s(bad)).is_err(), "{bad}");
    }
}
