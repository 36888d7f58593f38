//! Inputs shared by the criterion benchmarks (`core/benches/core.rs`) and the timing loop
//! that is also built for wasm32-wasip1 (`bench/`), so that native and WebAssembly figures
//! come from the same tokens, policies and requests.
//!
//! The tokens are the signed ones of `tests/vectors/decisions.json` (suite `example`, the
//! test keys of seed 1, inline in its policy), read at run time: the core has no signer, and
//! a signing dev-dependency would change the features of the `rsa` crate being measured.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use scopegate_core::gateway::{Exchange, Gateway, Step};
use scopegate_core::{Policy, Principal, Request, UnixTime};
use serde_json::{json, Value};

/// The algorithms measured, each with the `example` case whose token it signs. The allowed
/// RS256 token is the one the gateway benchmark sends too (same claims, same key).
pub const TOKEN_CASES: [(&str, &str); 3] = [
    ("RS256", "read token reads, claims forwarded"),
    ("ES256", "ES256 token"),
    ("EdDSA", "EdDSA token"),
];

/// The `example` suite of `decisions.json`: its policy, its clock, and one allowed
/// `GET /api/resources` token per algorithm of [`TOKEN_CASES`].
pub struct Example {
    pub policy: Policy,
    pub now: UnixTime,
    pub tokens: Vec<(&'static str, String)>,
}

/// The `example` suite's policy document, as JSON text.
pub fn example_policy_text(decisions_json: &str) -> String {
    let vectors: Value = serde_json::from_str(decisions_json).expect("decisions.json is JSON");
    vectors["suites"]
        .as_array()
        .and_then(|suites| suites.iter().find(|s| s["name"] == "example"))
        .expect("suite `example`")["policy"]
        .to_string()
}

/// Reads the `example` suite out of the text of `tests/vectors/decisions.json`.
pub fn example(decisions_json: &str) -> Example {
    let vectors: Value = serde_json::from_str(decisions_json).expect("decisions.json is JSON");
    let suite = vectors["suites"]
        .as_array()
        .and_then(|suites| suites.iter().find(|s| s["name"] == "example"))
        .expect("suite `example`");
    let policy = Policy::from_json(&suite["policy"].to_string()).expect("example policy");
    let now = UnixTime(suite["now"].as_u64().expect("now"));
    let tokens = TOKEN_CASES
        .iter()
        .map(|(alg, name)| {
            let case = suite["cases"]
                .as_array()
                .and_then(|cases| cases.iter().find(|c| c["name"] == *name))
                .unwrap_or_else(|| panic!("case `{name}`"));
            let header = case["request"]["authorization"][0]
                .as_str()
                .expect("header");
            let token = header.strip_prefix("Bearer ").expect("a bearer token");
            (*alg, token.to_owned())
        })
        .collect();
    Example {
        policy,
        now,
        tokens,
    }
}

/// A policy of `n` routes in groups of four per service `s{g}`: a read, a write on the same
/// path, a `{id}` route with an `any_of` requirement, and a public `/**` subtree; scopes are
/// hierarchical with `.write` forms, and claims are forwarded as in the example policy.
pub fn routes_policy(n: usize) -> Policy {
    let routes: Vec<Value> = (0..n)
        .map(|i| {
            let g = i / 4;
            match i % 4 {
                0 => json!({"path": format!("/api/s{g}/items"), "methods": ["GET"],
                            "require": format!("s{g}:items")}),
                1 => json!({"path": format!("/api/s{g}/items"), "methods": ["POST"],
                            "require": format!("s{g}:items.write")}),
                2 => json!({"path": format!("/api/s{g}/items/{{id}}"), "methods": ["GET", "PUT"],
                            "require": {"any_of": [[format!("s{g}:items")], [format!("s{g}:admin")]]}}),
                _ => json!({"path": format!("/api/s{g}/public/**"), "public": true}),
            }
        })
        .collect();
    let document = json!({
        "version": 1,
        "realm": "bench",
        "issuers": [{"issuer": "https://idp.example", "audiences": ["api"], "algorithms": ["ES256"],
                     "jwks_uri": "https://idp.example/jwks", "jwks_cluster": "idp"}],
        "routes": routes,
        "forward": {"claims": [{"claim": "sub", "header": "x-scopegate-sub"}],
                    "scopes_header": "x-scopegate-scopes"}
    });
    Policy::from_json(&document.to_string()).expect("generated policy")
}

/// The request measured on a [`routes_policy`] of `n` routes (`n` ≥ 4): `GET` on the `{id}`
/// route of the last complete group, with a query string, so that the path is normalized,
/// the trie walked to a placeholder, and an `any_of` evaluated.
pub fn routes_request_path(n: usize) -> String {
    format!("/api/s{}/items/42?page=2", n / 4 - 1)
}

/// The scope a token needs for [`routes_request_path`].
pub fn routes_scope(n: usize) -> String {
    format!("s{}:items", n / 4 - 1)
}

/// A verified principal holding `scopes` (space-separated), as the token cache hands it over.
pub fn principal(scopes: &str) -> Principal {
    Principal {
        issuer: 0,
        subject: Some("alice".into()),
        scopes: scopes.split(' ').collect(),
        expires_at: u64::MAX,
        auth_time: None,
        acr: None,
        forwarded: vec![(0, "alice".to_owned())],
        audiences: scopegate_core::AudienceMatch::ALL,
        confirmation: None,
    }
}

/// `GET path` with a bearer token (the token text does not matter to `decide_with`).
pub fn request<'a>(path: &'a str, authorization: &'a [&'a str]) -> Request<'a> {
    Request::new("GET", path).with_authorization(authorization)
}

/// The header pairs a host hands the gateway for `GET path` with a bearer token, as Envoy
/// has them (pseudo-headers first, then the usual request headers).
pub fn header_pairs(path: &str, authorization: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    [
        (":authority", "127.0.0.1:8080"),
        (":path", path),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "wrk"),
        ("accept", "*/*"),
        ("authorization", authorization),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "c0ffee00-0000-4000-8000-000000000000"),
    ]
    .iter()
    .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect()
}

/// One request through the gateway, as the filter runs it: header bytes in, a step out.
/// Returns whether the request goes on to the upstream.
pub fn through_gateway(gateway: &mut Gateway, pairs: &[(&[u8], &[u8])], now: UnixTime) -> bool {
    through_gateway_with(gateway, &mut Exchange::default(), pairs, now)
}

/// [`through_gateway`] in an exchange the caller set up (a metadata lookup, say).
pub fn through_gateway_with(
    gateway: &mut Gateway,
    exchange: &mut Exchange,
    pairs: &[(&[u8], &[u8])],
    now: UnixTime,
) -> bool {
    let forwards = matches!(
        gateway.on_request_headers(exchange, pairs, now),
        Step::Forward(_)
    );
    gateway.drain_counts().for_each(drop);
    forwards
}
