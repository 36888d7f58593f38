//! An introspection endpoint's answer (RFC 7662), any bytes, fed to the gateway as the
//! answer of the call it asked for, with any status.
//!
//! Input: the first byte picks the status (even: 200, odd: another), the rest is the body.
//!
//! Invariants, besides not panicking: a request is forwarded only when the status is 200
//! and the body is a JSON object whose `active` is `true`; every refusal is a 401; the
//! answer is kept, so the same token is decided again without a second call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::gateway::{Exchange, Gateway, Step};
use scopegate_fuzz::{introspecting_policy, NOW};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = if selector % 2 == 0 { 200 } else { 500 + u16::from(selector) };
    let mut gateway = Gateway::new(introspecting_policy().clone());
    let pairs: [(&[u8], &[u8]); 3] = [
        (b":method", b"GET"),
        (b":path", b"/api/resources"),
        (b"authorization", b"Bearer opaque"),
    ];
    let mut exchange = Exchange::default();
    let Step::Introspect(call) = gateway.on_request_headers(&mut exchange, &pairs, NOW) else {
        panic!("an opaque token is introspected");
    };
    let (ticket, issuer) = (call.ticket, call.issuer);
    let _ = gateway.on_introspection_answer(ticket, issuer, Ok((status, body)), NOW);
    let active = status == 200
        && serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|answer| answer.get("active") == Some(&serde_json::Value::Bool(true)));
    for _ in 0..2 {
        match gateway.on_request_headers(&mut exchange, &pairs, NOW) {
            Step::Forward(_) => assert!(active, "forwarded on an answer that is not active"),
            Step::Respond(reply) => {
                let status = reply.local_response().status;
                assert!(matches!(status, 401 | 403), "{status}");
            }
            other => panic!("the answer was not kept: {other:?}"),
        }
        exchange = Exchange::default();
    }
});
