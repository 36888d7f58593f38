//! The gateway's own client assertion (RFC 7523 `private_key_jwt`) for the introspection
//! endpoint: a JWT signed per call with the gateway's key, Ed25519 (`EdDSA`), P-256
//! (`ES256`) or RSA (`RS256`). All three are deterministic (Ed25519 by design, ES256 with
//! RFC 6979 nonces, RS256 with PKCS #1 v1.5 padding), so no random source is needed (the
//! proxy-wasm host may have none); each assertion's `jti` is a digest of the call (its
//! token, ticket and time).

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;

/// The gateway's private key for client assertions, from a JWK, and its `kid`.
///
/// Read from an issuer's `introspection.private_key`; its [`Debug`](fmt::Debug) shows the
/// algorithm and the `kid`, never the private members.
///
/// ```
/// use scopegate_core::Policy;
/// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
///   "issuers": [{"issuer": "https://idp", "audiences": ["api"],
///     "introspection": {"endpoint": "https://idp/introspect", "cluster": "idp",
///       "client_id": "gateway", "auth_method": "private_key_jwt",
///       "private_key": {"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "gw-1",
///         "x": "YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y",
///         "y": "eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk",
///         "d": "ya-p2EW6dRZrXCFXZ7HWk05Qw9s26JsSe4piKxIPZyE"}}}],
///   "routes": [{"path": "/api", "require": "read"}]}"#)?;
/// let rules = policy.issuers()[0].introspection().unwrap();
/// let printed = format!("{rules:?}");
/// assert!(!printed.contains("ya-p2EW6dRZr"));
/// # Ok::<(), scopegate_core::PolicyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AssertionKey {
    key: Secret,
    kid: Option<Box<str>>,
}

/// A private key, ready to sign with when its algorithm's feature is built (and then
/// checked against its public members when read).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "eddsa"), allow(dead_code))]
enum Secret {
    /// The 32-byte seed.
    Ed25519(Box<[u8]>),
    #[cfg(feature = "ecdsa")]
    Es256(crate::sign::es256::P256Signer),
    #[cfg(not(feature = "ecdsa"))]
    Es256,
    #[cfg(feature = "rsa")]
    Rs256(Box<crate::sign::rs256::RsaSigner>),
    #[cfg(not(feature = "rsa"))]
    Rs256,
}

impl Secret {
    fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "EdDSA",
            #[cfg(feature = "ecdsa")]
            Self::Es256(_) => "ES256",
            #[cfg(not(feature = "ecdsa"))]
            Self::Es256 => "ES256",
            #[cfg(feature = "rsa")]
            Self::Rs256(_) => "RS256",
            #[cfg(not(feature = "rsa"))]
            Self::Rs256 => "RS256",
        }
    }
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("alg", &self.key.alg())
            .field("private", &"(redacted)")
            .field("kid", &self.kid)
            .finish()
    }
}

/// Why a JWK is refused: the member it concerns (`""` for the key as a whole) and the
/// reason. Neither ever holds key material.
pub(crate) type JwkError = (&'static str, Cow<'static, str>);

impl AssertionKey {
    /// A private JWK: `{"kty": "OKP", "crv": "Ed25519", "d"}`, `{"kty": "EC", "crv":
    /// "P-256", "x", "y", "d"}` or `{"kty": "RSA", "n", "e", "d", "p", "q", "dp", "dq",
    /// "qi"}`, with an optional `alg` that must be the key type's.
    pub(crate) fn from_jwk(jwk: &Value) -> Result<Self, JwkError> {
        let member = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &'static str| bytes(jwk, name);
        let key = match (member("kty"), member("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let seed = bytes("d")?;
                if seed.len() != 32 {
                    return Err(("d", "must be the 32-byte private key".into()));
                }
                Secret::Ed25519(seed.into_boxed_slice())
            }
            (Some("EC"), Some("P-256")) => {
                let (x, y, d) = (bytes("x")?, bytes("y")?, bytes("d")?);
                Self::es256(&x, &y, &d)?
            }
            (Some("RSA"), _) => {
                if jwk.get("oth").is_some() {
                    return Err(("oth", "is not supported: a key of two primes only".into()));
                }
                bytes("d")?;
                let missing = ["p", "q", "dp", "dq", "qi"]
                    .into_iter()
                    .find(|name| member(name).is_none());
                if let Some(name) = missing {
                    return Err((
                        name,
                        "is required: the gateway signs with the CRT members `p`, `q`, `dp`, \
                         `dq` and `qi`, as key generators write them"
                            .into(),
                    ));
                }
                Self::rs256(jwk)?
            }
            _ => {
                return Err((
                    "",
                    "must be an Ed25519 (`kty: OKP`, `crv: Ed25519`), P-256 (`kty: EC`, \
                     `crv: P-256`) or RSA (`kty: RSA`) private JWK"
                        .into(),
                ))
            }
        };
        if let Some(alg) = member("alg") {
            if alg != key.alg() {
                return Err((
                    "alg",
                    alloc::format!("must be `{}` for this key type, or absent", key.alg()).into(),
                ));
            }
        }
        Ok(Self {
            key,
            kid: member("kid").map(Into::into),
        })
    }

    #[cfg(feature = "ecdsa")]
    fn es256(x: &[u8], y: &[u8], d: &[u8]) -> Result<Secret, JwkError> {
        let signer = crate::sign::es256::P256Signer::new(d).ok_or((
            "d",
            "must be a 32-byte scalar below the P-256 group order".into(),
        ))?;
        let public = crate::verify::es256::P256Key::new(x, y).ok_or((
            "x",
            "and `y` must be a point of P-256, 32 bytes each".into(),
        ))?;
        let probe = b"scopegate: does the private key match its public key?";
        if !signer
            .sign(probe)
            .is_some_and(|signature| public.verify(probe, &signature))
        {
            return Err(("d", "does not match `x` and `y`".into()));
        }
        Ok(Secret::Es256(signer))
    }

    /// Without the `ecdsa` feature nothing signs with the key; its members are only sized.
    #[cfg(not(feature = "ecdsa"))]
    fn es256(x: &[u8], y: &[u8], d: &[u8]) -> Result<Secret, JwkError> {
        match (x.len(), y.len(), d.len()) {
            (32, 32, 32) => Ok(Secret::Es256),
            (32, 32, _) => Err(("d", "must be a 32-byte scalar".into())),
            _ => Err(("x", "and `y` must be 32 bytes each".into())),
        }
    }

    #[cfg(feature = "rsa")]
    fn rs256(jwk: &Value) -> Result<Secret, JwkError> {
        use crate::sign::rs256::{RsaPrivateParts, RsaSigner};
        let bytes = |name: &'static str| bytes(jwk, name);
        let (n, e, p, q) = (bytes("n")?, bytes("e")?, bytes("p")?, bytes("q")?);
        let (dp, dq, qi) = (bytes("dp")?, bytes("dq")?, bytes("qi")?);
        let parts = RsaPrivateParts {
            n: &n,
            e: &e,
            p: &p,
            q: &q,
            dp: &dp,
            dq: &dq,
            qi: &qi,
        };
        let signer = RsaSigner::new(&parts).map_err(|why| ("", why))?;
        Ok(Secret::Rs256(Box::new(signer)))
    }

    #[cfg(not(feature = "rsa"))]
    fn rs256(jwk: &Value) -> Result<Secret, JwkError> {
        for name in ["n", "e", "p", "q", "dp", "dq", "qi"] {
            bytes(jwk, name)?;
        }
        Ok(Secret::Rs256)
    }

    /// The signed assertion for `client_id` at `audience` (the endpoint's URL), at `now`;
    /// `None` when this build cannot sign with the key (its algorithm's feature is off):
    /// the call is then not made and the token is refused as not checkable.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        jti_input: &[u8],
        now: u64,
    ) -> Option<String> {
        let jti = Base64UrlUnpadded::encode_string(&jti_digest(jti_input)?[..18]);
        let mut header = serde_json::json!({"alg": self.key.alg(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = Value::from(&**kid);
        }
        let claims = serde_json::json!({"iss": client_id, "sub": client_id, "aud": audience,
            "jti": jti, "iat": now, "exp": now.saturating_add(60)});
        let mut jwt = Base64UrlUnpadded::encode_string(header.to_string().as_bytes());
        jwt.push('.');
        jwt.push_str(&Base64UrlUnpadded::encode_string(
            claims.to_string().as_bytes(),
        ));
        let signature = self.sign(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&Base64UrlUnpadded::encode_string(&signature));
        Some(jwt)
    }

    fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        match &self.key {
            #[cfg(feature = "eddsa")]
            Secret::Ed25519(seed) => {
                use ed25519_dalek::Signer;
                let seed: [u8; 32] = seed.as_ref().try_into().ok()?;
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                Some(key.sign(message).to_bytes().to_vec())
            }
            #[cfg(feature = "ecdsa")]
            Secret::Es256(signer) => signer.sign(message).map(|s| s.to_vec()),
            #[cfg(feature = "rsa")]
            Secret::Rs256(signer) => signer.sign(message),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = message;
                None
            }
        }
    }
}

/// The decoded member `name` of `jwk`, unpadded base64url and not empty.
#[inline(never)]
fn bytes(jwk: &Value, name: &'static str) -> Result<Vec<u8>, JwkError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(|text| Base64UrlUnpadded::decode_vec(text).ok())
        .filter(|bytes| !bytes.is_empty())
        .ok_or((name, "is required: unpadded base64url".into()))
}

#[cfg(feature = "gateway")]
fn jti_digest(input: &[u8]) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    Some(Sha256::digest(input).into())
}

/// Without SHA-256 (no signature feature) nothing is signed either.
#[cfg(not(feature = "gateway"))]
fn jti_digest(_: &[u8]) -> Option<[u8; 32]> {
    None
}

#[cfg(test)]
#[cfg(all(feature = "rsa", feature = "ecdsa", feature = "eddsa"))]
mod tests {
    use super::*;
    use crate::sign::rs256::tests::{DP, DQ, N, P, Q, QI};
    use alloc::format;
    use serde_json::json;

    /// RFC 6979 A.2.5's P-256 key and RFC 7515 A.2's RSA key, as private JWKs.
    fn jwks() -> [Value; 3] {
        [
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed",
                   "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}),
            json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "ec",
                   "x": "YP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Y",
                   "y": "eQP-EAi4vJmkGunpVii8ZPLxsgwtfp9Rd6PClNRGIpk",
                   "d": "ya-p2EW6dRZrXCFXZ7HWk05Qw9s26JsSe4piKxIPZyE"}),
            json!({"kty": "RSA", "alg": "RS256", "kid": "rsa", "n": N, "e": "AQAB",
                   "d": "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",
                   "p": P, "q": Q, "dp": DP, "dq": DQ, "qi": QI}),
        ]
    }

    fn decode(text: &Value) -> Vec<u8> {
        Base64UrlUnpadded::decode_vec(text.as_str().unwrap()).unwrap()
    }

    #[test]
    fn assertions_verify_with_the_public_key() {
        for (jwk, alg) in jwks().iter().zip(["EdDSA", "ES256", "RS256"]) {
            let key = AssertionKey::from_jwk(jwk).unwrap();
            assert_eq!(key.key.alg(), alg);
            let jwt = key
                .assertion("gw", "https://idp/introspect", b"call", 7)
                .unwrap();
            let (input, signature) = jwt.rsplit_once('.').unwrap();
            let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
            let header: Value = serde_json::from_slice(
                &Base64UrlUnpadded::decode_vec(input.split('.').next().unwrap()).unwrap(),
            )
            .unwrap();
            assert_eq!(header["alg"], alg);
            assert_eq!(header["kid"], jwk["kid"]);
            let verifies = |message: &[u8]| match alg {
                "ES256" => {
                    crate::verify::es256::P256Key::new(&decode(&jwk["x"]), &decode(&jwk["y"]))
                        .unwrap()
                        .verify(message, &signature)
                }
                "RS256" => crate::verify::rsa::RsaKey::new(&decode(&jwk["n"]), &decode(&jwk["e"]))
                    .unwrap()
                    .verify_pkcs1v15(crate::verify::rsa::Hash::Sha256, message, &signature),
                _ => {
                    use ed25519_dalek::Verifier;
                    let seed: [u8; 32] = decode(&jwk["d"]).try_into().unwrap();
                    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
                    let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
                    public.verify(message, &signature).is_ok()
                }
            };
            assert!(verifies(input.as_bytes()), "{alg}");
            assert!(!verifies(b"another message"), "{alg}");
            // Deterministic: the same call, the same assertion.
            assert_eq!(
                key.assertion("gw", "https://idp/introspect", b"call", 7),
                Some(jwt)
            );
        }
    }

    #[test]
    fn debug_shows_no_private_member() {
        for jwk in jwks() {
            let printed = format!("{:?}", AssertionKey::from_jwk(&jwk).unwrap());
            assert!(printed.contains("(redacted)"), "{printed}");
            for member in ["d", "p", "q", "dp", "dq", "qi"] {
                if let Some(secret) = jwk[member].as_str() {
                    assert!(!printed.contains(&secret[..8]), "`{member}` in {printed}");
                }
            }
        }
    }

    #[test]
    fn the_alg_must_be_the_key_types() {
        let [ed, mut ec, mut rsa] = jwks();
        ec["alg"] = json!("RS256");
        rsa["alg"] = json!("ES256");
        let mut ed = ed;
        ed["alg"] = json!("ES256");
        for (jwk, expected) in [(ed, "`EdDSA`"), (ec, "`ES256`"), (rsa, "`RS256`")] {
            let (member, why) = AssertionKey::from_jwk(&jwk).unwrap_err();
            assert_eq!(member, "alg");
            assert!(why.contains(expected), "{why}");
        }
        let (member, _) =
            AssertionKey::from_jwk(&json!({"kty": "EC", "crv": "P-384"})).unwrap_err();
        assert_eq!(member, "");
    }
}
