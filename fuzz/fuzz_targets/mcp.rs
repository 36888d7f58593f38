//! An MCP route's decision on arbitrary request bodies and `Mcp-Method` / `Mcp-Name`
//! headers, with a token of the example policy's test issuer holding `resource:read`,
//! decided by `Policy::precheck` (the signature taken as valid: this target is about
//! bodies, and `decision` covers signatures).
//!
//! Input: `mcp-method NUL mcp-name NUL body`; an empty header field is absent. Inputs with
//! a header field that is not UTF-8 are skipped; the body is any bytes.
//!
//! Invariants, besides not panicking:
//! - every decision satisfies `scopegate_fuzz::check_decision` (400/401/403/413 with a
//!   challenge that parses back and agrees with the body);
//! - a body over the route's limit is 413 whatever it holds;
//! - a pass is only for a body that is JSON-RPC 2.0 (a message, or a batch of them) of
//!   calls the token may make: its scope `resource:read` covers no `get-env` call.
#![no_main]

use base64ct::{Base64UrlUnpadded, Encoding};
use libfuzzer_sys::fuzz_target;
use scopegate_core::{Decision, Request};
use scopegate_fuzz::{check_decision, fields, mcp_policy, NOW};

/// `Bearer` and a token the precheck accepts: right issuer, audience (the example policy's
/// `/mcp` resource), type and time.
fn read_token() -> String {
    let part = |json: &str| Base64UrlUnpadded::encode_string(json.as_bytes());
    let header = part(r#"{"alg":"ES256","typ":"at+jwt","kid":"ec-1"}"#);
    let claims = part(&format!(
        r#"{{"iss":"https://idp.scopegate.test","aud":"http://127.0.0.1:8080/mcp","exp":{},"scope":"resource:read"}}"#,
        NOW.0 + 600
    ));
    format!("Bearer {header}.{claims}.AAAA")
}

fuzz_target!(|data: &[u8]| {
    let fields = fields(data);
    let header = |index: usize| match fields.get(index) {
        Some(field) if field.is_empty() => Some(None),
        Some(field) => std::str::from_utf8(field).ok().map(Some),
        None => Some(None),
    };
    let (Some(mcp_method), Some(mcp_name)) = (header(0), header(1)) else {
        return;
    };
    let body = fields
        .get(2..)
        .map(|rest| rest.join(&0u8))
        .unwrap_or_default();
    let policy = mcp_policy();
    let authorization = [read_token()];
    let auth: Vec<&str> = authorization.iter().map(String::as_str).collect();
    let mut request = Request::new("POST", "/mcp")
        .with_authorization(&auth)
        .with_body(&body);
    request.mcp_method = mcp_method;
    request.mcp_name = mcp_name;
    let decision = policy.precheck(&request, NOW);
    check_decision(policy, &decision, None);
    if body.len() > 256 {
        assert_eq!(decision.status(), Some(413), "{decision:?}");
    }
    if let Decision::Allow(_) = decision {
        let value: serde_json::Value = serde_json::from_slice(&body).expect("a pass is JSON");
        let messages = match &value {
            serde_json::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for message in messages {
            assert_eq!(message["jsonrpc"], "2.0", "{value}");
            let get_env =
                message["method"] == "tools/call" && message["params"]["name"] == "get-env";
            assert!(!get_env, "get-env passed with resource:read: {value}");
        }
    }
    assert!(
        !matches!(decision, Decision::Deny(ref d) if d.status == 401),
        "{decision:?}"
    );
});
