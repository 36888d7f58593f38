//! OpenAPI 3.0 and 3.1 documents as scopegate policies (`scopegate import openapi`): a route
//! per path and method, its requirement from the OAuth 2 and OpenID Connect scopes of the
//! operation's `security` (or the document's default).

mod load;
mod notes;
mod policy;
mod refs;
mod routes;
mod security;
mod template;
mod yaml;

use serde_json::Value;

pub use load::read;
pub use notes::Notes;

use refs::resolve;
use routes::Routes;
use security::Why;

/// The operations of a path item, as OpenAPI names them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// What the document does not say: the issuer, audiences, keys, realm and resource.
#[derive(Debug, Default)]
pub struct Options {
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub jwks_uri: Option<String>,
    pub jwks_cluster: Option<String>,
    /// An inline JWKS instead of `jwks_uri`.
    pub jwks: Option<Value>,
    pub realm: Option<String>,
    pub resource: Option<String>,
}

/// The policy for `doc`, as JSON text; errors name the JSON path in the document.
pub fn import(doc: &Value, options: &Options, notes: &mut Notes) -> Result<String, String> {
    check_version(doc, notes)?;
    let schemes = security::schemes(doc)?;
    let default_security = doc.get("security").map(|s| (s, String::from("security")));
    let document_servers = doc.get("servers").map(|s| (s, String::from("servers")));
    let mut routes = Routes::default();
    let Some(paths) = doc.get("paths") else {
        notes.add(
            "paths",
            "the document has no `paths`: the policy has no route".into(),
        );
        return policy::build(doc, options, &schemes, routes, notes);
    };
    let paths = paths
        .as_object()
        .ok_or_else(|| String::from("paths: expected an object"))?;
    let mut operations = 0;
    for (template, item) in paths {
        if template.starts_with("x-") {
            continue;
        }
        let at = format!("paths.{template}");
        let (item, item_at) = resolve(doc, item, &at)?;
        let item = item
            .as_object()
            .ok_or_else(|| format!("{item_at}: expected a path item object"))?;
        let path_servers = item
            .get("servers")
            .map(|s| (s, format!("{item_at}.servers")))
            .or_else(|| document_servers.clone());
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let op_at = format!("{at}.{method}");
            if !operation.is_object() {
                return Err(format!("{op_at}: expected an operation object"));
            }
            operations += 1;
            let servers = operation
                .get("servers")
                .map(|s| (s, format!("{op_at}.servers")))
                .or_else(|| path_servers.clone());
            let prefix = prefix(servers, &op_at, notes)?;
            let converted =
                template::convert(&prefix, template).map_err(|err| format!("{at}: {err}"))?;
            for change in converted.changes {
                notes.add("path segments rewritten", format!("{op_at}: {change}"));
            }
            let security = operation
                .get("security")
                .map(|s| (s, format!("{op_at}.security")))
                .or_else(|| default_security.clone());
            let (access, why) = security::access(security, &schemes)?;
            if let Some(why) = why {
                note(notes, &op_at, why);
            }
            let method = method.to_ascii_uppercase();
            routes.add(converted.path, method, access, &op_at, notes)?;
        }
    }
    if operations == 0 {
        notes.add(
            "paths",
            "the document has no operation: the policy has no route".into(),
        );
    }
    let merged = operations - routes.len();
    if merged > 0 {
        notes.add(
            "summary",
            format!("{operations} operations, {} routes", routes.len()),
        );
    }
    policy::build(doc, options, &schemes, routes, notes)
}

/// `openapi: 3.0.x` or `3.1.x`; Swagger 2.0 is refused.
fn check_version(doc: &Value, notes: &mut Notes) -> Result<(), String> {
    if !doc.is_object() {
        return Err("expected an OpenAPI document (an object)".into());
    }
    let Some(version) = doc.get("openapi") else {
        if doc.get("swagger").is_some() {
            return Err(
                "swagger: Swagger 2.0 is not supported; convert the document to \
                        OpenAPI 3 first (for example with swagger2openapi)"
                    .into(),
            );
        }
        return Err("openapi: missing; not an OpenAPI 3 document".into());
    };
    let version = version
        .as_str()
        .ok_or_else(|| String::from("openapi: expected a version string such as \"3.1.0\""))?;
    if !version.starts_with("3.") {
        return Err(format!(
            "openapi: version `{version}` is not supported; use 3.0 or 3.1"
        ));
    }
    if !version.starts_with("3.0") && !version.starts_with("3.1") {
        notes.add(
            "version",
            format!("openapi: version `{version}` read as 3.1"),
        );
    }
    Ok(())
}

/// The path prefix of the first server that applies.
fn prefix(
    servers: Option<(&Value, String)>,
    op_at: &str,
    notes: &mut Notes,
) -> Result<String, String> {
    let Some((servers, at)) = servers else {
        return Ok(String::new());
    };
    let list = servers
        .as_array()
        .ok_or_else(|| format!("{at}: expected a list of server objects"))?;
    let Some(first) = list.first() else {
        return Ok(String::new());
    };
    match template::server_prefix(first, &format!("{at}[0]"))? {
        Some(prefix) => Ok(prefix),
        None => {
            notes.add(
                "relative server URLs",
                format!("{op_at}: {at}[0].url is relative: no path prefix is added"),
            );
            Ok(String::new())
        }
    }
}

fn note(notes: &mut Notes, at: &str, why: Why) {
    match why {
        Why::NoSecurity => notes.add(
            "operations without security",
            format!("{at}: no `security` on the operation nor in the document: public"),
        ),
        Why::OtherOnly(schemes) => notes.add(
            "operations secured by schemes scopegate cannot check",
            format!(
                "{at}: secured only by {}, which scopegate cannot check: public, the upstream \
                 checks them",
                schemes.join(", ")
            ),
        ),
        Why::Dropped(schemes) => notes.add(
            "alternatives dropped",
            format!(
                "{at}: the alternatives with {} are left out: scopegate accepts OAuth tokens only",
                schemes.join(", ")
            ),
        ),
    }
}
