//! Token introspection (RFC 7662) in a real Envoy: opaque tokens judged by an endpoint
//! reached over an Envoy cluster, whose answers are kept; an endpoint that says inactive,
//! fails, answers garbage, is too slow or is down refuses the token (401), never passes it;
//! eight concurrent requests with one new token make one call; the gateway's client secret
//! never shows in Envoy's log. The endpoint is a small server of this test (its failure
//! modes are the point); `demo_introspection.rs` runs the demo IdP's real endpoint.
//! Envoy is stopped by PID when the test ends.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use scopegate_tests::harness::{
    eventually, request, Host, HostLimit, HttpServer, Recorder, Response, ServerRequest,
    ServerResponse, Upstreams,
};
use scopegate_tests::on_each_host;
use scopegate_tests::{example_policy_with_remote_keys, unix_now};
use serde_json::json;

on_each_host!(
    opaque_tokens_are_introspected_through_envoy_and_every_failure_refuses,
    a_flood_of_random_tokens_stays_within_the_introspection_budget,
);

/// Envoy only: nginx never parks a request on another's call (each sends its own).
#[test]
fn a_parked_request_outlives_the_request_that_sent_the_call() {
    parked_requests_survive(Host::Envoy);
}

const SECRET: &str = "introspection-s3cret";

/// How the test's introspection endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Active,
    Inactive,
    Garbage,
    Error,
    /// Active, after this many milliseconds.
    Slow(u64),
}

fn endpoint(mode: Arc<Mutex<Mode>>, seen: Recorder) -> HttpServer {
    HttpServer::start(move |req: &ServerRequest| {
        seen.push(req);
        let mode = *mode.lock().unwrap();
        if let Mode::Slow(ms) = mode {
            thread::sleep(Duration::from_millis(ms));
        }
        let answer = |body: serde_json::Value| ServerResponse {
            status: 200,
            content_type: "application/json",
            body: body.to_string(),
        };
        match mode {
            Mode::Active | Mode::Slow(_) => answer(json!({
                "active": true, "scope": "resource:read", "sub": "alice", "client_id": "spa",
                "aud": "http://127.0.0.1:8080", "iss": "https://idp.scopegate.test",
                "exp": unix_now() + 600, "token_type": "Bearer"
            })),
            Mode::Inactive => answer(json!({"active": false})),
            Mode::Garbage => ServerResponse {
                status: 200,
                content_type: "text/html",
                body: "<html>maintenance</html>".into(),
            },
            Mode::Error => ServerResponse {
                status: 500,
                content_type: "application/json",
                body: r#"{"error":"server_error"}"#.into(),
            },
        }
    })
}

fn send(port: u16, method: &str, token: &str) -> Response {
    let auth = format!("Bearer {token}");
    request(port, method, "/api/resources", &[("authorization", &auth)]).expect("the host answers")
}

/// The `error_description` of a 401's challenge.
fn refusal(response: &Response) -> String {
    assert_eq!(response.status, 401, "{response:?}");
    let challenge = response.header("www-authenticate").expect("a challenge");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let (_, rest) = challenge
        .split_once("error_description=\"")
        .expect("a description");
    rest.split('"').next().unwrap_or("").to_owned()
}

fn opaque_tokens_are_introspected_through_envoy_and_every_failure_refuses(host: Host) {
    let mode = Arc::new(Mutex::new(Mode::Active));
    let seen = Recorder::default();
    let mut introspection = endpoint(Arc::clone(&mode), seen.clone());
    let mut policy = example_policy_with_remote_keys("http://127.0.0.1:1/jwks", "jwks");
    policy.as_object_mut().unwrap().remove("resources");
    policy["issuers"][0]["introspection"] = json!({
        "endpoint": format!("http://127.0.0.1:{}/token/introspection", introspection.port),
        "cluster": "jwks", "client_id": "gateway", "client_secret": SECRET,
        "timeout_ms": 500, "inactive_cache_seconds": 30, "cache_seconds": 60
    });
    let (api, reached) = HttpServer::recording_echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(introspection.port),
    };
    let proxy = host.start(&upstreams, &policy);
    let port = proxy.port();
    let calls = |token: &str| {
        seen.requests()
            .iter()
            .filter(|r| {
                r.target == "/token/introspection"
                    && r.body.ends_with(b"token_type_hint=access_token")
                    && String::from_utf8_lossy(&r.body).contains(token)
            })
            .count()
    };

    // Active: the request passes with the answer's subject, and the call was RFC 7662's.
    let response = send(port, "GET", "opaque-active");
    assert_eq!(response.status, 200, "{response:?}\n{}", proxy.log());
    // The cluster also carries the issuer's JWKS fetches.
    let call = seen
        .requests()
        .into_iter()
        .rfind(|r| r.target == "/token/introspection")
        .expect("an introspection call");
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.body,
        b"token=opaque-active&token_type_hint=access_token"
    );
    assert_eq!(
        call.header_values("content-type"),
        ["application/x-www-form-urlencoded"]
    );
    // base64("gateway:introspection-s3cret")
    assert_eq!(
        call.header_values("authorization"),
        ["Basic Z2F0ZXdheTppbnRyb3NwZWN0aW9uLXMzY3JldA=="]
    );
    let upstream = reached
        .requests()
        .pop()
        .expect("the request reached the API");
    assert_eq!(upstream.header_values("x-scopegate-sub"), ["alice"]);
    assert_eq!(
        upstream.header_values("authorization"),
        ["Bearer opaque-active"]
    );
    // Kept: the same token again makes no call; a scope it lacks is a 403.
    assert_eq!(send(port, "GET", "opaque-active").status, 200);
    let put = request(
        port,
        "PUT",
        "/api/resources/7",
        &[("authorization", "Bearer opaque-active")],
    )
    .unwrap();
    assert_eq!(put.status, 403, "{put:?}");
    assert_eq!(calls("opaque-active"), 1);

    // Eight concurrent requests with a new token wait on one call.
    *mode.lock().unwrap() = Mode::Slow(300);
    let parallel: Vec<_> = (0..8)
        .map(|_| thread::spawn(move || send(port, "GET", "opaque-shared").status))
        .collect();
    let statuses: Vec<u16> = parallel.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, [200; 8], "{}", proxy.log());
    match host {
        Host::Envoy => assert_eq!(calls("opaque-shared"), 1, "one call for eight requests"),
        // Each sends its own call; the first answer is kept for the next requests.
        Host::Nginx => {
            HostLimit::NginxNoCrossRequestResume
                .note("opaque_tokens_are_introspected_through_envoy_and_every_failure_refuses");
            assert!(calls("opaque-shared") <= 8);
            let after = calls("opaque-shared");
            assert_eq!(send(port, "GET", "opaque-shared").status, 200);
            assert_eq!(
                calls("opaque-shared"),
                after,
                "the kept answer serves the next one"
            );
        }
    }

    // Every failure is a 401, never a pass.
    let cases = [
        (
            Mode::Inactive,
            "opaque-revoked",
            "The access token is not active",
        ),
        (
            Mode::Garbage,
            "opaque-garbage",
            "The access token could not be checked; try again",
        ),
        (
            Mode::Error,
            "opaque-error",
            "The access token could not be checked; try again",
        ),
        (
            Mode::Slow(2_000),
            "opaque-slow",
            "The access token could not be checked; try again",
        ),
    ];
    for (answering, token, description) in cases {
        *mode.lock().unwrap() = answering;
        let started = Instant::now();
        let auth = format!("Bearer {token}");
        let answered = request(port, "GET", "/api/resources", &[("authorization", &auth)]);
        let response = match (host, answering, answered) {
            (_, _, Ok(response)) => response,
            // ngx_wasm_module 3bed278 breaks the local answer sent after a call timed out
            // ("zero size buf in writer"): the client gets a cut answer, the upstream
            // nothing (checked below).
            (Host::Nginx, Mode::Slow(_), Err(_)) => {
                HostLimit::NginxCutAnswerAfterCallTimeout
                    .note("opaque_tokens_are_introspected_through_envoy_and_every_failure_refuses");
                continue;
            }
            (_, _, Err(e)) => panic!("{answering:?}: {e}\n{}", proxy.log()),
        };
        assert_eq!(refusal(&response), description, "{answering:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1_900),
            "{answering:?}: the timeout bounds the wait"
        );
    }
    // An inactive answer is kept; the others are retried.
    *mode.lock().unwrap() = Mode::Active;
    assert_eq!(
        refusal(&send(port, "GET", "opaque-revoked")),
        "The access token is not active"
    );
    assert_eq!(calls("opaque-revoked"), 1);
    // Kept for one second of the gateway's clock (whole seconds): up to two of ours.
    thread::sleep(Duration::from_millis(2_100));
    assert_eq!(
        send(port, "GET", "opaque-error").status,
        200,
        "retried once the failure is stale"
    );

    // Down: the cluster's endpoint is gone.
    introspection.stop();
    let response = send(port, "GET", "opaque-down");
    assert_eq!(
        refusal(&response),
        "The access token could not be checked; try again"
    );
    // A JWT is still verified locally: introspection is for opaque tokens by default.
    assert_eq!(send(port, "GET", "eyJhbGciOiJub25lIn0.e30.").status, 401);

    let reached_tokens: Vec<String> = reached
        .requests()
        .iter()
        .flat_map(|r| {
            r.header_values("authorization")
                .into_iter()
                .map(String::from)
        })
        .collect();
    for refused in [
        "opaque-revoked",
        "opaque-garbage",
        "opaque-slow",
        "opaque-down",
    ] {
        assert!(
            !reached_tokens.iter().any(|t| t.ends_with(refused)),
            "{refused} reached the API"
        );
    }
    let log = proxy.log();
    assert!(!log.contains(SECRET), "the client secret in the host's log");
    assert!(
        !log.contains("Z2F0ZXdheTppbnRyb3NwZWN0aW9uLXMzY3JldA"),
        "the credentials in the log"
    );
    let test = "opaque_tokens_are_introspected_through_envoy_and_every_failure_refuses";
    match proxy.counter("introspection.call") {
        Ok(calls) => assert!(calls >= 6, "{calls} introspection calls"),
        Err(limit) => limit.note(test),
    }
}

/// A client sending thousands of random opaque tokens gets 401 or 503 (`Retry-After`), the
/// endpoint sees no more calls than the budget allows for the whole host, and a valid token
/// whose answer is kept keeps getting 200 throughout.
fn a_flood_of_random_tokens_stays_within_the_introspection_budget(host: Host) {
    const PER_SECOND: usize = 5;
    const FLOOD: usize = 2_000;
    let seen = Recorder::default();
    let endpoint_seen = seen.clone();
    // The second each call arrived in.
    let arrived = Arc::new(Mutex::new(Vec::<u64>::new()));
    let arrivals = Arc::clone(&arrived);
    let introspection = HttpServer::start(move |req: &ServerRequest| {
        endpoint_seen.push(req);
        if req.target == "/token/introspection" {
            arrivals.lock().unwrap().push(unix_now());
        }
        thread::sleep(Duration::from_millis(20));
        let active = String::from_utf8_lossy(&req.body).contains("token=opaque-good&");
        let body = match active {
            true => json!({
                "active": true, "scope": "resource:read", "sub": "alice",
                "aud": "http://127.0.0.1:8080", "iss": "https://idp.scopegate.test",
                "exp": unix_now() + 600
            }),
            false => json!({"active": false}),
        };
        ServerResponse {
            status: 200,
            content_type: "application/json",
            body: body.to_string(),
        }
    });
    let mut policy = example_policy_with_remote_keys("http://127.0.0.1:1/jwks", "jwks");
    policy.as_object_mut().unwrap().remove("resources");
    policy["issuers"][0]["introspection"] = json!({
        "endpoint": format!("http://127.0.0.1:{}/token/introspection", introspection.port),
        "cluster": "jwks", "client_id": "gateway", "client_secret": SECRET,
        "max_calls_per_second": PER_SECOND, "max_calls_in_flight": 2
    });
    let (api, reached) = HttpServer::recording_echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(introspection.port),
    };
    // Two Envoy workers: the calls per second are counted for the whole host. nginx hands
    // each connection to whichever worker accepts it first, so a test cannot see to it that
    // both keep the valid token's answer: one worker there (its shared-data path is the
    // replay cache's, tested with four in dpop.rs).
    let workers = match host {
        Host::Envoy => 2,
        Host::Nginx => 1,
    };
    let proxy = host.start_on_workers(&upstreams, &policy, workers);
    let port = proxy.port();
    let calls = || {
        seen.requests()
            .iter()
            .filter(|r| r.target == "/token/introspection")
            .count()
    };
    // Answers are kept per worker: the token is sent (a connection each) until both
    // workers have introspected it.
    for _ in 0..60 {
        let response = send(port, "GET", "opaque-good");
        assert_eq!(response.status, 200, "{response:?}\n{}", proxy.log());
        if calls() == workers as usize {
            break;
        }
    }
    assert_eq!(calls(), workers as usize, "each worker keeps its answer");
    let before = calls();
    // The flood starts with a second of the gateway's clock of its own.
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    thread::sleep(Duration::from_millis(u64::from(1_000 - into_second) + 20));

    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let good = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut statuses = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                statuses.push(send(port, "GET", "opaque-good").status);
                thread::sleep(Duration::from_millis(50));
            }
            statuses
        })
    };
    let flood: Vec<_> = (0..8)
        .map(|worker| {
            thread::spawn(move || {
                let mut answers = Vec::new();
                // At least FLOOD in all, for at least three seconds.
                let flooding = Instant::now();
                for n in (0..).take_while(|n| *n < FLOOD / 8 || flooding.elapsed().as_secs() < 3) {
                    let token = format!("opaque-random-{worker}-{n}-{}", unix_now());
                    let response = send(port, "GET", &token);
                    let retry_after = response.header("retry-after").map(str::to_owned);
                    answers.push((response.status, retry_after));
                }
                answers
            })
        })
        .collect();
    let answers: Vec<(u16, Option<String>)> =
        flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let good = good.join().unwrap();

    let made = calls() - before;
    // Per second of the clock, for the whole host (a call sent at the end of one second may
    // arrive in the next: one more).
    let mut per_second = std::collections::BTreeMap::<u64, usize>::new();
    for second in arrived.lock().unwrap().iter().skip(before) {
        *per_second.entry(*second).or_default() += 1;
    }
    assert!(
        per_second.values().all(|calls| *calls <= PER_SECOND + 1),
        "calls per second: {per_second:?}"
    );
    // Whole seconds of the gateway's clock that the flood touched.
    let seconds = elapsed.as_secs() as usize + 2;
    assert!(
        made <= PER_SECOND * seconds,
        "{made} calls in {elapsed:?}: over {PER_SECOND} per second"
    );
    assert!(made >= PER_SECOND, "the budget is used: {made} calls");
    let busy = answers.iter().filter(|(status, _)| *status == 503).count();
    assert!(answers.len() >= FLOOD, "{} tokens", answers.len());
    assert!(
        busy > answers.len() / 2,
        "{busy} of {} answered 503",
        answers.len()
    );
    for (status, retry_after) in &answers {
        match status {
            503 => assert_eq!(retry_after.as_deref(), Some("1")),
            401 => {}
            other => panic!("a random token got {other}"),
        }
    }
    assert!(good.len() >= 5, "{good:?}");
    assert!(
        good.iter().all(|status| *status == 200),
        "the kept token: {good:?}"
    );
    assert!(
        !reached.requests().iter().any(|r| r
            .header_values("authorization")
            .iter()
            .any(|a| a.contains("opaque-random"))),
        "a random token reached the API"
    );
    let test = "a_flood_of_random_tokens_stays_within_the_introspection_budget";
    match proxy.counter("introspection.over_budget") {
        Ok(over) => assert_eq!(over as usize, busy, "the counter says so"),
        Err(limit) => limit.note(test),
    }
}

/// A request parked on another's introspection call is answered from a call of its own when
/// the sender goes away (its client hangs up, and the host cancels its call), instead of
/// being refused.
fn parked_requests_survive(host: Host) {
    let mode = Arc::new(Mutex::new(Mode::Slow(1_000)));
    let seen = Recorder::default();
    let introspection = endpoint(Arc::clone(&mode), seen.clone());
    let mut policy = example_policy_with_remote_keys("http://127.0.0.1:1/jwks", "jwks");
    policy.as_object_mut().unwrap().remove("resources");
    policy["issuers"][0]["introspection"] = json!({
        "endpoint": format!("http://127.0.0.1:{}/token/introspection", introspection.port),
        "cluster": "jwks", "client_id": "gateway", "client_secret": SECRET,
        "timeout_ms": 3_000
    });
    let api = HttpServer::echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(introspection.port),
    };
    let proxy = host.start(&upstreams, &policy);
    let port = proxy.port();

    // The sender: its request waits on the slow call, then its client hangs up.
    let mut sender = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut sender,
        format!(
            "GET /api/resources HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
             authorization: Bearer opaque-parked\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    // Its call reaches the endpoint before the second request is sent ...
    let sent = |n: usize| {
        seen.requests()
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("token=opaque-parked&"))
            .count()
            >= n
    };
    assert!(eventually(Duration::from_secs(5), || sent(1)), "no call");
    let parked = thread::spawn(move || send(port, "GET", "opaque-parked"));
    // ... which is parked on it (the gateway counts the wait) before the sender hangs up.
    let waited = || {
        proxy
            .counter("introspection.wait")
            .is_ok_and(|waits| waits >= 1)
    };
    assert!(
        eventually(Duration::from_secs(5), waited),
        "{}",
        proxy.log()
    );
    drop(sender);

    let response = parked.join().unwrap();
    assert_eq!(response.status, 200, "{response:?}\n{}", proxy.log());
    let calls = seen
        .requests()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("token=opaque-parked&"))
        .count();
    assert_eq!(calls, 2, "the sender's call, then the parked request's own");
    // The answer is kept: the next request makes no call.
    assert_eq!(send(port, "GET", "opaque-parked").status, 200);
}
