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
/// Only the parse is skipped: the root key is still looked up (so revocation applies at once),
/// the preimage still checked against the identifier, the signature still compared with the
/// memo, and every caveat checked against the request. Entries are added only after a full
/// verification succeeded, so unpaid or forged credentials cannot crowd out real ones.
pub(crate) struct CredentialCache {
    shards: Vec<std::sync::Mutex<CredentialShard>>,
    per_shard: usize,
}

/// `Authorization` value → the credential parsed from it.
type CredentialShard = HashMap<Box<[u8]>, Arc<l402::Credential>>;

/// Entries of the credential cache: ≈ 1 KiB each (the value and the parsed macaroon).
pub(crate) const CREDENTIAL_CACHE_CAPACITY: usize = 8192;

/// Longer `Authorization` values are parsed every time, not kept: a usual credential is well under
/// 1 KiB, and a holder must not be able to fill the cache with 16 KiB variants of one token.
pub(crate) const CREDENTIAL_CACHE_MAX_VALUE: usize = 2048;

/// A header value's shard, from its last eight bytes (the end of the preimage in the usual
/// form) mixed so that hex digits spread over every shard.
fn credential_shard(value: &[u8]) -> usize {
    let mut tail = [0u8; 8];
    let n = value.len().min(8);
    tail[..n].copy_from_slice(&value[value.len() - n..]);
    (u64::from_le_bytes(tail).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % SHARDS
}

impl CredentialCache {
    pub(crate) fn new(capacity: usize) -> Self {
        CredentialCache {
            shards: (0..SHARDS)
                .map(|_| std::sync::Mutex::new(HashMap::new()))
                .collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    /// The credential parsed from exactly this `Authorization` value, if it verified before.
    pub(crate) fn get(&self, value: &[u8]) -> Option<Arc<l402::Credential>> {
        self.shards[credential_shard(value)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(value)
            .cloned()
    }

    /// Remembers the credential parsed from `value` (which must have been the request's only
    /// `Authorization` value). A full shard is emptied first: the next requests parse again.
    pub(crate) fn insert(&self, value: &[u8], credential: Arc<l402::Credential>) {
        if value.len() > CREDENTIAL_CACHE_MAX_VALUE {
            return;
        }
        let mut shard = self.shards[credential_shard(value)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard {
            shard.clear();
        }
        shard.insert(value.into(), credential);
    }

    /// How many credentials are cached.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    fn credential(n: u8) -> Arc<l402::Credential> {
        let m = l402::macaroon::Macaroon::new(b"k", vec![n; 66], "lsat");
        Arc::new(l402::Credential::new(
            m,
            l402::Preimage::from_bytes([n; 32]),
        ))
    }

    #[test]
    fn exact_values_only_and_bounded() {
        let c = CredentialCache::new(SHARDS * 4);
        c.insert(b"L402 abc:01", credential(1));
        assert!(c.get(b"L402 abc:01").is_some());
        assert!(c.get(b"L402 abc:02").is_none());
        assert!(c.get(b"L402 abc:0").is_none());
        for i in 0..100u8 {
            // Same last eight bytes: one shard.
            c.insert(format!("L402 x{i}:01234567").as_bytes(), credential(i));
        }
        assert!(
            c.len() <= 4 + 1,
            "one shard holds at most its share: {}",
            c.len()
        );
        let long = format!("L402 {}:00", "a".repeat(CREDENTIAL_CACHE_MAX_VALUE));
        c.insert(long.as_bytes(), credential(1));
        assert!(c.get(long.as_bytes()).is_none(), "long values are not kept");
    }

    #[test]
    fn hex_endings_spread_over_every_shard() {
        let mut used = [false; SHARDS];
        for i in 0..4096u32 {
            let value = format!("L402 m:{:064x}", i.wrapping_mul(2_654_435_761));
            used[credential_shard(value.as_bytes())] = true;
        }
        assert!(used.iter().all(|u| *u), "{used:?}");
    }
}
