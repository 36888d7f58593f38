//! `scopegate lint`, run as a user would: every error at once with its JSON path and line,
//! each warning rule, the JSON and SARIF formats, exit codes.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use support::{json, scopegate, unsigned_jwt, TempDir};

/// A policy with three errors, one per line 3, 9 and 11.
const BROKEN: &str = r#"{"version": 1, "realm": "api",
 "issuers": [
   {"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256", "none"],
    "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"},
   {"issuer": "https://idp2", "audiences": ["api"], "algorithms": ["ES256"],
    "jwks_uri": "https://idp2/jwks", "jwks_cluster": "idp2"}],
 "routes": [
   {"path": "/ok", "require": "ok"},
   {"path": "/a", "require": "a b"},
   {"path": "/fine", "public": true},
   {"path": "c", "public": true}]}"#;

/// Compiles, with one finding of each policy-only warning rule.
const WARNED: &str = r#"{"version": 1, "realm": "api",
 "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
              "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
 "scopes": {"prefixes": ["transaction-"], "max_age": {"admin": 300}},
 "roles": {"map": {"admin": ["admin", "everything"], "reader": ["api"]}},
 "unmatched": "allow",
 "routes": [
   {"path": "/api/**", "require": "api"},
   {"path": "/api/{x}", "require": "api"},
   {"path": "/api", "require": "api"},
   {"path": "/api/{x}/**", "require": "api"},
   {"path": "/api/docs", "methods": ["GET"], "public": true},
   {"path": "/admin", "require": "admin"},
   {"path": "/hidden", "require": "secret"}]}"#;

fn lint_json(file: &str, extra: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["lint", file, "--format", "json"];
    args.extend(extra);
    let (code, out, err) = scopegate(&args);
    assert!(code == 0 || code == 1, "{err}");
    (code, json(&out).as_array().unwrap().clone())
}

fn rules(findings: &[Value]) -> Vec<(&str, &str)> {
    findings
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect()
}

/// The paths of the findings of one rule.
fn paths_of<'f>(findings: &'f [Value], rule: &str) -> Vec<&'f str> {
    rules(findings)
        .into_iter()
        .filter(|(r, _)| *r == rule)
        .map(|(_, path)| path)
        .collect()
}

#[test]
fn every_error_at_once_with_path_and_line() {
    let dir = TempDir::new("lint-broken");
    let file = dir.write("broken.json", BROKEN);
    let (code, findings) = lint_json(&file, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        rules(&findings),
        [
            ("error", "issuers[0].algorithms[1]"),
            ("error", "routes[1].require"),
            ("error", "routes[3].path"),
            // And the warnings of what compiles without the broken entries.
            ("unknowable-scope", "routes[0]"),
        ]
    );
    let lines: Vec<u64> = findings
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 9, 11, 8]);
    assert!(findings[1]["message"]
        .as_str()
        .unwrap()
        .contains("`a b` is not a valid scope"));
    // Text: file:line:column, and a summary.
    let (code, out, _) = scopegate(&["lint", &file]);
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "broken.json:3:76: error[error] issuers[0].algorithms[1]: unknown algorithm `none`"
        ),
        "{out}"
    );
    assert!(out.ends_with("broken.json: 3 errors, 1 warning\n"), "{out}");
    // Not JSON at all, and no file.
    let file = dir.write("truncated.json", &BROKEN[..200]);
    let (code, findings) = lint_json(&file, &[]);
    assert_eq!(code, 1);
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("not JSON: EOF"),
        "{findings:?}"
    );
    let (code, _, err) = scopegate(&["lint", "no-such-policy.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-policy.json"), "{err}");
}

#[test]
fn each_warning_rule() {
    let dir = TempDir::new("lint-warned");
    let file = dir.write("warned.json", WARNED);
    // A sample token without auth_time, while `admin` has a max_age.
    let token = unsigned_jwt(&json!({"iss": "https://idp", "aud": "api", "scope": "api"}));
    let (code, findings) = lint_json(&file, &["--token", &token]);
    assert_eq!(code, 0, "warnings alone pass");
    assert_eq!(
        rules(&findings),
        [
            ("shadowed-route", "routes[0]"),
            ("public-overlap", "routes[4]"),
            ("public-overlap", "routes[4]"),
            ("public-overlap", "routes[4]"),
            ("unused-role-scope", "roles.map.admin[1]"),
            ("unknowable-scope", "routes[6]"),
            ("unbound-prefix", "scopes.prefixes[0]"),
            ("unmatched-allowed", "unmatched"),
            ("max-age-without-auth-time", "scopes.max_age"),
        ]
    );
    assert!(findings[0]["message"]
        .as_str()
        .unwrap()
        .contains("routes[2], routes[1], routes[3]"));
    let (code, _, _) = scopegate(&["lint", &file, "--deny-warnings"]);
    assert_eq!(code, 1);

    // An MCP resource whose tokens carry another audience.
    let mut policy: Value = serde_json::from_str(WARNED).unwrap();
    policy["resource"] = json!("https://gw.example/mcp");
    let file = dir.write("resource.json", &policy.to_string());
    let (_, findings) = lint_json(&file, &[]);
    assert_eq!(
        paths_of(&findings, "audience-not-resource"),
        ["issuers[0].audiences"]
    );
    // With `resource`, the scopes are advertised: no unknowable-scope.
    assert!(!rules(&findings)
        .iter()
        .any(|(r, _)| *r == "unknowable-scope"));

    // An entry of `resources` without `audiences` accepts its own URL: nothing to warn
    // about; with audiences that leave its URL out, a warning on them.
    let mut policy: Value = serde_json::from_str(WARNED).unwrap();
    policy["resources"] = json!([
        {"resource": "https://gw.example/mcp"},
        {"resource": "https://gw.example/api", "audiences": ["orders-api"]}
    ]);
    let file = dir.write("resources.json", &policy.to_string());
    let (_, findings) = lint_json(&file, &[]);
    assert_eq!(
        paths_of(&findings, "audience-not-resource"),
        ["resources[1].audiences"]
    );
}

/// Every policy document under `examples/` (a JSON file with `version` and `routes`, outside
/// `node_modules`).
fn example_policies() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("node_modules") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if doc.get("version").is_some() && doc.get("routes").is_some() {
                    out.push(path);
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut out = Vec::new();
    walk(&root, &mut out);
    out.sort();
    out
}

#[test]
fn every_example_policy_lints_clean() {
    let policies = example_policies();
    assert!(
        policies.iter().any(|p| p.ends_with("examples/policy.json")),
        "{policies:?}"
    );
    for policy in policies {
        let (code, findings) = lint_json(policy.to_str().unwrap(), &[]);
        assert_eq!(
            (code, findings.as_slice()),
            (0, &[][..]),
            "{}",
            policy.display()
        );
    }
}

#[test]
fn sarif_for_code_scanning() {
    let dir = TempDir::new("lint-sarif");
    let file = dir.write("broken.json", BROKEN);
    let (code, out, _) = scopegate(&["lint", &file, "--format", "sarif"]);
    assert_eq!(code, 1);
    let sarif = json(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "scopegate");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 10);
    assert!(rules.contains(&"shadowed-route"));
    assert!(rules.contains(&"inline-secret"));
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let first = &results[0];
    assert_eq!(first["level"], "error");
    assert_eq!(
        first["ruleId"],
        rules[first["ruleIndex"].as_u64().unwrap() as usize]
    );
    let location = &first["locations"][0];
    assert_eq!(location["physicalLocation"]["region"]["startLine"], 3);
    assert!(location["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .ends_with("broken.json"));
    assert_eq!(
        location["logicalLocations"][0]["fullyQualifiedName"],
        "issuers[0].algorithms[1]"
    );
}
