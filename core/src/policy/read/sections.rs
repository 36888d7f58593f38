//! One [`Read`] per section of the document, member for member as in `policy.schema.json`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use super::{invalid_type, one_of, Object, Read};
use crate::json::path::At;
use crate::policy::document::{
    CorsDocument, DpopDocument, DpopNonceDocument, ForwardClaimDocument, ForwardDocument,
    IntrospectionDocument, IssuerDocument, JwtAuthnDocument, McpDocument, McpRuleDocument,
    PolicyDocument, RequirementDocument, ResourceDocument, RolesDocument, RouteDocument,
    ScopesDocument, TokenCacheDocument, Unmatched, DEFAULT_ROLE_CLAIMS, DEFAULT_SCOPE_CLAIMS,
    DEFAULT_SEPARATOR, DEFAULT_WRITE_SUFFIX,
};
use crate::policy::PolicyError;

impl Read for PolicyDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(
            value,
            at,
            &[
                "$schema",
                "version",
                "realm",
                "resource",
                "resources",
                "issuers",
                "scopes",
                "roles",
                "routes",
                "unmatched",
                "forward",
                "cors",
                "dry_run",
                "token_cache",
                "dpop",
            ],
        )?;
        Ok(Self {
            schema: o.optional("$schema")?,
            version: o.required("version")?,
            realm: o.required("realm")?,
            resource: o.optional("resource")?,
            resources: o.optional("resources")?,
            issuers: o.required("issuers")?,
            scopes: o.or("scopes", ScopesDocument::default())?,
            roles: o.optional("roles")?,
            routes: o.required("routes")?,
            unmatched: o.or("unmatched", Unmatched::Deny)?,
            forward: o.optional("forward")?,
            cors: o.optional("cors")?,
            dry_run: o.or("dry_run", false)?,
            token_cache: o.optional("token_cache")?,
            dpop: o.optional("dpop")?,
        })
    }
}

impl Read for DpopDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(
            value,
            at,
            &[
                "algorithms",
                "proof_max_age_seconds",
                "proof_leeway_seconds",
                "origin",
                "replay_cache_entries",
                "required",
                "nonce",
            ],
        )?;
        Ok(Self {
            algorithms: o.optional("algorithms")?,
            proof_max_age_seconds: o.optional("proof_max_age_seconds")?,
            proof_leeway_seconds: o.optional("proof_leeway_seconds")?,
            origin: o.optional("origin")?,
            replay_cache_entries: o.optional("replay_cache_entries")?,
            required: o.or("required", false)?,
            nonce: server_only(|| o.optional("nonce"))?,
        })
    }
}

impl Read for DpopNonceDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["secret", "lifetime_seconds"])?;
        Ok(Self {
            secret: o.required("secret")?,
            lifetime_seconds: o.optional("lifetime_seconds")?,
        })
    }
}

impl Read for ResourceDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["resource", "audiences", "scopes_supported"])?;
        Ok(Self {
            resource: o.required("resource")?,
            audiences: o.optional("audiences")?,
            scopes_supported: o.optional("scopes_supported")?,
        })
    }
}

impl Read for TokenCacheDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["max_entries"])?;
        Ok(Self {
            max_entries: o.required("max_entries")?,
        })
    }
}

impl Read for IssuerDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(
            value,
            at,
            &[
                "issuer",
                "audiences",
                "algorithms",
                "jwks",
                "jwks_uri",
                "jwks_cluster",
                "jwks_refresh_seconds",
                "jwks_refetch_seconds",
                "hmac_secret",
                "leeway_seconds",
                "token_type",
                "introspection",
                "jwt_authn",
            ],
        )?;
        Ok(Self {
            issuer: o.required("issuer")?,
            audiences: o.required("audiences")?,
            algorithms: o.or("algorithms", Vec::new())?,
            jwks: server_only(|| Ok(o.raw("jwks").cloned()))?,
            jwks_uri: server_only(|| o.optional("jwks_uri"))?,
            jwks_cluster: server_only(|| o.optional("jwks_cluster"))?,
            jwks_refresh_seconds: server_only(|| o.optional("jwks_refresh_seconds"))?,
            jwks_refetch_seconds: server_only(|| o.optional("jwks_refetch_seconds"))?,
            hmac_secret: server_only(|| o.optional("hmac_secret"))?,
            leeway_seconds: o.optional("leeway_seconds")?,
            token_type: o.optional("token_type")?,
            jwt_authn: o.optional("jwt_authn")?,
            introspection: o.optional("introspection")?,
        })
    }
}

impl Read for JwtAuthnDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["payload_in_metadata"])?;
        Ok(Self {
            payload_in_metadata: o.required("payload_in_metadata")?,
        })
    }
}

impl Read for IntrospectionDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(
            value,
            at,
            &[
                "endpoint",
                "cluster",
                "auth_method",
                "client_id",
                "client_secret",
                "private_key",
                "tokens",
                "cache_seconds",
                "inactive_cache_seconds",
                "timeout_ms",
                "jwt_response",
                "max_calls_per_second",
                "max_calls_in_flight",
            ],
        )?;
        Ok(Self {
            endpoint: o.required("endpoint")?,
            cluster: o.required("cluster")?,
            auth_method: o.optional("auth_method")?,
            client_id: o.required("client_id")?,
            client_secret: server_only(|| o.optional("client_secret"))?,
            private_key: server_only(|| Ok(o.raw("private_key").cloned()))?,
            tokens: o.optional("tokens")?,
            cache_seconds: o.optional("cache_seconds")?,
            inactive_cache_seconds: o.optional("inactive_cache_seconds")?,
            timeout_ms: o.optional("timeout_ms")?,
            jwt_response: o.or("jwt_response", false)?,
            max_calls_per_second: o.optional("max_calls_per_second")?,
            max_calls_in_flight: o.optional("max_calls_in_flight")?,
        })
    }
}

/// A member only a gateway uses (keys, secrets, client credentials): read with the
/// `server-sections` feature; without it (the browser package) skipped unread, so that its
/// reading and compiling are not linked and a policy without its secrets loads.
fn server_only<T>(
    read: impl FnOnce() -> Result<Option<T>, PolicyError>,
) -> Result<Option<T>, PolicyError> {
    if cfg!(feature = "server-sections") {
        read()
    } else {
        Ok(None)
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| String::from(*name)).collect()
}

impl Read for ScopesDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(
            value,
            at,
            &[
                "claims",
                "separator",
                "write_suffix",
                "prefixes",
                "max_age",
                "acr_values",
            ],
        )?;
        // `null` turns write semantics off; absent is the default suffix.
        let write_suffix = match o.get("write_suffix") {
            None => Some(String::from(DEFAULT_WRITE_SUFFIX)),
            Some(_) => o.optional("write_suffix")?,
        };
        Ok(Self {
            claims: o.or("claims", strings(&DEFAULT_SCOPE_CLAIMS))?,
            separator: o.or("separator", String::from(DEFAULT_SEPARATOR))?,
            write_suffix,
            prefixes: o.or("prefixes", Vec::new())?,
            max_age: o.or("max_age", Default::default())?,
            acr_values: o.or("acr_values", Default::default())?,
        })
    }
}

impl Read for RolesDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["claims", "map"])?;
        Ok(Self {
            claims: o.or("claims", strings(&DEFAULT_ROLE_CLAIMS))?,
            map: o.required("map")?,
        })
    }
}

impl Read for RouteDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(
            value,
            at,
            &[
                "path",
                "methods",
                "public",
                "authenticated",
                "require",
                "mcp",
                "acr_values",
            ],
        )?;
        Ok(Self {
            path: o.required("path")?,
            methods: o.optional("methods")?,
            public: o.or("public", false)?,
            authenticated: o.or("authenticated", false)?,
            require: o.optional("require")?,
            mcp: o.optional("mcp")?,
            acr_values: o.optional("acr_values")?,
        })
    }
}

impl Read for McpDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(
            value,
            at,
            &["max_body_bytes", "trust_mirrored_headers", "rules"],
        )?;
        Ok(Self {
            max_body_bytes: o.optional("max_body_bytes")?,
            trust_mirrored_headers: o.or("trust_mirrored_headers", false)?,
            rules: o.or("rules", Vec::new())?,
        })
    }
}

impl Read for McpRuleDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["method", "name", "uri", "require"])?;
        Ok(Self {
            method: o.required("method")?,
            name: o.optional("name")?,
            uri: o.optional("uri")?,
            require: o.required("require")?,
        })
    }
}

/// `"a"`, `["a", "b"]`, `{"all_of": [...]}` or `{"any_of": [[...], ...]}`.
impl Read for RequirementDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        const KINDS: [&str; 2] = ["all_of", "any_of"];
        let refuse = |message: String| PolicyError::new(format!("{at}"), message);
        match value {
            Value::String(scope) => Ok(Self::AllOf(alloc::vec![scope.clone()])),
            Value::Array(_) => Vec::read(value, at).map(Self::AllOf),
            Value::Object(members) => {
                let mut keys = members.keys();
                let (Some(kind), extra) = (keys.next(), keys.next()) else {
                    return Err(refuse(String::from("expected `all_of` or `any_of`")));
                };
                if !KINDS.contains(&kind.as_str()) {
                    return Err(refuse(format!(
                        "unknown field `{kind}`, {}",
                        one_of(&KINDS)
                    )));
                }
                if let Some(extra) = extra {
                    return Err(refuse(format!(
                        "unexpected `{extra}`: a requirement has exactly one of `all_of` or \
                         `any_of`"
                    )));
                }
                let at = at.field(kind);
                if kind == "all_of" {
                    Vec::read(&members[kind], &at).map(Self::AllOf)
                } else {
                    Vec::read(&members[kind], &at).map(Self::AnyOf)
                }
            }
            _ => Err(invalid_type(
                value,
                "a scope string, an array of scopes (all required), {\"all_of\": [...]} or \
                 {\"any_of\": [[...], ...]}",
                at,
            )),
        }
    }
}

impl Read for Unmatched {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        const VARIANTS: [&str; 2] = ["deny", "allow"];
        match value.as_str() {
            Some("deny") => Ok(Self::Deny),
            Some("allow") => Ok(Self::Allow),
            Some(other) => Err(PolicyError::new(
                format!("{at}"),
                format!("unknown variant `{other}`, {}", one_of(&VARIANTS)),
            )),
            None => Err(invalid_type(value, "`deny` or `allow`", at)),
        }
    }
}

impl Read for ForwardDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["claims", "scopes_header"])?;
        Ok(Self {
            claims: o.or("claims", Vec::new())?,
            scopes_header: o.optional("scopes_header")?,
        })
    }
}

impl Read for ForwardClaimDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["claim", "header"])?;
        Ok(Self {
            claim: o.required("claim")?,
            header: o.required("header")?,
        })
    }
}

impl Read for CorsDocument {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let o = Object::new(value, at, &["allowed_origins"])?;
        Ok(Self {
            allowed_origins: o.required("allowed_origins")?,
        })
    }
}
