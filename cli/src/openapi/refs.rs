//! Local `$ref`s (`#/components/...`): followed with a limit and a cycle check, never by
//! recursion. External references (`other.yaml#/...`) are refused with a message.

use serde_json::Value;

/// How many `$ref`s in a row one value may go through.
const MAX_HOPS: usize = 32;

/// `value`, or what its `$ref` chain points to, with the JSON path it was found at (`at`
/// for a value that is no reference).
pub fn resolve<'a>(
    doc: &'a Value,
    value: &'a Value,
    at: &str,
) -> Result<(&'a Value, String), String> {
    let mut current = value;
    let mut where_ = String::from(at);
    let mut seen: Vec<&str> = Vec::new();
    while let Some(reference) = current.get("$ref") {
        let Some(reference) = reference.as_str() else {
            return Err(format!("{where_}.$ref: expected a string"));
        };
        if seen.contains(&reference) || seen.len() >= MAX_HOPS {
            seen.push(reference);
            return Err(format!(
                "{at}: `$ref` cycle: {}; a reference must end at a value",
                seen.join(" -> ")
            ));
        }
        seen.push(reference);
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(format!(
                "{where_}.$ref: external reference `{reference}` is not supported: bundle the \
                 document into one file first (for example `redocly bundle` or \
                 `swagger-cli bundle`)"
            ));
        };
        current = lookup(doc, pointer).ok_or_else(|| {
            format!("{where_}.$ref: `{reference}` points to nothing in the document")
        })?;
        where_ = dotted(pointer);
    }
    Ok((current, where_))
}

/// A JSON pointer (RFC 6901, percent-decoded as in a URI fragment) into `doc`.
fn lookup<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    let pointer = percent_decode(pointer)?;
    if pointer.is_empty() {
        return Some(doc);
    }
    let mut current = doc;
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        current = match current {
            Value::Object(map) => map.get(&token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// `/components/pathItems/Pet` as `components.pathItems.Pet`, for messages.
fn dotted(pointer: &str) -> String {
    let decoded = percent_decode(pointer).unwrap_or_else(|| String::from(pointer));
    decoded
        .trim_start_matches('/')
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(String::from(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn follows_chains_and_stops_cycles() {
        let doc = json!({"components": {"pathItems": {
            "a": {"$ref": "#/components/pathItems/b"}, "b": {"get": {}},
            "c": {"$ref": "#/components/pathItems/d"}, "d": {"$ref": "#/components/pathItems/c"},
            "e~f/g": {"put": {}}}}});
        let start = json!({"$ref": "#/components/pathItems/a"});
        let (value, at) = resolve(&doc, &start, "paths./x").unwrap();
        assert_eq!(value, &json!({"get": {}}));
        assert_eq!(at, "components.pathItems.b");
        let cycle = json!({"$ref": "#/components/pathItems/c"});
        let err = resolve(&doc, &cycle, "paths./y").unwrap_err();
        assert!(err.contains("`$ref` cycle"), "{err}");
        let escaped = json!({"$ref": "#/components/pathItems/e~0f~1g"});
        assert_eq!(resolve(&doc, &escaped, "p").unwrap().0, &json!({"put": {}}));
        let external = json!({"$ref": "other.yaml#/x"});
        assert!(resolve(&doc, &external, "p")
            .unwrap_err()
            .contains("external reference"));
    }
}
