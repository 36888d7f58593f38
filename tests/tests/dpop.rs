//! DPoP (RFC 9449) in a real Envoy: proofs made by a client library nobody here wrote (the
//! npm `dpop` package, run by `tests/e2e/dpop-proofs.mjs`), the token bound to the key by
//! the thumbprint that package computes, and hostile proofs (a replay, another method,
//! another URI, a stale `iat`, another token's `ath`, another key, `alg: none`, HS256, the
//! wrong `typ`, none, two, bytes that are not text), each refused with a `DPoP` challenge
//! while the valid requests around them pass. Envoy is stopped by PID when the test ends.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use scopegate_tests::dpop::{client_key, proofs, proofs_of_spec};
use scopegate_tests::harness::{request, send_raw, Host, HttpServer, Response, Upstreams};
use scopegate_tests::on_each_host;
use scopegate_tests::{mint, unix_now, TestKeys};
use serde_json::{json, Map};

on_each_host!(
    dpop_proofs_from_the_dpop_package_pass_once_and_hostile_ones_are_refused,
    a_server_nonce_is_handed_out_through_envoy_and_then_required,
    one_proof_sent_to_every_worker_is_accepted_once,
    a_client_that_keeps_the_newest_nonce_meets_one_use_dpop_nonce,
);

const ISSUER: &str = "https://idp.scopegate.test";
const AUDIENCE: &str = "https://api.scopegate.test";

fn token(keys: &TestKeys, jkt: &str) -> String {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(ISSUER));
    claims.insert("aud".into(), json!(AUDIENCE));
    claims.insert("sub".into(), json!("alice"));
    claims.insert("exp".into(), json!(unix_now() + 600));
    claims.insert("scope".into(), json!("api"));
    claims.insert("cnf".into(), json!({ "jkt": jkt }));
    mint(keys, &json!({"alg": "EdDSA"}), &claims)
}

fn send(port: u16, method: &str, target: &str, token: &str, proofs: &[&str]) -> Response {
    let auth = format!("DPoP {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(proofs.iter().map(|proof| ("dpop", *proof)));
    request(port, method, target, &headers).expect("the host answers")
}

/// The `error_description` of a DPoP challenge, after checking its shape.
fn refused(response: &Response) -> String {
    assert_eq!(response.status, 401, "{response:?}");
    let challenge = response.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with("DPoP realm=\"api\", error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    assert!(
        challenge.ends_with("algs=\"ES256 EdDSA Ed25519\""),
        "{challenge}"
    );
    response.json()["error_description"]
        .as_str()
        .expect("a description")
        .to_owned()
}

fn dpop_proofs_from_the_dpop_package_pass_once_and_hostile_ones_are_refused(host: Host) {
    let keys = TestKeys::from_seed(1);
    let policy = json!({
        "version": 1,
        "realm": "api",
        "issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["EdDSA"],
                     "jwks": keys.jwks("")}],
        "routes": [{"path": "/api/**", "require": "api"}],
        "dpop": {"algorithms": ["ES256", "EdDSA"]}
    });
    let (api, recorder) = HttpServer::recording_echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: None,
    };
    let proxy = host.start(&upstreams, &policy);
    let port = proxy.port();
    let htu = format!("http://127.0.0.1:{port}/api/x");
    let other_htu = format!("http://127.0.0.1:{port}/api/y");

    let key = client_key("ES256");
    let jkt = key["jkt"].as_str().expect("jkt");
    let jwt = token(&keys, jkt);
    let made = proofs(
        "ES256",
        &key,
        &jwt,
        &[
            ("valid", "valid", "GET", &htu),
            ("valid-post", "valid", "POST", &htu),
            ("again", "valid", "GET", &htu),
            ("for-post", "valid", "POST", &htu),
            ("for-another-uri", "valid", "GET", &other_htu),
            ("stale", "stale", "GET", &htu),
            ("future", "future", "GET", &htu),
            ("for-another-token", "other_token", "GET", &htu),
            ("no-token-hash", "no_token_hash", "GET", &htu),
            ("another-key", "other_key", "GET", &htu),
            ("alg-none", "alg_none", "GET", &htu),
            ("hs256", "hs256", "GET", &htu),
            ("typ-jwt", "typ_jwt", "GET", &htu),
        ],
    );
    let proof = |name: &str| made[name].as_str().expect("a proof").to_owned();

    let ok = send(port, "GET", "/api/x", &jwt, &[&proof("valid")]);
    assert_eq!(ok.status, 200, "{ok:?}\n{}", proxy.log());
    // The query is not part of the URI a proof names.
    let ok = send(port, "POST", "/api/x?page=2", &jwt, &[&proof("valid-post")]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(recorder.len(), 2);

    let cases: [(&str, Vec<String>, &str); 13] = [
        (
            "replayed",
            vec![proof("valid")],
            "The DPoP proof was already used",
        ),
        (
            "for POST",
            vec![proof("for-post")],
            "The DPoP proof is for another request method",
        ),
        (
            "another URI",
            vec![proof("for-another-uri")],
            "The DPoP proof is for another URI",
        ),
        ("stale", vec![proof("stale")], "The DPoP proof is too old"),
        (
            "future",
            vec![proof("future")],
            "The DPoP proof is issued in the future",
        ),
        (
            "another token",
            vec![proof("for-another-token")],
            "The DPoP proof is for another access token",
        ),
        (
            "no ath",
            vec![proof("no-token-hash")],
            "The DPoP proof claims are invalid",
        ),
        (
            "another key",
            vec![proof("another-key")],
            "The DPoP proof key is not the key the access token is bound to",
        ),
        (
            "alg none",
            vec![proof("alg-none")],
            "The DPoP proof algorithm is not accepted",
        ),
        (
            "HS256",
            vec![proof("hs256")],
            "The DPoP proof algorithm is not accepted",
        ),
        (
            "typ JWT",
            vec![proof("typ-jwt")],
            "The DPoP proof is not of type dpop+jwt",
        ),
        (
            "none",
            vec![],
            "A DPoP proof is required with a DPoP-bound access token",
        ),
        (
            "two",
            vec![proof("again"), proof("for-post")],
            "Send exactly one DPoP proof",
        ),
    ];
    for (what, proofs, description) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let response = send(port, "GET", "/api/x", &jwt, &proofs);
        assert_eq!(refused(&response), description, "{what}");
    }
    assert_eq!(recorder.len(), 2, "no refused request reached the upstream");

    // The bound token as a bearer token.
    let response = request(
        port,
        "GET",
        "/api/x",
        &[("authorization", &format!("Bearer {jwt}"))],
    )
    .expect("the host answers");
    assert_eq!(response.status, 401);
    assert!(response
        .header("www-authenticate")
        .unwrap()
        .contains("needs a DPoP proof"));

    // A `DPoP` header that is not text: 400, and the worker keeps serving.
    let raw = format!(
        "GET /api/x HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: DPoP {jwt}\r\n\
         dpop: ?\r\nconnection: close\r\n\r\n"
    );
    let mut bytes = raw.into_bytes();
    let at = bytes.windows(6).position(|w| w == b"dpop: ").unwrap() + 6;
    bytes[at] = 0xff;
    let response = send_raw(port, &bytes).expect("the host answers");
    assert_eq!(response.status, 400, "{response:?}");

    // A key of the other type, with RFC 9864's `Ed25519` algorithm name; and the first
    // proof's request still passes with a fresh proof of its own.
    let ed_key = client_key("Ed25519");
    let ed_jwt = token(&keys, ed_key["jkt"].as_str().unwrap());
    let ed = proofs(
        "Ed25519",
        &ed_key,
        &ed_jwt,
        &[("valid", "valid", "GET", &htu)],
    );
    let response = send(
        port,
        "GET",
        "/api/x",
        &ed_jwt,
        &[ed["valid"].as_str().unwrap()],
    );
    assert_eq!(response.status, 200, "{response:?}");
    let response = send(port, "GET", "/api/x", &jwt, &[&proof("again")]);
    assert_eq!(response.status, 200, "{response:?}");
    match proxy.counter("invalid_token.dpop_proof_replayed") {
        Ok(replayed) => assert_eq!(replayed, 1),
        Err(limit) => {
            limit.note("dpop_proofs_from_the_dpop_package_pass_once_and_hostile_ones_are_refused")
        }
    }
}

/// With `dpop.nonce`, Envoy answers a proof without a nonce with `use_dpop_nonce` and a
/// `DPoP-Nonce` header (RFC 9449 §9); the `dpop` package's proof with that nonce passes.
fn a_server_nonce_is_handed_out_through_envoy_and_then_required(host: Host) {
    let keys = TestKeys::from_seed(1);
    let policy = json!({
        "version": 1,
        "realm": "api",
        "issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["EdDSA"],
                     "jwks": keys.jwks("")}],
        "routes": [{"path": "/api/**", "require": "api"}],
        "dpop": {"algorithms": ["ES256"],
                 "nonce": {"secret": "c2NvcGVnYXRlLWRwb3Atbm9uY2Utc2VjcmV0LTMyYnk"}}
    });
    let api = HttpServer::echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: None,
    };
    let proxy = host.start(&upstreams, &policy);
    let port = proxy.port();
    let htu = format!("http://127.0.0.1:{port}/api/x");
    let key = client_key("ES256");
    let jwt = token(&keys, key["jkt"].as_str().expect("jkt"));

    let first = proofs("ES256", &key, &jwt, &[("first", "valid", "GET", &htu)]);
    let response = send(
        port,
        "GET",
        "/api/x",
        &jwt,
        &[first["first"].as_str().unwrap()],
    );
    assert_eq!(response.status, 401, "{response:?}");
    let challenge = response.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with("DPoP realm=\"api\", error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let nonce = response
        .header("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_owned();

    let made = proofs_of_spec(&json!({"alg": "ES256", "privateJwk": key["privateJwk"],
        "publicJwk": key["publicJwk"], "token": jwt,
        "requests": [{"name": "with_nonce", "kind": "valid", "htm": "GET", "htu": htu,
                      "nonce": nonce}]}));
    let response = send(
        port,
        "GET",
        "/api/x",
        &jwt,
        &[made["with_nonce"].as_str().unwrap()],
    );
    assert_eq!(response.status, 200, "{response:?}\n{}", proxy.log());
}

/// One replay cache for the whole host: the same proof sent at once on eight connections to
/// four workers reaches the upstream once; the other seven are "already used".
fn one_proof_sent_to_every_worker_is_accepted_once(host: Host) {
    let keys = TestKeys::from_seed(1);
    let policy = json!({
        "version": 1,
        "realm": "api",
        "issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["EdDSA"],
                     "jwks": keys.jwks("")}],
        "routes": [{"path": "/api/**", "require": "api"}],
        "dpop": {"algorithms": ["ES256"]}
    });
    let (api, reached) = HttpServer::recording_echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: None,
    };
    let proxy = host.start_on_workers(&upstreams, &policy, 4);
    let port = proxy.port();
    let htu = format!("http://127.0.0.1:{port}/api/once");
    let key = client_key("ES256");
    let jwt = token(&keys, key["jkt"].as_str().expect("jkt"));
    let made = proofs("ES256", &key, &jwt, &[("proof", "valid", "GET", &htu)]);
    let proof = made["proof"].as_str().unwrap().to_owned();

    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let sent: Vec<_> = (0..8)
        .map(|_| {
            let (jwt, proof, barrier) = (jwt.clone(), proof.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                send(port, "GET", "/api/once", &jwt, &[&proof])
            })
        })
        .collect();
    let responses: Vec<Response> = sent.into_iter().map(|t| t.join().unwrap()).collect();
    let passed = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(passed, 1, "{responses:?}\n{}", proxy.log());
    for response in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(response.status, 401, "{response:?}");
        assert_eq!(
            response.json()["error_description"],
            "The DPoP proof was already used",
            "{response:?}"
        );
    }
    assert_eq!(
        reached.requests().len(),
        1,
        "the upstream saw the proof once"
    );
}

/// RFC 9449 §8.2: once the nonce window turns, a 200 carries the next `DPoP-Nonce`, so a
/// client that always uses the newest nonce it has seen gets `use_dpop_nonce` only on its
/// first request, however long it runs.
fn a_client_that_keeps_the_newest_nonce_meets_one_use_dpop_nonce(host: Host) {
    let keys = TestKeys::from_seed(1);
    let policy = json!({
        "version": 1,
        "realm": "api",
        "issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["EdDSA"],
                     "jwks": keys.jwks("")}],
        "routes": [{"path": "/api/**", "require": "api"}],
        "dpop": {"algorithms": ["ES256"],
                 "nonce": {"secret": "c2NvcGVnYXRlLWRwb3Atbm9uY2Utc2VjcmV0LTMyYnk",
                           "lifetime_seconds": 3}}
    });
    let api = HttpServer::echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: None,
    };
    let proxy = host.start(&upstreams, &policy);
    let port = proxy.port();
    let htu = format!("http://127.0.0.1:{port}/api/x");
    let key = client_key("ES256");
    let jwt = token(&keys, key["jkt"].as_str().expect("jkt"));

    let mut nonce: Option<String> = None;
    let (mut refusals, mut handed_on_success, mut passed) = (0, 0, 0);
    // A 401 after a gap longer than a window is the nonce's expiry, not a missed hand-out (a
    // loaded machine can stall the proof maker that long): only the others count.
    let window = std::time::Duration::from_secs(3);
    let started = std::time::Instant::now();
    let mut last: Option<std::time::Instant> = None;
    while (started.elapsed() < std::time::Duration::from_secs(8) || handed_on_success < 2)
        && started.elapsed() < std::time::Duration::from_secs(30)
    {
        let mut request = json!({"name": "p", "kind": "valid", "htm": "GET", "htu": htu});
        if let Some(nonce) = &nonce {
            request["nonce"] = json!(nonce);
        }
        let made = proofs_of_spec(&json!({"alg": "ES256", "privateJwk": key["privateJwk"],
            "publicJwk": key["publicJwk"], "token": jwt, "requests": [request]}));
        let gap = last.map(|at| at.elapsed());
        let response = send(port, "GET", "/api/x", &jwt, &[made["p"].as_str().unwrap()]);
        last = Some(std::time::Instant::now());
        match response.status {
            200 => passed += 1,
            401 => {
                let challenge = response.header("www-authenticate").unwrap_or_default();
                assert!(challenge.contains("use_dpop_nonce"), "{response:?}");
                if gap.is_none_or(|gap| gap < window) {
                    refusals += 1;
                }
            }
            _ => panic!("{response:?}"),
        }
        if let Some(next) = response.header("dpop-nonce") {
            if response.status == 200 {
                handed_on_success += 1;
            }
            nonce = Some(next.to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(
        refusals,
        1,
        "only the first request lacks a nonce\n{}",
        proxy.log()
    );
    assert!(passed >= 5, "{passed} requests passed");
    assert!(
        handed_on_success >= 2,
        "the 3 s windows turned at least twice: {handed_on_success} nonces on 200s"
    );
}
