//! ES256 (ECDSA over P-256 with SHA-256) through p256 0.14, which is about 1.7x faster in
//! V8 than the 0.13 that jwt-compact pins.

use ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

/// A P-256 public key.
#[derive(Clone, Debug)]
pub(crate) struct P256Key(ecdsa::VerifyingKey<p256::NistP256>);

impl P256Key {
    /// Reads the key from its affine coordinates (the JWK members `x` and `y`, decoded, 32
    /// bytes each); `None` when they are not a point of the curve.
    pub(crate) fn new(x: &[u8], y: &[u8]) -> Option<Self> {
        if x.len() != 32 || y.len() != 32 {
            return None;
        }
        let mut sec1 = [0u8; 65];
        sec1[0] = 4;
        sec1[1..33].copy_from_slice(x);
        sec1[33..].copy_from_slice(y);
        ecdsa::VerifyingKey::from_sec1_bytes(&sec1).ok().map(Self)
    }

    /// Whether `signature` (r ‖ s, 32 bytes each, as JWS encodes it) signs `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ecdsa::Signature::<p256::NistP256>::from_slice(signature) else {
            return false;
        };
        let digest = Sha256::digest(message);
        self.0.verify_prehash(&digest, &signature).is_ok()
    }
}
