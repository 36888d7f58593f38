//! Envoy's `jwt_authn` verifies, scopegate decides: an issuer with `jwt_authn` in the policy
//! has its tokens' signatures checked natively by the `jwt_authn` filter before scopegate
//! (`payload_in_metadata`, `allow_missing_or_failed`), and scopegate takes the verified
//! payload from the request's metadata and applies every other rule. A forged token, which
//! `jwt_authn` lets through as failed, has no payload there and is refused; nothing a client
//! sends can put one there. Envoy only (nginx has no `jwt_authn`). Envoy is stopped by PID.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use scopegate_tests::harness::{
    envoy_config, filter_wasm, free_port, on_a_free_port, request, require_envoy_and_filter, Envoy,
    HttpServer, Response, TempDir, Upstreams,
};
use scopegate_tests::repo_root;
use scopegate_tests::{mint, unix_now, TestKeys};
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://idp.scopegate.test";
const AUDIENCE: &str = "http://127.0.0.1:8080";

/// Envoy with `jwt_authn` (the test keys, payload in metadata, failures let through) in
/// front of the scopegate filter enforcing `policy`.
fn start(policy: &Value, keys: &TestKeys) -> (Envoy, HttpServer) {
    require_envoy_and_filter();
    let (api, _) = HttpServer::recording_echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: None,
    };
    let envoy = on_a_free_port(|listen| {
        let mut config = envoy_config(listen, &upstreams, &policy.to_string());
        let jwt_authn = json!({
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"idp": {
                    "issuer": ISSUER,
                    "audiences": [AUDIENCE],
                    "local_jwks": {"inline_string": keys.jwks("").to_string()},
                    "payload_in_metadata": "payload",
                    "forward": true
                }},
                "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                    {"provider_name": "idp"}, {"allow_missing_or_failed": {}}
                ]}}}]
            }
        });
        let filters = http_filters(&mut config).expect("the http filters");
        filters.insert(0, jwt_authn);
        Envoy::start(&config, listen)
    }).unwrap_or_else(|e| panic!("{e:?}"));
    (envoy, api)
}

fn http_filters(value: &mut Value) -> Option<&mut Vec<Value>> {
    match value {
        Value::Object(members) => {
            if members.contains_key("http_filters") {
                return members.get_mut("http_filters")?.as_array_mut();
            }
            members.values_mut().find_map(http_filters)
        }
        Value::Array(items) => items.iter_mut().find_map(http_filters),
        _ => None,
    }
}

fn policy() -> Value {
    json!({
        "version": 1,
        "realm": "api",
        "issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE],
                     "algorithms": ["RS256", "ES256", "EdDSA"], "token_type": "at+jwt",
                     "jwt_authn": {"payload_in_metadata": "payload"}}],
        "routes": [{"path": "/health", "public": true},
                   {"path": "/api/resources", "methods": ["GET"], "require": "resource:read"},
                   {"path": "/api/resources", "methods": ["POST"], "require": "resource:write"}],
        "forward": {"claims": [{"claim": "sub", "header": "x-scopegate-sub"}]}
    })
}

fn token(keys: &TestKeys, alg: &str, scope: &str) -> String {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(ISSUER));
    claims.insert("aud".into(), json!(AUDIENCE));
    claims.insert("sub".into(), json!("alice"));
    claims.insert("exp".into(), json!(unix_now() + 600));
    claims.insert("scope".into(), json!(scope));
    mint(keys, &json!({"alg": alg}), &claims)
}

fn send(port: u16, method: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    request(port, method, "/api/resources", &headers).expect("Envoy answers")
}

#[test]
fn tokens_jwt_authn_verified_are_decided_by_scopegate_and_forged_ones_refused() {
    let keys = TestKeys::from_seed(1);
    let (envoy, _api) = start(&policy(), &keys);
    let port = envoy.port;

    for alg in ["RS256", "ES256", "EdDSA"] {
        let read = token(&keys, alg, "resource:read");
        let allowed = send(port, "GET", Some(&read), &[]);
        assert_eq!(allowed.status, 200, "{alg}: {allowed:?}\n{}", envoy.log());
        // Every other rule is scopegate's: a scope the token lacks is its 403 challenge.
        let refused = send(port, "POST", Some(&read), &[]);
        assert_eq!(refused.status, 403, "{alg}: {refused:?}");
        let challenge = refused.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("scope=\"resource:write\""),
            "{challenge}"
        );
    }

    // Forged: signed by other keys. jwt_authn lets it through as failed, with no payload:
    // scopegate refuses it as a token whose signature is invalid.
    let other = TestKeys::from_seed(2);
    let forged = token(&other, "ES256", "resource:read resource:write");
    for headers in [
        &[][..],
        // Nothing a client sends becomes metadata.
        &[
            ("x-jwt-payload", "eyJzdWIiOiJhbGljZSJ9"),
            ("metadata", "payload"),
        ][..],
    ] {
        let response = send(port, "GET", Some(&forged), headers);
        assert_eq!(response.status, 401, "{response:?}");
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error_description=\"The access token signature is invalid\""),
            "{challenge}"
        );
    }
    // No token: scopegate's 401 without an error.
    assert_eq!(send(port, "GET", None, &[]).status, 401);
    let counter = |name: &str| envoy.counter(&format!("wasmcustom.scopegate.{name}"));
    assert_eq!(
        counter("invalid_token.jwt_authn_unverified"),
        2,
        "{}",
        envoy.stats()
    );
    assert_eq!(counter("decision.allow_authorized"), 3);
}

/// The policy refuses keys for an issuer jwt_authn verifies: they would be unused.
#[test]
fn an_issuer_verified_by_jwt_authn_names_no_keys() {
    let mut doc = policy();
    doc["issuers"][0]["jwks_uri"] = json!("http://127.0.0.1:1/jwks");
    let err = scopegate_core::Policy::from_json(&doc.to_string()).unwrap_err();
    assert_eq!(err.path, "issuers[0].jwks_uri");
    assert!(err.message.contains("jwt_authn"), "{err}");
}

/// `examples/envoy-jwt-authn.yaml` runs as written, its placeholders filled: jwt_authn
/// verifies, scopegate decides, a forged token is refused.
#[test]
fn examples_envoy_jwt_authn_yaml_runs_as_written() {
    require_envoy_and_filter();
    let keys = TestKeys::from_seed(1);
    let (api, _) = HttpServer::recording_echo();
    // Both ports are written into the file: a start that lost either gets two new ones.
    let envoy = on_a_free_port(|listen| {
        let admin = free_port();
        let text = std::fs::read_to_string(repo_root().join("examples/envoy-jwt-authn.yaml"))
            .expect("the example");
        let filled = text
            .replace("${ADMIN_PORT}", &admin.to_string())
            .replace("${LISTEN_PORT}", &listen.to_string())
            .replace("${API_PORT}", &api.port.to_string())
            .replace("${ISSUER}", ISSUER)
            .replace("${AUDIENCE}", AUDIENCE)
            .replace("${JWKS}", &keys.jwks("").to_string())
            .replace("${POLICY}", &policy().to_string())
            .replace("${FILTER_WASM}", &filter_wasm().display().to_string());
        assert!(!filled.contains("${"), "a placeholder left: {filled}");
        let dir = TempDir::new("envoy-jwt-authn");
        let path = dir.path().join("envoy.yaml");
        std::fs::write(&path, filled).expect("the config");
        Envoy::start_file(&path, listen, dir)
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let read = token(&keys, "ES256", "resource:read");
    assert_eq!(
        send(envoy.port, "GET", Some(&read), &[]).status,
        200,
        "{}",
        envoy.log()
    );
    assert_eq!(send(envoy.port, "POST", Some(&read), &[]).status, 403);
    let forged = token(&TestKeys::from_seed(2), "ES256", "resource:read");
    assert_eq!(send(envoy.port, "GET", Some(&forged), &[]).status, 401);
    assert_eq!(send(envoy.port, "GET", None, &[]).status, 401);
}
