//! Property tests: every codec round-trips, and no input makes a decoder panic.

use l402_macaroon::{Caveat, Limits, Macaroon, decode_base64, encode_base64_std};
use proptest::prelude::*;

fn arb_caveat() -> impl Strategy<Value = Caveat> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Caveat::first_party),
        1 => (
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 1..80),
            proptest::option::of("[a-z:/.]{1,20}"),
        )
            .prop_map(|(id, vid, loc)| Caveat::third_party(id, vid, loc)),
    ]
}

fn arb_macaroon() -> impl Strategy<Value = Macaroon> {
    (
        "\\PC{0,20}",
        proptest::collection::vec(any::<u8>(), 0..100),
        proptest::collection::vec(arb_caveat(), 0..10),
        any::<[u8; 32]>(),
    )
        .prop_map(|(loc, id, caveats, sig)| Macaroon::from_raw_parts(loc, id, caveats, sig))
}

/// Macaroons the V1 formats can carry: UTF-8 identifier and caveat ids.
fn arb_v1_macaroon() -> impl Strategy<Value = Macaroon> {
    (
        "[ -~]{0,20}",
        "\\PC{0,30}",
        proptest::collection::vec(
            (
                "\\PC{0,30}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 1..40)),
            ),
            0..6,
        ),
        any::<[u8; 32]>(),
    )
        .prop_map(|(loc, id, caveats, sig)| {
            let caveats = caveats
                .into_iter()
                .map(|(cid, vid)| match vid {
                    None => Caveat::first_party(cid),
                    Some(v) => Caveat::third_party(cid, v, Some("http://d/".into())),
                })
                .collect();
            Macaroon::from_raw_parts(loc, id.into_bytes(), caveats, sig)
        })
}

proptest! {
    #[test]
    fn v2_binary_round_trips(m in arb_macaroon()) {
        let bytes = m.to_binary_v2();
        prop_assert_eq!(bytes.len(), m.binary_v2_len());
        prop_assert_eq!(Macaroon::from_binary(&bytes).unwrap(), m.clone());
        // Trailing data is reported, not silently accepted.
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Macaroon::from_binary(&longer).is_err());
        let (again, rest) = Macaroon::from_binary_prefix(&longer, &Limits::DEFAULT).unwrap();
        prop_assert_eq!(again, m);
        prop_assert_eq!(rest, &[0u8][..]);
    }

    #[test]
    fn v2_json_round_trips(m in arb_macaroon()) {
        prop_assert_eq!(Macaroon::from_json(&m.to_json_v2()).unwrap(), m);
    }

    #[test]
    fn text_forms_round_trip(m in arb_macaroon()) {
        for text in [m.to_base64(), m.to_base64_url(), m.to_hex(), m.to_json_v2(),
                     format!("  {}\n", m.to_base64())] {
            prop_assert_eq!(Macaroon::from_text(&text).unwrap(), m.clone(), "{}", text);
        }
    }

    #[test]
    fn v1_round_trips(m in arb_v1_macaroon()) {
        let packets = m.to_binary_v1().unwrap();
        prop_assert_eq!(Macaroon::from_binary(&packets).unwrap(), m.clone());
        prop_assert_eq!(Macaroon::from_json(&m.to_json_v1().unwrap()).unwrap(), m.clone());
        let b64 = l402_macaroon::encode_base64_url(&packets);
        prop_assert_eq!(Macaroon::from_text(&b64).unwrap(), m);
    }

    #[test]
    fn concatenated_macaroons_decode_as_a_slice(a in arb_macaroon(), b in arb_macaroon()) {
        let mut bytes = a.to_binary_v2();
        bytes.extend(b.to_binary_v2());
        prop_assert_eq!(Macaroon::slice_from_binary(&bytes, &Limits::DEFAULT).unwrap(), vec![a.clone(), b.clone()]);
        let text = encode_base64_std(&bytes);
        prop_assert_eq!(Macaroon::slice_from_text(&text, &Limits::DEFAULT).unwrap(), vec![a, b]);
        prop_assert!(Macaroon::from_text(&text).is_err(), "one expected, two found");
    }

    #[test]
    fn chain_detects_any_caveat_change(
        key in any::<[u8; 32]>(),
        caveats in proptest::collection::vec("[a-z]{1,8}=[a-z0-9]{0,8}", 1..6),
        which in any::<prop::sample::Index>(),
    ) {
        let mut m = Macaroon::new(&key, b"id".to_vec(), "loc");
        for c in &caveats {
            m.add_first_party_caveat(c);
        }
        prop_assert_eq!(m.verify_signature(&key).unwrap().len(), caveats.len());
        // Rebuild with one caveat changed but the old signature.
        let i = which.index(caveats.len());
        let mut changed: Vec<Caveat> = m.caveats().to_vec();
        changed[i] = Caveat::first_party(format!("{}x", caveats[i]));
        let forged = Macaroon::from_raw_parts("loc", b"id".to_vec(), changed, *m.signature());
        prop_assert!(forged.verify_signature(&key).is_err());
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Macaroon::from_binary(&data);
        let _ = Macaroon::slice_from_binary(&data, &Limits::DEFAULT);
        let text = String::from_utf8_lossy(&data);
        let _ = Macaroon::from_text(&text);
        let _ = Macaroon::from_json(&text);
        let _ = decode_base64(&data);
    }

    #[test]
    fn mutated_encodings_never_panic(m in arb_macaroon(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = m.to_binary_v2();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        let _ = Macaroon::from_binary(&bytes);
        bytes.truncate(i);
        let _ = Macaroon::from_binary(&bytes);
    }
}
