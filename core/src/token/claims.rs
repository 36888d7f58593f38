//! Claim checks and the scopes a token grants.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;

use crate::policy::DEFAULT_SCOPE_CLAIMS;
use crate::policy::{ClaimName, Policy, Resource};
use crate::scope::{first_invalid_scope_byte, ScopeSet};

use super::{decode, AudienceMatch, Confirmation, TokenError};

/// A NumericDate claim (RFC 7519 §2): a non-negative number of seconds, fractions dropped.
pub(super) fn numeric_date(claims: &Value, claim: &'static str) -> Result<Option<u64>, TokenError> {
    let invalid = || TokenError::InvalidClaim {
        claim: String::from(claim),
        expected: "a NumericDate (seconds since 1970)",
    };
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                Ok(Some(secs))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                    _ => Err(invalid()),
                }
            }
        }
        Some(_) => Err(invalid()),
    }
}

/// Which of the policy's audience lists the token's `aud` fits; refused when none.
pub(super) fn match_audiences(
    claims: &Value,
    issuer: &[Box<str>],
    resources: &[Resource],
) -> Result<AudienceMatch, TokenError> {
    let values: &[Value] = match claims.get("aud") {
        None => return Err(TokenError::MissingClaim("aud")),
        Some(aud @ Value::String(_)) => core::slice::from_ref(aud),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => list,
        Some(_) => {
            return Err(TokenError::InvalidClaim {
                claim: String::from("aud"),
                expected: "a string or an array of strings",
            })
        }
    };
    let fits = |accepted: &[Box<str>]| {
        values
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| accepted.iter().any(|a| **a == *aud))
    };
    let mut matched = AudienceMatch::NONE.with_issuer(fits(issuer));
    for (index, resource) in resources.iter().enumerate() {
        if let Some(accepted) = &resource.audiences {
            matched = matched.with_resource(index, fits(accepted));
        }
    }
    if matched == AudienceMatch::NONE {
        return Err(TokenError::WrongAudience);
    }
    Ok(matched)
}

/// The token's binding (RFC 7800 `cnf`). A `cnf` without a method scopegate checks is
/// refused: taking it as a bearer token would let a stolen bound token through.
pub(super) fn confirmation(claims: &Value) -> Result<Option<Confirmation>, TokenError> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let invalid = |expected| TokenError::InvalidClaim {
        claim: String::from("cnf"),
        expected,
    };
    let cnf = cnf.as_object().ok_or_else(|| invalid("an object"))?;
    // A DPoP binding wins over a certificate one: both cannot be proven by one bearer
    // request, and DPoP is the stricter.
    if let Some(jkt) = cnf.get("jkt") {
        let jkt = jkt
            .as_str()
            .filter(|t| t.len() == 43 && Base64UrlUnpadded::decode_vec(t).is_ok())
            .ok_or_else(|| invalid("`jkt`: the base64url SHA-256 thumbprint of a JWK"))?;
        return Ok(Some(Confirmation::DpopKey(jkt.into())));
    }
    if let Some(x5t) = cnf.get("x5t#S256") {
        let mut digest = [0u8; 32];
        let decoded = x5t
            .as_str()
            .and_then(|t| Base64UrlUnpadded::decode(t, &mut digest).ok())
            .map(|d| d.len());
        if decoded != Some(32) {
            return Err(invalid(
                "`x5t#S256`: the base64url SHA-256 of a certificate",
            ));
        }
        return Ok(Some(Confirmation::Certificate(digest)));
    }
    Err(TokenError::UnsupportedConfirmation)
}

/// Looks a claim up by name, or by JSON pointer when the configured name starts with `/`
/// (`/realm_access/roles`).
pub(crate) fn claim_value<'c>(claims: &'c Value, name: &ClaimName) -> Option<&'c Value> {
    match name {
        ClaimName::Top(name) => claims.get(&**name),
        ClaimName::Pointer(pointer) => claims.pointer(pointer),
    }
}

/// The effective scopes of a token as the gateway computes them, without validating the
/// token: its scope claims plus the scopes its roles map to under `policy`. Without a
/// policy, the [`DEFAULT_SCOPE_CLAIMS`] are read and roles map to nothing.
///
/// Neither the signature nor `exp`, `iss` or `aud` are checked: this says what a token
/// claims, for display and for asking for more; [`Policy::authenticate`] says whether the
/// gateway accepts it. A scope claim with a character scopes may not contain is an error,
/// as at the gateway.
///
/// ```
/// use scopegate_core::scopes_of;
/// use scopegate_core::Policy;
/// // {"alg":"ES256"} . {"scope":"openid order","roles":["admin"]} . "sig"
/// let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzY29wZSI6Im9wZW5pZCBvcmRlciIsInJvbGVzIjpbImFkbWluIl19.c2ln";
/// let scopes = scopes_of(jwt, None).unwrap();
/// assert_eq!(scopes.iter().collect::<Vec<_>>(), ["openid", "order"]);
///
/// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///   "roles": {"map": {"admin": ["order.write"]}},
///   "routes": [{"path": "/health", "public": true}]}"#).unwrap();
/// let scopes = scopes_of(jwt, Some(&policy)).unwrap();
/// assert_eq!(scopes.iter().collect::<Vec<_>>(), ["openid", "order", "order.write"]);
/// ```
pub fn scopes_of(token: &str, policy: Option<&Policy>) -> Result<ScopeSet, TokenError> {
    let decoded = decode(token)?;
    match policy {
        Some(policy) => effective_scopes(policy, decoded.claims()),
        None => {
            let claims: Vec<ClaimName> = DEFAULT_SCOPE_CLAIMS
                .iter()
                .map(|name| ClaimName::parse(name))
                .collect();
            claimed_scopes(None, &claims, decoded.claims())
        }
    }
}

/// The scopes granted by a token's claims under `policy`.
pub(crate) fn effective_scopes<'c>(
    policy: &'c Policy,
    claims: &'c Value,
) -> Result<ScopeSet, TokenError> {
    claimed_scopes(Some(policy), &policy.scope_claims, claims)
}

/// The scopes in `scope_claims` of `claims`, plus the mapped roles when there is a policy.
pub(super) fn claimed_scopes<'c>(
    policy: Option<&'c Policy>,
    scope_claims: &[ClaimName],
    claims: &'c Value,
) -> Result<ScopeSet, TokenError> {
    // Collected first and sorted once: a 16 KiB claim can hold thousands of scopes.
    let mut scopes: Vec<&'c str> = Vec::new();
    for claim in scope_claims {
        let Some(value) = claim_value(claims, claim) else {
            continue;
        };
        let invalid_type = || TokenError::InvalidClaim {
            claim: String::from(claim.as_str()),
            expected: "a space-separated string or an array of strings",
        };
        let mut add = |scope: &'c str| -> Result<(), TokenError> {
            if scope.is_empty() || first_invalid_scope_byte(scope).is_some() {
                return Err(TokenError::InvalidScopeClaim {
                    claim: String::from(claim.as_str()),
                });
            }
            scopes.push(scope);
            Ok(())
        };
        match value {
            Value::String(text) => {
                for scope in text.split(' ').filter(|s| !s.is_empty()) {
                    add(scope)?;
                }
            }
            Value::Array(items) => {
                for item in items {
                    add(item.as_str().ok_or_else(invalid_type)?)?;
                }
            }
            _ => return Err(invalid_type()),
        }
    }
    let Some(policy) = policy else {
        return Ok(scopes.into_iter().collect());
    };
    for claim in policy.role_claims() {
        let roles: Vec<&str> = match claim_value(claims, claim) {
            None => continue,
            Some(Value::String(role)) => alloc::vec![role.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(_) => {
                return Err(TokenError::InvalidClaim {
                    claim: String::from(claim.as_str()),
                    expected: "a string or an array of strings",
                })
            }
        };
        for role in roles {
            scopes.extend(policy.scopes_of_role(role));
        }
    }
    Ok(scopes.into_iter().collect())
}

/// Renders a claim for a request header: strings as they are, arrays of strings
/// space-separated, anything else as JSON; bytes outside printable ASCII (and `%`)
/// percent-encoded so that no claim can inject a header line.
pub(super) fn header_value(value: &Value) -> Option<String> {
    let raw = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => serde_json::to_string(other).ok()?,
    };
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&alloc::format!("%{b:02X}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use base64ct::{Base64UrlUnpadded, Encoding};

    use super::*;

    #[test]
    fn header_values_cannot_inject() {
        assert_eq!(
            header_value(&Value::from("a\r\nX-Evil: 1")).unwrap(),
            "a%0D%0AX-Evil: 1"
        );
        assert_eq!(
            header_value(&Value::from("José 100%")).unwrap(),
            "Jos%C3%A9 100%25"
        );
        assert_eq!(header_value(&serde_json::json!(["a", "b"])).unwrap(), "a b");
        assert_eq!(
            header_value(&serde_json::json!({"k": 1})).unwrap(),
            "{\"k\":1}"
        );
        assert_eq!(header_value(&Value::Null), None);
    }

    #[test]
    fn scopes_without_a_policy() {
        let b64 = |s: &str| Base64UrlUnpadded::encode_string(s.as_bytes());
        let jwt =
            |claims: &str| alloc::format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(claims));
        let scopes = |claims: &str| {
            scopes_of(&jwt(claims), None)
                .map(|set| set.iter().map(String::from).collect::<Vec<_>>())
        };
        assert_eq!(
            scopes(r#"{"scope":"b a","scp":["c"],"permissions":["a","d"],"roles":["admin"]}"#)
                .unwrap(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(scopes(r#"{"sub":"x"}"#).unwrap(), Vec::<String>::new());
        assert!(matches!(
            scopes(r#"{"scope":"a \"b\""}"#),
            Err(TokenError::InvalidScopeClaim { .. })
        ));
        assert!(matches!(
            scopes(r#"{"scp":7}"#),
            Err(TokenError::InvalidClaim { .. })
        ));
        assert!(matches!(
            scopes_of("not-a-jwt", None),
            Err(TokenError::Malformed(_))
        ));
    }
}
