//! What the gateway reads from the host's shared data, which other VMs write: a DPoP replay
//! bucket and an introspection budget counter holding arbitrary bytes; the same bytes as the
//! request metadata Envoy serializes (jwt_authn's payloads, protobuf); and MCP resource
//! URIs as `normalize_uri` takes them.
//!
//! Input: `record NUL uri`; the record is any bytes, the URI is skipped unless UTF-8.
//!
//! Invariants, besides not panicking:
//! - a proof accepted once is refused as a replay right after, whatever the bucket held;
//! - a bucket never grows past 8 proofs (128 bytes);
//! - a budget of 3 calls per second admits at most 3 calls in a second, whatever the counter
//!   held;
//! - metadata bytes verify a token's claims only if they hold jwt_authn's name and every
//!   claim's text (a payload is never made up);
//! - a normalized URI normalizes to itself, and its path has no `.` or `..` segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::fuzzing::{first_use_shared, jwt_authn, normalize_uri, Budget};
use scopegate_core::shared_memory::{LocalMemory, SharedMemory};
use scopegate_core::{BudgetLimits, ProofId, UnixTime};

const BUCKET: &str = "scopegate.replay.v1 0000000000000000";
const BUDGET: &str = "scopegate.introspection.v1 budget 00000000";

fuzz_target!(|data: &[u8]| {
    let (record, uri) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let now = UnixTime(1_000);
    let memory = LocalMemory::default();
    memory.set(BUCKET, record, None).unwrap();
    memory.set(BUDGET, record, None).unwrap();

    // One bucket: capacity 8.
    let proof = ProofId::for_tests(u64::from(record.len() as u32), 1_060);
    // The record may already hold it (the fuzzer can write any digest): then it is a replay.
    let _ = first_use_shared(&memory, 8, &proof, now);
    assert!(
        !first_use_shared(&memory, 8, &proof, now),
        "a replay passed"
    );
    let (bucket, _) = memory.get(BUCKET).unwrap();
    assert!(bucket.len() <= 8 * 16, "{} bytes", bucket.len());

    let limits = BudgetLimits {
        per_second: 3,
        in_flight: 100,
    };
    let mut budget = Budget::new(0, limits);
    let admitted = (0..5).filter(|_| budget.admit(now, Some(&memory))).count();
    assert!(admitted <= 3, "{admitted} calls in one second");

    let claims = serde_json::json!({"sub": "alice", "exp": 1060, "roles": ["admin"]});
    if jwt_authn::verified(record, "payload", &claims) {
        let holds = |text: &[u8]| record.windows(text.len()).any(|w| w == text);
        assert!(holds(b"envoy.filters.http.jwt_authn") && holds(b"payload"));
        assert!(holds(b"alice") && holds(b"admin") && holds(b"roles"));
    }

    if let Ok(uri) = std::str::from_utf8(uri) {
        if let Ok(normal) = normalize_uri(uri) {
            assert_eq!(
                normalize_uri(&normal).as_deref(),
                Ok(normal.as_str()),
                "{uri:?}"
            );
            let hierarchy = normal.split(['?', '#']).next().unwrap_or_default();
            let (_, rest) = hierarchy.split_once(':').unwrap_or_default();
            // After the authority, if there is one.
            let path = match rest.strip_prefix("//") {
                Some(after) => after.find('/').map_or("", |at| &after[at..]),
                None => rest,
            };
            assert!(
                !path
                    .split('/')
                    .any(|segment| segment == "." || segment == ".."),
                "{uri:?} -> {normal:?}"
            );
        }
    }
});
