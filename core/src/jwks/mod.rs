//! Signing algorithms and JSON Web Key Sets (RFC 7517, RFC 7518).
//!
//! A key set keeps the keys it can use and reports the ones it skipped with a reason, so one
//! encryption key or exotic curve in an IdP's JWKS does not take the whole set down. Keys
//! are only ever selected from a configured set: header parameters that point elsewhere
//! (`jku`, `x5u`, `jwk`, `x5c`) are never followed (RFC 8725 §3.10).

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

pub use crate::algorithm::{Algorithm, KeyType};
use crate::token::error::TokenError;
pub(crate) use material::Material;

pub(crate) mod material;

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_LEN: usize = 256 * 1024;
/// Most keys in one set.
pub const MAX_KEYS: usize = 64;

/// Why a JWKS document was refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksError {
    /// Larger than [`MAX_JWKS_LEN`].
    TooLarge,
    /// Not JSON, or nested deeper than the limit.
    Json(String),
    /// JSON, but not an object with a `keys` array.
    NotAKeySet,
    /// More than [`MAX_KEYS`] keys.
    TooManyKeys,
    /// No key could be used; every key's reason is listed.
    NoUsableKey(Vec<SkippedKey>),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "the JWKS is larger than {} KiB", MAX_JWKS_LEN / 1024),
            Self::Json(message) => write!(f, "the JWKS is not valid JSON: {message}"),
            Self::NotAKeySet => f.write_str("the JWKS is not an object with a `keys` array"),
            Self::TooManyKeys => write!(f, "the JWKS has more than {MAX_KEYS} keys"),
            Self::NoUsableKey(skipped) => {
                f.write_str("the JWKS has no usable signature verification key")?;
                for key in skipped {
                    write!(f, "; {key}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for JwksError {}

/// A key that was left out of a set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// Its `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it cannot be used.
    pub reason: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keys[{}]", self.index)?;
        if let Some(kid) = &self.kid {
            write!(f, " (kid `{kid}`)")?;
        }
        write!(f, " skipped: {}", self.reason)
    }
}

/// One usable public key.
#[derive(Clone, Debug)]
pub struct Jwk {
    kid: Option<Box<str>>,
    alg: Option<Algorithm>,
    key_type: KeyType,
    pub(crate) material: Material,
}

impl Jwk {
    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The algorithm the key is restricted to by its `alg` member, if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// May this key verify a signature made with `alg`? Only when the key type is the
    /// algorithm's and the key's own `alg`, if set, agrees (RFC 8725 §3.1).
    pub fn fits(&self, alg: Algorithm) -> bool {
        alg.key_type() == self.key_type && self.alg.is_none_or(|own| own == alg)
    }

    /// Does `signature` sign `message` (a JWS signing input) with this key under `alg`?
    /// The verification a token's signature gets, without the token around it.
    ///
    /// `Err` when the key does not [fit](Self::fits) `alg` or this build has no verifier
    /// for it (the browser build has none).
    ///
    /// ```
    /// use scopegate_core::{Algorithm, KeySet};
    /// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519",
    ///   "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    /// let key = KeySet::from_json(jwks).unwrap().keys().next().unwrap().clone();
    /// assert_eq!(key.verify(Algorithm::EdDsa, b"a.b", &[0; 64]), Ok(false));
    /// assert!(key.verify(Algorithm::Rs256, b"a.b", &[0; 256]).is_err());
    /// ```
    pub fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, TokenError> {
        if !self.fits(alg) {
            return Err(TokenError::KeyMismatch { alg });
        }
        self.material.verify(alg, message, signature)
    }
}

/// The usable keys of a JWKS document.
///
/// ```
/// use scopegate_core::KeySet;
/// let jwks = r#"{"keys":[
///   {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
///   {"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"}
/// ]}"#;
/// let set = KeySet::from_json(jwks).unwrap();
/// assert_eq!(set.keys().count(), 1);
/// assert_eq!(set.skipped()[0].kid.as_deref(), Some("p384"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    pub fn from_json(text: &str) -> Result<Self, JwksError> {
        if text.len() > MAX_JWKS_LEN {
            return Err(JwksError::TooLarge);
        }
        if !crate::json::depth_within(text.as_bytes(), crate::json::MAX_DEPTH) {
            return Err(JwksError::Json(String::from("nested too deeply")));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| JwksError::Json(alloc::format!("{e}")))?;
        Self::from_value(&value)
    }

    /// Builds a key set from an already parsed JWKS document.
    pub fn from_value(value: &Value) -> Result<Self, JwksError> {
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAKeySet)?;
        if keys.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut set = KeySet::default();
        for (index, key) in keys.iter().enumerate() {
            let kid = key
                .get("kid")
                .and_then(Value::as_str)
                .map(ToOwned::to_owned);
            match parse_key(key) {
                Ok(jwk) => set.keys.push(jwk),
                Err(reason) => set.skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        if set.keys.is_empty() {
            return Err(JwksError::NoUsableKey(set.skipped));
        }
        Ok(set)
    }

    /// The usable keys.
    pub fn keys(&self) -> impl Iterator<Item = &Jwk> {
        self.keys.iter()
    }

    /// The keys that were left out, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Does the set hold a key with this `kid`?
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }
}

pub(crate) fn parse_key(key: &Value) -> Result<Jwk, String> {
    let object = key.as_object().ok_or("not a JSON object")?;
    for_verifying(object)?;
    let alg = match text_member(object, "alg")? {
        None => None,
        Some(name) => Some(
            Algorithm::from_name(name)
                .ok_or_else(|| alloc::format!("algorithm `{name}` is not supported"))?,
        ),
    };
    let key_type = key_type(object)?;
    if let Some(alg) = alg {
        if alg.key_type() != key_type {
            return Err(alloc::format!(
                "its `alg` {alg} does not fit its key type {key_type}"
            ));
        }
    }
    Ok(Jwk {
        kid: text_member(object, "kid")?.map(Into::into),
        alg,
        key_type,
        material: material(key, key_type)?,
    })
}

/// A string member, if present.
fn text_member<'v>(object: &'v Map<String, Value>, name: &str) -> Result<Option<&'v str>, String> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(alloc::format!("`{name}` is not a string")),
    }
}

/// Refuses a key published for something other than verifying signatures, and one that
/// carries private material.
fn for_verifying(object: &Map<String, Value>) -> Result<(), String> {
    if let Some(use_) = text_member(object, "use")? {
        if use_ != "sig" {
            return Err(alloc::format!("`use` is `{use_}`, not `sig`"));
        }
    }
    if let Some(ops) = object.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err(String::from("`key_ops` does not include `verify`"));
        }
    }
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        if object.contains_key(private) {
            return Err(alloc::format!(
                "it carries private or secret material (`{private}`); publish public keys only"
            ));
        }
    }
    Ok(())
}

/// The key's type from `kty` and `crv`, its public members checked for size.
fn key_type(object: &Map<String, Value>) -> Result<KeyType, String> {
    Ok(
        match (text_member(object, "kty")?, text_member(object, "crv")?) {
            (Some("RSA"), _) => {
                let n = base64_member(object, "n")?;
                base64_member(object, "e")?;
                let bits = significant_bits(&n);
                if bits < 2048 {
                    return Err(alloc::format!(
                        "RSA modulus has {bits} bits; at least 2048 are required"
                    ));
                }
                KeyType::Rsa
            }
            (Some("EC"), Some("P-256")) => {
                for member in ["x", "y"] {
                    if base64_member(object, member)?.len() != 32 {
                        return Err(alloc::format!("`{member}` is not 32 bytes"));
                    }
                }
                KeyType::EcP256
            }
            (Some("OKP"), Some("Ed25519")) => {
                if base64_member(object, "x")?.len() != 32 {
                    return Err(String::from("`x` is not 32 bytes"));
                }
                KeyType::Ed25519
            }
            (Some(kty @ ("EC" | "OKP")), crv) => {
                return Err(alloc::format!(
                    "curve `{}` of key type `{kty}` is not supported",
                    crv.unwrap_or("(none)")
                ))
            }
            (Some(kty), _) => return Err(alloc::format!("key type `{kty}` is not supported")),
            (None, _) => return Err(String::from("`kty` is missing")),
        },
    )
}

fn base64_member(object: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = object
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| alloc::format!("`{name}` is missing"))?;
    Base64UrlUnpadded::decode_vec(text).map_err(|_| alloc::format!("`{name}` is not base64url"))
}

fn significant_bits(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        Some(first) => (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(any(feature = "rsa", feature = "ecdsa", feature = "eddsa"))]
fn material(key: &Value, key_type: KeyType) -> Result<Material, String> {
    // The members are read here rather than by jwt-compact's `JsonWebKey`, whose serde
    // derive (a tagged enum) costs the filter about 25 KB of generic code.
    match key_type {
        #[cfg(feature = "rsa")]
        KeyType::Rsa => {
            let object = key.as_object().ok_or("not a JSON object")?;
            let (n, e) = (base64_member(object, "n")?, base64_member(object, "e")?);
            crate::verify::rsa::RsaKey::new(&n, &e)
                .map(Material::Rsa)
                .map_err(|e| alloc::format!("{e}"))
        }
        #[cfg(feature = "ecdsa")]
        KeyType::EcP256 => {
            let object = key.as_object().ok_or("not a JSON object")?;
            let (x, y) = (base64_member(object, "x")?, base64_member(object, "y")?);
            crate::verify::es256::P256Key::new(&x, &y)
                .map(Material::EcP256)
                .ok_or_else(|| String::from("not a valid key: the point is not on P-256"))
        }
        #[cfg(feature = "eddsa")]
        KeyType::Ed25519 => {
            let object = key.as_object().ok_or("not a JSON object")?;
            let x: [u8; 32] = base64_member(object, "x")?
                .try_into()
                .map_err(|_| String::from("`x` is not 32 bytes"))?;
            crate::verify::ed25519::Ed25519Key::new(x)
                .map(Material::Ed25519)
                .map_err(|refused| String::from(refused.message()))
        }
        _ => Ok(Material::NotBuilt),
    }
}

#[cfg(not(any(feature = "rsa", feature = "ecdsa", feature = "eddsa")))]
fn material(_key: &Value, _key_type: KeyType) -> Result<Material, String> {
    Ok(Material::NotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_what_it_cannot_use_and_says_why() {
        let jwks = r#"{"keys":[
            {"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"AA","y":"AA"},
            {"kty":"oct","kid":"secret","k":"c2VjcmV0"},
            {"kty":"OKP","crv":"Ed25519","kid":"priv","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"AA"},
            {"kty":"OKP","crv":"Ed25519","kid":"wrong-alg","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"OKP","crv":"Ed25519","kid":"ops","key_ops":["sign"],"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"OKP","crv":"Ed25519","kid":"good","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let set = KeySet::from_json(jwks).unwrap();
        assert_eq!(
            set.keys().map(|k| k.kid().unwrap()).collect::<Vec<_>>(),
            ["good"]
        );
        let reasons: Vec<String> = set
            .skipped()
            .iter()
            .map(|s| alloc::format!("{s}"))
            .collect();
        assert!(reasons[0].contains("at least 2048"), "{}", reasons[0]);
        assert!(reasons[1].contains("`use` is `enc`"), "{}", reasons[1]);
        assert!(reasons[2].contains("secret material"), "{}", reasons[2]);
        assert!(reasons[3].contains("private"), "{}", reasons[3]);
        assert!(reasons[4].contains("does not fit"), "{}", reasons[4]);
        assert!(reasons[5].contains("key_ops"), "{}", reasons[5]);
    }

    #[test]
    #[cfg(feature = "eddsa")]
    fn an_ed25519_key_must_be_a_point() {
        // y = 2 is on no Ed25519 point: decompression fails.
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"off","x":"%X%"},
            {"kty":"OKP","crv":"Ed25519","kid":"good","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#
            .replace("%X%", "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let set = KeySet::from_json(&jwks).unwrap();
        assert_eq!(set.keys().count(), 1);
        let reason = alloc::format!("{}", set.skipped()[0]);
        assert!(reason.contains("not an Ed25519 point"), "{reason}");
    }

    #[test]
    #[cfg(feature = "eddsa")]
    fn an_ed25519_key_of_small_order_is_skipped() {
        // The identity (y = 1): R = identity and s = 0 would sign every message with it.
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"weak","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            {"kty":"OKP","crv":"Ed25519","kid":"good","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let set = KeySet::from_json(jwks).unwrap();
        assert_eq!(set.keys().count(), 1);
        assert!(!set.has_kid("weak"));
        let reason = alloc::format!("{}", set.skipped()[0]);
        assert!(reason.contains("small order"), "{reason}");
    }

    #[test]
    fn refuses_broken_documents() {
        assert_eq!(KeySet::from_json("{}").unwrap_err(), JwksError::NotAKeySet);
        assert!(matches!(KeySet::from_json("{"), Err(JwksError::Json(_))));
        assert!(matches!(
            KeySet::from_json(r#"{"keys":[]}"#),
            Err(JwksError::NoUsableKey(_))
        ));
        let deep = alloc::format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(KeySet::from_json(&deep), Err(JwksError::Json(_))));
        let many = alloc::format!("{{\"keys\":[{}{{}}]}}", "{},".repeat(MAX_KEYS));
        assert_eq!(
            KeySet::from_json(&many).unwrap_err(),
            JwksError::TooManyKeys
        );
    }

    #[test]
    fn fits_checks_type_and_alg() {
        let set = KeySet::from_json(
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        )
        .unwrap();
        let key = set.keys().next().unwrap();
        assert!(key.fits(Algorithm::EdDsa));
        assert!(!key.fits(Algorithm::Es256));
        assert!(!key.fits(Algorithm::Hs256));
    }

    #[test]
    fn bit_counting() {
        assert_eq!(significant_bits(&[0, 0x01, 0]), 9);
        assert_eq!(significant_bits(&[0x80]), 8);
        assert_eq!(significant_bits(&[]), 0);
    }
}
