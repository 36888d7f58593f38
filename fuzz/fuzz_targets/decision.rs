//! `Policy::decide` and `Policy::precheck` on arbitrary requests against the example policy.
//!
//! Input: fields separated by NUL bytes:
//! `method NUL path NUL origin NUL access-control-request-method NUL authorization...`;
//! an empty origin or request method is absent; every further field is one `Authorization`
//! value, either as it is or, when it starts with 0x01, a token spec
//! `0x01 header-json 0x01 claims-json 0x01 base64url-signature` (see
//! `scopegate_fuzz::authorization_value`). Inputs with a text field that is not UTF-8 are
//! skipped.
//!
//! Invariants, besides not panicking:
//! - every decision satisfies `scopegate_fuzz::check_decision`: status 400/401/403 for a
//!   denial, its JSON body's `error` is its challenge's, the challenge parses back and
//!   agrees with the body, no header value can end its header; a denial reflects the
//!   request's origin exactly when it is the policy's one CORS origin;
//! - with no key anywhere (the example policy with a `jwks_uri` instead of inline keys and
//!   an empty `KeyStore`), `decide` never allows a request as `Authorized`;
//! - against the example policy, `decide` and `precheck` give the same decision unless
//!   `decide` refuses the token: a verified signature is the only difference between them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::{AllowReason, Decision, DenyReason, KeyStore, Request};
use scopegate_fuzz::{
    authorization_value, check_decision, example_policy, fields, remote_keys_policy, CORS_ORIGIN,
    NOW,
};

/// The example policy's CORS list is one origin: a denial carries it back exactly when the
/// request came from it.
fn check_cors(decision: &Decision<'_>, origin: Option<&str>) {
    if let Decision::Deny(denial) = decision {
        let expected = (origin == Some(CORS_ORIGIN)).then_some(CORS_ORIGIN);
        assert_eq!(denial.allowed_origin.as_deref(), expected);
    }
}

fuzz_target!(|data: &[u8]| {
    let fields = fields(data);
    let text = |index: usize| match fields.get(index) {
        Some(field) => std::str::from_utf8(field).ok(),
        None => Some(""),
    };
    let (Some(method), Some(path), Some(origin), Some(preflight)) =
        (text(0), text(1), text(2), text(3))
    else {
        return;
    };
    let mut values = Vec::new();
    for field in fields.iter().skip(4) {
        match authorization_value(field) {
            Some(value) => values.push(value),
            None => return,
        }
    }
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let mut request = Request::new(method, path).with_authorization(&values);
    if !origin.is_empty() {
        request = request.with_origin(origin);
    }
    if !preflight.is_empty() {
        request = request.with_preflight(preflight);
    }
    let origin = request.origin;
    let keys = KeyStore::default();

    let policy = example_policy();
    let decided = policy.decide(&request, &keys, NOW);
    check_decision(policy, &decided, origin);
    check_cors(&decided, origin);
    let prechecked = policy.precheck(&request, NOW);
    check_decision(policy, &prechecked, origin);
    let token_refused = matches!(
        &decided,
        Decision::Deny(denial) if matches!(denial.reason, DenyReason::InvalidToken(_))
    );
    if !token_refused {
        assert_eq!(decided, prechecked, "decide and precheck disagree");
    }

    let keyless = remote_keys_policy();
    let decided = keyless.decide(&request, &keys, NOW);
    check_decision(keyless, &decided, origin);
    check_cors(&decided, origin);
    if let Decision::Allow(allow) = &decided {
        assert_ne!(
            allow.reason,
            AllowReason::Authorized,
            "authorized without any key: {request:?}"
        );
    }
});
