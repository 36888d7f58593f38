//! Kubernetes manifests checked against the OpenAPI v3 schemas of CustomResourceDefinitions,
//! without a cluster: what the API server's schema validation and strict field validation
//! (`kubectl apply --validate=strict`) would say about the fields, for the project's Istio
//! and Envoy Gateway examples.
//!
//! Covered: `type`, `properties` (a field the schema does not name is an error unless
//! `x-kubernetes-preserve-unknown-fields` or `additionalProperties` allows it),
//! `additionalProperties`, `required`, `enum`, `items`, `nullable`, `pattern`,
//! `minLength`/`maxLength`, `minimum`/`maximum`, `minItems`/`maxItems`, `maxProperties`,
//! `format: int32`, `x-kubernetes-int-or-string`, `x-kubernetes-list-type` (`set`, `map`
//! with its keys) and `oneOf`/`anyOf`/`allOf`/`not` as value validations (their branches
//! declare no fields). Not evaluated: the CEL rules of `x-kubernetes-validations`, and
//! `default` (defaulting changes nothing that is checked here). `apiVersion`, `kind` and
//! `metadata` are checked at the root as the API server does, `metadata` against the
//! fields of `ObjectMeta` that a manifest sets.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Every document of a YAML text as JSON values.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    let documents = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    documents.iter().map(|d| yaml_to_json(d, "")).collect()
}

fn yaml_to_json(yaml: &Yaml, path: &str) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or(format!("{path}: not a number: {text}"))?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(map) => {
            let mut object = Map::new();
            for (key, value) in map {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(format!("{path}: a key that is not a string: {other:?}")),
                };
                let child = yaml_to_json(value, &format!("{path}.{key}"))?;
                object.insert(key, child);
            }
            Value::Object(object)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(format!("{path}: YAML aliases are not used"))
        }
    })
}

/// The schemas of a set of CustomResourceDefinitions, by group, kind and version.
pub struct Crds {
    versions: Vec<(String, String, String, Value)>,
}

impl Crds {
    /// The CRDs in the YAML files at `paths`.
    pub fn load(paths: &[&Path]) -> Result<Self, String> {
        let mut versions = Vec::new();
        for path in paths {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            for crd in yaml_documents(&text)? {
                if crd["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let spec = &crd["spec"];
                let group = spec["group"].as_str().ok_or("a CRD without spec.group")?;
                let kind = spec["names"]["kind"]
                    .as_str()
                    .ok_or("a CRD without a kind")?;
                for version in spec["versions"].as_array().into_iter().flatten() {
                    if version["served"] != true {
                        continue;
                    }
                    let name = version["name"].as_str().ok_or("a version without a name")?;
                    versions.push((
                        group.to_owned(),
                        kind.to_owned(),
                        name.to_owned(),
                        version["schema"]["openAPIV3Schema"].clone(),
                    ));
                }
            }
        }
        Ok(Self { versions })
    }

    /// Every `group/version` `kind` the CRDs serve.
    pub fn kinds(&self) -> Vec<String> {
        self.versions
            .iter()
            .map(|(group, kind, version, _)| format!("{group}/{version} {kind}"))
            .collect()
    }

    /// Every violation in `document`, each with its path (`spec.wasm.url: …`); empty when
    /// it is valid.
    pub fn validate(&self, document: &Value) -> Vec<String> {
        let api_version = document["apiVersion"].as_str().unwrap_or("");
        let kind = document["kind"].as_str().unwrap_or("");
        let Some((_, _, _, schema)) = self
            .versions
            .iter()
            .find(|(g, k, v, _)| format!("{g}/{v}") == api_version && k == kind)
        else {
            return vec![format!(
                "apiVersion {api_version:?} kind {kind:?} is none of {:?}",
                self.kinds()
            )];
        };
        let mut errors = Vec::new();
        let Some(object) = document.as_object() else {
            return vec!["the document is not an object".into()];
        };
        // apiVersion, kind and metadata belong to every object, whether its schema names
        // them or not.
        let mut rest = object.clone();
        rest.remove("apiVersion");
        rest.remove("kind");
        if let Some(metadata) = rest.remove("metadata") {
            check(&object_meta(), &metadata, "metadata", true, &mut errors);
        } else {
            errors.push("metadata: required".into());
        }
        let mut schema = schema.clone();
        if let Some(properties) = schema["properties"].as_object_mut() {
            for name in ["apiVersion", "kind", "metadata"] {
                properties.remove(name);
            }
        }
        check(&schema, &Value::Object(rest), "", true, &mut errors);
        errors
    }
}

/// The fields of `ObjectMeta` a manifest sets.
fn object_meta() -> Value {
    let string = serde_json::json!({"type": "string"});
    let strings = serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}});
    serde_json::json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 253,
                     "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
            "namespace": {"type": "string", "maxLength": 63,
                          "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
            "generateName": string,
            "labels": strings,
            "annotations": strings
        }
    })
}

fn at(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Checks `value` at `path` against `schema`. `structural`: whether this schema declares
/// fields (false in the branches of `oneOf`/`anyOf`/`allOf`/`not`, which only validate).
fn check(schema: &Value, value: &Value, path: &str, structural: bool, errors: &mut Vec<String>) {
    let shown = if path.is_empty() { "(root)" } else { path };
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!("{shown}: must be an integer or a string"));
        }
    } else if let Some(expected) = schema["type"].as_str() {
        let ok = match expected {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => false,
        };
        if !ok {
            errors.push(format!("{shown}: must be of type {expected}, not {value}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!(
                "{shown}: {value} is none of {}",
                Value::from(allowed.clone())
            ));
        }
    }
    match value {
        Value::Object(object) => check_object(schema, object, path, structural, errors),
        Value::Array(items) => check_array(schema, items, path, structural, errors),
        Value::String(text) => check_string(schema, text, shown, errors),
        Value::Number(number) => check_number(schema, number, shown, errors),
        _ => {}
    }
    for (keyword, wanted) in [
        ("oneOf", Some(1)),
        ("anyOf", None),
        ("allOf", Some(usize::MAX)),
    ] {
        let Some(branches) = schema[keyword].as_array() else {
            continue;
        };
        let passing = branches
            .iter()
            .filter(|branch| {
                let mut inner = Vec::new();
                check(branch, value, path, false, &mut inner);
                inner.is_empty()
            })
            .count();
        let ok = match wanted {
            Some(1) => passing == 1,
            Some(_) => passing == branches.len(),
            None => passing >= 1,
        };
        if !ok {
            errors.push(format!(
                "{shown}: {keyword}: {passing} of {} alternatives hold",
                branches.len()
            ));
        }
    }
    if let Some(not) = schema.get("not") {
        let mut inner = Vec::new();
        check(not, value, path, false, &mut inner);
        if inner.is_empty() {
            errors.push(format!("{shown}: matches a schema it must not ({not})"));
        }
    }
}

fn check_object(
    schema: &Value,
    object: &Map<String, Value>,
    path: &str,
    structural: bool,
    errors: &mut Vec<String>,
) {
    let shown = if path.is_empty() { "(root)" } else { path };
    let properties = schema["properties"].as_object();
    for name in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = name.as_str() {
            if !object.contains_key(name) {
                errors.push(format!("{}: required", at(path, name)));
            }
        }
    }
    if let Some(max) = schema["maxProperties"].as_u64() {
        if object.len() as u64 > max {
            errors.push(format!("{shown}: more than {max} properties"));
        }
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    for (name, child) in object {
        let child_path = at(path, name);
        if let Some(child_schema) = properties.and_then(|p| p.get(name)) {
            check(child_schema, child, &child_path, structural, errors);
            continue;
        }
        match &schema["additionalProperties"] {
            Value::Object(_) => check(
                &schema["additionalProperties"],
                child,
                &child_path,
                structural,
                errors,
            ),
            Value::Bool(true) => {}
            _ if preserve || !structural => {}
            _ => errors.push(format!("{child_path}: unknown field")),
        }
    }
}

fn check_array(
    schema: &Value,
    items: &[Value],
    path: &str,
    structural: bool,
    errors: &mut Vec<String>,
) {
    if let Some(max) = schema["maxItems"].as_u64() {
        if items.len() as u64 > max {
            errors.push(format!("{path}: more than {max} items"));
        }
    }
    if let Some(min) = schema["minItems"].as_u64() {
        if (items.len() as u64) < min {
            errors.push(format!("{path}: fewer than {min} items"));
        }
    }
    if schema.get("items").is_some() {
        for (i, item) in items.iter().enumerate() {
            check(
                &schema["items"],
                item,
                &format!("{path}[{i}]"),
                structural,
                errors,
            );
        }
    }
    let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let identity = |item: &Value| match schema["x-kubernetes-list-type"].as_str() {
        Some("set") => Some(item.to_string()),
        Some("map") => {
            Some(Value::from(keys.iter().map(|k| item[k].clone()).collect::<Vec<_>>()).to_string())
        }
        _ => None,
    };
    let mut seen = BTreeSet::new();
    for item in items {
        if let Some(id) = identity(item) {
            if !seen.insert(id.clone()) {
                errors.push(format!("{path}: duplicate entry {id}"));
            }
        }
    }
}

fn check_string(schema: &Value, text: &str, shown: &str, errors: &mut Vec<String>) {
    let length = text.chars().count() as u64;
    if schema["maxLength"].as_u64().is_some_and(|max| length > max) {
        errors.push(format!("{shown}: longer than {}", schema["maxLength"]));
    }
    if schema["minLength"].as_u64().is_some_and(|min| length < min) {
        errors.push(format!("{shown}: shorter than {}", schema["minLength"]));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(text) => {}
            Ok(_) => errors.push(format!("{shown}: {text:?} does not match {pattern}")),
            Err(e) => errors.push(format!(
                "{shown}: the schema's pattern {pattern} is not a regex: {e}"
            )),
        }
    }
}

fn check_number(schema: &Value, number: &Number, shown: &str, errors: &mut Vec<String>) {
    let value = number.as_f64().unwrap_or(f64::NAN);
    if schema["maximum"].as_f64().is_some_and(|max| value > max) {
        errors.push(format!("{shown}: above {}", schema["maximum"]));
    }
    if schema["minimum"].as_f64().is_some_and(|min| value < min) {
        errors.push(format!("{shown}: below {}", schema["minimum"]));
    }
    if schema["format"] == "int32" && number.as_i64().is_none_or(|i| i32::try_from(i).is_err()) {
        errors.push(format!("{shown}: not a 32-bit integer"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, value: Value) -> Vec<String> {
        let mut errors = Vec::new();
        check(&schema, &value, "x", true, &mut errors);
        errors
    }

    #[test]
    fn unknown_fields_fail_unless_preserved() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert_eq!(
            errors(schema.clone(), json!({"a": "1"})),
            Vec::<String>::new()
        );
        assert_eq!(errors(schema, json!({"b": "1"})), ["x.b: unknown field"]);
        let preserved = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        assert!(errors(preserved, json!({"any": {"thing": [1]}})).is_empty());
    }

    #[test]
    fn int_or_string_and_nullable() {
        let schema = json!({"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true});
        assert!(errors(schema.clone(), json!(3)).is_empty());
        assert!(errors(schema.clone(), json!("3")).is_empty());
        assert!(!errors(schema, json!(true)).is_empty());
        let nullable = json!({"type": "integer", "nullable": true, "format": "int32"});
        assert!(errors(nullable.clone(), json!(null)).is_empty());
        assert!(!errors(nullable, json!(1_i64 << 40)).is_empty());
    }

    #[test]
    fn one_of_counts_the_branches_that_hold() {
        let schema = json!({"type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"not": {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}},
                      {"required": ["a"]}, {"required": ["b"]}]});
        assert!(errors(schema.clone(), json!({})).is_empty());
        assert!(errors(schema.clone(), json!({"a": "1"})).is_empty());
        assert_eq!(
            errors(schema, json!({"a": "1", "b": "2"})),
            ["x: oneOf: 2 of 3 alternatives hold"]
        );
    }

    #[test]
    fn enums_patterns_lengths_and_lists() {
        let schema = json!({"type": "array", "maxItems": 2, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "pattern": "^[a-f0-9]{4}$"},
                "mode": {"type": "string", "enum": ["A", "B"]}}}});
        assert!(errors(schema.clone(), json!([{"name": "abcd", "mode": "A"}])).is_empty());
        assert_eq!(
            errors(schema.clone(), json!([{"name": "ABCD", "mode": "C"}])),
            [
                "x[0].mode: \"C\" is none of [\"A\",\"B\"]",
                "x[0].name: \"ABCD\" does not match ^[a-f0-9]{4}$"
            ]
        );
        assert_eq!(
            errors(schema, json!([{"name": "abcd"}, {"name": "abcd"}, {}])),
            [
                "x: more than 2 items",
                "x[2].name: required",
                "x: duplicate entry [\"abcd\"]"
            ]
        );
    }
}
