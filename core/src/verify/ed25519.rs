//! EdDSA (Ed25519, RFC 8032 section 5.1.7) verification over curve25519-dalek's points, with
//! the tables ES256's verifier uses.
//!
//! A check recomputes R as s·B − k·A (k = SHA-512(R ‖ A ‖ message) mod ℓ) and compares its
//! encoding with the signature's R, as ed25519-dalek's `verify` does (the same acceptance:
//! s must be canonical, A any point that decompresses, of mixed order too; the tests compare
//! both ways and with ed25519-dalek on Wycheproof's vectors and on a key of mixed order),
//! except that a key of small order, for which anyone can sign, is refused when it is read.
//! ed25519-dalek computes the sum with 253 shared doublings; a key that verified a signature
//! and is used again (a JWKS key, unlike the key a DPoP proof carries) gets tables of its multiples
//! instead, `j·16ⁱ·(−A)` for every 4-bit window `i` and `j` in 1..=8, as the base point
//! does, so that a check is at most 128 additions and no doubling (measured in
//! `docs/benchmarks.md`, "Signature verification in V8"). Everything here handles public
//! data (keys, signatures, messages), so it runs in variable time, like ed25519-dalek's own
//! verification.

use alloc::sync::Arc;
use alloc::vec::Vec;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};

use super::key_tables::KeyTables;

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
    tables: Arc<KeyTables<Multiples>>,
}

/// Why an encoding is not an Ed25519 key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyRefused {
    NotAPoint,
    SmallOrder,
}

impl KeyRefused {
    /// What a JWKS or a DPoP proof says of the key.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::NotAPoint => "not a valid key: `x` is not an Ed25519 point",
            Self::SmallOrder => {
                "not a valid key: `x` is a point of small order, for which anyone can sign"
            }
        }
    }
}

/// `j·16ⁱ·P` at `i·MULTIPLES + j - 1`.
#[derive(Debug)]
struct Multiples(Vec<EdwardsPoint>);

/// The base point's tables, for every key: built once, when the first key gets its own.
static BASE_POINT: spin::Once<Multiples> = spin::Once::new();

impl Ed25519Key {
    /// Reads the key from its encoding (the JWK member `x`, decoded); refused when it is not
    /// a point of the curve, or is a point of small order (the identity and the other seven
    /// points whose 8th multiple is the identity): k·A then takes at most eight values
    /// whatever the message, so a signature can be made without any private key (with the
    /// identity, R = identity and s = 0 sign every message). No key generator makes one;
    /// Web Crypto's Ed25519 refuses them too, where ed25519-dalek's `verify` does not.
    pub(crate) fn new(encoded: [u8; 32]) -> Result<Self, KeyRefused> {
        let point = CompressedEdwardsY(encoded)
            .decompress()
            .ok_or(KeyRefused::NotAPoint)?;
        // 8·A is the identity just for these points. Computed as 8·A + 0·B by the
        // double-base multiplication that `check` links anyway: curve25519-dalek's own
        // `is_small_order` (three inlined doublings) made the filter 1.1 KB larger.
        let eight_a = EdwardsPoint::vartime_double_scalar_mul_basepoint(
            &Scalar::from(8u8),
            &point,
            &Scalar::ZERO,
        );
        if eight_a.compress() == CompressedEdwardsY::identity() {
            return Err(KeyRefused::SmallOrder);
        }
        Ok(Self {
            encoded,
            minus_a: -point,
            tables: Arc::default(),
        })
    }

    /// Whether `signature` (R ‖ s, 32 bytes each) signs `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.tables.check(
            || Multiples::of(self.minus_a),
            |tables| self.check(message, signature, tables),
        )
    }

    fn check(&self, message: &[u8], signature: &[u8], tables: Option<&Multiples>) -> bool {
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
        let expected = if let Some(key) = tables {
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

    /// As [`Ed25519Key::verify`] before the key verified a signature, without tables: for
    /// tests that compare both ways.
    #[cfg(test)]
    pub(crate) fn verify_without_tables(&self, message: &[u8], signature: &[u8]) -> bool {
        self.check(message, signature, None)
    }

    /// Makes every later check use the tables, as one valid signature does.
    #[cfg(test)]
    pub(crate) fn use_tables(&self) {
        self.tables.use_tables();
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
            debug_assert!(magnitude <= MULTIPLES, "signed digits are at most 8");
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
    use crate::verify::hex;

    /// The integer `Σ dᵢ·16ⁱ` as 64 nibbles, least significant first, exactly (no
    /// reduction mod ℓ): `None` if it does not fit 256 bits.
    fn nibbles_of(digits: &[i8; WINDOWS]) -> Option<[u8; WINDOWS]> {
        let mut nibbles = [0u8; WINDOWS];
        let mut carry = 0i16;
        for (nibble, digit) in nibbles.iter_mut().zip(digits) {
            let value = i16::from(*digit) + carry;
            *nibble = value.rem_euclid(16) as u8;
            carry = (value - value.rem_euclid(16)) / 16;
        }
        (carry == 0).then_some(nibbles)
    }

    fn nibbles(bytes: &[u8; 32]) -> [u8; WINDOWS] {
        core::array::from_fn(|i| (bytes[i / 2] >> (4 * (i % 2))) & 0x0f)
    }

    #[test]
    fn signed_digits_are_the_scalar_exactly() {
        let below = |fill: u8, top: u8| {
            let mut bytes = [fill; 32];
            bytes[31] = top;
            bytes
        };
        // Carries through every window, the largest values below 2²⁵³ and ℓ, zero, one.
        let inputs = [
            [0; 32],
            below(0, 0),
            {
                let mut one = [0; 32];
                one[0] = 1;
                one
            },
            below(0x88, 0x08),
            below(0x88, 0x18),
            below(0xff, 0x1f),
            below(0x77, 0x17),
            (-Scalar::ONE).to_bytes(),
            Scalar::from_bytes_mod_order([0xff; 32]).to_bytes(),
        ];
        for bytes in inputs {
            let digits = signed_digits(&bytes);
            assert_eq!(nibbles_of(&digits), Some(nibbles(&bytes)), "{bytes:02x?}");
            assert!(digits[..WINDOWS - 1].iter().all(|d| (-8..=7).contains(d)));
            assert!((0..=2).contains(&digits[WINDOWS - 1]), "{bytes:02x?}");
        }
    }

    #[test]
    fn the_tables_multiply_as_the_curve_does() {
        let mixed = mixed_order_point();
        for point in [ED25519_BASEPOINT_POINT, -ED25519_BASEPOINT_POINT, mixed] {
            let tables = Multiples::of(point);
            for k in [
                Scalar::from_bytes_mod_order([1; 32]),
                Scalar::from_bytes_mod_order([0xff; 32]),
                Scalar::from_bytes_mod_order([0x80; 32]),
                -Scalar::ONE,
                Scalar::ZERO,
            ] {
                let mut sum = EdwardsPoint::identity();
                tables.add_multiple(&mut sum, &k);
                // `Scalar * point` multiplies by the integer k, which is what matters for a
                // point with a torsion part.
                assert_eq!(sum, point * k);
            }
        }
    }

    /// 7·B plus a point of order 8: a key of mixed order.
    fn mixed_order_point() -> EdwardsPoint {
        let torsion = curve25519_dalek::constants::EIGHT_TORSION[1];
        ED25519_BASEPOINT_POINT * Scalar::from(7u64) + torsion
    }

    /// A key of mixed order (which RFC 8032 keys never are, and Wycheproof's are not):
    /// both ways agree with ed25519-dalek on signatures made to verify and on others.
    #[test]
    fn a_key_of_mixed_order_is_judged_as_ed25519_dalek_judges_it() {
        let encoded = mixed_order_point().compress().to_bytes();
        let key = Ed25519Key::new(encoded).unwrap();
        use ed25519_dalek::Verifier as _;
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&encoded).unwrap();
        key.use_tables();
        let mut accepted = 0;
        for seed in 0u8..=255 {
            let message = [seed; 7];
            // With R = r·B and s = r + 7k, s·B − k·A = R − k·T: it verifies when k is a
            // multiple of 8 (T's order), about one even seed in eight. Odd seeds take s at
            // random.
            let r_scalar = Scalar::from_bytes_mod_order([seed.wrapping_mul(31) | 1; 32]);
            let r = (ED25519_BASEPOINT_POINT * r_scalar).compress().to_bytes();
            let mut hash = Sha512::new();
            hash.update(r);
            hash.update(encoded);
            hash.update(message);
            let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
            let s = if seed % 2 == 0 {
                r_scalar + k * Scalar::from(7u64)
            } else {
                Scalar::from_bytes_mod_order([seed; 32])
            };
            let signature: Vec<u8> = r.iter().chain(s.as_bytes()).copied().collect();
            let by_dalek = dalek
                .verify(
                    &message,
                    &ed25519_dalek::Signature::from_slice(&signature).unwrap(),
                )
                .is_ok();
            assert_eq!(key.verify(&message, &signature), by_dalek, "seed {seed}");
            assert_eq!(
                key.verify_without_tables(&message, &signature),
                by_dalek,
                "seed {seed}"
            );
            accepted += usize::from(by_dalek);
        }
        assert!(accepted > 0 && accepted < 128, "{accepted}");
    }

    /// A key of small order signs for anyone: with the identity as A, R = identity and s = 0
    /// pass ed25519-dalek's `verify` for every message. All eight such points are refused as
    /// keys; a key of mixed order is not one of them.
    #[test]
    fn a_key_of_small_order_is_refused() {
        use ed25519_dalek::Verifier as _;
        let identity = EdwardsPoint::identity().compress().to_bytes();
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
        let forged: Vec<u8> = identity.iter().chain(&[0u8; 32]).copied().collect();
        let forged = ed25519_dalek::Signature::from_slice(&forged).unwrap();
        assert!(dalek.verify(b"any message", &forged).is_ok());
        // Refused as of small order exactly when curve25519-dalek's `is_small_order` says so:
        // the eight torsion points, and not the others.
        let torsion = curve25519_dalek::constants::EIGHT_TORSION;
        let others = [
            ED25519_BASEPOINT_POINT,
            mixed_order_point(),
            torsion[3] + torsion[6],
        ];
        for point in torsion.iter().chain(&others) {
            let refused = Ed25519Key::new(point.compress().to_bytes()).err();
            assert_eq!(
                refused == Some(KeyRefused::SmallOrder),
                point.is_small_order(),
                "{point:?}"
            );
        }
        assert!(Ed25519Key::new(mixed_order_point().compress().to_bytes()).is_ok());
    }

    /// RFC 8032 section 7.1, TEST 2: the first check without tables, every later one with
    /// them; refused with the message, a bit of R or of s changed, s + ℓ for s, or a byte
    /// short.
    #[test]
    fn rfc_8032_test_2_verifies_with_and_without_tables() {
        let public = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let signature = hex(concat!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ));
        let message = [0x72];
        let key = Ed25519Key::new(public.try_into().unwrap()).unwrap();
        // s + ℓ: the same point, but not canonical (ℓ little-endian).
        let order = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut s_plus_order = signature.clone();
        let mut carry = 0u16;
        for (byte, add) in s_plus_order[32..].iter_mut().zip(&order) {
            let sum = u16::from(*byte) + u16::from(*add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        let refused = |key: &Ed25519Key| {
            let mut bad_r = signature.clone();
            bad_r[5] ^= 1;
            let mut bad_s = signature.clone();
            bad_s[40] ^= 1;
            !key.verify(&[0x73], &signature)
                && !key.verify(&message, &bad_r)
                && !key.verify(&message, &bad_s)
                && !key.verify(&message, &s_plus_order)
                && !key.verify(&message, &signature[..63])
        };
        // Refusals build no tables; the first valid signature is checked without them.
        assert!(refused(&key));
        assert_eq!(key.tables.state(), (false, false));
        assert!(key.verify(&message, &signature));
        assert_eq!(key.tables.state(), (true, false));
        for _ in 0..2 {
            assert!(key.verify(&message, &signature));
            assert_eq!(key.tables.state(), (true, true));
            assert!(refused(&key));
        }
    }
}
