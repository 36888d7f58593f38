//! Server-provided DPoP nonces (RFC 9449 §9): with `dpop.nonce`, a proof must carry a
//! `nonce` the gateway issued lately, which bounds how long a proof made ahead of time (a
//! precomputed proof on a compromised client) stays usable to the nonce's lifetime.
//!
//! Nonces are stateless, so every worker and every restart agrees on them: the time window
//! and an HMAC-SHA256 of it under the policy's `dpop.nonce.secret`, base64url. A nonce is
//! accepted in its window and the next, so it lives one to two `lifetime_seconds`.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

/// The compiled `dpop.nonce` section.
#[derive(Clone, PartialEq, Eq)]
pub struct NonceRules {
    /// `None`: the secret is named in the environment and was not read; no nonce is then
    /// accepted (fail closed).
    pub(crate) secret: Option<Box<[u8]>>,
    pub(crate) lifetime: u64,
}

impl fmt::Debug for NonceRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceRules")
            .field("secret", &"(redacted)")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Which window a nonce the gateway accepts was issued in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceAge {
    /// This window: the nonce the gateway hands out now.
    Current,
    /// The previous one: accepted, and the answer hands out the current one (RFC 9449 §8.2).
    Previous,
}

/// Bytes of the HMAC kept in a nonce: 128 bits cannot be guessed.
const TAG_LEN: usize = 16;

impl NonceRules {
    /// The nonce to hand out at `now`.
    pub fn issue(&self, now: crate::time::UnixTime) -> String {
        self.nonce_of(now.0 / self.lifetime)
    }

    /// Is `nonce` the one handed out at `now` (not the previous window's)?
    pub fn is_current(&self, nonce: &str, now: crate::time::UnixTime) -> bool {
        self.age(nonce, now) == Some(NonceAge::Current)
    }

    /// Was `nonce` issued in this window or the previous one? Never, without a secret (an
    /// unread one, or a build without SHA-256): no nonce is made then, and none accepted.
    pub fn accepts(&self, nonce: &str, now: crate::time::UnixTime) -> bool {
        self.age(nonce, now).is_some()
    }

    /// Which window issued `nonce`, if it is accepted at `now` (see
    /// [`NonceRules::accepts`]); each window's HMAC is computed at most once.
    pub fn age(&self, nonce: &str, now: crate::time::UnixTime) -> Option<NonceAge> {
        if nonce.is_empty() {
            return None;
        }
        let window = now.0 / self.lifetime;
        let issued_in = |w: u64| constant_time_eq(nonce.as_bytes(), self.nonce_of(w).as_bytes());
        if issued_in(window) {
            Some(NonceAge::Current)
        } else if window > 0 && issued_in(window - 1) {
            Some(NonceAge::Previous)
        } else {
            None
        }
    }

    #[cfg(feature = "gateway")]
    fn nonce_of(&self, window: u64) -> String {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let mut message = [0u8; 28];
        message[..20].copy_from_slice(b"scopegate dpop nonce");
        message[20..].copy_from_slice(&window.to_be_bytes());
        let Some(secret) = &self.secret else {
            return String::new();
        };
        let tag = crate::hmac::hmac_sha256(secret, &[&message]);
        let mut bytes = [0u8; 8 + TAG_LEN];
        bytes[..8].copy_from_slice(&window.to_be_bytes());
        bytes[8..].copy_from_slice(&tag[..TAG_LEN]);
        Base64UrlUnpadded::encode_string(&bytes)
    }

    /// Without SHA-256 (the browser's build, which checks no proof) no nonce is valid.
    #[cfg(not(feature = "gateway"))]
    fn nonce_of(&self, _: u64) -> String {
        let _ = (&self.secret, TAG_LEN);
        String::new()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(all(test, feature = "gateway"))]
mod tests {
    use super::*;
    use crate::time::UnixTime;

    #[test]
    fn a_nonce_lives_its_window_and_the_next() {
        let rules = NonceRules {
            secret: Some(Box::from(&[7u8; 32][..])),
            lifetime: 60,
        };
        let nonce = rules.issue(UnixTime(600));
        assert_eq!(nonce.len(), 32);
        assert!(rules.accepts(&nonce, UnixTime(659)));
        assert!(rules.accepts(&nonce, UnixTime(719)));
        assert!(!rules.accepts(&nonce, UnixTime(720)));
        assert!(
            !rules.accepts(&nonce, UnixTime(599)),
            "not before it was issued"
        );
        let other = NonceRules {
            secret: Some(Box::from(&[8u8; 32][..])),
            lifetime: 60,
        };
        assert!(
            !other.accepts(&nonce, UnixTime(600)),
            "another secret's nonce"
        );
    }
}
