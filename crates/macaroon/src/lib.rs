//! Macaroons, byte-compatible with go-macaroon and libmacaroons.
//!
//! A macaroon is a bearer credential: an identifier, a list of caveats (conditions) and an
//! HMAC-SHA256 signature chained over both from a secret root key. Anyone holding a macaroon can
//! add caveats (narrowing it), but only the holder of the root key can check it.
//!
//! This crate is the generic layer under the L402 protocol: it knows nothing of payments, has no
//! async code and no I/O. It provides
//!
//! * the [`Macaroon`] type with the HMAC chain and its key derivation
//!   (`HMAC-SHA256("macaroons-key-generator", root_key)`), first-party caveats, and decoding and
//!   preservation of third-party caveats (which never pass verification: discharges are not
//!   supported);
//! * the V2 binary format with go-macaroon's strictness ([`Macaroon::to_binary_v2`],
//!   [`Macaroon::from_binary`]), the V1 packet format, and the V2 and V1 JSON formats;
//! * lenient base64 input in every variant ([`decode_base64`]), and [`Macaroon::from_text`] that
//!   detects the format of a pasted macaroon;
//! * a verifier that compares signatures in constant time ([`Macaroon::verify_signature`],
//!   [`Macaroon::verify`]);
//! * [`Limits`] on input size and caveat count so hostile input costs bounded memory and time.
//!
//! ```
//! use l402_macaroon::Macaroon;
//!
//! let root_key = b"this is the key";
//! let mut m = Macaroon::new(root_key, b"keyid".to_vec(), "http://example.org/");
//! m.add_first_party_caveat("account = 3735928559");
//! assert_eq!(
//!     m.to_base64_url(),
//!     "AgETaHR0cDovL2V4YW1wbGUub3JnLwIFa2V5aWQAAhRhY2NvdW50ID0gMzczNTkyODU1OQAABiD1SAf23G7fiL8PcwazgiVio2JTPb9zObphdl2kvSWdhw"
//! );
//!
//! let parsed = Macaroon::from_text(&m.to_base64()).unwrap();
//! parsed
//!     .verify(root_key, |c| if c == b"account = 3735928559" { Ok(()) } else { Err("unknown") })
//!     .unwrap();
//! ```

mod b64;
pub mod crypto;
mod error;
mod json;
mod macaroon;
mod v1;
mod v2;

pub use b64::{decode_base64, encode_base64_std, encode_base64_url};
pub use error::Error;
pub use macaroon::{Caveat, Macaroon};

/// Bounds applied while decoding, so that hostile input costs bounded memory and time.
///
/// Every length inside a macaroon is bounded by the input length, so `max_bytes` bounds memory;
/// `max_caveats` bounds the number of HMAC computations verification performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes of whatever encoding is being decoded.
    pub max_bytes: usize,
    /// Largest accepted number of caveats in one macaroon.
    pub max_caveats: usize,
}

impl Limits {
    /// 64 KiB of input and 256 caveats: far above anything L402 produces, small enough that one
    /// hostile request costs microseconds.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 64 * 1024,
        max_caveats: 256,
    };

    fn check_len(&self, len: usize) -> Result<(), Error> {
        if len == 0 {
            return Err(Error::Empty);
        }
        if len > self.max_bytes {
            return Err(Error::TooLarge {
                len,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

// === decoding entry points ===

impl Macaroon {
    /// Decodes one binary macaroon (V2, or V1 packets), rejecting any bytes after it.
    ///
    /// Use [`from_binary_prefix`](Self::from_binary_prefix) to get the trailing bytes instead
    /// (go-macaroon's `UnmarshalBinary` silently ignores them), or
    /// [`slice_from_binary`](Self::slice_from_binary) for concatenated macaroons.
    pub fn from_binary(data: &[u8]) -> Result<Macaroon, Error> {
        Self::from_binary_with(data, &Limits::DEFAULT)
    }

    /// [`from_binary`](Self::from_binary) with explicit limits.
    pub fn from_binary_with(data: &[u8], limits: &Limits) -> Result<Macaroon, Error> {
        let (m, rest) = Self::from_binary_prefix(data, limits)?;
        if !rest.is_empty() {
            return Err(Error::TrailingData { len: rest.len() });
        }
        Ok(m)
    }

    /// Decodes the binary macaroon at the start of `data` and returns it with the bytes that
    /// follow it (like go-macaroon's internal `parseBinary`).
    pub fn from_binary_prefix<'a>(
        data: &'a [u8],
        limits: &Limits,
    ) -> Result<(Macaroon, &'a [u8]), Error> {
        limits.check_len(data.len())?;
        match data[0] {
            v2::VERSION => v2::decode_prefix(data, limits),
            b if b.is_ascii_hexdigit() => v1::decode_prefix(data, limits),
            first_byte => Err(Error::UnknownFormat { first_byte }),
        }
    }

    /// Decodes concatenated binary macaroons (go-macaroon's `Slice.UnmarshalBinary`): the first
    /// is usually the primary macaroon and the others its discharges.
    pub fn slice_from_binary(data: &[u8], limits: &Limits) -> Result<Vec<Macaroon>, Error> {
        limits.check_len(data.len())?;
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (m, r) = Self::from_binary_prefix(rest, limits)?;
            out.push(m);
            rest = r;
        }
        Ok(out)
    }

    /// Decodes one macaroon from JSON (V2 or V1 object, or a JSON string holding base64).
    pub fn from_json(text: &str) -> Result<Macaroon, Error> {
        Self::from_json_with(text, &Limits::DEFAULT)
    }

    /// [`from_json`](Self::from_json) with explicit limits.
    pub fn from_json_with(text: &str, limits: &Limits) -> Result<Macaroon, Error> {
        exactly_one(Self::slice_from_json_with(text, limits)?)
    }

    /// Decodes a JSON array of macaroons (or a single one) into a list.
    pub fn slice_from_json(text: &str) -> Result<Vec<Macaroon>, Error> {
        Self::slice_from_json_with(text, &Limits::DEFAULT)
    }

    /// [`slice_from_json`](Self::slice_from_json) with explicit limits.
    pub fn slice_from_json_with(text: &str, limits: &Limits) -> Result<Vec<Macaroon>, Error> {
        limits.check_len(text.len())?;
        json::parse(text, limits)
    }

    /// Decodes one macaroon from any text form people paste: V2 or V1 JSON, base64 (standard or
    /// URL-safe, padded or not) of V2 binary or of V1 packets, or hex of V2 binary. Surrounding
    /// whitespace is ignored; trailing data is an error.
    pub fn from_text(text: &str) -> Result<Macaroon, Error> {
        Self::from_text_with(text, &Limits::DEFAULT)
    }

    /// [`from_text`](Self::from_text) with explicit limits.
    pub fn from_text_with(text: &str, limits: &Limits) -> Result<Macaroon, Error> {
        exactly_one(Self::slice_from_text(text, limits)?)
    }

    /// Like [`from_text`](Self::from_text) but accepts several macaroons (a JSON array, or
    /// concatenated binary macaroons in one base64 or hex string).
    pub fn slice_from_text(text: &str, limits: &Limits) -> Result<Vec<Macaroon>, Error> {
        let text = text.trim_ascii();
        limits.check_len(text.len())?;
        let bytes = text.as_bytes();
        match bytes[0] {
            b'{' | b'[' | b'"' => json::parse(text, limits),
            // Raw V1 packets, as printed by libmacaroons' inspect or go-macaroon's MarshalBinary.
            _ if bytes.len() > 13 && bytes[4..].starts_with(b"location ") => {
                Self::slice_from_binary(bytes, limits)
            }
            _ if looks_like_v2_hex(bytes) => {
                let data = hex::decode(bytes).map_err(|_| Error::Hex { field: "macaroon" })?;
                Self::slice_from_binary(&data, limits)
            }
            _ => Self::slice_from_binary(&decode_base64(bytes)?, limits),
        }
    }
}

/// Hex of a V2 macaroon starts with `02`; base64 of one starts with `Ag`, so the two never clash
/// (base64 text starting with `02` decodes to a first byte of 0xd3, which is no known format).
fn looks_like_v2_hex(bytes: &[u8]) -> bool {
    bytes.starts_with(b"02")
        && bytes.len().is_multiple_of(2)
        && bytes.iter().all(u8::is_ascii_hexdigit)
}

fn exactly_one(mut list: Vec<Macaroon>) -> Result<Macaroon, Error> {
    if list.len() == 1 {
        return Ok(list.pop().expect("one element"));
    }
    Err(Error::NotOneMacaroon { found: list.len() })
}

// === encoding shortcuts ===

impl Macaroon {
    /// V2 binary in standard base64 with padding: the form Aperture puts in L402 headers.
    pub fn to_base64(&self) -> String {
        encode_base64_std(&self.to_binary_v2())
    }

    /// V2 binary in URL-safe base64 without padding: libmacaroons' and pymacaroons' default.
    pub fn to_base64_url(&self) -> String {
        encode_base64_url(&self.to_binary_v2())
    }

    /// V2 binary in lowercase hex: the form of the `Macaroon` / `Grpc-Metadata-Macaroon` headers.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_binary_v2())
    }
}
