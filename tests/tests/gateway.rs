//! The core's sans-IO gateway driven as a host would: raw header bytes in, forward /
//! respond / wait out, fetch answers fed back. The same machine runs in the filter (see
//! `envoy.rs` for it in a real Envoy); here every step is checked without one.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use scopegate_core::gateway::{Count, Exchange, Gateway, RequestId, Step};
use scopegate_core::{Policy, UnixTime};
use scopegate_tests::{example_policy_with_remote_keys, mint, read_token_claims, TestKeys};
use serde_json::{json, Value};

const NOW: u64 = 1_767_225_600;

/// The example policy with the first issuer's keys fetched from cluster `jwks`.
fn gateway(change: impl FnOnce(&mut Value)) -> Gateway {
    let mut policy = example_policy_with_remote_keys("http://127.0.0.1:1/jwks", "jwks");
    policy["issuers"][0]
        .as_object_mut()
        .expect("issuer")
        .remove("jwks_refetch_seconds");
    change(&mut policy);
    Gateway::new(Policy::from_json(&policy.to_string()).expect("policy compiles"))
}

fn token(keys: &TestKeys, spec: Value) -> String {
    let mut claims = read_token_claims(NOW + 600);
    claims.insert("sub".into(), json!("alice"));
    mint(keys, &spec, &claims)
}

/// `GET path` with these extra headers, as a host hands them.
fn headers<'a>(path: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":method", b"GET"), (b":path", path.as_bytes())];
    pairs.extend(extra.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    pairs
}

fn status(step: &Step<'_>) -> Option<u16> {
    match step {
        Step::Respond(reply) => Some(reply.local_response().status),
        _ => None,
    }
}

#[test]
fn a_request_waits_for_the_first_keys_once_then_is_decided() {
    let keys = TestKeys::from_seed(1);
    let mut gw = gateway(|_| {});
    let due: Vec<usize> = gw.on_tick(UnixTime(NOW)).iter().map(|f| f.issuer).collect();
    assert_eq!(due, [0], "the start fetch");
    // The start fetch failed: the first request with a token waits for one re-fetch.
    let _ = gw.on_fetch_answer(0, Err(()), UnixTime(NOW));
    let auth = format!("Bearer {}", token(&keys, json!({"alg": "ES256"})));
    let request = headers("/api/resources", &[("authorization", &auth)]);
    let mut exchange = Exchange::default();
    let Step::Wait(fetch) = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)) else {
        panic!("expected a wait for the keys")
    };
    assert_eq!(
        (fetch.issuer, fetch.cluster, fetch.path),
        (0, "jwks", "/jwks")
    );
    assert_eq!(exchange.waiting_for(), Some(0));
    let jwks = keys.jwks("").to_string();
    let outcome = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    assert_eq!(outcome.result, Ok(3), "{outcome}");
    let Step::Forward(forward) = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW))
    else {
        panic!("expected the request to go on")
    };
    assert_eq!(forward.remove, Vec::<&str>::new());
    assert_eq!(forward.set[0], ("x-scopegate-sub", "alice".to_owned()));
    assert!(forward.would_deny.is_none());
    let counts: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
    assert_eq!(
        counts,
        [
            "jwks.fetch_failed",
            "cache.miss",
            "jwks.fetch_ok",
            "cache.miss",
            "decision.allow_authorized"
        ]
    );
    // The same token again: from the cache.
    let step = gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW));
    assert!(matches!(step, Step::Forward(_)));
    assert!(gw.drain_counts().any(|c| c == Count::CacheHit));
}

#[test]
fn requests_needing_a_fetch_in_flight_are_held_for_it() {
    let old = TestKeys::from_seed(1);
    let next = TestKeys::from_seed(2);
    let mut gw = gateway(|_| {});
    let _ = gw.on_tick(UnixTime(NOW));
    let jwks = old.jwks("").to_string();
    let _ = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    // The issuer rotates: a burst of tokens under a kid not yet fetched.
    let auths: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|sub| {
            let spec =
                json!({"alg": "ES256", "header": {"kid": "next-ec-1"}, "claims": {"sub": sub}});
            format!("Bearer {}", token(&next, spec))
        })
        .collect();
    let requests: Vec<_> = auths
        .iter()
        .map(|auth| headers("/api/resources", &[("authorization", auth)]))
        .collect();
    let mut exchanges = [
        Exchange::default(),
        Exchange::default(),
        Exchange::default(),
    ];
    let step = gw.on_request_headers(&mut exchanges[0], &requests[0], UnixTime(NOW + 1));
    assert!(matches!(step, Step::Wait(_)), "{step:?}");
    // The others are held for that one fetch rather than refused against the old keys.
    for (exchange, request) in exchanges[1..].iter_mut().zip(&requests[1..]) {
        let step = gw.on_request_headers(exchange, request, UnixTime(NOW + 1));
        assert!(matches!(step, Step::Hold(0)), "{step:?}");
        assert_eq!(exchange.waiting_for(), None, "a held request owns no fetch");
    }
    let mut both = next.jwks("next-");
    both["keys"]
        .as_array_mut()
        .unwrap()
        .extend(old.jwks("")["keys"].as_array().unwrap().iter().cloned());
    let both = both.to_string();
    let _ = gw.on_fetch_answer(0, Ok((200, both.as_bytes())), UnixTime(NOW + 1));
    for (exchange, request) in exchanges.iter_mut().zip(&requests) {
        let step = gw.on_request_headers(exchange, request, UnixTime(NOW + 1));
        assert!(matches!(step, Step::Forward(_)), "{step:?}");
    }
    let holds = gw.drain_counts().filter(|c| *c == Count::JwksHold).count();
    assert_eq!(holds, 2);
    // Held once at most: a fetch (the timer's refresh here) that brings no key for the
    // kid ends in a 401.
    let _ = gw.on_tick(UnixTime(NOW + 400));
    let mut held = Exchange::default();
    let forged = format!(
        "Bearer {}",
        token(&next, json!({"alg": "ES256", "header": {"kid": "made-up"}}))
    );
    let request = headers("/api/resources", &[("authorization", &forged)]);
    let step = gw.on_request_headers(&mut held, &request, UnixTime(NOW + 400));
    assert!(matches!(step, Step::Hold(0)), "{step:?}");
    let _ = gw.on_fetch_answer(0, Ok((200, both.as_bytes())), UnixTime(NOW + 400));
    let step = gw.on_request_headers(&mut held, &request, UnixTime(NOW + 400));
    assert_eq!(status(&step), Some(401), "{step:?}");
}

#[test]
fn a_request_waits_for_at_most_one_fetch() {
    let keys = TestKeys::from_seed(1);
    let mut gw = gateway(|_| {});
    let _ = gw.on_tick(UnixTime(NOW));
    let jwks = keys.jwks("").to_string();
    let _ = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    let auth = format!(
        "Bearer {}",
        token(&keys, json!({"alg": "ES256", "header": {"kid": "made-up"}}))
    );
    let request = headers("/api/resources", &[("authorization", &auth)]);
    let mut exchange = Exchange::default();
    let step = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW));
    assert!(matches!(step, Step::Wait(_)), "{step:?}");
    let _ = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    let step = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW));
    assert_eq!(status(&step), Some(401), "{step:?}");
    // Another request with a made-up kid within jwks_refetch_seconds: no fetch, 401.
    let step = gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW + 1));
    assert_eq!(status(&step), Some(401), "{step:?}");
    // A forged signature under a known kid re-fetches too, once the gap has passed.
    let forged = format!(
        "Bearer {}",
        token(&keys, json!({"alg": "ES256", "tamper": "payload"}))
    );
    let request = headers("/api/resources", &[("authorization", &forged)]);
    let later = UnixTime(NOW + 31);
    let mut exchange = Exchange::default();
    assert!(matches!(
        gw.on_request_headers(&mut exchange, &request, later),
        Step::Wait(_)
    ));
    // The request goes away: the fetch is forgotten, the schedule may send another.
    gw.on_abandoned(&mut exchange);
    assert_eq!(exchange.waiting_for(), None);
}

#[test]
fn forged_forwarded_headers_are_removed_and_dry_run_forwards_with_the_denial() {
    let mut gw = gateway(|policy| policy["dry_run"] = json!(true));
    let request = headers(
        "/api/public/docs",
        &[("X-Scopegate-Sub", "admin"), ("x-scopegate-scopes", "root")],
    );
    let Step::Forward(forward) =
        gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW))
    else {
        panic!("a public route goes on")
    };
    assert_eq!(forward.remove, ["x-scopegate-sub", "x-scopegate-scopes"]);
    let request = headers("/api/resources", &[]);
    let Step::Forward(forward) =
        gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW))
    else {
        panic!("dry run lets the denial through")
    };
    let denial = forward.would_deny.expect("the denial, for the log");
    assert_eq!(denial.status, 401);
    let counts: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
    assert!(
        counts.contains(&"dry_run.let_through".to_owned()),
        "{counts:?}"
    );
}

#[test]
fn hostile_header_bytes_are_answered_not_trapped_on() {
    let mut gw = gateway(|_| {});
    let latin1: [(&[u8], &[u8]); 3] = [
        (b":method", b"GET"),
        (b":path", b"/api/public/docs"),
        (b"user-agent", b"M\xfcller"),
    ];
    let step = gw.on_request_headers(&mut Exchange::default(), &latin1, UnixTime(NOW));
    assert!(matches!(step, Step::Forward(_)), "{step:?}");
    for (name, value) in [
        (&b"authorization"[..], &b"Bearer \xff"[..]),
        (b"origin", b"https://\xe9.example"),
        (b":path", b"/api/\xc3"),
    ] {
        let mut request: Vec<(&[u8], &[u8])> = vec![(b":method", b"GET")];
        if name != b":path" {
            request.push((b":path", b"/api/resources"));
        }
        request.push((name, value));
        let step = gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW));
        let Step::Respond(reply) = &step else {
            panic!("{step:?}")
        };
        let response = reply.local_response();
        assert_eq!(response.status, 400, "{name:?}");
        assert!(
            response.body.contains("invalid_request"),
            "{}",
            response.body
        );
    }
}

/// An MCP route: the headers step verifies the token and asks for the body (with the
/// forwarded claims to set now), the body step decides without verifying again, and the
/// host learns when to buffer and when to read.
#[test]
fn an_mcp_route_reads_the_body_and_verifies_the_token_once() {
    use scopegate_core::gateway::BodyProgress;
    let keys = TestKeys::from_seed(1);
    let mut gw = gateway(|policy| {
        // The issuer's audience for every route: no `/mcp` resource of its own.
        policy.as_object_mut().unwrap().remove("resources");
        policy["routes"] = json!([{"path": "/mcp", "mcp": {"max_body_bytes": 100, "rules": [
            {"method": "tools/call", "name": "get-env", "require": "mcp:admin"}]}}]);
    });
    let _ = gw.on_tick(UnixTime(NOW));
    let jwks = keys.jwks("").to_string();
    let _ = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    gw.drain_counts().for_each(drop);
    let auth = format!("Bearer {}", token(&keys, json!({"alg": "ES256"})));
    let mut request = headers("/mcp", &[("authorization", &auth)]);
    request[0].1 = b"POST";
    let mut exchange = Exchange::default();
    let Step::ReadBody { max_bytes, forward } =
        gw.on_request_headers(&mut exchange, &request, UnixTime(NOW))
    else {
        panic!("expected a request for the body")
    };
    assert_eq!(max_bytes, 100);
    assert!(forward
        .set
        .iter()
        .any(|(name, value)| *name == "x-scopegate-sub" && value == "alice"));
    assert_eq!(
        Gateway::body_progress(&exchange, 40, false),
        BodyProgress::Buffer
    );
    assert_eq!(
        Gateway::body_progress(&exchange, 40, true),
        BodyProgress::Read(40)
    );
    assert_eq!(
        Gateway::body_progress(&exchange, 500, false),
        BodyProgress::OverLimit
    );
    assert_eq!(
        Gateway::body_progress(&exchange, 101, true),
        BodyProgress::OverLimit
    );

    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-env"}}"#;
    let step = gw.on_request_body(&mut exchange, &request, body, UnixTime(NOW));
    assert_eq!(status(&step), Some(403));
    let counted: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
    assert_eq!(
        counted,
        [
            "cache.miss",
            "decision.deny_insufficient_scope",
            "missing_scope.mcp:admin"
        ],
        "one verification, one decision"
    );

    // A body over the limit, read one byte past it, is refused.
    let mut exchange = Exchange::default();
    assert!(matches!(
        gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)),
        Step::ReadBody { .. }
    ));
    let step = gw.on_request_body(&mut exchange, &request, &[b' '; 101], UnixTime(NOW));
    assert_eq!(status(&step), Some(413));

    // A body over the limit that the host never read (nginx spools it to a file): 413 too.
    let mut exchange = Exchange::default();
    assert!(matches!(
        gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)),
        Step::ReadBody { .. }
    ));
    let step = gw.on_request_body_over_limit(&mut exchange, &request, UnixTime(NOW));
    assert_eq!(status(&step), Some(413));

    // An allowed call: forwarded, the header changes already made with the headers.
    let mut exchange = Exchange::default();
    let _ = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW));
    let ping = br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let Step::Forward(forward) = gw.on_request_body(&mut exchange, &request, ping, UnixTime(NOW))
    else {
        panic!("expected a pass")
    };
    assert!(forward.set.is_empty() && forward.remove.is_empty());
}

/// A certificate-bound token (RFC 8705 `cnf.x5t#S256`) passes only on a connection whose
/// client certificate has that SHA-256, as the host reports it; the verified principal is
/// cached, and the binding is checked on every request all the same.
#[test]
fn a_certificate_bound_token_needs_its_certificate() {
    let keys = TestKeys::from_seed(1);
    let mut gw = gateway(|policy| {
        policy["issuers"][0]["jwks"] = keys.jwks("");
        policy["issuers"][0]
            .as_object_mut()
            .unwrap()
            .remove("jwks_uri");
        policy["issuers"][0]
            .as_object_mut()
            .unwrap()
            .remove("jwks_cluster");
    });
    let spec = json!({"alg": "ES256", "claims": {"cnf": {"x5t#S256": "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s"}}});
    let auth = format!("Bearer {}", token(&keys, spec));
    let request = headers("/api/resources", &[("authorization", &auth)]);
    let ab = "ab".repeat(32);
    let cd = "cd".repeat(32);
    for (exchange, expected) in [
        (
            Exchange::with_client_certificate_sha256_hex(ab.as_bytes()),
            None,
        ),
        (Exchange::default(), Some(401)),
        (
            Exchange::with_client_certificate_sha256_hex(cd.as_bytes()),
            Some(401),
        ),
        (
            Exchange::with_client_certificate_sha256_hex(b"not hex"),
            Some(401),
        ),
        (
            Exchange::with_client_certificate_sha256_hex(ab.to_uppercase().as_bytes()),
            None,
        ),
    ] {
        let mut exchange = exchange;
        let step = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW));
        assert_eq!(status(&step), expected, "{exchange:?}: {step:?}");
        if let Step::Respond(reply) = &step {
            let response = reply.local_response();
            assert!(
                response
                    .body
                    .contains("bound to a client certificate this connection did not present"),
                "{response:?}"
            );
        }
    }
}

/// A host that can look the certificate up is asked only for a certificate-bound token.
#[test]
fn the_client_certificate_is_looked_up_only_for_a_bound_token() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static LOOKUPS: AtomicUsize = AtomicUsize::new(0);
    fn lookup() -> Option<Vec<u8>> {
        LOOKUPS.fetch_add(1, Ordering::SeqCst);
        Some("ab".repeat(32).into_bytes())
    }
    let keys = TestKeys::from_seed(1);
    let mut gw = gateway(|policy| {
        policy["issuers"][0]["jwks"] = keys.jwks("");
        policy["issuers"][0]
            .as_object_mut()
            .unwrap()
            .remove("jwks_uri");
        policy["issuers"][0]
            .as_object_mut()
            .unwrap()
            .remove("jwks_cluster");
    });
    let plain = format!("Bearer {}", token(&keys, json!({"alg": "ES256"})));
    let bound = |x5t: &str| {
        let spec = json!({"alg": "ES256", "claims": {"cnf": {"x5t#S256": x5t}}});
        format!("Bearer {}", token(&keys, spec))
    };
    let mut decide = |auth: &str| {
        let request = headers("/api/resources", &[("authorization", auth)]);
        let mut exchange = Exchange::with_client_certificate_lookup(lookup);
        status(&gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)))
    };
    assert_eq!(decide(&plain), None);
    assert_eq!(
        LOOKUPS.load(Ordering::SeqCst),
        0,
        "no lookup for a bearer token"
    );
    assert_eq!(
        decide(&bound("q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s")),
        None
    );
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 1);
    assert_eq!(
        decide(&bound("zc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc0")),
        Some(401)
    );
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 2);
    let counts: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
    assert_eq!(
        counts.iter().filter(|c| c.starts_with("cache.")).count(),
        3,
        "one cache lookup per request: {counts:?}"
    );
}

/// A DPoP proof (RFC 9449) is accepted once: the same proof again is a replay, whether the
/// token comes from the cache or not; a fresh proof passes. On an MCP route the proof seen
/// with the headers is the same request's when its body comes, not a replay.
#[test]
fn a_dpop_proof_is_accepted_once() {
    use scopegate_tests::{mint_proof, CLIENT_SEED};
    let keys = TestKeys::from_seed(1);
    let client = TestKeys::from_seed(CLIENT_SEED);
    let mut gw = gateway(|policy| {
        policy["dpop"] = json!({"replay_cache_entries": 4});
        policy.as_object_mut().unwrap().remove("resources");
        policy["routes"] = json!([
            {"path": "/api/resources", "require": "resource:read"},
            {"path": "/mcp", "mcp": {"rules": []}}
        ]);
    });
    let _ = gw.on_tick(UnixTime(NOW));
    let jwks = keys.jwks("").to_string();
    let _ = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    gw.drain_counts().for_each(drop);
    let jwt = token(
        &keys,
        json!({"alg": "ES256", "claims": {"cnf": {"jkt": client.jkt("ES256")}}}),
    );
    let auth = format!("DPoP {jwt}");
    let htu = "http://127.0.0.1:8080/api/resources";
    let proof = |jti: &str| {
        mint_proof(
            &client,
            &json!({"claims": {"jti": jti}}),
            "GET",
            htu,
            &jwt,
            NOW,
        )
    };
    let send = |gw: &mut Gateway, proof: &str| {
        let request = headers(
            "/api/resources",
            &[
                ("authorization", &auth),
                ("dpop", proof),
                (":scheme", "http"),
                (":authority", "127.0.0.1:8080"),
            ],
        );
        let mut exchange = Exchange::default();
        match gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)) {
            Step::Forward(_) => 200,
            Step::Respond(reply) => reply.local_response().status,
            other => panic!("unexpected {other:?}"),
        }
    };
    let first = proof("one");
    assert_eq!(send(&mut gw, &first), 200);
    assert_eq!(
        send(&mut gw, &first),
        401,
        "a replay, with the token cached"
    );
    assert_eq!(send(&mut gw, &proof("two")), 200);
    let counted: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
    assert_eq!(
        counted,
        [
            "cache.miss",
            "decision.allow_authorized",
            "cache.hit",
            "decision.deny_invalid_token",
            "invalid_token.dpop_proof_replayed",
            "cache.hit",
            "decision.allow_authorized",
        ]
    );

    // The MCP route: headers, then body, one proof.
    let mcp_proof = mint_proof(
        &client,
        &json!({}),
        "POST",
        "http://127.0.0.1:8080/mcp",
        &jwt,
        NOW,
    );
    let mut request = headers(
        "/mcp",
        &[
            ("authorization", &auth),
            ("dpop", &mcp_proof),
            (":scheme", "http"),
            (":authority", "127.0.0.1:8080"),
        ],
    );
    request[0].1 = b"POST";
    let mut exchange = Exchange::default();
    assert!(matches!(
        gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)),
        Step::ReadBody { .. }
    ));
    let ping = br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    assert!(matches!(
        gw.on_request_body(&mut exchange, &request, ping, UnixTime(NOW)),
        Step::Forward(_)
    ));
    // The same proof on a new request is a replay.
    let mut exchange = Exchange::default();
    let step = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW));
    assert_eq!(status(&step), Some(401));
}

/// The example policy whose issuer introspects opaque tokens at cluster `idp`.
fn introspecting_gateway(introspection: Value) -> Gateway {
    gateway(|policy| {
        let mut settings = json!({"endpoint": "http://127.0.0.1:9/introspect",
            "cluster": "idp", "client_id": "gateway", "client_secret": "s3cret:pass"});
        if let (Some(settings), Value::Object(more)) = (settings.as_object_mut(), introspection) {
            settings.extend(more);
        }
        policy["issuers"][0]["introspection"] = settings;
    })
}

fn active_answer(scope: &str) -> String {
    json!({"active": true, "scope": scope, "aud": "http://127.0.0.1:8080", "sub": "alice",
           "iss": "https://idp.scopegate.test", "exp": NOW + 3600, "client_id": "spa"})
    .to_string()
}

/// An opaque token goes to the introspection endpoint once: the call carries the token
/// form-encoded and the gateway's credentials; the active answer decides the request and
/// every later one with the token, until `cache_seconds`.
#[test]
fn an_opaque_token_is_introspected_once_and_its_answer_kept() {
    let mut gw = introspecting_gateway(json!({"cache_seconds": 60}));
    let request = headers(
        "/api/resources",
        &[("authorization", "Bearer 2YotnF+ZFEjr1zCsicMWpAA")],
    );
    let mut exchange = Exchange::default();
    let Step::Introspect(call) = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW))
    else {
        panic!("expected an introspection call")
    };
    assert_eq!(
        (call.cluster, call.path, call.authority),
        ("idp", "/introspect", "127.0.0.1:9")
    );
    assert_eq!(
        call.body,
        "token=2YotnF%2BZFEjr1zCsicMWpAA&token_type_hint=access_token"
    );
    // RFC 6749 §2.3.1: base64 of the form-encoded "gateway:s3cret%3Apass".
    assert_eq!(
        call.headers[2],
        ("authorization", "Basic Z2F0ZXdheTpzM2NyZXQlM0FwYXNz")
    );
    let (ticket, issuer) = (call.ticket, call.issuer);
    assert_eq!(exchange.introspection(), Some(ticket));
    let answer = active_answer("resource:read");
    let outcome =
        gw.on_introspection_answer(ticket, issuer, Ok((200, answer.as_bytes())), UnixTime(NOW));
    assert!(outcome.refused.is_none(), "{outcome}");
    let Step::Forward(forward) = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW))
    else {
        panic!("expected the request to go on")
    };
    assert_eq!(forward.set[0], ("x-scopegate-sub", "alice".to_owned()));
    // Another request with the token: no call; a scope the answer lacks is a 403.
    let write = headers(
        "/api/resources/7",
        &[("authorization", "Bearer 2YotnF+ZFEjr1zCsicMWpAA")],
    );
    let mut write = write;
    write[0].1 = b"PUT";
    let step = gw.on_request_headers(&mut Exchange::default(), &write, UnixTime(NOW + 59));
    assert_eq!(status(&step), Some(403));
    // Past `cache_seconds` it is introspected again.
    let step = gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW + 61));
    assert!(matches!(step, Step::Introspect(_)), "{step:?}");
    let counts: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
    assert_eq!(
        counts,
        [
            "introspection.call",
            "introspection.active",
            "introspection.hit",
            "decision.allow_authorized",
            "introspection.hit",
            "decision.deny_insufficient_scope",
            "missing_scope.resource:write",
            "introspection.call",
        ]
    );
}

/// Inactive answers, failures and garbage are refusals, never passes; an inactive answer is
/// kept for `inactive_cache_seconds`, a failure for one second.
#[test]
fn an_introspection_that_fails_or_says_inactive_refuses_the_token() {
    type Answer = Result<(u16, &'static [u8]), ()>;
    let cases: [(Answer, &str); 8] = [
        (Ok((200, br#"{"active": false}"#)), "token_inactive"),
        (Err(()), "introspection_unavailable"),
        (Ok((500, b"oops")), "introspection_unavailable"),
        (
            Ok((401, br#"{"error":"invalid_client"}"#)),
            "introspection_unavailable",
        ),
        (Ok((200, b"<html>")), "introspection_unavailable"),
        (
            Ok((200, br#"{"active": "true"}"#)),
            "introspection_unavailable",
        ),
        (
            Ok((200, br#"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]"#)),
            "introspection_unavailable",
        ),
        (
            Ok((
                200,
                br#"{"active": true, "iss": "https://evil", "aud": "http://127.0.0.1:8080"}"#,
            )),
            "untrusted_issuer",
        ),
    ];
    for (answer, code) in cases {
        let mut gw = introspecting_gateway(json!({"inactive_cache_seconds": 5}));
        let request = headers("/api/resources", &[("authorization", "Bearer opaque-1")]);
        let mut exchange = Exchange::default();
        let Step::Introspect(call) = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW))
        else {
            panic!("expected an introspection call")
        };
        let (ticket, issuer) = (call.ticket, call.issuer);
        let _ = gw.on_introspection_answer(ticket, issuer, answer, UnixTime(NOW));
        let step = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW));
        let Step::Respond(reply) = &step else {
            panic!("{code}: expected a refusal, got {step:?}")
        };
        let response = reply.local_response();
        assert_eq!(response.status, 401, "{code}");
        let challenge = &response
            .headers
            .iter()
            .find(|(n, _)| *n == "www-authenticate")
            .unwrap()
            .1;
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{code}: {challenge}"
        );
        gw.drain_counts().for_each(drop);
        // Kept: a second request makes no call.
        let again = gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW + 1));
        assert_eq!(status(&again), Some(401), "{code}");
        let counts: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
        assert_eq!(counts[0], "introspection.hit", "{code}");
        assert_eq!(counts[2], format!("invalid_token.{code}"), "{code}");
        // A failure is retried after a second; an inactive answer after five.
        let later = gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW + 2));
        assert_eq!(
            matches!(later, Step::Introspect(_)),
            code == "introspection_unavailable",
            "{code}: {later:?}"
        );
    }
}

/// Concurrent requests with one token wait on one call; when the request that sent it
/// goes away, one of the parked ones introspects anew.
#[test]
fn concurrent_requests_with_one_token_wait_on_one_introspection_call() {
    let mut gw = introspecting_gateway(json!({}));
    let request = headers("/api/resources", &[("authorization", "Bearer opaque-2")]);
    let mut first = Exchange::default();
    let Step::Introspect(call) = gw.on_request_headers(&mut first, &request, UnixTime(NOW)) else {
        panic!("expected an introspection call")
    };
    let (ticket, issuer) = (call.ticket, call.issuer);
    let mut parked: Vec<Exchange> = (1..4)
        .map(|id| Exchange::default().for_request(RequestId(id)))
        .collect();
    for exchange in &mut parked {
        let step = gw.on_request_headers(exchange, &request, UnixTime(NOW));
        assert!(matches!(step, Step::Park(t) if t == ticket), "{step:?}");
        assert!(exchange.is_kept(), "the host looks it up by id from now on");
    }
    assert!(!first.is_kept(), "the sender waits in its own context");
    assert!(
        gw.take_ready(UnixTime(NOW)).is_empty(),
        "the call is in flight"
    );
    // The third parked request goes away: it is never handed back.
    gw.on_abandoned(&mut parked[2]);
    // The first request goes away: its call is forgotten and the parked ones are ready.
    gw.on_abandoned(&mut first);
    assert_eq!(gw.take_ready(UnixTime(NOW)), [RequestId(1), RequestId(2)]);
    // Fed again from the event of the request gone, one that needs a call of its own is
    // deferred to the timer, where it sends it.
    let step = gw.on_request_headers(&mut parked[0], &request, UnixTime(NOW));
    assert!(matches!(step, Step::Defer), "{step:?}");
    assert_eq!(gw.take_deferred(), [RequestId(1)]);
    let Step::Introspect(retry) = gw.on_request_headers(&mut parked[0], &request, UnixTime(NOW))
    else {
        panic!("expected a new call")
    };
    let retry = (retry.ticket, retry.issuer);
    assert_ne!(retry.0, ticket);
    let step = gw.on_request_headers(&mut parked[1], &request, UnixTime(NOW));
    assert!(matches!(step, Step::Park(t) if t == retry.0), "{step:?}");
    let answer = active_answer("resource:read");
    let _ = gw.on_introspection_answer(
        retry.0,
        retry.1,
        Ok((200, answer.as_bytes())),
        UnixTime(NOW),
    );
    // The timer's call belongs to no request: both wait for it as parked ones.
    assert_eq!(gw.take_ready(UnixTime(NOW)), [RequestId(1), RequestId(2)]);
    // The late answer of the abandoned call changes nothing.
    let _ = gw.on_introspection_answer(
        ticket,
        issuer,
        Ok((200, br#"{"active":false}"#)),
        UnixTime(NOW),
    );
    for exchange in &mut parked[..2] {
        let step = gw.on_request_headers(exchange, &request, UnixTime(NOW));
        assert!(matches!(step, Step::Forward(_)), "{step:?}");
    }
    // A request that already waited twice is not parked a third time.
    let mut impatient = Exchange::default();
    let token = "Bearer opaque-3";
    let other = headers("/api/resources", &[("authorization", token)]);
    let _ = gw.on_request_headers(&mut impatient, &other, UnixTime(NOW));
    gw.on_abandoned(&mut impatient);
    let _ = gw.on_request_headers(&mut impatient, &other, UnixTime(NOW));
    gw.on_abandoned(&mut impatient);
    let step = gw.on_request_headers(&mut impatient, &other, UnixTime(NOW));
    assert_eq!(status(&step), Some(401), "{step:?}");
}

/// JWTs are verified locally unless the issuer introspects `all` its tokens; the client
/// secret never shows in a policy error or a debug print.
#[test]
fn jwts_are_introspected_only_when_the_issuer_says_all_and_secrets_stay_hidden() {
    let keys = TestKeys::from_seed(1);
    let jwt = format!("Bearer {}", token(&keys, json!({"alg": "ES256"})));
    let request = headers("/api/resources", &[("authorization", &jwt)]);
    let mut opaque_only = introspecting_gateway(json!({}));
    let step = opaque_only.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW));
    assert!(
        matches!(step, Step::Wait(_)),
        "a JWT waits for its keys: {step:?}"
    );
    let mut all = introspecting_gateway(json!({"tokens": "all"}));
    let step = all.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW));
    assert!(matches!(step, Step::Introspect(_)), "{step:?}");
    assert!(
        !format!("{all:?}").contains("s3cret"),
        "the secret in a debug print"
    );
    let mut policy = example_policy_with_remote_keys("http://127.0.0.1:1/jwks", "jwks");
    policy["issuers"][0]["introspection"] = json!({"endpoint": "ftp://x", "cluster": "idp",
        "client_id": "gateway", "client_secret": "s3cret"});
    let err = Policy::from_json(&policy.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("issuers[0].introspection.endpoint"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

/// With `dpop.nonce`, a proof without the gateway's nonce is answered `use_dpop_nonce` with a
/// fresh `DPoP-Nonce` header; a proof carrying it passes, also in the next window, and not
/// after (RFC 9449 §9).
#[test]
fn a_dpop_nonce_is_handed_out_and_then_required() {
    use scopegate_tests::{mint_proof, CLIENT_SEED};
    let keys = TestKeys::from_seed(1);
    let client = TestKeys::from_seed(CLIENT_SEED);
    let mut gw = gateway(|policy| {
        policy["dpop"] = json!({"nonce": {"secret": "c2NvcGVnYXRlLWRwb3Atbm9uY2Utc2VjcmV0LTMyYnk",
                                          "lifetime_seconds": 30}});
        policy.as_object_mut().unwrap().remove("resources");
    });
    let _ = gw.on_tick(UnixTime(NOW));
    let jwks = keys.jwks("").to_string();
    let _ = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    let jwt = token(
        &keys,
        json!({"alg": "ES256", "claims": {"cnf": {"jkt": client.jkt("ES256")}}}),
    );
    let auth = format!("DPoP {jwt}");
    let htu = "http://127.0.0.1:8080/api/resources";
    let mut send = |claims: Value, at: u64| {
        let proof = mint_proof(&client, &json!({"claims": claims}), "GET", htu, &jwt, at);
        let request = headers(
            "/api/resources",
            &[
                ("authorization", &auth),
                ("dpop", &proof),
                (":scheme", "http"),
                (":authority", "127.0.0.1:8080"),
            ],
        );
        match gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(at)) {
            Step::Forward(_) => (200, None, String::new()),
            Step::Respond(reply) => {
                let response = reply.local_response();
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.to_string())
                };
                (
                    response.status,
                    header("dpop-nonce"),
                    header("www-authenticate").unwrap_or_default(),
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    let (status, nonce, challenge) = send(json!({"jti": "a"}), NOW);
    assert_eq!(status, 401);
    assert!(
        challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let nonce = nonce.expect("a DPoP-Nonce header");
    assert_eq!(send(json!({"jti": "b", "nonce": nonce}), NOW).0, 200);
    assert_eq!(
        send(json!({"jti": "c", "nonce": nonce}), NOW + 30).0,
        200,
        "the next window"
    );
    let (status, fresh, _) = send(json!({"jti": "d", "nonce": nonce}), NOW + 60);
    assert_eq!(status, 401, "two windows later");
    assert_ne!(fresh.as_deref(), Some(nonce.as_str()), "a new nonce");
}

/// With `private_key_jwt` the call carries an RFC 7523 client assertion signed with the
/// gateway's Ed25519 key (no `authorization` header): for the gateway's client id, at the
/// endpoint, a `jti` per call.
#[test]
fn a_private_key_jwt_introspection_call_carries_a_signed_assertion() {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use ed25519_dalek::Verifier;
    let keys = TestKeys::from_seed(3);
    let private_key = json!({"kty": "OKP", "crv": "Ed25519", "kid": "gw-1",
        "d": Base64UrlUnpadded::encode_string(&keys.ed.to_bytes()),
        "x": Base64UrlUnpadded::encode_string(keys.ed.verifying_key().as_bytes())});
    let mut gw = gateway(|policy| {
        policy["issuers"][0]["introspection"] = json!({
            "endpoint": "http://127.0.0.1:9/token/introspection", "cluster": "idp",
            "client_id": "gateway", "auth_method": "private_key_jwt",
            "private_key": private_key});
    });
    assert!(
        !format!("{gw:?}").contains(private_key["d"].as_str().unwrap()),
        "the key in a debug print"
    );
    let mut jtis = Vec::new();
    for token in ["opaque-a", "opaque-b"] {
        let auth = format!("Bearer {token}");
        let request = headers("/api/resources", &[("authorization", &auth)]);
        let Step::Introspect(call) =
            gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW))
        else {
            panic!("expected an introspection call")
        };
        assert!(call
            .headers
            .iter()
            .all(|(name, _)| *name != "authorization"));
        let form: std::collections::HashMap<String, String> = call
            .body
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":")))
            .collect();
        assert_eq!(form["token"], token);
        assert_eq!(form["client_id"], "gateway");
        assert_eq!(
            form["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let assertion = &form["client_assertion"];
        let (input, signature) = assertion.rsplit_once('.').unwrap();
        let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        keys.ed
            .verifying_key()
            .verify(input.as_bytes(), &signature)
            .expect("signed by the gateway's key");
        let (header, claims) = input.split_once('.').unwrap();
        let header: Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(header).unwrap()).unwrap();
        let claims: Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(claims).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": "gw-1"}));
        assert_eq!(claims["iss"], "gateway");
        assert_eq!(claims["sub"], "gateway");
        assert_eq!(claims["aud"], "http://127.0.0.1:9/token/introspection");
        assert_eq!(claims["exp"], json!(NOW + 60));
        jtis.push(claims["jti"].clone());
    }
    assert_ne!(jtis[0], jtis[1], "a jti per call");
}

/// The assertion is signed with ES256 or RS256 when the gateway's key is a P-256 or an RSA
/// private JWK; the signatures verify with the public keys (checked here by jwt-compact's
/// p256 and rsa crates, not the core's verifiers).
#[test]
fn private_key_jwt_assertions_are_signed_with_es256_and_rs256_keys() {
    use jwt_compact::alg::{Es256, Rsa};
    use jwt_compact::{AlgorithmExt, UntrustedToken};
    let keys = TestKeys::from_seed(4);
    for alg in ["ES256", "RS256"] {
        let (private_key, _) = keys.private_jwk(alg, "gw-2");
        let mut gw = gateway(|policy| {
            policy["issuers"][0]["introspection"] = json!({
                "endpoint": "http://127.0.0.1:9/token/introspection", "cluster": "idp",
                "client_id": "gateway", "auth_method": "private_key_jwt",
                "private_key": private_key});
        });
        let printed = format!("{gw:?}");
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            if let Some(secret) = private_key[member].as_str() {
                assert!(
                    !printed.contains(secret),
                    "{alg}: `{member}` in a debug print"
                );
            }
        }
        let mut assertions = Vec::new();
        for token in ["opaque-a", "opaque-b"] {
            let auth = format!("Bearer {token}");
            let request = headers("/api/resources", &[("authorization", &auth)]);
            let Step::Introspect(call) =
                gw.on_request_headers(&mut Exchange::default(), &request, UnixTime(NOW))
            else {
                panic!("{alg}: expected an introspection call")
            };
            let assertion = call
                .body
                .split('&')
                .find_map(|pair| pair.strip_prefix("client_assertion="))
                .unwrap()
                .to_owned();
            let token = UntrustedToken::new(&assertion).unwrap();
            assert_eq!(token.algorithm(), alg);
            assert_eq!(token.header().key_id.as_deref(), Some("gw-2"));
            let claims = match alg {
                "ES256" => Es256
                    .validator::<Value>(keys.ec.verifying_key())
                    .validate(&token),
                _ => Rsa::rs256()
                    .validator::<Value>(&keys.rsa.to_public_key())
                    .validate(&token),
            }
            .unwrap_or_else(|e| panic!("{alg}: {e}"))
            .claims()
            .custom
            .clone();
            assert_eq!(claims["aud"], "http://127.0.0.1:9/token/introspection");
            assertions.push(assertion);
        }
        assert_ne!(assertions[0], assertions[1], "{alg}: a jti per call");
    }
}

/// A private key's `alg`, if given, must be its type's; a key that does not match its
/// public members is refused when the policy is read, naming the member, never its bytes.
#[test]
fn a_private_key_of_the_wrong_alg_or_not_matching_its_public_key_is_refused() {
    let keys = TestKeys::from_seed(4);
    let other = TestKeys::from_seed(5);
    let load = |private_key: &Value| {
        let mut policy = example_policy_with_remote_keys("http://127.0.0.1:1/jwks", "jwks");
        policy["issuers"][0]["introspection"] = json!({
            "endpoint": "http://127.0.0.1:9/token/introspection", "cluster": "idp",
            "client_id": "gateway", "auth_method": "private_key_jwt",
            "private_key": private_key});
        Policy::from_json(&policy.to_string())
            .unwrap_err()
            .to_string()
    };
    let (mut ec, _) = keys.private_jwk("ES256", "gw");
    ec["alg"] = json!("RS256");
    let error = load(&ec);
    assert!(error.contains("introspection.private_key.alg"), "{error}");
    assert!(error.contains("`ES256`"), "{error}");
    let (mut ec, _) = keys.private_jwk("ES256", "gw");
    ec["d"] = other.private_jwk("ES256", "gw").0["d"].clone();
    let error = load(&ec);
    assert!(
        error.contains("private_key.d: does not match `x` and `y`"),
        "{error}"
    );
    assert!(!error.contains(ec["d"].as_str().unwrap()), "{error}");
    let (mut rsa, _) = keys.private_jwk("RS256", "gw");
    rsa["dp"] = other.private_jwk("RS256", "gw").0["dp"].clone();
    let error = load(&rsa);
    assert!(error.contains("do not match `n` and `e`"), "{error}");
    let (mut rsa, _) = keys.private_jwk("RS256", "gw");
    rsa.as_object_mut().unwrap().remove("qi");
    let error = load(&rsa);
    assert!(error.contains("private_key.qi: is required"), "{error}");
}

/// With `jwt_response` (RFC 9701) only an answer the issuer signed, typed
/// `token-introspection+jwt`, for the gateway's client id, is taken; a plain JSON answer or
/// one for another audience is no answer.
#[test]
fn signed_introspection_answers_wait_for_the_issuers_first_keys() {
    // No tick yet: the keys are fetched first (with this request), then the call goes out.
    let mut gw = introspecting_gateway(json!({"jwt_response": true}));
    let request = headers("/api/resources", &[("authorization", "Bearer opaque-9")]);
    let mut exchange = Exchange::default();
    let issuer = match gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)) {
        Step::Wait(fetch) => fetch.issuer,
        step => panic!("expected a key fetch before the introspection call: {step:?}"),
    };
    let jwks = TestKeys::from_seed(1).jwks("").to_string();
    let _ = gw.on_fetch_answer(issuer, Ok((200, jwks.as_bytes())), UnixTime(NOW));
    assert!(matches!(
        gw.on_request_headers(&mut exchange, &request, UnixTime(NOW)),
        Step::Introspect(_)
    ));
}

#[test]
fn a_signed_introspection_answer_is_verified_with_the_issuers_keys() {
    let keys = TestKeys::from_seed(1);
    let answer_of = |typ: &str, aud: &str| {
        let header = json!({"alg": "ES256", "kid": "ec-1", "typ": typ});
        let claims = json!({"iss": "https://idp.scopegate.test", "aud": aud, "iat": NOW,
            "token_introspection": serde_json::from_str::<Value>(&active_answer("resource:read")).unwrap()});
        keys.sign(&header, &claims, "ES256")
    };
    let cases = [
        (answer_of("token-introspection+jwt", "gateway"), true),
        (answer_of("token-introspection+jwt", "someone-else"), false),
        (answer_of("JWT", "gateway"), false),
        (active_answer("resource:read"), false),
    ];
    for (body, passes) in cases {
        let mut gw = introspecting_gateway(json!({"jwt_response": true}));
        let _ = gw.on_tick(UnixTime(NOW));
        let jwks = keys.jwks("").to_string();
        let _ = gw.on_fetch_answer(0, Ok((200, jwks.as_bytes())), UnixTime(NOW));
        let request = headers("/api/resources", &[("authorization", "Bearer opaque-9")]);
        let mut exchange = Exchange::default();
        let Step::Introspect(call) = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW))
        else {
            panic!("expected an introspection call")
        };
        assert_eq!(
            call.headers[1],
            ("accept", "application/token-introspection+jwt")
        );
        let (ticket, issuer) = (call.ticket, call.issuer);
        let _ =
            gw.on_introspection_answer(ticket, issuer, Ok((200, body.as_bytes())), UnixTime(NOW));
        let step = gw.on_request_headers(&mut exchange, &request, UnixTime(NOW));
        assert_eq!(matches!(step, Step::Forward(_)), passes, "{body}: {step:?}");
    }
}

/// Over the issuer's introspection budget an unknown token gets 503 with `Retry-After` (it
/// may be valid), counted as `introspection.over_budget`; a token whose answer is kept still
/// passes, and the budget comes back with the next second and with answered calls.
#[test]
fn an_unknown_token_over_the_introspection_budget_gets_503_and_kept_ones_pass() {
    let mut gw =
        introspecting_gateway(json!({"max_calls_per_second": 2, "max_calls_in_flight": 1}));
    let now = UnixTime(NOW);
    type Local = Option<(u16, Vec<(String, String)>)>;
    let feed = |gw: &mut Gateway, token: &str, exchange: &mut Exchange, at: UnixTime| {
        let auth = format!("Bearer {token}");
        let request = headers("/api/resources", &[("authorization", &auth)]);
        match gw.on_request_headers(exchange, &request, at) {
            Step::Introspect(call) => Err((call.ticket, call.issuer)),
            Step::Respond(reply) => {
                let response = reply.local_response();
                let headers = response.headers.iter();
                let headers = headers.map(|(n, v)| (n.to_string(), v.to_string()));
                Ok::<Local, _>(Some((response.status, headers.collect())))
            }
            _ => Ok(None),
        }
    };
    // One call in flight: the next unknown token is over budget.
    let mut first = Exchange::default();
    let (ticket, issuer) = feed(&mut gw, "opaque-a", &mut first, now).unwrap_err();
    let busy = feed(&mut gw, "opaque-b", &mut Exchange::default(), now).unwrap();
    let (status, headers) = busy.expect("answered locally");
    assert_eq!(status, 503);
    assert!(
        headers.contains(&("retry-after".into(), "1".into())),
        "{headers:?}"
    );
    assert!(
        !headers.iter().any(|(n, _)| n == "www-authenticate"),
        "{headers:?}"
    );
    let answer = br#"{"active": true, "scope": "resource:read", "aud": "http://127.0.0.1:8080"}"#;
    let _ = gw.on_introspection_answer(ticket, issuer, Ok((200, answer)), now);
    // The answered call is no longer in flight: a second call this second is allowed...
    let (ticket, issuer) = feed(&mut gw, "opaque-c", &mut Exchange::default(), now).unwrap_err();
    let _ = gw.on_introspection_answer(ticket, issuer, Ok((200, answer)), now);
    // ... a third is not; the kept answer still passes.
    let third = feed(&mut gw, "opaque-d", &mut Exchange::default(), now).unwrap();
    assert_eq!(third.map(|(status, _)| status), Some(503));
    let kept = feed(&mut gw, "opaque-a", &mut Exchange::default(), now).unwrap();
    assert_eq!(kept, None, "the kept answer passes");
    let counts: Vec<String> = gw.drain_counts().map(|c| c.to_string()).collect();
    assert_eq!(
        counts
            .iter()
            .filter(|c| *c == "introspection.over_budget")
            .count(),
        2,
        "{counts:?}"
    );
    // The next second has a budget again.
    assert!(feed(
        &mut gw,
        "opaque-d",
        &mut Exchange::default(),
        UnixTime(NOW + 1)
    )
    .is_err());
}

/// A request fed again from another's event that needs a call is deferred to the timer
/// without spending one of its stops, however often that happens.
#[test]
fn a_deferred_introspection_call_is_sent_from_the_timer() {
    let mut gw = introspecting_gateway(json!({}));
    for round in 0..4 {
        // A token per round: the timer's call of the round before is still in flight.
        let token = format!("Bearer opaque-deferred-{round}");
        let request = headers("/api/resources", &[("authorization", &token)]);
        let mut sender = Exchange::default().for_request(RequestId(100 + round));
        let step = gw.on_request_headers(&mut sender, &request, UnixTime(NOW));
        assert!(matches!(step, Step::Introspect(_)), "{step:?}");
        let mut parked = Exchange::default().for_request(RequestId(round));
        let step = gw.on_request_headers(&mut parked, &request, UnixTime(NOW));
        assert!(matches!(step, Step::Park(_)), "{step:?}");
        gw.on_abandoned(&mut sender);
        assert_eq!(gw.take_ready(UnixTime(NOW)), [RequestId(round)]);
        let step = gw.on_request_headers(&mut parked, &request, UnixTime(NOW));
        assert!(matches!(step, Step::Defer), "{step:?}");
        assert!(gw.has_deferred());
        assert_eq!(gw.take_deferred(), [RequestId(round)]);
        let step = gw.on_request_headers(&mut parked, &request, UnixTime(NOW));
        assert!(
            matches!(step, Step::Introspect(_)),
            "round {round}: {step:?}"
        );
        gw.on_abandoned(&mut parked);
        assert!(!gw.has_waiting(), "round {round}");
    }
}
