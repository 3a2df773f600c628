//! The [`Macaroon`] and [`Caveat`] types: construction, attenuation and signature verification.

use std::fmt;

use crate::Error;
use crate::crypto::{self, SIGNATURE_LEN};

/// A macaroon: a location hint, an identifier, a list of caveats and an HMAC-SHA256 signature
/// chained over the identifier and every caveat.
///
/// ```
/// use l402_macaroon::Macaroon;
///
/// let mut m = Macaroon::new(b"root key", b"id".to_vec(), "example");
/// m.add_first_party_caveat("account = 42");
/// let bytes = m.to_binary_v2();
/// let back = Macaroon::from_binary(&bytes).unwrap();
/// assert_eq!(back, m);
/// assert_eq!(back.verify_signature(b"root key").unwrap(), vec![&b"account = 42"[..]]);
/// assert!(back.verify_signature(b"other key").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Macaroon {
    pub(crate) location: String,
    pub(crate) identifier: Vec<u8>,
    pub(crate) caveats: Vec<Caveat>,
    pub(crate) signature: [u8; SIGNATURE_LEN],
}

/// One caveat of a macaroon.
///
/// A first-party caveat is a condition the target service checks itself (for example
/// `services=weather:0`). A third-party caveat also carries a verification id and a location and
/// can only be satisfied by a discharge macaroon; this crate decodes and preserves them but never
/// lets a macaroon that carries one pass verification.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Caveat {
    pub(crate) id: Vec<u8>,
    pub(crate) verification_id: Option<Vec<u8>>,
    pub(crate) location: Option<String>,
}

// === impl Macaroon ===

impl Macaroon {
    /// Creates a macaroon without caveats, signed with `root_key`.
    ///
    /// The signing key is derived from the root key as go-macaroon and libmacaroons do
    /// (`HMAC-SHA256(key = "macaroons-key-generator", msg = root_key)`), so the result verifies in
    /// those libraries and in Aperture.
    pub fn new(root_key: &[u8], identifier: Vec<u8>, location: impl Into<String>) -> Self {
        let signature = crypto::initial_signature(root_key, &identifier);
        Macaroon {
            location: location.into(),
            identifier,
            caveats: Vec::new(),
            signature,
        }
    }

    /// Builds a macaroon from its parts as they are, without computing or checking the signature
    /// (for tools that rebuild a macaroon they decoded some other way). Empty caveat locations
    /// are normalised to none.
    pub fn from_raw_parts(
        location: impl Into<String>,
        identifier: Vec<u8>,
        caveats: Vec<Caveat>,
        signature: [u8; SIGNATURE_LEN],
    ) -> Self {
        Self::from_parts(location.into(), identifier, caveats, signature)
    }

    /// Builds a macaroon from decoded parts, without checking the signature.
    pub(crate) fn from_parts(
        location: String,
        identifier: Vec<u8>,
        caveats: Vec<Caveat>,
        signature: [u8; SIGNATURE_LEN],
    ) -> Self {
        Macaroon {
            location,
            identifier,
            caveats,
            signature,
        }
    }

    /// The location hint (not covered by the signature; empty when absent).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The identifier bytes.
    pub fn identifier(&self) -> &[u8] {
        &self.identifier
    }

    /// The caveats, in order.
    pub fn caveats(&self) -> &[Caveat] {
        &self.caveats
    }

    /// The 32-byte signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Appends a first-party caveat and extends the signature over it.
    ///
    /// Anyone holding a macaroon can do this without the root key; it can only narrow what the
    /// macaroon allows.
    pub fn add_first_party_caveat(&mut self, condition: impl AsRef<[u8]>) {
        let id = condition.as_ref().to_vec();
        self.signature = crypto::extend_first_party(&self.signature, &id);
        self.caveats.push(Caveat::first_party(id));
    }

    /// Returns a copy of this macaroon with one more first-party caveat.
    #[must_use]
    pub fn with_first_party_caveat(&self, condition: impl AsRef<[u8]>) -> Self {
        let mut m = self.clone();
        m.add_first_party_caveat(condition);
        m
    }

    /// Recomputes the signature chain from `root_key` and compares it with the macaroon's
    /// signature in constant time.
    ///
    /// On success returns the first-party caveat conditions in order, for the caller to check.
    /// Fails with [`Error::BadSignature`] when the chain does not match, and with
    /// [`Error::ThirdPartyCaveat`] when the signature matches but a third-party caveat is present
    /// (discharges are not supported, so such a macaroon never passes).
    pub fn verify_signature(&self, root_key: &[u8]) -> Result<Vec<&[u8]>, Error> {
        let mut sig = crypto::initial_signature(root_key, &self.identifier);
        let mut third_party = None;
        let mut conditions = Vec::with_capacity(self.caveats.len());
        for (i, caveat) in self.caveats.iter().enumerate() {
            match &caveat.verification_id {
                None => {
                    sig = crypto::extend_first_party(&sig, &caveat.id);
                    conditions.push(&caveat.id[..]);
                }
                Some(vid) => {
                    sig = crypto::extend_third_party(&sig, vid, &caveat.id);
                    third_party.get_or_insert(i);
                }
            }
        }
        if !crypto::ct_eq_32(&sig, &self.signature) {
            return Err(Error::BadSignature);
        }
        if let Some(caveat) = third_party {
            return Err(Error::ThirdPartyCaveat { caveat });
        }
        Ok(conditions)
    }

    /// Verifies the signature (see [`verify_signature`](Self::verify_signature)) and then asks
    /// `check` about every first-party caveat, in order; the first rejection fails verification.
    ///
    /// `check` returns `Err(reason)` to reject a condition; the reason is kept in
    /// [`Error::CaveatNotSatisfied`].
    pub fn verify<E: fmt::Display>(
        &self,
        root_key: &[u8],
        mut check: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), Error> {
        self.verify_signature(root_key)?;
        for (i, caveat) in self.caveats.iter().enumerate() {
            if let Err(e) = check(&caveat.id) {
                return Err(Error::CaveatNotSatisfied {
                    caveat: i,
                    condition: String::from_utf8_lossy(&caveat.id).into_owned(),
                    reason: e.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Macaroon")
            .field("location", &self.location)
            .field("identifier", &hex::encode(&self.identifier))
            .field("caveats", &self.caveats)
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

// === impl Caveat ===

impl Caveat {
    /// A first-party caveat with the given condition bytes.
    pub fn first_party(id: impl Into<Vec<u8>>) -> Self {
        Caveat {
            id: id.into(),
            verification_id: None,
            location: None,
        }
    }

    /// A third-party caveat as decoded from elsewhere: caveat id, verification id (an empty one
    /// makes a first-party caveat, as in go-macaroon) and the discharger's location.
    pub fn third_party(
        id: impl Into<Vec<u8>>,
        verification_id: Vec<u8>,
        location: Option<String>,
    ) -> Self {
        let verification_id = Some(verification_id).filter(|v| !v.is_empty());
        Caveat {
            id: id.into(),
            location: location
                .filter(|l| !l.is_empty())
                .filter(|_| verification_id.is_some()),
            verification_id,
        }
    }

    /// The caveat id: the condition of a first-party caveat, or the third party's opaque id.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The verification id of a third-party caveat; `None` for first-party caveats.
    pub fn verification_id(&self) -> Option<&[u8]> {
        self.verification_id.as_deref()
    }

    /// The location of a third-party caveat's discharger; `None` for first-party caveats.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// Whether this is a first-party caveat.
    pub fn is_first_party(&self) -> bool {
        self.verification_id.is_none()
    }
}

impl fmt::Debug for Caveat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verification_id {
            // A preimage caveat turns the macaroon into a credential: never print it.
            None if self.id.starts_with(b"preimage=") => f.write_str("\"preimage=<redacted>\""),
            None => write!(f, "{:?}", String::from_utf8_lossy(&self.id)),
            Some(vid) => f
                .debug_struct("ThirdPartyCaveat")
                .field("id", &String::from_utf8_lossy(&self.id))
                .field("verification_id", &hex::encode(vid))
                .field("location", &self.location)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampered_caveat_fails() {
        let mut m = Macaroon::new(b"k", b"id".to_vec(), "");
        m.add_first_party_caveat("a=1");
        m.caveats[0].id = b"a=2".to_vec();
        assert_eq!(m.verify_signature(b"k"), Err(Error::BadSignature));
    }

    #[test]
    fn dropped_caveat_fails() {
        let mut m = Macaroon::new(b"k", b"id".to_vec(), "");
        m.add_first_party_caveat("a=1");
        m.add_first_party_caveat("b=1");
        m.caveats.pop();
        assert_eq!(m.verify_signature(b"k"), Err(Error::BadSignature));
    }

    #[test]
    fn third_party_caveat_never_passes() {
        let mut m = Macaroon::new(b"k", b"id".to_vec(), "");
        m.add_first_party_caveat("a=1");
        // Attach a third-party caveat with a correctly chained signature.
        let vid = vec![7u8; 72];
        m.signature = crypto::extend_third_party(&m.signature, &vid, b"cid");
        m.caveats.push(Caveat {
            id: b"cid".to_vec(),
            verification_id: Some(vid),
            location: Some("http://auth/".into()),
        });
        assert_eq!(
            m.verify_signature(b"k"),
            Err(Error::ThirdPartyCaveat { caveat: 1 })
        );
        // With the wrong key the signature error comes first.
        assert_eq!(m.verify_signature(b"x"), Err(Error::BadSignature));
    }

    #[test]
    fn checker_rejection_names_the_caveat() {
        let mut m = Macaroon::new(b"k", b"id".to_vec(), "");
        m.add_first_party_caveat("a=1");
        m.add_first_party_caveat("b=2");
        let err = m
            .verify(b"k", |c| if c == b"b=2" { Err("no b") } else { Ok(()) })
            .unwrap_err();
        assert_eq!(
            err,
            Error::CaveatNotSatisfied {
                caveat: 1,
                condition: "b=2".into(),
                reason: "no b".into()
            }
        );
    }
}
