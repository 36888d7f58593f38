//! `parse_challenges` on arbitrary text, and `Challenge::to_header_value` on what it parses.
//!
//! Invariants, besides not panicking:
//! - an error's byte offset is within the input;
//! - parsed challenges are not empty, schemes are tokens, parameter names are lower case
//!   and unique per challenge, a challenge has a token68 or parameters, not both;
//! - round trip: each challenge serialized with `to_header_value` parses back to itself,
//!   and so does the whole list joined with `, `, whenever the serialized text fits within
//!   `MAX_CHALLENGE_LEN` (serializing quotes and escapes values, so it can grow);
//! - the serialized form is a fixed point: serialize(parse(serialize(c))) == serialize(c).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::MAX_CHALLENGE_LEN;
use scopegate_core::{parse_challenges, Challenge};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let challenges = match parse_challenges(input) {
        Ok(challenges) => challenges,
        Err(err) => {
            assert!(err.at <= input.len(), "{err:?} for {} bytes", input.len());
            return;
        }
    };
    assert!(!challenges.is_empty());
    for challenge in &challenges {
        assert!(!challenge.scheme.is_empty());
        assert!(challenge.scheme.bytes().all(is_tchar), "{challenge:?}");
        assert!(challenge.token68.is_none() || challenge.params.is_empty());
        for (index, (name, _)) in challenge.params.iter().enumerate() {
            assert!(!name.is_empty() && name.bytes().all(is_tchar), "{name:?}");
            assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
            assert!(challenge.params[..index].iter().all(|(n, _)| n != name));
            assert!(challenge.param(name).is_some());
        }
        let _ = challenge.scopes().count();
        let _ = challenge.max_age();

        let header = challenge.to_header_value();
        if header.len() <= MAX_CHALLENGE_LEN {
            let again = parse(&header);
            assert_eq!(again, std::slice::from_ref(challenge), "{header:?}");
            assert_eq!(again[0].to_header_value(), header);
        }
    }
    let joined = challenges
        .iter()
        .map(Challenge::to_header_value)
        .collect::<Vec<_>>()
        .join(", ");
    if joined.len() <= MAX_CHALLENGE_LEN {
        assert_eq!(parse(&joined), challenges, "{joined:?}");
    }
});

fn parse(header: &str) -> Vec<Challenge> {
    match parse_challenges(header) {
        Ok(challenges) => challenges,
        Err(err) => panic!("{header:?} does not parse back: {err}"),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
