//! The Kubernetes manifests in `examples/istio/` and `examples/envoy-gateway/` against the
//! published CRDs (`../shared/third_party/`, beside the repository, as CI lays it out): every
//! field known to the schema, of the right type and value (`scopegate_tests::crd`), the
//! plugin configuration a policy that compiles, and the settings that keep a failed pull
//! from becoming a pass-through. Misspellings the validator must catch are checked too.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;

use scopegate_core::Policy;
use scopegate_tests::crd::{yaml_documents, Crds};
use scopegate_tests::repo_root;
use serde_json::{json, Value};

fn crds() -> Crds {
    let dir = repo_root().join("../shared/third_party");
    let paths = [
        dir.join("istio-extensions-crds.yaml"),
        dir.join("envoy-gateway-envoyextensionpolicies-crd.yaml"),
    ];
    for path in &paths {
        assert!(
            path.exists(),
            "{} is missing: the CRDs sit in shared/third_party beside the repository",
            path.display()
        );
    }
    Crds::load(&[&paths[0], &paths[1]]).expect("the CRDs load")
}

/// Every manifest: its path and its documents.
fn manifests() -> Vec<(PathBuf, Vec<Value>)> {
    let mut found = Vec::new();
    for dir in ["examples/istio", "examples/envoy-gateway"] {
        for entry in fs::read_dir(repo_root().join(dir)).expect(dir) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let text = fs::read_to_string(&path).unwrap();
                let documents =
                    yaml_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                found.push((path, documents));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn kind(document: &Value) -> &str {
    document["kind"].as_str().unwrap_or("")
}

#[test]
fn the_crds_serve_the_three_kinds() {
    let kinds = crds().kinds();
    for expected in [
        "extensions.istio.io/v1alpha1 TrafficExtension",
        "extensions.istio.io/v1alpha1 WasmPlugin",
        "gateway.envoyproxy.io/v1alpha1 EnvoyExtensionPolicy",
    ] {
        assert!(kinds.iter().any(|k| k == expected), "{expected}: {kinds:?}");
    }
}

#[test]
fn every_manifest_is_valid_under_its_crd() {
    let crds = crds();
    let manifests = manifests();
    let kinds: Vec<&str> = manifests
        .iter()
        .flat_map(|(_, docs)| docs.iter().map(kind))
        .collect();
    assert_eq!(
        kinds,
        ["EnvoyExtensionPolicy", "TrafficExtension", "WasmPlugin"]
    );
    for (path, documents) in &manifests {
        for document in documents {
            let errors = crds.validate(document);
            assert!(
                errors.is_empty(),
                "{}:\n{}",
                path.display(),
                errors.join("\n")
            );
        }
    }
}

/// The policy each manifest hands the filter, and the fields that decide what a failed
/// pull or load does.
#[test]
fn every_manifest_carries_a_policy_that_compiles_and_fails_closed() {
    for (path, documents) in manifests() {
        let shown = path.display();
        for document in documents {
            let spec = &document["spec"];
            let (policy, checks): (&Value, Vec<(&Value, Value)>) = match kind(&document) {
                "TrafficExtension" => (
                    &spec["wasm"]["pluginConfig"],
                    vec![
                        (&spec["phase"], json!("AUTHN")),
                        (&spec["wasm"]["failStrategy"], json!("FAIL_CLOSE")),
                        (&spec["wasm"]["pluginName"], json!("scopegate")),
                    ],
                ),
                "WasmPlugin" => (
                    &spec["pluginConfig"],
                    vec![
                        (&spec["phase"], json!("AUTHN")),
                        (&spec["failStrategy"], json!("FAIL_CLOSE")),
                        (&spec["pluginName"], json!("scopegate")),
                    ],
                ),
                "EnvoyExtensionPolicy" => (
                    &spec["wasm"][0]["config"],
                    vec![
                        (&spec["wasm"][0]["failOpen"], json!(false)),
                        (&spec["wasm"][0]["rootID"], json!("scopegate")),
                        (&spec["wasm"][0]["code"]["type"], json!("Image")),
                    ],
                ),
                other => panic!("{shown}: unexpected kind {other}"),
            };
            for (found, expected) in checks {
                assert_eq!(found, &expected, "{shown}");
            }
            let sha256 = match kind(&document) {
                "TrafficExtension" => &spec["wasm"]["sha256"],
                "WasmPlugin" => &spec["sha256"],
                _ => &spec["wasm"][0]["code"]["image"]["sha256"],
            };
            assert!(
                sha256.as_str().is_some_and(|s| s.len() == 64),
                "{shown}: the image is pinned by its digest"
            );
            if let Err(e) = Policy::from_json(&policy.to_string()) {
                panic!("{shown}: the plugin configuration is not a policy: {e}");
            }
        }
    }
}

/// One manifest of `kind` with `edit` applied.
fn edited(kind_name: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut document = manifests()
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .find(|d| kind(d) == kind_name)
        .unwrap();
    edit(&mut document);
    document
}

#[test]
fn misspelled_and_wrong_fields_are_refused() {
    let crds = crds();
    let rename = |object: &mut Value, from: &str, to: &str| {
        let object = object.as_object_mut().unwrap();
        let value = object.remove(from).unwrap();
        object.insert(to.to_owned(), value);
    };
    let cases: Vec<(Value, &str)> = vec![
        // A misspelled field: unknown to the schema.
        (
            edited("TrafficExtension", |d| {
                rename(&mut d["spec"]["wasm"], "failStrategy", "failStratgy")
            }),
            "spec.wasm.failStratgy: unknown field",
        ),
        (
            edited("EnvoyExtensionPolicy", |d| {
                rename(&mut d["spec"]["wasm"][0], "failOpen", "failopen")
            }),
            "spec.wasm[0].failopen: unknown field",
        ),
        (
            edited("WasmPlugin", |d| {
                rename(&mut d["metadata"], "namespace", "namspace")
            }),
            "metadata.namspace: unknown field",
        ),
        // A value outside the enum: FAIL_CLOSED is how Envoy spells it, not Istio.
        (
            edited("WasmPlugin", |d| {
                d["spec"]["failStrategy"] = json!("FAIL_CLOSED")
            }),
            "spec.failStrategy: \"FAIL_CLOSED\" is none of",
        ),
        // A digest with its algorithm prefix does not match the pattern.
        (
            edited("TrafficExtension", |d| {
                d["spec"]["wasm"]["sha256"] = json!(format!(
                    "sha256:{}",
                    d["spec"]["wasm"]["sha256"].as_str().unwrap()
                ))
            }),
            "spec.wasm.sha256: \"sha256:",
        ),
        // A required field missing, a wrong type, and both wasm and lua.
        (
            edited("TrafficExtension", |d| {
                d["spec"]["wasm"].as_object_mut().unwrap().remove("url");
            }),
            "spec.wasm.url: required",
        ),
        (
            edited("EnvoyExtensionPolicy", |d| {
                d["spec"]["wasm"][0]["failOpen"] = json!("false")
            }),
            "spec.wasm[0].failOpen: must be of type boolean",
        ),
        (
            edited("TrafficExtension", |d| {
                d["spec"]["lua"] = json!({"inlineCode": "function envoy_on_request(h) end"})
            }),
            "spec: oneOf: 2 of 3 alternatives hold",
        ),
        (
            edited("WasmPlugin", |d| {
                d["apiVersion"] = json!("extensions.istio.io/v1")
            }),
            "is none of",
        ),
    ];
    for (document, expected) in cases {
        let errors = crds.validate(&document);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "expected {expected:?} in {errors:?}"
        );
    }
    // The plugin configuration keeps whatever it holds (x-kubernetes-preserve-unknown-fields).
    let extra = edited("WasmPlugin", |d| {
        d["spec"]["pluginConfig"]["anything"] = json!({"nested": [1, "two"]})
    });
    assert_eq!(crds.validate(&extra), Vec::<String>::new());
}

/// The jwt_authn pair of `examples/istio-jwt-authn/`: the WasmPlugin is valid under its CRD,
/// runs after Istio's authentication (AUTHZ), fails closed, and its policy's issuer is the
/// one RequestAuthentication verifies, keyed by the issuer as Istio keys the payload, with
/// the original token forwarded. (No RequestAuthentication CRD is in `../shared/third_party/`:
/// its fields are checked here by name.)
#[test]
fn the_istio_jwt_authn_pair_agrees() {
    let dir = repo_root().join("examples/istio-jwt-authn");
    let read = |name: &str| {
        let text = fs::read_to_string(dir.join(name)).unwrap();
        let mut documents = yaml_documents(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(documents.len(), 1, "{name}");
        documents.remove(0)
    };
    let plugin = read("wasm-plugin.yaml");
    let errors = crds().validate(&plugin);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let spec = &plugin["spec"];
    assert_eq!(spec["phase"], json!("AUTHZ"));
    assert_eq!(spec["failStrategy"], json!("FAIL_CLOSE"));
    let policy = Policy::from_json(&spec["pluginConfig"].to_string()).expect("the policy");
    let authn = read("request-authentication.yaml");
    assert_eq!(authn["apiVersion"], json!("security.istio.io/v1"));
    assert_eq!(authn["kind"], json!("RequestAuthentication"));
    let rule = &authn["spec"]["jwtRules"][0];
    assert_eq!(rule["forwardOriginalToken"], json!(true));
    let issuer = rule["issuer"].as_str().expect("an issuer");
    assert_eq!(policy.issuers()[0].issuer(), issuer);
    assert_eq!(
        spec["pluginConfig"]["issuers"][0]["jwt_authn"]["payload_in_metadata"],
        json!(issuer)
    );
    assert_eq!(
        authn["spec"]["selector"], spec["selector"],
        "the same workload"
    );
}
