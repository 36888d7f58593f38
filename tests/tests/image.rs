//! The filter's OCI images, end to end: built twice by `scopegate-image` (what
//! `scripts/build-image` runs) to one digest, pushed in both layouts to Debian's
//! `docker-registry` on 127.0.0.1 by `skopeo`, pulled back by `skopeo`, read the way Istio's
//! image fetcher reads them (`scopegate_tests::oci`), and the module they hold loaded by
//! Envoy 1.40 from an HTTP `remote` data source with its `sha256`, the way Envoy Gateway
//! serves pulled images to Envoy, where it enforces the policy.
//!
//! What Envoy 1.40 does with a `sha256` that does not match the module (measured here): it
//! does not refuse the configuration. It fetches the module (and retries once), logs
//! "Retry limit exceeded for fetching data from remote data source" and "Plugin scopegate
//! failed to load", counts `wasm.remote_load_fetch_failures`, and starts anyway; then, under
//! the default `failure_policy` (FAIL_CLOSED) and FAIL_RELOAD, every request on the listener
//! is answered 503 by Envoy and none reaches the upstream. Under FAIL_OPEN every request
//! passes unchecked: the examples never set it.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use scopegate_tests::harness::{
    envoy_config, eventually, filter_wasm, on_a_free_port, request, require_envoy_and_filter,
    skopeo, Envoy, EnvoyFailed, HttpServer, Registry, TempDir, Upstreams,
};
use scopegate_tests::oci::{
    istio_extract, sha256_digest, sha256_hex, Fetched, LayoutDir, OCI_CONFIG, OCI_LAYER_GZIP,
    OCI_MANIFEST, WASM_CONFIG, WASM_CONTENT,
};
use scopegate_tests::{alice_token, repo_root, workspace_binary, TestKeys};
use serde_json::{json, Value};

const TAG: &str = "0.0.0-test";
const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";
/// 2026-01-01T00:00:00Z.
const CREATED: u64 = 1_767_225_600;

/// Runs `scopegate-image` on the built filter into `out`; returns its printed digests by
/// name (`module`, `compat`, `oci`).
fn build_image(out: &Path) -> BTreeMap<String, String> {
    require_envoy_and_filter();
    let output = Command::new(workspace_binary("scopegate-image", "scopegate-image"))
        .arg("--wasm")
        .arg(filter_wasm())
        .arg("--out")
        .arg(out)
        .args(["--revision", REVISION, "--created", &CREATED.to_string()])
        .args(["--tag", TAG])
        .output()
        .expect("run scopegate-image");
    assert!(
        output.status.success(),
        "scopegate-image failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// Every file under `dir` and its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = fs::read(&path).expect("read");
                files.insert(path.strip_prefix(dir).expect("prefix").to_path_buf(), bytes);
            }
        }
    }
    files
}

#[test]
fn two_builds_give_one_digest() {
    let (a, b) = (TempDir::new("image-a"), TempDir::new("image-b"));
    let digests = build_image(a.path());
    assert_eq!(digests, build_image(b.path()));
    assert_eq!(
        tree(a.path()),
        tree(b.path()),
        "the layouts differ in some byte"
    );
    assert_eq!(
        digests["module"],
        sha256_digest(&fs::read(filter_wasm()).unwrap())
    );
    assert_ne!(digests["compat"], digests["oci"]);
}

/// What a manifest of `variant` must say, beyond what the fetcher checks.
fn check_manifest(variant: &str, manifest: &Value) {
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.revision"], REVISION);
    assert_eq!(annotations["org.opencontainers.image.version"], TAG);
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(
        annotations["org.opencontainers.image.licenses"],
        "Apache-2.0 OR MIT"
    );
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "https://github.com/scopegate/scopegate"
    );
    assert_eq!(
        annotations["org.opencontainers.image.title"],
        "scopegate-filter"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    let types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    match variant {
        "compat" => {
            assert_eq!(manifest["config"]["mediaType"], OCI_CONFIG);
            assert_eq!(types, [OCI_LAYER_GZIP]);
            assert_eq!(annotations["module.wasm.image/variant"], "compat");
        }
        _ => {
            assert_eq!(manifest["config"]["mediaType"], WASM_CONFIG);
            assert_eq!(types, [WASM_CONFIG, WASM_CONTENT]);
            assert_eq!(layers[0]["digest"], manifest["config"]["digest"]);
            assert!(annotations.get("module.wasm.image/variant").is_none());
        }
    }
}

#[test]
fn both_layouts_go_through_a_registry_and_the_module_enforces_in_envoy_by_sha256() {
    let built = TempDir::new("image-built");
    let digests = build_image(built.path());
    let filter = fs::read(filter_wasm()).unwrap();
    let registry = Registry::start();
    let mut pulled_modules = Vec::new();
    for (variant, expected) in [("compat", Fetched::Compat), ("oci", Fetched::Oci)] {
        let reference = registry.reference(&format!("scopegate:{variant}"));
        let layout = built.path().join(variant);
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:{TAG}", layout.display()),
            &reference,
        ]);
        // The registry serves the manifest as built: same bytes, same digest.
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &reference]);
        assert_eq!(sha256_digest(&raw), digests[variant], "{variant}");
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        check_manifest(variant, &manifest);

        // Pulled back by skopeo into a layout of its own, then read the way Istio's fetcher
        // reads it: media types, layer count, each blob against its digest.
        let pulled = registry.scratch().join(format!("pulled-{variant}"));
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &reference,
            &format!("oci:{}:pulled", pulled.display()),
        ]);
        let pulled = LayoutDir::new(&pulled);
        let (digest, bytes) = pulled.manifest("pulled").unwrap();
        assert_eq!(digest, digests[variant]);
        assert_eq!(bytes, raw);
        let (fetched, module) = istio_extract(&manifest, |d| pulled.blob(d))
            .unwrap_or_else(|e| panic!("{variant}: {e}"));
        assert_eq!(fetched, expected);
        assert!(
            module == filter,
            "{variant}: the module is not the built filter"
        );
        pulled_modules.push(module);
    }
    drop(registry);

    // The pulled module served over HTTP to Envoy, pinned by its sha256.
    let module = pulled_modules.pop().unwrap();
    let sha256 = sha256_hex(&module);
    assert_eq!(format!("sha256:{sha256}"), digests["module"]);
    let (wasm_server, fetches) = HttpServer::file("/scopegate.wasm", "application/wasm", module);
    let (api, upstream) = HttpServer::recording_echo();
    let policy = policy();
    let envoy = remote_envoy(&api, &wasm_server, &sha256, None, &policy)
        .unwrap_or_else(|failed| panic!("Envoy did not start: {failed:?}"));
    assert!(
        eventually(Duration::from_secs(10), || envoy
            .log()
            .contains("policy loaded")),
        "{}",
        envoy.log()
    );
    assert_eq!(fetches.len(), 1, "Envoy fetched the module once");

    let denied = request(envoy.port, "GET", "/api/resources", &[]).unwrap();
    assert_eq!(denied.status, 401, "{}", envoy.log());
    assert!(denied
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Bearer ")));
    assert_eq!(
        request(envoy.port, "GET", "/health", &[]).unwrap().status,
        200
    );
    let keys = TestKeys::from_seed(1);
    let token = alice_token(
        &keys,
        &policy,
        "ES256",
        300,
        &json!({"scope": "resource:read"}),
    )
    .expect("the policy's test issuer");
    let bearer = format!("Bearer {token}");
    let allowed = request(
        envoy.port,
        "GET",
        "/api/resources",
        &[("authorization", &bearer)],
    )
    .unwrap();
    assert_eq!(allowed.status, 200, "{}", envoy.log());
    let reached: Vec<String> = upstream.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(reached, ["/health", "/api/resources"]);
}

/// Envoy on a wrong `sha256` starts, and under the default failure policy (FAIL_CLOSED) or
/// FAIL_RELOAD answers 503 to every request, public routes and valid tokens included.
#[test]
fn a_wrong_sha256_leaves_envoy_answering_503_to_every_request() {
    let module = fs::read(filter_wasm()).unwrap();
    let wrong = sha256_hex(b"not the module");
    let (wasm_server, fetches) = HttpServer::file("/scopegate.wasm", "application/wasm", module);
    let keys = TestKeys::from_seed(1);
    let policy = policy();
    let token = alice_token(
        &keys,
        &policy,
        "ES256",
        300,
        &json!({"scope": "resource:read"}),
    )
    .expect("the policy's test issuer");
    let bearer = format!("Bearer {token}");
    for failure_policy in [None, Some("FAIL_RELOAD")] {
        let (api, upstream) = HttpServer::recording_echo();
        let envoy = remote_envoy(&api, &wasm_server, &wrong, failure_policy, &policy)
            .unwrap_or_else(|failed| {
                panic!("Envoy refused the config instead of starting: {failed:?}")
            });
        let log = envoy_log_once_failed(&envoy);
        assert!(
            log.contains("Retry limit exceeded for fetching data from remote data source"),
            "{log}"
        );
        assert!(envoy.stat("wasm.remote_load_fetch_failures") >= 1);
        for (path, headers) in [
            ("/health", vec![]),
            ("/api/resources", vec![]),
            ("/api/resources", vec![("authorization", bearer.as_str())]),
        ] {
            let status = request(envoy.port, "GET", path, &headers).unwrap().status;
            assert_eq!(status, 503, "{failure_policy:?} {path} {headers:?}");
        }
        assert!(
            upstream.is_empty(),
            "{failure_policy:?}: a request reached the upstream"
        );
    }
    assert!(fetches.len() >= 2, "the module was fetched for each Envoy");
}

/// Why the examples never fail open: with FAIL_OPEN, a module that does not match its
/// `sha256` is skipped and every request reaches the upstream unchecked.
#[test]
fn a_wrong_sha256_under_fail_open_lets_every_request_through_unchecked() {
    let module = fs::read(filter_wasm()).unwrap();
    let (wasm_server, _) = HttpServer::file("/scopegate.wasm", "application/wasm", module);
    let (api, upstream) = HttpServer::recording_echo();
    let wrong = sha256_hex(b"not the module");
    let envoy = remote_envoy(&api, &wasm_server, &wrong, Some("FAIL_OPEN"), &policy())
        .unwrap_or_else(|failed| panic!("Envoy did not start: {failed:?}"));
    envoy_log_once_failed(&envoy);
    let status = request(envoy.port, "GET", "/api/resources", &[])
        .unwrap()
        .status;
    assert_eq!(status, 200, "no token, and yet");
    assert_eq!(upstream.len(), 1);
}

/// Envoy's log once it says the plugin failed to load.
fn envoy_log_once_failed(envoy: &Envoy) -> String {
    assert!(
        eventually(Duration::from_secs(20), || envoy
            .log()
            .contains("Plugin scopegate failed to load")),
        "{}",
        envoy.log()
    );
    envoy.log()
}

/// The example policy with only its test issuer (inline keys).
fn policy() -> Value {
    let text = fs::read_to_string(repo_root().join("examples/policy.json")).unwrap();
    let mut policy: Value = serde_json::from_str(&text).unwrap();
    policy["issuers"].as_array_mut().unwrap().truncate(1);
    policy
}

/// Envoy with the filter's code from `wasm` over HTTP (`vm_config.code.remote`, cluster
/// `wasm`) pinned by `sha256`, in front of `api`.
fn remote_envoy(
    api: &HttpServer,
    wasm: &HttpServer,
    sha256: &str,
    failure_policy: Option<&str>,
    policy: &Value,
) -> Result<Envoy, EnvoyFailed> {
    on_a_free_port(|listen| {
        let upstreams = Upstreams {
            api: api.port,
            jwks: None,
        };
        let mut config = envoy_config(listen, &upstreams, &policy.to_string());
        let filter = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
            [0]["typed_config"]["http_filters"][0]["typed_config"]["config"];
        filter["vm_config"]["code"] = json!({"remote": {
            "http_uri": {
                "uri": format!("http://127.0.0.1:{}/scopegate.wasm", wasm.port),
                "cluster": "wasm",
                "timeout": "10s"
            },
            "sha256": sha256
        }});
        if let Some(failure_policy) = failure_policy {
            filter["failure_policy"] = json!(failure_policy);
        }
        config["static_resources"]["clusters"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "name": "wasm",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "wasm", "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": wasm.port}}}}
                ]}]}
            }));
        Envoy::start(&config, listen)
    })
}

/// An image whose only layer is the module (config `application/vnd.module.wasm.config.v1+json`)
/// is what Istio's and Envoy Gateway's fetchers refuse: the reason the "oci" layout carries
/// its runtime configuration as a second layer.
#[test]
fn the_fetcher_refuses_a_wasm_artifact_with_the_module_as_its_only_layer() {
    let module = b"\0asm\x01\0\0\0".to_vec();
    let config = b"{}".to_vec();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": WASM_CONFIG, "digest": sha256_digest(&config), "size": 2},
        "layers": [{"mediaType": WASM_CONTENT, "digest": sha256_digest(&module), "size": module.len()}]
    });
    let blobs = |digest: &str| -> Result<Vec<u8>, String> {
        [&config, &module]
            .into_iter()
            .find(|b| sha256_digest(b) == digest)
            .cloned()
            .ok_or(format!("no blob {digest}"))
    };
    let err = istio_extract(&manifest, blobs).unwrap_err();
    assert!(
        err.contains("number of layers must be 2 but got 1"),
        "{err}"
    );
    // The same with the config as a second layer is taken.
    let mut two = manifest.clone();
    two["layers"]
        .as_array_mut()
        .unwrap()
        .insert(0, manifest["config"].clone());
    assert_eq!(istio_extract(&two, blobs).unwrap(), (Fetched::Oci, module));
}
