//! RS256 signing (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 section 8.2.1) with the
//! Chinese remainder theorem, on the core's Montgomery arithmetic (`verify/rsa.rs`).
//!
//! m^d mod n is computed as m^dp mod p and m^dq mod q, recombined with qi (Garner), then
//! checked with the public key before it is used, so that a fault in either half cannot
//! publish a signature that reveals a factor of n.
//!
//! What is constant-time: the exponentiations (a fixed 4-bit window over every bit of the
//! exponent's limbs, its table entry selected by a mask over all sixteen), the Montgomery
//! products and reductions, the reduction of the message mod p and q, and the
//! recombination. What is not: reading the key (once, when the policy is read), the number of
//! limbs of p and q (public: half the modulus), and allocation.

use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;

use crate::verify::rsa::{
    encode_pkcs1v15, limbs, subtract_unless_below, to_bytes, trim, Hash, Modulus, Montgomery,
    RsaKey,
};

/// An RSA private key in CRT form with its public key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaSigner {
    public: RsaKey,
    p: Modulus,
    q: Modulus,
    /// d mod (p − 1) and d mod (q − 1), as many limbs as p and q.
    dp: Vec<u32>,
    dq: Vec<u32>,
    /// q⁻¹ mod p, times R mod p (in p's Montgomery domain).
    qi: Vec<u32>,
}

/// The JWK members of an RSA private key, decoded (big-endian).
pub(crate) struct RsaPrivateParts<'a> {
    pub(crate) n: &'a [u8],
    pub(crate) e: &'a [u8],
    pub(crate) p: &'a [u8],
    pub(crate) q: &'a [u8],
    pub(crate) dp: &'a [u8],
    pub(crate) dq: &'a [u8],
    pub(crate) qi: &'a [u8],
}

impl RsaSigner {
    /// The key, checked by signing once and verifying with `n` and `e`; the reason
    /// otherwise, which completes "`private_key` …" and never shows the key.
    pub(crate) fn new(parts: &RsaPrivateParts<'_>) -> Result<Self, Cow<'static, str>> {
        use alloc::string::ToString;
        let public = RsaKey::new(parts.n, parts.e).map_err(|e| Cow::Owned(e.to_string()))?;
        let prime = |bytes: &[u8]| {
            let bytes = trim(bytes);
            let n = limbs(bytes, bytes.len().div_ceil(4));
            (n.len() >= 2 && n[0] % 2 == 1).then(|| Modulus::new(n))
        };
        let (Some(p), Some(q)) = (prime(parts.p), prime(parts.q)) else {
            return Err("has a `p` or `q` that is not an odd prime of the modulus".into());
        };
        let exponent = |bytes: &[u8], m: &Modulus| {
            let bytes = trim(bytes);
            (bytes.len() <= 4 * m.n.len()).then(|| limbs(bytes, m.n.len()))
        };
        let (Some(dp), Some(dq)) = (exponent(parts.dp, &p), exponent(parts.dq, &q)) else {
            return Err("has a `dp` or `dq` longer than its prime".into());
        };
        let qi = trim(parts.qi);
        let mut qi = reduce(&limbs(qi, qi.len().div_ceil(4)), &p);
        Montgomery::new(&p).mul(&mut qi, &p.r_squared);
        let signer = Self {
            public,
            p,
            q,
            dp,
            dq,
            qi,
        };
        signer
            .sign(b"scopegate: does the private key match its public key?")
            .map(|_| signer)
            .ok_or_else(|| "has `p`, `q`, `dp`, `dq` or `qi` that do not match `n` and `e`".into())
    }

    /// The RS256 signature of `message`, k bytes; `None` if it does not verify (a wrong
    /// key, or a fault).
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let len = self.public.len();
        let encoded = encode_pkcs1v15(Hash::Sha256, message, len)?;
        let m = limbs(&encoded, len.div_ceil(4));
        let m1 = power(&reduce(&m, &self.p), &self.dp, &self.p);
        let m2 = power(&reduce(&m, &self.q), &self.dq, &self.q);
        // h = qi·(m1 − m2) mod p; m2 < q may exceed p, so it is reduced mod p first.
        let mut h = reduce(&m2, &self.p);
        negate_mod(&mut h, &self.p.n);
        add_mod(&mut h, &m1, &self.p.n);
        Montgomery::new(&self.p).mul(&mut h, &self.qi);
        // s = m2 + h·q < p·q.
        let q = &self.q.n;
        let mut s = vec![0u32; h.len() + q.len()];
        s[..m2.len()].copy_from_slice(&m2);
        for (i, &h_i) in h.iter().enumerate() {
            let mut carry = 0u64;
            for (s_j, &q_j) in s[i..i + q.len()].iter_mut().zip(q) {
                let sum = u64::from(*s_j) + u64::from(h_i) * u64::from(q_j) + carry;
                *s_j = sum as u32;
                carry = sum >> 32;
            }
            s[i + q.len()] = carry as u32;
        }
        let signature = to_bytes(&s, len);
        self.public
            .verify_pkcs1v15(Hash::Sha256, message, &signature)
            .then_some(signature)
    }
}

/// x mod m, for x of any length, one bit at a time from the top: doubled, the bit added,
/// m subtracted when the result is not below it.
fn reduce(x: &[u32], m: &Modulus) -> Vec<u32> {
    let mut acc = vec![0u32; m.n.len()];
    for bit in (0..32 * x.len()).rev() {
        let mut carry = (x[bit / 32] >> (bit % 32)) & 1;
        for limb in acc.iter_mut() {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        subtract_unless_below(&mut acc, &m.n, carry);
    }
    acc
}

/// base^exponent mod m, for base < m, with a fixed 4-bit window.
fn power(base: &[u32], exponent: &[u32], m: &Modulus) -> Vec<u32> {
    let k = m.n.len();
    let mut arithmetic = Montgomery::new(m);
    // table[j] = base^j·R mod m.
    let mut one = vec![0u32; k];
    one[0] = 1;
    arithmetic.mul(&mut one, &m.r_squared);
    let mut base = base.to_vec();
    arithmetic.mul(&mut base, &m.r_squared);
    let mut table = one.clone();
    for j in 1..16 {
        let mut next = table[(j - 1) * k..j * k].to_vec();
        arithmetic.mul(&mut next, &base);
        table.extend_from_slice(&next);
    }
    let mut acc = one;
    let mut entry = vec![0u32; k];
    for window in (0..8 * exponent.len()).rev() {
        for _ in 0..4 {
            arithmetic.square(&mut acc);
        }
        let digit = (exponent[window / 8] >> (4 * (window % 8))) & 15;
        for (j, row) in table.chunks_exact(k).enumerate() {
            let mask = 0u32.wrapping_sub(u32::from(j as u32 == digit));
            for (e, &r) in entry.iter_mut().zip(row) {
                *e = (*e & !mask) | (r & mask);
            }
        }
        arithmetic.mul(&mut acc, &entry);
    }
    arithmetic.leave(&mut acc);
    acc
}

/// x ← (n − x) mod n, for x < n.
fn negate_mod(x: &mut [u32], n: &[u32]) {
    let mut borrow = 0u32;
    for (x_i, &n_i) in x.iter_mut().zip(n) {
        let (d, b1) = n_i.overflowing_sub(*x_i);
        let (d, b2) = d.overflowing_sub(borrow);
        *x_i = d;
        borrow = u32::from(b1 | b2);
    }
    // n − 0 = n: brought back to 0.
    subtract_unless_below(x, n, 0);
}

/// x ← (x + y) mod n, for x, y < n.
fn add_mod(x: &mut [u32], y: &[u32], n: &[u32]) {
    let mut carry = 0u64;
    for (x_i, &y_i) in x.iter_mut().zip(y) {
        let sum = u64::from(*x_i) + u64::from(y_i) + carry;
        *x_i = sum as u32;
        carry = sum >> 32;
    }
    subtract_unless_below(x, n, carry as u32);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64ct::{Base64UrlUnpadded, Encoding};

    /// RFC 7515 appendix A.2: the example RS256 key and JWS.
    pub(crate) const N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    pub(crate) const P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
    pub(crate) const Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
    pub(crate) const DP: &str = "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0";
    pub(crate) const DQ: &str = "h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU";
    pub(crate) const QI: &str = "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U";
    const INPUT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    const SIGNATURE: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

    fn decode(text: &str) -> Vec<u8> {
        Base64UrlUnpadded::decode_vec(text).unwrap()
    }

    fn signer(
        p: &str,
        q: &str,
        dp: &str,
        dq: &str,
        qi: &str,
    ) -> Result<RsaSigner, Cow<'static, str>> {
        let (n, e, p, q, dp, dq, qi) = (
            decode(N),
            decode("AQAB"),
            decode(p),
            decode(q),
            decode(dp),
            decode(dq),
            decode(qi),
        );
        RsaSigner::new(&RsaPrivateParts {
            n: &n,
            e: &e,
            p: &p,
            q: &q,
            dp: &dp,
            dq: &dq,
            qi: &qi,
        })
    }

    #[test]
    fn the_signature_is_rfc_7515s() {
        let key = signer(P, Q, DP, DQ, QI).unwrap();
        let signature = key.sign(INPUT.as_bytes()).unwrap();
        assert_eq!(Base64UrlUnpadded::encode_string(&signature), SIGNATURE);
        assert!(key
            .public
            .verify_pkcs1v15(Hash::Sha256, INPUT.as_bytes(), &signature));
        // p and q the other way round (qi is then p⁻¹ mod q, which the check refuses).
        assert!(signer(Q, P, DQ, DP, QI).is_err());
    }

    #[test]
    fn a_key_that_does_not_match_its_modulus_is_refused() {
        let error = signer(P, Q, DQ, DP, QI).err().unwrap();
        assert!(error.contains("do not match `n` and `e`"), "{error}");
        let error = signer("AA", Q, DP, DQ, QI).err().unwrap();
        assert!(error.contains("not an odd prime"), "{error}");
        let error = signer(P, Q, N, DQ, QI).err().unwrap();
        assert!(error.contains("longer than its prime"), "{error}");
    }

    #[test]
    fn reduction_and_power_are_modular_arithmetic() {
        let m = Modulus::new(vec![0xffff_fffb, 0xffff_fffe]); // odd
        let x = [5u32, 7, 9, 11];
        // x mod m by long division in u128.
        let value = |limbs: &[u32]| {
            limbs
                .iter()
                .rev()
                .fold(0u128, |acc, &l| (acc << 32) | u128::from(l))
        };
        let modulus = value(&m.n);
        let big = (u128::from(x[3]) << 96
            | u128::from(x[2]) << 64
            | u128::from(x[1]) << 32
            | u128::from(x[0]))
            % modulus;
        assert_eq!(value(&reduce(&x, &m)), big);
        let base = reduce(&[3, 0], &m);
        let mut expected = 1u128;
        for _ in 0..77 {
            expected = expected * 3 % modulus;
        }
        assert_eq!(value(&power(&base, &[77, 0], &m)), expected);
    }
}
