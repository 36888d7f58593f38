//! Compilation of a [`PolicyDocument`] into a [`Policy`], with every semantic check that
//! JSON Schema cannot express. Each error names the JSON path of the value to fix.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::document::Unmatched;
use super::requirement::ScopeTemplate;
use super::{Access, ForwardClaim, Policy, PolicyDocument, PolicyError, Resource, Route};
use crate::route::RouteTable;
use crate::scope::{is_valid_scope, ScopeError, ScopeRules};

mod issuer;
mod mcp;
mod routes;

use issuer::{compile_claim_name, compile_claim_names, compile_issuer};
use routes::compile_route;

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
    // Requests are matched on normalized paths: a metadata path that is not normalized
    // could never be requested, and every challenge would point at it.
    match crate::path::normalize(&metadata_path) {
        Ok(normal) if *normal == *metadata_path => {}
        Ok(normal) => {
            let normal = normal.strip_prefix(WELL_KNOWN).unwrap_or(&normal);
            return Err(PolicyError::new(
                "resource",
                format!("its path `{path}` is not in normal form; write `{normal}`"),
            ));
        }
        Err(err) => {
            return Err(PolicyError::new(
                "resource",
                format!(
                    "its path `{path}` cannot be requested: {}",
                    err.description()
                ),
            ))
        }
    }
    let metadata_url = format!("{scheme}://{authority}{metadata_path}");
    Ok((String::from(identifier), metadata_url, metadata_path))
}

fn metadata_document(policy: &Policy, identifier: &str) -> String {
    let mut scopes: Vec<&str> = policy
        .routes
        .iter()
        .flat_map(
            |route| -> alloc::boxed::Box<dyn Iterator<Item = &super::Requirement>> {
                match &route.access {
                    Access::Protected(requirement) => {
                        alloc::boxed::Box::new(core::iter::once(requirement))
                    }
                    Access::Mcp(mcp) => alloc::boxed::Box::new(mcp.requirements()),
                    Access::Public => alloc::boxed::Box::new(core::iter::empty()),
                }
            },
        )
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
