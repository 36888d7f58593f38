//! Why a DPoP proof is refused.

use alloc::string::String;
use core::fmt;

/// Why a DPoP proof is refused: 401 `invalid_dpop_proof` with a `DPoP` challenge.
///
/// [`ProofError::description`] is a fixed text safe for a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// A DPoP token without a `DPoP` header.
    Missing,
    /// More than one `DPoP` header, or one holding several values.
    Several,
    /// Not a compact JWS of JSON objects, or too large.
    Malformed(&'static str),
    /// `typ` is not `dpop+jwt`.
    WrongType,
    /// `alg: none`, a symmetric algorithm, or one the policy does not allow.
    AlgorithmNotAllowed(String),
    /// No usable public key in `jwk`.
    BadKey(String),
    /// A required claim is absent or of the wrong type.
    InvalidClaim(&'static str),
    /// `htm` is not the request method.
    WrongMethod,
    /// `htu` is not the request URI.
    WrongUri,
    /// `iat` is older than the window.
    Stale {
        /// The proof's `iat`.
        iat: u64,
        /// The time of the check.
        now: u64,
    },
    /// `iat` is in the future, beyond the leeway.
    IssuedInFuture {
        /// The proof's `iat`.
        iat: u64,
    },
    /// `ath` is not the hash of the access token.
    WrongTokenHash,
    /// The key is not the one the access token is bound to (`cnf.jkt`).
    WrongKey,
    /// The signature does not verify.
    BadSignature,
    /// The proof was already used.
    Replayed,
    /// The policy wants a server-provided nonce (RFC 9449 §9) and the proof has none, or
    /// one that is not current: answered with `use_dpop_nonce` and this fresh nonce in a
    /// `DPoP-Nonce` header.
    UseNonce(String),
    /// This build cannot verify proofs.
    VerifierNotBuilt,
}

impl ProofError {
    /// A fixed description for the `error_description` of a challenge.
    pub const fn description(&self) -> &'static str {
        match self {
            Self::Missing => "A DPoP proof is required with a DPoP-bound access token",
            Self::Several => "Send exactly one DPoP proof",
            Self::Malformed(_) => "The DPoP proof is malformed",
            Self::WrongType => "The DPoP proof is not of type dpop+jwt",
            Self::AlgorithmNotAllowed(_) => "The DPoP proof algorithm is not accepted",
            Self::BadKey(_) => "The DPoP proof has no usable public key",
            Self::InvalidClaim(_) => "The DPoP proof claims are invalid",
            Self::WrongMethod => "The DPoP proof is for another request method",
            Self::WrongUri => "The DPoP proof is for another URI",
            Self::Stale { .. } => "The DPoP proof is too old",
            Self::IssuedInFuture { .. } => "The DPoP proof is issued in the future",
            Self::WrongTokenHash => "The DPoP proof is for another access token",
            Self::WrongKey => "The DPoP proof key is not the key the access token is bound to",
            Self::BadSignature | Self::VerifierNotBuilt => "The DPoP proof signature is invalid",
            Self::Replayed => "The DPoP proof was already used",
            Self::UseNonce(_) => "Resource server requires nonce in DPoP proof",
        }
    }

    /// A stable machine-readable code, for stats and the JavaScript binding.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Missing => "dpop_proof_missing",
            Self::Several => "dpop_proof_several",
            Self::Malformed(_) => "dpop_proof_malformed",
            Self::WrongType => "dpop_proof_wrong_type",
            Self::AlgorithmNotAllowed(_) => "dpop_proof_algorithm_not_allowed",
            Self::BadKey(_) => "dpop_proof_bad_key",
            Self::InvalidClaim(_) => "dpop_proof_invalid_claim",
            Self::WrongMethod => "dpop_proof_wrong_method",
            Self::WrongUri => "dpop_proof_wrong_uri",
            Self::Stale { .. } => "dpop_proof_stale",
            Self::IssuedInFuture { .. } => "dpop_proof_issued_in_future",
            Self::WrongTokenHash => "dpop_proof_wrong_token_hash",
            Self::WrongKey => "dpop_proof_wrong_key",
            Self::BadSignature => "dpop_proof_bad_signature",
            Self::Replayed => "dpop_proof_replayed",
            Self::UseNonce(_) => "dpop_proof_use_nonce",
            Self::VerifierNotBuilt => "dpop_proof_verifier_not_built",
        }
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "DPoP proof is malformed: {what}"),
            Self::AlgorithmNotAllowed(alg) => {
                write!(f, "DPoP proof algorithm `{alg}` is not accepted")
            }
            Self::BadKey(why) => write!(f, "DPoP proof `jwk`: {why}"),
            Self::InvalidClaim(claim) => {
                write!(
                    f,
                    "DPoP proof claim `{claim}` is missing or of the wrong type"
                )
            }
            Self::Stale { iat, now } => write!(f, "DPoP proof issued at {iat} is too old at {now}"),
            Self::IssuedInFuture { iat } => write!(f, "DPoP proof is issued in the future ({iat})"),
            other => f.write_str(other.description()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProofError {}
