//! What a gateway remembers of an accepted DPoP proof.

/// What identifies an accepted proof: a digest of its key's thumbprint and its `jti`, and
/// the last second its `iat` is accepted (after which a replay is stale anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofId {
    pub(crate) digest: u64,
    pub(crate) expires_at: u64,
    /// The proof's nonce is from the previous window: the answer hands out the current one
    /// (RFC 9449 §8.2), so a client that keeps the newest nonce it saw never needs a 401.
    pub(crate) nonce_stale: bool,
}

impl ProofId {
    /// A proof id of this digest, accepted until `expires_at`, for tests of replay caches.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn for_tests(digest: u64, expires_at: u64) -> Self {
        Self {
            digest,
            expires_at,
            nonce_stale: false,
        }
    }
}
