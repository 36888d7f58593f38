//! The filter in a real Envoy with several workers (`--concurrency 2`, one VM per worker
//! besides the main thread's): a key rotation under a burst of requests, a JWKS outage, and
//! the first keys, seen from outside as a client sees them.
//!
//! Needs what `tests/envoy.rs` needs (`./scripts/test` builds it). Every server and Envoy
//! runs on 127.0.0.1 and stops when its test ends, Envoy by PID.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use scopegate_tests::harness::{eventually, request, Envoy, HttpServer, ServerResponse, Upstreams};
use scopegate_tests::{
    example_policy_with_remote_keys, mint, read_token_claims, unix_now, TestKeys,
};
use serde_json::{json, Value};

/// What the JWKS server answers (status, body, delay), and how many requests it served.
#[derive(Clone, Default)]
struct Jwks {
    answer: Arc<Mutex<(u16, String, Duration)>>,
    served: Arc<AtomicUsize>,
}

impl Jwks {
    fn set(&self, status: u16, body: &Value, delay: Duration) {
        *self.answer.lock().expect("lock") = (status, body.to_string(), delay);
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// Envoy with `workers` workers, the filter, an echo upstream and a JWKS server.
struct Fleet {
    envoy: Envoy,
    jwks_server: HttpServer,
    jwks: Jwks,
    keys: TestKeys,
    _api: HttpServer,
}

impl Fleet {
    fn start(workers: u32, jwks_status: u16, change: impl FnOnce(&mut Value)) -> Self {
        let keys = TestKeys::from_seed(1);
        let jwks = Jwks::default();
        jwks.set(jwks_status, &keys.jwks(""), Duration::ZERO);
        let serving = jwks.clone();
        let jwks_server = HttpServer::start(move |_| {
            let (status, body, delay) = serving.answer.lock().expect("lock").clone();
            serving.served.fetch_add(1, Ordering::SeqCst);
            thread::sleep(delay);
            ServerResponse {
                status,
                content_type: "application/json",
                body,
            }
        });
        let api = HttpServer::echo();
        let mut policy = example_policy_with_remote_keys(
            &format!("http://127.0.0.1:{}/jwks", jwks_server.port),
            "jwks",
        );
        change(&mut policy);
        let upstreams = Upstreams {
            api: api.port,
            jwks: Some(jwks_server.port),
        };
        let envoy = Envoy::with_filter_on_workers(&upstreams, &policy, workers);
        Fleet {
            envoy,
            jwks_server,
            jwks,
            keys,
            _api: api,
        }
    }

    /// A GET of a protected route with `token`, on a connection of its own: Envoy hands
    /// each connection to one of its workers.
    fn status(&self, token: &str) -> u16 {
        let auth = format!("Bearer {token}");
        request(
            self.envoy.port,
            "GET",
            "/api/resources",
            &[("authorization", &auth)],
        )
        .expect("request through Envoy")
        .status
    }

    /// Waits until `count` requests in a row with a valid token pass, so that every worker
    /// (Envoy spreads the connections) has its keys.
    fn wait_for_keys(&self, count: usize) {
        let token = mint(
            &self.keys,
            &json!({"alg": "ES256"}),
            &read_token_claims(unix_now() + 600),
        );
        let passed = eventually(Duration::from_secs(15), || {
            (0..count).all(|_| self.status(&token) == 200)
        });
        assert!(passed, "keys never arrived:\n{}", self.envoy.log());
    }
}

/// `count` tokens of different subjects, signed by the key `kid` of `keys`.
fn tokens(keys: &TestKeys, kid: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let mut claims = read_token_claims(unix_now() + 600);
            claims.insert("sub".into(), json!(format!("user-{n}")));
            mint(
                keys,
                &json!({"alg": "ES256", "header": {"kid": kid}}),
                &claims,
            )
        })
        .collect()
}

/// Sends every token at once, each on its own connection, and returns the statuses.
fn burst(fleet: &Fleet, tokens: &[String]) -> Vec<u16> {
    thread::scope(|scope| {
        let sent: Vec<_> = tokens
            .iter()
            .map(|token| scope.spawn(|| fleet.status(token)))
            .collect();
        sent.into_iter()
            .map(|s| s.join().expect("client"))
            .collect()
    })
}

/// The issuer publishes a new key and a burst of tokens signed by it arrives while the
/// JWKS server takes 300 ms to answer: every request waits for the one re-fetch, none is
/// refused against the old keys.
fn rotation_burst(workers: u32, requests: usize) {
    let fleet = Fleet::start(workers, 200, |_| {});
    fleet.wait_for_keys(4);
    let next = TestKeys::from_seed(2);
    let mut both = fleet.keys.jwks("");
    let new_keys = next.jwks("next-");
    both["keys"]
        .as_array_mut()
        .expect("keys")
        .extend(new_keys["keys"].as_array().expect("keys").iter().cloned());
    fleet.jwks.set(200, &both, Duration::from_millis(300));
    let fetched_before = fleet.jwks.served();
    let statuses = burst(&fleet, &tokens(&next, "next-ec-1", requests));
    assert!(
        statuses.iter().all(|&s| s == 200),
        "{statuses:?} with {workers} workers\n{}",
        fleet.envoy.stats()
    );
    // One re-fetch for the whole Envoy: the other workers wait for its keys, and the
    // other requests of each worker are held for it.
    let refetches = fleet.jwks.served() - fetched_before;
    assert_eq!(refetches, 1, "re-fetches with {workers} workers");
    let held = fleet.envoy.counter("wasmcustom.scopegate.jwks.hold") as usize;
    assert!(
        held + refetches >= requests - workers as usize,
        "{held} requests held, {refetches} re-fetches for {requests} requests:\n{}",
        fleet.envoy.stats()
    );
}

#[test]
fn a_rotation_burst_waits_for_the_refetch_with_one_worker() {
    rotation_burst(1, 8);
}

#[test]
fn a_rotation_burst_waits_for_the_refetch_on_every_worker() {
    rotation_burst(2, 16);
}

#[test]
fn an_outage_keeps_the_last_good_keys_on_every_worker() {
    let mut fleet = Fleet::start(2, 200, |policy| {
        policy["issuers"][0]["jwks_refresh_seconds"] = json!(1);
        // Cache off: every request is verified against the keys its worker holds.
        policy["token_cache"] = json!({"max_entries": 0});
    });
    fleet.wait_for_keys(6);
    fleet.jwks_server.stop();
    let failed_before = fleet
        .envoy
        .counter("wasmcustom.scopegate.jwks.fetch_failed");
    assert!(
        eventually(Duration::from_secs(10), || fleet
            .envoy
            .counter("wasmcustom.scopegate.jwks.fetch_failed")
            >= failed_before + 2),
        "the refresh never noticed the outage: {}",
        fleet.envoy.stats()
    );
    let claims = read_token_claims(unix_now() + 600);
    let good = mint(&fleet.keys, &json!({"alg": "RS256"}), &claims);
    let forged = mint(
        &fleet.keys,
        &json!({"alg": "RS256", "tamper": "payload"}),
        &claims,
    );
    for _ in 0..10 {
        assert_eq!(fleet.status(&good), 200, "{}", fleet.envoy.log());
        assert_eq!(fleet.status(&forged), 401);
    }
}

#[test]
fn no_worker_passes_a_request_before_the_first_keys() {
    let fleet = Fleet::start(2, 503, |_| {});
    let claims = read_token_claims(unix_now() + 600);
    let token = mint(&fleet.keys, &json!({"alg": "ES256"}), &claims);
    let statuses = burst(&fleet, &vec![token; 12]);
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    // The server recovers: every worker gets the keys, without a restart.
    fleet.jwks.set(200, &fleet.keys.jwks(""), Duration::ZERO);
    fleet.wait_for_keys(6);
}

#[test]
fn each_refresh_is_one_fetch_for_all_workers() {
    let fleet = Fleet::start(2, 200, |policy| {
        policy["issuers"][0]["jwks_refresh_seconds"] = json!(1);
        policy["token_cache"] = json!({"max_entries": 0});
    });
    fleet.wait_for_keys(6);
    let before = fleet.jwks.served();
    let started = std::time::Instant::now();
    thread::sleep(Duration::from_secs(5));
    let fetched = fleet.jwks.served() - before;
    let seconds = started.elapsed().as_secs_f64();
    // Three VMs (two workers and the main thread's) refreshing on their own made three
    // fetches a second; one a second, plus one for a lease that changed hands, is shared.
    assert!(
        (fetched as f64) <= seconds + 2.0,
        "{fetched} fetches in {seconds:.1} s with a refresh of 1 s"
    );
    assert!(
        fetched >= 3,
        "{fetched} fetches in {seconds:.1} s: no refresh?"
    );
    let shared = fleet.envoy.counter("wasmcustom.scopegate.jwks.shared");
    assert!(
        shared >= 2,
        "{shared} installs of keys another worker fetched"
    );
    // Every worker verifies with the shared keys.
    fleet.wait_for_keys(6);
}
