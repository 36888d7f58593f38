//! ES256 signing (ECDSA over P-256 with SHA-256) with the nonce of RFC 6979 section 3.2,
//! derived from the key and the digest with HMAC-SHA256: no random source is needed, and a
//! message signed twice gets the same signature.
//!
//! What is constant-time: p256's scalar arithmetic, `k·G` (`mul_by_generator`, a fixed
//! window with constant-time table look-ups) and the inversion of `k` (ecdsa's
//! `sign_prehashed`). What is not: the HMAC rounds, which run the same for every key, and
//! the retry when a candidate `k` is not below the group order (probability about 2⁻³²),
//! which shows only that a candidate was discarded.

use ecdsa::hazmat::sign_prehashed;
use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::ops::Reduce;
use p256::{FieldBytes, NonZeroScalar, Scalar};
use sha2::{Digest, Sha256};

use crate::hmac::hmac_sha256;

/// A P-256 private key: the scalar `d`, big-endian.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct P256Signer {
    d: [u8; 32],
}

impl P256Signer {
    /// `d` as 32 big-endian bytes, from 1 to n − 1; `None` otherwise.
    pub(crate) fn new(d: &[u8]) -> Option<Self> {
        let d: [u8; 32] = d.try_into().ok()?;
        Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(d.into()))?;
        Some(Self { d })
    }

    /// The JWS signature of `message` (r ‖ s, 32 bytes each).
    pub(crate) fn sign(&self, message: &[u8]) -> Option<[u8; 64]> {
        let d = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(self.d.into()))?;
        let digest = Sha256::digest(message);
        // bits2octets(h): the digest as an integer mod n (it is exactly 256 bits long).
        let mut z = FieldBytes::default();
        z.copy_from_slice(&digest);
        let h = <Scalar as Reduce<FieldBytes>>::reduce(&z).to_repr();
        let mut v = [1u8; 32];
        let mut k = [0u8; 32];
        for byte in [0u8, 1] {
            k = hmac_sha256(&k, &[&v, &[byte], &self.d, &h]);
            v = hmac_sha256(&k, &[&v]);
        }
        loop {
            // One HMAC output is as long as n: T = V, k = bits2int(T).
            v = hmac_sha256(&k, &[&v]);
            let candidate = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(v.into()));
            if let Some(nonce) = candidate {
                if let Ok((signature, _)) = sign_prehashed(&d, &nonce, &digest) {
                    return Some(signature.to_bytes().into());
                }
            }
            k = hmac_sha256(&k, &[&v, &[0]]);
            v = hmac_sha256(&k, &[&v]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::es256::P256Key;

    fn bytes(text: &str) -> [u8; 32] {
        crate::verify::hex(text).try_into().unwrap()
    }

    /// The public key of d = 1: the curve's generator.
    fn generator_key() -> P256Key {
        P256Key::new(
            &bytes("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"),
            &bytes("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5"),
        )
        .unwrap()
    }

    /// RFC 6979 appendix A.2.5: P-256, SHA-256, the messages "sample" and "test".
    #[test]
    fn signatures_are_rfc_6979s() {
        let signer = P256Signer::new(&bytes(
            "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
        ))
        .unwrap();
        let key = P256Key::new(
            &bytes("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"),
            &bytes("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"),
        )
        .unwrap();
        for (message, r, s) in [
            (
                "sample",
                "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
                "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
            ),
            (
                "test",
                "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
                "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
            ),
        ] {
            let signature = signer.sign(message.as_bytes()).unwrap();
            assert_eq!(signature[..32], bytes(r), "r of {message}");
            assert_eq!(signature[32..], bytes(s), "s of {message}");
            assert!(key.verify_without_tables(message.as_bytes(), &signature));
            assert!(!key.verify_without_tables(b"other", &signature));
        }
    }

    /// Refused signatures build no tables; the first valid one is checked without them,
    /// every later check with them, and they judge as the check without them does.
    #[test]
    fn a_key_builds_its_tables_only_after_a_signature_verified() {
        let mut one = [0u8; 32];
        one[31] = 7;
        let signer = P256Signer::new(&one).unwrap();
        let generator = generator_key();
        // Signatures of d = 7 under the key of d = 1: all refused.
        let signature = signer.sign(b"scopegate").unwrap();
        for _ in 0..3 {
            assert!(!generator.verify(b"scopegate", &signature));
        }
        assert_eq!(generator.tables_state(), (false, false));
        let valid = P256Signer::new(&{
            let mut d = [0u8; 32];
            d[31] = 1;
            d
        })
        .unwrap()
        .sign(b"scopegate")
        .unwrap();
        assert!(generator.verify(b"scopegate", &valid));
        assert_eq!(generator.tables_state(), (true, false));
        for _ in 0..2 {
            assert!(generator.verify(b"scopegate", &valid));
            assert!(!generator.verify(b"scopegate", &signature));
            assert!(!generator.verify(b"other", &valid));
        }
        assert_eq!(generator.tables_state(), (true, true));
    }

    #[test]
    fn a_key_is_a_scalar_below_the_order() {
        assert!(P256Signer::new(&[0; 32]).is_none());
        assert!(P256Signer::new(&[0xff; 32]).is_none());
        assert!(P256Signer::new(&[1; 31]).is_none());
        let mut one = [0u8; 32];
        one[31] = 1;
        let signer = P256Signer::new(&one).unwrap();
        // d = 1: the public key is the generator.
        let key = generator_key();
        let signature = signer.sign(b"scopegate").unwrap();
        assert!(key.verify_without_tables(b"scopegate", &signature));
        assert_eq!(signer.sign(b"scopegate"), Some(signature), "deterministic");
    }
}
