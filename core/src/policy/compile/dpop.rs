//! The `dpop` section: proof algorithms, the `iat` window, the origin and the replay cache.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};

use super::super::document::{DpopDocument, DpopNonceDocument};
use super::PolicyError;
use crate::dpop::{
    DpopRules, NonceRules, DEFAULT_PROOF_ALGORITHMS, DEFAULT_PROOF_LEEWAY_SECONDS,
    DEFAULT_PROOF_MAX_AGE_SECONDS, DEFAULT_REPLAY_CACHE_ENTRIES,
};
use crate::jwks::{Algorithm, KeyType};

/// Longest `iat` window accepted: a proof is a per-request credential.
const MAX_PROOF_AGE_SECONDS: u64 = 600;
const MAX_PROOF_LEEWAY_SECONDS: u64 = 60;
const MAX_REPLAY_CACHE_ENTRIES: usize = 1 << 20;

pub(super) fn compile_dpop(doc: &DpopDocument) -> Result<DpopRules, PolicyError> {
    let algorithms = compile_algorithms(doc.algorithms.as_deref())?;
    // `EdDSA` proofs are also accepted under RFC 9864's name for them, and the challenge
    // says so.
    let mut algs: Vec<&str> = Vec::with_capacity(algorithms.len() + 1);
    for alg in &algorithms {
        algs.push(alg.name());
        if *alg == Algorithm::EdDsa {
            algs.push("Ed25519");
        }
    }
    let max_age = doc
        .proof_max_age_seconds
        .unwrap_or(DEFAULT_PROOF_MAX_AGE_SECONDS);
    if !(1..=MAX_PROOF_AGE_SECONDS).contains(&max_age) {
        return Err(PolicyError::new(
            "dpop.proof_max_age_seconds",
            format!("must be from 1 to {MAX_PROOF_AGE_SECONDS}"),
        ));
    }
    let leeway = doc
        .proof_leeway_seconds
        .unwrap_or(DEFAULT_PROOF_LEEWAY_SECONDS);
    if leeway > MAX_PROOF_LEEWAY_SECONDS {
        return Err(PolicyError::new(
            "dpop.proof_leeway_seconds",
            format!("must be at most {MAX_PROOF_LEEWAY_SECONDS}"),
        ));
    }
    let replay_cache_entries = doc
        .replay_cache_entries
        .unwrap_or(DEFAULT_REPLAY_CACHE_ENTRIES);
    if !(1..=MAX_REPLAY_CACHE_ENTRIES).contains(&replay_cache_entries) {
        return Err(PolicyError::new(
            "dpop.replay_cache_entries",
            format!("must be from 1 to {MAX_REPLAY_CACHE_ENTRIES}"),
        ));
    }
    let origin = match &doc.origin {
        None => None,
        Some(origin) => Some(compile_origin(origin)?),
    };
    // Without `server-sections` (the browser package) `nonce` is never read.
    let nonce = match &doc.nonce {
        Some(nonce) if cfg!(feature = "server-sections") => Some(compile_nonce(nonce)?),
        _ => None,
    };
    Ok(DpopRules {
        nonce,
        algs: algs.join(" ").into(),
        algorithms,
        max_age,
        leeway,
        origin,
        replay_cache_entries,
        required: doc.required,
    })
}

/// `dpop.algorithms`: asymmetric algorithms only, each once, in the policy's order.
fn compile_algorithms(names: Option<&[String]>) -> Result<Vec<Algorithm>, PolicyError> {
    match names {
        None => Ok(Vec::from(DEFAULT_PROOF_ALGORITHMS)),
        Some([]) => Err(PolicyError::new(
            "dpop.algorithms",
            "at least one algorithm is required",
        )),
        Some(names) => {
            let mut algorithms = Vec::with_capacity(names.len());
            for (index, name) in names.iter().enumerate() {
                let path = format!("dpop.algorithms[{index}]");
                let alg = Algorithm::from_name(name).ok_or_else(|| {
                    PolicyError::new(&*path, format!("unknown algorithm `{name}`"))
                })?;
                if alg.key_type() == KeyType::Symmetric {
                    return Err(PolicyError::new(
                        path,
                        format!(
                            "{alg} is symmetric; a DPoP proof is signed with a public key pair"
                        ),
                    ));
                }
                if !algorithms.contains(&alg) {
                    algorithms.push(alg);
                }
            }
            Ok(algorithms)
        }
    }
}

/// Longest nonce lifetime: a nonce bounds how long a proof made ahead of time is usable.
const MAX_NONCE_LIFETIME_SECONDS: u64 = 3_600;
/// Default nonce lifetime (`dpop.nonce.lifetime_seconds`).
const DEFAULT_NONCE_LIFETIME_SECONDS: u64 = 60;

/// The nonce secret (never in an error message) and lifetime.
fn compile_nonce(doc: &DpopNonceDocument) -> Result<NonceRules, PolicyError> {
    // Named in the environment, not read (the browser package): no nonce is ever accepted.
    let secret = match doc.secret.inline() {
        Some(secret) => {
            let secret = Base64UrlUnpadded::decode_vec(secret)
                .map_err(|_| PolicyError::new("dpop.nonce.secret", "is not unpadded base64url"))?;
            if !(32..=64).contains(&secret.len()) {
                return Err(PolicyError::new(
                    "dpop.nonce.secret",
                    "must be 32 to 64 random bytes (43 to 86 base64url characters), the same for every gateway",
                ));
            }
            Some(secret.into_boxed_slice())
        }
        None => None,
    };
    let lifetime = doc
        .lifetime_seconds
        .unwrap_or(DEFAULT_NONCE_LIFETIME_SECONDS);
    if !(1..=MAX_NONCE_LIFETIME_SECONDS).contains(&lifetime) {
        return Err(PolicyError::new(
            "dpop.nonce.lifetime_seconds",
            format!("must be from 1 to {MAX_NONCE_LIFETIME_SECONDS}"),
        ));
    }
    Ok(NonceRules { secret, lifetime })
}

/// `scheme://host[:port]`, nothing after it.
fn compile_origin(origin: &str) -> Result<Box<str>, PolicyError> {
    let error = || {
        PolicyError::new(
            "dpop.origin",
            format!(
                "`{origin}` is not an origin: give `https://host` or `https://host:port`, no path"
            ),
        )
    };
    let (scheme, authority) = origin.split_once("://").ok_or_else(error)?;
    let fine = matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !fine {
        return Err(error());
    }
    Ok(String::from(origin).into_boxed_str())
}
