//! The proofs a gateway has accepted, so that a DPoP proof is used once (RFC 9449 §11.1).

use alloc::collections::{BTreeMap, VecDeque};

use crate::UnixTime;

/// What identifies an accepted proof: a digest of its key's thumbprint and its `jti`, and
/// the last second its `iat` is accepted (after which a replay is stale anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofId {
    pub(crate) digest: u64,
    pub(crate) expires_at: u64,
}

/// A bounded memory of accepted proofs until they go stale. When it is full the oldest
/// entry makes room (a proof that old could be replayed within its `iat` window: size it
/// for the proofs a worker accepts in `proof_max_age_seconds`).
///
/// ```
/// use scopegate_core::dpop::ReplayCache;
/// let cache = ReplayCache::new(2);
/// assert!(cache.is_empty());
/// ```
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

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// How many proofs it holds.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// How many proofs were pushed out before they went stale.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(byte: u8, expires_at: u64) -> ProofId {
        ProofId {
            digest: u64::from(byte),
            expires_at,
        }
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
}
