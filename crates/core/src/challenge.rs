//! The `WWW-Authenticate` challenge: a macaroon bound to an invoice.
//!
//! Emitted as Aperture does (`L402 macaroon="<std base64>", invoice="<bolt11>"`, macaroon first,
//! `", "` between), optionally preceded by an `LSAT` line for pre-2024 clients and optionally
//! followed by the spec's `version="0", token="…"` parameters.
//!
//! Parsed leniently, accepting every variant seen in the wild: any scheme case, `token=` or
//! `macaroon=`, any parameter order, quoted or unquoted values, a missing comma between
//! parameters, unknown parameters, and several challenges in one header value.

use std::borrow::Cow;
use std::fmt;

use l402_macaroon::{Limits, Macaroon, decode_base64};

use crate::{Error, MAX_HEADER_LEN};

/// The authentication scheme name: `L402`, or its former name `LSAT`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Scheme {
    /// `L402`, the current name.
    L402,
    /// `LSAT`, the name before 2024, still accepted everywhere.
    Lsat,
}

impl Scheme {
    /// The canonical spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::L402 => "L402",
            Scheme::Lsat => "LSAT",
        }
    }

    /// Recognises the scheme name in any letter case.
    pub fn from_name(name: &str) -> Option<Scheme> {
        if name.eq_ignore_ascii_case("L402") {
            Some(Scheme::L402)
        } else if name.eq_ignore_ascii_case("LSAT") {
            Some(Scheme::Lsat)
        } else {
            None
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An L402 challenge: the macaroon the client must present and the invoice it must pay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Challenge {
    scheme: Scheme,
    macaroon: Macaroon,
    invoice: String,
    version: Option<String>,
}

/// How a server writes its challenge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChallengeFormat {
    /// Send an `LSAT …` line before the `L402 …` line, for old Loop/Aperture clients that read
    /// only the first `WWW-Authenticate` line (Aperture does this). Default: on.
    pub lsat_line: bool,
    /// Append `version="0", token="…"` to the `L402` line (the 2026 spec text). Clients that only
    /// know `macaroon=` still work because `macaroon=` stays first. Default: off.
    pub spec_params: bool,
}

impl Default for ChallengeFormat {
    fn default() -> Self {
        ChallengeFormat {
            lsat_line: true,
            spec_params: false,
        }
    }
}

fn check_invoice(invoice: &str) -> Result<(), Error> {
    let ok = invoice.len() > 2
        && invoice.len() <= MAX_HEADER_LEN
        && invoice.as_bytes()[..2].eq_ignore_ascii_case(b"ln")
        && invoice.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidChallenge {
            reason: "invoice is not a BOLT11 string (ln… in the bech32 alphabet)".into(),
        })
    }
}

impl Challenge {
    /// A challenge for `macaroon` and the BOLT11 `invoice` it is bound to.
    pub fn new(macaroon: Macaroon, invoice: impl Into<String>) -> Result<Self, Error> {
        let invoice = invoice.into();
        check_invoice(&invoice)?;
        Ok(Challenge {
            scheme: Scheme::L402,
            macaroon,
            invoice,
            version: None,
        })
    }

    /// The scheme the challenge was issued under.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The macaroon.
    pub fn macaroon(&self) -> &Macaroon {
        &self.macaroon
    }

    /// The BOLT11 invoice, as sent.
    pub fn invoice(&self) -> &str {
        &self.invoice
    }

    /// The `version` parameter, if the server sent one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// One header value in the given scheme: `L402 macaroon="…", invoice="…"`.
    pub fn to_header_value(&self, scheme: Scheme, spec_params: bool) -> String {
        self.header_value_with(&self.macaroon.to_base64(), scheme, spec_params)
    }

    /// [`to_header_value`](Self::to_header_value) with the macaroon already in base64.
    fn header_value_with(&self, mac: &str, scheme: Scheme, spec_params: bool) -> String {
        let mut out = String::with_capacity(
            32 + mac.len() * if spec_params { 2 } else { 1 } + self.invoice.len(),
        );
        out.push_str(scheme.as_str());
        out.push_str(" macaroon=\"");
        out.push_str(mac);
        out.push_str("\", invoice=\"");
        out.push_str(&self.invoice);
        out.push('"');
        if spec_params {
            out.push_str(", version=\"0\", token=\"");
            out.push_str(mac);
            out.push('"');
        }
        out
    }

    /// The `WWW-Authenticate` values a server sends, in order.
    ///
    /// ```
    /// # use l402::{Challenge, ChallengeFormat};
    /// # use l402_macaroon::Macaroon;
    /// let m = Macaroon::new(b"key", b"id".to_vec(), "loc");
    /// let c = Challenge::new(m, "lnbcrt10n1pexample").unwrap();
    /// let lines = c.header_values(ChallengeFormat::default());
    /// assert_eq!(lines.len(), 2);
    /// assert!(lines[0].starts_with("LSAT macaroon=\""));
    /// assert!(lines[1].starts_with("L402 macaroon=\""));
    /// assert!(lines[1].ends_with("\", invoice=\"lnbcrt10n1pexample\""));
    /// ```
    pub fn header_values(&self, format: ChallengeFormat) -> Vec<String> {
        // The macaroon is encoded once for both lines.
        let mac = self.macaroon.to_base64();
        let mut out = Vec::with_capacity(2);
        if format.lsat_line {
            out.push(self.header_value_with(&mac, Scheme::Lsat, false));
        }
        out.push(self.header_value_with(&mac, Scheme::L402, format.spec_params));
        out
    }

    /// Parses every L402/LSAT challenge in the given `WWW-Authenticate` values (other schemes are
    /// ignored).
    ///
    /// Returns the valid ones in order. Fails only if none is valid: with the first problem found,
    /// or [`Error::NoChallenge`] if there was no L402/LSAT challenge at all.
    ///
    /// ```
    /// # use l402::{Challenge, Scheme};
    /// # use l402_macaroon::Macaroon;
    /// let mac = Macaroon::new(b"key", b"id".to_vec(), "").to_base64();
    /// let value = format!(r#"Bearer realm="x", l402 version="0" token={mac} invoice="lnbc1xyz""#);
    /// let found = Challenge::parse_all([value.as_str()]).unwrap();
    /// assert_eq!(found[0].scheme(), Scheme::L402);
    /// assert_eq!(found[0].invoice(), "lnbc1xyz");
    /// ```
    pub fn parse_all<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Challenge>, Error> {
        let mut found = Vec::new();
        let mut first_error = None;
        for value in values {
            if value.len() > MAX_HEADER_LEN {
                first_error.get_or_insert(Error::HeaderTooLong {
                    header: "WWW-Authenticate",
                    len: value.len(),
                });
                continue;
            }
            let items = match tokenize(value) {
                Ok(items) => items,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            for (scheme, params) in group(items) {
                let Some(scheme) = Scheme::from_name(scheme) else {
                    continue;
                };
                match build(scheme, &params) {
                    Ok(c) => found.push(c),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if found.is_empty() {
            return Err(first_error.unwrap_or(Error::NoChallenge));
        }
        Ok(found)
    }

    /// Picks the challenge a client should answer: the first `L402` one, else the first `LSAT`.
    pub fn preferred(challenges: &[Challenge]) -> Option<&Challenge> {
        challenges
            .iter()
            .find(|c| c.scheme == Scheme::L402)
            .or_else(|| challenges.first())
    }
}

fn build(scheme: Scheme, params: &[(&str, Cow<'_, str>)]) -> Result<Challenge, Error> {
    let param = |name: &str| {
        params
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
            .next()
    };
    let invalid = |reason: &str| Error::InvalidChallenge {
        reason: reason.to_owned(),
    };
    let mac_text = match (param("macaroon"), param("token")) {
        (Some(m), Some(t)) if m != t => {
            return Err(invalid("macaroon= and token= carry different values"));
        }
        (Some(m), _) | (None, Some(m)) => m,
        (None, None) => return Err(invalid("no macaroon= (or token=) parameter")),
    };
    let invoice = param("invoice").ok_or_else(|| invalid("no invoice= parameter"))?;
    check_invoice(invoice).map_err(|_| invalid("invoice= is not a BOLT11 string"))?;
    let bytes = decode_base64(mac_text.as_bytes())
        .map_err(|e| invalid(&format!("macaroon is not base64: {e}")))?;
    let macaroon = Macaroon::from_binary_with(&bytes, &Limits::DEFAULT)
        .map_err(|e| invalid(&format!("cannot decode macaroon: {e}")))?;
    Ok(Challenge {
        scheme,
        macaroon,
        invoice: invoice.to_owned(),
        version: param("version").map(str::to_owned),
    })
}

// === tokenizer ===

enum Item<'a> {
    Scheme(&'a str),
    Param(&'a str, Cow<'a, str>),
}

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace() || b == b',' || b == b'=' || b == b'"'
}

/// Splits a header value into scheme names and `name=value` parameters (RFC 7235 syntax, read
/// leniently: commas between parameters are optional and values may be unquoted base64).
fn tokenize(s: &str) -> Result<Vec<Item<'_>>, Error> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut items = Vec::new();
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            return Ok(items);
        }
        let start = i;
        while i < b.len() && !is_delim(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(Error::InvalidChallenge {
                reason: format!(
                    "unexpected {:?} at byte {i} of WWW-Authenticate",
                    b[i] as char
                ),
            });
        }
        let token = &s[start..i];
        let after = skip_ws(i);
        if after < b.len() && b[after] == b'=' {
            i = skip_ws(after + 1);
            if i < b.len() && b[i] == b'"' {
                let (value, next) = quoted(s, i)?;
                items.push(Item::Param(token, value));
                i = next;
            } else {
                let vstart = i;
                while i < b.len() && !(b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                items.push(Item::Param(token, Cow::Borrowed(&s[vstart..i])));
            }
        } else {
            items.push(Item::Scheme(token));
            i = after;
        }
    }
}

/// Reads a quoted string starting at the opening quote; returns its value and the index after
/// the closing quote.
fn quoted(s: &str, open: usize) -> Result<(Cow<'_, str>, usize), Error> {
    let b = s.as_bytes();
    let mut i = open + 1;
    let start = i;
    let mut owned: Option<String> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let value = match owned {
                    Some(o) => Cow::Owned(o),
                    None => Cow::Borrowed(&s[start..i]),
                };
                return Ok((value, i + 1));
            }
            b'\\' if i + 1 < b.len() => {
                let o = owned.get_or_insert_with(|| s[start..i].to_owned());
                // Escapes are only meaningful for ASCII; push the escaped char as-is.
                let ch = s[i + 1..].chars().next().expect("index within string");
                o.push(ch);
                i += 1 + ch.len_utf8();
            }
            _ => {
                let ch = s[i..].chars().next().expect("index within string");
                if let Some(o) = owned.as_mut() {
                    o.push(ch);
                }
                i += ch.len_utf8();
            }
        }
    }
    Err(Error::InvalidChallenge {
        reason: format!("unterminated quoted string starting at byte {open} of WWW-Authenticate"),
    })
}

/// The `name=value` parameters of one challenge, in order.
type Params<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// Groups parameters under the scheme that precedes them; parameters before any scheme are
/// dropped.
fn group(items: Vec<Item<'_>>) -> Vec<(&str, Params<'_>)> {
    let mut out: Vec<(&str, Params<'_>)> = Vec::new();
    for item in items {
        match item {
            Item::Scheme(s) => out.push((s, Vec::new())),
            Item::Param(k, v) => {
                if let Some((_, params)) = out.last_mut() {
                    params.push((k, v));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str = "lnbcrt10n1pexampleinvoice";

    fn mac() -> Macaroon {
        let mut m = Macaroon::new(b"key", vec![0; 66], "lsat");
        m.add_first_party_caveat("services=weather:0");
        m
    }

    fn parse(v: &str) -> Result<Vec<Challenge>, Error> {
        Challenge::parse_all([v])
    }

    #[test]
    fn emits_aperture_format() {
        let c = Challenge::new(mac(), INV).unwrap();
        let b64 = mac().to_base64();
        assert_eq!(
            c.header_values(ChallengeFormat::default()),
            vec![
                format!("LSAT macaroon=\"{b64}\", invoice=\"{INV}\""),
                format!("L402 macaroon=\"{b64}\", invoice=\"{INV}\""),
            ]
        );
        let spec = c.header_values(ChallengeFormat {
            lsat_line: false,
            spec_params: true,
        });
        assert_eq!(
            spec,
            vec![format!(
                "L402 macaroon=\"{b64}\", invoice=\"{INV}\", version=\"0\", token=\"{b64}\""
            )]
        );
        // What we emit, we parse.
        for line in c.header_values(ChallengeFormat {
            lsat_line: true,
            spec_params: true,
        }) {
            let parsed = parse(&line).unwrap();
            assert_eq!(parsed[0].macaroon(), &mac());
            assert_eq!(parsed[0].invoice(), INV);
        }
    }

    #[test]
    fn parses_every_wire_variant() {
        let m = mac().to_base64();
        let url = mac().to_base64_url();
        let variants = [
            format!(r#"L402 macaroon="{m}", invoice="{INV}""#),
            format!(r#"LSAT macaroon="{m}", invoice="{INV}""#),
            format!(r#"L402 macaroon="{m}",invoice="{INV}""#),
            format!(r#"L402 invoice="{INV}", macaroon="{m}""#),
            format!(r#"L402 version="0", token="{m}", invoice="{INV}""#),
            format!(r#"L402 version="0" token="{m}", invoice="{INV}""#),
            format!(r#"L402 macaroon={m}, invoice={INV}"#),
            format!(r#"l402 macaroon="{m}", invoice="{INV}""#),
            format!(r#"L402   macaroon="{url}" invoice="{INV}""#),
            format!(r#"L402 token="{m}", invoice="{INV}""#),
            format!(r#"L402 Macaroon = "{m}" , INVOICE = "{INV}""#),
            format!(r#"L402 macaroon="{m}", invoice="{INV}", version="0", token="{m}""#),
        ];
        for v in &variants {
            let got = parse(v).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(got.len(), 1, "{v}");
            assert_eq!(got[0].macaroon(), &mac(), "{v}");
            assert_eq!(got[0].invoice(), INV, "{v}");
        }
    }

    #[test]
    fn several_challenges_in_one_value() {
        let m = mac().to_base64();
        let v = format!(
            r#"Payment id="abc", method="lightning", LSAT macaroon="{m}", invoice="{INV}", L402 macaroon="{m}", invoice="{INV}""#
        );
        let got = parse(&v).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].scheme(), Scheme::Lsat);
        assert_eq!(got[1].scheme(), Scheme::L402);
        assert_eq!(Challenge::preferred(&got).unwrap().scheme(), Scheme::L402);
    }

    #[test]
    fn refusals_name_the_problem() {
        let m = mac().to_base64();
        let err = parse(&format!(r#"L402 token="{m}""#)).unwrap_err();
        assert!(err.to_string().contains("no invoice="), "{err}");
        let err = parse(&format!(r#"L402 invoice="{INV}""#)).unwrap_err();
        assert!(err.to_string().contains("no macaroon="), "{err}");
        let err = parse(r#"Bearer token="abc""#).unwrap_err();
        assert_eq!(err, Error::NoChallenge);
        let err = parse(&format!(r#"L402 macaroon="{m}, invoice="{INV}""#)).unwrap_err();
        assert!(matches!(err, Error::InvalidChallenge { .. }), "{err}");
        let err = parse(&format!(r#"L402 macaroon="{m}, invoice={INV}"#)).unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
        let other = Macaroon::new(b"k", vec![1], "").to_base64();
        let err = parse(&format!(
            r#"L402 macaroon="{m}", token="{other}", invoice="{INV}""#
        ))
        .unwrap_err();
        assert!(err.to_string().contains("different values"), "{err}");
        let err = parse(&format!(r#"L402 macaroon="{m}", invoice="ln\"bad""#)).unwrap_err();
        assert!(err.to_string().contains("BOLT11"), "{err}");
    }

    #[test]
    fn one_bad_challenge_does_not_hide_a_good_one() {
        let m = mac().to_base64();
        let got = Challenge::parse_all([
            r#"L402 macaroon="!!!", invoice="lnbc1""#,
            &format!(r#"L402 macaroon="{m}", invoice="{INV}""#),
        ])
        .unwrap();
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn invoice_with_quote_cannot_be_emitted() {
        assert!(Challenge::new(mac(), "lnbc1\", evil=\"x").is_err());
        assert!(Challenge::new(mac(), "").is_err());
    }
}
