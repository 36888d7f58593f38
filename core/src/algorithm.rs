//! The JWS algorithms scopegate verifies and the key types they need (RFC 7518).

use core::fmt;

/// A JWS algorithm scopegate verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// EdDSA on Ed25519.
    EdDsa,
    /// HMAC with SHA-256; only with a shared secret named in the policy.
    Hs256,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 9] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::EdDsa,
        Self::Hs256,
    ];

    /// The algorithm named `name` in a JWS header or a policy (case-sensitive, as JOSE is).
    ///
    /// ```
    /// use scopegate_core::Algorithm;
    /// assert_eq!(Algorithm::from_name("ES256"), Some(Algorithm::Es256));
    /// assert_eq!(Algorithm::from_name("none"), None);
    /// assert_eq!(Algorithm::from_name("rs256"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The JOSE name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
        }
    }

    /// The only key type this algorithm may be used with.
    pub const fn key_type(self) -> KeyType {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                KeyType::Rsa
            }
            Self::Es256 => KeyType::EcP256,
            Self::EdDsa => KeyType::Ed25519,
            Self::Hs256 => KeyType::Symmetric,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of a key, which decides which algorithms may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// `kty: RSA`, at least 2048 bits.
    Rsa,
    /// `kty: EC`, `crv: P-256`.
    EcP256,
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
    /// A shared secret (never taken from a JWKS).
    Symmetric,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa => "RSA",
            Self::EcP256 => "EC P-256",
            Self::Ed25519 => "OKP Ed25519",
            Self::Symmetric => "symmetric",
        })
    }
}
