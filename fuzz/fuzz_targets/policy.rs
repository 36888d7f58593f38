//! `Policy::from_json` on arbitrary text, then decisions with every policy it accepts.
//!
//! Invariants, besides not panicking:
//! - a policy with a `resource` serves its RFC 9728 metadata document (valid JSON) at the
//!   well-known path a client derives from the resource identifier;
//! - a compiled policy decides `GET /` (and its metadata path, and one concrete request
//!   per route) with `decide` and `precheck`, and every decision satisfies
//!   `scopegate_fuzz::check_decision` for that policy (so: its realm is safe in a header,
//!   its denials' bodies are JSON, its challenges parse back);
//! - without a token, `decide` and `precheck` agree;
//! - an error names a JSON path and a message, without a line/column suffix (but for text
//!   after the document, which only a line and column can locate).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::{Decision, KeyStore, Policy, Request};
use scopegate_fuzz::{check_decision, NOW};

/// Routes tried per policy, at most.
const ROUTES: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::from_json(text) {
        Ok(policy) => policy,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    let mut paths = vec![String::from("/")];
    if let Some(document) = policy.resource_metadata() {
        let document: serde_json::Value = match serde_json::from_str(document) {
            Ok(document) => document,
            Err(err) => panic!("metadata document {document:?}: {err}"),
        };
        let resource = document["resource"]
            .as_str()
            .expect("metadata names the resource");
        let path = metadata_path(resource);
        let decision = policy.decide(&Request::new("GET", &path), &KeyStore::default(), NOW);
        assert!(
            matches!(decision, Decision::Serve(_)),
            "the metadata document of {resource:?} is not served at {path:?}: {decision:?}"
        );
        paths.push(path);
    }
    for index in 0..ROUTES {
        let Some(template) = policy.route_path(index) else {
            break;
        };
        paths.push(concrete(template));
    }
    let keys = KeyStore::default();
    for path in &paths {
        for method in ["GET", "POST"] {
            let request = Request::new(method, path);
            let decided = policy.decide(&request, &keys, NOW);
            check_decision(&policy, &decided, None);
            let prechecked = policy.precheck(&request, NOW);
            check_decision(&policy, &prechecked, None);
            assert_eq!(decided, prechecked, "no token: {method} {path}");
        }
    }
});

/// Where RFC 9728 §3.1 puts the metadata of `resource`: the well-known segment between the
/// authority and the resource's path.
fn metadata_path(resource: &str) -> String {
    let rest = resource
        .split_once("://")
        .map_or(resource, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    format!(
        "/.well-known/oauth-protected-resource{}",
        path.trim_end_matches('/')
    )
}

/// A path a route template matches: placeholders and `**` filled in.
fn concrete(template: &str) -> String {
    let path: Vec<&str> = template
        .split('/')
        .map(|segment| match segment {
            "**" => "any/thing",
            s if s.starts_with('{') && s.ends_with('}') => "x7",
            s => s,
        })
        .collect();
    path.join("/")
}
