//! The policy document around the routes: realm, issuer, keys and the protected resource.

use serde::Serialize;
use serde_json::Value;

use super::notes::Notes;
use super::routes::{RouteOut, Routes};
use super::security::{is_scope, oidc_issuer, Scheme};
use super::Options;
use std::collections::BTreeMap;

/// Algorithms of `--algorithms` when not given.
pub const DEFAULT_ALGORITHMS: [&str; 2] = ["RS256", "ES256"];

#[derive(Serialize)]
struct PolicyOut {
    version: u32,
    realm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<[ResourceOut; 1]>,
    issuers: [IssuerOut; 1],
    scopes: ScopesOut,
    routes: Vec<RouteOut>,
    unmatched: &'static str,
}

/// OpenAPI scopes are opaque strings: no hierarchy, no write suffix.
#[derive(Serialize)]
struct ScopesOut {
    /// A separator no scope of the document contains, so no scope covers another.
    separator: String,
    /// `null`: no write suffix.
    write_suffix: Option<String>,
}

/// A hierarchy separator that none of `scopes` contains.
fn unused_separator(scopes: &[String]) -> String {
    let mut separator = String::from("~");
    while scopes.iter().any(|s| s.contains(separator.as_str())) {
        separator.push('~');
    }
    separator
}

#[derive(Serialize)]
struct ResourceOut {
    resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    audiences: Option<Vec<String>>,
    scopes_supported: Vec<String>,
}

#[derive(Serialize)]
struct IssuerOut {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_cluster: Option<String>,
}

/// The whole policy, as pretty JSON in the policy's own field order.
pub fn build(
    doc: &Value,
    options: &Options,
    schemes: &BTreeMap<String, Scheme>,
    routes: Routes,
    notes: &mut Notes,
) -> Result<String, String> {
    let issuer = match (&options.issuer, oidc_issuer(schemes)) {
        (Some(issuer), _) => issuer.clone(),
        (None, Ok(Some(issuer))) => issuer,
        (None, Ok(None)) => {
            return Err(
                "give the token issuer with --issuer URL: the document has no \
                        openIdConnect scheme to take it from"
                    .into(),
            )
        }
        (None, Err(several)) => {
            return Err(format!(
                "the openIdConnect schemes name several issuers ({}): choose one with --issuer URL",
                several.join(", ")
            ))
        }
    };
    let audiences = match (&options.audiences[..], &options.resource) {
        ([], Some(resource)) => vec![resource.clone()],
        ([], None) => {
            return Err(
                "give the audience the API's tokens carry with --audience AUD (or \
                        --resource URL, whose value is then the audience)"
                    .into(),
            )
        }
        (given, _) => given.to_vec(),
    };
    let algorithms = if options.algorithms.is_empty() {
        DEFAULT_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect()
    } else {
        options.algorithms.clone()
    };
    let (jwks, jwks_uri, jwks_cluster) = match &options.jwks {
        Some(set) => (Some(set.clone()), None, None),
        None => {
            let uri = match &options.jwks_uri {
                Some(uri) => uri.clone(),
                None => {
                    let uri = format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'));
                    notes.add(
                        "keys",
                        format!(
                            "issuers[0].jwks_uri: `{uri}` is a guess; give the issuer's \
                             `jwks_uri` (from its discovery document) with --jwks-uri"
                        ),
                    );
                    uri
                }
            };
            let cluster = match &options.jwks_cluster {
                Some(cluster) => cluster.clone(),
                None => {
                    let cluster = host(&uri).unwrap_or("idp").to_owned();
                    notes.add(
                        "keys",
                        format!(
                            "issuers[0].jwks_cluster: `{cluster}`, the host of the JWKS URI; \
                             name the Envoy cluster that reaches it with --jwks-cluster"
                        ),
                    );
                    cluster
                }
            };
            (None, Some(uri), Some(cluster))
        }
    };
    let realm = match &options.realm {
        Some(realm) => realm.clone(),
        None => realm_from(
            doc.pointer("/info/title")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
    };
    let resources = match &options.resource {
        Some(resource) => {
            let mut scopes: Vec<String> = Vec::new();
            for scheme in schemes.values() {
                if let Scheme::OAuth2 { scopes: declared } = scheme {
                    for scope in declared {
                        if !is_scope(scope) {
                            notes.add(
                                "scopes",
                                format!(
                                    "scopes_supported: `{scope}` is not an OAuth scope; left out"
                                ),
                            );
                        } else if !scopes.contains(scope) {
                            scopes.push(scope.clone());
                        }
                    }
                }
            }
            for scope in routes.scopes() {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            Some([ResourceOut {
                resource: resource.clone(),
                audiences: (!options.audiences.is_empty()).then(|| options.audiences.clone()),
                scopes_supported: scopes,
            }])
        }
        None => {
            notes.add(
                "resource",
                "no protected resource metadata (RFC 9728): give --resource URL to serve it, \
                 with the document's scopes as scopes_supported"
                    .into(),
            );
            None
        }
    };
    let mut every_scope = routes.scopes();
    for scheme in schemes.values() {
        if let Scheme::OAuth2 { scopes } = scheme {
            every_scope.extend(scopes.iter().cloned());
        }
    }
    let scopes = ScopesOut {
        separator: unused_separator(&every_scope),
        write_suffix: None,
    };
    let policy = PolicyOut {
        version: 1,
        realm,
        resources,
        scopes,
        issuers: [IssuerOut {
            issuer,
            audiences,
            algorithms,
            jwks,
            jwks_uri,
            jwks_cluster,
        }],
        routes: routes.into_policy(),
        unmatched: "deny",
    };
    let mut text = serde_json::to_string_pretty(&policy).map_err(|err| err.to_string())?;
    text.push('\n');
    Ok(text)
}

/// `info.title` as a realm: printable ASCII without `"` and `\`, runs of anything else as
/// one `_`; `api` when nothing is left.
fn realm_from(title: &str) -> String {
    let mut realm = String::new();
    for c in title.trim().chars() {
        if (' '..='~').contains(&c) && c != '"' && c != '\\' {
            realm.push(c);
        } else if !realm.ends_with('_') {
            realm.push('_');
        }
    }
    let realm: String = realm.trim().chars().take(100).collect();
    if realm.is_empty() {
        "api".into()
    } else {
        realm
    }
}

/// The host of an http(s) URL.
fn host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = match authority.rfind(':') {
        Some(colon) if !authority.ends_with(']') => &authority[..colon],
        _ => authority,
    };
    (!host.is_empty()).then_some(host)
}
