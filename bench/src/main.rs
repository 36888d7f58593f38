//! The core's hot paths timed in a plain loop, for one question criterion cannot answer:
//! how much slower are the same crates in the filter (wasm32-wasip1, the filter's profile,
//! run by V8) than natively?
//!
//! Envoy runs the filter in V8; Node.js runs this program's wasm32-wasip1 build in V8 too,
//! through `node:wasi` (`bench/run-wasm.mjs`), so the same loop built both ways measures the
//! cost of WebAssembly (32-bit limbs, no 64×64→128 multiply, V8's code) on the core's work,
//! without Envoy's per-request overhead. `./scripts/bench` runs it both ways.
//!
//! Input: the text of `tests/vectors/decisions.json` on stdin; an argument keeps only the
//! measurements whose name contains it (for a profiler). Output: one line per measurement,
//! `name ns_per_op`, the median of 15 timed batches after a warm-up long enough for V8 to
//! tier up.

// A benchmark harness: a broken input aborts the run with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::AlgorithmSignature as _;
use scopegate_core::fuzzing::jwt_authn;
use scopegate_core::gateway::{Exchange, Gateway};
use scopegate_core::{Algorithm, Decision, KeySet, KeyStore, Policy, TokenError, UnixTime};
use serde_json::{json, Value};

/// Time `f` per call: warm up for `warm_up`, size batches of about 20 ms, return the median
/// batch's nanoseconds per call.
fn measure(warm_up: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < warm_up || calls < 10 {
        f();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let batch = ((0.02 / per_call) as u64).max(1);
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_secs_f64() * 1e9 / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() || input.is_empty() {
        eprintln!("usage: scopegate-bench < tests/vectors/decisions.json");
        std::process::exit(2);
    }
    let only = std::env::args().nth(1).unwrap_or_default();
    let wanted = |name: &str| name.contains(only.as_str());
    let warm_up = Duration::from_millis(300);
    let example = support::example(&input);
    let (policy, now) = (&example.policy, example.now);
    let keys = KeyStore::default();
    for (alg, token) in &example.tokens {
        let token = token.as_str();
        if let Err(err) = policy.authenticate(token, &keys, now) {
            eprintln!("{alg}: {err}");
            std::process::exit(1);
        }
        let name = format!("authenticate/{alg}");
        if wanted(&name) {
            let ns = measure(warm_up, || {
                let _ = black_box(policy.authenticate(black_box(token), &keys, now));
            });
            println!("{name} {ns:.0}");
        }
        // The whole request path of the filter, minus host calls: the core's gateway with a
        // warm token cache, fed the header bytes Envoy hands over.
        let mut gateway = Gateway::new(support::example(&input).policy);
        let pairs = support::header_pairs("/api/resources", &format!("Bearer {token}"));
        let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert!(support::through_gateway(&mut gateway, &pairs, now), "{alg}");
        let name = format!("gateway_cached/{alg}");
        if wanted(&name) {
            let ns = measure(warm_up, || {
                black_box(support::through_gateway(
                    &mut gateway,
                    black_box(&pairs),
                    now,
                ));
            });
            println!("{name} {ns:.0}");
        }
    }
    jwt_authn_mode(&input, &example.tokens, now, &wanted);
    for (alg, token) in &example.tokens {
        verify_side_by_side(&input, alg, token, &wanted);
    }
    for n in [10, 1_000] {
        let name = format!("decision_allow/{n}");
        if !wanted(&name) {
            continue;
        }
        let policy = support::routes_policy(n);
        let path = support::routes_request_path(n);
        let authorization = ["Bearer t"];
        let request = support::request(&path, &authorization);
        let holder = support::principal(&format!("openid {}", support::routes_scope(n)));
        let allowed = policy.decide_with(&request, now, |_| Ok::<_, TokenError>(&holder));
        assert!(matches!(allowed, Decision::Allow(_)));
        let ns = measure(warm_up, || {
            let decision = policy.decide_with(black_box(&request), now, |_| {
                Ok::<_, TokenError>(black_box(&holder))
            });
            black_box(decision);
        });
        println!("{name} {ns:.0}");
    }
}

thread_local! {
    /// The metadata the host hands over for the request being timed.
    static METADATA: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Setup (5) of the Envoy benchmark minus its host calls (`gateway_jwt_authn/…`): the
/// example issuer verified by jwt_authn, no token cache, so that every request decodes its
/// token and compares its claims with the payload in the metadata, as Envoy serializes it
/// (the lookup copies the bytes, as the host call does into the filter's memory).
fn jwt_authn_mode(
    input: &str,
    tokens: &[(&str, String)],
    now: UnixTime,
    wanted: &impl Fn(&str) -> bool,
) {
    let mut document: Value =
        serde_json::from_str(&support::example_policy_text(input)).expect("the policy");
    for issuer in document["issuers"].as_array_mut().expect("issuers") {
        let issuer = issuer.as_object_mut().expect("an issuer");
        issuer.retain(|key, _| !key.starts_with("jwks"));
        issuer.insert(
            "jwt_authn".into(),
            json!({"payload_in_metadata": "payload"}),
        );
    }
    document["token_cache"] = json!({"max_entries": 0});
    for (alg, token) in tokens {
        let name = format!("gateway_jwt_authn/{alg}");
        if !wanted(&name) {
            continue;
        }
        let payload = token.split('.').nth(1).expect("a JWS");
        let payload = Base64UrlUnpadded::decode_vec(payload).expect("base64url");
        let payload: Value = serde_json::from_slice(&payload).expect("JSON claims");
        let metadata =
            jwt_authn::encode::metadata(jwt_authn::JWT_AUTHN, &json!({"payload": payload}));
        METADATA.with(|bytes| *bytes.borrow_mut() = metadata);
        let lookup = || Some(METADATA.with(|bytes| bytes.borrow().clone()));
        let policy = Policy::from_json(&document.to_string()).expect("the jwt_authn policy");
        let mut gateway = Gateway::new(policy);
        let pairs = support::header_pairs("/api/resources", &format!("Bearer {token}"));
        let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let mut through = |pairs: &[(&[u8], &[u8])]| {
            let mut exchange = Exchange::default().with_metadata_lookup(lookup);
            support::through_gateway_with(&mut gateway, &mut exchange, pairs, now)
        };
        assert!(through(&pairs), "{alg}");
        let ns = measure(Duration::from_millis(300), || {
            black_box(through(black_box(&pairs)));
        });
        println!("{name} {ns:.0}");
    }
}

/// Signature verification alone (SHA of the signing input included), the core's verifier
/// (`verify/…`) beside the one jwt-compact ships for the same algorithm
/// (`verify_jwt_compact/…`), on the same key and signature.
fn verify_side_by_side(vectors: &str, alg: &str, token: &str, wanted: &impl Fn(&str) -> bool) {
    let policy: serde_json::Value =
        serde_json::from_str(&support::example_policy_text(vectors)).unwrap();
    let jwks = &policy["issuers"][0]["jwks"];
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
    let header = Base64UrlUnpadded::decode_vec(input.split('.').next().unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let algorithm = Algorithm::from_name(alg).unwrap();
    let keys = KeySet::from_value(jwks).unwrap();
    let key = keys.keys().find(|k| k.kid() == Some(kid)).unwrap();
    assert_eq!(
        key.verify(algorithm, input.as_bytes(), &signature),
        Ok(true)
    );
    let name = format!("verify/{alg}");
    if wanted(&name) {
        let ns = measure(Duration::from_millis(300), || {
            let _ = black_box(key.verify(algorithm, black_box(input.as_bytes()), &signature));
        });
        println!("{name} {ns:.0}");
    }
    let name = format!("verify_jwt_compact/{alg}");
    if !wanted(&name) {
        return;
    }
    let jwk_value = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    let jwk: JsonWebKey<'_> = serde_json::from_value(jwk_value.clone()).unwrap();
    fn time<A: jwt_compact::Algorithm>(
        alg: &A,
        key: &A::VerifyingKey,
        input: &[u8],
        signature: &[u8],
    ) -> f64 {
        let parsed = A::Signature::try_from_slice(signature).unwrap();
        assert!(alg.verify_signature(&parsed, key, input));
        measure(Duration::from_millis(300), || {
            let parsed = A::Signature::try_from_slice(black_box(signature)).unwrap();
            black_box(alg.verify_signature(&parsed, key, black_box(input)));
        })
    }
    let input = input.as_bytes();
    let ns = match alg {
        "RS256" => {
            let key = jwt_compact::alg::RsaPublicKey::try_from(&jwk).unwrap();
            time(&jwt_compact::alg::Rsa::rs256(), &key, input, &signature)
        }
        "ES256" => {
            let alg = jwt_compact::alg::Es256;
            let key =
                <jwt_compact::alg::Es256 as jwt_compact::Algorithm>::VerifyingKey::try_from(&jwk)
                    .unwrap();
            time(&alg, &key, input, &signature)
        }
        _ => {
            let alg = jwt_compact::alg::Ed25519;
            let key =
                <jwt_compact::alg::Ed25519 as jwt_compact::Algorithm>::VerifyingKey::try_from(&jwk)
                    .unwrap();
            time(&alg, &key, input, &signature)
        }
    };
    println!("{name} {ns:.0}");
}
