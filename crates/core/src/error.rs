//! The crate's one error type.

use std::fmt;

use crate::CaveatError;

/// Everything that can go wrong parsing or verifying L402 values.
///
/// Each variant says what failed and where (which header, which caveat), never printing secrets.
/// [`Error::is_missing`] separates "no credential at all" (answer with a challenge) from "a bad
/// credential" (answer 401).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A hex value is malformed.
    InvalidHex {
        /// What the value is (e.g. "preimage").
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A byte value has the wrong length.
    InvalidLength {
        /// What the value is.
        what: &'static str,
        /// The expected length in bytes.
        expected: usize,
        /// The length found.
        len: usize,
    },
    /// An amount is malformed.
    InvalidAmount {
        /// What is wrong.
        reason: String,
    },
    /// The identifier has the wrong length for its version.
    IdentifierLength {
        /// The length found.
        len: usize,
    },
    /// The identifier's version is not one this crate knows.
    UnknownIdentifierVersion {
        /// The version found.
        version: u16,
    },
    /// A macaroon could not be decoded.
    Macaroon(l402_macaroon::Error),
    /// A caveat could not be built or parsed.
    InvalidCaveat {
        /// The caveat text.
        caveat: String,
        /// What is wrong.
        reason: String,
    },
    /// No L402/LSAT challenge was found in `WWW-Authenticate`.
    NoChallenge,
    /// An L402/LSAT challenge is malformed.
    InvalidChallenge {
        /// What is wrong.
        reason: String,
    },
    /// The request carries no L402 credential.
    NoCredential,
    /// A credential header is malformed.
    InvalidCredential {
        /// The header it was read from.
        header: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Several credential headers disagree.
    ConflictingCredentials,
    /// A header value is longer than [`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN).
    HeaderTooLong {
        /// The header.
        header: &'static str,
        /// Its length.
        len: usize,
    },
    /// The preimage does not hash to the identifier's payment hash.
    PreimageMismatch,
    /// The macaroon's signature does not match the root key.
    BadSignature,
    /// The macaroon carries a third-party caveat, which never passes (discharges are not
    /// supported).
    ThirdPartyCaveat {
        /// Index of the caveat.
        caveat: usize,
    },
    /// A caveat is not satisfied.
    Caveat(CaveatError),
}

impl Error {
    /// Whether the request simply had no credential (as opposed to a bad one).
    pub fn is_missing(&self) -> bool {
        matches!(self, Error::NoCredential)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidHex { what, reason } => write!(f, "invalid {what}: {reason}"),
            Error::InvalidLength {
                what,
                expected,
                len,
            } => write!(f, "invalid {what}: expected {expected} bytes, got {len}"),
            Error::InvalidAmount { reason } => write!(f, "invalid amount: {reason}"),
            Error::IdentifierLength { len } => write!(
                f,
                "invalid L402 identifier: version 0 identifiers are 66 bytes, got {len}"
            ),
            Error::UnknownIdentifierVersion { version } => write!(
                f,
                "unknown L402 identifier version {version} (only version 0 is defined)"
            ),
            Error::Macaroon(e) => write!(f, "invalid macaroon: {e}"),
            Error::InvalidCaveat { caveat, reason } => {
                write!(f, "invalid caveat {caveat:?}: {reason}")
            }
            Error::NoChallenge => {
                f.write_str("no L402 or LSAT challenge in the WWW-Authenticate header")
            }
            Error::InvalidChallenge { reason } => write!(f, "invalid L402 challenge: {reason}"),
            Error::NoCredential => f.write_str(
                "no L402 credential (Authorization: L402 <macaroon>:<preimage>, or a Macaroon/Token header)",
            ),
            Error::InvalidCredential { header, reason } => {
                write!(f, "invalid credential in {header}: {reason}")
            }
            Error::ConflictingCredentials => f.write_str(
                "several credential headers carry different credentials; send one, or identical copies",
            ),
            Error::HeaderTooLong { header, len } => write!(
                f,
                "{header} header is {len} bytes, over the limit of {}",
                crate::MAX_HEADER_LEN
            ),
            Error::PreimageMismatch => {
                f.write_str("the preimage does not match the token's payment hash")
            }
            Error::BadSignature => f.write_str(
                "macaroon signature does not verify (tampered, or minted with another key)",
            ),
            Error::ThirdPartyCaveat { caveat } => write!(
                f,
                "caveat {caveat} is a third-party caveat; discharge macaroons are not supported"
            ),
            Error::Caveat(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Macaroon(e) => Some(e),
            Error::Caveat(e) => Some(e),
            _ => None,
        }
    }
}

impl From<l402_macaroon::Error> for Error {
    fn from(e: l402_macaroon::Error) -> Self {
        Error::Macaroon(e)
    }
}

impl From<CaveatError> for Error {
    fn from(e: CaveatError) -> Self {
        Error::Caveat(e)
    }
}

/// An error and its sources as one line, `outer: inner: …`, leaving out a source whose text the
/// line already contains (many errors repeat their source's message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod chain_tests {
    use super::error_chain;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn sources_are_appended_once() {
        let e = E(
            "request failed: connection refused",
            Some(Box::new(E(
                "connection refused",
                Some(Box::new(E("os error 111", None))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "request failed: connection refused: os error 111"
        );
    }
}
