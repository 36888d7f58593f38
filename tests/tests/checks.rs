//! `tests/vectors/checks.json`: for every request of `decisions.json`, the answer the browser
//! package's `policy.check` must give (`Decision::answer` of `Policy::precheck`). This
//! runner proves that answer is the gateway's (`Policy::decide`, signatures verified) for
//! every case not marked `signature_only`; the Node tests prove `check` gives it in JS.
//!
//! `signature_only` cases (bad signature, unknown `kid`, keys not fetched yet, ...) cannot be
//! told apart without verifying the signature, which the client never does: for those the
//! file holds the pre-check's answer (the gateway's answer for the same claims, well
//! signed) and `gateway_code`, what the gateway answers instead.
//!
//! After a deliberate change of decisions, rewrite the file with
//! `SCOPEGATE_BLESS=1 cargo test -p scopegate-tests --test checks` and review the diff.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use scopegate_tests::{decision_suite, repo_root, with_vector_request};
use serde_json::{json, Value};

/// The expected file, computed from `decisions.json`.
fn compute() -> (Value, Vec<String>) {
    let path = repo_root().join("tests/vectors/decisions.json");
    let vectors: Value =
        serde_json::from_str(&fs::read_to_string(path).expect("decisions.json")).expect("JSON");
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    for suite in vectors["suites"].as_array().expect("suites") {
        let suite_name = suite["name"].as_str().expect("name");
        let (policy, keys, now) = decision_suite(suite);
        for case in suite["cases"].as_array().expect("cases") {
            let name = case["name"].as_str().expect("name");
            let (gateway, check) = with_vector_request(&case["request"], |req| {
                (
                    json!(policy.decide(req, &keys, now).answer(&policy)),
                    json!(policy.precheck(req, now).answer(&policy)),
                )
            });
            let signature_only = case.get("signature_only") == Some(&json!(true));
            let mut entry = json!({"suite": suite_name, "name": name, "check": check});
            if signature_only {
                if gateway == check {
                    failures.push(format!(
                        "[{suite_name}] {name}: signature_only, but check and gateway agree"
                    ));
                }
                entry["signature_only"] = json!(true);
                entry["gateway_code"] = gateway["code"].clone();
            } else if gateway != check {
                failures.push(format!(
                    "[{suite_name}] {name}: check {check} differs from the gateway's {gateway}"
                ));
            }
            cases.push(entry);
        }
    }
    let file = json!({
        "about": "For every request of decisions.json (same suite and name): `check` is the answer of the browser package's policy.check, equal to the gateway's decision except for `signature_only` cases, where the client cannot see the bad signature and `gateway_code` is what the gateway answers. Written by `SCOPEGATE_BLESS=1 cargo test -p scopegate-tests --test checks`.",
        "cases": cases,
    });
    (file, failures)
}

#[test]
fn check_answers_equal_the_gateway() {
    let (expected, failures) = compute();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let path = repo_root().join("tests/vectors/checks.json");
    let mut text = serde_json::to_string_pretty(&expected).expect("JSON");
    text.push('\n');
    if std::env::var_os("SCOPEGATE_BLESS").is_some() {
        fs::write(&path, text).expect("write checks.json");
        return;
    }
    let on_disk = fs::read_to_string(&path).expect("checks.json (bless it first)");
    let on_disk: Value = serde_json::from_str(&on_disk).expect("JSON");
    let cases = on_disk["cases"].as_array().expect("cases");
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    for (expected, found) in expected["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .zip(cases)
    {
        assert_eq!(
            expected, found,
            "checks.json is stale; rewrite it with SCOPEGATE_BLESS=1 and review the diff"
        );
    }
    assert_eq!(expected, on_disk, "checks.json is stale");
}
