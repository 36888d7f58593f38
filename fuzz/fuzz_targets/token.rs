//! `bearer_token` over several `Authorization` values, and `decode_token`,
//! `scopes_of` and `Policy::authenticate_unverified` on what it finds.
//!
//! Input: `Authorization` values separated by NUL bytes; a value that starts with 0x01 is a
//! token spec `0x01 header-json 0x01 claims-json 0x01 base64url-signature` (see
//! `scopegate_fuzz::authorization_value`). Inputs with a value that is not UTF-8 are
//! skipped.
//!
//! Invariants, besides not panicking:
//! - several values get the answer of their folded form (the non-empty ones joined with
//!   `, `, RFC 9110 §5.3); no value, or only blank ones: `Ok(None)`;
//! - `Ok(Some(t))`: there was one non-blank value; `t` is non-empty, has no space, tab or
//!   comma, is a slice of that value, which is `Bearer` (any case), blanks and `t`;
//!   `Bearer t` gives `t` back;
//! - `Ok(None)` for one non-blank value: its scheme is not `Bearer`;
//! - `decode` is total; `scopes_of` fails with `decode`'s error when `decode` fails, and
//!   otherwise only for the claims; a policy's scopes are a superset of the default claims'
//!   scopes when, as in the example policy, its scope claims are the default ones;
//! - `authenticate_unverified` grants exactly `scopes_of(token, policy)`, for an issuer of
//!   the policy, until a time not before `now`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::is_valid_scope;
use scopegate_core::TokenError;
use scopegate_core::{bearer_token, decode_token, scopes_of, BearerError, MAX_TOKEN_LEN};
use scopegate_fuzz::{authorization_value, example_policy, fields, NOW};

fuzz_target!(|data: &[u8]| {
    let mut values = Vec::new();
    if !data.is_empty() {
        for field in fields(data) {
            match authorization_value(field) {
                Some(value) => values.push(value),
                None => return,
            }
        }
    }
    let values: Vec<&str> = values.iter().map(String::as_str).collect();

    for value in &values {
        check_token(value);
    }

    let found = bearer_token(&values);
    let present: Vec<&str> = values
        .iter()
        .map(|v| v.trim_matches([' ', '\t']))
        .filter(|v| !v.is_empty())
        .collect();
    // Repeated headers get the answer of their folded form (RFC 9110 §5.3), which is what
    // Envoy hands a filter.
    let folded = present.join(", ");
    let owned = |r: Result<Option<&str>, BearerError>| r.map(|t| t.map(String::from));
    assert_eq!(owned(found), owned(bearer_token(&[&folded])), "{folded:?}");
    if present.is_empty() {
        assert_eq!(found, Ok(None));
    }
    match found {
        Ok(Some(t)) => {
            assert_eq!(present.len(), 1, "a token out of several credentials");
            let value = values
                .iter()
                .find(|v| {
                    let start = v.as_ptr() as usize;
                    let at = t.as_ptr() as usize;
                    start <= at && at + t.len() <= start + v.len()
                })
                .expect("the token is a slice of a value");
            let start = t.as_ptr() as usize - value.as_ptr() as usize;
            assert!(!t.is_empty());
            assert!(!t.contains([' ', '\t', ',']), "{t:?}");
            let before = value[..start].trim_matches([' ', '\t']);
            assert!(before.eq_ignore_ascii_case("bearer"), "{value:?}");
            assert!(value[start + t.len()..]
                .trim_matches([' ', '\t'])
                .is_empty());
            let again = format!("Bearer {t}");
            assert_eq!(bearer_token(&[&again]), Ok(Some(t)));
            check_token(t);
        }
        Ok(None) if present.len() == 1 => {
            let scheme = present[0].split([' ', '\t', ',']).next().unwrap_or("");
            assert!(!scheme.eq_ignore_ascii_case("bearer"), "{:?}", present[0]);
        }
        _ => {}
    }
});

fn check_token(t: &str) {
    let decoded = decode_token(t);
    let unscoped = scopes_of(t, None);
    let policy = example_policy();
    let scoped = scopes_of(t, Some(policy));
    match &decoded {
        Err(err) => {
            assert_eq!(unscoped.as_ref().err(), Some(err));
            assert_eq!(scoped.as_ref().err(), Some(err));
        }
        Ok(decoded) => {
            assert!(t.len() <= MAX_TOKEN_LEN);
            assert_eq!(t.split('.').count(), 3);
            assert_eq!(
                decoded.header().get("alg").and_then(|a| a.as_str()),
                Some(decoded.algorithm())
            );
            assert!(decoded.claims().is_object());
            for result in [&unscoped, &scoped] {
                if let Err(err) = result {
                    assert!(
                        matches!(
                            err,
                            TokenError::InvalidClaim { .. } | TokenError::InvalidScopeClaim { .. }
                        ),
                        "{err:?}"
                    );
                }
            }
        }
    }
    if let Ok(scopes) = &scoped {
        assert!(scopes.iter().all(is_valid_scope));
        if let Ok(unscoped) = &unscoped {
            assert!(unscoped.iter().all(|s| scopes.contains(s)));
        }
    }
    if let Ok(principal) = policy.authenticate_unverified(t, NOW) {
        assert!(principal.issuer < policy.issuers().len());
        assert!(principal.expires_at >= NOW.0);
        assert_eq!(Some(&principal.scopes), scoped.as_ref().ok());
    }
}
