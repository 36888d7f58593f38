//! JSON as the core reads it: guards applied to untrusted JSON before it reaches
//! serde_json, strict parsing (no repeated keys) and the JSON paths errors name.

pub(crate) mod path;
pub(crate) mod strict;

/// Deepest nesting of arrays and objects accepted in a token or a JWKS.
pub(crate) const MAX_DEPTH: usize = 16;

/// Is the nesting of `[` and `{` in `json` (outside strings) at most `max`?
///
/// A cheap scan that runs before parsing, so that hostile input is refused with a clear
/// reason instead of serde_json's generic recursion error.
pub(crate) fn depth_within(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting_outside_strings() {
        assert!(depth_within(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(!depth_within(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(depth_within(br#"{"a":"[[[[[[\"[[["}"#, 1));
    }
}
