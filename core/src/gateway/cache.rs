//! A bounded cache of verified tokens, so that a gateway verifies each token's signature
//! once rather than on every request.
//!
//! An entry holds the token itself, and only the very same token text hits it, so a forged
//! token can never use another token's entry. Entries are found by a 64-bit fingerprint of
//! the token's last bytes: its signature, as good as random for the issuer's tokens. Two
//! cached tokens with the same fingerprint only push each other out, and a token crafted to
//! share a fingerprint misses and is verified. (A SHA-256 digest of the whole token as the
//! key cost more than the rest of a cached decision: about 40% of it, measured.)
//!
//! Entries live until the token's `exp` plus leeway, and when the cache is full the entry
//! that expires first makes room. Tokens longer than [`MAX_CACHED_TOKEN_LEN`] are verified
//! on every request, as in Envoy's `jwt_authn`, so the cache holds at most that much token
//! text per entry. Only the signature and the time-independent claims are cached: route,
//! scope and `max_age` checks run on every request against the cached [`Principal`].
//!
//! A cached token stays accepted until its `exp` even if its key leaves the issuer's JWKS,
//! as in Envoy's `jwt_authn` cache; keep `exp` short where that matters.
//!
//! A token that Envoy's `jwt_authn` verified is cached with its payload: each request with
//! it is still checked against that request's own metadata, only without decoding the token
//! and building its principal again.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;

use serde_json::Value;

use crate::time::UnixTime;
use crate::token::fingerprint::{fingerprint, same_token, Fingerprint};
use crate::token::Principal;

/// Longest token the cache keeps, in bytes (4 KiB, as Envoy's `jwt_authn` cache).
pub const MAX_CACHED_TOKEN_LEN: usize = 4 * 1024;

#[derive(Clone, Debug)]
struct Entry {
    token: Box<str>,
    principal: Rc<Principal>,
    payload: Option<Rc<Value>>,
}

/// A cached token: its principal, and for a token the host verified, the payload each
/// request's metadata must hold.
pub struct Hit {
    /// The token's principal.
    pub principal: Rc<Principal>,
    /// The payload `jwt_authn` verified, for a token of an issuer it verifies.
    pub payload: Option<Rc<Value>>,
}

/// Verified tokens, until they expire. Principals are shared ([`Rc`]) so that a hit costs a
/// fingerprint, a map lookup and one comparison of the token, not a copy.
#[derive(Clone, Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    entries: BTreeMap<Fingerprint, Entry>,
    by_expiry: BTreeSet<(u64, Fingerprint)>,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens; 0 caches nothing.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// The principal of `token` if it was verified and has not expired at `now`.
    pub fn get(&mut self, token: &str, now: UnixTime) -> Option<Hit> {
        if self.capacity == 0 {
            return None;
        }
        let fingerprint = fingerprint(token);
        let entry = self.entries.get(&fingerprint)?;
        if !same_token(&entry.token, token) {
            return None;
        }
        if now.0 > entry.principal.expires_at {
            let expires_at = entry.principal.expires_at;
            self.entries.remove(&fingerprint);
            self.by_expiry.remove(&(expires_at, fingerprint));
            return None;
        }
        Some(Hit {
            principal: Rc::clone(&entry.principal),
            payload: entry.payload.clone(),
        })
    }

    /// Remembers a verified token. Expired entries are dropped first; if the cache is still
    /// full, the entry expiring soonest makes room, unless the new one expires sooner still.
    pub fn insert(
        &mut self,
        token: &str,
        principal: Rc<Principal>,
        payload: Option<Value>,
        now: UnixTime,
    ) {
        if self.capacity == 0 || now.0 > principal.expires_at || token.len() > MAX_CACHED_TOKEN_LEN
        {
            return;
        }
        let fingerprint = fingerprint(token);
        self.evict_expired(now);
        // The same token again, or another one with its fingerprint: either way it goes.
        if let Some(old) = self.entries.remove(&fingerprint) {
            self.by_expiry
                .remove(&(old.principal.expires_at, fingerprint));
        }
        if self.entries.len() >= self.capacity {
            match self.by_expiry.first().copied() {
                Some(soonest) if soonest.0 < principal.expires_at => {
                    self.by_expiry.remove(&soonest);
                    self.entries.remove(&soonest.1);
                }
                _ => return,
            }
        }
        self.by_expiry.insert((principal.expires_at, fingerprint));
        let token = token.into();
        let payload = payload.map(Rc::new);
        self.entries.insert(
            fingerprint,
            Entry {
                token,
                principal,
                payload,
            },
        );
    }

    /// How many tokens are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is cached.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict_expired(&mut self, now: UnixTime) {
        while let Some(&(expires_at, fingerprint)) = self.by_expiry.first() {
            if expires_at >= now.0 {
                break;
            }
            self.by_expiry.pop_first();
            self.entries.remove(&fingerprint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn a_cached_token_is_found_until_it_expires() {
        use crate::{Principal, UnixTime};
        use alloc::vec::Vec;
        let principal = Principal {
            issuer: 0,
            subject: Some("alice".into()),
            scopes: "resource:read".split(' ').collect(),
            expires_at: 1_000,
            auth_time: None,
            acr: None,
            forwarded: Vec::new(),
            audiences: crate::token::AudienceMatch::ALL,
            confirmation: None,
        };
        let mut cache = TokenCache::new(2);
        cache.insert("eyJ.a.b", principal.into(), None, UnixTime(900));
        assert!(cache.get("eyJ.a.b", UnixTime(1_000)).is_some());
        assert!(cache.get("eyJ.a.c", UnixTime(1_000)).is_none());
        assert!(
            cache.get("eyJ.a.b", UnixTime(1_001)).is_none(),
            "expired entries are dropped"
        );
        assert!(cache.is_empty());
    }

    fn principal(expires_at: u64) -> Rc<Principal> {
        Rc::new(Principal {
            issuer: 0,
            subject: None,
            scopes: ["a"].into_iter().collect(),
            expires_at,
            auth_time: None,
            acr: None,
            forwarded: alloc::vec::Vec::new(),
            audiences: crate::token::AudienceMatch::ALL,
            confirmation: None,
        })
    }

    #[test]
    fn full_cache_drops_the_entry_expiring_soonest() {
        let mut cache = TokenCache::new(3);
        for (token, exp) in [("t1", 500), ("t2", 100), ("t3", 300)] {
            cache.insert(token, principal(exp), None, UnixTime(0));
        }
        cache.insert("t4", principal(400), None, UnixTime(0));
        assert_eq!(cache.len(), 3);
        assert!(cache.get("t2", UnixTime(0)).is_none());
        for token in ["t1", "t3", "t4"] {
            assert!(cache.get(token, UnixTime(0)).is_some(), "{token}");
        }
        // A token expiring before everything cached does not push anything out.
        cache.insert("t5", principal(50), None, UnixTime(0));
        assert!(cache.get("t5", UnixTime(0)).is_none());
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn expired_entries_make_room_first() {
        let mut cache = TokenCache::new(2);
        cache.insert("old", principal(10), None, UnixTime(0));
        cache.insert("new", principal(1000), None, UnixTime(0));
        cache.insert("newer", principal(900), None, UnixTime(11));
        assert!(cache.get("new", UnixTime(11)).is_some());
        assert!(cache.get("newer", UnixTime(11)).is_some());
    }

    #[test]
    fn capacity_zero_and_expired_tokens_are_never_cached() {
        let mut off = TokenCache::new(0);
        off.insert("t", principal(100), None, UnixTime(0));
        assert!(off.get("t", UnixTime(0)).is_none());
        let mut cache = TokenCache::new(4);
        cache.insert("t", principal(100), None, UnixTime(101));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let mut cache = TokenCache::new(16);
        for i in 0..1000u64 {
            cache.insert(
                &format!("token-{i}"),
                principal(i % 97 + 10),
                None,
                UnixTime(i / 100),
            );
            assert!(cache.len() <= 16);
            assert_eq!(cache.len(), cache.by_expiry.len());
        }
    }

    #[test]
    fn reinserting_a_token_replaces_its_entry() {
        let mut cache = TokenCache::new(2);
        cache.insert("t", principal(100), None, UnixTime(0));
        cache.insert("t", principal(200), None, UnixTime(0));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.by_expiry.len(), 1);
        assert_eq!(
            cache.get("t", UnixTime(150)).unwrap().principal.expires_at,
            200
        );
    }

    #[test]
    fn only_the_same_token_text_hits() {
        // Same last 16 bytes, so the same fingerprint: a forgery aimed at a cached entry.
        let genuine = "eyJ.genuine.0123456789abcdef";
        let forged = "eyJ.forged.0123456789abcdef";
        assert_eq!(fingerprint(genuine), fingerprint(forged));
        let mut cache = TokenCache::new(4);
        cache.insert(genuine, principal(100), None, UnixTime(0));
        assert!(cache.get(forged, UnixTime(0)).is_none());
        assert!(cache.get(genuine, UnixTime(0)).is_some());
        // Two verified tokens sharing a fingerprint push each other out.
        cache.insert(forged, principal(200), None, UnixTime(0));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.by_expiry.len(), 1);
        assert!(cache.get(genuine, UnixTime(0)).is_none());
        assert_eq!(
            cache.get(forged, UnixTime(0)).unwrap().principal.expires_at,
            200
        );
        // A forgery of the same length that differs in one byte anywhere misses too.
        let same_length = "eyJ.genuinf.0123456789abcdef";
        assert_eq!(same_length.len(), genuine.len());
        cache.insert(genuine, principal(100), None, UnixTime(0));
        assert!(cache.get(same_length, UnixTime(0)).is_none());
        assert!(same_token(genuine, genuine));
        assert!(!same_token(genuine, &genuine[..genuine.len() - 1]));
    }

    #[test]
    fn long_tokens_are_not_cached() {
        let mut cache = TokenCache::new(4);
        let long = "a".repeat(MAX_CACHED_TOKEN_LEN + 1);
        cache.insert(&long, principal(100), None, UnixTime(0));
        assert!(cache.is_empty());
        let longest = "a".repeat(MAX_CACHED_TOKEN_LEN);
        cache.insert(&longest, principal(100), None, UnixTime(0));
        assert!(cache.get(&longest, UnixTime(0)).is_some());
    }
}
