//! The proofs a gateway has accepted, so that a DPoP proof is used once (RFC 9449 §11.1).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::shared_memory::{SetError, SharedMemory};
use crate::time::UnixTime;

use super::ProofId;

/// A bounded memory of accepted proofs until they go stale. When it is full the oldest
/// entry makes room (a proof that old could be replayed within its `iat` window: size it
/// for the proofs a worker accepts in `proof_max_age_seconds`).
#[derive(Clone, Debug, Default)]
pub struct ReplayCache {
    capacity: usize,
    seen: BTreeMap<u64, u64>,
    order: VecDeque<u64>,
    evicted: u64,
}

impl ReplayCache {
    /// A cache of at most `capacity` proofs (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    /// Records `proof` unless it was seen and is not stale at `now`: `false` for a replay.
    pub fn first_use(&mut self, proof: &ProofId, now: UnixTime) -> bool {
        if let Some(&expires_at) = self.seen.get(&proof.digest) {
            if expires_at >= now.0 {
                return false;
            }
        }
        while let Some(oldest) = self.order.front() {
            let stale = self.seen.get(oldest).is_none_or(|&at| at < now.0);
            if !stale && self.order.len() < self.capacity {
                break;
            }
            if !stale {
                self.evicted += 1;
            }
            let oldest = *oldest;
            self.order.pop_front();
            self.seen.remove(&oldest);
        }
        if self.seen.insert(proof.digest, proof.expires_at).is_none() {
            self.order.push_back(proof.digest);
        }
        true
    }

    /// How many proofs it holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// How many proofs were pushed out before they went stale.
    #[cfg(test)]
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// Proofs one shared-memory record holds: a bucket of the replay cache that every VM of the
/// host reads and writes (16 bytes each).
const BUCKET_ENTRIES: usize = 8;
/// Attempts at a compare-and-swap of a bucket before the proof is refused.
const CAS_ATTEMPTS: usize = 4;

/// Records `proof` in the replay cache in the host's shared memory, which every worker sees
/// (so one proof sent to each worker is accepted once): `false` for a replay, and when the
/// bucket cannot be written (refused rather than unrecorded). The cache has
/// `capacity / 8` buckets of 8 proofs; a full bucket drops its stale proofs, then its
/// oldest.
pub fn first_use_shared(
    memory: &dyn SharedMemory,
    capacity: usize,
    proof: &ProofId,
    now: UnixTime,
) -> bool {
    let buckets = (capacity / BUCKET_ENTRIES).max(1) as u64;
    let mut key = *b"scopegate.replay.v1 0000000000000000";
    let bucket = proof.digest % buckets;
    for (i, byte) in key[20..].iter_mut().enumerate() {
        *byte = b"0123456789abcdef"[((bucket >> (60 - 4 * i)) & 0xf) as usize];
    }
    let Ok(key) = core::str::from_utf8(&key) else {
        return false;
    };
    for _ in 0..CAS_ATTEMPTS {
        let (record, version) = match memory.get(key) {
            Some((record, version)) => (record, Some(version)),
            None => (Vec::new(), None),
        };
        // The bucket's live proofs, as stored; the one going stale first makes room.
        let mut next = Vec::with_capacity((BUCKET_ENTRIES + 1) * 16);
        for entry in record.chunks_exact(16) {
            let (digest, expires_at) = entry.split_at(8);
            let expires_at = u64::from_be_bytes(expires_at.try_into().unwrap_or_default());
            if expires_at < now.0 {
                continue;
            }
            if digest == proof.digest.to_be_bytes() {
                return false;
            }
            next.extend_from_slice(entry);
        }
        // `while`: a record another writer left longer than a bucket is cut down too.
        while next.len() >= BUCKET_ENTRIES * 16 {
            let soonest = next
                .chunks_exact(16)
                .enumerate()
                .min_by_key(|(_, entry)| <[u8; 8]>::try_from(&entry[8..]).unwrap_or_default())
                .map_or(0, |(at, _)| at * 16);
            next.drain(soonest..soonest + 16);
        }
        next.extend_from_slice(&proof.digest.to_be_bytes());
        next.extend_from_slice(&proof.expires_at.to_be_bytes());
        match memory.set(key, &next, version) {
            Ok(()) => return true,
            Err(SetError::Changed) => continue,
            Err(SetError::Refused) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(byte: u8, expires_at: u64) -> ProofId {
        ProofId::for_tests(u64::from(byte), expires_at)
    }

    #[test]
    fn a_proof_is_accepted_once_until_it_goes_stale() {
        let mut cache = ReplayCache::new(8);
        assert!(cache.first_use(&proof(1, 100), UnixTime(40)));
        assert!(!cache.first_use(&proof(1, 100), UnixTime(41)));
        assert!(!cache.first_use(&proof(1, 100), UnixTime(100)));
        assert!(
            cache.first_use(&proof(1, 200), UnixTime(101)),
            "stale: taken anew"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn it_stays_bounded_dropping_stale_entries_first() {
        let mut cache = ReplayCache::new(3);
        for byte in 0..3 {
            assert!(cache.first_use(&proof(byte, 50), UnixTime(10)));
        }
        assert!(cache.first_use(&proof(9, 200), UnixTime(60)));
        assert_eq!(
            (cache.len(), cache.evicted()),
            (1, 0),
            "stale ones went first"
        );
        for byte in 10..20 {
            assert!(cache.first_use(&proof(byte, 200), UnixTime(61)));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.evicted(), 8);
        assert!(!cache.first_use(&proof(19, 200), UnixTime(62)));
    }

    /// Memory where another worker records `other` just after this worker's first read.
    #[derive(Debug, Default)]
    struct Interleaved {
        inner: crate::shared_memory::LocalMemory,
        other: core::cell::Cell<Option<ProofId>>,
    }

    impl SharedMemory for Interleaved {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            let seen = self.inner.get(key);
            if let Some(other) = self.other.take() {
                assert!(first_use_shared(&self.inner, 8, &other, UnixTime(10)));
            }
            seen
        }

        fn set(&self, key: &str, value: &[u8], version: Option<u32>) -> Result<(), SetError> {
            self.inner.set(key, value, version)
        }
    }

    #[test]
    fn two_workers_that_both_find_no_bucket_accept_a_proof_once() {
        let memory = Interleaved::default();
        memory.other.set(Some(proof(1, 100)));
        assert!(
            !first_use_shared(&memory, 8, &proof(1, 100), UnixTime(10)),
            "the other worker created the bucket with this proof first"
        );
        memory.other.set(Some(proof(2, 100)));
        assert!(first_use_shared(&memory, 8, &proof(3, 100), UnixTime(10)));
        assert!(
            !first_use_shared(&memory, 8, &proof(2, 100), UnixTime(11)),
            "the other worker's proof survived this worker's write"
        );
    }

    #[test]
    fn a_shared_bucket_stays_bounded_and_catches_replays_from_any_writer() {
        let memory = crate::shared_memory::LocalMemory::default();
        // One bucket of eight.
        for byte in 0..8 {
            assert!(first_use_shared(
                &memory,
                8,
                &proof(byte, 100 + u64::from(byte)),
                UnixTime(10)
            ));
        }
        assert!(!first_use_shared(&memory, 8, &proof(3, 103), UnixTime(11)));
        assert!(first_use_shared(&memory, 8, &proof(9, 200), UnixTime(11)));
        let (record, _) = memory.get("scopegate.replay.v1 0000000000000000").unwrap();
        assert_eq!(record.len(), 8 * 16, "bounded");
        // The oldest (0) made room; 1 is still there.
        assert!(first_use_shared(&memory, 8, &proof(0, 100), UnixTime(12)));
        assert!(!first_use_shared(&memory, 8, &proof(2, 102), UnixTime(12)));
        // Garbage in the record is not a replay verdict of its own.
        let key = "scopegate.replay.v1 0000000000000000";
        let (_, version) = memory.get(key).unwrap();
        memory.set(key, b"\xff\x01", Some(version)).unwrap();
        assert!(first_use_shared(&memory, 8, &proof(1, 300), UnixTime(13)));
    }

    #[test]
    fn the_documented_shared_bucket() {
        use crate::dpop::{first_use_shared, ProofId};
        use crate::shared_memory::LocalMemory;
        use crate::UnixTime;
        fn proof() -> ProofId {
            crate::dpop::ProofId::for_tests(7, 100)
        }
        let memory = LocalMemory::default();
        assert!(first_use_shared(&memory, 1024, &proof(), UnixTime(50)));
        assert!(
            !first_use_shared(&memory, 1024, &proof(), UnixTime(51)),
            "replayed"
        );
    }

    #[test]
    fn the_documented_cache() {
        use crate::dpop::ReplayCache;
        let cache = ReplayCache::new(2);
        assert_eq!(cache.len(), 0);
    }
}
