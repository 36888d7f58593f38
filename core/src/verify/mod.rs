//! Signature verifiers of our own, plugged into jwt-compact through its `Algorithm` trait,
//! where the crates jwt-compact pins are slow in WebAssembly (measured in
//! `docs/benchmarks.md`, "Signature verification").
//!
//! Verification only: none of these can sign, so `sign` takes a key type with no values.

#[cfg(feature = "eddsa")]
pub(crate) mod ed25519;
#[cfg(feature = "ecdsa")]
pub(crate) mod es256;
#[cfg(any(feature = "ecdsa", feature = "eddsa"))]
mod key_tables;
#[cfg(feature = "rsa")]
pub(crate) mod rsa;
#[cfg(all(test, feature = "rsa", feature = "ecdsa", feature = "eddsa"))]
mod wycheproof;

use alloc::borrow::Cow;
use alloc::vec::Vec;

/// The bytes a hex string spells, for the tests' vectors.
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The signing key of a verification-only algorithm: there is none.
#[derive(Debug)]
pub(crate) enum NoSigningKey {}

/// A signature as its bytes; its length is checked by the verifier.
#[derive(Debug)]
pub(crate) struct SignatureBytes(Vec<u8>);

impl jwt_compact::AlgorithmSignature for SignatureBytes {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// RS256–RS512 and PS256–PS512 with [`rsa::RsaKey`].
#[cfg(feature = "rsa")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rsa {
    pub(crate) hash: rsa::Hash,
    pub(crate) pss: bool,
}

#[cfg(feature = "rsa")]
impl jwt_compact::Algorithm for Rsa {
    type SigningKey = NoSigningKey;
    type VerifyingKey = rsa::RsaKey;
    type Signature = SignatureBytes;

    fn name(&self) -> Cow<'static, str> {
        use rsa::Hash::{Sha256, Sha384, Sha512};
        Cow::Borrowed(match (self.pss, self.hash) {
            (false, Sha256) => "RS256",
            (false, Sha384) => "RS384",
            (false, Sha512) => "RS512",
            (true, Sha256) => "PS256",
            (true, Sha384) => "PS384",
            (true, Sha512) => "PS512",
        })
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> SignatureBytes {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &SignatureBytes,
        key: &rsa::RsaKey,
        message: &[u8],
    ) -> bool {
        if self.pss {
            key.verify_pss(self.hash, message, &signature.0)
        } else {
            key.verify_pkcs1v15(self.hash, message, &signature.0)
        }
    }
}

/// ES256 with [`es256::P256Key`].
#[cfg(feature = "ecdsa")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Es256;

#[cfg(feature = "ecdsa")]
impl jwt_compact::Algorithm for Es256 {
    type SigningKey = NoSigningKey;
    type VerifyingKey = es256::P256Key;
    type Signature = SignatureBytes;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES256")
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> SignatureBytes {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &SignatureBytes,
        key: &es256::P256Key,
        message: &[u8],
    ) -> bool {
        key.verify(message, &signature.0)
    }
}

/// EdDSA (Ed25519) with [`ed25519::Ed25519Key`].
#[cfg(feature = "eddsa")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct EdDsa;

#[cfg(feature = "eddsa")]
impl jwt_compact::Algorithm for EdDsa {
    type SigningKey = NoSigningKey;
    type VerifyingKey = ed25519::Ed25519Key;
    type Signature = SignatureBytes;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("EdDSA")
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> SignatureBytes {
        match *signing_key {}
    }

    fn verify_signature(
        &self,
        signature: &SignatureBytes,
        key: &ed25519::Ed25519Key,
        message: &[u8],
    ) -> bool {
        key.verify(message, &signature.0)
    }
}
