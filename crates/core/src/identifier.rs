//! The L402 macaroon identifier.
//!
//! Version 0 is exactly 66 bytes, big-endian:
//!
//! | offset | size | field                         |
//! |--------|------|-------------------------------|
//! | 0      | 2    | version (`u16`, only 0 known) |
//! | 2      | 32   | payment hash                  |
//! | 34     | 32   | token id                      |

use crate::{Error, KeyId, PaymentHash, TokenId};

/// A decoded L402 identifier.
///
/// ```
/// use l402::{Identifier, PaymentHash, TokenId};
///
/// let id = Identifier::new(PaymentHash::from_bytes([1; 32]), TokenId::from_bytes([2; 32]));
/// let bytes = id.encode();
/// assert_eq!(bytes.len(), 66);
/// assert_eq!(&bytes[..2], &[0, 0]);
/// assert_eq!(Identifier::decode(&bytes).unwrap(), id);
/// assert!(Identifier::decode(&bytes[..65]).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Identifier {
    payment_hash: PaymentHash,
    token_id: TokenId,
}

impl Identifier {
    /// The only version defined so far.
    pub const VERSION_0: u16 = 0;

    /// Length of a version-0 identifier.
    pub const V0_LEN: usize = 66;

    /// A version-0 identifier.
    pub const fn new(payment_hash: PaymentHash, token_id: TokenId) -> Self {
        Identifier {
            payment_hash,
            token_id,
        }
    }

    /// Decodes an identifier: the version must be 0 and the length exactly 66 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < 2 {
            return Err(Error::IdentifierLength { len: bytes.len() });
        }
        let version = u16::from_be_bytes([bytes[0], bytes[1]]);
        if version != Self::VERSION_0 {
            return Err(Error::UnknownIdentifierVersion { version });
        }
        if bytes.len() != Self::V0_LEN {
            return Err(Error::IdentifierLength { len: bytes.len() });
        }
        let payment_hash = PaymentHash::try_from(&bytes[2..34])?;
        let token_id = TokenId::try_from(&bytes[34..66])?;
        Ok(Identifier {
            payment_hash,
            token_id,
        })
    }

    /// The 66-byte encoding.
    pub fn encode(&self) -> [u8; Self::V0_LEN] {
        let mut out = [0u8; Self::V0_LEN];
        out[..2].copy_from_slice(&Self::VERSION_0.to_be_bytes());
        out[2..34].copy_from_slice(self.payment_hash.as_bytes());
        out[34..].copy_from_slice(self.token_id.as_bytes());
        out
    }

    /// The version (always 0 for now).
    pub const fn version(&self) -> u16 {
        Self::VERSION_0
    }

    /// The payment hash the macaroon is bound to.
    pub const fn payment_hash(&self) -> &PaymentHash {
        &self.payment_hash
    }

    /// The token's random id.
    pub const fn token_id(&self) -> &TokenId {
        &self.token_id
    }

    /// The root-key store key: `sha256(identifier)`.
    pub fn key_id(&self) -> KeyId {
        KeyId::of_identifier(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aperture_identifier_vector() {
        let mut hash = [0u8; 32];
        let mut token = [0u8; 32];
        for i in 0..32 {
            hash[i] = i as u8 + 1;
            token[i] = 32 - i as u8;
        }
        let id = Identifier::new(PaymentHash::from_bytes(hash), TokenId::from_bytes(token));
        assert_eq!(
            hex::encode(id.encode()),
            "00000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20201f1e1d1c1b1a191817161514131211100f0e0d0c0b0a090807060504030201"
        );
    }

    #[test]
    fn unknown_version_is_named() {
        let mut bytes = [0u8; 66];
        bytes[1] = 1;
        assert_eq!(
            Identifier::decode(&bytes),
            Err(Error::UnknownIdentifierVersion { version: 1 })
        );
        assert_eq!(
            Error::UnknownIdentifierVersion { version: 1 }.to_string(),
            "unknown L402 identifier version 1 (only version 0 is defined)"
        );
    }

    #[test]
    fn lengths() {
        assert_eq!(
            Identifier::decode(&[0]),
            Err(Error::IdentifierLength { len: 1 })
        );
        assert_eq!(
            Identifier::decode(&[0; 67]),
            Err(Error::IdentifierLength { len: 67 })
        );
    }
}
