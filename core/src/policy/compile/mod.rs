//! Compilation of a [`PolicyDocument`] into a [`Policy`], with every semantic check that
//! JSON Schema cannot express. Each error names the JSON path of the value to fix.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::document::{ScopesDocument, Unmatched};
use super::{ClaimName, ForwardClaim, Issuer, Policy, PolicyDocument, PolicyError, Route};
use crate::route::RouteTable;
use crate::scope::{is_valid_scope, ScopeError, ScopeRules};

mod dpop;
mod introspection;
mod issuer;
#[cfg(feature = "server-sections")]
mod keys;
mod mcp;
mod requirement;
mod resource;
mod routes;

use issuer::{compile_claim_name, compile_claim_names, compile_issuer};
use resource::{compile_resources, finish_resources};
use routes::compile_route;

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
    let resources = compile_resources(doc)?;
    if doc.issuers.is_empty() {
        return Err(PolicyError::new(
            "issuers",
            "at least one issuer is required to accept tokens",
        ));
    }
    let issuers = compile_issuers(doc)?;

    let scopes = &doc.scopes;
    let scope_claims = compile_claim_names("scopes.claims", &scopes.claims)?;
    let rules = compile_scope_rules(scopes)?;
    let max_age = compile_max_age(scopes)?;
    let acr_values = compile_scope_acr_values(scopes)?;

    let (role_claims, role_map) = compile_roles(doc)?;

    let (table, routes) = compile_routes(doc, &rules)?;

    let (forward, forward_scopes) = compile_forward(doc)?;
    let cors_origins = compile_cors(doc)?;

    let mut policy = Policy {
        realm: doc.realm.as_str().into(),
        resources: Vec::new(),
        issuers,
        scope_claims,
        role_claims,
        role_map,
        rules,
        max_age,
        acr_values,
        routes,
        table,
        allow_unmatched: doc.unmatched == Unmatched::Allow,
        forward,
        forward_scopes,
        cors_origins,
        dry_run: doc.dry_run,
        token_cache_entries: token_cache_entries(doc)?,
        dpop: doc.dpop.as_ref().map(dpop::compile_dpop).transpose()?,
    };
    finish_resources(&mut policy, resources);
    Ok(policy)
}

/// Scopes or roles, each with a list of values, sorted by key as the document's maps are.
type KeyedLists = Vec<(Box<str>, Vec<Box<str>>)>;

/// The issuers, each named once, at most one of them introspecting.
fn compile_issuers(doc: &PolicyDocument) -> Result<Vec<Issuer>, PolicyError> {
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
        let introspects = issuer.introspection.is_some();
        let issuer = compile_issuer(&path, issuer)?;
        // An opaque token names no issuer: one endpoint must be the one to ask. (Read from
        // the document: without `server-sections` the endpoints are not compiled.)
        if introspects
            && doc.issuers[..index]
                .iter()
                .any(|i| i.introspection.is_some())
        {
            return Err(PolicyError::new(
                format!("{path}.introspection"),
                "only one issuer can introspect: an opaque token does not say which issuer made it",
            ));
        }
        issuers.push(issuer);
    }
    Ok(issuers)
}

/// The scope syntax: separator, write suffix, prefixes.
fn compile_scope_rules(scopes: &ScopesDocument) -> Result<ScopeRules, PolicyError> {
    let prefixes: Vec<&str> = scopes.prefixes.iter().map(String::as_str).collect();
    ScopeRules::new(&scopes.separator, scopes.write_suffix.as_deref(), &prefixes).map_err(|err| {
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
    })
}

/// Per-scope `max_age` (RFC 9470).
fn compile_max_age(scopes: &ScopesDocument) -> Result<Vec<(Box<str>, u64)>, PolicyError> {
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
    Ok(max_age)
}

/// Per-scope `acr_values` (RFC 9470).
fn compile_scope_acr_values(scopes: &ScopesDocument) -> Result<KeyedLists, PolicyError> {
    let mut acr_values = Vec::with_capacity(scopes.acr_values.len());
    for (scope, values) in &scopes.acr_values {
        let path = format!("scopes.acr_values[\"{scope}\"]");
        if !is_valid_scope(scope) {
            return Err(PolicyError::new(path, invalid_scope_message(scope)));
        }
        acr_values.push((
            Box::from(scope.as_str()),
            compile_acr_values(&path, values)?,
        ));
    }
    Ok(acr_values)
}

/// The role claims and the scopes each role grants, sorted by role.
fn compile_roles(doc: &PolicyDocument) -> Result<(Vec<ClaimName>, KeyedLists), PolicyError> {
    Ok(match &doc.roles {
        None => (Vec::new(), Vec::new()),
        Some(roles) => {
            let claims = compile_claim_names("roles.claims", &roles.claims)?;
            // The document's map iterates in order: the vector is sorted.
            let mut map = Vec::with_capacity(roles.map.len());
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
                map.push((Box::from(role.as_str()), compiled));
            }
            (claims, map)
        }
    })
}

/// The routes and the table that finds them.
fn compile_routes(
    doc: &PolicyDocument,
    rules: &ScopeRules,
) -> Result<(RouteTable, Vec<Route>), PolicyError> {
    let mut table = RouteTable::default();
    let mut routes = Vec::with_capacity(doc.routes.len());
    for (index, route) in doc.routes.iter().enumerate() {
        let (template, methods, access) = compile_route(index, route, rules)?;
        table
            .insert(&template, methods.clone())
            .map_err(|conflict| {
                PolicyError::new(
                    format!("routes[{index}]"),
                    format!(
                        "duplicate route: routes[{}] already matches {} {}; merge them or make \
                     their methods disjoint",
                        conflict.existing, conflict.method, route.path
                    ),
                )
            })?;
        let route_acr =
            match &route.acr_values {
                None => Vec::new(),
                Some(_) if route.public => return Err(PolicyError::new(
                    format!("routes[{index}].acr_values"),
                    "a public route takes no token, so it cannot ask for an authentication level",
                )),
                Some(values) => compile_acr_values(&format!("routes[{index}].acr_values"), values)?,
            };
        routes.push(Route {
            path: route.path.as_str().into(),
            methods,
            access,
            acr_values: route_acr,
        });
    }
    Ok((table, routes))
}

/// The origins that may read denials (CORS).
fn compile_cors(doc: &PolicyDocument) -> Result<Vec<Box<str>>, PolicyError> {
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
    Ok(cors_origins)
}

/// Authentication context class references (RFC 9470 `acr_values`): sent space-separated
/// in a quoted-string, so each is printable ASCII without space, `"` or `\`.
fn compile_acr_values(path: &str, values: &[String]) -> Result<Vec<Box<str>>, PolicyError> {
    if values.is_empty() {
        return Err(PolicyError::new(
            path,
            "list at least one authentication context class, or remove the entry",
        ));
    }
    let mut compiled: Vec<Box<str>> = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        if !crate::acr::is_valid_acr(value) {
            return Err(PolicyError::new(
                format!("{path}[{index}]"),
                "an `acr` value is printable ASCII without spaces, `\"` and `\\` (it is sent in \
                 WWW-Authenticate headers)",
            ));
        }
        if !compiled.iter().any(|c| **c == **value) {
            compiled.push(value.as_str().into());
        }
    }
    Ok(compiled)
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
