//! `policy.schema.json` against the documents scopegate loads and refuses: every policy the
//! core loads is valid under the schema, and every document the schema refuses is refused
//! by the core as well, so editors and the gateway never disagree in that direction.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use scopegate_core::Policy;
use scopegate_tests::repo_root;
use serde_json::Value;

fn read(relative: &str) -> Value {
    let path = repo_root().join(relative);
    serde_json::from_str(&fs::read_to_string(&path).expect("file")).expect("JSON")
}

struct Schema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Schema {
    fn load() -> Self {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let location = "https://scopegate.dev/policy.schema.json";
        compiler
            .add_resource(location, read("policy.schema.json"))
            .expect("schema resource");
        let index = compiler
            .compile(location, &mut schemas)
            .expect("schema compiles");
        Self { schemas, index }
    }

    fn errors(&self, document: &Value) -> Option<String> {
        self.schemas
            .validate(document, self.index)
            .err()
            .map(|e| format!("{e:#}"))
    }
}

#[test]
fn loadable_policies_are_valid_under_the_schema() {
    let schema = Schema::load();
    let mut documents = vec![(
        "examples/policy.json".to_owned(),
        read("examples/policy.json"),
    )];
    for suite in read("tests/vectors/decisions.json")["suites"]
        .as_array()
        .expect("suites")
    {
        documents.push((
            format!("decisions suite {}", suite["name"]),
            suite["policy"].clone(),
        ));
    }
    documents.push((
        "policies.json base".to_owned(),
        read("tests/vectors/policies.json")["base"].clone(),
    ));
    // The gateway's `private_key_jwt` keys of each type.
    let keys = scopegate_tests::TestKeys::from_seed(4);
    for alg in ["EdDSA", "ES256", "RS256"] {
        let mut policy = read("examples/policy.json");
        policy["issuers"][0]["introspection"] = serde_json::json!({
            "endpoint": "https://idp.example/introspect", "cluster": "idp",
            "client_id": "gateway", "auth_method": "private_key_jwt",
            "private_key": keys.private_jwk(alg, "gw").0});
        documents.push((format!("a {alg} private_key"), policy));
    }
    for (name, document) in &documents {
        Policy::from_json(&document.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(errors) = schema.errors(document) {
            panic!("{name} is refused by the schema:\n{errors}");
        }
    }
    assert!(documents.len() >= 6);
}

#[test]
fn schema_invalid_documents_are_refused_by_both() {
    let schema = Schema::load();
    let cases = read("tests/vectors/schema-invalid.json");
    let cases = cases["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    for case in cases {
        let name = &case["name"];
        assert!(
            schema.errors(&case["policy"]).is_some(),
            "{name}: the schema accepts it"
        );
        assert!(
            Policy::from_json(&case["policy"].to_string()).is_err(),
            "{name}: scopegate loads it"
        );
    }
}
