//! An issuer's part of the document: audiences, algorithms, keys, claims.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};

use crate::jwks::{Algorithm, KeySet};
use crate::policy::document::Secret;
use crate::policy::document::{
    IssuerDocument, JwtAuthnDocument, DEFAULT_JWKS_REFETCH_SECONDS, DEFAULT_JWKS_REFRESH_SECONDS,
    DEFAULT_LEEWAY_SECONDS,
};
use crate::policy::url::split_url;
use crate::policy::{ClaimName, Issuer, KeySource, PolicyError, RemoteJwks};

pub(super) fn compile_issuer(path: &str, doc: &IssuerDocument) -> Result<Issuer, PolicyError> {
    if doc.issuer.is_empty() {
        return Err(PolicyError::new(
            format!("{path}.issuer"),
            "must not be empty",
        ));
    }
    if doc.audiences.is_empty() {
        return Err(PolicyError::new(
            format!("{path}.audiences"),
            "at least one audience is required: tokens for other APIs must not pass",
        ));
    }
    for (index, audience) in doc.audiences.iter().enumerate() {
        if audience.is_empty() {
            return Err(PolicyError::new(
                format!("{path}.audiences[{index}]"),
                "must not be empty",
            ));
        }
    }
    let introspection = doc
        .introspection
        .as_ref()
        .map(|i| super::introspection::compile_introspection(&format!("{path}.introspection"), i))
        .transpose()?;
    if doc.algorithms.is_empty() && introspection.is_none() {
        return Err(PolicyError::new(
            format!("{path}.algorithms"),
            "at least one algorithm is required (or `introspection`, for an issuer of opaque tokens)",
        ));
    }
    let algorithms = compile_algorithms(path, &doc.algorithms)?;
    let (keys, hmac_secret) = match &doc.jwt_authn {
        Some(jwt_authn) => (compile_jwt_authn(path, doc, jwt_authn)?, None),
        None => {
            let uses_hmac = algorithms.contains(&Algorithm::Hs256);
            let uses_keys = algorithms.iter().any(|a| *a != Algorithm::Hs256);
            let hmac_secret = compile_hmac_secret(path, doc, uses_hmac)?;
            (compile_keys(path, doc, uses_keys)?, hmac_secret)
        }
    };
    if let Some(typ) = &doc.token_type {
        if typ.is_empty() {
            return Err(PolicyError::new(
                format!("{path}.token_type"),
                "must not be empty; remove it to accept any `typ`",
            ));
        }
    }
    Ok(Issuer {
        issuer: doc.issuer.as_str().into(),
        audiences: doc
            .audiences
            .iter()
            .map(|a| Box::from(a.as_str()))
            .collect(),
        algorithms,
        keys,
        hmac_secret,
        leeway: doc.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS),
        token_type: doc.token_type.as_deref().map(Into::into),
        introspection,
    })
}

/// The `algorithms` list, each known, without repeats.
fn compile_algorithms(path: &str, names: &[String]) -> Result<Vec<Algorithm>, PolicyError> {
    let mut algorithms = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let alg = Algorithm::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
            PolicyError::new(
                format!("{path}.algorithms[{index}]"),
                format!(
                    "unknown algorithm `{name}`; use one of {}",
                    known.join(", ")
                ),
            )
        })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    Ok(algorithms)
}

/// The HS256 secret: there exactly when HS256 is allowed.
fn compile_hmac_secret(
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
fn compile_keys(
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

/// An issuer whose tokens Envoy's `jwt_authn` verifies: it holds the keys, so the policy
/// names none, and the payload's metadata key stands for them.
fn compile_jwt_authn(
    path: &str,
    doc: &IssuerDocument,
    jwt_authn: &JwtAuthnDocument,
) -> Result<KeySource, PolicyError> {
    let key_fields = [
        ("jwks", doc.jwks.is_some()),
        ("jwks_uri", doc.jwks_uri.is_some()),
        ("jwks_cluster", doc.jwks_cluster.is_some()),
        ("jwks_refresh_seconds", doc.jwks_refresh_seconds.is_some()),
        ("jwks_refetch_seconds", doc.jwks_refetch_seconds.is_some()),
        ("hmac_secret", doc.hmac_secret.is_some()),
    ];
    if let Some((field, _)) = key_fields.iter().find(|(_, set)| *set) {
        return Err(PolicyError::new(
            format!("{path}.{field}"),
            "does not apply with `jwt_authn`: its provider holds the keys and verifies",
        ));
    }
    let key = jwt_authn.payload_in_metadata.as_str();
    if key.is_empty() {
        return Err(PolicyError::new(
            format!("{path}.jwt_authn.payload_in_metadata"),
            "must name the provider's `payload_in_metadata`",
        ));
    }
    Ok(KeySource::JwtAuthn(key.into()))
}

pub(super) fn compile_claim_names(
    path: &str,
    names: &[String],
) -> Result<Vec<ClaimName>, PolicyError> {
    names
        .iter()
        .enumerate()
        .map(|(index, name)| compile_claim_name(format!("{path}[{index}]"), name))
        .collect()
}

pub(super) fn compile_claim_name(path: String, name: &str) -> Result<ClaimName, PolicyError> {
    if name.is_empty() || name == "/" {
        return Err(PolicyError::new(
            path,
            "must name a claim (or be a JSON pointer such as `/realm_access/roles`)",
        ));
    }
    Ok(ClaimName::parse(name))
}
