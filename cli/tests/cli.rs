//! The `scopegate` command line, run as a user would: a process, its output and its exit
//! code. The tests read the repository's example policy and shared vectors; the binary
//! reads nothing but its arguments.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;

mod support;

use support::{bearer, case, json, scopegate, scopegate_in, suite, TempDir, REPO};

#[test]
fn check_lists_the_example_policy() {
    let (code, out, _) = scopegate(&["check", "examples/policy.json"]);
    assert_eq!(code, 0);
    assert!(out.contains("realm `scopegate-demo`"), "{out}");
    assert!(out.contains("3 inline keys"), "{out}");
    assert!(
        out.contains("issuers[1] http://127.0.0.1:9000 (ES256, RS256; keys from http://127.0.0.1:9000/jwks via cluster `idp`)"),
        "{out}"
    );
    assert!(out.contains("routes[12] /api/payments"), "{out}");
}

#[test]
fn check_names_the_json_path_of_a_broken_policy() {
    let dir = TempDir::new("broken");
    let broken = dir.write(
        "broken.json",
        r#"{"version": 1, "realm": "api",
            "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256", "none"],
                         "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
            "routes": []}"#,
    );
    let (code, out, err) = scopegate(&["check", &broken]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert!(err.starts_with(&format!("error: {broken}: ")), "{err}");
    assert!(
        err.contains("issuers[0].algorithms[1]: unknown algorithm `none`"),
        "{err}"
    );
    let (code, _, err) = scopegate(&["check", "no/such/policy.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/policy.json: "), "{err}");
}

#[test]
fn decide_without_a_token_is_a_401_with_exit_code_1() {
    let (code, out, _) = scopegate(&["decide", "examples/policy.json", "POST", "/api/resources"]);
    assert_eq!(code, 1);
    let answer = json(&out);
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["status"], 401);
    assert_eq!(answer["code"], "deny_no_token");
    assert_eq!(answer["error"], "unauthorized");
    assert_eq!(answer["route"], "/api/resources");
    assert_eq!(answer["body"], r#"{"error":"unauthorized"}"#);
    assert!(
        out.starts_with("{\n  \"allowed\": false,\n"),
        "pretty JSON: {out}"
    );
}

#[test]
fn decide_a_public_route_passes() {
    let (code, out, _) = scopegate(&["decide", "examples/policy.json", "GET", "/health"]);
    assert_eq!(code, 0, "{out}");
    let answer = json(&out);
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["status"], Value::Null);
    assert_eq!(answer["code"], "allow_public");
    assert_eq!(answer["route"], "/health");
}

#[test]
fn decide_a_token_its_cors_and_forwarded_claims() {
    let example = suite("example");
    let case = case(&example, "read token reads, claims forwarded");
    let token = bearer(case);
    let now = example["now"].to_string();
    let (code, out, _) = scopegate(&[
        "decide",
        "examples/policy.json",
        "GET",
        "/api/resources",
        "--token",
        token,
        "--now",
        &now,
    ]);
    assert_eq!(code, 0, "{out}");
    let answer = json(&out);
    assert_eq!(answer["code"], "allow_authorized");
    assert_eq!(answer["headers"]["x-scopegate-sub"], "alice");

    let (code, out, _) = scopegate(&[
        "decide",
        "examples/policy.json",
        "POST",
        "/api/resources",
        "--token",
        token,
        "--now",
        &now,
        "--origin",
        "http://127.0.0.1:5173",
    ]);
    assert_eq!(code, 1, "{out}");
    let answer = json(&out);
    assert_eq!(answer["status"], 403);
    assert_eq!(answer["missing"], serde_json::json!(["resource:write"]));
    assert_eq!(answer["allowedOrigin"], "http://127.0.0.1:5173");

    // Two tokens are two Authorization headers: a 400.
    let (code, out, _) = scopegate(&[
        "decide",
        "examples/policy.json",
        "GET",
        "/api/resources",
        "--token",
        token,
        "--token",
        token,
        "--now",
        &now,
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(json(&out)["status"], 400);

    // Any other header with -H: a CORS preflight.
    let (code, out, _) = scopegate(&[
        "decide",
        "examples/policy.json",
        "OPTIONS",
        "/api/resources",
        "--origin",
        "http://127.0.0.1:5173",
        "-H",
        "Access-Control-Request-Method: POST",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(json(&out)["code"], "allow_preflight");
}

#[test]
fn decide_with_the_keys_of_a_remote_issuer_from_jwks() {
    // A policy whose only issuer's keys come from a jwks_uri, its JWKS and a token of it.
    let remote = suite("remote-keys-fetched");
    let dir = TempDir::new("jwks");
    let policy = dir.write("policy.json", &remote["policy"].to_string());
    let jwks = dir.write("jwks.json", &remote["fetched_jwks"]["0"].to_string());
    let token = bearer(&remote["cases"][0]);
    let now = remote["now"].to_string();
    let decide = |extra: &[&str]| {
        let mut args = vec![
            "decide", &policy, "GET", "/api/x", "--token", token, "--now", &now,
        ];
        args.extend(extra);
        scopegate(&args)
    };

    // The issuer by position and by `issuer` value.
    for given in [
        format!("0={jwks}"),
        format!("https://idp.scopegate.test={jwks}"),
    ] {
        let (code, out, err) = decide(&["--jwks", &given]);
        assert_eq!(code, 0, "{out}{err}");
        let answer = json(&out);
        assert_eq!(answer["code"], "allow_authorized");
        assert_eq!(answer["route"], "/api/**");
        assert_eq!(err, "");
    }

    // No keys: the request waits for a fetch the command line cannot make, then a 401,
    // and a note on how to give the keys.
    let (code, out, err) = decide(&[]);
    assert_eq!(code, 1, "{out}{err}");
    let answer = json(&out);
    assert_eq!(answer["status"], 401);
    assert_eq!(answer["tokenError"], "keys_unavailable");
    assert!(err.contains("give it with --jwks 0=FILE"), "{err}");

    // Unusable input is an error (exit 2) that names it.
    let (code, _, err) = decide(&["--jwks", &format!("0={policy}")]);
    assert_eq!(code, 2);
    assert!(err.contains("not a usable JWKS for issuers[0]"), "{err}");
    let (code, _, err) = decide(&["--jwks", &format!("1={jwks}")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("has no issuers[1]; its issuers are 0 = https://idp.scopegate.test"),
        "{err}"
    );
    let (code, _, err) = scopegate(&[
        "decide",
        "examples/policy.json",
        "GET",
        "/health",
        "--jwks",
        &format!("0={jwks}"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("has its keys in the policy"), "{err}");

    // `scopes` takes the same option.
    let (code, out, err) = scopegate(&[
        "scopes",
        &policy,
        token,
        "--now",
        &now,
        "--jwks",
        &format!("0={jwks}"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "resource:read\n");
    let (code, _, err) = scopegate(&["scopes", &policy, token, "--now", &now, "--offline"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("token refused: the issuer's keys have not been fetched yet"),
        "{err}"
    );
}

#[test]
fn decide_in_a_dry_run_forwards_and_says_so() {
    let text =
        std::fs::read_to_string(Path::new(REPO).join("examples/policy.json")).expect("policy");
    let mut policy: Value = serde_json::from_str(&text).expect("JSON");
    policy["dry_run"] = Value::Bool(true);
    let dir = TempDir::new("dry-run");
    let policy = dir.write("policy.json", &policy.to_string());
    let (code, out, err) = scopegate(&["decide", &policy, "POST", "/api/resources"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(json(&out)["status"], 401, "the denial it lets through");
    assert!(err.contains("dry run"), "{err}");
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
    let next = json(&out);
    assert_eq!(next["add"], serde_json::json!(["resource:write"]));
    assert_eq!(next["scope"], "openid resource:read resource:write");
}

#[test]
fn challenge_parsing() {
    let (code, out, _) = scopegate(&["challenge", r#"Bearer realm="api", scope="a b""#]);
    assert_eq!(code, 0);
    assert_eq!(
        json(&out),
        serde_json::json!([{"scheme": "Bearer", "params": [["realm", "api"], ["scope", "a b"]]}])
    );
    let (code, _, err) = scopegate(&["challenge", "Bearer realm=\"open"]);
    assert_eq!(code, 2);
    assert!(err.contains("at byte 18"), "{err}");
}

#[test]
fn demo_prints_the_decision_table_from_anywhere() {
    // The tour's policy and tokens are built in: it runs outside the repository.
    let dir = TempDir::new("demo");
    let (code, out, err) = scopegate_in(&dir.0, &["demo"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("-> 403  WWW-Authenticate: Bearer realm=\"scopegate-demo\", error=\"insufficient_scope\", scope=\"resource:write\""), "{out}");
    assert!(
        out.contains("-> pass to the API with x-scopegate-sub: alice"),
        "{out}"
    );
    assert_eq!(out.matches("\n# ").count(), 14, "fourteen requests: {out}");
}

/// The tour carries its own fourteen requests (not every vector); they must still be cases
/// of the shared vectors' `example` suite, word for word, so the tour shows tested answers.
#[test]
fn the_demo_tour_is_cases_of_the_shared_vectors() {
    let read = |path: &str| -> Value {
        let text = std::fs::read_to_string(Path::new(REPO).join(path)).expect(path);
        serde_json::from_str(&text).expect(path)
    };
    let tour = read("cli/src/commands/demo-tour.json");
    let vectors = read("tests/vectors/decisions.json");
    let suite = vectors["suites"]
        .as_array()
        .and_then(|suites| suites.iter().find(|s| s["name"] == "example"))
        .expect("an example suite");
    assert_eq!(tour["now"], suite["now"]);
    let cases = tour["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 14);
    for case in cases {
        let vector = suite["cases"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == case["name"]))
            .unwrap_or_else(|| panic!("no vector {}", case["name"]));
        for field in ["method", "path", "authorization"] {
            assert_eq!(
                case["request"][field], vector["request"][field],
                "{} {field}",
                case["name"]
            );
        }
    }
}

#[test]
fn usage_errors_exit_2_with_clap_messages() {
    let cases: [(&[&str], &str); 6] = [
        (&[], "Usage: scopegate <COMMAND>"),
        (&["decid"], "tip: a similar subcommand exists: 'decide'"),
        (
            &["decide", "examples/policy.json", "GET"],
            "the following required arguments were not provided",
        ),
        (
            &[
                "decide",
                "examples/policy.json",
                "GET",
                "/",
                "--now",
                "soon",
            ],
            "invalid value 'soon' for '--now <SECONDS>'",
        ),
        (
            &[
                "decide",
                "examples/policy.json",
                "GET",
                "/",
                "--jwks",
                "=keys.json",
            ],
            "expected ISSUER=FILE with neither part empty",
        ),
        (
            &["completions", "cmd.exe"],
            "invalid value 'cmd.exe' for '<SHELL>'",
        ),
    ];
    for (args, expected) in cases {
        let (code, out, err) = scopegate(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn help_lists_every_command_and_exits_0() {
    let (code, out, _) = scopegate(&["--help"]);
    assert_eq!(code, 0);
    for command in [
        "check",
        "lint",
        "explain",
        "import",
        "decide",
        "scopes",
        "next",
        "challenge",
        "demo",
        "completions",
    ] {
        assert!(out.contains(&format!("\n  {command} ")), "{command}: {out}");
    }
    assert!(out.contains("Exit codes: 0"), "{out}");
    let (code, out, _) = scopegate(&["decide", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--jwks <[ISSUER=]FILE>"), "{out}");
    assert!(out.contains("--now <SECONDS>"), "{out}");
}

#[test]
fn completions_for_bash() {
    let (code, out, err) = scopegate(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("_scopegate()"), "{out}");
    assert!(out.contains("complete -F _scopegate"), "{out}");
    assert!(out.contains("--jwks"), "{out}");
}
