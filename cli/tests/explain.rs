//! `scopegate explain`, run as a user would: the shared vectors' example policy and tokens,
//! pasted header lines and answers, keys fetched from a JWKS server on 127.0.0.1, and
//! input it cannot use.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::{
    bearer, case, json, scopegate, scopegate_with, serve, suite, unsigned_jwt, TempDir, REPO,
};

/// The example suite's policy in a file, and its clock.
fn example(dir: &TempDir) -> (String, String, Value) {
    let example = suite("example");
    let policy = dir.write("policy.json", &example["policy"].to_string());
    (policy, example["now"].to_string(), example)
}

fn explain_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["explain"];
    all.extend(args);
    all.push("--json");
    let (code, out, err) = scopegate(&all);
    assert!(code == 0 || code == 1, "{args:?}: {err}");
    (code, json(&out))
}

fn codes(remedies: &Value) -> Vec<&str> {
    remedies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

#[test]
fn a_403_names_route_requirement_scopes_and_remedies() {
    let dir = TempDir::new("explain-403");
    let (policy, now, example) = example(&dir);
    let token = bearer(case(&example, "read token cannot write"));
    let (code, why) = explain_json(&[
        &policy,
        "POST",
        "/api/resources",
        "--token",
        token,
        "--now",
        &now,
        "--policy-changed-at",
        "1",
    ]);
    assert_eq!(code, 1);
    assert_eq!(why["decision"]["status"], 403);
    assert_eq!(why["decision"]["missing"], json!(["resource:write"]));
    assert!(why["signature_checked"].as_bool().unwrap());
    assert_eq!(why["keys"]["from"], "policy");
    // The GET route fits the path but not the method; the POST one decides.
    let outcomes: Vec<(u64, &str)> = why["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [(2, "method_not_listed"), (3, "chosen")]);
    assert_eq!(why["required"]["any_of"], json!([["resource:write"]]));
    assert_eq!(why["token"]["sub"], "alice");
    assert_eq!(
        why["token"]["scopes"],
        json!([
        {"scope": "openid", "claim": "scope"}, {"scope": "resource:read", "claim": "scope"}])
    );
    let remedies = &why["remedies"];
    assert_eq!(codes(remedies), ["assign_role", "request_scopes"]);
    assert_eq!(remedies[0]["roles"], json!(["resource-admin"]));
    assert_eq!(remedies[1]["scope"], "openid resource:read resource:write");

    // The same as text, without colour when not on a terminal.
    let (code, out, _) = scopegate(&[
        "explain",
        &policy,
        "POST",
        "http://127.0.0.1:8080/api/resources",
        "--token",
        token,
        "--now",
        &now,
    ]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("POST /api/resources -> 403 insufficient_scope"),
        "{out}"
    );
    assert!(
        out.contains("routes[3] /api/resources [POST]: chosen"),
        "{out}"
    );
    assert!(
        out.contains("routes[2] /api/resources [GET]: not for POST"),
        "{out}"
    );
    assert!(out.contains("resource:read  from claim `scope`"), "{out}");
    assert!(out.contains("is granted by role `resource-admin`"), "{out}");
    assert!(!out.contains('\x1b'), "{out}");
}

#[test]
fn roles_more_specific_routes_and_stale_tokens() {
    let dir = TempDir::new("explain-roles");
    let (policy, now, example) = example(&dir);
    // A role that grants the scope: where it came from.
    let token = bearer(case(&example, "role mapped to a scope"));
    let request = &case(&example, "role mapped to a scope")["request"];
    let (code, why) = explain_json(&[
        &policy,
        request["method"].as_str().unwrap(),
        request["path"].as_str().unwrap(),
        "--token",
        token,
        "--now",
        &now,
    ]);
    assert_eq!(code, 0, "{why}");
    let from_role: Vec<&Value> = why["token"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("role").is_some())
        .collect();
    assert_eq!(from_role[0]["role"], "resource-admin", "{why}");
    assert_eq!(from_role[0]["claim"], "roles");
    // `/api/orders/{id}/items` is more specific than `/api/orders/**`.
    let token = bearer(case(&example, "order covers order:item"));
    let (_, why) = explain_json(&[
        &policy,
        "GET",
        "/api/orders/7/items",
        "--token",
        token,
        "--now",
        &now,
    ]);
    let routes = why["routes"].as_array().unwrap();
    assert_eq!(routes[0]["path"], "/api/orders/**");
    assert_eq!(routes[0]["outcome"], "less_specific");
    assert_eq!(routes[0]["more_specific"], routes[1]["index"]);
    // A token issued before the policy changed.
    let token = bearer(case(&example, "read token cannot write"));
    let (_, why) = explain_json(&[
        &policy,
        "POST",
        "/api/resources",
        "--token",
        token,
        "--now",
        &now,
        "--policy-changed-at",
        &now,
    ]);
    let last = why["remedies"].as_array().unwrap().last().unwrap();
    assert_eq!(last["code"], "issued_before_policy", "{why}");
    assert!(last["iat"].as_u64().unwrap() < now.parse::<u64>().unwrap());
}

#[test]
fn token_failures_name_the_claim_at_fault() {
    let dir = TempDir::new("explain-faults");
    let (policy, now, example) = example(&dir);
    for (name, claim, remedy) in [
        (
            "expired one second past the leeway",
            "exp",
            Some("new_token"),
        ),
        ("algorithm not in the issuer's list", "alg", None),
        ("wrong audience", "aud", Some("new_token")),
        ("untrusted issuer", "iss", Some("new_token")),
        ("unknown kid", "kid", Some("fetch_keys")),
        ("not an access token (typ)", "typ", None),
    ] {
        let case = case(&example, name);
        let request = &case["request"];
        let (code, why) = explain_json(&[
            &policy,
            request["method"].as_str().unwrap(),
            request["path"].as_str().unwrap(),
            "--token",
            bearer(case),
            "--now",
            &now,
        ]);
        assert_eq!(code, 1, "{name}");
        assert_eq!(why["decision"]["status"], 401, "{name}");
        assert_eq!(why["token"]["fault"]["name"], claim, "{name}: {why}");
        assert_eq!(codes(&why["remedies"]).first().copied(), remedy, "{name}");
    }
    let (_, why) = explain_json(&[
        &policy,
        "GET",
        "/api/resources",
        "--token",
        bearer(case(&example, "wrong audience")),
        "--now",
        &now,
    ]);
    assert_eq!(
        why["token"]["fault"]["wanted"], "one of: http://127.0.0.1:8080",
        "{why}"
    );
    // A truncated token: 401, malformed, and no panic.
    let token = bearer(case(&example, "read token cannot write"));
    let (code, why) = explain_json(&[
        &policy,
        "GET",
        "/api/resources",
        "--token",
        &token[..40],
        "--now",
        &now,
    ]);
    assert_eq!(code, 1);
    assert_eq!(why["token"]["error"]["code"], "token_malformed");
}

#[test]
fn permissions_in_an_unread_claim_and_unmapped_roles() {
    let dir = TempDir::new("explain-unread");
    let policy = dir.write(
        "policy.json",
        &json!({"version": 1, "realm": "api",
        "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
                     "jwks_uri": "https://idp.invalid/jwks", "jwks_cluster": "idp"}],
        "scopes": {"claims": ["scope"]},
        "roles": {"claims": ["roles"], "map": {"editor": ["resource:write"]}},
        "routes": [{"path": "/api/resources", "require": "resource:write"}]})
        .to_string(),
    );
    // The IdP put permissions in `permissions` (the Auth0 thread) and the role in a
    // Keycloak-style claim; the token's own role maps to nothing.
    let token = unsigned_jwt(
        &json!({"iss": "https://idp", "aud": "api", "exp": 4_000_000_000u64,
        "scope": "openid", "permissions": ["resource:write"], "roles": ["viewer"],
        "realm_access": {"roles": ["editor"]}}),
    );
    let (code, why) = explain_json(&[
        &policy,
        "POST",
        "/api/resources",
        "--token",
        &token,
        "--no-verify",
    ]);
    assert_eq!(code, 1);
    assert!(!why["signature_checked"].as_bool().unwrap());
    assert_eq!(
        why["token"]["unread_claims"],
        json!([
        {"claim": "permissions", "value": "resource:write"},
        {"claim": "/realm_access/roles", "value": "editor"}])
    );
    assert_eq!(
        codes(&why["remedies"]),
        [
            "read_claim",
            "read_claim",
            "assign_role",
            "map_role",
            "request_scopes"
        ]
    );
    assert_eq!(
        why["token"]["unmapped_roles"],
        json!([{"claim": "roles", "value": "viewer"}])
    );
    let (_, out, _) = scopegate(&[
        "explain",
        &policy,
        "POST",
        "/api/resources",
        "--token",
        &token,
        "--no-verify",
    ]);
    assert!(out.contains("signature NOT checked"), "{out}");
    assert!(
        out.contains("claim `permissions`, which the policy does not read"),
        "{out}"
    );
}

#[test]
fn header_lines_tokens_and_answers_from_standard_input() {
    let dir = TempDir::new("explain-stdin");
    let (policy, now, example) = example(&dir);
    let token = bearer(case(&example, "read token cannot write"));
    let root = Path::new(REPO);
    let args = [
        "explain",
        &policy,
        "POST",
        "/api/resources",
        "--now",
        &now,
        "--json",
    ];
    for input in [
        token.to_owned(),
        format!("Authorization: Bearer {token}\n"),
        format!("Bearer {token}"),
    ] {
        let (code, out, err) = scopegate_with(root, &args, Some(&input));
        assert_eq!(code, 1, "{err}");
        assert_eq!(
            json(&out)["decision"]["missing"],
            json!(["resource:write"]),
            "{input}"
        );
    }
    // A pasted 403, without the token: what it needs and who may get it.
    let answer = "HTTP/1.1 403 Forbidden\r\nwww-authenticate: Bearer realm=\"scopegate-demo\", \
        error=\"insufficient_scope\", scope=\"resource:write\"\r\ncontent-type: application/json\r\n\r\n\
        {\"error\":\"insufficient_scope\",\"scope\":\"resource:write\",\"missing\":\"resource:write\"}";
    let (code, out, err) = scopegate_with(root, &args, Some(answer));
    assert_eq!(code, 1, "{err}");
    let why = json(&out);
    assert_eq!(
        why["answer"],
        json!({"status": 403, "error": "insufficient_scope",
        "scope": "resource:write", "missing": ["resource:write"]})
    );
    assert_eq!(
        codes(&why["remedies"]),
        ["send_token", "assign_role", "request_scopes"]
    );
    // The same answer from a file, and a token with it.
    let file = dir.write("answer.txt", answer);
    let (code, why) = explain_json(&[
        &policy,
        "POST",
        "/api/resources",
        "--answer",
        &file,
        "-H",
        &format!("Authorization: Bearer {token}"),
        "--now",
        &now,
    ]);
    assert_eq!(code, 1);
    assert_eq!(why["answer"]["status"], 403);
    assert_eq!(why["decision"]["status"], 403);
    // Answers and headers it cannot use.
    for (input, expected) in [
        (
            "HTTP/1.1 403\r\nwww-authenticate: Bearer realm=\"a\r\n\r\n",
            "WWW-Authenticate",
        ),
        ("{\"error\": ", "not JSON"),
        (
            "HTTP/1.1 403\r\nserver: x\r\n\r\n",
            "neither a WWW-Authenticate",
        ),
    ] {
        let (code, _, err) = scopegate_with(root, &args, Some(input));
        assert_eq!(code, 2, "{input}");
        assert!(err.contains(expected), "{input}: {err}");
    }
    let (code, _, err) = scopegate(&["explain", &policy, "GET", "/", "-H", "no colon here"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a header line"), "{err}");
}

#[test]
fn remote_keys_are_fetched_from_the_jwks_uri() {
    let remote = suite("remote-keys-fetched");
    let dir = TempDir::new("explain-remote");
    let jwks = remote["fetched_jwks"]["0"].to_string();
    let token = bearer(&remote["cases"][0]);
    let now = remote["now"].to_string();
    let policy_at = |port: u16| {
        let mut policy = remote["policy"].clone();
        policy["issuers"][0]["jwks_uri"] = json!(format!("http://127.0.0.1:{port}/jwks"));
        dir.write(&format!("policy-{port}.json"), &policy.to_string())
    };
    // Two requests to the server: explain, then scopes.
    let port = serve(vec![(200, jwks.clone()), (200, jwks.clone())]);
    let policy = policy_at(port);
    let (code, why) = explain_json(&[&policy, "GET", "/api/x", "--token", token, "--now", &now]);
    assert_eq!(code, 0, "{why}");
    assert_eq!(
        why["keys"],
        json!({"from": "jwks_uri", "uri": format!("http://127.0.0.1:{port}/jwks")})
    );
    assert_eq!(why["token"]["scopes"][0]["role"], "reader");
    assert_eq!(why["token"]["scopes"][0]["claim"], "/realm_access/roles");
    let (code, out, err) = scopegate(&["scopes", &policy, token, "--now", &now]);
    assert_eq!((code, out.as_str()), (0, "resource:read\n"), "{err}");
    // A server that fails, answers garbage, or is not there: a clear error, exit 2.
    for (answers, expected) in [
        (vec![(500, "{}".to_owned())], "the server answered 500"),
        (vec![(200, "<html>".to_owned())], "not a usable JWKS"),
    ] {
        let policy = policy_at(serve(answers));
        let (code, _, err) = scopegate(&[
            "explain", &policy, "GET", "/api/x", "--token", token, "--now", &now,
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(expected) && err.contains("--no-verify"),
            "{err}"
        );
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = scopegate(&[
        "explain",
        &policy_at(closed),
        "GET",
        "/api/x",
        "--token",
        token,
        "--now",
        &now,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot fetch the keys of issuers[0]"), "{err}");
    // Offline: the file instead.
    let file = dir.write("jwks.json", &jwks);
    let (code, why) = explain_json(&[
        &policy_at(closed),
        "GET",
        "/api/x",
        "--token",
        token,
        "--now",
        &now,
        "--jwks",
        &file,
    ]);
    assert_eq!(code, 0);
    assert_eq!(why["keys"]["from"], "file");
}

#[test]
fn unusable_input_is_an_error_not_a_panic() {
    let dir = TempDir::new("explain-bad");
    let broken = dir.write(
        "broken.json",
        r#"{"version": 1, "realm": "api", "issuers": [], "routes": [{"path": "x"}]}"#,
    );
    let (code, _, err) = scopegate(&["explain", &broken, "GET", "/", "--token", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("broken.json: "), "{err}");
    let (policy, _, _) = example(&dir);
    let (code, _, err) = scopegate(&["explain", &policy, "GET", "api/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("neither an absolute URL nor a path"), "{err}");
    // Hostile bytes in the path and the token: a decision, never a crash.
    let (code, out, _) = scopegate(&[
        "explain",
        &policy,
        "GET",
        "/api/%2e%2e/%00",
        "--token",
        "a.b.c",
        "--json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json(&out)["decision"]["status"], 400);
}
