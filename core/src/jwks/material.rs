//! Parsed public keys and the signature check each kind gets.
//!
//! Kept apart from the key set so that everything that checks a signature (a token's, a
//! DPoP proof's) reaches the verifiers without reaching the JWKS parser.

use crate::algorithm::Algorithm;
use crate::token::error::TokenError;

/// A public key parsed for the verifier this build has for its type.
#[derive(Clone, Debug)]
pub(crate) enum Material {
    #[cfg(feature = "rsa")]
    Rsa(crate::verify::rsa::RsaKey),
    #[cfg(feature = "ecdsa")]
    EcP256(crate::verify::es256::P256Key),
    #[cfg(feature = "eddsa")]
    Ed25519(crate::verify::ed25519::Ed25519Key),
    /// This build has no verifier for the key's type; the key was checked for shape only.
    NotBuilt,
}

impl Material {
    #[cfg_attr(
        not(any(feature = "rsa", feature = "ecdsa", feature = "eddsa")),
        allow(unused_variables)
    )]
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, TokenError> {
        match self {
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
            Material::Ed25519(key) if alg == Algorithm::EdDsa => {
                Ok(verify_with(&crate::verify::EdDsa, key, message, signature))
            }
            Material::NotBuilt => Err(TokenError::VerifierNotBuilt(alg)),
            #[allow(unreachable_patterns)]
            _ => Err(TokenError::KeyMismatch { alg }),
        }
    }
}

#[cfg(feature = "gateway")]
pub(crate) fn verify_hs256(
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

#[cfg(not(feature = "gateway"))]
pub(crate) fn verify_hs256(_: &[u8], _: &[u8], _: &[u8]) -> Result<bool, TokenError> {
    Err(TokenError::VerifierNotBuilt(Algorithm::Hs256))
}

#[cfg(feature = "gateway")]
pub(crate) fn verify_with<A: jwt_compact::Algorithm>(
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
