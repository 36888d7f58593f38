//! Bearer tokens: extraction from the `Authorization` header, JWS decoding, signature
//! verification through jwt-compact, claim validation, and the scopes a token grants.
//!
//! The order of checks follows RFC 8725: the algorithm comes from the issuer's allow-list,
//! never from the token alone; `alg: none`, `crit` headers and keys of the wrong type are
//! refused before any cryptography runs; keys come only from the issuer's configured set.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use crate::jwks::Algorithm;
use crate::policy::{Issuer, KeySource, Policy};
use crate::scope::ScopeSet;
use crate::time::UnixTime;

mod bearer;
mod claims;
pub(crate) mod decode;
pub(crate) mod error;
#[cfg(feature = "gateway")]
pub(crate) mod fingerprint;
pub mod jwt_authn;
mod signature;

pub use crate::policy::DEFAULT_SCOPE_CLAIMS;
pub use bearer::{bearer_token, credential_of, AuthScheme, BearerError};
pub(crate) use claims::claim_value;
pub use claims::scopes_of;
use claims::{confirmation, effective_scopes, header_value, match_audiences, numeric_date};
pub use decode::{decode, UnverifiedToken};
pub use error::{TokenError, MAX_TOKEN_LEN};
use signature::verify_signature;

/// What a validated token grants: everything a decision needs, detached from the token text
/// so that a host can cache it until [`Principal::expires_at`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Position of the issuer in the policy's `issuers`.
    pub issuer: usize,
    /// The `sub` claim, if a string.
    pub subject: Option<Box<str>>,
    /// The effective scopes: scope claims plus mapped roles.
    pub scopes: ScopeSet,
    /// `exp` plus the issuer's leeway: the last second the token is accepted.
    pub expires_at: u64,
    /// The `auth_time` claim, for RFC 9470 `max_age`.
    pub auth_time: Option<u64>,
    /// The `acr` claim (authentication context class), for RFC 9470 `acr_values`.
    pub acr: Option<Box<str>>,
    /// Values for the policy's forwarded headers, by position in `forward.claims`.
    pub forwarded: Vec<(usize, String)>,
    /// Which audiences its `aud` fits: a token for one resource is refused on another's
    /// requests.
    pub audiences: AudienceMatch,
    /// What the token is bound to (RFC 7800 `cnf`), if anything: such a token is only
    /// accepted with its proof of possession.
    pub confirmation: Option<Confirmation>,
}

/// What a token is bound to, from its `cnf` claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// `cnf.jkt`: the RFC 7638 thumbprint of a DPoP key (RFC 9449 §6.1), base64url.
    DpopKey(Box<str>),
    /// `cnf.x5t#S256`: the SHA-256 of the client's DER certificate (RFC 8705 §3.1).
    Certificate([u8; 32]),
}

impl Confirmation {
    /// Is a request with this client certificate digest (if the host knows one) the
    /// possessor? A DPoP-bound token is never proven by a bearer request.
    pub(crate) fn proven_by(
        &self,
        client_certificate_sha256: Option<&[u8; 32]>,
    ) -> Result<(), TokenError> {
        match self {
            Self::DpopKey(_) => Err(TokenError::DpopBound),
            Self::Certificate(expected) => match client_certificate_sha256 {
                Some(presented) if presented == expected => Ok(()),
                _ => Err(TokenError::CertificateMismatch),
            },
        }
    }
}

/// Which of a policy's audience lists a token's `aud` fits: its issuer's `audiences`, and
/// each of `resources` that has its own.
///
/// ```
/// use scopegate_core::AudienceMatch;
/// assert!(AudienceMatch::ALL.fits_issuer());
/// assert!(!AudienceMatch::NONE.fits_issuer());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AudienceMatch(u64);

impl AudienceMatch {
    /// Fits nothing.
    pub const NONE: Self = Self(0);
    /// Fits every audience list, for principals a host builds itself (tests, benchmarks).
    pub const ALL: Self = Self(u64::MAX);

    /// Does it fit the issuer's `audiences` (what requests outside every resource with
    /// audiences of its own need)?
    pub fn fits_issuer(self) -> bool {
        self.0 & 1 != 0
    }

    /// Does it fit the audiences of the resource at `index` in the policy's `resources`?
    pub fn fits_resource(self, index: usize) -> bool {
        index < 63 && self.0 & (1 << (index + 1)) != 0
    }

    pub(crate) fn with_issuer(self, fits: bool) -> Self {
        Self(self.0 | u64::from(fits))
    }

    pub(crate) fn with_resource(self, index: usize, fits: bool) -> Self {
        if fits && index < 63 {
            Self(self.0 | (1 << (index + 1)))
        } else {
            self
        }
    }
}

/// How the signature of a token is dealt with.
#[derive(Clone, Copy)]
pub enum Signature<'k> {
    /// Verify against the policy's inline keys and these fetched ones.
    Verify(&'k crate::policy::KeyStore),
    /// As `Verify`, and for an issuer whose tokens Envoy's `jwt_authn` verifies, the
    /// request's metadata as the host serializes it (see [`jwt_authn`]), asked for only then.
    VerifyOrAskHost(&'k crate::policy::KeyStore, &'k dyn Fn() -> Option<Vec<u8>>),
}

/// Validates `token` for `policy` at `now`: RFC 8725's header checks, the issuer, `typ`,
/// the claims and scopes, and last the signature.
pub(crate) fn authenticate(
    policy: &Policy,
    token: &str,
    signature: Signature<'_>,
    now: UnixTime,
) -> Result<Principal, TokenError> {
    validate(policy, token, now, |decoded, alg, issuer_index, issuer| {
        check_signature(policy, decoded, alg, issuer_index, issuer, signature)
    })
}

/// [`authenticate`] trusting the signature, without the signature code: the pre-check's
/// one path, for a token that came from the IdP and that the gateway verifies anyway (the browser package links only this one).
pub(crate) fn authenticate_trusted(
    policy: &Policy,
    token: &str,
    now: UnixTime,
) -> Result<Principal, TokenError> {
    validate(policy, token, now, |_, _, _, _| Ok(()))
}

/// Every check of [`authenticate`], with `signature` asked last.
fn validate(
    policy: &Policy,
    token: &str,
    now: UnixTime,
    signature: impl FnOnce(&UnverifiedToken<'_>, Algorithm, usize, &Issuer) -> Result<(), TokenError>,
) -> Result<Principal, TokenError> {
    let decoded = decode(token)?;
    let alg = header_algorithm(&decoded)?;
    let claims = &decoded.claims;
    let iss = match claims.get("iss") {
        Some(Value::String(iss)) => iss.as_str(),
        Some(_) => {
            return Err(TokenError::InvalidClaim {
                claim: String::from("iss"),
                expected: "a string",
            })
        }
        None => return Err(TokenError::MissingIssuer),
    };
    let (issuer_index, issuer) = policy
        .issuer_by_name(iss)
        .ok_or_else(|| TokenError::UntrustedIssuer(String::from(iss)))?;
    allowed_by(issuer, alg)?;
    if let Some(required) = &issuer.token_type {
        let typ = decoded.header.get("typ").and_then(Value::as_str);
        if !typ.is_some_and(|typ| media_type_matches(typ, required)) {
            return Err(TokenError::WrongType);
        }
    }
    // Every check that needs no key comes before the signature: an expired token, or one
    // for another audience, costs no signature arithmetic (nor a key re-fetch for its
    // `kid`). What the claims say is only used once the signature verifies.
    let principal = principal_of_claims(policy, issuer_index, claims, now, true)?;
    signature(&decoded, alg, issuer_index, issuer)?;
    Ok(principal)
}

/// [`authenticate`] asking the host, with the payload of a token that Envoy's `jwt_authn`
/// verified: what the gateway's token cache keeps, so that a later request with the same
/// token is checked against its own metadata ([`host_verifies`]) without decoding it again.
#[cfg(feature = "gateway")]
pub(crate) fn authenticate_keeping_payload(
    policy: &Policy,
    token: &str,
    keys: &crate::policy::KeyStore,
    metadata: &dyn Fn() -> Option<Vec<u8>>,
    now: UnixTime,
) -> Result<(Principal, Option<Value>), TokenError> {
    let mut payload = None;
    let principal = validate(policy, token, now, |decoded, alg, issuer_index, issuer| {
        let signature = Signature::VerifyOrAskHost(keys, metadata);
        check_signature(policy, decoded, alg, issuer_index, issuer, signature)?;
        if matches!(issuer.keys, KeySource::JwtAuthn(_)) {
            payload = Some(decoded.claims.clone());
        }
        Ok(())
    })?;
    Ok((principal, payload))
}

/// Whether the request's metadata (asked for only now) holds `claims` as the payload the
/// issuer's `jwt_authn` provider verified: its payload in the metadata is the signature
/// check; no metadata, or another token's, is no check (never a pass).
pub(crate) fn host_verifies(
    issuer: &Issuer,
    claims: &Value,
    metadata: &dyn Fn() -> Option<Vec<u8>>,
) -> Result<(), TokenError> {
    let KeySource::JwtAuthn(key) = &issuer.keys else {
        return Err(TokenError::NotVerifiedByHost);
    };
    if metadata().is_some_and(|bytes| jwt_authn::verified(&bytes, key, claims)) {
        Ok(())
    } else {
        Err(TokenError::NotVerifiedByHost)
    }
}

/// The signature check of [`authenticate`].
fn check_signature(
    policy: &Policy,
    decoded: &UnverifiedToken<'_>,
    alg: Algorithm,
    issuer_index: usize,
    issuer: &Issuer,
    signature: Signature<'_>,
) -> Result<(), TokenError> {
    let claims = &decoded.claims;
    match (signature, &issuer.keys) {
        // Its payload in the metadata is the signature check; no metadata, or another
        // token's, is no check (never a pass).
        (Signature::VerifyOrAskHost(_, metadata), KeySource::JwtAuthn(_)) => {
            host_verifies(issuer, claims, metadata)?;
        }
        (Signature::Verify(_), KeySource::JwtAuthn(_)) => {
            return Err(TokenError::NotVerifiedByHost)
        }
        (Signature::Verify(store) | Signature::VerifyOrAskHost(store, _), _) => {
            verify_signature(
                decoded,
                alg,
                issuer,
                issuer_index,
                store.keys_for(policy, issuer_index),
            )?;
        }
    }
    Ok(())
}

/// The principal of a token's claims, from a verified JWT or an introspection answer:
/// validity times, audience, confirmation, scopes. `exp` is required of a JWT; an
/// introspection answer without one is valid until the issuer says otherwise.
pub(crate) fn principal_of_claims(
    policy: &Policy,
    issuer_index: usize,
    claims: &Value,
    now: UnixTime,
    exp_required: bool,
) -> Result<Principal, TokenError> {
    let Some(issuer) = policy.issuers.get(issuer_index) else {
        return Err(TokenError::MissingIssuer);
    };
    let leeway = issuer.leeway;
    let expires_at = match numeric_date(claims, "exp")? {
        Some(exp) => {
            let expires_at = exp.saturating_add(leeway);
            if now.0 > expires_at {
                return Err(TokenError::Expired { exp, now: now.0 });
            }
            expires_at
        }
        None if exp_required => return Err(TokenError::MissingClaim("exp")),
        None => u64::MAX,
    };
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if nbf > now.0.saturating_add(leeway) {
            return Err(TokenError::NotYetValid { nbf });
        }
    }
    if let Some(iat) = numeric_date(claims, "iat")? {
        if iat > now.0.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture { iat });
        }
    }
    let audiences = match_audiences(claims, &issuer.audiences, &policy.resources)?;
    let confirmation = confirmation(claims)?;
    let scopes = effective_scopes(policy, claims)?;
    let forwarded = policy
        .forward_claims()
        .enumerate()
        .filter_map(|(index, (_, claim))| {
            claim_value(claims, claim)
                .and_then(header_value)
                .map(|v| (index, v))
        })
        .collect();
    Ok(Principal {
        issuer: issuer_index,
        subject: claims.get("sub").and_then(Value::as_str).map(Into::into),
        scopes,
        expires_at,
        auth_time: numeric_date(claims, "auth_time")?,
        acr: match claims.get("acr") {
            None => None,
            Some(Value::String(acr)) => Some(acr.as_str().into()),
            Some(_) => {
                return Err(TokenError::InvalidClaim {
                    claim: String::from("acr"),
                    expected: "a string",
                })
            }
        },
        forwarded,
        audiences,
        confirmation,
    })
}

/// The claims of a JWS the issuer at `issuer_index` signed for the gateway itself (an RFC
/// 9701 introspection answer): the header checks of RFC 8725, the signature against the
/// issuer's keys, and `typ` equal to `typ`; no access-token claim is checked.
pub(crate) fn issuer_signed_claims(
    policy: &Policy,
    issuer_index: usize,
    jws: &str,
    typ: &str,
    store: &crate::policy::KeyStore,
) -> Result<Value, TokenError> {
    let decoded = decode(jws)?;
    let alg = header_algorithm(&decoded)?;
    let issuer = policy
        .issuers
        .get(issuer_index)
        .ok_or(TokenError::MissingIssuer)?;
    allowed_by(issuer, alg)?;
    verify_signature(
        &decoded,
        alg,
        issuer,
        issuer_index,
        store.keys_for(policy, issuer_index),
    )?;
    let found = decoded.header.get("typ").and_then(Value::as_str);
    if !found.is_some_and(|found| media_type_matches(found, typ)) {
        return Err(TokenError::WrongType);
    }
    Ok(decoded.claims)
}

/// The header's algorithm, after RFC 8725's checks on the header: never `none`, only an
/// algorithm scopegate implements, no `crit` (no extension is understood).
fn header_algorithm(decoded: &UnverifiedToken<'_>) -> Result<Algorithm, TokenError> {
    let alg_name = decoded.algorithm();
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    let alg = Algorithm::from_name(alg_name)
        .ok_or_else(|| TokenError::UnsupportedAlgorithm(String::from(alg_name)))?;
    if decoded.header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    Ok(alg)
}

/// Is `alg` on the issuer's allow-list?
fn allowed_by(issuer: &Issuer, alg: Algorithm) -> Result<(), TokenError> {
    if issuer.algorithms.contains(&alg) {
        return Ok(());
    }
    Err(TokenError::AlgorithmNotAllowed {
        alg,
        issuer: String::from(&*issuer.issuer),
    })
}

/// `typ` values compare as media types: case-insensitive, `application/` optional (RFC 7515
/// §4.1.9, RFC 9068 §2.1).
fn media_type_matches(typ: &str, required: &str) -> bool {
    fn subtype(media_type: &str) -> &str {
        match media_type.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &media_type[12..],
            _ => media_type,
        }
    }
    subtype(typ).eq_ignore_ascii_case(subtype(required))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert!(media_type_matches("at+jwt", "at+jwt"));
        assert!(media_type_matches("application/AT+JWT", "at+jwt"));
        assert!(!media_type_matches("JWT", "at+jwt"));
    }
}
