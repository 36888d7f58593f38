//! EdDSA (Ed25519, RFC 8032 section 5.1.7) verification over curve25519-dalek's points, with
//! the tables ES256's verifier uses.
//!
//! A check recomputes R as s·B − k·A (k = SHA-512(R ‖ A ‖ message) mod ℓ) and compares its
//! encoding with the signature's R, as ed25519-dalek's `verify` does (the same acceptance:
//! s must be canonical, A any point that decompresses; the Wycheproof vectors check both).
//! ed25519-dalek computes the sum with 253 shared doublings; a key that verifies more than
//! once (a JWKS key, unlike the key a DPoP proof carries) gets tables of its multiples
//! instead, `j·16ⁱ·(−A)` for every 4-bit window `i` and `j` in 1..=8, as the base point
//! does, so that a check is at most 128 additions and no doubling (measured in
//! `docs/benchmarks.md`, "Signature verification in V8"). Everything here handles public
//! data (keys, signatures, messages), so it runs in variable time, like ed25519-dalek's own
//! verification.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};

/// 64 windows of 4 bits: scalars are below ℓ < 2²⁵³, so the last signed digit (with the
/// carry) is at most 2.
const WINDOWS: usize = 64;
/// The multiples per window: signed digits are in -8..=7, and `-d·P` is `d·P` negated.
const MULTIPLES: usize = 8;

/// An Ed25519 public key.
#[derive(Clone, Debug)]
pub(crate) struct Ed25519Key {
    /// The key as the JWK encodes it (`x`): what the challenge hashes.
    encoded: [u8; 32],
    /// −A, so that the check is a sum.
    minus_a: EdwardsPoint,
    /// Shared by the key's clones, so that a clone does not build them again. A key read
    /// again (at every JWKS refresh, and by each worker) starts without them.
    tables: Arc<Lazy>,
}

/// The key's tables, built at its second verification.
#[derive(Debug, Default)]
struct Lazy {
    used: AtomicBool,
    multiples: spin::Once<Multiples>,
}

/// `j·16ⁱ·P` at `i·MULTIPLES + j - 1`.
#[derive(Debug)]
struct Multiples(Vec<EdwardsPoint>);

/// The base point's tables, for every key: built once, at the first key's second check.
static BASE_POINT: spin::Once<Multiples> = spin::Once::new();

impl Ed25519Key {
    /// Reads the key from its encoding (the JWK member `x`, decoded); `None` when it is
    /// not a point of the curve.
    pub(crate) fn new(encoded: [u8; 32]) -> Option<Self> {
        let point = CompressedEdwardsY(encoded).decompress()?;
        Some(Self {
            encoded,
            minus_a: -point,
            tables: Arc::default(),
        })
    }

    /// Whether `signature` (R ‖ s, 32 bytes each) signs `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some((r, s)) = signature.split_at_checked(32) else {
            return false;
        };
        let Ok(s) = <[u8; 32]>::try_from(s) else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
            return false;
        };
        let mut hash = Sha512::new();
        hash.update(r);
        hash.update(self.encoded);
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        // A key used once (a DPoP proof's) would pay more for its tables than it saves.
        let expected = if self.tables.used.swap(true, Ordering::Relaxed) {
            let key = (self.tables.multiples).call_once(|| Multiples::of(self.minus_a));
            let base = BASE_POINT.call_once(|| Multiples::of(ED25519_BASEPOINT_POINT));
            let mut sum = EdwardsPoint::identity();
            base.add_multiple(&mut sum, &s);
            key.add_multiple(&mut sum, &k);
            sum
        } else {
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &self.minus_a, &s)
        };
        expected.compress().as_bytes() == r
    }
}

impl Multiples {
    fn of(point: EdwardsPoint) -> Self {
        let mut multiples = Vec::with_capacity(WINDOWS * MULTIPLES);
        let mut base = point;
        for _ in 0..WINDOWS {
            let mut multiple = base;
            multiples.push(multiple);
            for _ in 1..MULTIPLES {
                multiple += base;
                multiples.push(multiple);
            }
            // 16·P = 8·P + 8·P: Edwards addition is complete, so it doubles too.
            base = multiple + multiple;
        }
        Self(multiples)
    }

    /// `sum += k·P`, one addition per non-zero signed digit of `k`.
    fn add_multiple(&self, sum: &mut EdwardsPoint, k: &Scalar) {
        for (window, digit) in signed_digits(k.as_bytes()).into_iter().enumerate() {
            let magnitude = usize::from(digit.unsigned_abs());
            let Some(point) = magnitude
                .checked_sub(1)
                .and_then(|j| self.0.get(window * MULTIPLES + j))
            else {
                continue;
            };
            if digit > 0 {
                *sum += point;
            } else {
                *sum -= point;
            }
        }
    }
}

/// The digits of a little-endian scalar below 2²⁵³ in base 16, least significant first, each
/// in -8..=7 but the last (at most 2): `k = Σ dᵢ·16ⁱ`.
fn signed_digits(little_endian: &[u8; 32]) -> [i8; WINDOWS] {
    let mut digits = [0i8; WINDOWS];
    let mut carry = 0i8;
    for (window, digit) in digits.iter_mut().enumerate() {
        let byte = little_endian[window / 2];
        let nibble = if window % 2 == 0 {
            byte & 0x0f
        } else {
            byte >> 4
        };
        // At most 15 + 1: fits an i8.
        let value = nibble as i8 + carry;
        if value >= 8 && window < WINDOWS - 1 {
            *digit = value - 16;
            carry = 1;
        } else {
            *digit = value;
            carry = 0;
        }
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(seed: [u8; 32]) -> Scalar {
        Scalar::from_bytes_mod_order(seed)
    }

    #[test]
    fn signed_digits_sum_to_the_scalar() {
        let minus_one = -Scalar::ONE;
        for k in [
            scalar([0; 32]),
            scalar([0xff; 32]),
            scalar([0x88; 32]),
            scalar([0x77; 32]),
            minus_one,
        ] {
            let mut sum = Scalar::ZERO;
            let mut power = Scalar::ONE;
            let digits = signed_digits(k.as_bytes());
            for digit in digits {
                let magnitude = Scalar::from(u64::from(digit.unsigned_abs()));
                if digit >= 0 {
                    sum += magnitude * power;
                } else {
                    sum -= magnitude * power;
                }
                power *= Scalar::from(16u64);
            }
            assert_eq!(sum, k);
            assert!(digits[..WINDOWS - 1].iter().all(|d| (-8..=7).contains(d)));
            assert!((0..=2).contains(&digits[WINDOWS - 1]));
        }
    }

    #[test]
    fn the_tables_multiply_as_the_curve_does() {
        let tables = Multiples::of(ED25519_BASEPOINT_POINT);
        for k in [
            scalar([1; 32]),
            scalar([0xff; 32]),
            scalar([0x80; 32]),
            -Scalar::ONE,
        ] {
            let mut sum = EdwardsPoint::identity();
            tables.add_multiple(&mut sum, &k);
            assert_eq!(sum, ED25519_BASEPOINT_POINT * k);
        }
        let mut zero = EdwardsPoint::identity();
        tables.add_multiple(&mut zero, &Scalar::ZERO);
        assert_eq!(zero, EdwardsPoint::identity());
    }

    /// RFC 8032 section 7.1, TEST 2: checked the first time (without tables) and after
    /// (with them), and refused with one bit of the message or signature changed.
    #[test]
    fn rfc_8032_test_2_verifies_with_and_without_tables() {
        let hex = |text: &str| -> Vec<u8> {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                .collect()
        };
        let public = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let signature = hex(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ));
        let message = [0x72];
        let key = Ed25519Key::new(public.try_into().unwrap()).unwrap();
        for _ in 0..3 {
            assert!(key.verify(&message, &signature));
            assert!(!key.verify(&[0x73], &signature));
            let mut forged = signature.clone();
            forged[5] ^= 1;
            assert!(!key.verify(&message, &forged));
            assert!(!key.verify(&message, &signature[..63]));
        }
        assert!(key.tables.multiples.is_completed());
    }
}
