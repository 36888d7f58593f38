//! RSA signature verification (RFC 8017: RSASSA-PKCS1-v1_5 and RSASSA-PSS) for RS256–RS512
//! and PS256–PS512.
//!
//! Verification works on public data. What makes it fast in V8 is the representation:
//! 32-bit limbs (WebAssembly has a 64-bit multiply but no 64×64→128 one), Montgomery
//! constants computed once when the key is read, and for the usual e = 65537 sixteen
//! squarings and one multiplication.
//!
//! The Montgomery arithmetic is shared with RS256 signing (`sign/rs256.rs`), which runs it on
//! secret primes: a product, a square and the final subtraction of a reduction have no
//! branch or memory access that depends on the values. Reading a key (`Modulus::new`,
//! `less_than`) is not constant-time.

use alloc::vec;
use alloc::vec::Vec;

use sha2::{Digest, Sha256, Sha384, Sha512};

/// The smallest and largest modulus read, in bits: smaller keys are forgeable, and the cost
/// of a verification grows with the square of the size, so a JWKS cannot make each request
/// arbitrarily expensive.
pub(crate) const MIN_BITS: usize = 2048;
pub(crate) const MAX_BITS: usize = 4096;

/// The largest public exponent read (as the `rsa` crate does): it bounds the multiplications.
const MAX_EXPONENT: u64 = (1 << 33) - 1;

/// The hash of a JWS RSA algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(message).to_vec(),
            Self::Sha384 => Sha384::digest(message).to_vec(),
            Self::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    fn digest_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            hasher.finalize().to_vec()
        }
        match self {
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha384 => run::<Sha384>(parts),
            Self::Sha512 => run::<Sha512>(parts),
        }
    }

    const fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The DER `DigestInfo` prefix of EMSA-PKCS1-v1_5 (RFC 8017 section 9.2, note 1).
    const fn digest_info(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// An odd modulus with its Montgomery constants.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Modulus {
    /// The modulus, little-endian 32-bit limbs.
    pub(crate) n: Vec<u32>,
    /// −n⁻¹ mod 2³².
    n_inv: u32,
    /// R² mod n, R = 2^(32·limbs): multiplying by it enters the Montgomery domain.
    pub(crate) r_squared: Vec<u32>,
}

impl Modulus {
    /// The constants of `n`, odd.
    pub(crate) fn new(n: Vec<u32>) -> Self {
        // Newton's iteration doubles the correct low bits each step: 1 → 2 → … → 32.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        let mut modulus = Self {
            n_inv: inv.wrapping_neg(),
            r_squared: Vec::new(),
            n,
        };
        modulus.r_squared = r_squared(&modulus);
        modulus
    }
}

/// An RSA public key with its Montgomery constants, ready to verify.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaKey {
    modulus: Modulus,
    e: u64,
    /// The modulus size in bits and bytes (k in RFC 8017).
    bits: usize,
    len: usize,
}

impl core::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RsaKey({} bits, e = {})", self.bits, self.e)
    }
}

/// Why an RSA public key cannot be used; the message completes "the key is refused: …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyError {
    TooSmall(usize),
    TooLarge(usize),
    EvenModulus,
    Exponent,
}

impl core::fmt::Display for KeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooSmall(bits) => write!(
                f,
                "RSA modulus has {bits} bits; at least {MIN_BITS} are required"
            ),
            Self::TooLarge(bits) => write!(
                f,
                "RSA modulus has {bits} bits; at most {MAX_BITS} are supported"
            ),
            Self::EvenModulus => f.write_str("RSA modulus is even"),
            Self::Exponent => write!(
                f,
                "RSA exponent `e` is not an odd number from 3 to {MAX_EXPONENT}"
            ),
        }
    }
}

impl RsaKey {
    /// Reads a public key from the big-endian bytes of its modulus and exponent (the JWK
    /// members `n` and `e`, decoded).
    pub(crate) fn new(modulus: &[u8], exponent: &[u8]) -> Result<Self, KeyError> {
        let modulus = trim(modulus);
        let bits = bit_len(modulus);
        if bits < MIN_BITS {
            return Err(KeyError::TooSmall(bits));
        }
        if bits > MAX_BITS {
            return Err(KeyError::TooLarge(bits));
        }
        let exponent = trim(exponent);
        if exponent.len() > 8 {
            return Err(KeyError::Exponent);
        }
        let e = exponent.iter().fold(0u64, |e, b| (e << 8) | u64::from(*b));
        if !(3..=MAX_EXPONENT).contains(&e) || e % 2 == 0 {
            return Err(KeyError::Exponent);
        }
        let n = limbs(modulus, modulus.len().div_ceil(4));
        if n[0] % 2 == 0 {
            return Err(KeyError::EvenModulus);
        }
        Ok(Self {
            modulus: Modulus::new(n),
            e,
            bits,
            len: modulus.len(),
        })
    }

    /// The modulus's length in bytes (k in RFC 8017).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// s^e mod n as k big-endian bytes, or `None` when the signature is not k bytes or not
    /// below the modulus (RFC 8017 sections 8.2.2 step 1 and 5.2.2 step 1).
    fn public_operation(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.len {
            return None;
        }
        let n = &self.modulus;
        let s = limbs(signature, n.n.len());
        if !less_than(&s, &n.n) {
            return None;
        }
        let mut arithmetic = Montgomery::new(n);
        let mut base = s;
        arithmetic.mul(&mut base, &n.r_squared);
        let mut acc = base.clone();
        for bit in (0..63 - self.e.leading_zeros()).rev() {
            arithmetic.square(&mut acc);
            if self.e >> bit & 1 == 1 {
                arithmetic.mul(&mut acc, &base);
            }
        }
        arithmetic.leave(&mut acc);
        Some(to_bytes(&acc, self.len))
    }

    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 section 8.2.2): the signature opened with
    /// the public key must be exactly the encoding of the message's digest.
    pub(crate) fn verify_pkcs1v15(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(encoded) = self.public_operation(signature) else {
            return false;
        };
        encode_pkcs1v15(hash, message, self.len).is_some_and(|expected| encoded == expected)
    }

    /// RSASSA-PSS verification (RFC 8017 section 8.1.2) with MGF1 over the same hash and a
    /// salt as long as the digest, as JWS requires (RFC 7518 section 3.5).
    pub(crate) fn verify_pss(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(opened) = self.public_operation(signature) else {
            return false;
        };
        let em_bits = self.bits - 1;
        let em_len = em_bits.div_ceil(8);
        // EM is the last em_len bytes; when emBits is a multiple of 8 the first byte is extra
        // and must be zero (RFC 8017 section 8.1.2 step 2c, I2OSP to emLen octets).
        let (extra, encoded) = opened.split_at(self.len - em_len);
        if extra.iter().any(|b| *b != 0) {
            return false;
        }
        let h_len = hash.len();
        let salt_len = h_len;
        if em_len < h_len + salt_len + 2 || encoded[em_len - 1] != 0xbc {
            return false;
        }
        let (masked_db, rest) = encoded.split_at(em_len - h_len - 1);
        let digest = &rest[..h_len];
        let unused_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8 >> unused_bits;
        if masked_db[0] & !top_mask != 0 {
            return false;
        }
        let mut db = masked_db.to_vec();
        mgf1_xor(hash, digest, &mut db);
        db[0] &= top_mask;
        let padding = em_len - h_len - salt_len - 2;
        if db[..padding].iter().any(|b| *b != 0) || db[padding] != 1 {
            return false;
        }
        let salt = &db[padding + 1..];
        let message_digest = hash.digest(message);
        hash.digest_parts(&[&[0u8; 8], &message_digest, salt]) == digest
    }
}

/// EMSA-PKCS1-v1_5 (RFC 8017 section 9.2): `message`'s digest in a `len`-byte block,
/// `00 01 ff … ff 00 DigestInfo H`, with at least eight bytes of padding.
pub(crate) fn encode_pkcs1v15(hash: Hash, message: &[u8], len: usize) -> Option<Vec<u8>> {
    let info = hash.digest_info();
    let tail = info.len() + hash.len();
    if len < tail + 11 {
        return None;
    }
    let mut encoded = vec![0xffu8; len];
    encoded[0] = 0;
    encoded[1] = 1;
    encoded[len - tail - 1] = 0;
    encoded[len - tail..len - hash.len()].copy_from_slice(info);
    encoded[len - hash.len()..].copy_from_slice(&hash.digest(message));
    Some(encoded)
}

/// MGF1 (RFC 8017 appendix B.2.1) XORed into `data`.
fn mgf1_xor(hash: Hash, seed: &[u8], data: &mut [u8]) {
    for (counter, chunk) in data.chunks_mut(hash.len()).enumerate() {
        let block = hash.digest_parts(&[seed, &(counter as u32).to_be_bytes()]);
        for (byte, mask) in chunk.iter_mut().zip(block) {
            *byte ^= mask;
        }
    }
}

/// Montgomery arithmetic modulo one modulus: a product (or a square, with half the limb
/// multiplications) into a double-width scratch, then word-by-word reduction.
pub(crate) struct Montgomery<'a> {
    modulus: &'a Modulus,
    /// 2·limbs + 1 limbs.
    scratch: Vec<u32>,
}

impl<'a> Montgomery<'a> {
    pub(crate) fn new(modulus: &'a Modulus) -> Self {
        Self {
            modulus,
            scratch: vec![0; 2 * modulus.n.len() + 1],
        }
    }

    /// x ← x·R⁻¹ mod n: out of the Montgomery domain.
    pub(crate) fn leave(&mut self, x: &mut [u32]) {
        let mut one = vec![0u32; x.len()];
        one[0] = 1;
        self.mul(x, &one);
    }

    /// x ← x·y·R⁻¹ mod n, for x, y < n.
    pub(crate) fn mul(&mut self, x: &mut [u32], y: &[u32]) {
        let t = &mut self.scratch;
        t.fill(0);
        let k = x.len();
        for (i, &y_i) in y.iter().enumerate() {
            let y_i = u64::from(y_i);
            let mut carry = 0u64;
            for (t_j, &x_j) in t[i..i + k].iter_mut().zip(&*x) {
                let sum = u64::from(*t_j) + u64::from(x_j) * y_i + carry;
                *t_j = sum as u32;
                carry = sum >> 32;
            }
            t[i + k] = carry as u32;
        }
        self.reduce_into(x);
    }

    /// x ← x²·R⁻¹ mod n, for x < n: each cross product once, doubled, plus the diagonal.
    pub(crate) fn square(&mut self, x: &mut [u32]) {
        let t = &mut self.scratch;
        t.fill(0);
        let k = x.len();
        for i in 0..k {
            let x_i = u64::from(x[i]);
            let mut carry = 0u64;
            for (t_j, &x_j) in t[2 * i + 1..i + k].iter_mut().zip(&x[i + 1..]) {
                let sum = u64::from(*t_j) + u64::from(x_j) * x_i + carry;
                *t_j = sum as u32;
                carry = sum >> 32;
            }
            t[i + k] = carry as u32;
        }
        let mut high_bit = 0u32;
        for limb in t[..2 * k].iter_mut() {
            let next = *limb >> 31;
            *limb = (*limb << 1) | high_bit;
            high_bit = next;
        }
        let mut carry = 0u64;
        for (pair, &x_i) in t.chunks_exact_mut(2).zip(&*x) {
            let square = u64::from(x_i) * u64::from(x_i);
            let low = u64::from(pair[0]) + (square & 0xffff_ffff) + carry;
            pair[0] = low as u32;
            let high = u64::from(pair[1]) + (square >> 32) + (low >> 32);
            pair[1] = high as u32;
            carry = high >> 32;
        }
        self.reduce_into(x);
    }

    /// out ← scratch·R⁻¹ mod n, for scratch < n·R (REDC one limb at a time).
    fn reduce_into(&mut self, out: &mut [u32]) {
        let n = &self.modulus.n;
        let k = n.len();
        let t = &mut self.scratch;
        let mut overflow = 0u64;
        for i in 0..k {
            let m = u64::from(t[i].wrapping_mul(self.modulus.n_inv));
            let mut carry = 0u64;
            for (t_j, &n_j) in t[i..i + k].iter_mut().zip(n) {
                let sum = u64::from(*t_j) + m * u64::from(n_j) + carry;
                *t_j = sum as u32;
                carry = sum >> 32;
            }
            let sum = u64::from(t[i + k]) + carry + overflow;
            t[i + k] = sum as u32;
            overflow = sum >> 32;
        }
        out.copy_from_slice(&t[k..2 * k]);
        subtract_unless_below(out, n, overflow as u32);
    }
}

/// a ← a − n when a ≥ n or `carry` (a bit above a's top limb) is 1, else a unchanged: two
/// passes over every limb, the second subtracting n or 0 by a mask, without a branch.
pub(crate) fn subtract_unless_below(a: &mut [u32], n: &[u32], carry: u32) {
    let mut borrow = 0u32;
    for (&x, &y) in a.iter().zip(n) {
        let (d, b1) = x.overflowing_sub(y);
        let (_, b2) = d.overflowing_sub(borrow);
        borrow = u32::from(b1 | b2);
    }
    let mask = 0u32.wrapping_sub(carry | (borrow ^ 1));
    borrow = 0;
    for (x, &y) in a.iter_mut().zip(n) {
        let (d, b1) = x.overflowing_sub(y & mask);
        let (d, b2) = d.overflowing_sub(borrow);
        *x = d;
        borrow = u32::from(b1 | b2);
    }
}

/// R² mod n, R = 2^(32·limbs), once per key (a DPoP proof's key: once per request). With
/// 32·limbs = t·2^s, t odd: 2^(bits−1), below n, doubled modulo n up to 2^t·R (at most
/// 32 + t doublings), which is 2^t in Montgomery form; s Montgomery squarings keep the form
/// and give 2^(t·2^s) = R in it, that is R·R mod n. Doubling all the way from 1 took
/// 64·limbs doublings, about twice a signature check.
fn r_squared(modulus: &Modulus) -> Vec<u32> {
    let n = &modulus.n;
    let total = 32 * n.len();
    let bits = total - n.last().map_or(32, |top| top.leading_zeros() as usize);
    let (s, t) = (total.trailing_zeros(), total >> total.trailing_zeros());
    let mut value = vec![0u32; n.len()];
    value[(bits - 1) / 32] = 1 << ((bits - 1) % 32);
    for _ in 0..(total - (bits - 1) + t) {
        double_modulo(&mut value, n);
    }
    let mut montgomery = Montgomery::new(modulus);
    for _ in 0..s {
        montgomery.square(&mut value);
    }
    value
}

/// value ← 2·value mod n, for value < n.
fn double_modulo(value: &mut [u32], n: &[u32]) {
    let mut carry = 0u32;
    for limb in value.iter_mut() {
        let next = *limb >> 31;
        *limb = (*limb << 1) | carry;
        carry = next;
    }
    if carry != 0 || !less_than(value, n) {
        subtract(value, n);
    }
}

/// a < b for little-endian limbs of equal length.
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// a −= b, wrapping (the caller knows the true result is below 2^(32·limbs)).
fn subtract(a: &mut [u32], b: &[u32]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d, b1) = x.overflowing_sub(y);
        let (d, b2) = d.overflowing_sub(u32::from(borrow));
        *x = d;
        borrow = b1 || b2;
    }
}

pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_len(trimmed: &[u8]) -> usize {
    match trimmed.first() {
        Some(top) => trimmed.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// Little-endian limbs as `len` big-endian bytes (the value fits).
pub(crate) fn to_bytes(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    for (i, byte) in bytes.iter_mut().rev().enumerate() {
        *byte = (limbs.get(i / 4).copied().unwrap_or(0) >> (8 * (i % 4))) as u8;
    }
    bytes
}

/// Big-endian bytes as `count` little-endian limbs (the bytes fit: callers check lengths).
pub(crate) fn limbs(bytes: &[u8], count: usize) -> Vec<u32> {
    let mut out = vec![0u32; count];
    for (i, byte) in bytes.iter().rev().enumerate() {
        if let Some(limb) = out.get_mut(i / 4) {
            *limb |= u32::from(*byte) << (8 * (i % 4));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A modulus of exactly `bits` bits: its top byte all ones down to that bit count, then
    /// 0x5a bytes, the last one `last` (odd or even).
    fn modulus(bits: usize, last: u8) -> Vec<u8> {
        let mut n = alloc::vec![0x5a; bits.div_ceil(8)];
        n[0] = 0xff >> ((8 - bits % 8) % 8);
        if let Some(byte) = n.last_mut() {
            *byte = last;
        }
        n
    }

    const F4: [u8; 3] = [1, 0, 1];

    #[test]
    fn a_key_that_makes_forging_easy_or_verifying_slow_is_refused() {
        let n = modulus(2048, 0x5b);
        assert!(RsaKey::new(&n, &F4).is_ok());
        // e = 1 makes every message its own signature; 0 and even exponents are no RSA.
        for e in [
            &[][..],
            &[0],
            &[1],
            &[2],
            &[0, 0, 1],
            &[1, 0, 0],
            &[0, 1, 0, 0],
        ] {
            assert_eq!(
                RsaKey::new(&n, e).err(),
                Some(KeyError::Exponent),
                "e = {e:?}"
            );
        }
        // Odd, from 3 to 2^33 - 1, leading zero bytes ignored.
        assert!(RsaKey::new(&n, &[3]).is_ok());
        assert!(RsaKey::new(&n, &[0, 0, 3]).is_ok());
        assert!(RsaKey::new(&n, &[1, 0xff, 0xff, 0xff, 0xff]).is_ok());
        assert_eq!(
            RsaKey::new(&n, &[2, 0, 0, 0, 1]).err(),
            Some(KeyError::Exponent)
        );
        assert_eq!(RsaKey::new(&n, &[1; 9]).err(), Some(KeyError::Exponent));
        // An even modulus has no Montgomery form (and is no RSA modulus).
        assert_eq!(
            RsaKey::new(&modulus(2048, 0x5a), &F4).err(),
            Some(KeyError::EvenModulus)
        );
        // Sizes, counted without leading zero bytes.
        assert_eq!(
            RsaKey::new(&modulus(2047, 0x5b), &F4).err(),
            Some(KeyError::TooSmall(2047))
        );
        let mut padded = alloc::vec![0; 4];
        padded.extend(modulus(2047, 0x5b));
        assert_eq!(
            RsaKey::new(&padded, &F4).err(),
            Some(KeyError::TooSmall(2047))
        );
        assert!(RsaKey::new(&modulus(4096, 0x5b), &F4).is_ok());
        assert_eq!(
            RsaKey::new(&modulus(4097, 0x5b), &F4).err(),
            Some(KeyError::TooLarge(4097))
        );
        for empty in [&[][..], &[0, 0]] {
            assert_eq!(RsaKey::new(empty, &F4).err(), Some(KeyError::TooSmall(0)));
        }
    }

    /// R² mod n as it was computed before: 1 doubled modulo n 64·limbs times.
    fn r_squared_by_doubling(n: &[u32]) -> Vec<u32> {
        let mut value = alloc::vec![0u32; n.len()];
        value[0] = 1;
        for _ in 0..64 * n.len() {
            double_modulo(&mut value, n);
        }
        value
    }

    #[test]
    fn r_squared_is_what_doubling_gives_for_every_size() {
        // Odd moduli of every bit count a key may have at its edges and a few between, the
        // limbs from a fixed generator (limb counts 64 = 2^6, 65, 96 = 3·2^5, 127, 128).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u32
        };
        for bits in [
            2048usize, 2049, 2050, 2080, 2081, 3071, 3072, 3073, 4064, 4095, 4096,
        ] {
            let limbs = bits.div_ceil(32);
            let mut n: Vec<u32> = (0..limbs).map(|_| next()).collect();
            n[0] |= 1;
            let top_bits = bits - 32 * (limbs - 1);
            n[limbs - 1] = (n[limbs - 1] >> (32 - top_bits)) | (1 << (top_bits - 1));
            let modulus = Modulus::new(n.clone());
            assert_eq!(modulus.r_squared, r_squared_by_doubling(&n), "{bits} bits");
        }
    }

    #[test]
    fn a_signature_of_another_length_or_not_below_the_modulus_is_refused() {
        let n = modulus(2049, 0x5b);
        let key = RsaKey::new(&n, &F4).unwrap();
        assert_eq!(key.len(), 257);
        let digest = [0u8; 32];
        for signature in [
            alloc::vec![],
            alloc::vec![1; 256],
            alloc::vec![1; 258],
            n.clone(),
        ] {
            assert!(!key.verify_pkcs1v15(Hash::Sha256, &digest, &signature));
        }
    }
}
