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

/// An answer is a credential for as long as it is kept: at most a day.
const MAX_CACHE_SECONDS: u64 = 86_400;
const MAX_INACTIVE_CACHE_SECONDS: u64 = 3_600;
const MAX_TIMEOUT_MS: u64 = 60_000;
const MAX_CALLS_PER_SECOND: u64 = 100_000;
const MAX_CALLS_IN_FLIGHT: u64 = 10_000;

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
    let auth = match doc.auth_method.as_deref() {
        None | Some("client_secret_basic") => {
            if doc.private_key.is_some() {
                return Err(PolicyError::new(
                    format!("{path}.private_key"),
                    "only applies with `auth_method: private_key_jwt`",
                ));
            }
            match &doc.client_secret {
                Some(Secret::Inline(secret)) if !secret.is_empty() => {
                    ClientAuth::SecretBasic(basic_authorization(&doc.client_id, secret).into())
                }
                // Named in the environment, not read (the browser package): no call is made.
                Some(Secret::Env(_)) => ClientAuth::Unread,
                _ => {
                    return Err(PolicyError::new(
                        format!("{path}.client_secret"),
                        "is required with `client_secret_basic` and must not be empty",
                    ))
                }
            }
        }
        Some("private_key_jwt") => {
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
            match env_name(key) {
                Some(_) => ClientAuth::Unread,
                None => ClientAuth::PrivateKeyJwt(AssertionKey::from_jwk(key).map_err(
                    |(member, why)| {
                        let dot = if member.is_empty() { "" } else { "." };
                        PolicyError::new(format!("{path}.private_key{dot}{member}"), why)
                    },
                )?),
            }
        }
        Some(other) => {
            return Err(PolicyError::new(
                format!("{path}.auth_method"),
                format!(
                    "`{other}` is not supported; use `client_secret_basic` or `private_key_jwt`"
                ),
            ))
        }
    };
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
    let bounded = |field: &str, value: Option<u64>, default: u64, min: u64, max: u64| {
        let value = value.unwrap_or(default);
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(PolicyError::new(
                format!("{path}.{field}"),
                format!("must be between {min} and {max}"),
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
        cache_seconds: bounded(
            "cache_seconds",
            doc.cache_seconds,
            DEFAULT_CACHE_SECONDS,
            1,
            MAX_CACHE_SECONDS,
        )?,
        inactive_cache_seconds: bounded(
            "inactive_cache_seconds",
            doc.inactive_cache_seconds,
            DEFAULT_INACTIVE_CACHE_SECONDS,
            0,
            MAX_INACTIVE_CACHE_SECONDS,
        )?,
        timeout_ms: bounded(
            "timeout_ms",
            doc.timeout_ms,
            DEFAULT_TIMEOUT_MS,
            100,
            MAX_TIMEOUT_MS,
        )?,
        budget: BudgetLimits {
            per_second: bounded(
                "max_calls_per_second",
                doc.max_calls_per_second,
                DEFAULT_CALLS_PER_SECOND.into(),
                1,
                MAX_CALLS_PER_SECOND,
            )? as u32,
            in_flight: bounded(
                "max_calls_in_flight",
                doc.max_calls_in_flight,
                DEFAULT_CALLS_IN_FLIGHT.into(),
                1,
                MAX_CALLS_IN_FLIGHT,
            )? as u32,
        },
    })
}
