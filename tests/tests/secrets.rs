//! Secrets by reference: a policy whose introspection client secret and DPoP nonce secret
//! are `{"env": "NAME"}` runs in Envoy and nginx with the values in the Wasm VM's
//! environment, and neither value reaches the host's log; a variable that is not there
//! makes the host refuse the policy with a line that names it; the same document loads
//! without an environment (the browser package) and then fails closed; `lint` warns on
//! every secret written inline and on none named. Hosts are stopped by PID.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use scopegate_core::gateway::{Exchange, Gateway, Step};
use scopegate_core::{Policy, UnixTime};
use scopegate_tests::harness::{
    request, Host, HttpServer, Recorder, ServerRequest, ServerResponse, Upstreams,
};
use scopegate_tests::{example_policy_with_remote_keys, on_each_host, unix_now};
use serde_json::{json, Value};

on_each_host!(
    secrets_named_in_the_environment_are_read_from_the_vm_and_never_logged,
    a_secret_variable_the_vm_lacks_is_a_load_error_that_names_it,
);

const CLIENT_SECRET: &str = "introspection-s3cret-from-env";
/// 32 bytes, unpadded base64url.
const NONCE_SECRET: &str = "c2NvcGVnYXRlLWRwb3Atbm9uY2Utc2VjcmV0LTMyYnk";

/// The example policy with an introspecting issuer and server nonces, both secrets named.
fn policy(endpoint_port: u16) -> Value {
    let mut policy = example_policy_with_remote_keys("http://127.0.0.1:1/jwks", "jwks");
    policy.as_object_mut().unwrap().remove("resources");
    policy["issuers"][0]["introspection"] = json!({
        "endpoint": format!("http://127.0.0.1:{endpoint_port}/token/introspection"),
        "cluster": "jwks", "client_id": "gateway",
        "client_secret": {"env": "SCOPEGATE_CLIENT_SECRET"}
    });
    policy["dpop"] = json!({"algorithms": ["ES256"],
        "nonce": {"secret": {"env": "SCOPEGATE_DPOP_NONCE_SECRET"}}});
    policy
}

fn secrets_named_in_the_environment_are_read_from_the_vm_and_never_logged(host: Host) {
    let seen = Recorder::default();
    let recorded = seen.clone();
    let endpoint = HttpServer::start(move |req: &ServerRequest| {
        recorded.push(req);
        ServerResponse {
            status: 200,
            content_type: "application/json",
            body: json!({"active": true, "scope": "resource:read", "sub": "alice",
                "aud": "http://127.0.0.1:8080", "iss": "https://idp.scopegate.test",
                "exp": unix_now() + 600})
            .to_string(),
        }
    });
    let api = HttpServer::echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(endpoint.port),
    };
    let env = [
        ("SCOPEGATE_CLIENT_SECRET", CLIENT_SECRET),
        ("SCOPEGATE_DPOP_NONCE_SECRET", NONCE_SECRET),
    ];
    let proxy = host
        .start_with_env(&upstreams, &policy(endpoint.port), &env)
        .unwrap_or_else(|log| panic!("the host refused the policy:\n{log}"));
    let port = proxy.port();

    // The client secret from the environment authenticates the introspection call.
    let response = request(
        port,
        "GET",
        "/api/resources",
        &[("authorization", "Bearer opaque-env")],
    )
    .unwrap();
    assert_eq!(response.status, 200, "{response:?}\n{}", proxy.log());
    let call = seen
        .requests()
        .into_iter()
        .rfind(|r| r.target == "/token/introspection")
        .expect("an introspection call");
    // base64("gateway:introspection-s3cret-from-env")
    let basic = "Basic Z2F0ZXdheTppbnRyb3NwZWN0aW9uLXMzY3JldC1mcm9tLWVudg==";
    assert_eq!(call.header_values("authorization"), [basic]);

    // The nonce secret was read too: had it been missing, the host would have refused the
    // policy (the next test); what the nonces are is the core's test below.
    let log = proxy.log();
    for secret in [CLIENT_SECRET, NONCE_SECRET, &basic[6..]] {
        assert!(!log.contains(secret), "a secret in the host's log");
    }
}

fn a_secret_variable_the_vm_lacks_is_a_load_error_that_names_it(host: Host) {
    let api = HttpServer::echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: Some(api.port),
    };
    let env = [("SCOPEGATE_DPOP_NONCE_SECRET", NONCE_SECRET)];
    let refused = host.start_with_env(&upstreams, &policy(api.port), &env);
    let Err(log) = refused else {
        panic!("the host took a policy whose secret is missing")
    };
    assert!(
        log.contains(
            "issuers[0].introspection.client_secret.env: names the environment variable \
             `SCOPEGATE_CLIENT_SECRET`, which the Wasm VM does not have"
        ),
        "{log}"
    );
    assert!(!log.contains(NONCE_SECRET), "a secret in the host's log");
}

/// Without an environment (the browser package's load) the document loads; what needs a
/// secret then fails closed: no introspection call is made, no nonce is accepted.
#[test]
fn a_policy_loaded_without_an_environment_fails_closed_where_it_needs_a_secret() {
    let text = policy(9).to_string();
    let compiled = Policy::from_json(&text).expect("it loads");
    let nonces = compiled
        .dpop()
        .and_then(|d| d.nonce())
        .expect("nonce rules");
    let now = UnixTime(1_767_225_600);
    assert_eq!(nonces.issue(now), "", "no nonce is made");
    assert!(!nonces.accepts("", now), "and none accepted");
    let rules = compiled.issuers()[0]
        .introspection()
        .expect("introspection");
    assert!(rules.call("opaque", 0, 1, now).is_none(), "no call is made");
    // Through the gateway: the opaque token is refused, never let through.
    let mut gateway = Gateway::new(compiled);
    let headers: [(&[u8], &[u8]); 3] = [
        (b":method", b"GET"),
        (b":path", b"/api/resources"),
        (b"authorization", b"Bearer opaque"),
    ];
    let step = gateway.on_request_headers(&mut Exchange::default(), &headers, now);
    let Step::Respond(reply) = step else {
        panic!("expected a refusal, got {step:?}")
    };
    assert_eq!(reply.local_response().status, 401);

    // With the environment the same text compiles with the secrets, and its `Debug` has
    // neither.
    let env = |name: &str| match name {
        "SCOPEGATE_CLIENT_SECRET" => Some(CLIENT_SECRET.to_owned()),
        "SCOPEGATE_DPOP_NONCE_SECRET" => Some(NONCE_SECRET.to_owned()),
        _ => None,
    };
    let compiled = Policy::from_json_with_env(&text, &env).expect("it loads");
    let nonces = compiled
        .dpop()
        .and_then(|d| d.nonce())
        .expect("nonce rules");
    assert!(nonces.accepts(&nonces.issue(now), now));
    let shown = format!("{compiled:?}");
    assert!(!shown.contains(CLIENT_SECRET) && !shown.contains(NONCE_SECRET));
}

/// Bad references are load errors at their path; a private key named in the environment
/// must hold a JWK.
#[test]
fn secret_references_are_checked_where_they_are_written() {
    let base = policy(9);
    let cases = [
        (
            json!({"env": "1BAD"}),
            "issuers[0].introspection.client_secret.env",
        ),
        (
            json!({"env": "OK", "also": 1}),
            "issuers[0].introspection.client_secret.also",
        ),
        (json!(7), "issuers[0].introspection.client_secret"),
    ];
    for (secret, path) in cases {
        let mut doc = base.clone();
        doc["issuers"][0]["introspection"]["client_secret"] = secret;
        let err = Policy::from_json(&doc.to_string()).unwrap_err();
        assert_eq!(err.path, path, "{err}");
    }
    let mut doc = base.clone();
    let introspection = &mut doc["issuers"][0]["introspection"];
    introspection
        .as_object_mut()
        .unwrap()
        .remove("client_secret");
    introspection["auth_method"] = json!("private_key_jwt");
    introspection["private_key"] = json!({"env": "GATEWAY_KEY"});
    let text = doc.to_string();
    let env = |name: &str| {
        (name == "GATEWAY_KEY" || name == "SCOPEGATE_DPOP_NONCE_SECRET")
            .then(|| String::from("not json"))
    };
    let err = Policy::from_json_with_env(&text, &env).unwrap_err();
    assert_eq!(err.path, "issuers[0].introspection.private_key.env");
    assert!(!err.message.contains("not json"), "{err}");
}

/// `lint` warns on each secret written in the document, and on none named.
#[test]
fn lint_warns_on_inline_secrets_only() {
    let named = policy(9).to_string();
    let inline_secrets = |text: &str| -> Vec<String> {
        scopegate_core::lint::lint(text, &[])
            .into_iter()
            .filter(|f| f.rule == "inline-secret")
            .map(|f| f.path)
            .collect()
    };
    assert_eq!(inline_secrets(&named), Vec::<String>::new());
    let mut inline = policy(9);
    inline["issuers"][0]["introspection"]["client_secret"] = json!(CLIENT_SECRET);
    inline["dpop"]["nonce"]["secret"] = json!(NONCE_SECRET);
    let found = inline_secrets(&inline.to_string());
    assert_eq!(
        found,
        [
            "issuers[0].introspection.client_secret",
            "dpop.nonce.secret"
        ]
    );
    let messages: String = scopegate_core::lint::lint(&inline.to_string(), &[])
        .iter()
        .map(|f| f.message.clone())
        .collect();
    assert!(!messages.contains(CLIENT_SECRET) && !messages.contains(NONCE_SECRET));
}
