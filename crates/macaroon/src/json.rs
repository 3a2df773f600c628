//! The JSON formats of go-macaroon and libmacaroons.
//!
//! * V2: `{"c":[{"i"|"i64", "v"|"v64", "l"}], "l", "i"|"i64", "s"|"s64"}`. Binary fields are
//!   written as a plain string when they are UTF-8 and that is no longer than base64, otherwise as
//!   unpadded URL-safe base64 under the `…64` name (go-macaroon's rule, so output is byte-identical).
//!   On input both forms are accepted, `…64` in any base64 variant; both at once is an error.
//!   libmacaroons' `"v":2` member is accepted.
//! * V1: `{"caveats":[{"cid","vid","cl"}], "location", "identifier", "signature"}` with a hex
//!   signature and a base64 `vid`.
//! * A JSON string is the base64 of a binary macaroon; a JSON array is a list of macaroons.

use serde_json::{Map, Value};

use crate::b64::{decode_base64, encode_base64_url};
use crate::crypto::SIGNATURE_LEN;
use crate::{Caveat, Error, Limits, Macaroon};

// === decoding ===

fn json_err(reason: impl Into<String>) -> Error {
    Error::Json {
        reason: reason.into(),
    }
}

/// Parses a JSON document holding one macaroon (object or base64 string) or several (array).
pub(crate) fn parse(text: &str, limits: &Limits) -> Result<Vec<Macaroon>, Error> {
    let value: Value = serde_json::from_str(text).map_err(|e| json_err(e.to_string()))?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(json_err("empty array"));
            }
            items.iter().map(|v| from_value(v, limits)).collect()
        }
        v => Ok(vec![from_value(&v, limits)?]),
    }
}

fn from_value(v: &Value, limits: &Limits) -> Result<Macaroon, Error> {
    match v {
        Value::Object(obj) => from_object(obj, limits),
        Value::String(s) => Macaroon::from_binary_with(&decode_base64(s)?, limits),
        _ => Err(json_err("expected an object or a base64 string")),
    }
}

fn from_object(obj: &Map<String, Value>, limits: &Limits) -> Result<Macaroon, Error> {
    const V1_KEYS: [&str; 4] = ["caveats", "location", "identifier", "signature"];
    const V2_KEYS: [&str; 7] = ["c", "l", "i", "i64", "s", "s64", "v"];
    let v1 = V1_KEYS.iter().any(|k| obj.contains_key(*k));
    let v2 = V2_KEYS.iter().any(|k| obj.contains_key(*k));
    match (v1, v2) {
        (true, true) => Err(json_err("object mixes V1 and V2 field names")),
        (true, false) => from_v1(obj, limits),
        _ => from_v2(obj, limits),
    }
}

fn string_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(json_err(format!("field {key:?} must be a string"))),
    }
}

/// A field that may be given as a plain string (`name`) or base64 (`name64`). Empty strings
/// count as absent, as in go-macaroon.
fn binary_field(
    obj: &Map<String, Value>,
    name: &'static str,
    name64: &'static str,
) -> Result<Vec<u8>, Error> {
    let plain = string_field(obj, name)?.filter(|s| !s.is_empty());
    let b64 = string_field(obj, name64)?.filter(|s| !s.is_empty());
    match (plain, b64) {
        (Some(_), Some(_)) => Err(Error::AmbiguousJsonField { field: name }),
        (Some(s), None) => Ok(s.as_bytes().to_vec()),
        (None, Some(s)) => decode_base64(s).map_err(|e| json_err(format!("field {name64:?}: {e}"))),
        (None, None) => Ok(Vec::new()),
    }
}

fn signature(sig: &[u8]) -> Result<[u8; SIGNATURE_LEN], Error> {
    sig.try_into()
        .map_err(|_| Error::SignatureLength { len: sig.len() })
}

fn caveat_array<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(json_err(format!("field {key:?} must be an array"))),
    }
}

fn check_caveat(caveat: &Caveat, index: usize) -> Result<(), Error> {
    if caveat.verification_id.is_none() && caveat.location.is_some() {
        return Err(Error::LocationInFirstPartyCaveat { caveat: index });
    }
    Ok(())
}

fn from_v2(obj: &Map<String, Value>, limits: &Limits) -> Result<Macaroon, Error> {
    match obj.get("v") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(2) => {}
        Some(other) => {
            return Err(json_err(format!(
                "unsupported version field \"v\": {other} (expected 2)"
            )));
        }
    }
    let identifier = binary_field(obj, "i", "i64")?;
    let location = string_field(obj, "l")?.unwrap_or_default().to_owned();
    let sig = signature(&binary_field(obj, "s", "s64")?)?;
    let items = caveat_array(obj, "c")?;
    if items.len() > limits.max_caveats {
        return Err(Error::TooManyCaveats {
            limit: limits.max_caveats,
        });
    }
    let mut caveats = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(c) = item else {
            return Err(json_err(format!("caveat {index} must be an object")));
        };
        let id = binary_field(c, "i", "i64")?;
        let vid = binary_field(c, "v", "v64")?;
        let loc = string_field(c, "l")?.filter(|l| !l.is_empty());
        let caveat = Caveat {
            id,
            verification_id: Some(vid).filter(|v| !v.is_empty()),
            location: loc.map(str::to_owned),
        };
        check_caveat(&caveat, index)?;
        caveats.push(caveat);
    }
    Ok(Macaroon::from_parts(location, identifier, caveats, sig))
}

fn from_v1(obj: &Map<String, Value>, limits: &Limits) -> Result<Macaroon, Error> {
    let identifier = string_field(obj, "identifier")?
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let location = string_field(obj, "location")?
        .unwrap_or_default()
        .to_owned();
    let sig_hex = string_field(obj, "signature")?.unwrap_or_default();
    let sig = signature(&hex::decode(sig_hex).map_err(|_| Error::Hex { field: "signature" })?)?;
    let items = caveat_array(obj, "caveats")?;
    if items.len() > limits.max_caveats {
        return Err(Error::TooManyCaveats {
            limit: limits.max_caveats,
        });
    }
    let mut caveats = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::Object(c) = item else {
            return Err(json_err(format!("caveat {index} must be an object")));
        };
        let id = string_field(c, "cid")?
            .unwrap_or_default()
            .as_bytes()
            .to_vec();
        let vid = match string_field(c, "vid")?.filter(|v| !v.is_empty()) {
            Some(v) => Some(decode_base64(v).map_err(|e| json_err(format!("field \"vid\": {e}")))?),
            None => None,
        };
        let loc = string_field(c, "cl")?.filter(|l| !l.is_empty());
        let caveat = Caveat {
            id,
            verification_id: vid.filter(|v| !v.is_empty()),
            location: loc.map(str::to_owned),
        };
        check_caveat(&caveat, index)?;
        caveats.push(caveat);
    }
    Ok(Macaroon::from_parts(location, identifier, caveats, sig))
}

// === encoding ===

/// Appends `s` as a JSON string literal escaped exactly as Go's `encoding/json` does (including
/// its HTML-safe escapes), so our output is byte-identical to go-macaroon's.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_string_len(s: &str) -> usize {
    let mut tmp = String::with_capacity(s.len() + 2);
    push_json_string(&mut tmp, s);
    tmp.len()
}

/// Writes `"name":"…"` or `"name64":"…"` following go-macaroon's choice of the shorter form.
/// Nothing is written for empty data (go-macaroon's `omitempty`).
fn push_binary_field(out: &mut String, first: &mut bool, name: &str, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let b64_len = (data.len() * 4).div_ceil(3);
    match std::str::from_utf8(data) {
        Ok(s) if json_string_len(s) - 2 <= b64_len + 2 => push_member(out, first, name, s),
        _ => push_member(out, first, &format!("{name}64"), &encode_base64_url(data)),
    }
}

fn push_member(out: &mut String, first: &mut bool, name: &str, value: &str) {
    push_key(out, first, name);
    push_json_string(out, value);
}

fn push_key(out: &mut String, first: &mut bool, name: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    push_json_string(out, name);
    out.push(':');
}

impl Macaroon {
    /// Serialises the macaroon in go-macaroon's V2 JSON format (byte-identical to its output).
    pub fn to_json_v2(&self) -> String {
        let mut out = String::with_capacity(64 + self.binary_v2_len() * 2);
        out.push('{');
        let mut first = true;
        if !self.caveats.is_empty() {
            push_key(&mut out, &mut first, "c");
            out.push('[');
            for (i, c) in self.caveats.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('{');
                let mut cfirst = true;
                push_binary_field(&mut out, &mut cfirst, "i", &c.id);
                if let Some(vid) = &c.verification_id {
                    push_binary_field(&mut out, &mut cfirst, "v", vid);
                }
                if let Some(loc) = c.location.as_deref().filter(|l| !l.is_empty()) {
                    push_member(&mut out, &mut cfirst, "l", loc);
                }
                out.push('}');
            }
            out.push(']');
        }
        if !self.location.is_empty() {
            push_member(&mut out, &mut first, "l", &self.location);
        }
        push_binary_field(&mut out, &mut first, "i", &self.identifier);
        push_binary_field(&mut out, &mut first, "s", &self.signature);
        out.push('}');
        out
    }

    /// Serialises the macaroon in the V1 JSON format (hex signature, base64url verification ids).
    ///
    /// Fails with [`Error::NotRepresentableInV1`] when the identifier or a caveat id is not UTF-8.
    pub fn to_json_v1(&self) -> Result<String, Error> {
        let identifier =
            std::str::from_utf8(&self.identifier).map_err(|_| Error::NotRepresentableInV1 {
                field: "identifier",
            })?;
        let mut out = String::from("{");
        let mut first = true;
        push_key(&mut out, &mut first, "caveats");
        out.push('[');
        for (i, c) in self.caveats.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let cid = std::str::from_utf8(&c.id)
                .map_err(|_| Error::NotRepresentableInV1 { field: "caveat id" })?;
            out.push('{');
            let mut cfirst = true;
            push_member(&mut out, &mut cfirst, "cid", cid);
            if let Some(vid) = &c.verification_id {
                push_member(&mut out, &mut cfirst, "vid", &encode_base64_url(vid));
            }
            if let Some(loc) = &c.location {
                push_member(&mut out, &mut cfirst, "cl", loc);
            }
            out.push('}');
        }
        out.push(']');
        push_member(&mut out, &mut first, "location", &self.location);
        push_member(&mut out, &mut first, "identifier", identifier);
        push_member(
            &mut out,
            &mut first,
            "signature",
            &hex::encode(self.signature),
        );
        out.push('}');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_escapes() {
        let mut s = String::new();
        push_json_string(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
    }

    #[test]
    fn ambiguous_fields_are_rejected() {
        let err =
            Macaroon::from_json(r#"{"i": "hello", "i64": "abcd", "s64": "AAAA"}"#).unwrap_err();
        assert_eq!(err, Error::AmbiguousJsonField { field: "i" });
    }

    #[test]
    fn signature_lengths() {
        let s31 = encode_base64_url(&[1; 31]);
        let s33 = encode_base64_url(&[1; 33]);
        assert_eq!(
            Macaroon::from_json(&format!(r#"{{"i":"x","s64":"{s31}"}}"#)),
            Err(Error::SignatureLength { len: 31 })
        );
        assert_eq!(
            Macaroon::from_json(&format!(r#"{{"i":"x","s64":"{s33}"}}"#)),
            Err(Error::SignatureLength { len: 33 })
        );
    }

    #[test]
    fn mixed_versions_and_bad_types() {
        assert!(matches!(
            Macaroon::from_json(r#"{"identifier":"x","i":"y"}"#),
            Err(Error::Json { .. })
        ));
        assert!(matches!(
            Macaroon::from_json(r#"{"i":5}"#),
            Err(Error::Json { .. })
        ));
        assert!(matches!(
            Macaroon::from_json(r#"{"v":3,"i":"x"}"#),
            Err(Error::Json { .. })
        ));
        assert!(matches!(Macaroon::from_json("[]"), Err(Error::Json { .. })));
    }

    #[test]
    fn array_of_macaroons() {
        let a = Macaroon::new(b"k", b"a".to_vec(), "");
        let b = Macaroon::new(b"k", b"b".to_vec(), "");
        let text = format!("[{},{}]", a.to_json_v2(), b.to_json_v1().unwrap());
        assert_eq!(Macaroon::slice_from_json(&text).unwrap(), vec![a, b]);
    }
}
