//! Newtypes for the values L402 moves around, so two 32-byte arrays can never be swapped.

use std::fmt;
use std::str::FromStr;

use l402_macaroon::crypto::ct_eq_32;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

fn parse_hex32(s: &str, what: &'static str) -> Result<[u8; 32], Error> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(Error::InvalidHex {
            what,
            reason: format!("expected 64 hex characters (32 bytes), got {}", s.len()),
        });
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| Error::InvalidHex {
        what,
        reason: e.to_string(),
    })?;
    Ok(out)
}

fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    // The OS random source failing is not something a caller can recover from.
    getrandom::fill(&mut out).expect("the operating system's random source failed");
    out
}

macro_rules! public_bytes32 {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            /// Parses 64 hex characters (either case).
            fn from_str(s: &str) -> Result<Self, Error> {
                parse_hex32(s, $what).map($name)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = Error;

            fn try_from(bytes: &[u8]) -> Result<Self, Error> {
                let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidLength {
                    what: $what,
                    expected: 32,
                    len: bytes.len(),
                })?;
                Ok($name(arr))
            }
        }
    };
}

public_bytes32!(
    /// The SHA-256 hash of a payment's preimage, as carried in a BOLT11 invoice's `p` field and in
    /// the L402 identifier.
    PaymentHash,
    "payment hash"
);

public_bytes32!(
    /// A token's 32-byte random id (the bLIP's "user identifier"); its hex form names the token in
    /// logs, rate limits and revocation.
    TokenId,
    "token id"
);

public_bytes32!(
    /// The key under which a root key is stored: `sha256(identifier)`, Aperture's convention.
    KeyId,
    "key id"
);

impl TokenId {
    /// 32 fresh random bytes from the operating system.
    pub fn random() -> Self {
        TokenId(random32())
    }

    /// An id that sorts by when it was made: `unix_millis` as 6 big-endian bytes (the low 48
    /// bits: good until the year 10889), then 26 random bytes (208 bits, so ids stay
    /// unguessable and never collide).
    ///
    /// A database indexing tokens by id adds each new one at the end of the index instead of on
    /// a random page, which is what makes minting cheap at scale. The id tells when the token was
    /// minted, which its invoice's timestamp tells already.
    pub fn time_ordered(unix_millis: u64) -> Self {
        let mut out = random32();
        out[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
        TokenId(out)
    }
}

impl KeyId {
    /// `sha256(identifier bytes)`.
    pub fn of_identifier(identifier: &[u8]) -> Self {
        KeyId(Sha256::digest(identifier).into())
    }
}

/// The 32-byte secret whose SHA-256 is the payment hash; the wallet reveals it when the invoice
/// is paid, and it proves payment.
///
/// It is a bearer secret together with the macaroon, so `Debug` does not print it and it is
/// wiped from memory when dropped. Comparisons are constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Preimage([u8; 32]);

impl Preimage {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Preimage(bytes)
    }

    /// 32 fresh random bytes (what an invoice issuer does for each new invoice).
    pub fn random() -> Self {
        Preimage(random32())
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters (the form used in `Authorization` headers).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `sha256(preimage)`.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(Sha256::digest(self.0).into())
    }

    /// Whether this preimage hashes to `hash`, compared in constant time.
    pub fn matches(&self, hash: &PaymentHash) -> bool {
        ct_eq_32(&self.payment_hash().0, &hash.0)
    }
}

impl PartialEq for Preimage {
    fn eq(&self, other: &Self) -> bool {
        ct_eq_32(&self.0, &other.0)
    }
}

impl Eq for Preimage {}

impl fmt::Debug for Preimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Preimage(<redacted>)")
    }
}

impl FromStr for Preimage {
    type Err = Error;

    /// Parses exactly 64 hex characters (either case); any other length is an error, so a
    /// 48-byte "preimage" some wallets return is refused rather than truncated.
    fn from_str(s: &str) -> Result<Self, Error> {
        parse_hex32(s, "preimage").map(Preimage)
    }
}

impl TryFrom<&[u8]> for Preimage {
    type Error = Error;

    fn try_from(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidLength {
            what: "preimage",
            expected: 32,
            len: bytes.len(),
        })?;
        Ok(Preimage(arr))
    }
}

/// The secret a server keeps per macaroon; macaroon signatures are derived from it.
///
/// Never printed (`Debug` is redacted, there is no `Display`), wiped from memory on drop, and
/// compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootKey([u8; 32]);

impl RootKey {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        RootKey(bytes)
    }

    /// 32 fresh random bytes from the operating system (Aperture's `SecretSize`).
    pub fn generate() -> Self {
        RootKey(random32())
    }

    /// The raw bytes; handle with care.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for RootKey {
    fn eq(&self, other: &Self) -> bool {
        ct_eq_32(&self.0, &other.0)
    }
}

impl Eq for RootKey {}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

impl FromStr for RootKey {
    type Err = Error;

    /// Parses 64 hex characters.
    fn from_str(s: &str) -> Result<Self, Error> {
        parse_hex32(s, "root key").map(RootKey)
    }
}

impl TryFrom<&[u8]> for RootKey {
    type Error = Error;

    fn try_from(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidLength {
            what: "root key",
            expected: 32,
            len: bytes.len(),
        })?;
        Ok(RootKey(arr))
    }
}

/// An amount in millisatoshis, the unit of BOLT11 invoices and of every price in this toolkit.
///
/// ```
/// use l402::Msat;
/// let price = Msat::from_sat(21);
/// assert_eq!(price.as_u64(), 21_000);
/// assert_eq!(price.to_sat_ceil(), 21);
/// assert_eq!("1500".parse::<Msat>().unwrap().to_sat_ceil(), 2);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msat(u64);

impl Msat {
    /// Zero.
    pub const ZERO: Msat = Msat(0);

    /// Wraps a millisatoshi amount.
    pub const fn new(msat: u64) -> Self {
        Msat(msat)
    }

    /// Converts satoshis (saturating at `u64::MAX` msat, far above all bitcoin).
    pub const fn from_sat(sat: u64) -> Self {
        Msat(sat.saturating_mul(1000))
    }

    /// The amount in millisatoshis.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Whole satoshis, rounding down.
    pub const fn to_sat_floor(self) -> u64 {
        self.0 / 1000
    }

    /// Whole satoshis, rounding up (what a wallet that only pays whole satoshis must pay).
    pub const fn to_sat_ceil(self) -> u64 {
        self.0.div_ceil(1000)
    }

    /// Addition that returns `None` on overflow.
    pub const fn checked_add(self, other: Msat) -> Option<Msat> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Msat(v)),
            None => None,
        }
    }

    /// Addition that saturates at `u64::MAX`.
    pub const fn saturating_add(self, other: Msat) -> Msat {
        Msat(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Msat {
    /// The plain number of millisatoshis, so `Display` and `FromStr` round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Msat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        s.trim()
            .parse::<u64>()
            .map(Msat)
            .map_err(|e| Error::InvalidAmount {
                reason: format!("{s:?} is not a millisatoshi amount: {e}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_token_ids_sort_by_time_and_differ_within_a_millisecond() {
        let t = 1_763_779_200_123u64; // 2025-11-22, in milliseconds
        let a = TokenId::time_ordered(t);
        let b = TokenId::time_ordered(t);
        let later = TokenId::time_ordered(t + 1);
        assert_eq!(&a.as_bytes()[..6], &t.to_be_bytes()[2..]);
        assert_ne!(a, b, "the random tail keeps ids of one millisecond apart");
        assert!(a.as_bytes() < later.as_bytes() && b.as_bytes() < later.as_bytes());
    }

    #[test]
    fn secrets_are_redacted() {
        let k = RootKey::from_bytes([7; 32]);
        let p = Preimage::from_bytes([7; 32]);
        assert_eq!(format!("{k:?}"), "RootKey(<redacted>)");
        assert_eq!(format!("{p:?}"), "Preimage(<redacted>)");
        assert!(!format!("{k:?}{p:?}").contains("0707"));
    }

    #[test]
    fn preimage_hash_matches_vector() {
        let p: Preimage = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
            .parse()
            .unwrap();
        let h: PaymentHash = "ae216c2ef5247a3782c135efa279a3e4cdc61094270f5d2be58c6204b7a612c9"
            .parse()
            .unwrap();
        assert_eq!(p.payment_hash(), h);
        assert!(p.matches(&h));
        assert!(!Preimage::from_bytes([0; 32]).matches(&h));
    }

    #[test]
    fn hex_parsing_names_the_problem() {
        let err = "abcd".parse::<Preimage>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid preimage: expected 64 hex characters (32 bytes), got 4"
        );
        let upper = "0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20";
        assert!(upper.parse::<Preimage>().is_ok());
        let p96 = "01".repeat(48);
        assert!(p96.parse::<Preimage>().is_err());
        assert!(format!("{}zz", "0".repeat(62)).parse::<TokenId>().is_err());
    }

    #[test]
    fn msat_conversions() {
        assert_eq!(Msat::from_sat(u64::MAX).as_u64(), u64::MAX);
        assert_eq!(Msat::new(1001).to_sat_floor(), 1);
        assert_eq!(Msat::new(1001).to_sat_ceil(), 2);
        assert_eq!(Msat::new(5).checked_add(Msat::new(u64::MAX)), None);
        assert!("-1".parse::<Msat>().is_err());
        assert_eq!(
            Msat::new(42).to_string().parse::<Msat>().unwrap(),
            Msat::new(42)
        );
    }
}
