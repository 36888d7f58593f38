//! Why a token is refused.

use alloc::string::String;
use core::fmt;

use crate::algorithm::Algorithm;
use crate::dpop::error::ProofError;

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
    /// `cnf.jkt`: the token is bound to a DPoP key (RFC 9449 §6) and came as a bearer
    /// token, without a proof.
    DpopBound,
    /// `cnf.x5t#S256`: the token is bound to a client certificate (RFC 8705 §3) that the
    /// connection did not present, or the host cannot tell which one it presented.
    CertificateMismatch,
    /// `cnf` holds no confirmation method scopegate can check (only `jkt` and `x5t#S256`
    /// are understood): the token is refused rather than taken as a bearer token.
    UnsupportedConfirmation,
    /// `Authorization: DPoP` with a token that has no `cnf.jkt` (RFC 9449 §7.1).
    NotDpopBound,
    /// A bearer token where the policy accepts only DPoP-bound tokens (`dpop.required`).
    DpopRequired,
    /// The DPoP proof is refused: answered with 401 `invalid_dpop_proof`.
    Proof(ProofError),
    /// The introspection endpoint answered `active: false` (RFC 7662 §2.2): revoked,
    /// expired, or never issued.
    Inactive,
    /// The introspection endpoint is down, too slow, refused the gateway's credentials or
    /// answered something that is not an RFC 7662 answer: the token cannot be judged, so it
    /// is refused.
    IntrospectionUnavailable,
    /// The token is unknown to the gateway and its introspection budget for the issuer
    /// (calls in flight, calls per second) is spent: the token may well be valid, so it is
    /// answered 503 with `Retry-After`, not 401.
    IntrospectionBusy,
    /// The issuer's tokens are verified by Envoy's `jwt_authn`, and the request's metadata
    /// holds no payload it verified for this token (it found none, or a forged one, or
    /// verified another).
    NotVerifiedByHost,
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
            Self::DpopBound => "The access token is bound to a DPoP key and needs a DPoP proof",
            Self::CertificateMismatch => {
                "The access token is bound to a client certificate this connection did not present"
            }
            Self::UnsupportedConfirmation => {
                "The access token is bound to a key in a way that cannot be checked"
            }
            Self::NotDpopBound => "The access token is not bound to a DPoP key",
            Self::DpopRequired => "This resource accepts DPoP-bound access tokens only",
            Self::Proof(err) => err.description(),
            Self::Inactive => "The access token is not active",
            Self::IntrospectionUnavailable => "The access token could not be checked; try again",
            Self::IntrospectionBusy => {
                "The access token cannot be checked right now; retry after the given delay"
            }
            Self::NotVerifiedByHost => "The access token signature is invalid",
        }
    }

    /// The issuer whose remote key set is worth fetching again because of this error: the
    /// token names a `kid` its keys do not have (the issuer may have rotated), or its keys
    /// have not arrived yet. The gateway rate-limits these fetches (`jwks_refetch_seconds`).
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
            Self::DpopBound => "dpop_bound",
            Self::CertificateMismatch => "certificate_mismatch",
            Self::UnsupportedConfirmation => "unsupported_confirmation",
            Self::InvalidScopeClaim { .. } => "invalid_scope_claim",
            Self::NotDpopBound => "dpop_not_bound",
            Self::DpopRequired => "dpop_required",
            Self::Proof(err) => err.code(),
            Self::Inactive => "token_inactive",
            Self::IntrospectionUnavailable => "introspection_unavailable",
            Self::IntrospectionBusy => "introspection_busy",
            Self::NotVerifiedByHost => "jwt_authn_unverified",
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
            Self::DpopBound => f.write_str(
                "`cnf.jkt` binds the token to a DPoP key, but it came as a bearer token",
            ),
            Self::CertificateMismatch => f.write_str(
                "`cnf.x5t#S256` binds the token to a client certificate the connection did not \
                 present",
            ),
            Self::UnsupportedConfirmation => f.write_str(
                "`cnf` has neither `jkt` nor `x5t#S256`, the confirmation methods scopegate checks",
            ),
            Self::NotDpopBound => {
                f.write_str("the token came with `Authorization: DPoP` but has no `cnf.jkt`")
            }
            Self::DpopRequired => {
                f.write_str("a bearer token, where the policy accepts DPoP-bound tokens only")
            }
            Self::Proof(err) => write!(f, "{err}"),
            Self::Inactive => {
                f.write_str("the introspection endpoint says the token is not active")
            }
            Self::IntrospectionUnavailable => f.write_str(
                "the introspection endpoint gave no usable answer (down, slow, refused the \
                 gateway's credentials, or not an RFC 7662 answer)",
            ),
            Self::NotVerifiedByHost => f.write_str(
                "jwt_authn verified no such token: its metadata holds no payload for it (no \
                 token, a forged one, or jwt_authn reads another header)",
            ),
            Self::IntrospectionBusy => f.write_str(
                "the gateway's introspection budget for the issuer is spent (calls in flight \
                 or calls per second)",
            ),
            Self::InvalidScopeClaim { claim } => write!(
                f,
                "claim `{claim}` holds a scope with a character outside RFC 6749 scope-token"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenError {}
