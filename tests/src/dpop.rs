//! DPoP proofs (RFC 9449) made by npm's `dpop` package, through `tests/e2e/dpop-proofs.mjs`:
//! client keys, valid proofs and hostile ones, for the real-Envoy and demo-IdP tests.

use serde_json::{json, Value};

use crate::harness::TempDir;
use crate::node::node_command;
use crate::repo_root;

/// Runs `tests/e2e/dpop-proofs.mjs` with these arguments (Node 22 from `.tools/` when
/// installed); its JSON output.
pub fn dpop_proofs(args: &[&str]) -> Value {
    let script = repo_root().join("tests/e2e/dpop-proofs.mjs");
    let output = node_command()
        .arg(&script)
        .args(args)
        .output()
        .expect("node (./scripts/setup installs the e2e packages)");
    assert!(
        output.status.success(),
        "node {} {args:?}: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from dpop-proofs.mjs")
}

/// A new client key pair of `alg`: its JWKs and the `dpop` package's thumbprint.
pub fn client_key(alg: &str) -> Value {
    dpop_proofs(&["key", alg])
}

/// The proofs a spec asks for (`alg`, `privateJwk`, `publicJwk`, `token`, `requests`), by
/// request name.
pub fn proofs_of_spec(spec: &Value) -> Value {
    let dir = TempDir::new("dpop");
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).expect("write the spec");
    dpop_proofs(&["proofs", path.to_str().expect("UTF-8 path")])
}

/// The proofs of `requests` (name, kind, htm, htu) by `key` for `token`.
pub fn proofs(alg: &str, key: &Value, token: &str, requests: &[(&str, &str, &str, &str)]) -> Value {
    proofs_of_spec(&json!({
        "alg": alg,
        "privateJwk": key["privateJwk"],
        "publicJwk": key["publicJwk"],
        "token": token,
        "requests": requests.iter().map(|(name, kind, htm, htu)| {
            json!({"name": name, "kind": kind, "htm": htm, "htu": htu})
        }).collect::<Vec<_>>(),
    }))
}

/// One ES256 proof by `key` of `kind` for `htm htu`, bound to `token` (`""`: none).
pub fn proof(key: &Value, token: &str, kind: &str, htm: &str, htu: &str) -> String {
    proofs("ES256", key, token, &[("p", kind, htm, htu)])["p"]
        .as_str()
        .expect("a proof")
        .to_owned()
}
