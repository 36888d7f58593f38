//! Signature verification through jwt-compact, with the issuer's keys.

use alloc::string::String;

use crate::jwks::{Algorithm, KeySet};
use crate::policy::Issuer;

use super::{TokenError, UnverifiedToken};

pub(super) fn verify_signature(
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
pub(super) fn verify_hs256(
    secret: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, TokenError> {
    use jwt_compact::alg::{Hs256, Hs256Key};
    Ok(verify_with(
        &Hs256,
        &Hs256Key::new(secret),
        message,
        signature,
    ))
}

#[cfg(not(feature = "hmac"))]
pub(super) fn verify_hs256(_: &[u8], _: &[u8], _: &[u8]) -> Result<bool, TokenError> {
    Err(TokenError::VerifierNotBuilt(Algorithm::Hs256))
}

#[cfg(feature = "hmac")]
pub(super) fn verify_with<A: jwt_compact::Algorithm>(
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
pub(crate) fn verify_with_key(
    material: &crate::jwks::Material,
    alg: Algorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, TokenError> {
    use crate::jwks::Material;
    match material {
        #[cfg(feature = "rsa")]
        Material::Rsa(key) => {
            use crate::verify::rsa::Hash;
            let (hash, pss) = match alg {
                Algorithm::Rs256 => (Hash::Sha256, false),
                Algorithm::Rs384 => (Hash::Sha384, false),
                Algorithm::Rs512 => (Hash::Sha512, false),
                Algorithm::Ps256 => (Hash::Sha256, true),
                Algorithm::Ps384 => (Hash::Sha384, true),
                Algorithm::Ps512 => (Hash::Sha512, true),
                _ => return Err(TokenError::KeyMismatch { alg }),
            };
            let rsa = crate::verify::Rsa { hash, pss };
            Ok(verify_with(&rsa, key, message, signature))
        }
        #[cfg(feature = "ecdsa")]
        Material::EcP256(key) if alg == Algorithm::Es256 => {
            Ok(verify_with(&crate::verify::Es256, key, message, signature))
        }
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
