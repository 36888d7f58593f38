//! Runs the shared vectors for scopes, paths, challenges and policy loading against the
//! core. The JavaScript tests run the same files against the npm package.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use scopegate_core::lint::{lint, Severity};
use scopegate_core::normalize_path as normalize;
use scopegate_core::{parse_challenges, Policy, ScopeRules};
use scopegate_tests::repo_root;
use serde_json::{json, Value};

fn vectors(name: &str) -> Value {
    let path = repo_root().join("tests/vectors").join(name);
    serde_json::from_str(&fs::read_to_string(&path).expect("vector file")).expect("JSON")
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect()
}

fn report(ran: usize, minimum: usize, failures: &[String]) {
    assert!(ran >= minimum, "only {ran} vectors ran");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn scope_vectors() {
    let file = vectors("scopes.json");
    let (mut ran, mut failures) = (0, Vec::new());
    for suite in file["suites"].as_array().expect("suites") {
        let rules = &suite["rules"];
        let rules = ScopeRules::new(
            rules["separator"].as_str().expect("separator"),
            rules["write_suffix"].as_str(),
            &strings(&rules["prefixes"]),
        )
        .expect("rules");
        for case in suite["covers"].as_array().expect("covers") {
            let (granted, required) = (case["granted"].as_str(), case["required"].as_str());
            let covers = rules.covers(granted.expect("granted"), required.expect("required"));
            if json!(covers) != case["covers"] {
                failures.push(format!("covers {case}: got {covers}"));
            }
            ran += 1;
        }
        for case in suite["next_request"].as_array().expect("next_request") {
            let got = match rules.next_request(&strings(&case["held"]), &strings(&case["missing"]))
            {
                Ok(next) => json!({"add": next.add, "scope": next.scope}),
                Err(err) => json!({"error": err.code()}),
            };
            let expected = match case.get("error") {
                Some(error) => json!({"error": error}),
                None => json!({"add": case["add"], "scope": case["scope"]}),
            };
            if got != expected {
                failures.push(format!("next_request {case}: got {got}"));
            }
            ran += 1;
        }
    }
    report(ran, 30, &failures);
}

/// Runs `file`'s cases whose expectation is the case itself minus its `input` field.
fn run_io_cases(file: &str, input: &str, minimum: usize, answer: impl Fn(&str) -> Value) {
    let file = vectors(file);
    let (mut ran, mut failures) = (0, Vec::new());
    for case in file["cases"].as_array().expect("cases") {
        let got = answer(case[input].as_str().expect("input"));
        let mut expected = case.clone();
        expected.as_object_mut().expect("object").remove(input);
        if got != expected {
            failures.push(format!("{case}: got {got}"));
        }
        ran += 1;
    }
    report(ran, minimum, &failures);
}

#[test]
fn path_vectors() {
    run_io_cases("paths.json", "input", 25, |input| match normalize(input) {
        Ok(path) => json!({"normalized": path}),
        Err(err) => json!({"error": err.code()}),
    });
}

#[test]
fn challenge_vectors() {
    run_io_cases(
        "challenges.json",
        "header",
        15,
        |header| match parse_challenges(header) {
            Ok(challenges) => json!({"challenges": challenges}),
            Err(err) => json!({"error_at": err.at}),
        },
    );
}

/// Applies `set` (JSON pointer -> value, `null` removes, one past the end appends).
fn patched(base: &Value, set: &Value) -> Value {
    let mut doc = base.clone();
    for (pointer, value) in set.as_object().expect("set") {
        let (parent, last) = pointer.rsplit_once('/').expect("pointer");
        let target = doc.pointer_mut(parent).expect("parent exists");
        match target {
            Value::Object(map) if value.is_null() => {
                map.remove(last);
            }
            Value::Object(map) => {
                map.insert(last.to_owned(), value.clone());
            }
            Value::Array(items) => {
                let index: usize = last.parse().expect("index");
                if index == items.len() {
                    items.push(value.clone());
                } else {
                    items[index] = value.clone();
                }
            }
            _ => panic!("cannot set {pointer}"),
        }
    }
    doc
}

#[test]
fn policy_vectors() {
    let file = vectors("policies.json");
    let (mut ran, mut failures) = (0, Vec::new());
    for case in file["cases"].as_array().expect("cases") {
        let doc = patched(&file["base"], &case["set"]);
        let name = &case["name"];
        // `scopegate lint` reports the same first error, and none for a policy that loads.
        let errors: Vec<String> = lint(&doc.to_string(), &[])
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{}: {}", f.path, f.message))
            .collect();
        let loaded = Policy::from_json(&doc.to_string());
        let first = loaded.as_ref().err().map(ToString::to_string);
        if errors.first() != first.as_ref() {
            failures.push(format!(
                "{name}: lint says {errors:?}, loading says {first:?}"
            ));
        }
        match (loaded, case.get("ok")) {
            (Ok(_), Some(_)) => {}
            (Ok(_), None) => failures.push(format!("{name}: loaded, expected an error")),
            (Err(err), Some(_)) => failures.push(format!("{name}: {err}")),
            (Err(err), None) => {
                let contains = case["message_contains"].as_str().expect("message_contains");
                if json!(err.path) != case["path"] || !err.message.contains(contains) {
                    failures.push(format!(
                        "{name}: expected `{}` containing {contains:?}, got `{err}`",
                        case["path"]
                    ));
                }
            }
        }
        ran += 1;
    }
    report(ran, 35, &failures);
}

#[test]
fn example_policies_load() {
    let examples = repo_root().join("examples");
    let mut loaded = 0;
    for entry in fs::read_dir(&examples).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json")
            && path.to_string_lossy().contains("policy")
        {
            let text = fs::read_to_string(&path).expect("read");
            Policy::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            loaded += 1;
        }
    }
    assert!(loaded >= 1, "no example policy found");
}

/// A token with `claims`, as `client.json` describes: the pre-check takes the signature as
/// valid, so it is the bytes of `sig`.
fn unsigned_token(claims: &Value) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let part = |value: &Value| Base64UrlUnpadded::encode_string(value.to_string().as_bytes());
    format!("{}.{}.c2ln", part(&json!({"alg": "EdDSA"})), part(claims))
}

/// The access token of a `client.json` case: minted from `claims`, or `access` as it is.
fn access_of(case: &Value) -> Option<String> {
    match (case.get("claims"), case.get("access")) {
        (Some(claims), _) => Some(unsigned_token(claims)),
        (None, Some(access)) => Some(access.as_str().expect("access").to_owned()),
        (None, None) => None,
    }
}

#[test]
fn client_vectors() {
    use scopegate_core::client::{
        authorization_header, call_access, fix_of, held_at, held_scopes, is_s256_challenge,
        is_valid_acr, needed, split_scopes, wants_denial_body, widen,
    };
    use scopegate_core::read_denial;
    use scopegate_core::request_target;
    use scopegate_core::UnixTime;

    let file = vectors("client.json");
    let policy = Policy::from_json(&file["policy"].to_string()).expect("policy");
    let now = UnixTime(file["now"].as_u64().expect("now"));
    let target = request_target(file["url"].as_str().expect("url")).expect("target");
    let (mut ran, mut failures) = (0, Vec::new());
    let mut expect = |what: &str, case: &Value, got: Value, expected: &Value| {
        if &got != expected {
            failures.push(format!("{what} {case}: got {got}"));
        }
        ran += 1;
    };
    for case in file["split"].as_array().expect("split") {
        let got: Vec<&str> = split_scopes(case["text"].as_str().expect("text")).collect();
        expect("split", case, json!(got), &case["scopes"]);
    }
    for case in file["acr"].as_array().expect("acr") {
        let got = is_valid_acr(case["value"].as_str().expect("value"));
        expect("acr", case, json!(got), &case["valid"]);
    }
    for case in file["pkce"].as_array().expect("pkce") {
        let got = is_s256_challenge(case["value"].as_str().expect("value"));
        expect("pkce", case, json!(got), &case["valid"]);
    }
    for case in file["widen"].as_array().expect("widen") {
        let rules = match case.get("rules") {
            Some(rules) => ScopeRules::new(
                rules["separator"].as_str().expect("separator"),
                rules["write_suffix"].as_str(),
                &strings(&rules["prefixes"]),
            )
            .expect("rules"),
            None => ScopeRules::default(),
        };
        let got = widen(
            &rules,
            &strings(&case["held"]),
            &strings(&case["requested"]),
            case["prompt"].as_str(),
        );
        expect("widen", case, json!(got.expect("widen")), &case["expect"]);
    }
    for case in file["held"].as_array().expect("held") {
        let granted: Vec<&str> = split_scopes(case["granted"].as_str().expect("granted")).collect();
        let access = access_of(case);
        let got = if case["at_url"] == json!(true) {
            held_at(&policy, &target, &granted, access.as_deref(), now)
        } else {
            held_scopes(Some(&policy), &granted, access.as_deref())
        };
        expect("held", case, json!(got), &case["held"]);
    }
    for case in file["mcp"].as_array().expect("mcp") {
        let granted: Vec<&str> = split_scopes(case["granted"].as_str().expect("granted")).collect();
        let access = access_of(case);
        let params = &case["params"];
        let got = call_access(
            &policy,
            &target,
            &granted,
            access.as_deref(),
            case["method"].as_str().expect("method"),
            params["name"].as_str(),
            params["uri"].as_str(),
            now,
        );
        expect("mcp", case, json!(got.expect("call")), &case["expect"]);
    }
    for case in file["denials"].as_array().expect("denials") {
        let status = u16::try_from(case["status"].as_u64().expect("status")).expect("u16");
        // The body is read as a client reads it: only when its content type says JSON.
        let content_type = case.get("content_type").map_or_else(
            || case.get("body").map(|_| "application/json"),
            Value::as_str,
        );
        let body = case["body"]
            .as_str()
            .filter(|_| wants_denial_body(status, content_type));
        let denial = read_denial(status, case["header"].as_str(), body);
        let fix = denial.as_ref().map_or("none", |d| fix_of(d).as_str());
        expect("denial", case, json!(fix), &case["fix"]);
        if let Some(required) = denial.as_ref().and_then(|d| d.insufficient_scope.as_ref()) {
            // What scopedFetch's InsufficientScopeError says: the scopes held are the token's.
            let held = held_scopes(Some(&policy), &[], access_of(case).as_deref());
            let held: Vec<&str> = held.iter().map(String::as_str).collect();
            let required: Vec<&str> = required.iter().map(String::as_str).collect();
            let said = denial.as_ref().and_then(|d| d.missing.as_ref());
            let said: Option<Vec<&str>> = said.map(|m| m.iter().map(String::as_str).collect());
            let got =
                needed(policy.scope_rules(), &held, &required, said.as_deref()).expect("needed");
            let request = got.request.map(|r| json!({"add": r.add, "scope": r.scope}));
            let got = json!({"missing": got.missing, "scope_request": request});
            let expected =
                json!({"missing": case["missing"], "scope_request": case["scope_request"]});
            expect("needed", case, got, &expected);
        }
    }
    for case in file["denial_body"].as_array().expect("denial_body") {
        let status = u16::try_from(case["status"].as_u64().expect("status")).expect("u16");
        let got = wants_denial_body(status, case["content_type"].as_str());
        expect("denial_body", case, json!(got), &case["read"]);
    }
    for case in file["bearer"].as_array().expect("bearer") {
        let got = authorization_header(case["token"].as_str());
        expect("bearer", case, json!(got), &case["header"]);
    }
    for case in file["authorize"].as_array().expect("authorize") {
        let got = authorization_params_of(&file["authorize_base"], &case["request"]);
        let expected = case.get("params").unwrap_or(&case["error"]);
        expect("authorize", case, got, expected);
    }
    report(ran, 100, &failures);
}

/// What `client::authorization_params` answers for a `client.json` authorization request
/// (`base` with `request`'s members): the parameters as `[name, value]` pairs, or the error's
/// message.
fn authorization_params_of(base: &Value, request: &Value) -> Value {
    use scopegate_core::client::{authorization_params, AuthorizationRequest};
    let member = |name: &str| request.get(name).or_else(|| base.get(name));
    let text = |name: &str| member(name).and_then(Value::as_str);
    let list = |name: &str| member(name).map(strings);
    let (scopes, resources) = (list("scopes"), list("resources"));
    let acr_values = list("acr_values");
    let extra: Vec<(&str, &str)> = member("extra").map_or_else(Vec::new, |pairs| {
        let pairs = pairs.as_array().expect("extra");
        pairs
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().expect("name"),
                    pair[1].as_str().expect("value"),
                )
            })
            .collect()
    });
    let request = AuthorizationRequest {
        authorization_endpoint: text("authorization_endpoint"),
        response_type: text("response_type"),
        client_id: text("client_id").expect("client_id"),
        redirect_uri: text("redirect_uri").expect("redirect_uri"),
        scopes: scopes.as_deref().unwrap_or_default(),
        state: text("state"),
        code_challenge: text("code_challenge").expect("code_challenge"),
        code_challenge_method: text("code_challenge_method"),
        resources: resources.as_deref().unwrap_or_default(),
        acr_values: acr_values.as_deref(),
        max_age: member("max_age").map(|age| age.as_f64().expect("max_age")),
        extra: &extra,
    };
    match authorization_params(&request) {
        Ok(params) => json!(params),
        Err(err) => json!(err.to_string()),
    }
}
