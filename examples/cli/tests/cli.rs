//! The `scopegate` command line, run as a user would.

use std::process::Command;

fn scopegate(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_lists_the_example_policy() {
    let (code, out, _) = scopegate(&["check", "examples/policy.json"]);
    assert_eq!(code, 0);
    assert!(out.contains("realm `scopegate-demo`"), "{out}");
    assert!(out.contains("3 inline keys"), "{out}");
    assert!(out.contains("routes[12] /api/payments"), "{out}");
}

#[test]
fn check_names_the_json_path_of_a_broken_policy() {
    let dir = std::env::temp_dir().join(format!("scopegate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        r#"{"version": 1, "realm": "api",
            "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256", "none"],
                         "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
            "routes": []}"#,
    )
    .expect("write");
    let (code, _, err) = scopegate(&["check", broken.to_str().expect("utf-8")]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 2);
    assert!(
        err.contains("issuers[0].algorithms[1]: unknown algorithm `none`"),
        "{err}"
    );
}

#[test]
fn decide_without_a_token_is_a_401_with_exit_code_1() {
    let (code, out, _) = scopegate(&["decide", "examples/policy.json", "POST", "/api/resources"]);
    assert_eq!(code, 1);
    let decision: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(decision["status"], 401);
    assert_eq!(decision["body"], r#"{"error":"unauthorized"}"#);
}

#[test]
fn decide_a_public_route_passes() {
    let (code, out, _) = scopegate(&["decide", "examples/policy.json", "GET", "/health"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("allow_public"), "{out}");
}

#[test]
fn next_scope_request() {
    let (code, out, _) = scopegate(&[
        "next",
        "examples/policy.json",
        "--held",
        "openid resource:read",
        "--missing",
        "resource:write",
    ]);
    assert_eq!(code, 0);
    let next: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(next["scope"], "openid resource:read resource:write");
}

#[test]
fn challenge_parsing() {
    let (code, out, _) = scopegate(&["challenge", r#"Bearer realm="api", scope="a b""#]);
    assert_eq!(code, 0);
    assert!(out.contains("\"scope\""), "{out}");
    let (code, _, err) = scopegate(&["challenge", "Bearer realm=\"open"]);
    assert_eq!(code, 2);
    assert!(err.contains("at byte 18"), "{err}");
}

#[test]
fn demo_prints_the_decision_table() {
    let (code, out, _) = scopegate(&["demo"]);
    assert_eq!(code, 0);
    assert!(out.contains("-> 403  WWW-Authenticate: Bearer realm=\"scopegate-demo\", error=\"insufficient_scope\", scope=\"resource:write\""), "{out}");
    assert!(
        out.contains("-> pass to the API with x-scopegate-sub: alice"),
        "{out}"
    );
}
