//! An issuer's keys and HS256 secret: a gateway's only (feature `server-sections`); the
//! browser package's pre-check verifies no signature and never reads them.

use alloc::format;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};

use crate::jwks::KeySet;
use crate::policy::document::{
    IssuerDocument, Secret, DEFAULT_JWKS_REFETCH_SECONDS, DEFAULT_JWKS_REFRESH_SECONDS,
};
use crate::policy::url::split_url;
use crate::policy::{KeySource, PolicyError, RemoteJwks};

/// The HS256 secret: there exactly when HS256 is allowed.
pub(super) fn compile_hmac_secret(
    path: &str,
    doc: &IssuerDocument,
    uses_hmac: bool,
) -> Result<Option<Vec<u8>>, PolicyError> {
    Ok(match (&doc.hmac_secret, uses_hmac) {
        // Named in the environment, not read (the browser package): HS256 tokens of this
        // issuer are then not verified.
        (Some(Secret::Env(_)), true) => None,
        (Some(Secret::Inline(secret)), true) => {
            let bytes = Base64UrlUnpadded::decode_vec(secret).map_err(|_| {
                PolicyError::new(format!("{path}.hmac_secret"), "is not unpadded base64url")
            })?;
            if bytes.len() < 32 {
                return Err(PolicyError::new(
                    format!("{path}.hmac_secret"),
                    "HS256 secrets must be at least 32 bytes (RFC 7518 section 3.2)",
                ));
            }
            Some(bytes)
        }
        (Some(_), false) => {
            return Err(PolicyError::new(
                format!("{path}.hmac_secret"),
                "is only used with HS256; add HS256 to `algorithms` or remove the secret",
            ))
        }
        (None, true) => {
            return Err(PolicyError::new(
                format!("{path}.algorithms"),
                "HS256 needs `hmac_secret`: symmetric keys are never taken from a JWKS",
            ))
        }
        (None, false) => None,
    })
}

/// Where the issuer's verification keys come from: inline, a remote JWKS, or none (HS256
/// alone).
pub(super) fn compile_keys(
    path: &str,
    doc: &IssuerDocument,
    uses_keys: bool,
) -> Result<KeySource, PolicyError> {
    let remote_only = |field: &str, set: bool| -> Result<(), PolicyError> {
        if set && doc.jwks_uri.is_none() {
            Err(PolicyError::new(
                format!("{path}.{field}"),
                "only applies with `jwks_uri`",
            ))
        } else {
            Ok(())
        }
    };
    remote_only("jwks_cluster", doc.jwks_cluster.is_some())?;
    remote_only("jwks_refresh_seconds", doc.jwks_refresh_seconds.is_some())?;
    remote_only("jwks_refetch_seconds", doc.jwks_refetch_seconds.is_some())?;
    Ok(match (&doc.jwks, &doc.jwks_uri) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::new(
                format!("{path}.jwks_uri"),
                "give either inline `jwks` or `jwks_uri`, not both",
            ))
        }
        (Some(jwks), None) => KeySource::Inline(
            KeySet::from_value(jwks)
                .map_err(|e| PolicyError::new(format!("{path}.jwks"), format!("{e}")))?,
        ),
        (None, Some(uri)) => {
            let Some(url) = split_url(uri) else {
                return Err(PolicyError::new(
                    format!("{path}.jwks_uri"),
                    "must be an absolute http or https URL with a host (`https://idp.example/jwks`)",
                ));
            };
            let cluster = doc.jwks_cluster.clone().ok_or_else(|| {
                PolicyError::new(
                    format!("{path}.jwks_cluster"),
                    "is required with `jwks_uri`: name the Envoy cluster that reaches it",
                )
            })?;
            let refresh_seconds = doc
                .jwks_refresh_seconds
                .unwrap_or(DEFAULT_JWKS_REFRESH_SECONDS);
            if refresh_seconds == 0 {
                return Err(PolicyError::new(
                    format!("{path}.jwks_refresh_seconds"),
                    "must be at least 1",
                ));
            }
            let refetch_seconds = doc
                .jwks_refetch_seconds
                .unwrap_or(DEFAULT_JWKS_REFETCH_SECONDS);
            // The only bound on the key fetches that forged tokens can trigger.
            if refetch_seconds == 0 {
                return Err(PolicyError::new(
                    format!("{path}.jwks_refetch_seconds"),
                    "must be at least 1: it bounds the key fetches that unknown `kid`s and bad signatures trigger",
                ));
            }
            KeySource::Remote(RemoteJwks {
                uri: uri.clone(),
                scheme: url.scheme,
                authority: url.authority.into(),
                path: url.path.into(),
                cluster,
                refresh_seconds,
                refetch_seconds,
            })
        }
        (None, None) if uses_keys => {
            return Err(PolicyError::new(
                path,
                "needs `jwks` or `jwks_uri` for its asymmetric algorithms",
            ))
        }
        (None, None) => KeySource::SecretOnly,
    })
}
