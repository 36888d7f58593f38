//! ES256 (ECDSA over P-256 with SHA-256) through p256 0.14, which is about 1.7x faster in
//! V8 than the 0.13 that jwt-compact pins.
//!
//! A signature check is one double scalar multiplication, u₁·G + u₂·Q. p256 computes it with
//! 256 shared doublings; a key that verified a signature and is used again (a JWKS key,
//! unlike the key a DPoP proof carries) gets tables of its multiples instead, `j·16ⁱ·Q` for every 4-bit
//! window `i` and `j` in 1..=8, as the generator does, so that a check is at most 130
//! additions and no doubling (measured in `docs/benchmarks.md`, "Signature verification in
//! V8"). Everything here handles public data (keys, signatures, digests), so it runs in
//! variable time, like p256's own verification.

use alloc::sync::Arc;
use alloc::vec::Vec;

use ecdsa::signature::hazmat::PrehashVerifier;
use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::BatchNormalize;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};

use super::key_tables::KeyTables;

/// 64 windows of 4 bits, and one for the carry that signed digits leave.
const WINDOWS: usize = 65;
/// The multiples per window: signed digits are in -8..=7, and `-d·P` is `d·P` negated.
const MULTIPLES: usize = 8;

/// A P-256 public key.
#[derive(Clone, Debug)]
pub(crate) struct P256Key {
    key: ecdsa::VerifyingKey<p256::NistP256>,
    tables: Arc<KeyTables<Multiples>>,
}

/// `j·16ⁱ·P` at `i·MULTIPLES + j - 1`, affine, for mixed additions.
#[derive(Debug)]
struct Multiples(Vec<AffinePoint>);

/// The generator's tables, for every key: built once, when the first key gets its own.
static GENERATOR: spin::Once<Multiples> = spin::Once::new();

impl P256Key {
    /// Reads the key from its affine coordinates (the JWK members `x` and `y`, decoded, 32
    /// bytes each); `None` when they are not a point of the curve.
    pub(crate) fn new(x: &[u8], y: &[u8]) -> Option<Self> {
        // From the coordinates, on the curve equation: not through SEC1 bytes, whose parser
        // also decompresses points and so links a field square root the filter never needs.
        let (x, y) = (FieldBytes::try_from(x).ok()?, FieldBytes::try_from(y).ok()?);
        let point = AffinePoint::from_coordinates(&x, &y);
        let key = ecdsa::VerifyingKey::from_affine(Option::from(point)?).ok()?;
        Some(Self {
            key,
            tables: Arc::default(),
        })
    }

    /// Whether `signature` (r ‖ s, 32 bytes each, as JWS encodes it) signs `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ecdsa::Signature::<p256::NistP256>::from_slice(signature) else {
            return false;
        };
        let digest = Sha256::digest(message);
        self.tables.check(
            || Multiples::of(ProjectivePoint::from(*self.key.as_affine())),
            |tables| match tables {
                Some(multiples) => verify_with(multiples, &digest, &signature),
                None => self.key.verify_prehash(&digest, &signature).is_ok(),
            },
        )
    }

    /// As [`P256Key::verify`] before the key verified a signature, without tables: for
    /// tests that compare both ways.
    #[cfg(test)]
    pub(crate) fn verify_without_tables(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ecdsa::Signature::<p256::NistP256>::from_slice(signature) else {
            return false;
        };
        self.key
            .verify_prehash(&Sha256::digest(message), &signature)
            .is_ok()
    }

    /// Makes every later check use the tables, as one valid signature does.
    #[cfg(test)]
    pub(crate) fn use_tables(&self) {
        self.tables.use_tables();
    }

    /// Whether later checks use the tables, and whether they are built.
    #[cfg(test)]
    pub(crate) fn tables_state(&self) -> (bool, bool) {
        self.tables.state()
    }
}

/// SEC 1 section 4.1.4 with both products read from tables: R = u₁·G + u₂·Q, valid when R
/// is not the identity and its x coordinate, reduced mod n, is r.
fn verify_with(
    key: &Multiples,
    digest: &[u8],
    signature: &ecdsa::Signature<p256::NistP256>,
) -> bool {
    let (r, s) = signature.split_scalars();
    // The digest is as long as n (256 bits), so it is only reduced, not truncated.
    let mut z = FieldBytes::default();
    z.copy_from_slice(digest);
    let z = <Scalar as Reduce<FieldBytes>>::reduce(&z);
    // s is not zero, so it has an inverse.
    let Some(s_inv) = Option::<Scalar>::from(s.invert_vartime()) else {
        return false;
    };
    let (u1, u2) = (z * s_inv, *r * s_inv);
    let generator = GENERATOR.call_once(|| Multiples::of(ProjectivePoint::GENERATOR));
    let mut sum = ProjectivePoint::IDENTITY;
    generator.add_multiple(&mut sum, &u1);
    key.add_multiple(&mut sum, &u2);
    if bool::from(sum.is_identity()) {
        return false;
    }
    let x = sum.to_affine().x();
    <Scalar as Reduce<FieldBytes>>::reduce(&x) == *r
}

impl Multiples {
    fn of(point: ProjectivePoint) -> Self {
        let mut projective = Vec::with_capacity(WINDOWS * MULTIPLES);
        let mut base = point;
        for _ in 0..WINDOWS {
            let mut multiple = base;
            projective.push(multiple);
            for _ in 1..MULTIPLES {
                multiple += base;
                projective.push(multiple);
            }
            for _ in 0..4 {
                base = base.double();
            }
        }
        // No multiple is the identity: j·16ⁱ (and j·2²⁵⁶ mod n) is never a multiple of
        // the prime n for j ≤ 8.
        Self(ProjectivePoint::batch_normalize(projective.as_slice()))
    }

    /// `sum += k·P`, one addition per non-zero signed digit of `k`.
    fn add_multiple(&self, sum: &mut ProjectivePoint, k: &Scalar) {
        for (window, digit) in signed_digits(&k.to_repr()).into_iter().enumerate() {
            let magnitude = usize::from(digit.unsigned_abs());
            if magnitude == 0 {
                continue;
            }
            let point = &self.0[window * MULTIPLES + magnitude - 1];
            if digit > 0 {
                *sum += point;
            } else {
                *sum -= point;
            }
        }
    }
}

/// The digits of a big-endian 256-bit scalar in base 16, least significant first, each in
/// -8..=7: `k = Σ dᵢ·16ⁱ`.
fn signed_digits(big_endian: &FieldBytes) -> [i8; WINDOWS] {
    let mut digits = [0i8; WINDOWS];
    let mut carry = 0i8;
    for (window, digit) in digits.iter_mut().take(WINDOWS - 1).enumerate() {
        let byte = big_endian[31 - window / 2];
        let nibble = if window % 2 == 0 {
            byte & 0x0f
        } else {
            byte >> 4
        };
        // At most 15 + 1: fits an i8.
        let value = nibble as i8 + carry;
        if value >= 8 {
            *digit = value - 16;
            carry = 1;
        } else {
            *digit = value;
            carry = 0;
        }
    }
    digits[WINDOWS - 1] = carry;
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::hex;

    fn scalar(bytes: [u8; 32]) -> Scalar {
        <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(bytes))
    }

    /// Only a point of the curve, each coordinate 32 bytes and below p: (5, y) is a point,
    /// and (5 + p, y), the same point with x not reduced, is refused.
    #[test]
    fn a_key_must_be_a_point_with_canonical_coordinates() {
        let x = hex("0000000000000000000000000000000000000000000000000000000000000005");
        let y = hex("459243b9aa581806fe913bce99817ade11ca503c64d9a3c533415c083248fbcc");
        let x_plus_p = hex("ffffffff00000001000000000000000000000001000000000000000000000004");
        assert!(P256Key::new(&x, &y).is_some());
        assert!(P256Key::new(&x_plus_p, &y).is_none());
        let mut off_curve = y.clone();
        off_curve[31] ^= 1;
        assert!(P256Key::new(&x, &off_curve).is_none());
        assert!(P256Key::new(&x[1..], &y).is_none());
        let mut longer = x.clone();
        longer.insert(0, 0);
        assert!(P256Key::new(&longer, &y).is_none());
        assert!(P256Key::new(&[0; 32], &[0; 32]).is_none());
    }

    #[test]
    fn signed_digits_sum_to_the_scalar() {
        for seed in [[0u8; 32], [0xff; 32], [0x88; 32], [0x7f; 32], {
            let mut b = [0u8; 32];
            b[0] = 0x80;
            b[31] = 8;
            b
        }] {
            let k = scalar(seed);
            let mut sum = Scalar::ZERO;
            let mut power = Scalar::ONE;
            for digit in signed_digits(&k.to_repr()) {
                let magnitude = Scalar::from(u64::from(digit.unsigned_abs()));
                if digit >= 0 {
                    sum += magnitude * power;
                } else {
                    sum -= magnitude * power;
                }
                power *= Scalar::from(16u64);
            }
            assert_eq!(sum, k, "{seed:?}");
            assert!(signed_digits(&k.to_repr())
                .iter()
                .all(|d| (-8..=7).contains(d)));
        }
    }

    #[test]
    fn the_tables_multiply_as_the_curve_does() {
        let tables = Multiples::of(ProjectivePoint::GENERATOR);
        for seed in [[1u8; 32], [0xff; 32], [0x80; 32], [0x08; 32]] {
            let k = scalar(seed);
            let mut sum = ProjectivePoint::IDENTITY;
            tables.add_multiple(&mut sum, &k);
            assert_eq!(sum, ProjectivePoint::GENERATOR * k, "{seed:?}");
        }
        let mut zero = ProjectivePoint::IDENTITY;
        tables.add_multiple(&mut zero, &Scalar::ZERO);
        assert!(bool::from(zero.is_identity()));
        assert!(!bool::from(tables.0[0].is_identity()));
    }
}
