//! The `l402 token` commands, run as a user would run them.

use std::process::{Command, Output};

use l402::{Identifier, Preimage, TokenId};
use serde_json::Value;

fn l402(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(args)
        .output()
        .expect("run l402")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn vector() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/vectors/l402.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn v(key: &str) -> String {
    vector()[key].as_str().unwrap().to_owned()
}

/// Asserts failure with exactly one line on stderr that contains `needle`.
fn assert_refused(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure, got {}", stdout(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(needle), "{err:?} should contain {needle:?}");
}

/// Asserts a verification failure: [`assert_refused`] with exit code 4.
fn assert_rejected(o: &Output, needle: &str) {
    assert_refused(o, needle);
    assert_eq!(
        o.status.code(),
        Some(4),
        "a token that does not verify exits 4"
    );
}

#[test]
fn mint_reproduces_the_vector() {
    let o = l402(&[
        "token",
        "mint",
        "--root-key",
        &v("root_key"),
        "--payment-hash",
        &v("payment_hash"),
        "--token-id",
        &v("token_id"),
        "--caveat",
        "services=weather:0",
        "--caveat",
        "weather_capabilities=forecast,history",
        "--caveat",
        "weather_valid_until=1893456000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), v("v2_base64"));
}

#[test]
fn mint_without_token_id_is_random_and_bad_input_is_named() {
    let args = |tid: Option<&str>| {
        let mut a = vec![
            "token".to_string(),
            "mint".into(),
            "--root-key".into(),
            v("root_key"),
            "--payment-hash".into(),
            v("payment_hash"),
        ];
        if let Some(t) = tid {
            a.extend(["--token-id".into(), t.into()]);
        }
        a
    };
    let run = |a: Vec<String>| l402(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let a = stdout(&run(args(None)));
    let b = stdout(&run(args(None)));
    assert_ne!(a, b, "token ids must be random");
    assert_refused(&run(args(Some("abcd"))), "--token-id");
    assert_refused(
        &l402(&[
            "token",
            "mint",
            "--root-key",
            "00",
            "--payment-hash",
            &v("payment_hash"),
        ]),
        "--root-key",
    );
    let o = l402(&[
        "token",
        "mint",
        "--root-key",
        &v("root_key"),
        "--payment-hash",
        &v("payment_hash"),
        "--caveat",
        "no-equals-sign",
    ]);
    assert_refused(&o, "condition=value");
}

#[test]
fn decode_json_of_every_input_form() {
    let b64 = v("v2_base64");
    let auth = v("authorization");
    let hex_header = vector()["hex_header"]["value"].as_str().unwrap().to_owned();
    let url_safe = b64
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned();
    for (input, kind) in [
        (b64.clone(), "macaroon"),
        (url_safe, "macaroon"),
        (v("v2_hex"), "macaroon"),
        (format!("Authorization: {auth}"), "authorization"),
        (auth.replacen("L402", "lsat", 1), "authorization"),
        (hex_header, "hex header"),
    ] {
        let o = l402(&["token", "decode", "--json", &input]);
        assert!(o.status.success(), "{input}: {}", stderr(&o));
        let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(j["kind"], kind, "{input}");
        assert_eq!(j["version"], 0);
        assert_eq!(j["payment_hash"], v("payment_hash"));
        assert_eq!(j["token_id"], v("token_id"));
        assert_eq!(j["location"], "lsat");
        assert_eq!(j["caveats"][0], "services=weather:0");
        assert_eq!(j["caveats"][2], "weather_valid_until=1893456000");
        if kind != "macaroon" {
            assert_eq!(j["preimage"], v("preimage"));
            assert_eq!(j["preimage_matches"], true);
        } else {
            assert_eq!(
                j["signature"],
                "5c039153ccdbe231098166c95bf4a89cb496a6b301db8a096a89f1bdae6277b1"
            );
        }
    }
}

#[test]
fn decode_challenge_shows_the_invoice() {
    let preimage = Preimage::random();
    let id = Identifier::new(preimage.payment_hash(), TokenId::random());
    let key = l402::RootKey::generate();
    let m = l402::mint(&key, &id, "lsat", &[]);
    let invoice = l402_test::invoice::regtest_invoice(id.payment_hash(), 21_000, "test");
    let header = format!(
        "WWW-Authenticate: LSAT macaroon=\"{0}\", invoice=\"{invoice}\", L402 macaroon=\"{0}\", invoice=\"{invoice}\"",
        m.to_base64()
    );
    let o = l402(&["token", "decode", "--json", &header]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["kind"], "challenge");
    assert_eq!(j["scheme"], "L402");
    assert_eq!(j["challenges"], 2);
    assert_eq!(j["token_id"], id.token_id().to_hex());
    assert_eq!(j["invoice"]["amount_msat"], 21_000);
    assert_eq!(j["invoice"]["payment_hash"], id.payment_hash().to_hex());
    assert_eq!(j["invoice"]["matches_macaroon"], true);

    // A challenge whose invoice is for another payment is flagged.
    let other = l402_test::invoice::regtest_invoice(&Preimage::random().payment_hash(), 5, "x");
    let header = format!("L402 macaroon=\"{}\", invoice=\"{other}\"", m.to_base64());
    let o = l402(&["token", "decode", &header]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("matches the macaroon's payment hash: NO"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("amount:       5 msat"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn decode_refusals_are_one_line() {
    assert_refused(
        &l402(&["token", "decode", "not a token!"]),
        "not a macaroon",
    );
    assert_refused(
        &l402(&[
            "token",
            "decode",
            "L402 macaroon=\"AgE\", invoice=\"lnbc1\"",
        ]),
        "challenge",
    );
    assert_refused(
        &l402(&["token", "decode", &format!("L402 {}:abcd", v("v2_base64"))]),
        "64 hex characters",
    );
}

#[test]
fn verify_accepts_valid_tokens() {
    let key = v("root_key");
    for (token, extra) in [
        (v("authorization"), vec![]),
        (
            v("v2_base64"),
            vec![
                "--preimage",
                "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
            ],
        ),
        (
            vector()["hex_header"]["value"].as_str().unwrap().to_owned(),
            vec![],
        ),
    ] {
        let mut args = vec![
            "token",
            "verify",
            &token,
            "--root-key",
            &key,
            "--service",
            "weather",
            "--capability",
            "forecast",
            "--now",
            "1700000000",
        ];
        args.extend(extra);
        let o = l402(&args);
        assert!(o.status.success(), "{token}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("valid: token 2021"),
            "{}",
            stdout(&o)
        );
        assert!(stdout(&o).contains("tier 0"));
    }
    // Without a preimage only signature and caveats are checked, and it says so.
    let o = l402(&[
        "token",
        "verify",
        &v("v2_base64"),
        "--root-key",
        &key,
        "--now",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("payment NOT checked"));
}

#[test]
fn verify_refusals_say_why() {
    let key = v("root_key");
    let auth = v("authorization");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--service".into(), "maps".into()],
            "not valid for service \"maps\"",
        ),
        (
            vec![
                "--service".into(),
                "weather".into(),
                "--now".into(),
                "1893456000".into(),
            ],
            "expired",
        ),
        (
            vec![
                "--service".into(),
                "weather".into(),
                "--capability".into(),
                "admin".into(),
            ],
            "capability \"admin\"",
        ),
        (vec!["--preimage".into(), "00".repeat(32)], "differs"),
    ];
    for (extra, needle) in cases {
        let mut args: Vec<String> = vec![
            "token".into(),
            "verify".into(),
            auth.clone(),
            "--root-key".into(),
            key.clone(),
        ];
        args.extend(extra);
        let o = l402(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_refused(&o, needle);
        // A --preimage that contradicts the token is an input error; the rest do not verify.
        let code = if needle == "differs" { 1 } else { 4 };
        assert_eq!(o.status.code(), Some(code), "{needle}");
    }
    let wrong_key = "ff".repeat(32);
    assert_rejected(
        &l402(&["token", "verify", &auth, "--root-key", &wrong_key]),
        "signature does not verify",
    );
    let wrong_preimage = "11".repeat(32);
    assert_rejected(
        &l402(&[
            "token",
            "verify",
            &v("v2_base64"),
            "--root-key",
            &key,
            "--preimage",
            &wrong_preimage,
        ]),
        "preimage does not match",
    );
    let widened = vector()["attenuation_widening"]["base64"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_rejected(
        &l402(&["token", "verify", &widened, "--root-key", &key]),
        "widens the token",
    );
    // Unknown caveats are skipped unless --strict.
    let o = l402(&[
        "token",
        "attenuate",
        &v("v2_base64"),
        "--caveat",
        "color=blue",
    ]);
    let colored = stdout(&o).trim().to_owned();
    let lax = l402(&[
        "token",
        "verify",
        &colored,
        "--root-key",
        &key,
        "--now",
        "1",
    ]);
    assert!(lax.status.success(), "{}", stderr(&lax));
    assert_rejected(
        &l402(&[
            "token",
            "verify",
            &colored,
            "--root-key",
            &key,
            "--now",
            "1",
            "--strict",
        ]),
        "unknown caveat \"color=blue\"",
    );
}

#[test]
fn attenuate_then_verify() {
    let key = v("root_key");
    let o = l402(&[
        "token",
        "attenuate",
        &v("v2_base64"),
        "--caveat",
        "weather_valid_until=1800000000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let narrowed = stdout(&o).trim().to_owned();
    assert_eq!(
        narrowed,
        vector()["attenuation_valid"]["base64"].as_str().unwrap()
    );
    let preimage = v("preimage");
    let ok = l402(&[
        "token",
        "verify",
        &narrowed,
        "--root-key",
        &key,
        "--preimage",
        &preimage,
        "--service",
        "weather",
        "--now",
        "1799999999",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("valid until 1800000000"));
    let late = l402(&[
        "token",
        "verify",
        &narrowed,
        "--root-key",
        &key,
        "--preimage",
        &preimage,
        "--service",
        "weather",
        "--now",
        "1800000000",
    ]);
    assert_rejected(&late, "expired");

    // The root key may come from the environment instead of the command line.
    let from_env = Command::new(env!("CARGO_BIN_EXE_l402"))
        .args([
            "token",
            "verify",
            &narrowed,
            "--preimage",
            &preimage,
            "--now",
            "1799999999",
        ])
        .env("L402_ROOT_KEY", &key)
        .output()
        .unwrap();
    assert!(from_env.status.success(), "{}", stderr(&from_env));
}
