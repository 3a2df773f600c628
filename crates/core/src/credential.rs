//! The credential a client presents after paying: macaroon(s) plus the preimage.
//!
//! Accepted forms:
//!
//! * `Authorization: L402 <mac>[,<mac>…]:<preimage hex>` — scheme `L402` or `LSAT` in any case,
//!   one or more spaces, each macaroon in any base64 variant, the preimage exactly 64 hex
//!   characters in either case. Several `Authorization` lines (Aperture's client sends an `LSAT`
//!   and an `L402` copy) are all read and must agree, so their order never matters.
//! * `Macaroon`, `Grpc-Metadata-Macaroon`, `Token`, `Grpc-Metadata-Token`: hex of the V2 macaroon
//!   with a `preimage=<hex>` caveat appended (the gRPC form); the last such caveat carries the
//!   preimage. Used only when no L402 `Authorization` is present; all present must agree.

use http::HeaderMap;
use l402_macaroon::{Limits, Macaroon, decode_base64};

use crate::caveat::PREIMAGE;
use crate::{Caveat, Error, Identifier, MAX_HEADER_LEN, Preimage, Scheme};

/// Most macaroons one credential may carry (a primary and its discharges).
pub const MAX_MACAROONS: usize = 8;

/// Headers that carry the hex form, in the order they are listed in errors.
pub const HEX_HEADERS: [&str; 4] = [
    "grpc-metadata-token",
    "token",
    "grpc-metadata-macaroon",
    "macaroon",
];

/// Where a credential was found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CredentialForm {
    /// An `Authorization` header with this scheme.
    Authorization(Scheme),
    /// One of the hex headers ([`HEX_HEADERS`]), with the preimage in a caveat.
    HexHeader(&'static str),
}

/// A parsed credential: the macaroons and the preimage that proves payment.
///
/// Parsing does not verify anything; see [`Verifier`](crate::Verifier). `Debug` prints no
/// signature and no preimage (together with the macaroon they would be a usable credential).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    macaroons: Vec<Macaroon>,
    preimage: Preimage,
    form: CredentialForm,
}

impl Credential {
    /// A credential for `macaroon` and `preimage`, to be sent in an `L402` `Authorization` header.
    pub fn new(macaroon: Macaroon, preimage: Preimage) -> Self {
        Credential {
            macaroons: vec![macaroon],
            preimage,
            form: CredentialForm::Authorization(Scheme::L402),
        }
    }

    /// The primary macaroon (the one bound to the payment).
    pub fn macaroon(&self) -> &Macaroon {
        &self.macaroons[0]
    }

    /// All macaroons, primary first.
    pub fn macaroons(&self) -> &[Macaroon] {
        &self.macaroons
    }

    /// The preimage.
    pub fn preimage(&self) -> &Preimage {
        &self.preimage
    }

    /// Where the credential was found.
    pub fn form(&self) -> CredentialForm {
        self.form
    }

    /// Decodes the primary macaroon's identifier.
    pub fn identifier(&self) -> Result<Identifier, Error> {
        Identifier::decode(self.macaroon().identifier())
    }

    /// The `Authorization` value: `<scheme> <std base64 macaroons, comma-separated>:<hex>`.
    pub fn to_authorization(&self, scheme: Scheme) -> String {
        let macs: Vec<String> = self.macaroons.iter().map(Macaroon::to_base64).collect();
        format!("{scheme} {}:{}", macs.join(","), self.preimage.to_hex())
    }

    /// The hex header form: the primary macaroon with a `preimage=<hex>` caveat appended, as
    /// Aperture's gRPC client sends it in the `macaroon` metadata key.
    pub fn to_hex_header(&self) -> String {
        self.macaroon()
            .with_first_party_caveat(format!("{PREIMAGE}={}", self.preimage.to_hex()))
            .to_hex()
    }

    /// Parses one `Authorization` value. Returns `Ok(None)` when its scheme is not `L402`/`LSAT`
    /// (for example `Bearer`), so other schemes can pass through untouched.
    ///
    /// ```
    /// # use l402::{Credential, Preimage};
    /// # use l402_macaroon::Macaroon;
    /// let m = Macaroon::new(b"key", vec![0; 66], "lsat");
    /// let p = Preimage::from_bytes([1; 32]);
    /// let value = Credential::new(m.clone(), p.clone()).to_authorization(l402::Scheme::Lsat);
    /// let parsed = Credential::parse_authorization(&value).unwrap().unwrap();
    /// assert_eq!(parsed.macaroon(), &m);
    /// assert_eq!(parsed.preimage(), &p);
    /// assert!(Credential::parse_authorization("Bearer abc").unwrap().is_none());
    /// ```
    pub fn parse_authorization(value: &str) -> Result<Option<Credential>, Error> {
        let value = value.trim_matches(|c: char| c == ' ' || c == '\t');
        let (scheme_name, rest) = match value.find([' ', '\t']) {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        };
        let Some(scheme) = Scheme::from_name(scheme_name) else {
            return Ok(None);
        };
        if value.len() > MAX_HEADER_LEN {
            return Err(Error::HeaderTooLong {
                header: "Authorization",
                len: value.len(),
            });
        }
        let invalid = |reason: String| Error::InvalidCredential {
            header: "Authorization",
            reason,
        };
        let rest = rest.trim_start_matches([' ', '\t']);
        let Some((macs, preimage_hex)) = rest.rsplit_once(':') else {
            return Err(invalid(format!(
                "expected \"{scheme} <macaroon>:<preimage>\", found no ':'"
            )));
        };
        let preimage = parse_preimage(preimage_hex).map_err(invalid)?;
        let mut macaroons = Vec::new();
        for (i, part) in macs.split(',').enumerate() {
            if part.is_empty() {
                return Err(invalid(format!("macaroon {i} is empty")));
            }
            let bytes = decode_base64(part)
                .map_err(|e| invalid(format!("macaroon {i} is not base64: {e}")))?;
            let decoded = Macaroon::slice_from_binary(&bytes, &Limits::DEFAULT)
                .map_err(|e| invalid(format!("cannot decode macaroon {i}: {e}")))?;
            macaroons.extend(decoded);
            if macaroons.len() > MAX_MACAROONS {
                return Err(invalid(format!("more than {MAX_MACAROONS} macaroons")));
            }
        }
        Ok(Some(Credential {
            macaroons,
            preimage,
            form: CredentialForm::Authorization(scheme),
        }))
    }

    /// Parses the hex form carried by the `Macaroon`/`Token` headers (`header` names which, for
    /// errors): hex of the V2 macaroon whose last `preimage=` caveat holds the preimage.
    pub fn parse_hex(header: &'static str, value: &str) -> Result<Credential, Error> {
        let invalid = |reason: String| Error::InvalidCredential { header, reason };
        let value = value.trim();
        if value.len() > MAX_HEADER_LEN {
            return Err(Error::HeaderTooLong {
                header,
                len: value.len(),
            });
        }
        let bytes = hex::decode(value).map_err(|e| invalid(format!("not hex: {e}")))?;
        let macaroons = Macaroon::slice_from_binary(&bytes, &Limits::DEFAULT)
            .map_err(|e| invalid(format!("cannot decode macaroon: {e}")))?;
        if macaroons.len() > MAX_MACAROONS {
            return Err(invalid(format!("more than {MAX_MACAROONS} macaroons")));
        }
        let preimage_hex = macaroons[0]
            .caveats()
            .iter()
            .rev()
            .filter(|c| c.is_first_party())
            .filter_map(|c| Caveat::decode(c.id()).ok())
            .find(|c| c.condition() == PREIMAGE)
            .ok_or_else(|| invalid("preimage caveat not found".into()))?;
        let preimage = parse_preimage(preimage_hex.value()).map_err(invalid)?;
        Ok(Credential {
            macaroons,
            preimage,
            form: CredentialForm::HexHeader(header),
        })
    }

    /// Finds and parses the credential in a request's headers.
    ///
    /// `Authorization` values with the `L402`/`LSAT` scheme win; other schemes are ignored. Every
    /// L402 value must parse and all must carry the same credential, otherwise the request is
    /// refused ([`Error::ConflictingCredentials`]) rather than letting header order decide. Without
    /// one, the hex headers are read the same way. Fails with [`Error::NoCredential`] when there is
    /// nothing to read.
    pub fn from_headers(headers: &HeaderMap) -> Result<Credential, Error> {
        let mut found: Option<Credential> = None;
        for value in headers.get_all(http::header::AUTHORIZATION) {
            authorization_value(value.as_bytes(), &mut found)?;
        }
        if let Some(c) = found {
            return Ok(c);
        }
        Self::from_hex_headers(headers)
    }

    /// [`from_headers`](Self::from_headers) for a request whose only `Authorization` value is
    /// `value`, held apart from its other headers: the credential in `value`, `Ok(None)` when it
    /// carries none under the `L402`/`LSAT` scheme (the hex headers are then read, with
    /// [`from_hex_headers`](Self::from_hex_headers)).
    pub fn from_authorization(value: &[u8]) -> Result<Option<Credential>, Error> {
        let mut found = None;
        authorization_value(value, &mut found)?;
        Ok(found)
    }

    /// The credential in the hex headers (`Macaroon`, `Token`, …: [`HEX_HEADERS`]), read as
    /// [`from_headers`](Self::from_headers) reads them when no `Authorization` value carries one.
    pub fn from_hex_headers(headers: &HeaderMap) -> Result<Credential, Error> {
        let mut found: Option<Credential> = None;
        for name in HEX_HEADERS {
            for value in headers.get_all(name) {
                let value = value.to_str().map_err(|_| Error::InvalidCredential {
                    header: name,
                    reason: "not visible ASCII".into(),
                })?;
                merge(Self::parse_hex(name, value)?, &mut found)?;
            }
        }
        found.ok_or(Error::NoCredential)
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("identifier", &hex::encode(self.macaroon().identifier()))
            .field("macaroons", &self.macaroons.len())
            .field("preimage", &"<redacted>")
            .field("form", &self.form)
            .finish()
    }
}

/// Adds the credentials of one `Authorization` value to what was found so far.
fn authorization_value(value: &[u8], found: &mut Option<Credential>) -> Result<(), Error> {
    let not_ascii = || Error::InvalidCredential {
        header: "Authorization",
        reason: "not visible ASCII".into(),
    };
    // The `http` crate's rule for a textual value: tab, or visible ASCII and space.
    if !value.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
        return Err(not_ascii());
    }
    let value = std::str::from_utf8(value).map_err(|_| not_ascii())?;
    for part in split_joined(value) {
        if let Some(c) = Credential::parse_authorization(part)? {
            merge(c, found)?;
        }
    }
    Ok(())
}

/// Adds `c` to what was found so far; copies must agree.
fn merge(c: Credential, found: &mut Option<Credential>) -> Result<(), Error> {
    match found {
        None => *found = Some(c),
        Some(prev) => {
            if prev.macaroons != c.macaroons || prev.preimage != c.preimage {
                return Err(Error::ConflictingCredentials);
            }
            // Report L402 rather than LSAT when both copies are sent.
            if c.form == CredentialForm::Authorization(Scheme::L402) {
                prev.form = c.form;
            }
        }
    }
    Ok(())
}

/// Splits an `Authorization` value that an intermediary joined from several lines
/// (`LSAT m:p, L402 m:p`). Commas inside a credential (between macaroons) are not followed by a
/// scheme name, so they are left alone.
fn split_joined(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in value.match_indices(',') {
        let next = value[i + 1..].trim_start();
        let starts_scheme = next
            .split([' ', '\t'])
            .next()
            .is_some_and(|w| Scheme::from_name(w).is_some() && next.len() > w.len());
        if starts_scheme {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    parts.push(&value[start..]);
    parts
}

fn parse_preimage(hex_text: &str) -> Result<Preimage, String> {
    if hex_text.len() != 64 {
        return Err(format!(
            "preimage must be 64 hex characters (32 bytes), got {}",
            hex_text.len()
        ));
    }
    hex_text.parse::<Preimage>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn mac() -> Macaroon {
        Macaroon::new(b"key", vec![0; 66], "lsat")
    }

    fn pre() -> Preimage {
        Preimage::from_bytes([0xab; 32])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn authorization_variants() {
        let m = mac();
        let std = m.to_base64();
        let url = m.to_base64_url();
        let hex = pre().to_hex();
        let upper = hex.to_uppercase();
        for v in [
            format!("L402 {std}:{hex}"),
            format!("LSAT {std}:{hex}"),
            format!("l402 {std}:{hex}"),
            format!("lsat   {url}:{upper}"),
            format!("  L402\t{std}:{hex}  "),
        ] {
            let c = Credential::parse_authorization(&v)
                .unwrap_or_else(|e| panic!("{v}: {e}"))
                .unwrap();
            assert_eq!(c.macaroon(), &m);
            assert_eq!(c.preimage(), &pre());
        }
    }

    #[test]
    fn preimage_length_is_exact() {
        let std = mac().to_base64();
        for bad in ["ab".repeat(31), "ab".repeat(33), "ab".repeat(48)] {
            let err = Credential::parse_authorization(&format!("L402 {std}:{bad}")).unwrap_err();
            assert!(err.to_string().contains("64 hex characters"), "{err}");
        }
        let err = Credential::parse_authorization(&format!("L402 {std}:{}", "zz".repeat(32)))
            .unwrap_err();
        assert!(err.to_string().contains("preimage"), "{err}");
    }

    #[test]
    fn several_macaroons() {
        let a = mac();
        let b = Macaroon::new(b"other", b"discharge".to_vec(), "");
        let v = format!(
            "L402 {},{}:{}",
            a.to_base64(),
            b.to_base64(),
            pre().to_hex()
        );
        let c = Credential::parse_authorization(&v).unwrap().unwrap();
        assert_eq!(c.macaroons(), &[a.clone(), b.clone()]);
        assert_eq!(c.to_authorization(Scheme::L402), v);
    }

    #[test]
    fn headers_lsat_and_l402_pair_in_any_order() {
        let c = Credential::new(mac(), pre());
        let lsat = c.to_authorization(Scheme::Lsat);
        let l402 = c.to_authorization(Scheme::L402);
        for pairs in [
            vec![
                ("authorization", lsat.as_str()),
                ("authorization", l402.as_str()),
            ],
            vec![
                ("authorization", l402.as_str()),
                ("authorization", lsat.as_str()),
            ],
        ] {
            let got = Credential::from_headers(&headers(&pairs)).unwrap();
            assert_eq!(got.form(), CredentialForm::Authorization(Scheme::L402));
            assert_eq!(got.macaroon(), &mac());
        }
        let joined = format!("{lsat}, {l402}");
        assert!(Credential::from_headers(&headers(&[("authorization", &joined)])).is_ok());
    }

    #[test]
    fn conflicting_or_invalid_lines_are_refused_in_any_order() {
        let good = Credential::new(mac(), pre()).to_authorization(Scheme::L402);
        let other =
            Credential::new(mac(), Preimage::from_bytes([1; 32])).to_authorization(Scheme::L402);
        let broken = "L402 AAAA:00";
        for pairs in [
            vec![
                ("authorization", good.as_str()),
                ("authorization", other.as_str()),
            ],
            vec![
                ("authorization", other.as_str()),
                ("authorization", good.as_str()),
            ],
        ] {
            assert_eq!(
                Credential::from_headers(&headers(&pairs)),
                Err(Error::ConflictingCredentials)
            );
        }
        for pairs in [
            vec![("authorization", good.as_str()), ("authorization", broken)],
            vec![("authorization", broken), ("authorization", good.as_str())],
        ] {
            assert!(matches!(
                Credential::from_headers(&headers(&pairs)),
                Err(Error::InvalidCredential { .. })
            ));
        }
    }

    #[test]
    fn other_schemes_fall_through_to_hex_headers() {
        let c = Credential::new(mac(), pre());
        let hex = c.to_hex_header();
        for name in HEX_HEADERS {
            let got =
                Credential::from_headers(&headers(&[("authorization", "Bearer x"), (name, &hex)]))
                    .unwrap();
            assert_eq!(got.preimage(), &pre());
            assert_eq!(got.form(), CredentialForm::HexHeader(name));
            // The verified macaroon includes the preimage caveat.
            assert_eq!(got.macaroon().caveats().len(), 1);
        }
        assert_eq!(
            Credential::from_headers(&headers(&[("authorization", "Bearer x")])),
            Err(Error::NoCredential)
        );
    }

    #[test]
    fn one_value_held_apart_reads_as_the_same_value_among_the_headers() {
        let c = Credential::new(mac(), pre());
        let l402 = c.to_authorization(Scheme::L402);
        let lsat = c.to_authorization(Scheme::Lsat);
        let joined = format!("{lsat}, {l402}");
        let conflicting = format!(
            "{l402}, {}",
            Credential::new(mac(), Preimage::from_bytes([1; 32])).to_authorization(Scheme::L402)
        );
        let hex = c.to_hex_header();
        let values: [&[u8]; 8] = [
            l402.as_bytes(),
            lsat.as_bytes(),
            joined.as_bytes(),
            conflicting.as_bytes(),
            b"Bearer x",
            b"",
            b"L402 AAAA:00",
            b"L402 \xc3\xa9:00",
        ];
        for value in values {
            let mut h = HeaderMap::new();
            h.append("macaroon", HeaderValue::from_str(&hex).unwrap());
            let apart = Credential::from_authorization(value).and_then(|found| match found {
                Some(c) => Ok(c),
                None => Credential::from_hex_headers(&h),
            });
            h.append("authorization", HeaderValue::from_bytes(value).unwrap());
            assert_eq!(
                apart,
                Credential::from_headers(&h),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn hex_form_last_preimage_caveat_wins_and_missing_is_named() {
        let m = mac().with_first_party_caveat(format!("preimage={}", "00".repeat(32)));
        let c = Credential::new(m, pre());
        let got = Credential::parse_hex("macaroon", &c.to_hex_header()).unwrap();
        assert_eq!(got.preimage(), &pre());
        let err = Credential::parse_hex("macaroon", &mac().to_hex()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid credential in macaroon: preimage caveat not found"
        );
    }

    #[test]
    fn aperture_parse_cases() {
        for pairs in [
            vec![],
            vec![("test", "foo")],
            vec![("authorization", "")],
            vec![("authorization", "foo")],
        ] {
            assert!(Credential::from_headers(&headers(&pairs)).is_err());
        }
        assert!(Credential::from_headers(&headers(&[("grpc-metadata-macaroon", "foo")])).is_err());
        assert!(Credential::from_headers(&headers(&[("macaroon", "foo")])).is_err());
    }

    #[test]
    fn too_long_is_refused_before_decoding() {
        let v = format!("L402 {}:{}", "A".repeat(MAX_HEADER_LEN), pre().to_hex());
        assert!(matches!(
            Credential::parse_authorization(&v),
            Err(Error::HeaderTooLong { .. })
        ));
    }
}
