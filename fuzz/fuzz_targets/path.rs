//! `path::normalize` on arbitrary request targets.
//!
//! Invariants, besides not panicking, for every `Ok(normalized)`:
//! - it starts with `/`, has no `//`, no `.` or `..` segment, no `?` or `#`, no trailing
//!   `/` (unless it is `/`), and only characters a request target may hold unencoded;
//! - its percent-escapes are upper case and none encodes an unreserved character;
//! - normalizing it again gives it back, borrowed (idempotent, and already normal);
//! - it is what a plain, slow model of RFC 3986 §6.2.2 + §5.2.4 (below) computes, and both
//!   refuse the same targets with the same `PathError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::{normalize_path as normalize, PathError, MAX_PATH_LEN};
use std::borrow::Cow;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let result = normalize(target);
    let expected = model(target);
    assert_eq!(
        result.as_deref().map_err(|e| *e),
        expected.as_deref().map_err(|e| *e),
        "{target:?}"
    );
    let Ok(normalized) = result else {
        return;
    };
    let n: &str = &normalized;
    assert!(n.starts_with('/'), "{n:?}");
    assert!(!n.contains("//"), "{n:?}");
    assert!(!n.contains(['?', '#', '\\']), "{n:?}");
    assert!(n == "/" || !n.ends_with('/'), "{n:?}");
    assert!(n.split('/').skip(1).all(|s| s != "." && s != ".."), "{n:?}");
    assert!(n.bytes().all(|b| b > b' ' && b < 0x7f), "{n:?}");
    let bytes = n.as_bytes();
    for (i, _) in n.match_indices('%') {
        let hex = &bytes[i + 1..i + 3];
        assert!(
            hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')),
            "{n:?}"
        );
        let byte = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
        assert!(!is_unreserved(byte), "{n:?} keeps %{byte:02X} encoded");
    }
    assert!(n.len() <= target.len());
    match normalize(n) {
        Ok(Cow::Borrowed(again)) => assert_eq!(again, n, "not idempotent"),
        other => panic!("normalize({n:?}) = {other:?}: not already normal"),
    }
});

/// The obvious, allocation-happy reading of path.rs's doc comment: drop the query and
/// fragment; refuse what cannot be normalized without guessing, left to right; then decode
/// escapes of unreserved characters, upper-case the others, and resolve the segments.
fn model(target: &str) -> Result<String, PathError> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(PathError::MalformedPercentEncoding);
                };
                match hi * 16 + lo {
                    0x2f | 0x5c => return Err(PathError::EncodedSeparator),
                    0 => return Err(PathError::Nul),
                    _ => {}
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            0 => return Err(PathError::Nul),
            b if b <= b' ' || b >= 0x7f => return Err(PathError::InvalidCharacter),
            _ => i += 1,
        }
    }
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/').skip(1) {
        let mut segment = String::new();
        let mut rest = raw;
        while let Some(at) = rest.find('%') {
            segment.push_str(&rest[..at]);
            let byte = u8::from_str_radix(&rest[at + 1..at + 3], 16).unwrap();
            if is_unreserved(byte) {
                segment.push(byte as char);
            } else {
                segment.push_str(&format!("%{byte:02X}"));
            }
            rest = &rest[at + 3..];
        }
        segment.push_str(rest);
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                out.pop().ok_or(PathError::EscapesRoot)?;
            }
            _ => out.push(segment),
        }
    }
    Ok(format!("/{}", out.join("/")))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}
