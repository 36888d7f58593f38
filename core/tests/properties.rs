//! Property tests: the scope algebra, progressive requests, challenge round trips, path
//! normalization and the parsers never panicking (route order independence: src/route.rs).

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::collection::vec;
use proptest::prelude::*;
use scopegate_core::{
    decode_token, normalize_path as normalize, parse_challenges, Challenge, ScopeRules,
};

fn rules() -> ScopeRules {
    ScopeRules::new(":", Some(".write"), &["tx-"]).expect("rules")
}

/// Scopes over a tiny alphabet so that coverage relations actually occur.
fn scope() -> impl Strategy<Value = String> {
    (
        vec(
            prop::sample::select(vec!["a", "b", "ab", "tx-", "tx-1"]),
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(segments, write)| {
            let mut s = segments.join(":");
            if write {
                s.push_str(".write");
            }
            s
        })
}

proptest! {
    #[test]
    fn coverage_is_reflexive(s in scope()) {
        let r = rules();
        prop_assert_eq!(r.covers(&s, &s), !r.is_bare_prefix(&s));
    }

    #[test]
    fn coverage_is_transitive(a in scope(), b in scope(), c in scope()) {
        let r = rules();
        if r.covers(&a, &b) && r.covers(&b, &c) {
            prop_assert!(r.covers(&a, &c), "{a} > {b} > {c}");
        }
    }

    #[test]
    fn coverage_is_antisymmetric(a in scope(), b in scope()) {
        let r = rules();
        if r.covers(&a, &b) && r.covers(&b, &a) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn coverage_respects_the_separator(a in scope(), b in scope()) {
        let r = rules();
        let base = |s: &str| s.strip_suffix(".write").unwrap_or(s).to_owned();
        if r.covers(&a, &b) {
            let (ab, bb) = (base(&a), base(&b));
            prop_assert!(bb == ab || bb.starts_with(&format!("{ab}:")), "{a} covers {b}");
            prop_assert!(!b.ends_with(".write") || a.ends_with(".write"));
        }
    }

    #[test]
    fn progressive_request_is_minimal_and_never_loops(
        held in vec(scope(), 0..5),
        missing in vec(scope(), 0..5),
    ) {
        let r = rules();
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        prop_assume!(!missing.iter().any(|m| r.is_bare_prefix(m)));
        let next = r.next_request(&held, &missing).expect("valid scopes");
        let add: Vec<&str> = next.add.iter().map(String::as_str).collect();
        let full: Vec<&str> = next.scope.split(' ').filter(|s| !s.is_empty()).collect();
        for (i, a) in add.iter().enumerate() {
            prop_assert!(!r.is_covered(held.iter().copied(), a), "{a} already held");
            for (j, other) in add.iter().enumerate() {
                prop_assert!(i == j || !r.covers(other, a), "{other} covers {a}");
            }
        }
        for m in &missing {
            let mut granted = held.clone();
            granted.extend(&add);
            prop_assert!(r.is_covered(granted.iter().copied(), m), "{m} not requested");
            prop_assert!(r.is_covered(full.iter().copied(), m), "{m} not in the scope string");
        }
        for h in &held {
            // A step-up never loses what was held (bare prefixes cover nothing but stay).
            prop_assert!(full.contains(h) || r.is_covered(full.iter().copied(), h), "{h} dropped");
        }
        for (i, f) in full.iter().enumerate() {
            for (j, other) in full.iter().enumerate() {
                prop_assert!(i == j || (other != f && !r.covers(other, f)), "{other} covers {f}");
            }
        }
        let again = r.next_request(&full, &missing).expect("valid scopes");
        prop_assert!(again.add.is_empty(), "loops: {:?}", again.add);
    }

    #[test]
    fn challenges_round_trip(
        scheme in "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,10}",
        params in vec(("[a-z_][a-z0-9_]{0,8}", "[ -~]{0,20}"), 1..5),
    ) {
        let mut challenge = Challenge::new(&scheme);
        let mut seen = Vec::new();
        for (name, value) in &params {
            if !seen.contains(name) {
                challenge = challenge.with_param(name, value);
                seen.push(name.clone());
            }
        }
        let header = challenge.to_header_value();
        let parsed = parse_challenges(&header).map_err(|e| TestCaseError::fail(format!("{header}: {e}")))?;
        prop_assert_eq!(parsed, vec![challenge]);
    }

    #[test]
    fn several_challenges_round_trip(values in vec("[ -~]{0,12}", 1..4)) {
        let challenges: Vec<Challenge> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Challenge::new(&format!("S{i}")).with_param("realm", v).with_param("scope", v))
            .collect();
        let header = challenges.iter().map(Challenge::to_header_value).collect::<Vec<_>>().join(", ");
        prop_assert_eq!(parse_challenges(&header).expect("parses"), challenges);
    }

    #[test]
    fn parser_never_panics(input in "\\PC{0,64}") {
        let _ = parse_challenges(&input);
    }

    #[test]
    fn normalization_is_idempotent(segments in vec(prop::sample::select(vec![
        "a", "b", ".", "..", "", "%2e", "%2E%2e", "%41", "%7e", "%c3%a9", "x%20y",
    ]), 0..8), query in prop::option::of("[a-z=&]{0,6}")) {
        let mut path = format!("/{}", segments.join("/"));
        if let Some(query) = query {
            path.push('?');
            path.push_str(&query);
        }
        if let Ok(once) = normalize(&path) {
            let twice = normalize(&once).expect("normal paths stay valid");
            prop_assert_eq!(&*twice, &*once);
            prop_assert!(!once.contains("//") && !once.contains("/./") && !once.contains("/../"));
            prop_assert!(once == "/" || !once.ends_with('/'));
        }
    }

}

/// A policy with public, protected, prefix-bound and catch-all routes.
fn fuzz_policy() -> scopegate_core::Policy {
    scopegate_core::Policy::from_json(
        r#"{"version": 1, "realm": "fuzz",
            "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256", "RS256", "EdDSA"],
                         "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
            "scopes": {"prefixes": ["tx-"]},
            "routes": [{"path": "/public/**", "public": true},
                       {"path": "/a/{id}", "require": "tx-{id}"},
                       {"path": "/a/**", "methods": ["GET"], "require": ["a", "b"]},
                       {"path": "/**", "methods": ["POST"], "require": {"any_of": [["x"], ["y"]]}}]}"#,
    )
    .expect("fuzz policy")
}

proptest! {
    /// Fail closed: whatever the request, without a verifiable token nothing but public
    /// routes and preflights pass, and nothing panics.
    #[test]
    fn random_requests_never_pass_protected_routes(
        method in prop::sample::select(vec!["GET", "POST", "OPTIONS", "PUT", "get", ""]),
        path in "(/|%2[eEfF]|%5[cC]|%00|\\.\\.?|[a-z]|public|\\?|#|\\\\|%|\u{e9}| ){0,12}",
        authorization in vec("(Bearer|bearer|Basic| |,|[A-Za-z0-9_.-]{0,30}|eyJ[A-Za-z0-9_-]{0,40}\\.){0,6}", 0..3),
        origin in prop::option::of(Just("https://app.example")),
        preflight in prop::option::of(Just("POST")),
    ) {
        let policy = fuzz_policy();
        let auth: Vec<&str> = authorization.iter().map(String::as_str).collect();
        let mut request = scopegate_core::Request::new(method, &path).with_authorization(&auth);
        request.origin = origin;
        request.access_control_request_method = preflight;
        let decision = policy.decide(&request, &scopegate_core::KeyStore::default(), scopegate_core::UnixTime(1_767_225_600));
        if let scopegate_core::Decision::Allow(allow) = &decision {
            prop_assert!(
                matches!(allow.reason, scopegate_core::AllowReason::Public | scopegate_core::AllowReason::Preflight),
                "{method} {path:?} {authorization:?} passed as {:?}", allow.reason
            );
        }
        if let scopegate_core::Decision::Deny(denial) = &decision {
            // Whatever went in, the challenge is a well-formed header value.
            prop_assert!(parse_challenges(&denial.www_authenticate).is_ok(), "{}", denial.www_authenticate);
            prop_assert!(denial.www_authenticate.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
    }

    #[test]
    fn token_decoding_never_panics(token in "[A-Za-z0-9_.=+/-]{0,200}") {
        let _ = decode_token(&token);
        let _ = fuzz_policy().authenticate_unverified(&token, scopegate_core::UnixTime(0));
    }

    #[test]
    fn policy_loading_never_panics(text in "[\\[\\]{}\",:0-9a-z/ *{}-]{0,120}") {
        let _ = scopegate_core::Policy::from_json(&text);
    }
}
