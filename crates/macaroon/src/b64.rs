//! Base64 in every variant macaroon implementations emit.
//!
//! Decoding accepts the standard (`+/`) and URL-safe (`-_`) alphabets, padded or not, like
//! go-macaroon's `Base64Decode`: the alphabet is chosen by the presence of `+` or `/`, and padding
//! is optional but must not be excessive.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::Error;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(false);

const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes base64 in any of the four common variants (standard or URL-safe alphabet, padded or
/// not).
///
/// ```
/// use l402_macaroon::decode_base64;
/// for s in ["Z29+IQ==", "Z29-IQ==", "Z29+IQ", "Z29-IQ"] {
///     assert_eq!(decode_base64(s).unwrap(), b"go~!");
/// }
/// assert!(decode_base64("Z29+IQ===").is_err());
/// ```
pub fn decode_base64(s: impl AsRef<[u8]>) -> Result<Vec<u8>, Error> {
    let s = s.as_ref();
    let engine = if s.iter().any(|&b| b == b'+' || b == b'/') {
        &STD_LENIENT
    } else {
        &URL_LENIENT
    };
    engine.decode(s).map_err(|e| Error::Base64 {
        reason: e.to_string(),
    })
}

/// Encodes with the standard alphabet and padding (the form Aperture puts in headers).
pub fn encode_base64_std(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Encodes with the URL-safe alphabet and no padding (the form go-macaroon uses in JSON).
pub fn encode_base64_url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_alphabets_are_rejected() {
        assert!(decode_base64("Z2+-IQ").is_err());
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(decode_base64("").unwrap(), b"");
    }

    #[test]
    fn trailing_bits_are_rejected() {
        // "Z29+IR" has non-zero bits after the last full byte.
        assert!(decode_base64("Z29+IR").is_err());
    }
}
