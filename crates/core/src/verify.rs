//! Verification, in Aperture's order: decode the identifier, check the preimage against its
//! payment hash, look up the root key, check the signature chain, check the caveats.
//!
//! The root-key lookup is the caller's (it is I/O), so verification is split in two around it:
//! [`Verifier::preflight`] does the checks that need no key and yields the [`KeyId`] to look up;
//! [`Preflight::finish`] does the rest with the key. [`Verifier::verify`] does both when the key is
//! already at hand.

use std::sync::Arc;

use crate::caveat::{self, CAPABILITIES_SUFFIX, PREIMAGE, SERVICES, VALID_UNTIL_SUFFIX};
use crate::{
    CaveatError, Credential, Error, Identifier, KeyId, PaymentHash, Preimage, RootKey, Satisfier,
    Service, TokenId,
};

/// Checks credentials for one service.
///
/// ```
/// use l402::{Context, Credential, Identifier, Preimage, RootKey, TokenId, TokenSpec, Verifier, mint};
///
/// let key = RootKey::generate();
/// let preimage = Preimage::random();
/// let id = Identifier::new(preimage.payment_hash(), TokenId::random());
/// let caveats = TokenSpec::new("weather", 0).valid_until(2_000_000_000).caveats().unwrap();
/// let credential = Credential::new(mint(&key, &id, "lsat", &caveats), preimage);
///
/// let verifier = Verifier::new().service("weather");
/// let now = Context::at(1_700_000_000);
/// let token = verifier.verify(&credential, &key, &now).unwrap();
/// assert_eq!(token.token_id(), id.token_id());
/// assert_eq!(token.tier(), Some(0));
///
/// // Another service, or a later time, is refused.
/// assert!(Verifier::new().service("maps").verify(&credential, &key, &now).is_err());
/// assert!(verifier.verify(&credential, &key, &Context::at(2_000_000_000)).is_err());
/// ```
#[derive(Clone, Default)]
pub struct Verifier {
    service: Option<Arc<str>>,
    strict: bool,
    satisfiers: Vec<Arc<dyn Satisfier>>,
    required: Vec<String>,
    /// `condition=value` pairs every token must carry (see [`Verifier::constraints`]).
    constraints: Option<Arc<[(String, String)]>>,
}

/// Caveats a token usually carries fewer than: their `(condition, value)` pairs are gathered on
/// the stack; more go to the heap.
const INLINE_CAVEATS: usize = 16;

/// Per-request facts the caveats are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context<'a> {
    /// The current time, unix seconds.
    pub now: i64,
    /// The capability the request needs, if any.
    pub capability: Option<&'a str>,
}

impl Context<'_> {
    /// A context at time `now` that needs no particular capability.
    pub const fn at(now: i64) -> Self {
        Context {
            now,
            capability: None,
        }
    }

    /// A context at the system clock's current time.
    pub fn now() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Context::at(now)
    }
}

impl<'a> Context<'a> {
    /// Requires the given capability.
    #[must_use]
    pub const fn with_capability(mut self, capability: &'a str) -> Self {
        self.capability = Some(capability);
        self
    }
}

/// A credential that passed the key-independent checks (identifier decodes, preimage matches).
#[derive(Debug)]
pub struct Preflight<'c> {
    credential: &'c Credential,
    identifier: Identifier,
    /// Known when the preflight was vouched for by a [`Prechecked`].
    key_id: Option<KeyId>,
}

/// What a [`Preflight`] established (the identifier, its key id, the preimage that matched),
/// kept next to a parsed credential so that the same credential presented again is preflighted
/// with comparisons instead of two SHA-256 computations. See [`Verifier::preflight_with`].
#[derive(Clone)]
pub struct Prechecked {
    identifier: Identifier,
    key_id: KeyId,
    preimage: Preimage,
}

impl std::fmt::Debug for Prechecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prechecked")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// What a verified credential grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    identifier: Identifier,
    // Shared: a token is cloned for every request a cached verdict lets through.
    services: Option<Arc<[Service]>>,
    tier: Option<u8>,
    capabilities: Option<Arc<[String]>>,
    valid_until: Option<i64>,
}

// === impl Verifier ===

impl Verifier {
    /// A verifier with no target service: caveats are checked for consistency (no widening) and
    /// expiry is not checked for any service.
    pub fn new() -> Self {
        Verifier::default()
    }

    /// The service requests are for: the `services` caveat must list it, and its
    /// `_capabilities` and `_valid_until` caveats are enforced.
    #[must_use]
    pub fn service(mut self, name: impl Into<Arc<str>>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Refuse caveats nobody checks (and caveats that are not `condition=value`) instead of
    /// skipping them as the spec and Aperture do.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Adds a custom satisfier; it takes precedence over the built-in checks for its condition.
    #[must_use]
    pub fn satisfier(mut self, satisfier: Arc<dyn Satisfier>) -> Self {
        self.satisfiers.push(satisfier);
        self
    }

    /// Requires a caveat with this condition to be present (absence otherwise imposes no
    /// restriction, as the spec says). Use it with a satisfier for conditions a server mints and
    /// must see on every token, such as constraints or a price binding.
    #[must_use]
    pub fn require(mut self, condition: impl Into<String>) -> Self {
        self.required.push(condition.into());
        self
    }

    /// Constraints the server minted into every token: each condition must be present, a
    /// repeated caveat must carry the same value as the one before, and the last must equal the
    /// configured value. A custom [`satisfier`](Self::satisfier) for the same condition takes
    /// precedence over the value check (the presence requirement stays). The list is shared, not
    /// copied: building a verifier per request costs no allocation.
    #[must_use]
    pub fn constraints(mut self, constraints: Arc<[(String, String)]>) -> Self {
        self.constraints = (!constraints.is_empty()).then_some(constraints);
        self
    }

    /// The target service, if any.
    pub fn target_service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The checks that need no root key: the identifier must decode (version 0, 66 bytes) and the
    /// preimage must hash to its payment hash.
    pub fn preflight<'c>(&self, credential: &'c Credential) -> Result<Preflight<'c>, Error> {
        let identifier = credential.identifier()?;
        if !credential.preimage().matches(identifier.payment_hash()) {
            return Err(Error::PreimageMismatch);
        }
        Ok(Preflight {
            credential,
            identifier,
            key_id: None,
        })
    }

    /// [`preflight`](Self::preflight) for a credential that passed it before: when `prior` was
    /// made from a credential with this very identifier and preimage (compared, the preimage in
    /// constant time), the preimage is not hashed again and the key id is taken from `prior`;
    /// otherwise this is a full preflight.
    pub fn preflight_with<'c>(
        &self,
        credential: &'c Credential,
        prior: &Prechecked,
    ) -> Result<Preflight<'c>, Error> {
        let identifier = credential.identifier()?;
        if identifier == prior.identifier && *credential.preimage() == prior.preimage {
            return Ok(Preflight {
                credential,
                identifier,
                key_id: Some(prior.key_id),
            });
        }
        self.preflight(credential)
    }

    /// Full verification with a root key already looked up.
    pub fn verify(
        &self,
        credential: &Credential,
        root_key: &RootKey,
        context: &Context<'_>,
    ) -> Result<VerifiedToken, Error> {
        self.preflight(credential)?.finish(self, root_key, context)
    }

    /// Checks a macaroon's identifier, signature and caveats **without a preimage**, for tools
    /// that inspect tokens. This does not prove payment: servers must use
    /// [`verify`](Self::verify) (or [`preflight`](Self::preflight) and [`Preflight::finish`]).
    /// `preimage=` caveats inside the macaroon are still checked against its payment hash.
    pub fn check_macaroon(
        &self,
        macaroon: &l402_macaroon::Macaroon,
        root_key: &RootKey,
        context: &Context<'_>,
    ) -> Result<VerifiedToken, Error> {
        let identifier = Identifier::decode(macaroon.identifier())?;
        self.finish_parts(macaroon, identifier, root_key, context)
    }

    fn finish_parts(
        &self,
        macaroon: &l402_macaroon::Macaroon,
        identifier: Identifier,
        root_key: &RootKey,
        context: &Context<'_>,
    ) -> Result<VerifiedToken, Error> {
        let conditions = macaroon
            .verify_signature(root_key.as_bytes())
            .map_err(signature_error)?;
        self.finish_conditions(conditions.iter().copied(), identifier, context)
    }

    fn finish_conditions<'m>(
        &self,
        conditions: impl ExactSizeIterator<Item = &'m [u8]>,
        identifier: Identifier,
        context: &Context<'_>,
    ) -> Result<VerifiedToken, Error> {
        let mut token = VerifiedToken {
            identifier,
            services: None,
            tier: None,
            capabilities: None,
            valid_until: None,
        };
        self.check_caveats(conditions, identifier.payment_hash(), context, &mut token)?;
        Ok(token)
    }

    fn check_caveats<'m>(
        &self,
        conditions: impl ExactSizeIterator<Item = &'m [u8]>,
        payment_hash: &PaymentHash,
        context: &Context<'_>,
        token: &mut VerifiedToken,
    ) -> Result<(), Error> {
        // Caveats are grouped by exact condition, in the order each condition first appears.
        // Tokens carry a handful of caveats, so groups are found by scanning one list of pairs
        // (on the stack when it is short) rather than built: no allocation per condition.
        let mut inline = [("", ""); INLINE_CAVEATS];
        let mut spilled = Vec::new();
        let mut n = 0;
        let on_heap = conditions.len() > INLINE_CAVEATS;
        for bytes in conditions {
            let parsed = std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.split_once('='));
            let Some(pair) = parsed else {
                if self.strict {
                    return Err(Error::Caveat(CaveatError::Malformed {
                        caveat: String::from_utf8_lossy(bytes).into_owned(),
                        reason: "caveat must be UTF-8 of the form \"condition=value\"".into(),
                    }));
                }
                continue;
            };
            if on_heap {
                spilled.push(pair);
            } else {
                inline[n] = pair;
                n += 1;
            }
        }
        let pairs: &[(&str, &str)] = if on_heap { &spilled } else { &inline[..n] };

        let constraints = self.constraints.as_deref().unwrap_or_default();
        let required = self
            .required
            .iter()
            .map(String::as_str)
            .chain(constraints.iter().map(|(c, _)| c.as_str()));
        for missing in required {
            if !pairs.iter().any(|(c, _)| *c == missing) {
                return Err(Error::Caveat(CaveatError::Missing {
                    condition: missing.to_owned(),
                }));
            }
        }
        let target = self.service.as_deref();
        for (i, &(condition, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(c, _)| *c == condition) {
                continue; // this condition's group was checked at its first caveat
            }
            let mut values = pairs[i..]
                .iter()
                .filter(move |(c, _)| *c == condition)
                .map(|(_, v)| *v);
            if let Some(s) = self.satisfiers.iter().find(|s| s.condition() == condition) {
                let last = each_pair(values, |prev, next| s.satisfy_previous(prev, next))?;
                s.satisfy_final(last)?;
            } else if let Some((_, expected)) = constraints.iter().find(|(c, _)| c == condition) {
                let last = each_pair(values, |prev, next| {
                    caveat::constraint_previous(condition, prev, next)
                })?;
                caveat::constraint_final(condition, expected, last)?;
            } else if condition == SERVICES {
                let last = each_pair(values, caveat::services_previous)?;
                let services = caveat::services_final(last, target)?;
                token.tier =
                    target.and_then(|t| services.iter().find(|s| s.name == t).map(|s| s.tier));
                token.services = Some(services.into());
            } else if condition == PREIMAGE {
                // Every preimage caveat must prove payment, not just the last one.
                for v in values {
                    let ok = v.parse::<Preimage>().is_ok_and(|p| p.matches(payment_hash));
                    if !ok {
                        return Err(Error::Caveat(CaveatError::PreimageMismatch));
                    }
                }
            } else if let Some(svc) = condition
                .strip_suffix(CAPABILITIES_SUFFIX)
                .filter(|s| !s.is_empty())
            {
                let last = each_pair(values, |prev, next| {
                    caveat::capabilities_previous(condition, prev, next)
                })?;
                if target == Some(svc) {
                    caveat::capabilities_final(svc, last, context.capability)?;
                    token.capabilities = Some(
                        last.split(',')
                            .filter(|c| !c.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
            } else if let Some(svc) = condition
                .strip_suffix(VALID_UNTIL_SUFFIX)
                .filter(|s| !s.is_empty())
            {
                let last = each_pair(values, |prev, next| {
                    caveat::valid_until_previous(condition, prev, next)
                })?;
                if target == Some(svc) {
                    token.valid_until =
                        Some(caveat::valid_until_final(condition, last, context.now)?);
                }
            } else if self.strict {
                let last = values.next_back().unwrap_or_default();
                return Err(Error::Caveat(CaveatError::Unknown {
                    caveat: format!("{condition}={last}"),
                }));
            }
        }
        Ok(())
    }
}

/// Calls `check` on each consecutive pair of a group's values (a caveat may only narrow the one
/// before it) and returns the last value, which decides. A group has at least one value.
fn each_pair<'v>(
    mut values: impl Iterator<Item = &'v str>,
    mut check: impl FnMut(&str, &str) -> Result<(), CaveatError>,
) -> Result<&'v str, CaveatError> {
    let mut last = values.next().unwrap_or_default();
    for next in values {
        check(last, next)?;
        last = next;
    }
    Ok(last)
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("service", &self.service)
            .field("strict", &self.strict)
            .field("required", &self.required)
            .field("constraints", &self.constraints)
            .field(
                "satisfiers",
                &self
                    .satisfiers
                    .iter()
                    .map(|s| s.condition())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

// === impl Preflight ===

impl Preflight<'_> {
    /// The decoded identifier.
    pub fn identifier(&self) -> &Identifier {
        &self.identifier
    }

    /// The key to look the root key up under.
    pub fn key_id(&self) -> KeyId {
        self.key_id.unwrap_or_else(|| self.identifier.key_id())
    }

    /// What this preflight established, to keep with the credential for
    /// [`Verifier::preflight_with`].
    pub fn prechecked(&self) -> Prechecked {
        Prechecked {
            identifier: self.identifier,
            key_id: self.key_id(),
            preimage: self.credential.preimage().clone(),
        }
    }

    /// Checks the signature chain with `root_key` (constant-time comparison), then the caveats.
    pub fn finish(
        self,
        verifier: &Verifier,
        root_key: &RootKey,
        context: &Context<'_>,
    ) -> Result<VerifiedToken, Error> {
        verifier.finish_parts(
            self.credential.macaroon(),
            self.identifier,
            root_key,
            context,
        )
    }
}

impl<'c> Preflight<'c> {
    /// [`finish`](Self::finish) with a memo of a macaroon that verified before: when `memo`
    /// remembers this very macaroon (identifier, caveats and signature) under this `root_key`,
    /// the signature chain is not computed again, only the caveats are checked (they may depend
    /// on time and on the request). Otherwise the chain is checked, and a memo of this macaroon
    /// is returned for the caller to keep next to the root key.
    pub fn finish_with_memo(
        self,
        verifier: &Verifier,
        root_key: &RootKey,
        context: &Context<'_>,
        memo: Option<&SignatureMemo>,
    ) -> Result<(VerifiedToken, Option<SignatureMemo>), Error> {
        let macaroon = self.credential.macaroon();
        if memo.is_some_and(|m| m.remembers(root_key, macaroon)) {
            let conditions = macaroon.caveats().iter().map(|c| c.id());
            return verifier
                .finish_conditions(conditions, self.identifier, context)
                .map(|t| (t, None));
        }
        let conditions = macaroon
            .verify_signature(root_key.as_bytes())
            .map_err(signature_error)?;
        let memo = SignatureMemo::new(root_key, macaroon);
        verifier
            .finish_conditions(conditions.iter().copied(), self.identifier, context)
            .map(|t| (t, Some(memo)))
    }
}

fn signature_error(e: l402_macaroon::Error) -> Error {
    match e {
        l402_macaroon::Error::ThirdPartyCaveat { caveat } => Error::ThirdPartyCaveat { caveat },
        _ => Error::BadSignature,
    }
}

/// A macaroon whose signature chain verified under a root key, remembered so that the same
/// macaroon presented again is checked with a comparison instead of the HMAC chain.
///
/// Made only by [`Preflight::finish_with_memo`] after the chain verified, and only for
/// macaroons with first-party caveats alone. It holds the root key and the signature (both
/// secret, wiped on drop); the signature and key are compared in constant time.
#[derive(Clone)]
pub struct SignatureMemo {
    root_key: RootKey,
    signature: zeroize::Zeroizing<[u8; 32]>,
    /// The identifier, then each caveat id, each preceded by its length (u32, big endian).
    signed: Box<[u8]>,
}

impl SignatureMemo {
    fn new(root_key: &RootKey, macaroon: &l402_macaroon::Macaroon) -> Self {
        let parts =
            std::iter::once(macaroon.identifier()).chain(macaroon.caveats().iter().map(|c| c.id()));
        let mut signed = Vec::new();
        for part in parts {
            signed.extend_from_slice(&(part.len() as u32).to_be_bytes());
            signed.extend_from_slice(part);
        }
        SignatureMemo {
            root_key: root_key.clone(),
            signature: zeroize::Zeroizing::new(*macaroon.signature()),
            signed: signed.into_boxed_slice(),
        }
    }

    /// Whether `macaroon` is the one remembered, under `root_key`.
    fn remembers(&self, root_key: &RootKey, macaroon: &l402_macaroon::Macaroon) -> bool {
        use l402_macaroon::crypto::ct_eq_32;
        if macaroon.caveats().iter().any(|c| !c.is_first_party()) {
            return false;
        }
        let mut rest = &self.signed[..];
        let parts =
            std::iter::once(macaroon.identifier()).chain(macaroon.caveats().iter().map(|c| c.id()));
        for part in parts {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return false;
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len != part.len() || tail.len() < len || &tail[..len] != part {
                return false;
            }
            rest = &tail[len..];
        }
        // Both compared, whatever the first gives.
        let signature = ct_eq_32(macaroon.signature(), &self.signature);
        let key = ct_eq_32(root_key.as_bytes(), self.root_key.as_bytes());
        rest.is_empty() && signature & key
    }
}

impl std::fmt::Debug for SignatureMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureMemo").finish_non_exhaustive()
    }
}

// === impl VerifiedToken ===

impl VerifiedToken {
    /// The identifier.
    pub fn identifier(&self) -> &Identifier {
        &self.identifier
    }

    /// The token id.
    pub fn token_id(&self) -> &TokenId {
        self.identifier.token_id()
    }

    /// The payment hash.
    pub fn payment_hash(&self) -> &PaymentHash {
        self.identifier.payment_hash()
    }

    /// The services of the last `services` caveat; `None` if the token has none (unrestricted).
    pub fn services(&self) -> Option<&[Service]> {
        self.services.as_deref()
    }

    /// The target service's tier, if the token names it.
    pub fn tier(&self) -> Option<u8> {
        self.tier
    }

    /// The target service's capabilities from its last `_capabilities` caveat; `None` when the
    /// token does not restrict capabilities.
    pub fn capabilities(&self) -> Option<&[String]> {
        self.capabilities.as_deref()
    }

    /// When the token stops working for the target service, unix seconds.
    pub fn valid_until(&self) -> Option<i64> {
        self.valid_until
    }
}
