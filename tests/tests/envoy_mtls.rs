//! Certificate-bound tokens (RFC 8705) in a real Envoy with mutual TLS: the filter asks
//! Envoy for the connection's client certificate digest
//! (`connection.sha256_peer_certificate_digest`) when a token carries `cnf.x5t#S256`, and
//! the token passes only on a connection that presented that certificate.
//!
//! The certificates are made for each run by Debian's `openssl` (a CA, the listener's
//! certificate for 127.0.0.1, two client certificates), and the requests are sent by
//! Debian's `curl`; `./scripts/setup` installs both. Envoy is stopped by PID when the test
//! ends.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64ct::{Base64UrlUnpadded, Encoding};
use scopegate_tests::harness::{
    envoy_config, on_a_free_port, Envoy, HttpServer, TempDir, Upstreams,
};
use scopegate_tests::{mint, unix_now, TestKeys};
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://idp.scopegate.test";
const AUDIENCE: &str = "https://api.scopegate.test";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's openssl; ./scripts/setup installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A key and a certificate signed by the test CA, for `name`, with these extensions.
fn issue(dir: &Path, name: &str, extensions: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), extensions).unwrap();
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ],
    );
}

/// RFC 8705 §3.1: the base64url SHA-256 of the certificate's DER encoding.
fn x5t_s256(dir: &Path, name: &str) -> String {
    let der = format!("{name}.der");
    openssl(
        dir,
        &[
            "x509",
            "-in",
            &format!("{name}.pem"),
            "-outform",
            "DER",
            "-out",
            &der,
        ],
    );
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-binary",
            "-out",
            &format!("{name}.sha256"),
            &der,
        ],
    );
    let digest = std::fs::read(dir.join(format!("{name}.sha256"))).unwrap();
    assert_eq!(digest.len(), 32);
    Base64UrlUnpadded::encode_string(&digest)
}

struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = TempDir::new("mtls");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=scopegate test CA",
                "-days",
                "1",
            ],
        );
        issue(
            dir.path(),
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        for client in ["alice-laptop", "mallory"] {
            issue(dir.path(), client, "extendedKeyUsage=clientAuth\n");
        }
        Self { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

/// `GET path` over TLS, with the client certificate `client` if any: the status and the
/// `WWW-Authenticate` header.
fn get(pki: &Pki, port: u16, path: &str, token: &str, client: Option<&str>) -> (u16, String) {
    let mut curl = Command::new("curl");
    curl.args([
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-D",
        "-",
    ])
    .arg("--cacert")
    .arg(pki.path("ca.pem"))
    .arg("-H")
    .arg(format!("Authorization: Bearer {token}"));
    if let Some(client) = client {
        curl.arg("--cert")
            .arg(pki.path(&format!("{client}.pem")))
            .arg("--key")
            .arg(pki.path(&format!("{client}.key")));
    }
    let output = curl
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl (Debian's curl; ./scripts/setup installs it)");
    let head = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "curl: {}{head}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let challenge = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("www-authenticate")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (status, challenge)
}

#[test]
fn a_certificate_bound_token_passes_only_with_its_certificate() {
    let pki = Pki::new();
    let keys = TestKeys::from_seed(1);
    let policy = json!({
        "version": 1,
        "realm": "api",
        "issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["EdDSA"],
                     "jwks": keys.jwks("")}],
        "routes": [{"path": "/api/**", "require": "api"}]
    });
    let api = HttpServer::echo();
    let envoy = on_a_free_port(|listen| {
        let mut config = envoy_config(
            listen,
            &Upstreams {
                api: api.port,
                jwks: None,
            },
            &policy.to_string(),
        );
        // Mutual TLS on the listener: a client certificate is optional, and verified against
        // the test CA when one is presented.
        config["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": false,
                "common_tls_context": {
                    "tls_certificates": [{
                        "certificate_chain": {"filename": pki.path("server.pem")},
                        "private_key": {"filename": pki.path("server.key")}
                    }],
                    "validation_context": {"trusted_ca": {"filename": pki.path("ca.pem")}}
                }
            }
        });
        Envoy::start(&config, listen)
    }).unwrap_or_else(|f| panic!("{}", f.log));
    let token = |claims: Value| {
        let mut all = Map::new();
        all.insert("iss".into(), json!(ISSUER));
        all.insert("aud".into(), json!(AUDIENCE));
        all.insert("sub".into(), json!("alice"));
        all.insert("exp".into(), json!(unix_now() + 600));
        all.insert("scope".into(), json!("api"));
        for (name, value) in claims.as_object().unwrap() {
            all.insert(name.clone(), value.clone());
        }
        mint(&keys, &json!({"alg": "EdDSA"}), &all)
    };
    let bound = token(json!({"cnf": {"x5t#S256": x5t_s256(pki.dir.path(), "alice-laptop")}}));
    let mismatch = "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access \
                    token is bound to a client certificate this connection did not present\"";

    assert_eq!(
        get(&pki, envoy.port, "/api/x", &bound, Some("alice-laptop")),
        (200, String::new()),
        "{}",
        envoy.log()
    );
    assert_eq!(
        get(&pki, envoy.port, "/api/x", &bound, Some("mallory")),
        (401, mismatch.to_owned())
    );
    assert_eq!(
        get(&pki, envoy.port, "/api/x", &bound, None),
        (401, mismatch.to_owned())
    );
    // An unbound token passes with a certificate or without one.
    let plain = token(json!({}));
    assert_eq!(
        get(&pki, envoy.port, "/api/x", &plain, Some("mallory")).0,
        200
    );
    assert_eq!(get(&pki, envoy.port, "/api/x", &plain, None).0, 200);
    // The verified token is cached; its binding is checked on every request all the same.
    assert_eq!(
        get(&pki, envoy.port, "/api/x", &bound, Some("alice-laptop")).0,
        200
    );
    assert_eq!(
        get(&pki, envoy.port, "/api/x", &bound, Some("mallory")).0,
        401
    );
}
