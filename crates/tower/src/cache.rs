//! An in-memory cache of verified root keys, so the hot path never touches the database.
//!
//! Sharded `RwLock<HashMap>`: lookups take a read lock on one of 16 shards. Entries expire after
//! a TTL (bounding how long a revocation missed by every notification channel can go unseen) and
//! a full shard drops its expired entries, then its oldest half.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use std::sync::Arc;

use l402::{KeyId, RootKey, SignatureMemo};

const SHARDS: usize = 16;

struct Entry {
    root_key: RootKey,
    inserted: Instant,
    /// Whether this process has already recorded the token as paid.
    paid_recorded: bool,
    /// The macaroon last verified under this key, so its next use skips the HMAC chain.
    memo: Option<Arc<SignatureMemo>>,
}

/// What the cache knows about a key id.
pub(crate) struct Cached {
    pub(crate) root_key: RootKey,
    /// When this entry stops being trusted (it is read from the store again).
    pub(crate) fresh_until: Instant,
    pub(crate) paid_recorded: bool,
    pub(crate) memo: Option<Arc<SignatureMemo>>,
}

/// Cache of root keys by key id.
pub(crate) struct RootKeyCache {
    shards: Vec<RwLock<HashMap<KeyId, Entry>>>,
    /// Bumped by every removal, so a lookup that read the store before a revocation cannot put
    /// the revoked key back afterwards.
    generation: std::sync::atomic::AtomicU64,
    ttl: Duration,
    per_shard: usize,
}

fn shard_of(key: &KeyId) -> usize {
    // Key ids are SHA-256 outputs: any byte is uniformly distributed.
    key.as_bytes()[0] as usize % SHARDS
}

impl RootKeyCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        RootKeyCache {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            generation: std::sync::atomic::AtomicU64::new(0),
            ttl,
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    /// The cached root key, whether the token was already recorded as paid, and the memo of
    /// the macaroon last verified under it.
    pub(crate) fn get(&self, key: &KeyId) -> Option<Cached> {
        let shard = self.shards[shard_of(key)]
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let e = shard.get(key)?;
        if e.inserted.elapsed() > self.ttl {
            return None;
        }
        Some(Cached {
            root_key: e.root_key.clone(),
            fresh_until: e.inserted + self.ttl,
            paid_recorded: e.paid_recorded,
            memo: e.memo.clone(),
        })
    }

    /// Remembers the macaroon that just verified under `key`'s root key.
    pub(crate) fn set_memo(&self, key: &KeyId, memo: SignatureMemo) {
        let mut shard = self.shards[shard_of(key)]
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(e) = shard.get_mut(key) {
            e.memo = Some(Arc::new(memo));
        }
    }

    /// The current generation; pass it to [`insert`](Self::insert) after reading the store.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Caches a key read from the store while the cache was at `generation`; skipped if any
    /// removal happened since (the key may have been revoked meanwhile).
    pub(crate) fn insert(
        &self,
        key: KeyId,
        root_key: RootKey,
        paid_recorded: bool,
        generation: u64,
    ) {
        let mut shard = self.shards[shard_of(&key)]
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if self.generation() != generation {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            let ttl = self.ttl;
            shard.retain(|_, e| e.inserted.elapsed() <= ttl);
            if shard.len() >= self.per_shard {
                let mut ages: Vec<Instant> = shard.values().map(|e| e.inserted).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                shard.retain(|_, e| e.inserted > cutoff);
            }
        }
        shard.insert(
            key,
            Entry {
                root_key,
                inserted: Instant::now(),
                paid_recorded,
                memo: None,
            },
        );
    }

    pub(crate) fn set_paid_recorded(&self, key: &KeyId) {
        let mut shard = self.shards[shard_of(key)]
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(e) = shard.get_mut(key) {
            e.paid_recorded = true;
        }
    }

    pub(crate) fn remove(&self, key: &KeyId) {
        let mut shard = self.shards[shard_of(key)]
            .write()
            .unwrap_or_else(|p| p.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        shard.remove(key);
    }

    pub(crate) fn clear(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        for s in &self.shards {
            s.write().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().unwrap().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8, j: u8) -> KeyId {
        let mut b = [0u8; 32];
        b[0] = i;
        b[1] = j;
        KeyId::from_bytes(b)
    }

    #[test]
    fn get_insert_remove_clear() {
        let c = RootKeyCache::new(1000, Duration::from_secs(60));
        let k = key(1, 1);
        assert!(c.get(&k).is_none());
        c.insert(k, RootKey::from_bytes([5; 32]), false, c.generation());
        let hit = c.get(&k).unwrap();
        assert_eq!(hit.root_key, RootKey::from_bytes([5; 32]));
        assert!(!hit.paid_recorded && hit.memo.is_none());
        c.set_paid_recorded(&k);
        assert!(c.get(&k).unwrap().paid_recorded);
        c.remove(&k);
        assert!(c.get(&k).is_none());
        c.insert(k, RootKey::from_bytes([5; 32]), false, c.generation());
        c.clear();
        assert!(c.get(&k).is_none());
    }

    #[test]
    fn a_removal_during_a_store_read_wins() {
        let c = RootKeyCache::new(1000, Duration::from_secs(60));
        let k = key(3, 3);
        let before_read = c.generation();
        c.remove(&k); // a revocation lands while the store read is in flight
        c.insert(k, RootKey::from_bytes([5; 32]), false, before_read);
        assert!(c.get(&k).is_none(), "the revoked key is not put back");
    }

    #[test]
    fn entries_expire() {
        let c = RootKeyCache::new(1000, Duration::from_millis(0));
        let k = key(2, 2);
        c.insert(k, RootKey::from_bytes([5; 32]), false, c.generation());
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.get(&k).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let c = RootKeyCache::new(SHARDS * 8, Duration::from_secs(60));
        for j in 0..100 {
            c.insert(
                key(0, j),
                RootKey::from_bytes([1; 32]),
                false,
                c.generation(),
            );
        }
        assert!(
            c.len() <= 8,
            "one shard holds at most its share: {}",
            c.len()
        );
    }
}

/// Credentials that verified, parsed, by the exact `Authorization` value they came in: a client
/// sends the same value on every request, and parsing it (base64, the macaroon's fields, the
/// preimage's hex) costs more than the rest of verification once the signature is remembered.
///
/// Only the parse and the preflight's two hashes are skipped (the bytes are the same, so is
/// their outcome): the root key is still looked up (so revocation applies at once), the
/// signature still compared with the memo, and every caveat checked against the request.
/// Entries are added only after a full verification succeeded, so unpaid or forged credentials
/// cannot crowd out real ones.
pub(crate) struct CredentialCache {
    shards: Vec<std::sync::Mutex<CredentialShard>>,
    per_shard: usize,
    /// Keys the hash of a value's tail (a random seed per cache), so nobody can aim values at
    /// one bucket or shard.
    hasher: foldhash::quality::RandomState,
}

/// One shard: values by the keyed hash of their tail (values sharing a tail share a slot, and
/// are told apart by comparing them whole).
#[derive(Default)]
struct CredentialShard {
    slots: HashMap<u64, Slot, BuildIdentity>,
    len: usize,
}

/// The values (and their credentials) whose tails hash alike: almost always one.
type Slot = Vec<(Box<[u8]>, Arc<KnownCredential>)>;

/// The keys are already keyed hash outputs: hashing them again would only cost time.
#[derive(Clone, Copy, Default)]
struct BuildIdentity;

#[derive(Default)]
struct Identity(u64);

impl std::hash::BuildHasher for BuildIdentity {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity(0)
    }
}

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A credential that verified, with what its preflight established (so neither its parse nor
/// its two hashes are repeated) and the last decision on it.
pub(crate) struct KnownCredential {
    pub(crate) credential: l402::Credential,
    pub(crate) prechecked: l402::Prechecked,
    pub(crate) verdict: std::sync::Mutex<Option<Verdict>>,
}

impl KnownCredential {
    pub(crate) fn new(credential: l402::Credential, prechecked: l402::Prechecked) -> Self {
        KnownCredential {
            credential,
            prechecked,
            verdict: std::sync::Mutex::new(None),
        }
    }
}

/// A known credential's last successful verification, reused while everything it depended on
/// is unchanged.
///
/// Verification of one macaroon and preimage depends on nothing but the root key, the
/// verifier's terms (service, strictness, constraints, required capability, price binding and,
/// for a path binding, the path) and the clock, through the target service's `valid_until`
/// alone. So the token it granted is granted again, without the caveats being split and
/// checked, while the terms are equal, the clock is before `valid_until`, and the root key
/// cache would still answer with the same key: no removal from it since (a revocation bumps its
/// generation) and its entry not yet due to be read from the store again. Terms with custom
/// satisfiers (code that may consult anything) never get a verdict.
pub(crate) struct Verdict {
    pub(crate) terms: Terms,
    pub(crate) token: l402::VerifiedToken,
    /// The root key cache's generation before the key was looked up.
    pub(crate) generation: u64,
    /// When the root key cache's entry is due to be read again.
    pub(crate) fresh_until: Instant,
}

/// The parts of a policy and request a verification outcome depends on (custom satisfiers
/// aside). Holds the policy's shared parts, so comparing pointers is sound (none can be freed
/// and reused while a verdict keeps it).
pub(crate) struct Terms {
    pub(crate) service: Arc<str>,
    pub(crate) strict: bool,
    pub(crate) constraints: Arc<[(String, String)]>,
    pub(crate) required_capability: Option<Arc<str>>,
    pub(crate) binding: crate::PriceBinding,
    pub(crate) price: l402::Msat,
    /// The request's path, for a path binding only.
    pub(crate) path: Option<Box<str>>,
}

impl Terms {
    /// The terms of `policy` for a request on `path`, or `None` when the policy has custom
    /// satisfiers.
    pub(crate) fn of(policy: &crate::Policy, strict: bool, path: &str) -> Option<Terms> {
        policy.satisfiers.is_empty().then(|| Terms {
            service: policy.service.clone(),
            strict,
            constraints: policy.constraints.clone(),
            required_capability: policy.required_capability.clone(),
            binding: policy.price_binding,
            price: policy.price,
            path: (policy.price_binding == crate::PriceBinding::Path).then(|| path.into()),
        })
    }

    /// Whether `policy`, for a request on `path`, verifies exactly as these terms did.
    pub(crate) fn hold_for(&self, policy: &crate::Policy, strict: bool, path: &str) -> bool {
        fn same<T: ?Sized + PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
            Arc::ptr_eq(a, b) || **a == **b
        }
        policy.satisfiers.is_empty()
            && self.strict == strict
            && self.binding == policy.price_binding
            && same(&self.service, &policy.service)
            && same(&self.constraints, &policy.constraints)
            && match (&self.required_capability, &policy.required_capability) {
                (None, None) => true,
                (Some(a), Some(b)) => same(a, b),
                _ => false,
            }
            && match self.binding {
                crate::PriceBinding::None => true,
                crate::PriceBinding::AtLeast => self.price == policy.price,
                crate::PriceBinding::Path => self.path.as_deref() == Some(path),
            }
    }
}

impl Verdict {
    /// The token granted again, if this verdict holds for `policy` on `path` at `now` (unix
    /// seconds, and the monotonic clock's `instant`) with the root key cache at `generation`.
    pub(crate) fn grant(
        &self,
        policy: &crate::Policy,
        strict: bool,
        path: &str,
        now: i64,
        instant: Instant,
        generation: u64,
    ) -> Option<l402::VerifiedToken> {
        let holds = generation == self.generation
            && instant <= self.fresh_until
            && self.token.valid_until().is_none_or(|until| now < until)
            && self.terms.hold_for(policy, strict, path);
        holds.then(|| self.token.clone())
    }
}

/// Entries of the credential cache: ≈ 1 KiB each (the value and the parsed macaroon).
pub(crate) const CREDENTIAL_CACHE_CAPACITY: usize = 8192;

/// Longer `Authorization` values are parsed every time, not kept: a usual credential is well under
/// 1 KiB, and a holder must not be able to fill the cache with 16 KiB variants of one token.
pub(crate) const CREDENTIAL_CACHE_MAX_VALUE: usize = 2048;

/// How much of a value's end is hashed: the 64 hex digits of the preimage and a little more in
/// the usual form, which tell tokens apart; hashing the whole macaroon would cost more than the
/// rest of the lookup.
const HASHED_TAIL: usize = 72;

/// The most values kept per tail hash.
const SLOT_CAPACITY: usize = 4;

impl CredentialCache {
    pub(crate) fn new(capacity: usize) -> Self {
        CredentialCache {
            shards: (0..SHARDS)
                .map(|_| std::sync::Mutex::new(CredentialShard::default()))
                .collect(),
            per_shard: (capacity / SHARDS).max(1),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    /// The keyed hash of `value`'s length and tail, and the shard it picks.
    fn locate(&self, value: &[u8]) -> (u64, usize) {
        use std::hash::BuildHasher;
        let tail = &value[value.len().saturating_sub(HASHED_TAIL)..];
        let hash = self.hasher.hash_one((value.len(), tail));
        // Middle bits: the map inside a shard uses the low bits (bucket) and the top seven (tag).
        (hash, (hash >> 32) as usize % SHARDS)
    }

    /// The credential parsed from exactly this `Authorization` value, if it verified before.
    pub(crate) fn get(&self, value: &[u8]) -> Option<Arc<KnownCredential>> {
        let (hash, shard) = self.locate(value);
        let shard = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        shard
            .slots
            .get(&hash)?
            .iter()
            .find(|(v, _)| **v == *value)
            .map(|(_, c)| c.clone())
    }

    /// Remembers the credential parsed from `value` (which must have been the request's only
    /// `Authorization` value). A full shard is emptied first: the next requests parse again.
    pub(crate) fn insert(&self, value: &[u8], credential: Arc<KnownCredential>) {
        if value.len() > CREDENTIAL_CACHE_MAX_VALUE {
            return;
        }
        let (hash, shard) = self.locate(value);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        if shard.len >= self.per_shard {
            shard.slots.clear();
            shard.len = 0;
        }
        let slot = shard.slots.entry(hash).or_default();
        let full = slot.len() >= SLOT_CAPACITY;
        match slot.iter_mut().find(|(v, _)| **v == *value) {
            Some(entry) => entry.1 = credential,
            // Values that share a tail are variants of one credential (the parser ignores
            // whitespace a holder may add before it): a few are kept, the rest parsed each time,
            // so nobody can make one lookup compare hundreds of values.
            None if !full => {
                slot.push((value.into(), credential));
                shard.len += 1;
            }
            None => {}
        }
    }

    /// How many credentials are cached.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len)
            .sum()
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    fn credential(n: u8) -> Arc<KnownCredential> {
        let preimage = l402::Preimage::from_bytes([n; 32]);
        let id = l402::Identifier::new(preimage.payment_hash(), l402::TokenId::from_bytes([n; 32]));
        let m = l402::mint(&l402::RootKey::from_bytes([n; 32]), &id, "lsat", &[]);
        let credential = l402::Credential::new(m, preimage);
        let prechecked = l402::Verifier::new()
            .preflight(&credential)
            .unwrap()
            .prechecked();
        Arc::new(KnownCredential::new(credential, prechecked))
    }

    #[test]
    fn exact_values_only_and_bounded() {
        let c = CredentialCache::new(SHARDS * 4);
        c.insert(b"L402 abc:01", credential(1));
        assert_eq!(
            c.get(b"L402 abc:01").unwrap().credential.preimage(),
            &l402::Preimage::from_bytes([1; 32])
        );
        assert!(c.get(b"L402 abc:02").is_none());
        assert!(c.get(b"L402 abc:0").is_none());
        assert!(c.get(b"L402 abc:011").is_none());
        // The same value again replaces its entry.
        c.insert(b"L402 abc:01", credential(2));
        assert_eq!(c.len(), 1);
        for i in 0..1000u32 {
            c.insert(format!("L402 x:{i:064x}").as_bytes(), credential(3));
        }
        assert!(
            c.len() <= SHARDS * 4,
            "each shard holds at most its share: {}",
            c.len()
        );
        let long = format!("L402 {}:00", "a".repeat(CREDENTIAL_CACHE_MAX_VALUE));
        c.insert(long.as_bytes(), credential(1));
        assert!(c.get(long.as_bytes()).is_none(), "long values are not kept");
    }

    #[test]
    fn values_sharing_their_tail_are_told_apart() {
        let c = CredentialCache::new(1000);
        let tail = "9".repeat(HASHED_TAIL);
        let a = format!("L402 AAAA{tail}");
        let b = format!("L402 BBBB{tail}");
        assert_eq!(c.locate(a.as_bytes()), c.locate(b.as_bytes()), "same slot");
        c.insert(a.as_bytes(), credential(1));
        assert!(c.get(b.as_bytes()).is_none());
        c.insert(b.as_bytes(), credential(2));
        assert_eq!(c.len(), 2);
        let preimage = |v: &str| c.get(v.as_bytes()).unwrap().credential.preimage().clone();
        assert_eq!(preimage(&a), l402::Preimage::from_bytes([1; 32]));
        assert_eq!(preimage(&b), l402::Preimage::from_bytes([2; 32]));
        // Variants sharing a tail: only a few are kept.
        for i in 0..20 {
            c.insert(format!("L402 {i:04}{tail}").as_bytes(), credential(3));
        }
        assert_eq!(c.len(), SLOT_CAPACITY);
        assert!(
            c.get(
                b"L402 0019"
                    .iter()
                    .chain(tail.as_bytes())
                    .copied()
                    .collect::<Vec<u8>>()
                    .as_slice()
            )
            .is_none()
        );
        assert!(c.get(a.as_bytes()).is_some(), "the first ones stay");
    }

    fn verdict(policy: &crate::Policy, path: &str, valid_until: i64, fresh: Instant) -> Verdict {
        let key = l402::RootKey::from_bytes([7; 32]);
        let preimage = l402::Preimage::from_bytes([7; 32]);
        let id = l402::Identifier::new(preimage.payment_hash(), l402::TokenId::from_bytes([7; 32]));
        let caveats = l402::TokenSpec::new("weather", 0)
            .valid_until(valid_until)
            .caveats()
            .unwrap();
        let credential = l402::Credential::new(l402::mint(&key, &id, "lsat", &caveats), preimage);
        let token = l402::Verifier::new()
            .service("weather")
            .verify(&credential, &key, &l402::Context::at(valid_until - 100))
            .unwrap();
        assert_eq!(token.valid_until(), Some(valid_until));
        Verdict {
            terms: Terms::of(policy, false, path).unwrap(),
            token,
            generation: 5,
            fresh_until: fresh,
        }
    }

    #[test]
    fn a_verdict_holds_only_while_nothing_it_rests_on_changed() {
        use crate::{Policy, PriceBinding};
        let policy = Policy::new("weather", l402::Msat::from_sat(10))
            .constraints([("region".to_string(), "eu".to_string())]);
        let now = Instant::now();
        let fresh = now + Duration::from_secs(60);
        let v = verdict(&policy, "/a", 1000, fresh);
        let grant = |p: &Policy, path: &str, t: i64, at: Instant, generation: u64| {
            v.grant(p, false, path, t, at, generation).is_some()
        };
        assert!(grant(&policy, "/a", 999, now, 5), "unchanged: granted");
        assert!(grant(&policy, "/other", 999, now, 5), "no path binding");
        assert!(
            grant(&policy.clone(), "/a", 999, now, 5),
            "a clone is the same policy"
        );
        assert!(!grant(&policy, "/a", 1000, now, 5), "expired token");
        assert!(
            !grant(&policy, "/a", 999, now, 6),
            "a root key was removed since"
        );
        assert!(
            !grant(&policy, "/a", 999, fresh + Duration::from_millis(1), 5),
            "the root key is due to be read again"
        );
        assert!(
            v.grant(&policy, true, "/a", 999, now, 5).is_none(),
            "strict"
        );
        let other = |p: Policy| !grant(&p, "/a", 999, now, 5);
        assert!(other(Policy::new("maps", l402::Msat::from_sat(10))));
        assert!(other(
            policy
                .clone()
                .constraints([("region".to_string(), "us".to_string())])
        ));
        assert!(other(policy.clone().require_capability("admin")));
        assert!(other(policy.clone().price_binding(PriceBinding::AtLeast)));
        // Equal terms built apart are the same terms.
        assert!(grant(
            &Policy::new("weather", l402::Msat::from_sat(20))
                .constraints([("region".to_string(), "eu".to_string())]),
            "/a",
            999,
            now,
            5
        ));
        // A custom satisfier may decide anything: no verdict.
        let custom = policy.clone();
        let custom = Policy {
            satisfiers: Arc::new([
                Arc::new(l402::ExactValue::new("x", "y")) as Arc<dyn l402::Satisfier>
            ]),
            ..custom
        };
        assert!(Terms::of(&custom, false, "/a").is_none());
        assert!(!grant(&custom, "/a", 999, now, 5));
        // A path binding ties the verdict to the path; a price binding to the price.
        let by_path = policy.clone().price_binding(PriceBinding::Path);
        let v = verdict(&by_path, "/a", 1000, fresh);
        assert!(v.grant(&by_path, false, "/a", 999, now, 5).is_some());
        assert!(v.grant(&by_path, false, "/b", 999, now, 5).is_none());
        let at_least = policy.clone().price_binding(PriceBinding::AtLeast);
        let v = verdict(&at_least, "/a", 1000, fresh);
        assert!(v.grant(&at_least, false, "/b", 999, now, 5).is_some());
        let dearer = Policy {
            price: l402::Msat::from_sat(11),
            ..at_least
        };
        assert!(v.grant(&dearer, false, "/a", 999, now, 5).is_none());
    }

    #[test]
    fn hex_endings_spread_over_every_shard() {
        let c = CredentialCache::new(1000);
        let mut used = [false; SHARDS];
        for i in 0..4096u32 {
            let value = format!("L402 m:{:064x}", i.wrapping_mul(2_654_435_761));
            used[c.locate(value.as_bytes()).1] = true;
        }
        assert!(used.iter().all(|u| *u), "{used:?}");
    }
}
