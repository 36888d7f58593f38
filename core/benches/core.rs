//! Criterion benchmarks of the core, natively: a decision on policies of 10, 100 and 1,000
//! routes (budget: under 1 µs on 1,000), the token path per signature algorithm,
//! and the token cache the gateway puts in front of it.
//!
//! `cargo bench -p scopegate-core --bench core` (`./scripts/bench` runs it). Built alone, the
//! core's `rsa` dependency has the same features as in the filter, so these figures are
//! the native side of the filter-vs-native comparison that `bench/` makes in V8.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use scopegate_core::decode_token as decode;
use scopegate_core::gateway::Gateway;
use scopegate_core::{Decision, KeyStore, TokenError};

fn decisions_json() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/decisions.json"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Route match and scope check with the principal already verified (a token cache hit), on
/// policies of growing size: allowed (forwarded headers built) and denied (challenge and
/// JSON body built).
fn decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    for n in [10, 100, 1_000] {
        let policy = support::routes_policy(n);
        let path = support::routes_request_path(n);
        let authorization = ["Bearer t"];
        let request = support::request(&path, &authorization);
        let holder = support::principal(&format!("openid {}", support::routes_scope(n)));
        let stranger = support::principal("openid");
        let now = scopegate_core::UnixTime(0);
        assert!(matches!(
            policy.decide_with(&request, now, |_| Ok::<_, TokenError>(&holder)),
            Decision::Allow(_)
        ));
        group.bench_with_input(BenchmarkId::new("allow", n), &n, |b, _| {
            b.iter(|| {
                policy.decide_with(black_box(&request), now, |_| {
                    Ok::<_, TokenError>(black_box(&holder))
                })
            })
        });
        assert_eq!(
            policy
                .decide_with(&request, now, |_| Ok::<_, TokenError>(&stranger))
                .status(),
            Some(403)
        );
        group.bench_with_input(BenchmarkId::new("deny_403", n), &n, |b, _| {
            b.iter(|| {
                policy.decide_with(black_box(&request), now, |_| {
                    Ok::<_, TokenError>(black_box(&stranger))
                })
            })
        });
    }
    group.finish();
}

/// The token path of the core per algorithm: decoding alone, then `Policy::authenticate`
/// (decode, RFC 8725 checks, signature, claims, scopes), then a whole `Policy::decide` of
/// the example policy's `GET /api/resources` (what the filter does per request with its
/// cache off), and a whole request through the core's `Gateway` with a warm token cache, fed
/// the header bytes Envoy hands the filter (cache on).
fn token(c: &mut Criterion) {
    let example = support::example(&decisions_json());
    let (policy, now) = (&example.policy, example.now);
    let keys = KeyStore::default();
    let mut group = c.benchmark_group("token");
    for (alg, token) in &example.tokens {
        let token = token.as_str();
        policy
            .authenticate(token, &keys, now)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        group.bench_function(BenchmarkId::new("decode", alg), |b| {
            b.iter(|| decode(black_box(token)))
        });
        group.bench_function(BenchmarkId::new("authenticate", alg), |b| {
            b.iter(|| policy.authenticate(black_box(token), &keys, now))
        });
        let header = format!("Bearer {token}");
        let authorization = [header.as_str()];
        let request = support::request("/api/resources", &authorization);
        assert!(matches!(
            policy.decide(&request, &keys, now),
            Decision::Allow(_)
        ));
        group.bench_function(BenchmarkId::new("decide_uncached", alg), |b| {
            b.iter(|| policy.decide(black_box(&request), &keys, now))
        });
        // The whole request path of the filter, minus host calls: the gateway with a warm
        // token cache, fed the header bytes Envoy hands over.
        let mut gateway = Gateway::new(support::example(&decisions_json()).policy);
        let pairs = support::header_pairs("/api/resources", &header);
        let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert!(support::through_gateway(&mut gateway, &pairs, now), "{alg}");
        group.bench_function(BenchmarkId::new("gateway_cached", alg), |b| {
            b.iter(|| support::through_gateway(&mut gateway, black_box(&pairs), now))
        });
    }
    group.finish();
}

/// What an MCP route's decision costs beside a REST route's on the same policy (the
/// principal already verified): reading and checking the JSON-RPC body of one `tools/call`,
/// of a batch of ten, and of one call with a 64 KiB argument.
fn mcp(c: &mut Criterion) {
    let vectors: serde_json::Value =
        serde_json::from_str(&decisions_json()).unwrap_or_else(|e| panic!("decisions.json: {e}"));
    let suite = vectors["suites"]
        .as_array()
        .and_then(|suites| suites.iter().find(|s| s["name"] == "mcp"))
        .unwrap_or_else(|| panic!("decisions.json has no mcp suite"));
    // The vectors' policy with a limit that admits the 64 KiB body.
    let mut document = suite["policy"].clone();
    document["routes"][0]["mcp"]["max_body_bytes"] = serde_json::json!(1 << 20);
    let policy = scopegate_core::Policy::from_json(&document.to_string())
        .unwrap_or_else(|e| panic!("mcp policy: {e}"));
    let holder = support::principal("mcp:tools api");
    let now = scopegate_core::UnixTime(0);
    let authorization = ["Bearer t"];
    let call = |id: usize, message: &str| {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                           "params": {"name": "echo", "arguments": {"message": message}}})
    };
    let one = call(1, "hello").to_string();
    let batch = serde_json::Value::Array((0..10).map(|i| call(i, "hello")).collect()).to_string();
    let large = call(1, &"x".repeat(64 << 10)).to_string();
    let mut group = c.benchmark_group("mcp");
    let rest = support::request("/api/x", &authorization);
    group.bench_function("rest_route", |b| {
        b.iter(|| policy.decide_with(black_box(&rest), now, |_| Ok::<_, TokenError>(&holder)))
    });
    for (name, body) in [
        ("tools_call", &one),
        ("batch_of_10", &batch),
        ("call_64KiB", &large),
    ] {
        let mut request = support::request("/mcp", &authorization).with_body(body.as_bytes());
        request.method = "POST";
        let decision = policy.decide_with(&request, now, |_| Ok::<_, TokenError>(&holder));
        assert!(
            matches!(decision, Decision::Allow(_)),
            "{name}: {decision:?}"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                policy.decide_with(black_box(&request), now, |_| Ok::<_, TokenError>(&holder))
            })
        });
    }
    group.finish();
}

/// What a DPoP-bound request costs beside its token (RFC 9449): the proof's cheap checks,
/// its key's thumbprint, `ath` and the proof signature, per proof algorithm, with the token
/// already verified (a cache hit); the vectors' own proofs. And what an introspected token
/// costs once its answer is kept (a hit, through the gateway), and reading an answer (a
/// miss, without the network round trip).
fn bound_and_introspected(c: &mut Criterion) {
    let vectors: serde_json::Value =
        serde_json::from_str(&decisions_json()).unwrap_or_else(|e| panic!("decisions.json: {e}"));
    let suite = vectors["suites"]
        .as_array()
        .and_then(|suites| suites.iter().find(|s| s["name"] == "dpop"))
        .unwrap_or_else(|| panic!("decisions.json has no dpop suite"));
    let policy = scopegate_core::Policy::from_json(&suite["policy"].to_string())
        .unwrap_or_else(|e| panic!("dpop policy: {e}"));
    let now = scopegate_core::UnixTime(suite["now"].as_u64().unwrap_or_default());
    let keys = KeyStore::default();
    let mut group = c.benchmark_group("dpop");
    for (alg, name) in [
        (
            "ES256",
            "dpop: a DPoP-bound token with its ES256 proof passes",
        ),
        ("EdDSA", "dpop: an EdDSA proof key"),
        ("RS256", "dpop: an RS256 proof key"),
        ("PS256", "dpop: a PS256 proof key"),
    ] {
        let case = suite["cases"]
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no case `{name}`"));
        let text = |field: &str| {
            case["request"][field]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let first = |field: &str| {
            case["request"][field][0]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let (authorization, proof) = (first("authorization"), first("dpop"));
        let (method, path) = (text("method"), text("path"));
        let (scheme, authority) = (text("scheme"), text("authority"));
        let token = authorization.trim_start_matches("DPoP ");
        let holder = policy
            .authenticate(token, &keys, now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let authorization = [authorization.as_str()];
        let proofs = [proof.as_str()];
        let request = scopegate_core::Request::new(&method, &path)
            .with_authorization(&authorization)
            .with_dpop(&proofs)
            .with_scheme_and_authority(&scheme, &authority);
        let decision = policy.decide_with(&request, now, |_| Ok::<_, TokenError>(&holder));
        assert!(
            matches!(decision, Decision::Allow(_)),
            "{name}: {decision:?}"
        );
        group.bench_function(BenchmarkId::new("proof_checked", alg), |b| {
            b.iter(|| {
                policy.decide_with(black_box(&request), now, |_| Ok::<_, TokenError>(&holder))
            })
        });
    }
    group.finish();

    let mut document: serde_json::Value =
        serde_json::from_str(&support::example_policy_text(&decisions_json()))
            .unwrap_or_else(|e| panic!("example policy: {e}"));
    if let Some(document) = document.as_object_mut() {
        document.remove("resources");
    }
    document["issuers"][0]["introspection"] = serde_json::json!({
        "endpoint": "http://127.0.0.1:9000/introspect", "cluster": "idp",
        "client_id": "gateway", "client_secret": "secret"});
    let policy = scopegate_core::Policy::from_json(&document.to_string())
        .unwrap_or_else(|e| panic!("introspecting policy: {e}"));
    let now = scopegate_core::UnixTime(1_767_225_600);
    let answer = serde_json::json!({"active": true, "scope": "resource:read openid",
        "aud": "http://127.0.0.1:8080", "sub": "alice", "client_id": "spa",
        "iss": "https://idp.scopegate.test", "exp": now.0 + 600, "iat": now.0})
    .to_string();
    let rules = policy.issuers()[0]
        .introspection()
        .unwrap_or_else(|| panic!("no introspection"));
    let mut group = c.benchmark_group("introspection");
    group.bench_function("answer_read", |b| {
        b.iter(|| rules.principal(&policy, 0, black_box(answer.as_bytes()), &keys, now))
    });
    let mut gateway = Gateway::new(policy.clone());
    let pairs = support::header_pairs("/api/resources", "Bearer 2YotnFZFEjr1zCsicMWpAA");
    let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let mut exchange = scopegate_core::gateway::Exchange::default();
    let scopegate_core::gateway::Step::Introspect(call) =
        gateway.on_request_headers(&mut exchange, &pairs, now)
    else {
        panic!("an opaque token is introspected")
    };
    let (ticket, issuer) = (call.ticket, call.issuer);
    let _ = gateway.on_introspection_answer(ticket, issuer, Ok((200, answer.as_bytes())), now);
    assert!(
        support::through_gateway(&mut gateway, &pairs, now),
        "kept answer"
    );
    group.bench_function("gateway_hit", |b| {
        b.iter(|| support::through_gateway(&mut gateway, black_box(&pairs), now))
    });
    group.finish();
}

/// What a refused token costs `Policy::authenticate` (RS256 key set): an expired token and
/// one for another audience, which need no signature arithmetic to refuse, beside a forged
/// one (payload changed after signing), which does, and a valid one.
fn refusal(c: &mut Criterion) {
    let vectors: serde_json::Value =
        serde_json::from_str(&decisions_json()).unwrap_or_else(|e| panic!("decisions.json: {e}"));
    let example = support::example(&decisions_json());
    let (policy, now) = (&example.policy, example.now);
    let keys = KeyStore::default();
    let token_of = |name: &str| -> String {
        let case = vectors["suites"][0]["cases"]
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no case `{name}`"));
        case["request"]["authorization"][0]
            .as_str()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_else(|| panic!("`{name}` has no bearer token"))
            .to_owned()
    };
    let mut group = c.benchmark_group("refusal");
    for (label, case, expected) in [
        (
            "expired",
            "expired one second past the leeway",
            Some("expired"),
        ),
        ("wrong_audience", "wrong audience", Some("wrong_audience")),
        (
            "forged",
            "payload changed after signing",
            Some("bad_signature"),
        ),
        ("valid", "read token reads, claims forwarded", None),
    ] {
        let token = token_of(case);
        let got = policy
            .authenticate(&token, &keys, now)
            .err()
            .map(|e| e.code());
        assert_eq!(got, expected, "{case}");
        group.bench_function(label, |b| {
            b.iter(|| policy.authenticate(black_box(&token), &keys, now))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    decision,
    token,
    mcp,
    bound_and_introspected,
    refusal
);
criterion_main!(benches);
