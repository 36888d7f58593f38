//! The bearer token of a request's `Authorization` header values.

use core::fmt;

/// Why the `Authorization` header cannot be read. Answered with 400 `invalid_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerError {
    /// More than one credential: two bearer tokens, or a bearer token beside another
    /// scheme's credentials, whether in repeated headers or in one folded header.
    SeveralTokens,
    /// `Bearer` with nothing after it.
    Empty,
    /// An `access_token` query parameter: tokens are only read from the header.
    TokenInQuery,
}

impl BearerError {
    /// A fixed description, safe for a `WWW-Authenticate` header.
    pub const fn description(self) -> &'static str {
        match self {
            Self::SeveralTokens => "More than one credential in the Authorization header",
            Self::Empty => "The bearer token is empty",
            Self::TokenInQuery => "Send the access token in the Authorization header only",
        }
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BearerError {}

/// The bearer token of a request, from all its `Authorization` header values.
///
/// `Ok(None)` when there is no header, only empty ones, or another scheme. Repeated
/// headers are read as their folded form (RFC 9110 §5.3: the values joined by commas,
/// empty ones dropped), which is what Envoy hands a filter; so two headers and one folded
/// header always get the same answer, and a comma can never be part of a bearer token
/// (RFC 6750 `b64token`).
///
/// ```
/// use scopegate_core::{bearer_token, BearerError};
/// assert_eq!(bearer_token(&["Bearer abc.def.ghi"]), Ok(Some("abc.def.ghi")));
/// assert_eq!(bearer_token(&["Basic dXNlcg=="]), Ok(None));
/// assert_eq!(bearer_token(&["", "Bearer abc.def.ghi"]), Ok(Some("abc.def.ghi")));
/// assert_eq!(bearer_token(&["Bearer a", "Bearer b"]), Err(BearerError::SeveralTokens));
/// assert_eq!(bearer_token(&["Bearer a,Bearer b"]), Err(BearerError::SeveralTokens));
/// ```
pub fn bearer_token<'a>(authorization: &[&'a str]) -> Result<Option<&'a str>, BearerError> {
    Ok(credential_of(authorization)?
        .filter(|c| c.scheme == AuthScheme::Bearer)
        .map(|c| c.token))
}

/// How an access token is presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP`, with a proof in the `DPoP` header (RFC 9449 §7.1).
    Dpop,
}

/// An access token and the scheme it came with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential<'a> {
    /// `Bearer` or `DPoP`.
    pub scheme: AuthScheme,
    /// The token.
    pub token: &'a str,
}

/// The access token of a request, `Bearer` or `DPoP`, read as [`bearer_token`] reads a
/// bearer token: one credential at most, whatever the headers' folding.
pub fn credential_of<'a>(authorization: &[&'a str]) -> Result<Option<Credential<'a>>, BearerError> {
    let mut present = authorization
        .iter()
        .map(|value| trim_blanks(value))
        .filter(|value| !value.is_empty());
    let Some(first) = present.next() else {
        return Ok(None);
    };
    if present.next().is_none() {
        return credential(first);
    }
    // Rare: several non-empty headers. Read their folded form; its token, if the first
    // value is a bearer one, runs into the comma and the next value.
    let folded = authorization
        .iter()
        .map(|value| trim_blanks(value))
        .filter(|value| !value.is_empty())
        .collect::<alloc::vec::Vec<_>>()
        .join(", ");
    match credential(&folded) {
        Ok(None) => Ok(None),
        Ok(Some(_)) | Err(_) => Err(BearerError::SeveralTokens),
    }
}

/// The access token of one (possibly folded) `Authorization` value, trimmed.
pub(super) fn credential(value: &str) -> Result<Option<Credential<'_>>, BearerError> {
    let (scheme, rest) = match value.bytes().position(|b| is_blank(b) || b == b',') {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let scheme = if scheme.eq_ignore_ascii_case("Bearer") {
        AuthScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("DPoP") {
        AuthScheme::Dpop
    } else {
        // `Basic xyz, Bearer t`: a token hidden behind another scheme's credentials.
        let hides_bearer = value.split(',').skip(1).any(|element| {
            let scheme = trim_blanks(element).split([' ', '\t']).next().unwrap_or("");
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop")
        });
        return if hides_bearer {
            Err(BearerError::SeveralTokens)
        } else {
            Ok(None)
        };
    };
    let token = trim_blanks(rest);
    if token.is_empty() {
        return Err(BearerError::Empty);
    }
    if has_blank_or_comma(token.as_bytes()) {
        return Err(BearerError::SeveralTokens);
    }
    Ok(Some(Credential { scheme, token }))
}

// Bytes, not char patterns: this runs on every request over the whole token, and a
// `[char; N]` pattern decodes UTF-8 as it goes (a third of a cached decision, measured in
// the filter's build).
pub(super) const fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether a space, tab or comma is in `bytes`, read eight bytes at a time: this scans
/// the whole token on every request, and a byte loop was an eighth of a cached request's
/// time in V8.
fn has_blank_or_comma(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Exact for the question "is any byte zero?": a borrow can only set high bits above a
    // byte that was zero already.
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    let found = words.map(|word| u64::from_ne_bytes(word.try_into().unwrap_or_default()));
    found
        .map(|word| {
            has_zero(word ^ (ONES * u64::from(b' ')))
                | has_zero(word ^ (ONES * u64::from(b'\t')))
                | has_zero(word ^ (ONES * u64::from(b',')))
        })
        .fold(false, |any, this| any | this)
        || tail.iter().any(|&b| is_blank(b) || b == b',')
}

/// `value` without leading and trailing spaces and tabs. Both ends are ASCII bytes, so the
/// slice is always on character boundaries.
pub(super) fn trim_blanks(value: &str) -> &str {
    let bytes = value.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| !is_blank(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |last| last + 1);
    value.get(start..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_extraction() {
        assert_eq!(bearer_token(&[]), Ok(None));
        assert_eq!(bearer_token(&["bearer  t.o.k "]), Ok(Some("t.o.k")));
        assert_eq!(bearer_token(&["BEARER\tt"]), Ok(Some("t")));
        assert_eq!(bearer_token(&["Bearer"]), Err(BearerError::Empty));
        assert_eq!(bearer_token(&["Bearer   "]), Err(BearerError::Empty));
        assert_eq!(
            bearer_token(&["Bearer a b"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(
            bearer_token(&["Bearer a,b"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(
            bearer_token(&["Basic x, Bearer y"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(bearer_token(&["Basic x"]), Ok(None));
        assert_eq!(
            bearer_token(&["Basic x,\tBEARER y"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(bearer_token(&["Basic Bearer y"]), Ok(None));
        assert_eq!(bearer_token(&["Bearertoken"]), Ok(None));
        assert_eq!(
            bearer_token(&["Basic x,Bearer"]),
            Err(BearerError::SeveralTokens)
        );
        assert_eq!(bearer_token(&["Bearer,x"]), Err(BearerError::SeveralTokens));
    }

    #[test]
    fn blanks_and_commas_are_found_at_every_position() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| is_blank(b) || b == b',');
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = alloc::vec![b'a'; len];
                    bytes[at] = byte;
                    assert_eq!(
                        has_blank_or_comma(&bytes),
                        naive(&bytes),
                        "{len} {at} {byte}"
                    );
                }
            }
        }
        // Bytes next to the searched ones (and their borrows) are not taken for them.
        assert!(!has_blank_or_comma(
            b"\x21\x1f\x08\x0a\x2b\x2d\x00\xff\x21\x1f"
        ));
    }

    #[test]
    fn repeated_headers_are_read_as_their_folded_form() {
        assert_eq!(bearer_token(&["", ""]), Ok(None));
        assert_eq!(bearer_token(&["", " ", "Bearer t"]), Ok(Some("t")));
        assert_eq!(bearer_token(&["Bearer t", ""]), Ok(Some("t")));
        assert_eq!(bearer_token(&["Basic x", "Basic y"]), Ok(None));
        for (repeated, folded) in [
            (&["Bearer a", "Bearer b"][..], "Bearer a, Bearer b"),
            (&["Bearer a", "Bearer a"][..], "Bearer a,Bearer a"),
            (&["Basic x", "Bearer t"][..], "Basic x, Bearer t"),
            (&["Bearer t", "Basic x"][..], "Bearer t,Basic x"),
            (&["Bearer", "Bearer t"][..], "Bearer, Bearer t"),
            (&["Basic x", "Basic y"][..], "Basic x,Basic y"),
        ] {
            assert_eq!(bearer_token(repeated), bearer_token(&[folded]), "{folded}");
        }
    }

    #[test]
    fn the_documented_credentials() {
        use crate::token::{credential_of, AuthScheme, BearerError};
        let dpop = credential_of(&["DPoP abc.def.ghi"]).unwrap().unwrap();
        assert_eq!((dpop.scheme, dpop.token), (AuthScheme::Dpop, "abc.def.ghi"));
        assert_eq!(
            credential_of(&["DPoP a", "Bearer b"]),
            Err(BearerError::SeveralTokens)
        );
    }
}
