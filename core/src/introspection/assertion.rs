//! The gateway's own client assertion (RFC 7523 `private_key_jwt`) for the introspection
//! endpoint: a JWT signed with the gateway's Ed25519 key, made per call. Ed25519 signing
//! is deterministic, so no random source is needed (the proxy-wasm host may have none);
//! each assertion's `jti` is a digest of the call (its token, ticket and time).

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;

/// An Ed25519 private key from a JWK, and its `kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct AssertionKey {
    seed: Box<[u8]>,
    kid: Option<Box<str>>,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("d", &"(redacted)")
            .field("kid", &self.kid)
            .finish()
    }
}

impl AssertionKey {
    /// An `{"kty": "OKP", "crv": "Ed25519", "d": …}` JWK; the reason otherwise (never the
    /// key's bytes).
    pub(crate) fn from_jwk(jwk: &Value) -> Result<Self, &'static str> {
        let member = |name: &str| jwk.get(name).and_then(Value::as_str);
        if member("kty") != Some("OKP") || member("crv") != Some("Ed25519") {
            return Err("must be an Ed25519 JWK (`kty: OKP`, `crv: Ed25519`): the only key type the gateway signs with");
        }
        let seed = member("d")
            .and_then(|d| Base64UrlUnpadded::decode_vec(d).ok())
            .filter(|seed| seed.len() == 32)
            .ok_or("needs `d`, the 32-byte private key, unpadded base64url")?;
        Ok(Self {
            seed: seed.into_boxed_slice(),
            kid: member("kid").map(Into::into),
        })
    }

    /// The signed assertion for `client_id` at `audience` (the endpoint's URL), at `now`.
    #[cfg(feature = "eddsa")]
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        jti_input: &[u8],
        now: u64,
    ) -> Option<String> {
        use alloc::string::ToString;
        use ed25519_dalek::Signer;
        use sha2::{Digest, Sha256};
        let seed: [u8; 32] = self.seed.as_ref().try_into().ok()?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let mut header = serde_json::json!({"alg": "EdDSA", "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = Value::from(&**kid);
        }
        let jti = Base64UrlUnpadded::encode_string(&Sha256::digest(jti_input)[..18]);
        let claims = serde_json::json!({"iss": client_id, "sub": client_id, "aud": audience,
            "jti": jti, "iat": now, "exp": now.saturating_add(60)});
        let mut jwt = Base64UrlUnpadded::encode_string(header.to_string().as_bytes());
        jwt.push('.');
        jwt.push_str(&Base64UrlUnpadded::encode_string(
            claims.to_string().as_bytes(),
        ));
        let signature = key.sign(jwt.as_bytes());
        jwt.push('.');
        jwt.push_str(&Base64UrlUnpadded::encode_string(&signature.to_bytes()));
        Some(jwt)
    }

    /// Without the `eddsa` feature there is nothing to sign with: the call is not made and
    /// the token is refused as not checkable.
    #[cfg(not(feature = "eddsa"))]
    pub(crate) fn assertion(&self, _: &str, _: &str, _: &[u8], _: u64) -> Option<String> {
        let _ = (&self.seed, &self.kid);
        None
    }
}
