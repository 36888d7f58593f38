//! Compilation of a [`PolicyDocument`] into a [`Policy`], with every semantic check that
//! JSON Schema cannot express. Each error names the JSON path of the value to fix.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};

use super::document::{
    IssuerDocument, RequirementDocument, RouteDocument, Unmatched, DEFAULT_JWKS_REFETCH_SECONDS,
    DEFAULT_JWKS_REFRESH_SECONDS, DEFAULT_LEEWAY_SECONDS,
};
use super::requirement::{ScopeTemplate, TemplateScopeError};
use super::url::split_url;
use super::{
    Access, ClaimName, ForwardClaim, Issuer, KeySource, Policy, PolicyDocument, PolicyError,
    RemoteJwks, Requirement, Resource, Route,
};
use crate::jwks::{Algorithm, KeySet};
use crate::route::{is_method_token, Methods, RouteTable, RouteTemplate};
use crate::scope::{is_valid_scope, ScopeError, ScopeRules};

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Request headers scopegate must never set or strip on the upstream request.
const RESERVED_HEADERS: [&str; 9] = [
    "authorization",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "cookie",
    "te",
    "upgrade",
];

pub(super) fn compile(doc: &PolicyDocument) -> Result<Policy, PolicyError> {
    if doc.version != 1 {
        return Err(PolicyError::new(
            "version",
            format!(
                "version {} is not supported; this scopegate reads version 1",
                doc.version
            ),
        ));
    }
    check_header_text("realm", &doc.realm)?;
    let resource = doc.resource.as_deref().map(compile_resource).transpose()?;
    if doc.issuers.is_empty() {
        return Err(PolicyError::new(
            "issuers",
            "at least one issuer is required to accept tokens",
        ));
    }
    let mut issuers = Vec::with_capacity(doc.issuers.len());
    for (index, issuer) in doc.issuers.iter().enumerate() {
        let path = format!("issuers[{index}]");
        if doc.issuers[..index]
            .iter()
            .any(|i| i.issuer == issuer.issuer)
        {
            return Err(PolicyError::new(
                format!("{path}.issuer"),
                format!("issuer `{}` is listed twice", issuer.issuer),
            ));
        }
        issuers.push(compile_issuer(&path, issuer)?);
    }

    let scopes = &doc.scopes;
    let scope_claims = compile_claim_names("scopes.claims", &scopes.claims)?;
    let prefixes: Vec<&str> = scopes.prefixes.iter().map(String::as_str).collect();
    let rules = ScopeRules::new(&scopes.separator, scopes.write_suffix.as_deref(), &prefixes)
        .map_err(|err| {
            let path = match &err {
                ScopeError::InvalidSeparator => String::from("scopes.separator"),
                ScopeError::InvalidWriteSuffix => String::from("scopes.write_suffix"),
                ScopeError::InvalidPrefix { prefix } => {
                    let at = prefixes.iter().position(|p| p == prefix).unwrap_or(0);
                    format!("scopes.prefixes[{at}]")
                }
                ScopeError::InvalidScope { .. } | ScopeError::BarePrefix { .. } => {
                    String::from("scopes")
                }
            };
            PolicyError::new(path, format!("{err}"))
        })?;
    let mut max_age = Vec::with_capacity(scopes.max_age.len());
    for (scope, seconds) in &scopes.max_age {
        if !is_valid_scope(scope) {
            return Err(PolicyError::new(
                format!("scopes.max_age[\"{scope}\"]"),
                invalid_scope_message(scope),
            ));
        }
        max_age.push((Box::from(scope.as_str()), *seconds));
    }

    let (role_claims, role_map) = match &doc.roles {
        None => (Vec::new(), BTreeMap::new()),
        Some(roles) => {
            let claims = compile_claim_names("roles.claims", &roles.claims)?;
            let mut map = BTreeMap::new();
            for (role, scopes) in &roles.map {
                let mut compiled = Vec::with_capacity(scopes.len());
                for (index, scope) in scopes.iter().enumerate() {
                    if !is_valid_scope(scope) {
                        return Err(PolicyError::new(
                            format!("roles.map[\"{role}\"][{index}]"),
                            invalid_scope_message(scope),
                        ));
                    }
                    compiled.push(Box::from(scope.as_str()));
                }
                map.insert(Box::from(role.as_str()), compiled);
            }
            (claims, map)
        }
    };

    let mut table = RouteTable::default();
    let mut routes = Vec::with_capacity(doc.routes.len());
    for (index, route) in doc.routes.iter().enumerate() {
        let (template, methods, access) = compile_route(index, route, &rules)?;
        table.insert(&template, methods).map_err(|conflict| {
            PolicyError::new(
                format!("routes[{index}]"),
                format!(
                    "duplicate route: routes[{}] already matches {} {}; merge them or make \
                     their methods disjoint",
                    conflict.existing, conflict.method, route.path
                ),
            )
        })?;
        routes.push(Route {
            path: route.path.as_str().into(),
            access,
        });
    }

    let (forward, forward_scopes) = compile_forward(doc)?;
    let mut cors_origins = Vec::new();
    if let Some(cors) = &doc.cors {
        for (index, origin) in cors.allowed_origins.iter().enumerate() {
            if origin != "*" && !is_origin(origin) {
                return Err(PolicyError::new(
                    format!("cors.allowed_origins[{index}]"),
                    format!(
                        "`{origin}` is not an origin: write `scheme://host[:port]` without a \
                         path, or `*`"
                    ),
                ));
            }
            cors_origins.push(Box::from(origin.as_str()));
        }
    }

    let mut policy = Policy {
        realm: doc.realm.as_str().into(),
        resource: None,
        issuers,
        scope_claims,
        role_claims,
        role_map,
        rules,
        max_age,
        routes,
        table,
        allow_unmatched: doc.unmatched == Unmatched::Allow,
        forward,
        forward_scopes,
        cors_origins,
        dry_run: doc.dry_run,
        token_cache_entries: token_cache_entries(doc)?,
    };
    if let Some((identifier, metadata_url, metadata_path)) = resource {
        let metadata_document = metadata_document(&policy, &identifier);
        policy.resource = Some(Resource {
            metadata_url: metadata_url.into(),
            metadata_path: metadata_path.into(),
            metadata_document: metadata_document.into(),
        });
    }
    Ok(policy)
}

fn invalid_scope_message(scope: &str) -> String {
    format!(
        "`{scope}` is not a valid scope: use printable ASCII except space, `\"` and `\\` \
         (RFC 6749 section 3.3)"
    )
}

/// Values that end up inside a quoted-string of `WWW-Authenticate`.
fn check_header_text(path: &str, value: &str) -> Result<(), PolicyError> {
    let fits = !value.is_empty()
        && value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if fits {
        Ok(())
    } else {
        Err(PolicyError::new(
            path,
            "must be non-empty printable ASCII without `\"` and `\\` (it is sent in \
             WWW-Authenticate headers)",
        ))
    }
}

/// `(identifier, metadata URL, metadata path)` per RFC 9728 §3.1: the well-known segment
/// goes between the authority and the resource's path.
fn compile_resource(identifier: &str) -> Result<(String, String, String), PolicyError> {
    check_header_text("resource", identifier)?;
    let (scheme, rest) = identifier
        .split_once("://")
        .ok_or_else(|| PolicyError::new("resource", "must be an absolute http or https URL"))?;
    if scheme != "https" && scheme != "http" {
        return Err(PolicyError::new(
            "resource",
            "must be an absolute http or https URL",
        ));
    }
    if rest.contains(['?', '#', ' ']) {
        return Err(PolicyError::new(
            "resource",
            "must not have a query or fragment (RFC 9728 section 1.2)",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(PolicyError::new("resource", "has no host"));
    }
    let path = path.trim_end_matches('/');
    let metadata_path = format!("{WELL_KNOWN}{path}");
    let metadata_url = format!("{scheme}://{authority}{metadata_path}");
    Ok((String::from(identifier), metadata_url, metadata_path))
}

fn metadata_document(policy: &Policy, identifier: &str) -> String {
    let mut scopes: Vec<&str> = policy
        .routes
        .iter()
        .filter_map(|route| match &route.access {
            Access::Protected(requirement) => Some(requirement),
            Access::Public => None,
        })
        .flat_map(|requirement| requirement.alternatives.iter().flatten())
        .filter_map(ScopeTemplate::literal)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let servers: Vec<&str> = policy.issuers.iter().map(|i| &*i.issuer).collect();
    let document = serde_json::json!({
        "resource": identifier,
        "authorization_servers": servers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    });
    format!("{document}")
}

fn compile_issuer(path: &str, doc: &IssuerDocument) -> Result<Issuer, PolicyError> {
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
    if doc.algorithms.is_empty() {
        return Err(PolicyError::new(
            format!("{path}.algorithms"),
            "at least one algorithm is required",
        ));
    }
    let mut algorithms = Vec::with_capacity(doc.algorithms.len());
    for (index, name) in doc.algorithms.iter().enumerate() {
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
    let uses_hmac = algorithms.contains(&Algorithm::Hs256);
    let uses_keys = algorithms.iter().any(|a| *a != Algorithm::Hs256);
    let hmac_secret = match (&doc.hmac_secret, uses_hmac) {
        (Some(secret), true) => {
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
    };
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
    let keys = match (&doc.jwks, &doc.jwks_uri) {
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
            let Some((authority, fetch_path)) = split_url(uri) else {
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
            KeySource::Remote(RemoteJwks {
                uri: uri.clone(),
                authority: authority.into(),
                path: fetch_path.into(),
                cluster,
                refresh_seconds,
                refetch_seconds: doc
                    .jwks_refetch_seconds
                    .unwrap_or(DEFAULT_JWKS_REFETCH_SECONDS),
            })
        }
        (None, None) if uses_keys => {
            return Err(PolicyError::new(
                path,
                "needs `jwks` or `jwks_uri` for its asymmetric algorithms",
            ))
        }
        (None, None) => KeySource::SecretOnly,
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
    })
}

fn compile_claim_names(path: &str, names: &[String]) -> Result<Vec<ClaimName>, PolicyError> {
    names
        .iter()
        .enumerate()
        .map(|(index, name)| compile_claim_name(format!("{path}[{index}]"), name))
        .collect()
}

fn compile_claim_name(path: String, name: &str) -> Result<ClaimName, PolicyError> {
    if name.is_empty() || name == "/" {
        return Err(PolicyError::new(
            path,
            "must name a claim (or be a JSON pointer such as `/realm_access/roles`)",
        ));
    }
    Ok(ClaimName::parse(name))
}

fn compile_route(
    index: usize,
    route: &RouteDocument,
    rules: &ScopeRules,
) -> Result<(RouteTemplate, Methods, Access), PolicyError> {
    let path = format!("routes[{index}]");
    let template = RouteTemplate::parse(&route.path)
        .map_err(|e| PolicyError::new(format!("{path}.path"), format!("{e}")))?;
    let methods = match &route.methods {
        None => Methods::Any,
        Some(list) if list.is_empty() => {
            return Err(PolicyError::new(
                format!("{path}.methods"),
                "unreachable route: an empty list matches no request; remove `methods` to \
                 match every method",
            ))
        }
        Some(list) => {
            let mut methods: Vec<Box<str>> = Vec::with_capacity(list.len());
            for (at, method) in list.iter().enumerate() {
                if !is_method_token(method) {
                    return Err(PolicyError::new(
                        format!("{path}.methods[{at}]"),
                        format!("`{method}` is not an upper-case HTTP method such as GET"),
                    ));
                }
                if !methods.iter().any(|m| **m == **method) {
                    methods.push(method.as_str().into());
                }
            }
            Methods::Only(methods)
        }
    };
    let access = match (route.public, &route.require) {
        (true, Some(_)) => {
            return Err(PolicyError::new(
                path,
                "a route is either `public: true` or has `require`, not both",
            ))
        }
        (true, None) => Access::Public,
        (false, None) => {
            return Err(PolicyError::new(
                path,
                "add `require` with the scopes this route needs, or `public: true`",
            ))
        }
        (false, Some(requirement)) => Access::Protected(compile_requirement(
            &format!("{path}.require"),
            requirement,
            rules,
            &template,
        )?),
    };
    Ok((template, methods, access))
}

fn compile_requirement(
    path: &str,
    doc: &RequirementDocument,
    rules: &ScopeRules,
    template: &RouteTemplate,
) -> Result<Requirement, PolicyError> {
    let lists: Vec<(String, &Vec<String>)> = match doc {
        RequirementDocument::AllOf(list) => alloc::vec![(String::from(path), list)],
        RequirementDocument::AnyOf(lists) => {
            if lists.is_empty() {
                return Err(PolicyError::new(
                    format!("{path}.any_of"),
                    "needs at least one list of scopes",
                ));
            }
            lists
                .iter()
                .enumerate()
                .map(|(i, list)| (format!("{path}.any_of[{i}]"), list))
                .collect()
        }
    };
    let mut alternatives = Vec::with_capacity(lists.len());
    for (list_path, list) in lists {
        if list.is_empty() {
            return Err(PolicyError::new(
                list_path,
                "an empty scope list requires nothing; use `public: true` for open routes",
            ));
        }
        let mut alternative = Vec::with_capacity(list.len());
        for scope in list {
            let compiled = ScopeTemplate::compile(scope, rules, |name| template.param_index(name))
                .map_err(|err| {
                    let message = match err {
                        TemplateScopeError::Invalid => invalid_scope_message(scope),
                        TemplateScopeError::BarePrefix => format!(
                            "`{scope}` is a bare prefix scope, which no token can satisfy; \
                             bind it to a placeholder as in `{scope}{{id}}`"
                        ),
                        TemplateScopeError::UndeclaredPrefix(prefix) => format!(
                            "`{scope}` uses undeclared prefix scope `{prefix}`; add it to \
                             `scopes.prefixes`"
                        ),
                        TemplateScopeError::UnknownPlaceholder(name) => format!(
                            "`{scope}` uses `{{{name}}}`, which the route path does not have"
                        ),
                        TemplateScopeError::Malformed => format!(
                            "`{scope}` is not a valid bound scope: write `<prefix>{{param}}`, \
                             optionally followed by the write suffix"
                        ),
                    };
                    PolicyError::new(list_path.clone(), message)
                })?;
            if !alternative.contains(&compiled) {
                alternative.push(compiled);
            }
        }
        alternatives.push(alternative);
    }
    Ok(Requirement { alternatives })
}

type ForwardConfig = (Vec<ForwardClaim>, Option<Box<str>>);

fn compile_forward(doc: &PolicyDocument) -> Result<ForwardConfig, PolicyError> {
    let Some(forward) = &doc.forward else {
        return Ok((Vec::new(), None));
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut claims = Vec::with_capacity(forward.claims.len());
    for (index, entry) in forward.claims.iter().enumerate() {
        check_header(
            format!("forward.claims[{index}].header"),
            &entry.header,
            &seen,
        )?;
        seen.push(&entry.header);
        claims.push(ForwardClaim {
            header: entry.header.as_str().into(),
            claim: compile_claim_name(format!("forward.claims[{index}].claim"), &entry.claim)?,
        });
    }
    let scopes_header = match &forward.scopes_header {
        Some(header) => {
            check_header(String::from("forward.scopes_header"), header, &seen)?;
            Some(Box::from(header.as_str()))
        }
        None => None,
    };
    Ok((claims, scopes_header))
}

fn check_header(path: String, header: &str, seen: &[&str]) -> Result<(), PolicyError> {
    let is_token = !header.is_empty()
        && header
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !is_token {
        return Err(PolicyError::new(
            path,
            format!("`{header}` is not a lower-case header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&header) {
        return Err(PolicyError::new(
            path,
            format!("`{header}` cannot carry claims: it means something to HTTP itself"),
        ));
    }
    if seen.contains(&header) {
        return Err(PolicyError::new(
            path,
            format!("header `{header}` is used twice"),
        ));
    }
    Ok(())
}

fn is_origin(origin: &str) -> bool {
    let Some((scheme, host)) = origin.split_once("://") else {
        return false;
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'+' || b == b'-' || b == b'.');
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    scheme_ok && host_ok
}

/// Verified tokens kept by default: a few hundred users' tokens, a few hundred KiB.
pub(crate) const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 1024;
const MAX_TOKEN_CACHE_ENTRIES: usize = 1 << 20;

fn token_cache_entries(doc: &PolicyDocument) -> Result<usize, PolicyError> {
    match &doc.token_cache {
        None => Ok(DEFAULT_TOKEN_CACHE_ENTRIES),
        Some(cache) if cache.max_entries > MAX_TOKEN_CACHE_ENTRIES => Err(PolicyError::new(
            "token_cache.max_entries",
            format!("must be at most {MAX_TOKEN_CACHE_ENTRIES}"),
        )),
        Some(cache) => Ok(cache.max_entries),
    }
}
