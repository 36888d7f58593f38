//! The bindings inside a real browser (`wasm-pack test --headless --chrome`): the exports
//! the JS layer calls, with the example policy, on Chromium's WebAssembly engine.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_arch = "wasm32")]

use scopegate_web::{
    decode_token, default_scopes_of, normalize_path, parse_www_authenticate, RawPolicy,
    RawScopeRules,
};
use serde_json::Value;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const POLICY: &str = include_str!("../../examples/policy.json");
const NOW: f64 = 1_767_225_600.0;

/// `{"alg":"RS256","typ":"at+jwt"}` . claims . junk signature.
fn jwt(claims: &str) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    format!(
        "{}.{}.c2ln",
        Base64UrlUnpadded::encode_string(br#"{"alg":"RS256","typ":"at+jwt"}"#),
        Base64UrlUnpadded::encode_string(claims.as_bytes())
    )
}

fn token(scope: &str) -> String {
    jwt(&format!(
        r#"{{"iss":"https://idp.scopegate.test","aud":"http://127.0.0.1:8080","exp":{},"sub":"alice","scope":"{scope}","roles":["resource-admin"]}}"#,
        NOW as u64 + 600
    ))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

fn error(err: wasm_bindgen::JsValue) -> Value {
    json(&err.as_string().expect("errors cross as JSON text"))
}

/// `check` with method, URL, `Authorization` values and time only (no origin, preflight,
/// body or MCP headers).
fn check(
    policy: &RawPolicy,
    method: &str,
    url: &str,
    authorization: Vec<String>,
    now: f64,
) -> Result<String, wasm_bindgen::JsValue> {
    policy.check(
        method,
        url,
        authorization,
        None,
        None,
        None,
        None,
        None,
        None,
        now,
    )
}

#[wasm_bindgen_test]
fn check_answers_like_the_gateway() {
    let policy = RawPolicy::from_json(POLICY).expect("example policy");
    let auth = vec![format!("Bearer {}", token("openid order"))];
    let answer =
        json(&check(&policy, "GET", "/api/orders/7/shipping", auth.clone(), NOW).expect("check"));
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["route"], "/api/orders/{id}/shipping");
    let answer = json(
        &check(
            &policy,
            "PUT",
            "http://127.0.0.1:8080/api/inventory/sku-1",
            auth.clone(),
            NOW,
        )
        .expect("check"),
    );
    assert_eq!(answer["status"], 403);
    assert_eq!(answer["missing"], serde_json::json!(["inventory.write"]));
    // The role maps to resource:write.
    let answer = json(&check(&policy, "POST", "/api/resources", auth.clone(), NOW).expect("check"));
    assert_eq!(answer["allowed"], true);
    let answer = json(&check(&policy, "GET", "/api/resources", auth, NOW + 661.0).expect("check"));
    assert_eq!(answer["tokenError"], "expired");
    let err = error(check(&policy, "GET", "api", vec![], NOW).expect_err("relative URL"));
    assert_eq!(err["code"], "invalid_argument");
}

#[wasm_bindgen_test]
fn policy_errors_carry_the_json_path() {
    let err = error(
        RawPolicy::from_json(&POLICY.replace("\"/health\"", "\"/a/**/b\""))
            .err()
            .expect("bad route"),
    );
    assert_eq!(err["code"], "invalid_policy");
    assert_eq!(err["path"], "routes[1].path");
}

#[wasm_bindgen_test]
fn tokens_scopes_and_challenges() {
    let policy = RawPolicy::from_json(POLICY).expect("example policy");
    let t = token("openid order");
    assert_eq!(
        policy.scopes_of(&t).expect("scopes"),
        ["openid", "order", "resource:write"]
    );
    assert_eq!(default_scopes_of(&t).expect("scopes"), ["openid", "order"]);
    assert_eq!(
        json(&decode_token(&t).expect("decode"))["claims"]["sub"],
        "alice"
    );
    assert_eq!(
        error(decode_token("a.b").expect_err("malformed"))["reason"],
        "token_malformed"
    );
    let challenges =
        json(&parse_www_authenticate(r#"Bearer realm="a\"b", scope="x, y=z""#).expect("parse"));
    assert_eq!(
        challenges[0]["params"][1],
        serde_json::json!(["scope", "x, y=z"])
    );
    assert_eq!(normalize_path("/a/%2e%2e/b").expect("path"), "/b");
}

#[wasm_bindgen_test]
fn progressive_requests() {
    let rules = RawScopeRules::new(None, None, false, vec![]).expect("default rules");
    let next = json(
        &rules
            .next_request(
                vec!["openid".into(), "order:item".into()],
                vec!["order".into()],
            )
            .expect("next"),
    );
    assert_eq!(next["add"], serde_json::json!(["order"]));
    assert_eq!(next["scope"], "openid order");
    let err = error(
        rules
            .next_request(vec![], vec!["a b".into()])
            .expect_err("invalid scope"),
    );
    assert_eq!(err["code"], "invalid_scope");
}
