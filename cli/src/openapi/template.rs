//! OpenAPI path templates and server URLs as scopegate route templates: whole-segment
//! `{name}` placeholders (letters, digits, `_`), literal segments in normalized form.

use scopegate_core::normalize_path as normalize;
use scopegate_core::{RouteTemplate, MAX_PARAMS};
use serde_json::Value;

/// A route template and what the conversion had to change, for notes.
pub struct Template {
    pub path: String,
    pub changes: Vec<String>,
}

/// `prefix` (a server's path) and the OpenAPI `template` as one scopegate template.
pub fn convert(prefix: &str, template: &str) -> Result<Template, String> {
    let mut segments: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    for segment in prefix.split('/').chain(template.split('/')) {
        if segment.is_empty() {
            continue;
        }
        if segment.contains(['{', '}']) {
            let found = placeholder_names(segment)
                .ok_or_else(|| format!("segment `{segment}` has unbalanced braces"))?;
            let whole = found.len() == 1 && segment.starts_with('{') && segment.ends_with('}');
            let mut name = sanitize(&found.join("_"));
            let base = name.clone();
            let mut counter = 2;
            while names.contains(&name) {
                name = format!("{base}_{counter}");
                counter += 1;
            }
            if !whole {
                changes.push(format!(
                    "segment `{segment}` is matched as a whole by `{{{name}}}` (scopegate \
                     placeholders are whole segments)"
                ));
            } else if found.first().is_some_and(|f| *f != name) {
                changes.push(format!("placeholder `{segment}` is written `{{{name}}}`"));
            }
            segments.push(format!("{{{name}}}"));
            names.push(name);
        } else {
            let literal = literal(segment)?;
            if literal != segment {
                changes.push(format!(
                    "segment `{segment}` is written `{literal}` (normalized)"
                ));
            }
            segments.push(literal);
        }
    }
    if names.len() > MAX_PARAMS {
        return Err(format!(
            "{} placeholders: scopegate routes have at most {MAX_PARAMS}",
            names.len()
        ));
    }
    let path = format!("/{}", segments.join("/"));
    RouteTemplate::parse(&path).map_err(|err| format!("`{path}`: {err}"))?;
    Ok(Template { path, changes })
}

/// The names between braces, in order; `None` when braces do not pair.
fn placeholder_names(segment: &str) -> Option<Vec<&str>> {
    let mut names = Vec::new();
    let mut rest = segment;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return None;
        }
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if name.contains('{') {
            return None;
        }
        names.push(name);
        rest = &after[close + 1..];
    }
    Some(names)
}

/// Letters, digits and `_`, not starting with a digit.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() {
        out.push_str("param");
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A literal segment as clients send it (percent-encoded) and as scopegate matches it
/// (normalized).
fn literal(segment: &str) -> Result<String, String> {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        let pchar = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&byte);
        if pchar {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let probe = format!("/{encoded}");
    match normalize(&probe) {
        Ok(normal) if normal.len() > 1 && !normal[1..].contains('/') => Ok(normal[1..].into()),
        Ok(_) => Err(format!("segment `{segment}` cannot be a route segment")),
        Err(err) => Err(format!(
            "segment `{segment}` cannot be requested: {}",
            err.description()
        )),
    }
}

/// The path of a server URL (`https://api.example.com/v1/` gives `/v1`), its variables
/// replaced with their defaults; `None` for a relative URL.
pub fn server_prefix(server: &Value, at: &str) -> Result<Option<String>, String> {
    let url = server
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}.url: expected a string"))?;
    let mut expanded = String::new();
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{at}.url: `{url}` has an unclosed `{{`"))?;
        let name = &after[..close];
        let default = server
            .get("variables")
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!(
                    "{at}.variables.{name}.default: the URL uses `{{{name}}}`; give it a default"
                )
            })?;
        expanded.push_str(default);
        rest = &after[close + 1..];
    }
    expanded.push_str(rest);
    let path = if let Some((_, after_scheme)) = expanded.split_once("://") {
        after_scheme
            .find('/')
            .map_or("", |slash| &after_scheme[slash..])
    } else if expanded.starts_with('/') {
        &expanded
    } else {
        return Ok(None);
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    Ok(Some(path.trim_end_matches('/').to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_become_whole_segments() {
        assert_eq!(
            convert("/v1", "/pets/{petId}").unwrap().path,
            "/v1/pets/{petId}"
        );
        let t = convert("", "/files/{a}.{b}/{pet-id}/file.{ext}").unwrap();
        assert_eq!(t.path, "/files/{a_b}/{pet_id}/{ext}");
        assert_eq!(t.changes.len(), 3);
        assert_eq!(convert("", "/{id}/x/{id}").unwrap().path, "/{id}/x/{id_2}");
        assert_eq!(convert("", "/a b/%7euser/").unwrap().path, "/a%20b/~user");
        assert_eq!(convert("", "/").unwrap().path, "/");
        assert!(convert("", "/a/{b").is_err());
        assert!(convert("", "/a/../b").is_err());
    }

    #[test]
    fn servers_give_a_prefix() {
        let server = json!({"url": "https://{host}/api/{version}/",
                            "variables": {"host": {"default": "x.test"}, "version": {"default": "v2"}}});
        assert_eq!(
            server_prefix(&server, "servers[0]").unwrap().unwrap(),
            "/api/v2"
        );
        assert_eq!(
            server_prefix(&json!({"url": "/base"}), "s")
                .unwrap()
                .unwrap(),
            "/base"
        );
        assert_eq!(
            server_prefix(&json!({"url": "http://h.test"}), "s")
                .unwrap()
                .unwrap(),
            ""
        );
        assert_eq!(server_prefix(&json!({"url": "v1"}), "s").unwrap(), None);
        assert!(server_prefix(&json!({"url": "/{v}"}), "s")
            .unwrap_err()
            .contains("default"));
    }
}
