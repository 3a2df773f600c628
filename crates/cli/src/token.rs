//! `l402 token …`: decode, mint, attenuate and verify tokens.

use std::str::FromStr;

use clap::{Args, Subcommand};
use l402::macaroon::{Limits, Macaroon};
use l402::{
    Caveat, Challenge, Context, Credential, CredentialForm, Identifier, PaymentHash, Preimage,
    RootKey, TokenId, Verifier, mint,
};
use serde_json::{Value, json};

use crate::Failure;

/// Token subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Show what is inside a macaroon, an Authorization value or a WWW-Authenticate value.
    Decode(DecodeArgs),
    /// Mint a macaroon (printed as standard padded base64 of the V2 binary form).
    Mint(MintArgs),
    /// Append caveats to a macaroon (narrowing it; no root key needed).
    Attenuate(AttenuateArgs),
    /// Verify a token with its root key; exit 0 when valid, 4 when it does not verify (with
    /// the reason), 1 when the input cannot be read.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// A macaroon (base64 in any variant, hex, or JSON), an `Authorization` value
    /// (`L402 <mac>:<preimage>`) or a `WWW-Authenticate` value (`L402 macaroon="…", invoice="…"`).
    /// A leading `Authorization:` or `WWW-Authenticate:` header name is ignored.
    input: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MintArgs {
    /// The 32-byte root key, hex (or set `L402_ROOT_KEY`, which keeps it out of the process
    /// list and shell history).
    #[arg(
        long,
        value_name = "HEX",
        env = "L402_ROOT_KEY",
        hide_env_values = true
    )]
    root_key: String,
    /// The invoice's payment hash, hex.
    #[arg(long, value_name = "HEX")]
    payment_hash: String,
    /// The token id, hex (default: 32 random bytes).
    #[arg(long, value_name = "HEX")]
    token_id: Option<String>,
    /// The location hint.
    #[arg(long, default_value = l402::DEFAULT_LOCATION)]
    location: String,
    /// A caveat `condition=value`; repeat for several, in order.
    #[arg(long = "caveat", value_name = "C")]
    caveats: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AttenuateArgs {
    /// The macaroon to narrow (any form `decode` accepts).
    token: String,
    /// A caveat `condition=value` to append; repeat for several.
    #[arg(long = "caveat", value_name = "C", required = true)]
    caveats: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The token: an `Authorization` value, a hex `Macaroon` header value (with a `preimage=`
    /// caveat), or a bare macaroon (then pass `--preimage`, or only signature and caveats are
    /// checked).
    token: String,
    /// The 32-byte root key, hex (or set `L402_ROOT_KEY`, which keeps it out of the process
    /// list and shell history).
    #[arg(
        long,
        value_name = "HEX",
        env = "L402_ROOT_KEY",
        hide_env_values = true
    )]
    root_key: String,
    /// The payment preimage, hex (64 characters).
    #[arg(long, value_name = "HEX")]
    preimage: Option<String>,
    /// The service the request is for.
    #[arg(long)]
    service: Option<String>,
    /// The capability the request needs.
    #[arg(long)]
    capability: Option<String>,
    /// The time to check expiry against, unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    now: Option<i64>,
    /// Refuse caveats no built-in check knows (default: skip them, as the spec says).
    #[arg(long)]
    strict: bool,
}

pub(crate) fn run(cmd: TokenCommand) -> Result<(), Failure> {
    match cmd {
        TokenCommand::Decode(a) => decode(a),
        TokenCommand::Mint(a) => mint_cmd(a),
        TokenCommand::Attenuate(a) => attenuate(a),
        TokenCommand::Verify(a) => verify(a),
    }
}

// === input detection ===

/// What a pasted token turned out to be.
enum Input {
    Challenge(Vec<Challenge>),
    Credential(Credential),
    Macaroon(Macaroon),
}

fn strip_header_name(input: &str) -> &str {
    let t = input.trim();
    for name in ["authorization:", "www-authenticate:"] {
        if t.len() > name.len() && t[..name.len()].eq_ignore_ascii_case(name) {
            return t[name.len()..].trim();
        }
    }
    t
}

fn detect(input: &str) -> Result<Input, Failure> {
    let text = strip_header_name(input);
    let challenge = match Challenge::parse_all([text]) {
        Ok(found) => return Ok(Input::Challenge(found)),
        Err(e) => e,
    };
    // A value with challenge parameters is a challenge, even a broken one: report why.
    let lower = text.to_ascii_lowercase();
    if ["macaroon=", "token=", "invoice="]
        .iter()
        .any(|p| lower.contains(p))
    {
        return Err(Failure::invalid(challenge.to_string()));
    }
    match Credential::parse_authorization(text) {
        Ok(Some(c)) => return Ok(Input::Credential(c)),
        Ok(None) => {}
        Err(e) => return Err(Failure::invalid(e.to_string())),
    }
    if looks_like_hex(text)
        && let Ok(c) = Credential::parse_hex("macaroon", text)
    {
        return Ok(Input::Credential(c));
    }
    Macaroon::from_text_with(text, &Limits::DEFAULT)
        .map(Input::Macaroon)
        .map_err(|e| Failure::invalid(format!("not a macaroon, credential or challenge: {e}")))
}

fn looks_like_hex(text: &str) -> bool {
    text.starts_with("02") && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn macaroon_of(input: &Input) -> &Macaroon {
    match input {
        Input::Challenge(c) => l402::Challenge::preferred(c)
            .expect("parse_all returns at least one")
            .macaroon(),
        Input::Credential(c) => c.macaroon(),
        Input::Macaroon(m) => m,
    }
}

// === decode ===

fn caveat_json(m: &Macaroon) -> Vec<Value> {
    m.caveats()
        .iter()
        .map(|c| {
            if c.is_first_party() {
                Value::String(String::from_utf8_lossy(c.id()).into_owned())
            } else {
                json!({
                    "third_party": {
                        "id": String::from_utf8_lossy(c.id()),
                        "location": c.location(),
                        "verification_id": hex::encode(c.verification_id().unwrap_or_default()),
                    }
                })
            }
        })
        .collect()
}

fn invoice_json(invoice: &str, macaroon_hash: Option<&PaymentHash>) -> Value {
    match l402::bolt11::decode(invoice) {
        Ok(inv) => json!({
            "bolt11": invoice,
            "amount_msat": inv.amount.map(l402::Msat::as_u64),
            "payment_hash": inv.payment_hash.to_hex(),
            "network": inv.currency.to_string(),
            "matches_macaroon": macaroon_hash.map(|h| *h == inv.payment_hash),
            "expiry_seconds": inv.expiry.as_secs(),
            "timestamp": inv.timestamp.as_secs(),
        }),
        Err(e) => json!({ "bolt11": invoice, "error": e }),
    }
}

fn decode_json(input: &Input) -> Value {
    let m = macaroon_of(input);
    let id = Identifier::decode(m.identifier());
    let mut out = json!({
        "version": id.as_ref().ok().map(Identifier::version),
        "payment_hash": id.as_ref().ok().map(|i| i.payment_hash().to_hex()),
        "token_id": id.as_ref().ok().map(|i| i.token_id().to_hex()),
        "location": m.location(),
        "caveats": caveat_json(m),
        "signature": hex::encode(m.signature()),
        "identifier": hex::encode(m.identifier()),
    });
    let o = out.as_object_mut().expect("object");
    match &id {
        Ok(i) => {
            o.insert("key_id".into(), json!(i.key_id().to_hex()));
        }
        Err(e) => {
            o.insert("identifier_error".into(), json!(e.to_string()));
        }
    }
    match input {
        Input::Challenge(all) => {
            let chosen = l402::Challenge::preferred(all).expect("at least one");
            o.insert("kind".into(), json!("challenge"));
            o.insert("scheme".into(), json!(chosen.scheme().as_str()));
            o.insert("challenges".into(), json!(all.len()));
            o.insert(
                "invoice".into(),
                invoice_json(
                    chosen.invoice(),
                    id.as_ref().ok().map(Identifier::payment_hash),
                ),
            );
        }
        Input::Credential(c) => {
            let (kind, scheme) = match c.form() {
                CredentialForm::Authorization(s) => ("authorization", s.as_str()),
                CredentialForm::HexHeader(_) => ("hex header", "L402"),
            };
            o.insert("kind".into(), json!(kind));
            o.insert("scheme".into(), json!(scheme));
            o.insert("macaroons".into(), json!(c.macaroons().len()));
            o.insert("preimage".into(), json!(c.preimage().to_hex()));
            o.insert(
                "preimage_matches".into(),
                json!(
                    id.as_ref()
                        .ok()
                        .map(|i| c.preimage().matches(i.payment_hash()))
                ),
            );
        }
        Input::Macaroon(_) => {
            o.insert("kind".into(), json!("macaroon"));
        }
    }
    out
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "unknown",
    }
}

fn decode(args: DecodeArgs) -> Result<(), Failure> {
    let input = detect(&args.input)?;
    let v = decode_json(&input);
    if args.json {
        println!("{v}");
        return Ok(());
    }
    let get = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
    println!("kind:          {}", get("kind"));
    if let Some(s) = v["scheme"].as_str() {
        println!("scheme:        {s}");
    }
    match v["version"].as_u64() {
        Some(ver) => {
            println!("version:       {ver}");
            println!("payment hash:  {}", get("payment_hash"));
            println!("token id:      {}", get("token_id"));
            println!(
                "key id:        {}  (sha256 of the identifier: where the root key is stored)",
                get("key_id")
            );
        }
        None => {
            println!("identifier:    {}", get("identifier"));
            println!(
                "               not an L402 identifier: {}",
                get("identifier_error")
            );
        }
    }
    println!("location:      {}", get("location"));
    let caveats = v["caveats"].as_array().expect("array");
    if caveats.is_empty() {
        println!("caveats:       (none)");
    } else {
        println!("caveats:");
        for c in caveats {
            match c.as_str() {
                Some(s) => println!("  {s}"),
                None => println!("  third-party: {}", c["third_party"]),
            }
        }
    }
    println!("signature:     {}", get("signature"));
    if let Some(p) = v["preimage"].as_str() {
        println!("preimage:      {p}");
        println!(
            "  matches payment hash: {}",
            yes_no(v["preimage_matches"].as_bool())
        );
    }
    if let Some(n) = v["macaroons"].as_u64().filter(|n| *n > 1) {
        println!("macaroons:     {n} (the first is shown)");
    }
    if let Some(inv) = v.get("invoice") {
        println!("invoice:       {}", inv["bolt11"].as_str().unwrap_or("-"));
        match inv.get("error") {
            Some(e) => println!("  cannot decode: {}", e.as_str().unwrap_or("-")),
            None => {
                match inv["amount_msat"].as_u64() {
                    Some(a) => println!("  amount:       {a} msat"),
                    None => println!("  amount:       none (amountless invoice)"),
                }
                println!(
                    "  payment hash: {}",
                    inv["payment_hash"].as_str().unwrap_or("-")
                );
                println!("  network:      {}", inv["network"].as_str().unwrap_or("-"));
                println!(
                    "  matches the macaroon's payment hash: {}",
                    yes_no(inv["matches_macaroon"].as_bool())
                );
            }
        }
    }
    Ok(())
}

// === mint / attenuate ===

fn parse<T: FromStr<Err = l402::Error>>(s: &str, flag: &str) -> Result<T, Failure> {
    s.parse()
        .map_err(|e: l402::Error| Failure::invalid(format!("{flag}: {e}")))
}

fn parse_caveats(list: &[String]) -> Result<Vec<Caveat>, Failure> {
    list.iter()
        .map(|c| parse::<Caveat>(c, "--caveat"))
        .collect()
}

fn mint_cmd(args: MintArgs) -> Result<(), Failure> {
    let key: RootKey = parse(&args.root_key, "--root-key")?;
    let hash: PaymentHash = parse(&args.payment_hash, "--payment-hash")?;
    let token_id = match &args.token_id {
        Some(t) => parse::<TokenId>(t, "--token-id")?,
        None => TokenId::random(),
    };
    let caveats = parse_caveats(&args.caveats)?;
    let m = mint(
        &key,
        &Identifier::new(hash, token_id),
        &args.location,
        &caveats,
    );
    println!("{}", m.to_base64());
    Ok(())
}

fn attenuate(args: AttenuateArgs) -> Result<(), Failure> {
    let input = detect(&args.token)?;
    let mut m = macaroon_of(&input).clone();
    for c in parse_caveats(&args.caveats)? {
        m.add_first_party_caveat(c.to_string());
    }
    println!("{}", m.to_base64());
    Ok(())
}

// === verify ===

fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let key: RootKey = parse(&args.root_key, "--root-key")?;
    let preimage = args
        .preimage
        .as_deref()
        .map(|p| parse::<Preimage>(p, "--preimage"))
        .transpose()?;
    let input = detect(&args.token)?;
    let mut verifier = Verifier::new().strict(args.strict);
    if let Some(s) = &args.service {
        verifier = verifier.service(s.clone());
    }
    let mut ctx = match args.now {
        Some(now) => Context::at(now),
        None => Context::now(),
    };
    if let Some(c) = args.capability.as_deref() {
        ctx = ctx.with_capability(c);
    }

    let credential = match (&input, preimage) {
        (Input::Credential(c), Some(p)) if c.preimage() != &p => {
            return Err(Failure::invalid(
                "--preimage differs from the preimage inside the token",
            ));
        }
        (Input::Credential(c), _) => Some(c.clone()),
        (other, Some(p)) => Some(Credential::new(macaroon_of(other).clone(), p)),
        (_, None) => None,
    };
    let result = match &credential {
        Some(c) => verifier.verify(c, &key, &ctx),
        None => verifier.check_macaroon(macaroon_of(&input), &key, &ctx),
    };
    let token = result.map_err(|e| Failure::rejected(format!("invalid: {e}")))?;

    let mut line = format!("valid: token {}", token.token_id());
    if let Some(s) = &args.service {
        line.push_str(&format!(" for service {s}"));
        if let Some(t) = token.tier() {
            line.push_str(&format!(" tier {t}"));
        }
    }
    if let Some(caps) = token.capabilities() {
        line.push_str(&format!("; capabilities [{}]", caps.join(",")));
    }
    if let Some(v) = token.valid_until() {
        line.push_str(&format!("; valid until {v}"));
    }
    if credential.is_none() {
        line.push_str("; payment NOT checked (no preimage given)");
    }
    println!("{line}");
    Ok(())
}
