//! The core's sans-IO gateway fed raw header bytes, as the proxy-wasm filter feeds it what
//! Envoy hands over: any name, any value bytes (Latin-1, control characters, invalid UTF-8).
//!
//! Input: header pairs separated by NUL bytes, `name NUL value NUL name NUL value …`; a
//! value starting with 0x01 in an `authorization` pair is a token spec (see
//! `scopegate_fuzz::authorization_value`).
//!
//! Invariants, besides not panicking:
//! - with no key anywhere (the example policy with a `jwks_uri` instead of inline keys, no
//!   fetch answered), nothing is forwarded as authorized: a forwarded request carries no
//!   verified claim, and every forwarded-claim header the client sent is removed;
//! - a request waits for at most one key fetch: after a failed fetch, the same headers
//!   are answered or forwarded;
//! - a local answer is a 400, 401 or 403 (or the 200 metadata document) whose header
//!   values cannot end their header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::gateway::{Exchange, Gateway, Step};
use scopegate_core::Policy;
use scopegate_fuzz::{authorization_value, fields, is_safe_header_value, remote_keys_policy, NOW};

fuzz_target!(|data: &[u8]| {
    let fields = fields(data);
    let mut owned: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for pair in fields.chunks(2) {
        let name = pair[0].to_vec();
        let value = pair.get(1).copied().unwrap_or_default();
        let value = if name.eq_ignore_ascii_case(b"authorization") && value.first() == Some(&1) {
            match authorization_value(value) {
                Some(value) => value.into_bytes(),
                None => return,
            }
        } else {
            value.to_vec()
        };
        owned.push((name, value));
    }
    let pairs: Vec<(&[u8], &[u8])> = owned.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let policy: Policy = remote_keys_policy().clone();
    let forwarded: Vec<String> = policy.forwarded_headers().map(String::from).collect();
    let mut gateway = Gateway::new(policy);
    let mut exchange = Exchange::default();
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= 2, "a request waited for a second fetch");
        match gateway.on_request_headers(&mut exchange, &pairs, NOW) {
            Step::Wait(fetch) => {
                let issuer = fetch.issuer;
                let _ = gateway.on_fetch_answer(issuer, Err(()), NOW);
            }
            Step::Hold(issuer) => {
                let _ = gateway.on_fetch_answer(issuer, Err(()), NOW);
            }
            Step::Forward(forward) => {
                assert!(
                    forward.set.is_empty(),
                    "forwarded as authorized without keys"
                );
                for name in &forwarded {
                    let sent = pairs
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()));
                    assert_eq!(sent, forward.remove.contains(&name.as_str()), "{name}");
                }
                break;
            }
            Step::ReadBody { .. } => panic!("the example policy has no MCP route"),
            Step::Introspect(_) | Step::Park(_) | Step::Defer => {
                panic!("the example policy introspects nothing")
            }
            Step::Respond(reply) => {
                let response = reply.local_response();
                assert!(
                    matches!(response.status, 200 | 400 | 401 | 403),
                    "{}",
                    response.status
                );
                for (_, value) in &response.headers {
                    assert!(is_safe_header_value(value), "{value:?}");
                }
                break;
            }
        }
    }
    gateway.drain_counts().for_each(drop);
});
