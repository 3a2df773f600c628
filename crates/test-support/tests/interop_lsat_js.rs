//! lsat-js (Tierion) reads our challenges, identifiers and tokens, and we read its credentials.

use l402::{
    Challenge, ChallengeFormat, Context, Credential, Identifier, Preimage, RootKey, Scheme,
    TokenId, TokenSpec, Verifier, mint,
};
use l402_test::interop::Peer;
use l402_test::invoice::regtest_invoice;
use serde_json::json;

struct Minted {
    key: RootKey,
    preimage: Preimage,
    id: Identifier,
    challenge: Challenge,
    caveats: Vec<String>,
}

fn minted(amount_msat: u64) -> Minted {
    let key = RootKey::generate();
    let preimage = Preimage::random();
    let id = Identifier::new(preimage.payment_hash(), TokenId::random());
    let spec = TokenSpec::new("weather", 0)
        .capabilities(["forecast", "history"])
        .valid_until(1_893_456_000);
    let caveats = spec.caveats().unwrap();
    let m = mint(&key, &id, "lsat", &caveats);
    let invoice = regtest_invoice(id.payment_hash(), amount_msat, "L402 interop");
    Minted {
        challenge: Challenge::new(m, invoice).unwrap(),
        key,
        preimage,
        id,
        caveats: caveats.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn lsat_js_parses_each_line_we_emit() {
    let t = minted(21_000);
    let lines = t.challenge.header_values(ChallengeFormat {
        lsat_line: true,
        spec_params: false,
    });
    assert_eq!(lines.len(), 2);
    for header in &lines {
        let got = Peer::LsatJs.call(&json!({"op": "parse_challenge", "header": header}));
        assert_eq!(got["ok"], true, "{header}: {got}");
        assert_eq!(got["identifier"]["version"], 0);
        assert_eq!(
            got["identifier"]["payment_hash"],
            t.id.payment_hash().to_hex()
        );
        assert_eq!(got["identifier"]["token_id"], t.id.token_id().to_hex());
        assert_eq!(
            got["payment_hash"],
            t.id.payment_hash().to_hex(),
            "from the invoice"
        );
        assert_eq!(got["invoice_amount"], 21, "sats");
        assert_eq!(got["caveats"], json!(t.caveats));
    }
}

#[test]
fn lsat_js_decodes_our_identifier() {
    let t = minted(1_000);
    let got = Peer::LsatJs.call(&json!({
        "op": "decode_identifier",
        "macaroon": t.challenge.macaroon().to_base64(),
    }));
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["version"], 0);
    assert_eq!(got["payment_hash"], t.id.payment_hash().to_hex());
    assert_eq!(got["token_id"], t.id.token_id().to_hex());
}

#[test]
fn lsat_js_checks_preimages_against_our_challenge() {
    let t = minted(5_000);
    let header = &t.challenge.header_values(ChallengeFormat::default())[1];
    let right = Peer::LsatJs.call(&json!({
        "op": "check_preimage", "header": header, "preimage_hex": t.preimage.to_hex()
    }));
    assert_eq!(right["ok"], true, "{right}");
    let wrong = Peer::LsatJs.call(&json!({
        "op": "check_preimage", "header": header, "preimage_hex": Preimage::random().to_hex()
    }));
    assert_eq!(wrong["ok"], false, "{wrong}");
}

#[test]
fn we_verify_the_token_lsat_js_builds() {
    let t = minted(5_000);
    let header = &t.challenge.header_values(ChallengeFormat::default())[1];
    let got = Peer::LsatJs.call(&json!({
        "op": "to_token", "header": header, "preimage_hex": t.preimage.to_hex()
    }));
    let token = got["token"].as_str().unwrap_or_else(|| panic!("{got}"));
    assert!(token.starts_with("LSAT "), "{token}");
    let cred = Credential::parse_authorization(token).unwrap().unwrap();
    let verified = Verifier::new()
        .service("weather")
        .verify(&cred, &t.key, &Context::at(1_700_000_000))
        .unwrap();
    assert_eq!(verified.token_id(), t.id.token_id());
    // The same token under the L402 scheme, as a client that mirrors the challenge sends it.
    let l402 = format!("L402 {}", &token["LSAT ".len()..]);
    let cred = Credential::parse_authorization(&l402).unwrap().unwrap();
    assert_eq!(cred.to_authorization(Scheme::L402), l402);
}

#[test]
fn lsat_js_reads_our_spec_mode_line_because_macaroon_comes_first() {
    let t = minted(2_000);
    let spec = &t.challenge.header_values(ChallengeFormat {
        lsat_line: false,
        spec_params: true,
    })[0];
    assert!(spec.contains("version=\"0\""));
    let got = Peer::LsatJs.call(&json!({"op": "parse_challenge", "header": spec}));
    assert_eq!(got["ok"], true, "{spec}: {got}");
    assert_eq!(got["identifier"]["token_id"], t.id.token_id().to_hex());
}
