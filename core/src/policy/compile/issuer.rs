//! An issuer's part of the document: audiences, algorithms, keys, claims.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::jwks::Algorithm;
use crate::policy::document::{IssuerDocument, JwtAuthnDocument, DEFAULT_LEEWAY_SECONDS};
use crate::policy::{ClaimName, Issuer, KeySource, PolicyError};

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
    // Without `server-sections` (the browser package) the endpoint and the gateway's
    // credentials are not compiled: a pre-check never calls it.
    let introspection = match &doc.introspection {
        Some(i) if cfg!(feature = "server-sections") => Some(
            super::introspection::compile_introspection(&format!("{path}.introspection"), i)?,
        ),
        _ => None,
    };
    if doc.algorithms.is_empty() && doc.introspection.is_none() {
        return Err(PolicyError::new(
            format!("{path}.algorithms"),
            "at least one algorithm is required (or `introspection`, for an issuer of opaque tokens)",
        ));
    }
    let algorithms = compile_algorithms(path, &doc.algorithms)?;
    let (keys, hmac_secret) = match &doc.jwt_authn {
        Some(jwt_authn) => (compile_jwt_authn(path, doc, jwt_authn)?, None),
        // Keys and secrets are a gateway's: the pre-check verifies no signature.
        #[cfg(not(feature = "server-sections"))]
        None => (KeySource::Unread, None),
        #[cfg(feature = "server-sections")]
        None => {
            let uses_hmac = algorithms.contains(&Algorithm::Hs256);
            let uses_keys = algorithms.iter().any(|a| *a != Algorithm::Hs256);
            let hmac_secret = super::keys::compile_hmac_secret(path, doc, uses_hmac)?;
            (
                super::keys::compile_keys(path, doc, uses_keys)?,
                hmac_secret,
            )
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
