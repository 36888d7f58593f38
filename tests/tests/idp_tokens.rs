//! Tokens of a real issuer that the gateway cannot judge alone, in a real Envoy: the demo
//! IdP (npm `oidc-provider`, `examples/idp/idp.mjs --opaque-resource`) issues opaque access
//! tokens, which the filter introspects at the IdP's RFC 7662 endpoint, and DPoP-bound
//! tokens (RFC 9449), JWT and opaque, for proofs made by npm's `dpop` package
//! (`tests/e2e/dpop-proofs.mjs`). A revoked token is refused once its kept answer is stale.
//! The IdP and Envoy are stopped by PID when the test ends.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::thread;
use std::time::Duration;

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use scopegate_tests::dpop::{client_key, proof};
use scopegate_tests::harness::{
    envoy_config, free_port, on_a_free_port, request, send_raw, Envoy, HttpServer, Response,
    Upstreams,
};
use scopegate_tests::node::{node_command, NodeProcess};
use scopegate_tests::repo_root;
use serde_json::{json, Value};

const SECRET: &str = "demo-client-secret-for-tests";

/// `POST path` with a form body, as `scopegate-service` (client_secret_basic).
fn post_form(port: u16, path: &str, form: &str, dpop: Option<&str>) -> Response {
    let basic = Base64::encode_string(format!("scopegate-service:{SECRET}").as_bytes());
    let dpop = dpop.map_or(String::new(), |proof| format!("dpop: {proof}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Basic {basic}\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n{dpop}\
         connection: close\r\n\r\n{form}",
        form.len()
    );
    send_raw(port, head.as_bytes()).expect("the IdP answers")
}

/// A client-credentials token for `resource` with `scope`, bound to a DPoP key if a proof
/// for the token endpoint is given: (access token, token type).
fn token(idp: u16, resource: &str, scope: &str, dpop: Option<&str>) -> (String, String) {
    let form = format!("grant_type=client_credentials&resource={resource}&scope={scope}");
    let response = post_form(idp, "/token", &form, dpop);
    assert_eq!(response.status, 200, "{response:?}");
    let body = response.json();
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    (
        access,
        body["token_type"].as_str().expect("token_type").to_owned(),
    )
}

fn call(
    port: u16,
    method: &str,
    path: &str,
    scheme: &str,
    token: &str,
    dpop: Option<&str>,
) -> Response {
    let auth = format!("{scheme} {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(dpop.map(|proof| ("dpop", proof)));
    request(port, method, path, &headers).expect("Envoy answers")
}

fn description(response: &Response) -> String {
    let challenge = response.header("www-authenticate").unwrap_or_default();
    let (_, rest) = challenge
        .split_once("error_description=\"")
        .unwrap_or(("", ""));
    rest.split('"').next().unwrap_or("").to_owned()
}

#[test]
fn the_demo_idps_opaque_and_dpop_bound_tokens_are_judged_through_envoy() {
    let (idp_port, envoy_port) = (free_port(), free_port());
    let idp = format!("http://127.0.0.1:{idp_port}");
    let api = format!("http://127.0.0.1:{envoy_port}");
    let opaque = format!("http://127.0.0.1:{envoy_port}/opaque");
    let gateway_key = gateway_key();
    // The same gateway's P-256 and RSA keys, for clients that sign with ES256 and RS256.
    let gateway_keys = scopegate_tests::TestKeys::from_seed(11);
    let signing_keys = ["ES256", "RS256"].map(|alg| {
        let (private, public) = gateway_keys.private_jwk(alg, &format!("gateway-{alg}"));
        (alg, private, public)
    });
    let mut command = node_command();
    command.arg(repo_root().join("examples/idp/idp.mjs")).args([
        "--port",
        &idp_port.to_string(),
        "--audience",
        &api,
        "--opaque-resource",
        &opaque,
        "--client-secret",
        SECRET,
        "--gateway-jwk",
        &gateway_key.1.to_string(),
        "--gateway-jwk",
        &signing_keys[0].2.to_string(),
        "--gateway-jwk",
        &signing_keys[1].2.to_string(),
    ]);
    let _idp = NodeProcess::spawn(
        "the IdP",
        command,
        Some(" ready "),
        Duration::from_secs(30),
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let policy = json!({
        "version": 1,
        "realm": "api",
        "issuers": [{
            "issuer": idp, "audiences": [api, opaque], "algorithms": ["ES256"],
            "token_type": "at+jwt",
            "jwks_uri": format!("{idp}/jwks"), "jwks_cluster": "jwks",
            "introspection": {
                "endpoint": format!("{idp}/token/introspection"), "cluster": "jwks",
                "client_id": "scopegate-gateway", "client_secret": SECRET, "cache_seconds": 1
            }
        }],
        "routes": [
            {"path": "/api/write", "require": "resource:write"},
            {"path": "/api/**", "require": "resource:read"}
        ],
        "dpop": {"algorithms": ["ES256"]}
    });
    let upstream = HttpServer::echo();
    let upstreams = Upstreams {
        api: upstream.port,
        jwks: Some(idp_port),
    };
    let config = envoy_config(envoy_port, &upstreams, &policy.to_string());
    let envoy = Envoy::start(&config, envoy_port).unwrap_or_else(|f| panic!("{}", f.log));
    let port = envoy.port;

    // An opaque bearer token: introspected at the IdP, then decided by its scopes.
    let (access, kind) = token(idp_port, &opaque, "resource:read", None);
    assert_eq!(kind, "Bearer");
    assert!(!access.contains('.'), "an opaque token: {access}");
    let ok = call(port, "GET", "/api/items", "Bearer", &access, None);
    assert_eq!(ok.status, 200, "{ok:?}\n{}", envoy.log());
    let write = call(port, "GET", "/api/write", "Bearer", &access, None);
    assert_eq!(write.status, 403, "{write:?}");
    assert!(
        write
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"resource:write\""),
        "{write:?}"
    );
    // Revoked at the IdP: refused once the kept answer (cache_seconds 1) is stale.
    let revoked = post_form(
        idp_port,
        "/token/revocation",
        &format!("token={access}"),
        None,
    );
    assert_eq!(revoked.status, 200, "{revoked:?}");
    thread::sleep(Duration::from_millis(2_100));
    let refused = call(port, "GET", "/api/items", "Bearer", &access, None);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(description(&refused), "The access token is not active");

    // DPoP-bound tokens, JWT and opaque, for a key of the `dpop` package.
    let key = client_key("ES256");
    let htu = format!("{api}/api/items");
    for resource in [&api, &opaque] {
        let for_token = proof(&key, "", "no_token_hash", "POST", &format!("{idp}/token"));
        let (access, kind) = token(idp_port, resource, "resource:read", Some(&for_token));
        assert_eq!(kind, "DPoP", "{resource}");
        let valid = proof(&key, &access, "valid", "GET", &htu);
        let ok = call(port, "GET", "/api/items", "DPoP", &access, Some(&valid));
        assert_eq!(ok.status, 200, "{resource}: {ok:?}\n{}", envoy.log());
        let replayed = call(port, "GET", "/api/items", "DPoP", &access, Some(&valid));
        assert_eq!(replayed.status, 401, "{resource}: {replayed:?}");
        assert_eq!(description(&replayed), "The DPoP proof was already used");
        let bearer = call(port, "GET", "/api/items", "Bearer", &access, None);
        assert_eq!(bearer.status, 401, "{resource}: {bearer:?}");
        assert_eq!(
            description(&bearer),
            "The access token is bound to a DPoP key and needs a DPoP proof"
        );
        let other_key = proof(&key, &access, "other_key", "GET", &htu);
        let stolen = call(port, "GET", "/api/items", "DPoP", &access, Some(&other_key));
        assert_eq!(
            description(&stolen),
            "The DPoP proof key is not the key the access token is bound to",
            "{resource}"
        );
    }
    assert!(
        !envoy.log().contains(SECRET),
        "the client secret in Envoy's log"
    );

    // The same IdP introspecting for a gateway that signs RFC 7523 client assertions and
    // takes signed answers (RFC 9701).
    let mut jwt_policy = policy.clone();
    jwt_policy["issuers"][0]["introspection"] = json!({
        "endpoint": format!("{idp}/token/introspection"), "cluster": "jwks",
        "client_id": "scopegate-gateway-jwt", "auth_method": "private_key_jwt",
        "private_key": gateway_key.0, "jwt_response": true});
    let jwt_envoy = on_a_free_port(|listen| {
        let config = envoy_config(listen, &upstreams, &jwt_policy.to_string());
        Envoy::start(&config, listen)
    })
    .unwrap_or_else(|f| panic!("{}", f.log));
    let (access, _) = token(idp_port, &opaque, "resource:read", None);
    let ok = call(jwt_envoy.port, "GET", "/api/items", "Bearer", &access, None);
    assert_eq!(ok.status, 200, "{ok:?}\n{}", jwt_envoy.log());
    let write = call(jwt_envoy.port, "GET", "/api/write", "Bearer", &access, None);
    assert_eq!(write.status, 403, "{write:?}");
    let d = gateway_key.0["d"].as_str().unwrap();
    assert!(
        !jwt_envoy.log().contains(d),
        "the private key in Envoy's log"
    );
    drop(jwt_envoy);

    // The IdP takes ES256 and RS256 client assertions too (its clients
    // `scopegate-gateway-jwt-es256` and `-rs256`): the opaque token is introspected as active.
    for (alg, private_key, _) in &signing_keys {
        let mut policy = jwt_policy.clone();
        policy["issuers"][0]["introspection"]["client_id"] =
            json!(format!("scopegate-gateway-jwt-{}", alg.to_lowercase()));
        policy["issuers"][0]["introspection"]["private_key"] = private_key.clone();
        let envoy = on_a_free_port(|listen| {
            let config = envoy_config(listen, &upstreams, &policy.to_string());
            Envoy::start(&config, listen)
        })
        .unwrap_or_else(|f| panic!("{}", f.log));
        let (access, _) = token(idp_port, &opaque, "resource:read", None);
        let ok = call(envoy.port, "GET", "/api/items", "Bearer", &access, None);
        assert_eq!(ok.status, 200, "{alg}: {ok:?}\n{}", envoy.log());
        let write = call(envoy.port, "GET", "/api/write", "Bearer", &access, None);
        assert_eq!(write.status, 403, "{alg}: {write:?}");
        let d = private_key["d"].as_str().unwrap();
        assert!(
            !envoy.log().contains(d),
            "{alg}: the private key in Envoy's log"
        );
    }
}

/// An Ed25519 key pair for the gateway's client assertions: (private JWK, public JWK).
fn gateway_key() -> (Value, Value) {
    let keys = scopegate_tests::TestKeys::from_seed(11);
    let x = Base64UrlUnpadded::encode_string(keys.ed.verifying_key().as_bytes());
    let d = Base64UrlUnpadded::encode_string(&keys.ed.to_bytes());
    let public = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "gateway-1"});
    let mut private = public.clone();
    private["d"] = json!(d);
    (private, public)
}
