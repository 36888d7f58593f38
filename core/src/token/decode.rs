//! JWS compact decoding, without the signature checked.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use super::error::{TokenError, MAX_TOKEN_LEN};

/// A decoded JWS whose signature has not been checked.
///
/// ```
/// let token = "eyJhbGciOiJFUzI1NiJ9.eyJzY29wZSI6InJlc291cmNlOnJlYWQifQ.c2ln";
/// let decoded = scopegate_core::decode_token(token).unwrap();
/// assert_eq!(decoded.algorithm(), "ES256");
/// assert_eq!(decoded.claims()["scope"], "resource:read");
/// ```
#[derive(Clone, Debug)]
pub struct UnverifiedToken<'t> {
    pub(super) header: Map<String, Value>,
    pub(super) claims: Value,
    pub(super) signing_input: &'t str,
    pub(super) signature: Vec<u8>,
}

impl UnverifiedToken<'_> {
    /// The JOSE header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims (a JSON object).
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// The header's `alg`.
    pub fn algorithm(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// What the signature covers: the header and payload parts.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn signing_input(&self) -> &str {
        self.signing_input
    }

    /// The decoded signature.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The header's `kid`, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
}

/// Decodes a compact JWS without checking its signature or claims: size, structure,
/// base64url, JSON objects, nesting depth, and the presence of a string `alg`.
pub fn decode(token: &str) -> Result<UnverifiedToken<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("a JWS has three dot-separated parts"));
    };
    let header = decode_json_object(header, "the header is not a base64url JSON object")?;
    let claims = decode_json_object(payload, "the payload is not a base64url JSON object")?;
    let signature = Base64UrlUnpadded::decode_vec(signature)
        .map_err(|_| TokenError::Malformed("the signature is not base64url"))?;
    let Value::Object(header) = header else {
        return Err(TokenError::Malformed("the header is not a JSON object"));
    };
    if !matches!(header.get("alg"), Some(Value::String(_))) {
        return Err(TokenError::Malformed("the header has no string `alg`"));
    }
    Ok(UnverifiedToken {
        header,
        claims,
        signing_input: &token[..token.len() - signature_part_len(token)],
        signature,
    })
}

pub(super) fn signature_part_len(token: &str) -> usize {
    token.rsplit('.').next().map_or(0, |s| s.len() + 1)
}

pub(super) fn decode_json_object(part: &str, malformed: &'static str) -> Result<Value, TokenError> {
    let bytes =
        Base64UrlUnpadded::decode_vec(part).map_err(|_| TokenError::Malformed(malformed))?;
    if !crate::json::depth_within(&bytes, crate::json::MAX_DEPTH) {
        return Err(TokenError::TooDeep);
    }
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(malformed))?;
    if !value.is_object() {
        return Err(TokenError::Malformed(malformed));
    }
    Ok(value)
}

/// Is `token` a JWS in compact form (three base64url parts), as opposed to an opaque token?
pub(crate) fn looks_like_jws(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2 && token.starts_with("eyJ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_malformed_input() {
        let b64 = |s: &str| Base64UrlUnpadded::encode_string(s.as_bytes());
        let header = b64(r#"{"alg":"ES256"}"#);
        let claims = b64(r#"{"a":1}"#);
        assert!(decode(&alloc::format!("{header}.{claims}.c2ln")).is_ok());
        for bad in [
            String::new(),
            String::from("a.b"),
            alloc::format!("{header}.{claims}.c2ln.x"),
            alloc::format!("{header}.{claims}.***"),
            alloc::format!("{header}.{}.c2ln", b64("[1]")),
            alloc::format!("{header}.{}.c2ln", b64("not json")),
            alloc::format!("{}.{claims}.c2ln", b64(r#"{"alg":5}"#)),
            alloc::format!("{}.{claims}.c2ln", b64("{}")),
            alloc::format!("{header}=.{claims}.c2ln"),
        ] {
            assert!(
                matches!(decode(&bad), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
        let deep = b64(&alloc::format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(40),
            "]".repeat(40)
        ));
        assert_eq!(
            decode(&alloc::format!("{header}.{deep}.c2ln")).unwrap_err(),
            TokenError::TooDeep
        );
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(decode(&huge).unwrap_err(), TokenError::TooLarge);
    }

    #[test]
    fn opaque_and_jws_tokens() {
        assert!(looks_like_jws("eyJhbGciOiJFUzI1NiJ9.e30.c2ln"));
        assert!(!looks_like_jws("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jws("a.b.c"));
    }
}
