use alloc::string::{String, ToString};

use serde_json::json;

use super::*;
use crate::policy::document::{RequirementDocument, Unmatched};

fn base() -> Value {
    json!({"version": 1, "realm": "api", "issuers": [], "routes": []})
}

fn error_of(value: &Value) -> String {
    match document(value) {
        Ok(_) => panic!("{value} was read"),
        Err(err) => err.to_string(),
    }
}

fn with(pointer: &str, member: Value) -> Value {
    let mut value = base();
    let (parent, name) = pointer.rsplit_once('/').unwrap_or_else(|| unreachable!());
    value.pointer_mut(parent).unwrap()[name] = member;
    value
}

#[test]
fn absent_members_take_their_defaults() {
    let doc = document(&base()).unwrap();
    assert_eq!(doc.scopes.claims, ["scope", "scp", "permissions"]);
    assert_eq!(doc.scopes.write_suffix.as_deref(), Some(".write"));
    assert_eq!(doc.unmatched, Unmatched::Deny);
    assert!(!doc.dry_run && doc.roles.is_none() && doc.resource.is_none());
}

#[test]
fn null_is_absent_for_optional_members_only() {
    let doc = document(&with("/resource", Value::Null)).unwrap();
    assert!(doc.resource.is_none());
    // `null` turns write semantics off; it is not "the default".
    let doc = document(&with("/scopes", json!({"write_suffix": null}))).unwrap();
    assert_eq!(doc.scopes.write_suffix, None);
    assert_eq!(
        error_of(&with("/dry_run", Value::Null)),
        "dry_run: invalid type: null, expected a boolean"
    );
    assert_eq!(
        error_of(&with("/realm", Value::Null)),
        "realm: invalid type: null, expected a string"
    );
}

#[test]
fn every_kind_of_wrong_value_is_named() {
    let cases = [
        ("/version", json!("1"), r#"version: invalid type: string "1", expected a non-negative integer"#),
        ("/version", json!(-1), "version: invalid value: integer `-1`, expected a non-negative integer"),
        ("/version", json!(1.5), "version: invalid type: floating point `1.5`, expected a non-negative integer"),
        ("/version", json!(5_000_000_000_u64), "version: invalid value: integer `5000000000`, expected an integer from 0 to 4294967295"),
        ("/issuers", json!({}), "issuers: invalid type: an object, expected an array"),
        ("/routes", json!([true]), "routes[0]: invalid type: boolean `true`, expected an object"),
        ("/roles", json!({"map": {"admin": [7]}}), r#"roles.map["admin"][0]: invalid type: integer `7`, expected a string"#),
        ("/unmatched", json!("maybe"), "unmatched: unknown variant `maybe`, expected `deny` or `allow`"),
        ("/unmatched", json!(0), "unmatched: invalid type: integer `0`, expected `deny` or `allow`"),
        ("/cors", json!({"allowed": []}), "cors.allowed: unknown field `allowed`, expected `allowed_origins`"),
        ("/forward", json!({"claim": []}), "forward.claim: unknown field `claim`, expected `claims` or `scopes_header`"),
        ("/roles", json!({}), "roles: missing field `map`"),
    ];
    for (pointer, member, message) in cases {
        assert_eq!(error_of(&with(pointer, member)), message);
    }
    let mut value = base();
    value["colour"] = json!("blue");
    assert!(error_of(&value)
        .starts_with("colour: unknown field `colour`, expected one of `$schema`, `version`, "));
}

#[test]
fn requirements_take_four_forms() {
    let read = |require: Value| {
        RequirementDocument::read(&require, &At::ROOT.field("require")).map_err(|e| e.to_string())
    };
    let all = |scopes: &[&str]| {
        RequirementDocument::AllOf(scopes.iter().map(|s| String::from(*s)).collect())
    };
    assert_eq!(read(json!("a")), Ok(all(&["a"])));
    assert_eq!(read(json!(["a", "b"])), Ok(all(&["a", "b"])));
    assert_eq!(read(json!({"all_of": ["a"]})), Ok(all(&["a"])));
    assert_eq!(
        read(json!({"any_of": [["a"], ["b"]]})),
        Ok(RequirementDocument::AnyOf(alloc::vec![
            alloc::vec!["a".into()],
            alloc::vec!["b".into()]
        ]))
    );
    assert_eq!(
        read(json!({})),
        Err("require: expected `all_of` or `any_of`".into())
    );
    assert_eq!(
        read(json!({"one_of": []})),
        Err("require: unknown field `one_of`, expected `all_of` or `any_of`".into())
    );
    assert_eq!(
        read(json!({"all_of": [], "any_of": []})),
        Err(
            "require: unexpected `any_of`: a requirement has exactly one of `all_of` or `any_of`"
                .into()
        )
    );
    assert_eq!(
        read(json!({"any_of": ["a"]})),
        Err(r#"require.any_of[0]: invalid type: string "a", expected an array"#.into())
    );
    assert!(read(json!(3))
        .unwrap_err()
        .starts_with("require: invalid type: integer `3`, expected a scope string"));
}

#[test]
fn the_text_is_one_json_value_without_repeated_keys() {
    use crate::policy::PolicyDocument;
    let err = |text: &str| PolicyDocument::from_json(text).unwrap_err().to_string();
    assert_eq!(
        err(r#"{"roles": {"map": {"admin": ["a"], "admin": ["b"]}}}"#),
        "roles.map: duplicate field `admin`"
    );
    assert_eq!(
        err("{\"version\": 1,\n \"realm\": }"),
        ".: not JSON: expected value at line 2 column 11"
    );
    assert_eq!(
        err(r#"{"version": 1} []"#),
        ".: after the document: trailing characters at line 1 column 16"
    );
}
