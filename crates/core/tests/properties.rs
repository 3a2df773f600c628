//! Property tests: codecs round-trip, parsers never panic, and attenuation never widens.

use l402::macaroon::Macaroon;
use l402::{
    Caveat, Challenge, ChallengeFormat, Context, Credential, Identifier, PaymentHash, Preimage,
    RootKey, Scheme, Service, TokenId, Verifier, mint,
};
use proptest::prelude::*;

const SERVICES: [&str; 3] = ["a", "b", "c"];
const CAPS: [&str; 3] = ["x", "y", "z"];

fn arb_services() -> impl Strategy<Value = String> {
    proptest::sample::subsequence(SERVICES.to_vec(), 1..=3).prop_flat_map(|names| {
        proptest::collection::vec(0u8..2, names.len()).prop_map(move |tiers| {
            names
                .iter()
                .zip(tiers)
                .map(|(n, t)| Service::new(*n, t).to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
    })
}

fn arb_caps() -> impl Strategy<Value = String> {
    proptest::sample::subsequence(CAPS.to_vec(), 0..=3).prop_map(|c| c.join(","))
}

/// A caveat from the families the verifier knows, plus the odd unknown or malformed one.
fn arb_caveat() -> impl Strategy<Value = String> {
    let svc = proptest::sample::select(SERVICES.to_vec());
    prop_oneof![
        3 => arb_services().prop_map(|v| format!("services={v}")),
        3 => (svc.clone(), arb_caps()).prop_map(|(s, c)| format!("{s}_capabilities={c}")),
        3 => (svc, 0i64..40).prop_map(|(s, t)| format!("{s}_valid_until={}", t * 10)),
        1 => Just("color=blue".to_string()),
        1 => Just("no-equals-sign".to_string()),
        1 => Just("a_valid_until=soon".to_string()),
    ]
}

fn arb_context() -> impl Strategy<Value = (Option<&'static str>, Option<&'static str>, i64, bool)> {
    (
        proptest::option::weighted(0.9, proptest::sample::select(vec!["a", "b", "c", "d"])),
        proptest::option::weighted(0.7, proptest::sample::select(vec!["x", "y", "z", "w"])),
        0i64..450,
        any::<bool>(),
    )
}

fn verifies(
    m: &Macaroon,
    key: &RootKey,
    preimage: &Preimage,
    ctx: &(Option<&str>, Option<&str>, i64, bool),
) -> bool {
    let (service, capability, now, strict) = *ctx;
    let mut v = Verifier::new().strict(strict);
    if let Some(s) = service {
        v = v.service(s);
    }
    let mut c = Context::at(now);
    if let Some(cap) = capability {
        c = c.with_capability(cap);
    }
    v.verify(&Credential::new(m.clone(), preimage.clone()), key, &c)
        .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever a holder appends, every request the narrowed token is good for, the original
    /// token was good for too.
    #[test]
    fn attenuation_never_widens(
        base in proptest::collection::vec(arb_caveat(), 0..4),
        appended in proptest::collection::vec(arb_caveat(), 1..4),
        contexts in proptest::collection::vec(arb_context(), 1..24),
    ) {
        let key = RootKey::from_bytes([5; 32]);
        let preimage = Preimage::from_bytes([6; 32]);
        let id = Identifier::new(preimage.payment_hash(), TokenId::from_bytes([7; 32]));
        let caveats: Vec<Caveat> = base.iter().filter_map(|c| c.parse().ok()).collect();
        let original = mint(&key, &id, "lsat", &caveats);
        let mut narrowed = original.clone();
        for c in &appended {
            narrowed.add_first_party_caveat(c);
        }
        for ctx in &contexts {
            if verifies(&narrowed, &key, &preimage, ctx) {
                prop_assert!(
                    verifies(&original, &key, &preimage, ctx),
                    "narrowed token passes {:?} but the original does not: {:?} + {:?}",
                    ctx, base, appended
                );
            }
        }
    }

    #[test]
    fn identifier_round_trips(hash in any::<[u8; 32]>(), token in any::<[u8; 32]>()) {
        let id = Identifier::new(PaymentHash::from_bytes(hash), TokenId::from_bytes(token));
        prop_assert_eq!(Identifier::decode(&id.encode()).unwrap(), id);
    }

    #[test]
    fn credential_forms_round_trip(
        id in proptest::collection::vec(any::<u8>(), 0..80),
        caveats in proptest::collection::vec("[a-z_]{1,10}=[ -~]{0,20}", 0..5),
        preimage in any::<[u8; 32]>(),
        lsat in any::<bool>(),
    ) {
        let mut m = Macaroon::new(b"k", id, "lsat");
        for c in &caveats {
            m.add_first_party_caveat(c);
        }
        let preimage = Preimage::from_bytes(preimage);
        let cred = Credential::new(m.clone(), preimage.clone());
        let scheme = if lsat { Scheme::Lsat } else { Scheme::L402 };
        let parsed = Credential::parse_authorization(&cred.to_authorization(scheme)).unwrap().unwrap();
        prop_assert_eq!(parsed.macaroon(), &m);
        prop_assert_eq!(parsed.preimage(), &preimage);
        let hex = Credential::parse_hex("macaroon", &cred.to_hex_header()).unwrap();
        prop_assert_eq!(hex.preimage(), &preimage);
        prop_assert_eq!(hex.macaroon().caveats().len(), caveats.len() + 1);
    }

    #[test]
    fn challenge_round_trips(
        id in proptest::collection::vec(any::<u8>(), 0..80),
        invoice in "lnbcrt[0-9a-z]{10,200}",
        lsat_line in any::<bool>(),
        spec_params in any::<bool>(),
    ) {
        let m = Macaroon::new(b"k", id, "lsat");
        let c = Challenge::new(m.clone(), invoice.clone()).unwrap();
        let format = ChallengeFormat { lsat_line, spec_params };
        let lines = c.header_values(format);
        let parsed = Challenge::parse_all(lines.iter().map(String::as_str)).unwrap();
        prop_assert_eq!(parsed.len(), lines.len());
        for p in &parsed {
            prop_assert_eq!(p.macaroon(), &m);
            prop_assert_eq!(p.invoice(), invoice.as_str());
        }
        // Joined into one value by an intermediary, the same challenges come out.
        let joined = lines.join(", ");
        prop_assert_eq!(Challenge::parse_all([joined.as_str()]).unwrap().len(), lines.len());
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = Challenge::parse_all([s.as_str()]);
        let _ = Credential::parse_authorization(&s);
        let _ = Credential::parse_authorization(&format!("L402 {s}"));
        let _ = Credential::parse_hex("macaroon", &s);
        let _ = Identifier::decode(&bytes);
        let _ = s.parse::<Caveat>();
        let _ = Service::parse_list(&s);
    }

    #[test]
    fn challenge_parser_survives_near_misses(s in "(L402|LSAT|l402|Bearer)? ?((macaroon|token|invoice|version)=?\"?[A-Za-z0-9+/=]{0,12}\"?,? ?){0,5}") {
        let _ = Challenge::parse_all([s.as_str()]);
    }
}
