//! Test support for scopegate: deterministic test keys, a JWS signer that can also forge
//! (`alg: none`, key confusion, tampering), and the token specs used by the shared vectors.
//!
//! The keys come from fixed seeds, so `gen-vectors` reproduces the same JWKS every time;
//! they protect nothing and must never be used outside tests and the demo.

// Test support: a failed expectation here is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod crd;
pub mod dpop;
pub mod harness;
pub mod node;
pub mod oci;
pub mod vectors;

use std::path::PathBuf;

use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use scopegate_core::{KeySet, KeyStore, Policy, Request, UnixTime};
use serde_json::{json, Map, Value};

/// The repository root (the parent of `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The `scopegate` binary of this build, in `target/<profile>/` beside this binary (or
/// beside the test binary's `deps/`): `cargo test --workspace` builds it with the tests.
pub fn scopegate_binary() -> PathBuf {
    workspace_binary("scopegate", "scopegate-cli")
}

/// The binary `name` of the workspace package `package`, as [`scopegate_binary`] finds it.
pub fn workspace_binary(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this binary's path");
    let parent = exe.parent().expect("target/<profile>");
    let dir = if parent.ends_with("deps") {
        parent.parent().expect("target/<profile>")
    } else {
        parent
    };
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or build {package})",
        binary.display()
    );
    binary
}

/// Seconds since 1970, from the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An access token for `alice` from the policy's first issuer with inline keys (the test
/// issuer; `keys` sign it), issued now and valid for `lifetime` seconds, with `extra`
/// claims added. `None` when the policy has no issuer with inline keys.
pub fn alice_token(
    keys: &TestKeys,
    policy: &Value,
    alg: &str,
    lifetime: u64,
    extra: &Value,
) -> Option<String> {
    let issuer = policy["issuers"]
        .as_array()?
        .iter()
        .find(|issuer| issuer.get("jwks").is_some())?;
    let now = unix_now();
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer["issuer"].clone());
    claims.insert("aud".into(), issuer["audiences"][0].clone());
    claims.insert("sub".into(), json!("alice"));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime));
    for (name, value) in extra.as_object().into_iter().flatten() {
        claims.insert(name.clone(), value.clone());
    }
    Some(mint(keys, &json!({ "alg": alg }), &claims))
}

/// The test issuer's signing keys.
pub struct TestKeys {
    /// RSA 2048, kid `rsa-1`.
    pub rsa: RsaPrivateKey,
    /// P-256, kid `ec-1`.
    pub ec: p256::ecdsa::SigningKey,
    /// Ed25519, kid `ed-1`.
    pub ed: ed25519_dalek::SigningKey,
}

/// The shared HS256 secret of the `hmac` vector suite (base64url of 32 ASCII bytes).
pub const HMAC_SECRET: &[u8] = b"scopegate-test-hmac-secret-32-b!";

impl TestKeys {
    /// The keys for `seed` (the vectors and the demo use seed 1; rotation tests others).
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let rsa = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        let ec = p256::ecdsa::SigningKey::random(&mut rng);
        let ed = ed25519_dalek::SigningKey::generate(&mut rng);
        Self { rsa, ec, ed }
    }

    /// The public JWKS with kids `{prefix}rsa-1`, `{prefix}ec-1`, `{prefix}ed-1`.
    pub fn jwks(&self, kid_prefix: &str) -> Value {
        let rsa_public = self.rsa.to_public_key();
        let ec_public = *self.ec.verifying_key();
        let ed_public = self.ed.verifying_key();
        let entries = [
            (JsonWebKey::from(&rsa_public), "rsa-1"),
            (JsonWebKey::from(&ec_public), "ec-1"),
            (JsonWebKey::from(&ed_public), "ed-1"),
        ];
        let keys: Vec<Value> = entries
            .into_iter()
            .map(|(jwk, kid)| {
                let mut value = serde_json::to_value(&jwk).expect("JWK serializes");
                let object = value.as_object_mut().expect("JWK is an object");
                object.insert("kid".into(), json!(format!("{kid_prefix}{kid}")));
                object.insert("use".into(), json!("sig"));
                value
            })
            .collect();
        json!({ "keys": keys })
    }

    /// The key of `alg` (`EdDSA`, `ES256` or `RS256`) as a private JWK with `kid` (the RSA key
    /// with its CRT members `p`, `q`, `dp`, `dq`, `qi`), and its public JWK: a gateway's
    /// `private_key_jwt` credentials.
    pub fn private_jwk(&self, alg: &str, kid: &str) -> (Value, Value) {
        use rsa::traits::PrivateKeyParts;
        let b64 = |bytes: &[u8]| Value::from(Base64UrlUnpadded::encode_string(bytes));
        let (mut public, private): (Value, Vec<(&str, Vec<u8>)>) = match alg {
            "EdDSA" => (
                json!({"kty": "OKP", "crv": "Ed25519",
                       "x": b64(self.ed.verifying_key().as_bytes())}),
                vec![("d", self.ed.to_bytes().to_vec())],
            ),
            "ES256" => (
                serde_json::to_value(JsonWebKey::from(self.ec.verifying_key())).unwrap(),
                vec![("d", self.ec.to_bytes().to_vec())],
            ),
            "RS256" => {
                let rsa = &self.rsa;
                let primes = rsa.primes();
                (
                    serde_json::to_value(JsonWebKey::from(&rsa.to_public_key())).unwrap(),
                    vec![
                        ("d", rsa.d().to_bytes_be()),
                        ("p", primes[0].to_bytes_be()),
                        ("q", primes[1].to_bytes_be()),
                        ("dp", rsa.dp().unwrap().to_bytes_be()),
                        ("dq", rsa.dq().unwrap().to_bytes_be()),
                        ("qi", rsa.crt_coefficient().unwrap().to_bytes_be()),
                    ],
                )
            }
            other => panic!("no {other} key"),
        };
        public["kid"] = json!(kid);
        public["alg"] = json!(alg);
        let mut private_jwk = public.clone();
        for (name, bytes) in private {
            private_jwk[name] = b64(&bytes);
        }
        (private_jwk, public)
    }

    /// The canonical JSON of the RSA public key: what an attacker would use as an HMAC
    /// secret in an RS256/HS256 confusion attack.
    pub fn rsa_public_json(&self) -> String {
        let public = self.rsa.to_public_key();
        let jwk = JsonWebKey::from(&public);
        serde_json::to_string(&jwk).expect("JWK serializes")
    }

    /// Signs `header.claims` with the key `signer` names; `header.alg` is not consulted, so
    /// that mismatches can be forged.
    pub fn sign(&self, header: &Value, claims: &Value, signer: &str) -> String {
        let input = format!("{}.{}", b64_json(header), b64_json(claims));
        let message = input.as_bytes();
        let signature: Vec<u8> = match signer {
            "RS256" => Rsa::rs256()
                .sign(&self.rsa, message)
                .as_bytes()
                .into_owned(),
            "RS384" => Rsa::rs384()
                .sign(&self.rsa, message)
                .as_bytes()
                .into_owned(),
            "RS512" => Rsa::rs512()
                .sign(&self.rsa, message)
                .as_bytes()
                .into_owned(),
            "PS256" => Rsa::ps256()
                .sign(&self.rsa, message)
                .as_bytes()
                .into_owned(),
            "ES256" => Es256.sign(&self.ec, message).as_bytes().into_owned(),
            "EdDSA" => Ed25519.sign(&self.ed, message).as_bytes().into_owned(),
            "HS256" => Hs256
                .sign(&Hs256Key::new(HMAC_SECRET), message)
                .as_bytes()
                .into_owned(),
            "HS256-with-rsa-public-key" => Hs256
                .sign(&Hs256Key::new(self.rsa_public_json()), message)
                .as_bytes()
                .into_owned(),
            "none" => Vec::new(),
            other => panic!("unknown signer `{other}`"),
        };
        format!("{input}.{}", Base64UrlUnpadded::encode_string(&signature))
    }
}

/// The seed of the DPoP client's keys in the vectors (the issuer's are seed 1).
pub const CLIENT_SEED: u64 = 7;

impl TestKeys {
    /// The public JWK of the key `alg` signs with (no `kid`, no `use`): what a DPoP proof
    /// embeds.
    pub fn public_jwk(&self, alg: &str) -> Value {
        let jwk = match alg {
            "RS256" | "PS256" | "RS384" | "RS512" => {
                serde_json::to_value(JsonWebKey::from(&self.rsa.to_public_key()))
            }
            "ES256" => serde_json::to_value(JsonWebKey::from(self.ec.verifying_key())),
            "EdDSA" => serde_json::to_value(JsonWebKey::from(&self.ed.verifying_key())),
            other => panic!("no public key for `{other}`"),
        };
        jwk.expect("JWK serializes")
    }

    /// The RFC 7638 thumbprint (base64url SHA-256) of that key, as jwt-compact computes it:
    /// what a DPoP-bound token's `cnf.jkt` holds.
    pub fn jkt(&self, alg: &str) -> String {
        let jwk: JsonWebKey<'_> =
            serde_json::from_value(self.public_jwk(alg)).expect("JWK deserializes");
        Base64UrlUnpadded::encode_string(&jwk.thumbprint::<sha2::Sha256>())
    }
}

/// `ath` of a DPoP proof for `token`: base64url SHA-256 of its bytes.
pub fn access_token_hash(token: &str) -> String {
    use sha2::Digest;
    Base64UrlUnpadded::encode_string(&sha2::Sha256::digest(token.as_bytes()))
}

/// Mints the DPoP proof a spec describes, by the client keys `client`, for a request of
/// `method` to `htu` at `now` with `token`.
///
/// A spec is a string (used as the proof) or an object: `alg` (default ES256), `signer`
/// (default the `alg`; `none` for no signature), `jwk` (whose public key to embed, by
/// algorithm: default the signer's; `"other"` for another client's key of that type),
/// `header` and `claims` merged over the defaults (`typ: dpop+jwt`, the `jwk`; `jti`,
/// `htm`, `htu`, `iat`, `ath`; `null` removes), `tamper: "signature"` (a bit of it flipped)
/// or `tamper: "small-order-signature"` (R the identity, s = 0).
pub fn mint_proof(
    client: &TestKeys,
    spec: &Value,
    method: &str,
    htu: &str,
    token: &str,
    now: u64,
) -> String {
    if let Some(raw) = spec.as_str() {
        return raw.to_owned();
    }
    let spec = spec
        .as_object()
        .expect("proof spec is a string or an object");
    let alg = spec.get("alg").and_then(Value::as_str).unwrap_or("ES256");
    let signer = spec.get("signer").and_then(Value::as_str).unwrap_or(alg);
    let jwk = match spec.get("jwk").and_then(Value::as_str) {
        Some("other") => TestKeys::from_seed(CLIENT_SEED + 1).public_jwk(alg),
        Some(other) => client.public_jwk(other),
        None if signer == "none" || signer.starts_with("HS") => client.public_jwk("ES256"),
        None => client.public_jwk(signer),
    };
    let mut header = Map::new();
    header.insert("typ".into(), json!("dpop+jwt"));
    header.insert("alg".into(), json!(alg));
    header.insert("jwk".into(), jwk);
    merge(&mut header, spec.get("header"));
    let mut claims = Map::new();
    let jti = format!("{:x}", {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{method} {htu} {now} {spec:?}"));
        u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
    });
    claims.insert("jti".into(), json!(jti));
    claims.insert("htm".into(), json!(method));
    claims.insert("htu".into(), json!(htu));
    claims.insert("iat".into(), json!(now));
    claims.insert("ath".into(), json!(access_token_hash(token)));
    merge(&mut claims, spec.get("claims"));
    let proof = client.sign(&Value::Object(header), &Value::Object(claims), signer);
    match spec.get("tamper").and_then(Value::as_str) {
        Some("signature") => {
            let (input, signature) = proof.rsplit_once('.').expect("a JWS");
            let mut bytes = Base64UrlUnpadded::decode_vec(signature).expect("base64url");
            bytes[0] ^= 1;
            format!("{input}.{}", Base64UrlUnpadded::encode_string(&bytes))
        }
        // R = the identity's encoding and s = 0: what verifies for every message under the
        // identity as an Ed25519 key (a point of small order).
        Some("small-order-signature") => {
            let (input, _) = proof.rsplit_once('.').expect("a JWS");
            let mut bytes = [0u8; 64];
            bytes[0] = 1;
            format!("{input}.{}", Base64UrlUnpadded::encode_string(&bytes))
        }
        Some(other) => panic!("unknown tamper `{other}`"),
        None => proof,
    }
}

fn b64_json(value: &Value) -> String {
    Base64UrlUnpadded::encode_string(value.to_string().as_bytes())
}

/// Mints the token a vector's `token` spec describes.
///
/// A spec is either a string (used as the token), or an object:
/// `signer` (default: the `alg`), `alg`, `kid` (default from the signer), `header`
/// (merged; `null` removes), `claims` (merged over `defaults`; `null` removes),
/// `tamper: "payload"` (re-encodes the claims after signing), `repeat: N` (a token of N
/// bytes of `a`).
pub fn mint(keys: &TestKeys, spec: &Value, defaults: &Map<String, Value>) -> String {
    if let Some(raw) = spec.as_str() {
        return raw.to_owned();
    }
    let spec = spec
        .as_object()
        .expect("token spec is a string or an object");
    if let Some(n) = spec.get("repeat").and_then(Value::as_u64) {
        return "a".repeat(n as usize);
    }
    let alg = spec.get("alg").and_then(Value::as_str).unwrap_or("RS256");
    let signer = spec.get("signer").and_then(Value::as_str).unwrap_or(alg);
    let default_kid = match signer {
        "RS256" | "RS384" | "RS512" | "PS256" => Some("rsa-1"),
        "ES256" => Some("ec-1"),
        "EdDSA" => Some("ed-1"),
        _ => None,
    };
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg));
    header.insert("typ".into(), json!("at+jwt"));
    if let Some(kid) = default_kid {
        header.insert("kid".into(), json!(kid));
    }
    merge(&mut header, spec.get("header"));
    let mut claims = defaults.clone();
    merge(&mut claims, spec.get("claims"));
    let header = Value::Object(header);
    let claims = Value::Object(claims);
    let token = keys.sign(&header, &claims, signer);
    match spec.get("tamper").and_then(Value::as_str) {
        Some("payload") => {
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let mut forged = claims.clone();
            forged["scope"] = json!("resource:read resource:write");
            parts[1] = b64_json(&forged);
            parts.join(".")
        }
        Some(other) => panic!("unknown tamper `{other}`"),
        None => token,
    }
}

fn merge(target: &mut Map<String, Value>, changes: Option<&Value>) {
    let Some(changes) = changes.and_then(Value::as_object) else {
        return;
    };
    for (name, value) in changes {
        if value.is_null() {
            target.remove(name);
        } else {
            target.insert(name.clone(), value.clone());
        }
    }
}

/// A suite of `tests/vectors/decisions.json`: its compiled policy, the remote keys it says
/// were fetched (`fetched_jwks`, by issuer position), and its `now`.
pub fn decision_suite(suite: &Value) -> (Policy, KeyStore, UnixTime) {
    let name = suite["name"].as_str().expect("suite name");
    let policy = Policy::from_json(&suite["policy"].to_string())
        .unwrap_or_else(|e| panic!("[{name}] policy: {e}"));
    let mut keys = KeyStore::default();
    for (issuer, jwks) in suite["fetched_jwks"].as_object().expect("fetched_jwks") {
        let set = KeySet::from_value(jwks).expect("fetched JWKS");
        keys.install(issuer.parse().expect("issuer index"), set);
    }
    let now = UnixTime(suite["now"].as_u64().expect("now"));
    (policy, keys, now)
}

/// Calls `f` with the [`Request`] a vector's `request` object describes: `method`, `path`,
/// `authorization` (every value, in order), `origin`, `access_control_request_method`,
/// `mcp_method`, `mcp_name`, `mcp_protocol_version`, `body` (text), `dpop` (every value), `scheme` and `authority`.
pub fn with_vector_request<R>(request: &Value, f: impl FnOnce(&Request<'_>) -> R) -> R {
    let text = |field: &str| request.get(field).and_then(Value::as_str);
    let authorization: Vec<&str> = request
        .get("authorization")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut parsed = Request::new(text("method").expect("method"), text("path").expect("path"))
        .with_authorization(&authorization);
    parsed.origin = text("origin");
    parsed.access_control_request_method = text("access_control_request_method");
    parsed.mcp_method = text("mcp_method");
    parsed.mcp_name = text("mcp_name");
    parsed.mcp_protocol_version = text("mcp_protocol_version");
    parsed.body = text("body").map(str::as_bytes);
    let dpop: Vec<&str> = request
        .get("dpop")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    parsed.dpop = &dpop;
    parsed.scheme = text("scheme");
    parsed.authority = text("authority");
    f(&parsed)
}

/// The example policy with only its test issuer, whose inline keys are swapped for a
/// `jwks_uri` fetched over `cluster`, re-fetched at most once a second: what the Envoy and
/// gateway tests run against their own JWKS server.
pub fn example_policy_with_remote_keys(jwks_uri: &str, cluster: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples/policy.json")).expect("policy");
    let mut policy: Value = serde_json::from_str(&text).expect("JSON");
    // The demo IdP's issuer (the second) has no cluster in the tests.
    policy["issuers"]
        .as_array_mut()
        .expect("issuers")
        .truncate(1);
    let issuer = policy["issuers"][0].as_object_mut().expect("issuer");
    issuer.remove("jwks");
    issuer.insert("jwks_uri".into(), json!(jwks_uri));
    issuer.insert("jwks_cluster".into(), json!(cluster));
    issuer.insert("jwks_refetch_seconds".into(), json!(1));
    policy
}

/// Claims of a read token of the example policy's test issuer, valid until `exp`, for
/// [`mint`]: `iss`, `aud`, `exp` and `scope` (`resource:read`).
pub fn read_token_claims(exp: u64) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!("https://idp.scopegate.test"));
    claims.insert("aud".into(), json!("http://127.0.0.1:8080"));
    claims.insert("exp".into(), json!(exp));
    claims.insert("scope".into(), json!("resource:read"));
    claims
}
