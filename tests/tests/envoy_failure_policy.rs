//! What Envoy 1.40 does after a Wasm VM traps, per `failure_policy`: the defence in depth
//! that `examples/envoy.yaml` configures. The scopegate filter no longer traps on any input
//! (see `envoy_hostile.rs`), so a filter that traps on purpose stands in for it
//! (`tests/trap-filter`, built by `./scripts/test`).
//!
//! - `FAIL_RELOAD` (what the example sets): the request that trapped fails, requests fail
//!   closed while the VM is replaced, then requests pass again, without a restart.
//! - `FAIL_CLOSED` (Envoy's default): every later request fails until Envoy restarts.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use scopegate_tests::harness::{
    envoy_config, eventually, on_a_free_port, request, Envoy, HttpServer, Upstreams,
};
use scopegate_tests::repo_root;
use serde_json::json;

fn trap_filter() -> PathBuf {
    let path = repo_root().join("target/wasm32-wasip1/filter/scopegate_trap_filter.wasm");
    assert!(
        path.exists(),
        "{} is missing: cargo build --profile filter -p scopegate-trap-filter --target wasm32-wasip1",
        path.display()
    );
    path
}

/// Envoy with the trapping filter under `failure_policy` (and the example's reload backoff)
/// in front of an echo upstream: the harness's configuration with the filter swapped.
fn envoy(failure_policy: &str, api: &HttpServer) -> Envoy {
    on_a_free_port(|listen| {
        let upstreams = Upstreams {
            api: api.port,
            jwks: None,
        };
        let mut config = envoy_config(listen, &upstreams, "{}");
        let filter = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
            [0]["typed_config"]["http_filters"][0]["typed_config"]["config"];
        *filter = json!({
            "name": "trap",
            "failure_policy": failure_policy,
            "reload_config": {"backoff": {"base_interval": "0.5s", "max_interval": "10s"}},
            "vm_config": {
                "vm_id": "trap",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": trap_filter()}}
            }
        });
        Envoy::start(&config, listen)
    })
    .unwrap_or_else(|failed| panic!("Envoy did not start: {failed:?}"))
}

fn status(envoy: &Envoy, headers: &[(&str, &str)]) -> u16 {
    request(envoy.port, "GET", "/", headers)
        .map(|r| r.status)
        .unwrap_or(0)
}

#[test]
fn fail_reload_replaces_a_trapped_vm_and_fails_closed_meanwhile() {
    let api = HttpServer::echo();
    let envoy = envoy("FAIL_RELOAD", &api);
    assert_eq!(status(&envoy, &[]), 200);
    let trapped = status(&envoy, &[("x-trap", "1")]);
    assert!(
        (500..600).contains(&trapped),
        "the trapping request must fail, not pass: {trapped}\n{}",
        envoy.log()
    );
    assert!(
        envoy.log().contains("trapping on purpose"),
        "{}",
        envoy.log()
    );
    // Requests pass again once the VM is replaced (backoff 0.5 s), without a restart.
    assert!(
        eventually(Duration::from_secs(15), || status(&envoy, &[]) == 200),
        "the VM was never replaced\n{}",
        envoy.log()
    );
    // And it can be replaced again.
    assert!((500..600).contains(&status(&envoy, &[("x-trap", "1")])));
    assert!(eventually(Duration::from_secs(15), || status(&envoy, &[]) == 200));
}

#[test]
fn fail_closed_answers_every_later_request_with_an_error() {
    let api = HttpServer::echo();
    let envoy = envoy("FAIL_CLOSED", &api);
    assert_eq!(status(&envoy, &[]), 200);
    assert!((500..600).contains(&status(&envoy, &[("x-trap", "1")])));
    // What one Latin-1 byte did to the scopegate filter before it read header bytes.
    for _ in 0..10 {
        let later = status(&envoy, &[]);
        assert!(
            (500..600).contains(&later),
            "a request passed a dead VM: {later}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
