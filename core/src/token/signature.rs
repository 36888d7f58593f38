//! Signature verification through jwt-compact, with the issuer's keys.

use alloc::string::String;

use crate::algorithm::Algorithm;
use crate::jwks::material::verify_hs256;
use crate::jwks::KeySet;
use crate::policy::Issuer;

use super::decode::UnverifiedToken;
use super::error::TokenError;

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
        if key.material.verify(alg, message, &token.signature)? {
            return Ok(());
        }
    }
    Err(TokenError::BadSignature {
        issuer: Some(issuer_index),
    })
}
