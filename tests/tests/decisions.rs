//! Runs `tests/vectors/decisions.json` against the core: every case through
//! `Policy::decide` (signatures verified), and every case not marked `signature_only`
//! through `Policy::precheck` too, which must give the same answer.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use scopegate_core::{Decision, Policy};
use scopegate_tests::{decision_suite, repo_root, with_vector_request};
use serde_json::{json, Value};

fn load() -> Value {
    let path = repo_root().join("tests/vectors/decisions.json");
    serde_json::from_str(&fs::read_to_string(path).expect("decisions.json")).expect("JSON")
}

/// The observable parts of a decision, as the vectors write them: the core's one answer of
/// a decision (`Decision::answer`) under the vectors' snake_case names.
fn observe(policy: &Policy, decision: &Decision<'_>) -> Value {
    let answer = decision.answer(policy);
    let kind = match decision {
        Decision::Allow(_) => "allow",
        Decision::Deny(_) => "deny",
        Decision::Serve(_) => "serve",
        Decision::NeedBody(_) => "need_body",
    };
    let headers: serde_json::Map<String, Value> = answer
        .headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    json!({
        "decision": kind,
        "code": answer.code,
        "status": answer.status,
        "token_error": answer.token_error,
        "missing": answer.missing,
        "max_age": answer.max_age,
        "www_authenticate": answer.challenge,
        "body": answer.body,
        "allowed_origin": answer.allowed_origin,
        "headers": headers,
    })
}

/// Every field the case expects must match; fields it does not mention are not checked.
fn check(suite: &str, case: &Value, observed: &Value, mode: &str) -> Vec<String> {
    let name = case["name"].as_str().unwrap_or("?");
    let mut failures = Vec::new();
    for (field, expected) in case["expect"].as_object().expect("expect") {
        let actual = observed.get(field).unwrap_or(&Value::Null);
        if actual != expected {
            failures.push(format!(
                "[{suite}] {name} ({mode}): `{field}` expected {expected}, got {actual}"
            ));
        }
    }
    failures
}

#[test]
fn decision_vectors() {
    let vectors = load();
    let mut failures = Vec::new();
    let mut ran = 0;
    for suite in vectors["suites"].as_array().expect("suites") {
        let suite_name = suite["name"].as_str().expect("name");
        let (policy, keys, now) = decision_suite(suite);
        for case in suite["cases"].as_array().expect("cases") {
            let (decided, prechecked) = with_vector_request(&case["request"], |request| {
                (
                    observe(&policy, &policy.decide(request, &keys, now)),
                    observe(&policy, &policy.precheck(request, now)),
                )
            });
            failures.extend(check(suite_name, case, &decided, "decide"));
            if case.get("signature_only") != Some(&json!(true)) && prechecked != decided {
                failures.push(format!(
                    "[{suite_name}] {}: precheck {prechecked} differs from decide {decided}",
                    case["name"]
                ));
            }
            ran += 1;
        }
    }
    assert!(ran >= 80, "only {ran} decision vectors ran");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
