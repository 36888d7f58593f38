//! DPoP (RFC 9449): an access token bound to a key (`cnf.jkt`) is accepted only with a
//! proof, a JWT signed by that key for this request (`Authorization: DPoP <token>` and a
//! `DPoP` header).
//!
//! The checks of RFC 9449 §4.3, cheapest first so that a forged or misdirected proof costs
//! no signature arithmetic: one proof, a JWS whose `typ` is `dpop+jwt`, an asymmetric
//! algorithm the policy allows, a public key in `jwk` of that algorithm's type, `htm` the
//! request method, `htu` the request URI (normalized), `iat` within the window, `ath` the
//! hash of the access token, `jti` present, the key's RFC 7638 thumbprint the token's
//! `cnf.jkt`; then the signature. The host remembers the `jti` of accepted proofs
//! ([`ReplayCache`]) so that none is used twice.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::algorithm::{Algorithm, KeyType};
use crate::time::UnixTime;

pub(crate) mod error;
mod htu;
mod nonce;
mod proof_id;
#[cfg(feature = "gateway")]
mod replay;

pub use error::ProofError;
pub use nonce::{NonceAge, NonceRules};
pub use proof_id::ProofId;
#[cfg(feature = "gateway")]
pub use replay::{first_use_shared, ReplayCache};

/// Proof algorithms accepted when the policy does not say (`dpop.algorithms`).
pub const DEFAULT_PROOF_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::Es256,
    Algorithm::EdDsa,
    Algorithm::Ps256,
    Algorithm::Rs256,
];
/// How old a proof may be, in seconds (`dpop.proof_max_age_seconds`).
pub const DEFAULT_PROOF_MAX_AGE_SECONDS: u64 = 60;
/// How far in the future a proof's `iat` may be (`dpop.proof_leeway_seconds`).
pub const DEFAULT_PROOF_LEEWAY_SECONDS: u64 = 5;
/// Proofs a gateway remembers against replay (`dpop.replay_cache_entries`).
pub const DEFAULT_REPLAY_CACHE_ENTRIES: usize = 16 * 1024;
/// Longest `jti` accepted, in bytes.
pub const MAX_JTI_LEN: usize = 256;

/// The compiled `dpop` section of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopRules {
    pub(crate) algorithms: Vec<Algorithm>,
    /// The algorithms as a challenge's `algs`: space-separated.
    pub(crate) algs: Box<str>,
    pub(crate) max_age: u64,
    pub(crate) leeway: u64,
    /// `scheme://authority` clients use, when the host's own differ (TLS ended before it).
    pub(crate) origin: Option<Box<str>>,
    pub(crate) replay_cache_entries: usize,
    /// Bearer tokens are refused: only DPoP-bound ones are accepted.
    pub(crate) required: bool,
    /// Server-provided nonces, when proofs must carry one.
    pub(crate) nonce: Option<NonceRules>,
}

impl DpopRules {
    /// The accepted proof algorithms, space-separated, as a challenge's `algs`.
    pub fn algs(&self) -> &str {
        &self.algs
    }

    /// How many proofs a gateway remembers against replay.
    pub fn replay_cache_entries(&self) -> usize {
        self.replay_cache_entries
    }

    /// Are bearer tokens refused?
    pub fn required(&self) -> bool {
        self.required
    }

    /// The server-provided nonces proofs must carry, if any.
    pub fn nonce(&self) -> Option<&NonceRules> {
        self.nonce.as_ref()
    }
}

/// What a proof is checked against.
#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
pub(crate) struct ProofContext<'a> {
    pub(crate) method: &'a str,
    /// The request target (`:path`).
    pub(crate) target: &'a str,
    /// `:scheme` and `:authority`, when the host gives them.
    pub(crate) scheme: Option<&'a str>,
    pub(crate) authority: Option<&'a str>,
    /// The access token, as sent.
    pub(crate) token: &'a str,
    /// The token's `cnf.jkt`.
    pub(crate) jkt: &'a str,
}

/// The one proof of a request's `DPoP` header values.
pub(crate) fn single_proof<'a>(values: &[&'a str]) -> Result<&'a str, ProofError> {
    let mut present = values.iter().map(|v| v.trim()).filter(|v| !v.is_empty());
    match (present.next(), present.next()) {
        (None, _) => Err(ProofError::Missing),
        (Some(_), Some(_)) => Err(ProofError::Several),
        (Some(proof), None) if proof.contains([',', ' ', '\t']) => Err(ProofError::Several),
        (Some(proof), None) => Ok(proof),
    }
}

impl DpopRules {
    /// Checks `proof` for the request of `context` at `now`; the identity of the accepted
    /// proof, for the replay check.
    pub(crate) fn check(
        &self,
        proof: &str,
        context: &ProofContext<'_>,
        now: UnixTime,
    ) -> Result<ProofId, ProofError> {
        let decoded = crate::token::decode::decode(proof).map_err(|err| match err {
            crate::token::error::TokenError::Malformed(what) => ProofError::Malformed(what),
            crate::token::error::TokenError::TooLarge => {
                ProofError::Malformed("longer than 16 KiB")
            }
            _ => ProofError::Malformed("nested too deeply"),
        })?;
        let header = decoded.header();
        let typ = header.get("typ").and_then(Value::as_str);
        if !typ.is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt")) {
            return Err(ProofError::WrongType);
        }
        let alg_name = decoded.algorithm();
        // RFC 9864's fully specified `Ed25519` is what current DPoP clients (the npm `dpop`
        // package, say) put in a proof signed by an Ed25519 key.
        let alg = match alg_name {
            "Ed25519" => Some(Algorithm::EdDsa),
            name => Algorithm::from_name(name),
        };
        let alg = alg
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or_else(|| ProofError::AlgorithmNotAllowed(String::from(alg_name)))?;
        if header.contains_key("crit") {
            return Err(ProofError::Malformed("a `crit` header is not understood"));
        }
        let Some(Value::Object(jwk)) = header.get("jwk") else {
            return Err(ProofError::BadKey(String::from("missing or not an object")));
        };
        let key =
            crate::jwks::parse_key(&Value::Object(jwk.clone())).map_err(ProofError::BadKey)?;
        if !key.fits(alg) {
            return Err(ProofError::BadKey(alloc::format!(
                "a {} key cannot verify {alg}",
                key.key_type()
            )));
        }
        let claims = decoded.claims();
        let text = |name: &'static str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .ok_or(ProofError::InvalidClaim(name))
        };
        let jti = text("jti")?;
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(ProofError::InvalidClaim("jti"));
        }
        if text("htm")? != context.method {
            return Err(ProofError::WrongMethod);
        }
        self.check_uri(text("htu")?, context)?;
        let iat = self.check_iat(claims.get("iat"), now)?;
        let nonce_stale = self.check_nonce(claims.get("nonce"), now)?;
        let ath = text("ath")?;
        digest::check_binding(jwk, key.key_type(), context, ath)?;
        if !digest::signature_verifies(&key, alg, &decoded) {
            return Err(ProofError::BadSignature);
        }
        Ok(ProofId {
            digest: digest::proof_digest(context.jkt, jti),
            expires_at: iat.saturating_add(self.max_age),
            nonce_stale,
        })
    }

    /// The proof's `iat`, within the leeway of now and no older than `max_age`.
    fn check_iat(&self, iat: Option<&Value>, now: UnixTime) -> Result<u64, ProofError> {
        let iat = match iat {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or(ProofError::InvalidClaim("iat"))?,
            _ => return Err(ProofError::InvalidClaim("iat")),
        };
        if iat > now.0.saturating_add(self.leeway) {
            return Err(ProofError::IssuedInFuture { iat });
        }
        if iat.saturating_add(self.max_age) < now.0 {
            return Err(ProofError::Stale { iat, now: now.0 });
        }
        Ok(iat)
    }

    /// Whether the proof's nonce is the previous window's; a missing or unknown nonce asks
    /// for a fresh one (RFC 9449 §8). No nonce rules: `false`.
    fn check_nonce(&self, nonce: Option<&Value>, now: UnixTime) -> Result<bool, ProofError> {
        let Some(nonces) = &self.nonce else {
            return Ok(false);
        };
        match nonce
            .and_then(Value::as_str)
            .and_then(|n| nonces.age(n, now))
        {
            Some(age) => Ok(age == NonceAge::Previous),
            None => Err(ProofError::UseNonce(nonces.issue(now))),
        }
    }

    fn check_uri(&self, htu: &str, context: &ProofContext<'_>) -> Result<(), ProofError> {
        let origin = match (&self.origin, context.scheme, context.authority) {
            (Some(origin), _, _) => alloc::borrow::Cow::Borrowed(&**origin),
            (None, Some(scheme), Some(authority)) => {
                alloc::borrow::Cow::Owned(alloc::format!("{scheme}://{authority}"))
            }
            _ => return Err(ProofError::WrongUri),
        };
        let expected = htu::request_uri(&origin, context.target).ok_or(ProofError::WrongUri)?;
        match htu::normalize_uri(htu) {
            Some(presented) if presented == expected => Ok(()),
            _ => Err(ProofError::WrongUri),
        }
    }
}

/// The RFC 7638 thumbprint input of a public key: its required members in lexicographic
/// order, no whitespace. The members were checked to be base64url by `parse_key`.
#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
fn thumbprint_input(jwk: &Map<String, Value>, key_type: KeyType) -> String {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or("");
    match key_type {
        KeyType::Rsa => alloc::format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e"),
            member("n")
        ),
        KeyType::EcP256 => alloc::format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            member("x"),
            member("y")
        ),
        KeyType::Ed25519 => {
            alloc::format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, member("x"))
        }
        // No proof key is symmetric: `parse_key` refuses `k`.
        KeyType::Symmetric => String::new(),
    }
}

/// What needs SHA-256, built with the verifiers.
#[cfg(feature = "gateway")]
mod digest {
    use alloc::string::String;
    use base64ct::{Base64UrlUnpadded, Encoding};
    use serde_json::{Map, Value};
    use sha2::{Digest, Sha256};

    use super::{thumbprint_input, ProofContext, ProofError};
    use crate::jwks::{Algorithm, Jwk, KeyType};
    use crate::token::decode::UnverifiedToken;

    /// `ath` is the access token's hash, and the key is the one `cnf.jkt` names.
    pub(super) fn check_binding(
        jwk: &Map<String, Value>,
        key_type: KeyType,
        context: &ProofContext<'_>,
        ath: &str,
    ) -> Result<(), ProofError> {
        let token_hash = Base64UrlUnpadded::encode_string(&Sha256::digest(context.token));
        if ath != token_hash {
            return Err(ProofError::WrongTokenHash);
        }
        let thumbprint = Sha256::digest(thumbprint_input(jwk, key_type));
        if Base64UrlUnpadded::encode_string(&thumbprint) != context.jkt {
            return Err(ProofError::WrongKey);
        }
        Ok(())
    }

    pub(super) fn signature_verifies(
        key: &Jwk,
        alg: Algorithm,
        proof: &UnverifiedToken<'_>,
    ) -> bool {
        key.material
            .verify(alg, proof.signing_input().as_bytes(), proof.signature())
            .unwrap_or(false)
    }

    /// 64 bits of SHA-256: two distinct proofs among a worker's few thousand share them
    /// with a chance of about 2^-40, and a crafted `jti` can only make its own proof look
    /// replayed. A `u64` key also lets the replay cache share its map code with the token
    /// caches'.
    pub(super) fn proof_digest(jkt: &str, jti: &str) -> u64 {
        let mut hasher = Sha256::new();
        hasher.update(jkt);
        hasher.update([0]);
        hasher.update(jti);
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

/// Without the verifiers no proof can be checked.
#[cfg(not(feature = "gateway"))]
mod digest {
    use alloc::string::String;
    use serde_json::{Map, Value};

    use super::{ProofContext, ProofError};
    use crate::jwks::{Algorithm, Jwk, KeyType};
    use crate::token::decode::UnverifiedToken;

    pub(super) fn check_binding(
        _: &Map<String, Value>,
        _: KeyType,
        _: &ProofContext<'_>,
        _: &str,
    ) -> Result<(), ProofError> {
        Err(ProofError::VerifierNotBuilt)
    }

    pub(super) fn signature_verifies(_: &Jwk, _: Algorithm, _: &UnverifiedToken<'_>) -> bool {
        false
    }

    pub(super) fn proof_digest(_: &str, _: &str) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_proof_per_request() {
        assert_eq!(single_proof(&[]), Err(ProofError::Missing));
        assert_eq!(single_proof(&[" "]), Err(ProofError::Missing));
        assert_eq!(single_proof(&["a.b.c"]), Ok("a.b.c"));
        assert_eq!(single_proof(&["a.b.c", "d.e.f"]), Err(ProofError::Several));
        assert_eq!(single_proof(&["a.b.c, d.e.f"]), Err(ProofError::Several));
    }

    #[cfg(feature = "gateway")]
    #[test]
    fn thumbprint_of_rfc_7638_example() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        use sha2::{Digest, Sha256};
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let input = thumbprint_input(jwk.as_object().unwrap(), KeyType::Rsa);
        assert_eq!(
            Base64UrlUnpadded::encode_string(&Sha256::digest(input)),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_input_is_rfc_7638_order() {
        // RFC 7638 §3.1's example key.
        let jwk: Value = serde_json::json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "n": "0vx"});
        assert_eq!(
            thumbprint_input(jwk.as_object().unwrap(), KeyType::Rsa),
            r#"{"e":"AQAB","kty":"RSA","n":"0vx"}"#
        );
    }
}
