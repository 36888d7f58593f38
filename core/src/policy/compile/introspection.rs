//! An issuer's `introspection` block: the endpoint, the gateway's credentials, which tokens
//! and how long answers are kept. The client secret is never part of an error message.

use alloc::format;

use crate::introspection::assertion::AssertionKey;
use crate::introspection::form::basic_authorization;
use crate::introspection::limits::{
    BudgetLimits, DEFAULT_CALLS_IN_FLIGHT, DEFAULT_CALLS_PER_SECOND,
};
use crate::introspection::rules::{
    ClientAuth, IntrospectedTokens, IntrospectionRules, DEFAULT_CACHE_SECONDS,
    DEFAULT_INACTIVE_CACHE_SECONDS, DEFAULT_TIMEOUT_MS,
};
use crate::policy::document::{env_name, IntrospectionDocument, Secret};
use crate::policy::url::split_url;
use crate::policy::PolicyError;

/// Each bounded member's default, least and greatest value. An answer is a credential for
/// as long as it is kept: at most a day.
type Bounds = (u64, u64, u64);
const CACHE_SECONDS: Bounds = (DEFAULT_CACHE_SECONDS, 1, 86_400);
const INACTIVE_CACHE_SECONDS: Bounds = (DEFAULT_INACTIVE_CACHE_SECONDS, 0, 3_600);
const TIMEOUT_MS: Bounds = (DEFAULT_TIMEOUT_MS, 100, 60_000);
const CALLS_PER_SECOND: Bounds = (DEFAULT_CALLS_PER_SECOND as u64, 1, 100_000);
const CALLS_IN_FLIGHT: Bounds = (DEFAULT_CALLS_IN_FLIGHT as u64, 1, 10_000);

pub(super) fn compile_introspection(
    path: &str,
    doc: &IntrospectionDocument,
) -> Result<IntrospectionRules, PolicyError> {
    let Some(url) = split_url(&doc.endpoint) else {
        return Err(PolicyError::new(
            format!("{path}.endpoint"),
            "must be an absolute http or https URL with a host (`https://idp.example/introspect`)",
        ));
    };
    if doc.cluster.is_empty() {
        return Err(PolicyError::new(
            format!("{path}.cluster"),
            "must name the Envoy cluster that reaches the endpoint",
        ));
    }
    if doc.client_id.is_empty() {
        return Err(PolicyError::new(
            format!("{path}.client_id"),
            "must not be empty",
        ));
    }
    let auth = client_auth(path, doc)?;
    let tokens = match doc.tokens.as_deref() {
        None | Some("opaque") => IntrospectedTokens::Opaque,
        Some("all") => IntrospectedTokens::All,
        Some(other) => {
            return Err(PolicyError::new(
                format!("{path}.tokens"),
                format!("`{other}` is neither `opaque` nor `all`"),
            ))
        }
    };
    Ok(IntrospectionRules {
        cluster: doc.cluster.as_str().into(),
        scheme: url.scheme,
        authority: url.authority.into(),
        path: url.path.into(),
        auth,
        endpoint: doc.endpoint.as_str().into(),
        client_id: doc.client_id.as_str().into(),
        tokens,
        jwt_response: doc.jwt_response,
        cache_seconds: bounded(path, "cache_seconds", doc.cache_seconds, CACHE_SECONDS)?,
        inactive_cache_seconds: bounded(
            path,
            "inactive_cache_seconds",
            doc.inactive_cache_seconds,
            INACTIVE_CACHE_SECONDS,
        )?,
        timeout_ms: bounded(path, "timeout_ms", doc.timeout_ms, TIMEOUT_MS)?,
        budget: BudgetLimits {
            // Both bounds are under u32::MAX.
            per_second: bounded(
                path,
                "max_calls_per_second",
                doc.max_calls_per_second,
                CALLS_PER_SECOND,
            )? as u32,
            in_flight: bounded(
                path,
                "max_calls_in_flight",
                doc.max_calls_in_flight,
                CALLS_IN_FLIGHT,
            )? as u32,
        },
    })
}

fn bounded(
    path: &str,
    field: &str,
    value: Option<u64>,
    (default, min, max): Bounds,
) -> Result<u64, PolicyError> {
    let value = value.unwrap_or(default);
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(PolicyError::new(
            format!("{path}.{field}"),
            format!("must be between {min} and {max}"),
        ))
    }
}

/// How the gateway authenticates to the endpoint (RFC 7662 §2.1 leaves it to the server).
fn client_auth(path: &str, doc: &IntrospectionDocument) -> Result<ClientAuth, PolicyError> {
    match doc.auth_method.as_deref() {
        None | Some("client_secret_basic") => secret_basic(path, doc),
        Some("private_key_jwt") => private_key_jwt(path, doc),
        Some(other) => Err(PolicyError::new(
            format!("{path}.auth_method"),
            format!("`{other}` is not supported; use `client_secret_basic` or `private_key_jwt`"),
        )),
    }
}

fn secret_basic(path: &str, doc: &IntrospectionDocument) -> Result<ClientAuth, PolicyError> {
    if doc.private_key.is_some() {
        return Err(PolicyError::new(
            format!("{path}.private_key"),
            "only applies with `auth_method: private_key_jwt`",
        ));
    }
    match &doc.client_secret {
        Some(Secret::Inline(secret)) if !secret.is_empty() => Ok(ClientAuth::SecretBasic(
            basic_authorization(&doc.client_id, secret).into(),
        )),
        // Named in the environment, not read (the browser package): no call is made.
        Some(Secret::Env(_)) => Ok(ClientAuth::Unread),
        _ => Err(PolicyError::new(
            format!("{path}.client_secret"),
            "is required with `client_secret_basic` and must not be empty",
        )),
    }
}

/// RFC 7523 client assertions signed with `private_key`.
fn private_key_jwt(path: &str, doc: &IntrospectionDocument) -> Result<ClientAuth, PolicyError> {
    if doc.client_secret.is_some() {
        return Err(PolicyError::new(
            format!("{path}.client_secret"),
            "does not apply with `private_key_jwt`: the gateway signs with `private_key`",
        ));
    }
    let key = doc.private_key.as_ref().ok_or_else(|| {
        PolicyError::new(
            format!("{path}.private_key"),
            "is required with `private_key_jwt`: an Ed25519, P-256 or RSA private JWK",
        )
    })?;
    if env_name(key).is_some() {
        return Ok(ClientAuth::Unread);
    }
    let key = AssertionKey::from_jwk(key).map_err(|(member, why)| {
        let dot = if member.is_empty() { "" } else { "." };
        PolicyError::new(format!("{path}.private_key{dot}{member}"), why)
    })?;
    Ok(ClientAuth::PrivateKeyJwt(key))
}
