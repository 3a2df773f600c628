//! The HMAC-SHA256 chain shared by go-macaroon and libmacaroons.
//!
//! ```text
//! derived = HMAC-SHA256(key = "macaroons-key-generator", msg = root_key)
//! sig_0   = HMAC-SHA256(key = derived, msg = identifier)
//! sig_i   = HMAC-SHA256(key = sig_{i-1}, msg = caveat_id)                           first party
//! sig_i   = HMAC-SHA256(key = sig_{i-1}, msg = HMAC(sig_{i-1}, vid) || HMAC(sig_{i-1}, cid))  third party
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The fixed key go-macaroon and libmacaroons use to derive the signing key from a root key.
pub const KEY_GENERATOR: &[u8] = b"macaroons-key-generator";

/// Length of a macaroon signature (an HMAC-SHA256 output).
pub const SIGNATURE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `msg` under `key`.
pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; SIGNATURE_LEN] {
    // `new_from_slice` accepts keys of any length for HMAC; it cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of the concatenation `a || b` under `key`, without allocating.
fn hmac2(key: &[u8], a: &[u8], b: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(a);
    mac.update(b);
    mac.finalize().into_bytes().into()
}

/// Derives the signing key from a root key, as go-macaroon and libmacaroons do.
///
/// The result is wrapped in [`Zeroizing`] so it is wiped when dropped.
pub fn derive_key(root_key: &[u8]) -> Zeroizing<[u8; SIGNATURE_LEN]> {
    Zeroizing::new(hmac(KEY_GENERATOR, root_key))
}

/// The first link of the chain: the signature of a macaroon without caveats.
pub fn initial_signature(root_key: &[u8], identifier: &[u8]) -> [u8; SIGNATURE_LEN] {
    let key = derive_key(root_key);
    hmac(&key[..], identifier)
}

/// Extends `sig` with a first-party caveat.
pub fn extend_first_party(sig: &[u8; SIGNATURE_LEN], caveat_id: &[u8]) -> [u8; SIGNATURE_LEN] {
    hmac(sig, caveat_id)
}

/// Extends `sig` with a third-party caveat (verification id `vid`, caveat id `cid`).
pub fn extend_third_party(
    sig: &[u8; SIGNATURE_LEN],
    vid: &[u8],
    cid: &[u8],
) -> [u8; SIGNATURE_LEN] {
    let h_vid = hmac(sig, vid);
    let h_cid = hmac(sig, cid);
    hmac2(sig, &h_vid, &h_cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn derived_key_matches_the_l402_vector() {
        let root = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        assert_eq!(
            hex::encode(&derive_key(&root)[..]),
            "7a48333781979c470801d9e308c78e75f4de306c63cb9435b16e84d60192417d"
        );
    }

    #[test]
    fn libmacaroons_readme_chain() {
        let mut sig = initial_signature(
            b"this is our super secret key; only we should know it",
            b"we used our secret key",
        );
        assert_eq!(
            hex::encode(sig),
            "e3d9e02908526c4c0039ae15114115d97fdd68bf2ba379b342aaf0f617d0552f"
        );
        for (caveat, want) in [
            (
                "account = 3735928559",
                "1efe4763f290dbce0c1d08477367e11f4eee456a64933cf662d79772dbb82128",
            ),
            (
                "time < 2020-01-01T00:00",
                "b5f06c8c8ef92f6c82c6ff282cd1f8bd1849301d09a2db634ba182536a611c49",
            ),
            (
                "email = alice@example.org",
                "ddf553e46083e55b8d71ab822be3d8fcf21d6bf19c40d617bb9fb438934474b6",
            ),
        ] {
            sig = extend_first_party(&sig, caveat.as_bytes());
            assert_eq!(hex::encode(sig), want, "after {caveat}");
        }
    }
}

/// Whether two 32-byte values (signatures, keys, hashes) are equal, in constant time: the
/// difference of all bytes is gathered without a branch, and only that one word goes through
/// `subtle`'s optimisation barrier (comparing byte by byte pays the barrier 32 times).
pub fn ct_eq_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    let mut diff = 0u64;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_ne_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(y.try_into().expect("8 bytes"));
        diff |= x ^ y;
    }
    bool::from(diff.ct_eq(&0))
}

#[cfg(test)]
mod ct_tests {
    use super::ct_eq_32;

    #[test]
    fn equal_only_when_every_byte_is() {
        let a = [0x5au8; 32];
        assert!(ct_eq_32(&a, &a.clone()));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!ct_eq_32(&a, &b), "byte {i} bit {bit}");
            }
        }
    }
}
