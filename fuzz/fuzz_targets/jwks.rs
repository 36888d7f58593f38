//! `KeySet::from_json` (and `KeySet::from_value`) on arbitrary text, then signature
//! verification of fixed tokens against the keys it accepted.
//!
//! Invariants, besides not panicking:
//! - a key set has 1 to `MAX_KEYS` usable keys; usable and skipped keys together are the
//!   document's `keys`, each exactly once, in order; a set without a usable key is
//!   `NoUsableKey` with every key skipped;
//! - a key's own `alg` fits its key type, and `fits(alg)` is exactly "the algorithm's key
//!   type, and the key's `alg` if it has one";
//! - `from_value` on the parsed document agrees with `from_json`;
//! - installed as the fetched keys of an issuer, the set verifies (or refuses) an RS256, a
//!   PS256, an ES256 and an EdDSA token without panicking, and every decision satisfies
//!   `scopegate_fuzz::check_decision`.
#![no_main]

use base64ct::{Base64UrlUnpadded, Encoding};
use libfuzzer_sys::fuzz_target;
use scopegate_core::{JwksError, MAX_JWKS_LEN, MAX_KEYS};
use scopegate_core::{Algorithm, KeySet, KeyStore, Request};
use scopegate_fuzz::{check_decision, remote_keys_policy, NOW};
use serde_json::Value;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = KeySet::from_json(text);
    let document: Option<Value> = serde_json::from_str(text).ok();
    let listed = document
        .as_ref()
        .and_then(|d| d.get("keys"))
        .and_then(Value::as_array)
        .map(Vec::len);
    match &result {
        Ok(set) => {
            let listed = listed.expect("a key set comes from a `keys` array");
            let usable = set.keys().count();
            assert!((1..=MAX_KEYS).contains(&usable));
            assert_eq!(usable + set.skipped().len(), listed);
            let indices: Vec<usize> = set.skipped().iter().map(|s| s.index).collect();
            assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
            assert!(indices.iter().all(|&i| i < listed));
            for key in set.keys() {
                if let Some(own) = key.algorithm() {
                    assert_eq!(own.key_type(), key.key_type());
                }
                for alg in Algorithm::ALL {
                    let fits = alg.key_type() == key.key_type()
                        && key.algorithm().is_none_or(|own| own == alg);
                    assert_eq!(key.fits(alg), fits, "{alg}");
                }
                if let Some(kid) = key.kid() {
                    assert!(set.has_kid(kid));
                }
            }
        }
        Err(JwksError::NoUsableKey(skipped)) => {
            let listed = listed.expect("keys were read from a `keys` array");
            assert_eq!(skipped.len(), listed);
        }
        Err(_) => {}
    }
    if let (Some(document), true) = (&document, text.len() <= MAX_JWKS_LEN) {
        let from_value = KeySet::from_value(document);
        match (&result, &from_value) {
            (Ok(a), Ok(b)) => assert_eq!(a.keys().count(), b.keys().count()),
            // from_json also refuses documents nested deeper than the core's limit.
            (Err(JwksError::Json(_)), _) => {}
            (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "{a:?} / {b:?}"),
        }
    }

    let Ok(set) = result else {
        return;
    };
    let policy = remote_keys_policy();
    let mut keys = KeyStore::default();
    keys.install(0, set);
    for token in tokens() {
        let authorization = [token.as_str()];
        let request = Request::new("GET", "/api/resources").with_authorization(&authorization);
        let decision = policy.decide(&request, &keys, NOW);
        check_decision(policy, &decision, None);
    }
});

/// Tokens of the first issuer for `GET /api/resources` with signatures of the right length
/// for each algorithm, without `kid`, so that every fitting key is tried.
fn tokens() -> &'static [String] {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let claims = r#"{"iss":"https://idp.scopegate.test","aud":"http://127.0.0.1:8080","exp":1767226200,"iat":1767225540,"sub":"alice","scope":"resource:read"}"#;
        [("RS256", 256), ("PS256", 256), ("ES256", 64), ("EdDSA", 64)]
            .iter()
            .map(|(alg, len)| {
                let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt"}}"#);
                format!(
                    "Bearer {}.{}.{}",
                    Base64UrlUnpadded::encode_string(header.as_bytes()),
                    Base64UrlUnpadded::encode_string(claims.as_bytes()),
                    Base64UrlUnpadded::encode_string(&vec![0x5a; *len])
                )
            })
            .collect()
    })
}
