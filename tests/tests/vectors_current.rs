//! The generated vectors are what their sources make: the JWKS line of
//! `examples/policy.json` and `tests/vectors/decisions.json`, which
//! `cargo run -p scopegate-tests --bin gen-vectors` writes from
//! `tests/vectors/src/decisions.cases.json`. An edit of the cases that was not regenerated
//! would leave Rust and JS running vectors that no longer say what their source says.
//!
//! RSA-PSS signatures are salted at random, so tokens and proofs signed with PS256, PS384
//! or PS512 are compared without their signatures; everything else, byte for byte.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use base64ct::{Base64UrlUnpadded, Encoding};
use scopegate_tests::repo_root;
use scopegate_tests::vectors::{decisions, example_policy};
use serde_json::Value;

#[test]
fn the_generated_vectors_are_current() {
    let root = repo_root();
    let policy = example_policy(&root);
    let committed_policy = fs::read_to_string(root.join("examples/policy.json")).unwrap();
    assert!(
        policy == committed_policy,
        "examples/policy.json's \"jwks\" line is not the test keys': run `cargo run -p scopegate-tests --bin gen-vectors`"
    );
    let mut made = decisions(&root, &policy);
    let text = fs::read_to_string(root.join("tests/vectors/decisions.json")).unwrap();
    let mut committed: Value = serde_json::from_str(&text).unwrap();
    without_pss_signatures(&mut made);
    without_pss_signatures(&mut committed);
    let stale: Vec<String> = cases(&made)
        .into_iter()
        .filter(|(name, case)| cases(&committed).get(name) != Some(case))
        .map(|(name, _)| name)
        .collect();
    assert!(
        stale.is_empty() && made == committed,
        "tests/vectors/decisions.json is not what its source makes (cases differing: {stale:?}): \
         run `cargo run -p scopegate-tests --bin gen-vectors` and review the diff"
    );
}

/// Every case by `suite / name`.
fn cases(document: &Value) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for suite in document["suites"].as_array().into_iter().flatten() {
        for case in suite["cases"].as_array().into_iter().flatten() {
            let name = format!("{} / {}", suite["name"], case["name"]);
            out.insert(name, case.clone());
        }
    }
    out
}

/// Every compact JWS signed with PS256/384/512 in `value`'s strings (alone or after a
/// scheme, `DPoP <token>`), its signature replaced by `(PSS)`.
fn without_pss_signatures(value: &mut Value) {
    match value {
        Value::String(text) => {
            let words: Vec<String> = text.split(' ').map(without_pss_signature).collect();
            *text = words.join(" ");
        }
        Value::Array(items) => items.iter_mut().for_each(without_pss_signatures),
        Value::Object(members) => members.values_mut().for_each(without_pss_signatures),
        _ => {}
    }
}

fn without_pss_signature(word: &str) -> String {
    let parts: Vec<&str> = word.split('.').collect();
    let [header, payload, _] = parts[..] else {
        return word.to_owned();
    };
    let pss = Base64UrlUnpadded::decode_vec(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|header| {
            header["alg"]
                .as_str()
                .is_some_and(|alg| alg.starts_with("PS"))
        });
    if pss {
        format!("{header}.{payload}.(PSS)")
    } else {
        word.to_owned()
    }
}
