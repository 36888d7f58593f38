//! The protected resources of RFC 9728: one `resource` that governs every request, or
//! several `resources`, each governing the requests under its URL's path, with its own
//! metadata document, audiences and `scopes_supported`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{check_header_text, invalid_scope_message};
use crate::policy::document::ResourceDocument;
use crate::policy::requirement::ScopeTemplate;
use crate::policy::{
    is_under, Access, Policy, PolicyDocument, PolicyError, Requirement, Resource, MAX_RESOURCES,
};
use crate::scope::is_valid_scope;

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A resource before the routes are known: its metadata document lists their scopes.
pub(super) struct PendingResource {
    identifier: String,
    prefix: String,
    audiences: Option<Vec<Box<str>>>,
    scopes_supported: Option<Vec<String>>,
    metadata_url: String,
    metadata_path: String,
}

/// Reads `resource` or `resources`.
pub(super) fn compile_resources(doc: &PolicyDocument) -> Result<Vec<PendingResource>, PolicyError> {
    match (&doc.resource, &doc.resources) {
        (Some(_), Some(_)) => Err(PolicyError::new(
            "resources",
            "write either `resource` (one resource for every request) or `resources`, not both",
        )),
        (None, None) => Ok(Vec::new()),
        (Some(identifier), None) => {
            let url = ResourceUrl::parse("resource", identifier)?;
            // The single form governs every request, whatever its path, with the issuers'
            // audiences: what it always did.
            Ok(alloc::vec![url.pending(String::new(), None, None)])
        }
        (None, Some(list)) => {
            if list.is_empty() {
                return Err(PolicyError::new(
                    "resources",
                    "list at least one resource, or remove `resources`",
                ));
            }
            if list.len() > MAX_RESOURCES {
                return Err(PolicyError::new(
                    "resources",
                    format!("at most {MAX_RESOURCES} resources can be protected by one policy"),
                ));
            }
            let mut pending: Vec<PendingResource> = Vec::with_capacity(list.len());
            for (index, entry) in list.iter().enumerate() {
                let path = format!("resources[{index}]");
                let resource = compile_entry(&path, entry)?;
                if let Some(earlier) = pending.iter().position(|p| p.prefix == resource.prefix) {
                    return Err(PolicyError::new(
                        format!("{path}.resource"),
                        format!(
                            "resources[{earlier}] already governs the path `{}`: one path, one \
                             metadata document",
                            if resource.prefix.is_empty() {
                                "/"
                            } else {
                                &resource.prefix
                            }
                        ),
                    ));
                }
                pending.push(resource);
            }
            Ok(pending)
        }
    }
}

fn compile_entry(path: &str, entry: &ResourceDocument) -> Result<PendingResource, PolicyError> {
    let url = ResourceUrl::parse(&format!("{path}.resource"), &entry.resource)?;
    let audiences = match &entry.audiences {
        None => alloc::vec![Box::from(entry.resource.as_str())],
        Some(list) if list.is_empty() => {
            return Err(PolicyError::new(
                format!("{path}.audiences"),
                "at least one audience is required: tokens for other APIs must not pass",
            ))
        }
        Some(list) => {
            let mut audiences = Vec::with_capacity(list.len());
            for (index, audience) in list.iter().enumerate() {
                if audience.is_empty() {
                    return Err(PolicyError::new(
                        format!("{path}.audiences[{index}]"),
                        "an audience cannot be empty",
                    ));
                }
                audiences.push(Box::from(audience.as_str()));
            }
            audiences
        }
    };
    if let Some(scopes) = &entry.scopes_supported {
        for (index, scope) in scopes.iter().enumerate() {
            if !is_valid_scope(scope) {
                return Err(PolicyError::new(
                    format!("{path}.scopes_supported[{index}]"),
                    invalid_scope_message(scope),
                ));
            }
        }
    }
    let prefix = url.prefix.clone();
    Ok(url.pending(prefix, Some(audiences), entry.scopes_supported.clone()))
}

/// Renders each resource's metadata document, now that the routes are compiled.
pub(super) fn finish_resources(policy: &mut Policy, pending: Vec<PendingResource>) {
    let prefixes: Vec<String> = pending.iter().map(|p| p.prefix.clone()).collect();
    let single = pending.len() == 1 && pending[0].prefix.is_empty();
    let mut resources = Vec::with_capacity(pending.len());
    for (index, resource) in pending.into_iter().enumerate() {
        let governs = |template: &str| single || governing(&prefixes, template) == Some(index);
        let scopes: Vec<Box<str>> = match &resource.scopes_supported {
            Some(scopes) => scopes.iter().map(|s| Box::from(s.as_str())).collect(),
            None => route_scopes(policy, governs),
        };
        let servers: Vec<&str> = policy.issuers.iter().map(|i| &*i.issuer).collect();
        let document = serde_json::json!({
            "resource": resource.identifier,
            "authorization_servers": servers,
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
        });
        resources.push(Resource {
            prefix: resource.prefix.into(),
            audiences: resource.audiences,
            metadata_url: resource.metadata_url.into(),
            metadata_path: resource.metadata_path.into(),
            metadata_document: format!("{document}").into(),
        });
    }
    policy.resources = resources;
}

/// Which resource a route template falls under: the one with the longest prefix its
/// literal start is under (a template beginning with a parameter falls under `/` only).
fn governing(prefixes: &[String], template: &str) -> Option<usize> {
    prefixes
        .iter()
        .enumerate()
        .filter(|(_, prefix)| is_under(template, prefix))
        .max_by_key(|(_, prefix)| prefix.len())
        .map(|(index, _)| index)
}

/// Every literal scope that the routes `governs` accepts can require, sorted, once each.
/// (Boxed, to be sorted by the same code as a token's scopes: `ScopeSet`.)
fn route_scopes(policy: &Policy, governs: impl Fn(&str) -> bool) -> Vec<Box<str>> {
    let mut scopes: Vec<Box<str>> = policy
        .routes
        .iter()
        .filter(|route| governs(&route.path))
        .flat_map(|route| -> Box<dyn Iterator<Item = &Requirement>> {
            match &route.access {
                Access::Protected(requirement) => Box::new(core::iter::once(requirement)),
                Access::Mcp(mcp) => Box::new(mcp.requirements()),
                Access::Public => Box::new(core::iter::empty()),
            }
        })
        .flat_map(|requirement| requirement.alternatives.iter().flatten())
        .filter_map(ScopeTemplate::literal)
        .map(Box::from)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// A resource identifier, taken apart per RFC 9728 §3.1: the well-known segment goes
/// between the authority and the resource's path.
struct ResourceUrl {
    identifier: String,
    prefix: String,
    metadata_url: String,
    metadata_path: String,
}

impl ResourceUrl {
    fn parse(at: &str, identifier: &str) -> Result<Self, PolicyError> {
        check_header_text(at, identifier)?;
        let not_url = || PolicyError::new(at, "must be an absolute http or https URL");
        let (scheme, rest) = identifier.split_once("://").ok_or_else(not_url)?;
        if scheme != "https" && scheme != "http" {
            return Err(not_url());
        }
        if rest.contains(['?', '#', ' ']) {
            return Err(PolicyError::new(
                at,
                "must not have a query or fragment (RFC 9728 section 1.2)",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(split) => rest.split_at(split),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(PolicyError::new(at, "has no host"));
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
                    at,
                    format!("its path `{path}` is not in normal form; write `{normal}`"),
                ));
            }
            Err(err) => {
                return Err(PolicyError::new(
                    at,
                    format!(
                        "its path `{path}` cannot be requested: {}",
                        err.description()
                    ),
                ))
            }
        }
        Ok(Self {
            identifier: String::from(identifier),
            prefix: String::from(path),
            metadata_url: format!("{scheme}://{authority}{metadata_path}"),
            metadata_path,
        })
    }

    fn pending(
        self,
        prefix: String,
        audiences: Option<Vec<Box<str>>>,
        scopes_supported: Option<Vec<String>>,
    ) -> PendingResource {
        PendingResource {
            identifier: self.identifier,
            prefix,
            audiences,
            scopes_supported,
            metadata_url: self.metadata_url,
            metadata_path: self.metadata_path,
        }
    }
}
