//! Shared pieces of the fuzz targets: the policies they decide against, the input framing,
//! and the invariants every [`Decision`] must satisfy. See docs/fuzzing.md.

use std::sync::OnceLock;

use base64ct::{Base64UrlUnpadded, Encoding};
use scopegate_core::DECISION_CODES;
use scopegate_core::{parse_challenges, Decision, DenyReason, ErrorCode, Policy, UnixTime};
use serde_json::Value;

/// The example policy: inline RSA, P-256 and Ed25519 keys for its first issuer, a remote
/// JWKS for its second.
pub const EXAMPLE_POLICY: &str = include_str!("../../examples/policy.json");

/// The `now` of every suite of tests/vectors/decisions.json, so that the tokens of the seed
/// corpus are within their validity and the fuzzer starts from deep paths.
pub const NOW: UnixTime = UnixTime(1_767_225_600);

/// The origin the example policy lets read denials.
pub const CORS_ORIGIN: &str = "http://127.0.0.1:5173";

/// The example policy, compiled once.
pub fn example_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| match Policy::from_json(EXAMPLE_POLICY) {
        Ok(policy) => policy,
        Err(err) => panic!("examples/policy.json does not load: {err}"),
    })
}

/// The example policy whose first issuer introspects opaque tokens (resources removed, so
/// that an answer's `aud` is the issuer's audience).
pub fn introspecting_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut doc: Value = serde_json::from_str(EXAMPLE_POLICY).expect("example policy JSON");
        if let Some(doc) = doc.as_object_mut() {
            doc.remove("resources");
        }
        doc["issuers"][0]["introspection"] = serde_json::json!({
            "endpoint": "https://idp.scopegate.test/introspect", "cluster": "idp-test",
            "client_id": "gateway", "client_secret": "secret"});
        match Policy::from_json(&doc.to_string()) {
            Ok(policy) => policy,
            Err(err) => panic!("the introspecting copy of the example policy: {err}"),
        }
    })
}

/// The example policy with the first issuer's inline JWKS replaced by a `jwks_uri`: with an
/// empty `KeyStore` no issuer has a key, so no token can be `Authorized` by `decide`.
pub fn remote_keys_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut doc: Value = serde_json::from_str(EXAMPLE_POLICY).expect("example policy JSON");
        let issuer = doc["issuers"][0]
            .as_object_mut()
            .expect("example policy has an issuer");
        issuer.remove("jwks").expect("first issuer has inline keys");
        issuer.insert("jwks_uri".into(), "https://idp.scopegate.test/jwks".into());
        issuer.insert("jwks_cluster".into(), "idp-test".into());
        let text = doc.to_string();
        let policy = match Policy::from_json(&text) {
            Ok(policy) => policy,
            Err(err) => panic!("the remote-keys copy of the example policy: {err}"),
        };
        // No inline key and no HMAC secret anywhere: only fetched keys could verify.
        assert!(policy.issuers().iter().all(|i| {
            matches!(i.keys(), scopegate_core::KeySource::Remote(_))
                && !i.algorithms().contains(&scopegate_core::Algorithm::Hs256)
        }));
        policy
    })
}

/// An MCP endpoint at `/mcp` (a rule per tool, a URI template binding a prefix scope, a
/// 256-byte body limit) beside the example policy's test issuer and its inline keys.
pub fn mcp_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut doc: Value = serde_json::from_str(EXAMPLE_POLICY).expect("example policy JSON");
        doc["routes"] = serde_json::json!([
            {"path": "/mcp", "mcp": {"max_body_bytes": 256, "rules": [
                {"method": "tools/call", "require": "resource:read"},
                {"method": "tools/call", "name": "get-env", "require": "resource:write"},
                {"method": "resources/read", "uri": "demo://{id}", "require": "transaction-{id}"}
            ]}},
            {"path": "/rest", "require": "resource:read"}
        ]);
        match Policy::from_json(&doc.to_string()) {
            Ok(policy) => policy,
            Err(err) => panic!("the MCP policy does not load: {err}"),
        }
    })
}

/// The fields of an input separated by NUL bytes (a byte no header value may contain).
pub fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0).collect()
}

/// An `Authorization` value from a field: a field that starts with 0x01 is a token spec,
/// `0x01 header 0x01 claims 0x01 signature`, turned into
/// `Bearer b64url(header).b64url(claims).signature`, so that the fuzzer mutates the JSON of
/// a token rather than its base64 (the signature stays as it is written, base64url text: its
/// bytes could hold the NUL that separates fields); any other field is used as it is. `None`
/// for text that is not UTF-8.
pub fn authorization_value(field: &[u8]) -> Option<String> {
    let Some(spec) = field.strip_prefix(&[1]) else {
        return std::str::from_utf8(field).ok().map(String::from);
    };
    let mut parts = spec.splitn(3, |&b| b == 1);
    let header = parts.next().unwrap_or_default();
    let claims = parts.next().unwrap_or_default();
    let signature = std::str::from_utf8(parts.next().unwrap_or_default()).ok()?;
    Some(format!(
        "Bearer {}.{}.{signature}",
        Base64UrlUnpadded::encode_string(header),
        Base64UrlUnpadded::encode_string(claims),
    ))
}

/// Is every byte visible ASCII, space or tab: what a header value may hold without being
/// re-encoded, and without any way to end the header (CR, LF) or smuggle a NUL?
pub fn is_safe_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The invariants of every decision, whatever the policy and the request: a denial is a
/// 400, 401 or 403 whose JSON body's `error` is its challenge's, whose one `Bearer`
/// challenge parses back and agrees with the body, with the policy's realm unless it is a
/// 400; no header value can end its header; a reflected origin is the request's.
/// `origin` is the request's `Origin`.
pub fn check_decision(policy: &Policy, decision: &Decision<'_>, origin: Option<&str>) {
    if let Decision::NeedBody(need) = decision {
        assert_eq!(decision.local_response(), None);
        assert_eq!(policy.enforce(decision), None);
        assert!(need.max_bytes > 0);
        return;
    }
    assert!(DECISION_CODES.contains(&decision.code()), "{decision:?}");
    if !policy.dry_run() {
        assert_eq!(policy.enforce(decision), decision.local_response());
    }
    match decision {
        Decision::Allow(allow) => {
            assert!(decision.local_response().is_none());
            assert_eq!(decision.status(), None);
            for (name, value) in &allow.headers {
                assert!(
                    policy.forwarded_headers().any(|h| h == *name),
                    "forwarded header {name} is not one the policy declares"
                );
                assert!(
                    value.bytes().all(|b| (0x20..0x7f).contains(&b)),
                    "forwarded header {name}: {value:?} is not visible ASCII"
                );
            }
        }
        Decision::Serve(served) => {
            assert_eq!(decision.status(), Some(200));
            // The document served is the one of the resource it names: the resource
            // URL's path governs, so looking the document up by it gives it back.
            let document: Value = serde_json::from_str(served.body).expect("metadata is JSON");
            let resource = document["resource"]
                .as_str()
                .expect("metadata names its resource");
            let path = resource
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
                .unwrap_or("/");
            assert_eq!(policy.resource_metadata_for(path), Some(served.body));
        }
        Decision::Deny(denial) => check_denial(policy, decision, denial, origin),
        Decision::NeedBody(_) => {}
    }
}

fn check_denial(
    policy: &Policy,
    decision: &Decision<'_>,
    denial: &scopegate_core::Denial,
    origin: Option<&str>,
) {
    let status = denial.status;
    assert!(matches!(status, 400 | 401 | 403 | 413), "status {status}");
    assert_eq!(decision.status(), Some(status));
    let too_large = denial.reason == DenyReason::BadBody(scopegate_core::McpError::TooLarge);
    let expected_status = match denial.error {
        Some(ErrorCode::InvalidRequest) if too_large => 413,
        Some(ErrorCode::InvalidRequest) => 400,
        Some(ErrorCode::InvalidToken)
        | Some(ErrorCode::InsufficientUserAuthentication)
        | Some(ErrorCode::InvalidDpopProof)
        | Some(ErrorCode::UseDpopNonce) => 401,
        Some(ErrorCode::InsufficientScope) => 403,
        // Only over an introspection budget, which no target here spends.
        Some(ErrorCode::TemporarilyUnavailable) => 503,
        None => 401,
    };
    assert_eq!(status, expected_status, "{denial:?}");
    assert_eq!(denial.error.is_none(), denial.reason == DenyReason::NoToken);
    assert_eq!(
        denial.max_age.is_some(),
        denial.reason == DenyReason::StepUpRequired
    );
    assert_eq!(
        !denial.missing.is_empty(),
        denial.reason == DenyReason::InsufficientScope,
        "{denial:?}"
    );

    // The body: a JSON object whose `error` is the challenge's, or, for malformed MCP
    // traffic of the 2026-07-28 revision, the JSON-RPC error for that refusal.
    let body: Value = match serde_json::from_str(&denial.body) {
        Ok(body) => body,
        Err(err) => panic!("denial body {:?} is not JSON: {err}", denial.body),
    };
    match (&denial.reason, body.get("jsonrpc")) {
        (DenyReason::BadBody(err), Some(version)) => {
            assert_eq!(version, "2.0", "{}", denial.body);
            assert_eq!(body["error"]["code"], err.jsonrpc_code(), "{}", denial.body);
            assert_eq!(
                body["error"]["message"].as_str(),
                Some(err.description()),
                "{}",
                denial.body
            );
        }
        _ => {
            let error = denial.error.map_or("unauthorized", ErrorCode::as_str);
            assert_eq!(body["error"].as_str(), Some(error), "{}", denial.body);
        }
    }

    // The challenge: one Bearer or DPoP challenge that parses back and agrees with the
    // body; a 401 without a token where DPoP is accepted offers both, the same but for
    // the DPoP one's `algs`.
    assert!(
        is_safe_header_value(&denial.www_authenticate),
        "{:?}",
        denial.www_authenticate
    );
    let challenges = match parse_challenges(&denial.www_authenticate) {
        Ok(challenges) => challenges,
        Err(err) => panic!("{:?} does not parse: {err}", denial.www_authenticate),
    };
    let both =
        policy.dpop().is_some_and(|dpop| !dpop.required()) && denial.reason == DenyReason::NoToken;
    assert_eq!(
        challenges.len(),
        if both { 2 } else { 1 },
        "{:?}",
        denial.www_authenticate
    );
    let challenge = &challenges[0];
    let proof_refused = matches!(
        denial.error,
        Some(ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce)
    );
    // A fresh nonce comes with, and only with, a `use_dpop_nonce` challenge.
    assert_eq!(
        denial.dpop_nonce().is_some(),
        denial.error == Some(ErrorCode::UseDpopNonce),
        "{denial:?}"
    );
    if both {
        assert!(challenge.is_bearer() && challenges[1].scheme == "DPoP");
        assert_eq!(challenges[1].param("realm"), challenge.param("realm"));
    } else if proof_refused {
        assert_eq!(challenge.scheme, "DPoP", "{:?}", denial.www_authenticate);
    } else {
        assert!(challenge.is_bearer() || challenge.scheme == "DPoP");
    }
    if challenge.scheme == "DPoP" {
        let algs = policy.dpop().map(|dpop| dpop.algs());
        assert_eq!(challenge.param("algs"), algs);
    }
    assert_eq!(
        challenge.param("error"),
        denial.error.map(ErrorCode::as_str)
    );
    // A JSON-RPC error's `message` is the description.
    let description = body
        .get("error_description")
        .or_else(|| body["error"].get("message"));
    assert_eq!(
        challenge.param("error_description"),
        description.and_then(Value::as_str)
    );
    // `scope` names every scope of the chosen alternative, `missing` (body only) those the
    // token lacks, which are among them.
    let scope = (!denial.required.is_empty()).then(|| denial.required.join(" "));
    assert_eq!(challenge.param("scope"), scope.as_deref());
    assert_eq!(body.get("scope").and_then(Value::as_str), scope.as_deref());
    let missing = (!denial.missing.is_empty()).then(|| denial.missing.join(" "));
    assert_eq!(
        body.get("missing").and_then(Value::as_str),
        missing.as_deref()
    );
    assert!(denial.missing.iter().all(|m| denial.required.contains(m)));
    assert_eq!(challenge.max_age(), denial.max_age);
    assert_eq!(body.get("max_age").and_then(Value::as_u64), denial.max_age);
    // RFC 6750 §3: an `invalid_request` (400, or 413 for an MCP body) carries no realm;
    // every other denial does.
    let realm = (denial.error != Some(ErrorCode::InvalidRequest)).then_some(policy.realm());
    assert_eq!(challenge.param("realm"), realm);

    // CORS: an origin is only reflected as it came.
    if let Some(allowed) = &denial.allowed_origin {
        assert_eq!(Some(allowed.as_str()), origin);
    }
    for (_, value) in denial.headers() {
        assert!(is_safe_header_value(value), "{value:?}");
    }
}
