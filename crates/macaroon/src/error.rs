//! The crate's one error type.

use std::fmt;

/// Everything that can go wrong while decoding, encoding or verifying a macaroon.
///
/// Every variant names the problem precisely enough to act on it (which field, which byte offset,
/// which caveat); none of them carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input was empty.
    Empty,
    /// The input is longer than the configured [`Limits::max_bytes`](crate::Limits::max_bytes).
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The macaroon has more caveats than [`Limits::max_caveats`](crate::Limits::max_caveats).
    TooManyCaveats {
        /// The limit it exceeded.
        limit: usize,
    },
    /// The first byte matches none of the known serialisations (V2 binary, V1 packets, JSON).
    UnknownFormat {
        /// The offending first byte.
        first_byte: u8,
    },
    /// A varint was truncated, longer than 10 bytes, or above go-macaroon's limit of `0x7fffffff`.
    BadVarint {
        /// Byte offset where the varint starts.
        offset: usize,
    },
    /// A field's declared length runs past the end of the input.
    Truncated {
        /// Byte offset of the field.
        offset: usize,
        /// The declared length.
        declared: u64,
    },
    /// Field types inside a V2 section are not strictly increasing.
    FieldsOutOfOrder {
        /// Byte offset of the out-of-order field.
        offset: usize,
    },
    /// The V2 header section is not exactly `[location] identifier`.
    InvalidHeader,
    /// A V2 caveat section has no identifier field.
    CaveatWithoutIdentifier {
        /// Index of the caveat (0-based).
        caveat: usize,
    },
    /// A V2 caveat section carries a field that does not belong there.
    InvalidCaveatField {
        /// Index of the caveat (0-based).
        caveat: usize,
        /// The field type found.
        field_type: u64,
    },
    /// A caveat has a location but no verification id: first-party caveats carry no location.
    LocationInFirstPartyCaveat {
        /// Index of the caveat (0-based).
        caveat: usize,
    },
    /// The signature field is missing or is not the field that follows the caveats.
    MissingSignature,
    /// The signature is not 32 bytes long.
    SignatureLength {
        /// The length found.
        len: usize,
    },
    /// Bytes followed a complete macaroon where none were allowed.
    TrailingData {
        /// Number of bytes left over.
        len: usize,
    },
    /// The input holds a different number of macaroons than the one expected.
    NotOneMacaroon {
        /// How many were found.
        found: usize,
    },
    /// A location is not valid UTF-8.
    LocationNotUtf8,
    /// A V1 packet is malformed.
    BadPacket {
        /// Byte offset of the packet.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A V1 packet of an unexpected kind was found.
    UnexpectedPacket {
        /// Byte offset of the packet.
        offset: usize,
        /// The packet's field name (lossily decoded).
        name: String,
    },
    /// The V1 formats require UTF-8 identifiers and caveat ids.
    NotRepresentableInV1 {
        /// Which field is not UTF-8.
        field: &'static str,
    },
    /// A V1 packet would exceed the 0xffff length a packet header can express.
    PacketTooLong {
        /// Which field is too long.
        field: &'static str,
    },
    /// The JSON text is malformed or has a field of the wrong type.
    Json {
        /// What is wrong, naming the field where possible.
        reason: String,
    },
    /// Both the plain and the `…64` form of a JSON field were given.
    AmbiguousJsonField {
        /// The field name (without the `64` suffix).
        field: &'static str,
    },
    /// Base64 data could not be decoded in any of the accepted variants.
    Base64 {
        /// What is wrong.
        reason: String,
    },
    /// Hex data could not be decoded.
    Hex {
        /// Which field.
        field: &'static str,
    },
    /// The recomputed signature does not match the macaroon's signature.
    BadSignature,
    /// The macaroon carries a third-party caveat; it can only pass with a discharge macaroon,
    /// and discharges are not supported, so it never passes.
    ThirdPartyCaveat {
        /// Index of the caveat (0-based).
        caveat: usize,
    },
    /// A first-party caveat was rejected by the condition checker.
    CaveatNotSatisfied {
        /// Index of the caveat (0-based).
        caveat: usize,
        /// The caveat's condition, lossily decoded.
        condition: String,
        /// Why the checker rejected it.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => f.write_str("empty macaroon data"),
            Error::TooLarge { len, limit } => {
                write!(
                    f,
                    "macaroon data is {len} bytes, more than the limit of {limit}"
                )
            }
            Error::TooManyCaveats { limit } => {
                write!(f, "macaroon has more than the limit of {limit} caveats")
            }
            Error::UnknownFormat { first_byte } => write!(
                f,
                "cannot determine macaroon format: first byte is 0x{first_byte:02x} \
                 (expected 0x02 for V2, a hex digit for V1, or '{{' for JSON)"
            ),
            Error::BadVarint { offset } => write!(f, "bad varint at byte {offset}"),
            Error::Truncated { offset, declared } => write!(
                f,
                "field at byte {offset} declares {declared} bytes, past the end of the data"
            ),
            Error::FieldsOutOfOrder { offset } => write!(f, "fields out of order at byte {offset}"),
            Error::InvalidHeader => {
                f.write_str("invalid macaroon header: expected [location] identifier")
            }
            Error::CaveatWithoutIdentifier { caveat } => {
                write!(f, "caveat {caveat} has no identifier")
            }
            Error::InvalidCaveatField { caveat, field_type } => {
                write!(
                    f,
                    "caveat {caveat} has an unexpected field of type {field_type}"
                )
            }
            Error::LocationInFirstPartyCaveat { caveat } => write!(
                f,
                "caveat {caveat}: location not allowed in first party caveat"
            ),
            Error::MissingSignature => f.write_str("signature field not found after the caveats"),
            Error::SignatureLength { len } => {
                write!(f, "signature has unexpected length {len} (expected 32)")
            }
            Error::TrailingData { len } => {
                write!(f, "{len} unexpected bytes after the macaroon")
            }
            Error::NotOneMacaroon { found } => {
                write!(f, "expected one macaroon, found {found}")
            }
            Error::LocationNotUtf8 => f.write_str("location is not valid UTF-8"),
            Error::BadPacket { offset, reason } => {
                write!(f, "bad V1 packet at byte {offset}: {reason}")
            }
            Error::UnexpectedPacket { offset, name } => {
                write!(f, "unexpected V1 packet {name:?} at byte {offset}")
            }
            Error::NotRepresentableInV1 { field } => write!(
                f,
                "the V1 format needs a UTF-8 {field}; use the V2 format for binary data"
            ),
            Error::PacketTooLong { field } => {
                write!(
                    f,
                    "{field} is too long for a V1 packet (limit 0xffff bytes)"
                )
            }
            Error::Json { reason } => write!(f, "invalid macaroon JSON: {reason}"),
            Error::AmbiguousJsonField { field } => write!(
                f,
                "invalid macaroon JSON: {field}: ambiguous field encoding ({field} and {field}64 both present)"
            ),
            Error::Base64 { reason } => write!(f, "invalid base64: {reason}"),
            Error::Hex { field } => write!(f, "invalid hex in {field}"),
            Error::BadSignature => f.write_str("macaroon signature does not match"),
            Error::ThirdPartyCaveat { caveat } => write!(
                f,
                "caveat {caveat} is a third-party caveat; discharge macaroons are not supported"
            ),
            Error::CaveatNotSatisfied {
                caveat,
                condition,
                reason,
            } => write!(f, "caveat {caveat} ({condition:?}) not satisfied: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
