//! Bearer tokens: extraction from the `Authorization` header, JWS decoding, signature
//! verification through jwt-compact, claim validation, and the scopes a token grants.
//!
//! The order of checks follows RFC 8725: the algorithm comes from the issuer's allow-list,
//! never from the token alone; `alg: none`, `crit` headers and keys of the wrong type are
//! refused before any cryptography runs; keys come only from the issuer's configured set.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use crate::jwks::{Algorithm, KeySet};
use crate::policy::{ClaimName, Issuer, Policy};
use crate::scope::{first_invalid_scope_byte, ScopeSet};
use crate::UnixTime;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a token was refused. Answered with 401 `invalid_token`.
///
/// [`TokenError::description`] is a fixed text safe for a `WWW-Authenticate` header;
/// `Display` adds the details (claim values, key ids) for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    TooLarge,
    /// Not three base64url parts, or a part is not JSON of the right shape.
    Malformed(&'static str),
    /// JSON nested deeper than the limit.
    TooDeep,
    /// `alg: none`: unsigned tokens are never accepted.
    AlgNone,
    /// An algorithm scopegate does not implement.
    UnsupportedAlgorithm(String),
    /// A `crit` header: no JWS extension is understood, so none may be required.
    CriticalHeader,
    /// No `iss` claim.
    MissingIssuer,
    /// No configured issuer has this `iss`.
    UntrustedIssuer(String),
    /// The issuer does not allow this algorithm.
    AlgorithmNotAllowed {
        /// The header's `alg`.
        alg: Algorithm,
        /// The issuer.
        issuer: String,
    },
    /// The issuer's keys have not been loaded yet (remote JWKS not fetched).
    KeysUnavailable {
        /// Position of the issuer in the policy's `issuers`.
        issuer: usize,
    },
    /// The header's `kid` is not in the issuer's key set.
    UnknownKid {
        /// The header's `kid`.
        kid: String,
        /// Position of the issuer in the policy's `issuers`.
        issuer: usize,
    },
    /// No key of the issuer may be used with this algorithm (RFC 8725 §2.1 confusion).
    KeyMismatch {
        /// The header's `alg`.
        alg: Algorithm,
    },
    /// The signature does not verify.
    BadSignature {
        /// Position of the issuer in the policy's `issuers` when the signature was checked
        /// against its key set, which may have rotated a key under the same `kid`; `None`
        /// for a shared secret.
        issuer: Option<usize>,
    },
    /// This build of scopegate cannot verify this algorithm.
    VerifierNotBuilt(Algorithm),
    /// `typ` is not the required token type.
    WrongType,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an impossible value.
    InvalidClaim {
        /// The claim.
        claim: String,
        /// What was expected.
        expected: &'static str,
    },
    /// `exp` plus leeway is in the past.
    Expired {
        /// The `exp` claim.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// `nbf` minus leeway is in the future.
    NotYetValid {
        /// The `nbf` claim.
        nbf: u64,
    },
    /// `iat` minus leeway is in the future.
    IssuedInFuture {
        /// The `iat` claim.
        iat: u64,
    },
    /// `aud` does not contain a configured audience.
    WrongAudience,
    /// A scope claim has a character scopes may not contain.
    InvalidScopeClaim {
        /// The claim.
        claim: String,
    },
}

impl TokenError {
    /// A fixed description for the `error_description` of a challenge: no token content is
    /// echoed into response headers.
    pub fn description(&self) -> &'static str {
        match self {
            Self::TooLarge => "The access token is too large",
            Self::Malformed(_) | Self::TooDeep => "The access token is malformed",
            Self::AlgNone => "Unsigned access tokens are not accepted",
            Self::UnsupportedAlgorithm(_) | Self::AlgorithmNotAllowed { .. } => {
                "The access token algorithm is not accepted"
            }
            Self::CriticalHeader => "The access token has critical header parameters",
            Self::MissingIssuer | Self::UntrustedIssuer(_) => {
                "The access token issuer is not trusted"
            }
            Self::KeysUnavailable { .. } => "The signing keys are not available yet",
            Self::UnknownKid { .. } => "The access token signing key is unknown",
            Self::KeyMismatch { .. } => "The access token algorithm does not fit the signing key",
            Self::BadSignature { .. } | Self::VerifierNotBuilt(_) => {
                "The access token signature is invalid"
            }
            Self::WrongType => "The token is not an access token",
            Self::MissingClaim(_) | Self::InvalidClaim { .. } | Self::InvalidScopeClaim { .. } => {
                "The access token claims are invalid"
            }
            Self::Expired { .. } => "The access token expired",
            Self::NotYetValid { .. } | Self::IssuedInFuture { .. } => {
                "The access token is not valid yet"
            }
            Self::WrongAudience => "The access token is not meant for this resource",
        }
    }

    /// The issuer whose remote key set is worth fetching again because of this error: the
    /// token names a `kid` its keys do not have (the issuer may have rotated), or its keys
    /// have not arrived yet. Hosts rate-limit these fetches with
    /// [`KeyRefresh::request_early`](crate::refresh::KeyRefresh::request_early).
    ///
    /// ```
    /// use scopegate_core::TokenError;
    /// let err = TokenError::UnknownKid { kid: "2026-11".into(), issuer: 0 };
    /// assert_eq!(err.refetch_issuer(), Some(0));
    /// // An issuer that rotated its key but kept the `kid`.
    /// assert_eq!(TokenError::BadSignature { issuer: Some(0) }.refetch_issuer(), Some(0));
    /// assert_eq!(TokenError::BadSignature { issuer: None }.refetch_issuer(), None);
    /// ```
    pub fn refetch_issuer(&self) -> Option<usize> {
        match self {
            Self::UnknownKid { issuer, .. } | Self::KeysUnavailable { issuer } => Some(*issuer),
            Self::BadSignature { issuer } => *issuer,
            _ => None,
        }
    }

    /// A stable machine-readable code, used for stats and by the JavaScript binding.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "token_too_large",
            Self::Malformed(_) => "token_malformed",
            Self::TooDeep => "token_too_deep",
            Self::AlgNone => "alg_none",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::CriticalHeader => "critical_header",
            Self::MissingIssuer => "missing_issuer",
            Self::UntrustedIssuer(_) => "untrusted_issuer",
            Self::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Self::KeysUnavailable { .. } => "keys_unavailable",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::BadSignature { .. } => "bad_signature",
            Self::VerifierNotBuilt(_) => "verifier_not_built",
            Self::WrongType => "wrong_type",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssuedInFuture { .. } => "issued_in_future",
            Self::WrongAudience => "wrong_audience",
            Self::InvalidScopeClaim { .. } => "invalid_scope_claim",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "token is longer than {} KiB", MAX_TOKEN_LEN / 1024),
            Self::Malformed(what) => write!(f, "token is malformed: {what}"),
            Self::TooDeep => f.write_str("token JSON is nested too deeply"),
            Self::AlgNone => f.write_str("token is unsigned (`alg: none`)"),
            Self::UnsupportedAlgorithm(alg) => write!(f, "algorithm `{alg}` is not supported"),
            Self::CriticalHeader => f.write_str("token has a `crit` header parameter"),
            Self::MissingIssuer => f.write_str("token has no `iss` claim"),
            Self::UntrustedIssuer(iss) => write!(f, "issuer `{iss}` is not configured"),
            Self::AlgorithmNotAllowed { alg, issuer } => {
                write!(f, "algorithm {alg} is not allowed for issuer `{issuer}`")
            }
            Self::KeysUnavailable { .. } => {
                f.write_str("the issuer's keys have not been fetched yet")
            }
            Self::UnknownKid { kid, .. } => {
                write!(f, "no key with kid `{kid}` in the issuer's key set")
            }
            Self::KeyMismatch { alg } => write!(
                f,
                "no key of the issuer may be used with {alg} (algorithm/key type mismatch)"
            ),
            Self::BadSignature { .. } => f.write_str("signature does not verify"),
            Self::VerifierNotBuilt(alg) => {
                write!(f, "this build of scopegate cannot verify {alg} signatures")
            }
            Self::WrongType => f.write_str("token `typ` is not the required access token type"),
            Self::MissingClaim(claim) => write!(f, "token has no `{claim}` claim"),
            Self::InvalidClaim { claim, expected } => {
                write!(f, "claim `{claim}` is not {expected}")
            }
            Self::Expired { exp, now } => {
                write!(f, "token expired at {exp} (now {now}, leeway included)")
            }
            Self::NotYetValid { nbf } => write!(f, "token is not valid before {nbf}"),
            Self::IssuedInFuture { iat } => write!(f, "token is issued in the future ({iat})"),
            Self::WrongAudience => f.write_str("`aud` contains no configured audience"),
            Self::InvalidScopeClaim { claim } => write!(
                f,
                "claim `{claim}` holds a scope with a character outside RFC 6749 scope-token"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenError {}

/// Why the `Authorization` header cannot be read. Answered with 400 `invalid_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerError {
    /// More than one credential: two bearer tokens, or a bearer token beside another
    /// scheme's credentials, whether in repeated headers or in one folded header.
    SeveralTokens,
    /// `Bearer` with nothing after it.
    Empty,
    /// An `access_token` query parameter: tokens are only read from the header.
    TokenInQuery,
}

impl BearerError {
    /// A fixed description, safe for a `WWW-Authenticate` header.
    pub const fn description(self) -> &'static str {
        match self {
            Self::SeveralTokens => "More than one credential in the Authorization header",
            Self::Empty => "The bearer token is empty",
            Self::TokenInQuery => "Send the access token in the Authorization header only",
        }
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BearerError {}

/// The bearer token of a request, from all its `Authorization` header values.
///
/// `Ok(None)` when there is no header, only empty ones, or another scheme. Repeated
/// headers are read as their folded form (RFC 9110 §5.3: the values joined by commas,
/// empty ones dropped), which is what Envoy hands a filter; so two headers and one folded
/// header always get the same answer, and a comma can never be part of a bearer token
/// (RFC 6750 `b64token`).
///
/// ```
/// use scopegate_core::token::{bearer_token, BearerError};
/// assert_eq!(bearer_token(&["Bearer abc.def.ghi"]), Ok(Some("abc.def.ghi")));
/// assert_eq!(bearer_token(&["Basic dXNlcg=="]), Ok(None));
/// assert_eq!(bearer_token(&["", "Bearer abc.def.ghi"]), Ok(Some("abc.def.ghi")));
/// assert_eq!(bearer_token(&["Bearer a", "Bearer b"]), Err(BearerError::SeveralTokens));
/// assert_eq!(bearer_token(&["Bearer a,Bearer b"]), Err(BearerError::SeveralTokens));
/// ```
pub fn bearer_token<'a>(authorization: &[&'a str]) -> Result<Option<&'a str>, BearerError> {
    let mut present = authorization
        .iter()
        .map(|value| trim_blanks(value))
        .filter(|value| !value.is_empty());
    let Some(first) = present.next() else {
        return Ok(None);
    };
    if present.next().is_none() {
        return credential(first);
    }
    // Rare: several non-empty headers. Read their folded form; its token, if the first
    // value is a bearer one, runs into the comma and the next value.
    let folded = authorization
        .iter()
        .map(|value| trim_blanks(value))
        .filter(|value| !value.is_empty())
        .collect::<alloc::vec::Vec<_>>()
        .join(", ");
    match credential(&folded) {
        Ok(None) => Ok(None),
        Ok(Some(_)) | Err(_) => Err(BearerError::SeveralTokens),
    }
}

/// The bearer token of one (possibly folded) `Authorization` value, trimmed.
fn credential(value: &str) -> Result<Option<&str>, BearerError> {
    let (scheme, rest) = match value.bytes().position(|b| is_blank(b) || b == b',') {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("Bearer") {
        // `Basic xyz, Bearer t`: a bearer token hidden behind another scheme's credentials.
        let hides_bearer = value.split(',').skip(1).any(|element| {
            let scheme = trim_blanks(element).split([' ', '\t']).next().unwrap_or("");
            scheme.eq_ignore_ascii_case("bearer")
        });
        return if hides_bearer {
            Err(BearerError::SeveralTokens)
        } else {
            Ok(None)
        };
    }
    let token = trim_blanks(rest);
    if token.is_empty() {
        return Err(BearerError::Empty);
    }
    if token.bytes().any(|b| is_blank(b) || b == b',') {
        return Err(BearerError::SeveralTokens);
    }
    Ok(Some(token))
}

// Bytes, not char patterns: this runs on every request over the whole token, and a
// `[char; N]` pattern decodes UTF-8 as it goes (a third of a cached decision, measured in
// the filter's build).
const fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `value` without leading and trailing spaces and tabs. Both ends are ASCII bytes, so the
/// slice is always on character boundaries.
fn trim_blanks(value: &str) -> &str {
    let bytes = value.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| !is_blank(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |last| last + 1);
    value.get(start..end).unwrap_or("")
}

/// A decoded JWS whose signature has not been checked.
///
/// ```
/// let token = "eyJhbGciOiJFUzI1NiJ9.eyJzY29wZSI6InJlc291cmNlOnJlYWQifQ.c2ln";
/// let decoded = scopegate_core::token::decode(token).unwrap();
/// assert_eq!(decoded.algorithm(), "ES256");
/// assert_eq!(decoded.claims()["scope"], "resource:read");
/// ```
#[derive(Clone, Debug)]
pub struct UnverifiedToken<'t> {
    header: Map<String, Value>,
    claims: Value,
    signing_input: &'t str,
    signature: Vec<u8>,
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

fn signature_part_len(token: &str) -> usize {
    token.rsplit('.').next().map_or(0, |s| s.len() + 1)
}

fn decode_json_object(part: &str, malformed: &'static str) -> Result<Value, TokenError> {
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
    /// Values for the policy's forwarded headers, by position in `forward.claims`.
    pub forwarded: Vec<(usize, String)>,
}

/// How the signature of a token is dealt with.
#[derive(Clone, Copy, Debug)]
pub enum Signature<'k> {
    /// Verify against the policy's inline keys and these fetched ones.
    Verify(&'k crate::KeyStore),
    /// Trust it: for client-side pre-checks only, where the token came from the IdP and the
    /// gateway verifies it anyway.
    Trust,
}

/// Validates `token` for `policy` at `now`: the whole of RFC 8725's checks, then the
/// claims, then the scopes.
pub(crate) fn authenticate(
    policy: &Policy,
    token: &str,
    signature: Signature<'_>,
    now: UnixTime,
) -> Result<Principal, TokenError> {
    let decoded = decode(token)?;
    let alg_name = decoded.algorithm();
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    let alg = Algorithm::from_name(alg_name)
        .ok_or_else(|| TokenError::UnsupportedAlgorithm(String::from(alg_name)))?;
    if decoded.header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
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
    if !issuer.algorithms.contains(&alg) {
        return Err(TokenError::AlgorithmNotAllowed {
            alg,
            issuer: String::from(iss),
        });
    }
    if let Signature::Verify(store) = signature {
        verify_signature(
            &decoded,
            alg,
            issuer,
            issuer_index,
            store.keys_for(policy, issuer_index),
        )?;
    }
    if let Some(required) = &issuer.token_type {
        let typ = decoded.header.get("typ").and_then(Value::as_str);
        if !typ.is_some_and(|typ| media_type_matches(typ, required)) {
            return Err(TokenError::WrongType);
        }
    }
    let leeway = issuer.leeway;
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    let expires_at = exp.saturating_add(leeway);
    if now.0 > expires_at {
        return Err(TokenError::Expired { exp, now: now.0 });
    }
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
    check_audience(claims, &issuer.audiences)?;
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
        forwarded,
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

fn verify_signature(
    token: &UnverifiedToken<'_>,
    alg: Algorithm,
    issuer: &Issuer,
    issuer_index: usize,
    keys: Option<&KeySet>,
) -> Result<(), TokenError> {
    let message = token.signing_input.as_bytes();
    if alg == Algorithm::Hs256 {
        let secret = issuer
            .hmac_secret
            .as_deref()
            .ok_or(TokenError::KeyMismatch { alg })?;
        return if verify_hs256(secret, message, &token.signature)? {
            Ok(())
        } else {
            Err(TokenError::BadSignature { issuer: None })
        };
    }
    let keys = keys.ok_or(TokenError::KeysUnavailable {
        issuer: issuer_index,
    })?;
    let kid = token.key_id();
    let mut named = keys
        .keys()
        .filter(|key| kid.is_none_or(|kid| key.kid() == Some(kid)))
        .peekable();
    if named.peek().is_none() {
        return Err(match kid {
            Some(kid) => TokenError::UnknownKid {
                kid: String::from(kid),
                issuer: issuer_index,
            },
            None => TokenError::KeyMismatch { alg },
        });
    }
    let mut fitting = named.filter(|key| key.fits(alg)).peekable();
    if fitting.peek().is_none() {
        return Err(TokenError::KeyMismatch { alg });
    }
    for key in fitting {
        if verify_with_key(&key.material, alg, message, &token.signature)? {
            return Ok(());
        }
    }
    Err(TokenError::BadSignature {
        issuer: Some(issuer_index),
    })
}

#[cfg(feature = "hmac")]
fn verify_hs256(secret: &[u8], message: &[u8], signature: &[u8]) -> Result<bool, TokenError> {
    use jwt_compact::alg::{Hs256, Hs256Key};
    Ok(verify_with(
        &Hs256,
        &Hs256Key::new(secret),
        message,
        signature,
    ))
}

#[cfg(not(feature = "hmac"))]
fn verify_hs256(_: &[u8], _: &[u8], _: &[u8]) -> Result<bool, TokenError> {
    Err(TokenError::VerifierNotBuilt(Algorithm::Hs256))
}

#[cfg(feature = "hmac")]
fn verify_with<A: jwt_compact::Algorithm>(
    alg: &A,
    key: &A::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use jwt_compact::AlgorithmSignature;
    if let Some(len) = <A::Signature as AlgorithmSignature>::LENGTH {
        // jwt-compact's fixed-size signature parsers expect the length to be checked first.
        if signature.len() != len.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => alg.verify_signature(&signature, key, message),
        Err(_) => false,
    }
}

#[cfg_attr(
    not(any(feature = "rsa", feature = "ecdsa", feature = "eddsa")),
    allow(unused_variables)
)]
fn verify_with_key(
    material: &crate::jwks::Material,
    alg: Algorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, TokenError> {
    use crate::jwks::Material;
    match material {
        #[cfg(feature = "rsa")]
        Material::Rsa(key) => {
            use jwt_compact::alg::Rsa;
            let rsa = match alg {
                Algorithm::Rs256 => Rsa::rs256(),
                Algorithm::Rs384 => Rsa::rs384(),
                Algorithm::Rs512 => Rsa::rs512(),
                Algorithm::Ps256 => Rsa::ps256(),
                Algorithm::Ps384 => Rsa::ps384(),
                Algorithm::Ps512 => Rsa::ps512(),
                _ => return Err(TokenError::KeyMismatch { alg }),
            };
            Ok(verify_with(&rsa, key, message, signature))
        }
        #[cfg(feature = "ecdsa")]
        Material::EcP256(key) if alg == Algorithm::Es256 => Ok(verify_with(
            &jwt_compact::alg::Es256,
            key,
            message,
            signature,
        )),
        #[cfg(feature = "eddsa")]
        Material::Ed25519(key) if alg == Algorithm::EdDsa => Ok(verify_with(
            &jwt_compact::alg::Ed25519,
            key,
            message,
            signature,
        )),
        Material::NotBuilt => Err(TokenError::VerifierNotBuilt(alg)),
        #[allow(unreachable_patterns)]
        _ => Err(TokenError::KeyMismatch { alg }),
    }
}

/// A NumericDate claim (RFC 7519 §2): a non-negative number of seconds, fractions dropped.
fn numeric_date(claims: &Value, claim: &'static str) -> Result<Option<u64>, TokenError> {
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

fn check_audience(claims: &Value, audiences: &[Box<str>]) -> Result<(), TokenError> {
    let accepted = |aud: &str| audiences.iter().any(|a| **a == *aud);
    match claims.get("aud") {
        None => Err(TokenError::MissingClaim("aud")),
        Some(Value::String(aud)) if accepted(aud) => Ok(()),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            if list.iter().filter_map(Value::as_str).any(accepted) {
                Ok(())
            } else {
                Err(TokenError::WrongAudience)
            }
        }
        Some(Value::String(_)) => Err(TokenError::WrongAudience),
        Some(_) => Err(TokenError::InvalidClaim {
            claim: String::from("aud"),
            expected: "a string or an array of strings",
        }),
    }
}

/// Looks a claim up by name, or by JSON pointer when the configured name starts with `/`
/// (`/realm_access/roles`).
pub(crate) fn claim_value<'c>(claims: &'c Value, name: &ClaimName) -> Option<&'c Value> {
    match name {
        ClaimName::Top(name) => claims.get(&**name),
        ClaimName::Pointer(pointer) => claims.pointer(pointer),
    }
}

/// The claims that hold scopes when no policy says otherwise (`scopes.claims`' default).
pub const DEFAULT_SCOPE_CLAIMS: [&str; 3] = ["scope", "scp", "permissions"];

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
/// use scopegate_core::token::scopes_of;
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
fn claimed_scopes<'c>(
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
fn header_value(value: &Value) -> Option<String> {
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
    use super::*;

    #[test]
    fn bearer_extraction() {
        assert_eq!(bearer_token(&[]), Ok(None));
        assert_eq!(bearer_token(&["bearer  t.o.k "]), Ok(Some("t.o.k")));
        assert_eq!(bearer_token(&["BEARER\tt"]), Ok(Some("t")));
        assert_eq!(bearer_token(&["Bearer"]), Err(BearerError::Empty));
        assert_eq!(bearer_token(&["Bearer   "]), Err(BearerError::Empty));
        assert_eq!(
            bearer_token(&["Bearer a b"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(
            bearer_token(&["Bearer a,b"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(
            bearer_token(&["Basic x, Bearer y"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(bearer_token(&["Basic x"]), Ok(None));
        assert_eq!(
            bearer_token(&["Basic x,\tBEARER y"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(bearer_token(&["Basic Bearer y"]), Ok(None));
        assert_eq!(bearer_token(&["Bearertoken"]), Ok(None));
        assert_eq!(
            bearer_token(&["Basic x,Bearer"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(bearer_token(&["Bearer,x"]), Err(BearerError::SeveralTokens));
    }

    #[test]
    fn repeated_headers_are_read_as_their_folded_form() {
        assert_eq!(bearer_token(&["", ""]), Ok(None));
        assert_eq!(bearer_token(&["", " ", "Bearer t"]), Ok(Some("t")));
        assert_eq!(bearer_token(&["Bearer t", ""]), Ok(Some("t")));
        assert_eq!(bearer_token(&["Basic x", "Basic y"]), Ok(None));
        for (repeated, folded) in [
            (&["Bearer a", "Bearer b"][..], "Bearer a, Bearer b"),
            (&["Bearer a", "Bearer a"][..], "Bearer a,Bearer a"),
            (&["Basic x", "Bearer t"][..], "Basic x, Bearer t"),
            (&["Bearer t", "Basic x"][..], "Bearer t,Basic x"),
            (&["Bearer", "Bearer t"][..], "Bearer, Bearer t"),
            (&["Basic x", "Basic y"][..], "Basic x,Basic y"),
        ] {
            assert_eq!(bearer_token(repeated), bearer_token(&[folded]), "{folded}");
        }
    }

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

    #[test]
    fn media_types() {
        assert!(media_type_matches("at+jwt", "at+jwt"));
        assert!(media_type_matches("application/AT+JWT", "at+jwt"));
        assert!(!media_type_matches("JWT", "at+jwt"));
    }
}
