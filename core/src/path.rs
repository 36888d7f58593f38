//! Request path normalization: the one form routes are matched on.
//!
//! RFC 3986 §6.2.2 normalization (percent-decoding of unreserved characters, upper-case
//! hex digits, dot segments removed) plus merging of duplicate slashes and dropping the
//! query, fragment and any trailing slash. What cannot be normalized without guessing how the
//! upstream will read it is refused: an encoded `/` or `\`, a raw `\`, a NUL, control
//! characters, malformed percent-escapes, and `..` that would climb above the root.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Longest request path (without the query) that is considered, in bytes.
pub const MAX_PATH_LEN: usize = 8 * 1024;

/// Why a request path was refused. Each is answered with 400 `invalid_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `/` (asterisk-form or absolute-form request target).
    NotAbsolute,
    /// The path is longer than [`MAX_PATH_LEN`].
    TooLong,
    /// A `%` is not followed by two hex digits.
    MalformedPercentEncoding,
    /// `%2F` or `%5C`: an encoded separator means different things to different servers.
    EncodedSeparator,
    /// A raw `\`, which some servers read as `/`.
    Backslash,
    /// `%00` or a raw NUL.
    Nul,
    /// A space, control character or non-ASCII byte that HTTP does not allow unencoded.
    InvalidCharacter,
    /// A `..` segment that would climb above the root.
    EscapesRoot,
}

impl PathError {
    /// A stable machine-readable code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotAbsolute => "not_absolute",
            Self::TooLong => "too_long",
            Self::MalformedPercentEncoding => "malformed_percent_encoding",
            Self::EncodedSeparator => "encoded_separator",
            Self::Backslash => "backslash",
            Self::Nul => "nul",
            Self::InvalidCharacter => "invalid_character",
            Self::EscapesRoot => "escapes_root",
        }
    }

    /// A short description, safe to put into a `WWW-Authenticate` header.
    pub const fn description(self) -> &'static str {
        match self {
            Self::NotAbsolute => "the request path must start with /",
            Self::TooLong => "the request path is too long",
            Self::MalformedPercentEncoding => "the request path has a malformed percent-escape",
            Self::EncodedSeparator => "the request path has an encoded slash or backslash",
            Self::Backslash => "the request path has a backslash",
            Self::Nul => "the request path has a NUL character",
            Self::InvalidCharacter => "the request path has a character that must be encoded",
            Self::EscapesRoot => "the request path climbs above the root with ..",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PathError {}

/// The request target a client sends for `url` (the origin form of RFC 9112 §3.2.1, what
/// the gateway sees as `:path`): a target starting with `/` as it is (so `//a` is a path,
/// not a scheme-relative URL: resolve those first); an absolute URL
/// (`https://api.example/a?b`) without its scheme and authority, `/` when it has no path.
/// The fragment, which is never sent, is dropped. `None` for anything else: a relative
/// reference has no target until it is resolved against a base URL.
///
/// Nothing else is changed: the target is then decided exactly as the gateway would
/// receive it, percent-escapes and dot segments included.
///
/// ```
/// use scopegate_core::request_target;
/// assert_eq!(request_target("https://api.example/api/orders/7?x=1#top").unwrap(), "/api/orders/7?x=1");
/// assert_eq!(request_target("http://127.0.0.1:8080").unwrap(), "/");
/// assert_eq!(request_target("https://api.example?q").unwrap(), "/?q");
/// assert_eq!(request_target("/api/%2e%2e/admin").unwrap(), "/api/%2e%2e/admin");
/// assert_eq!(request_target("api/orders"), None);
/// ```
pub fn request_target(url: &str) -> Option<Cow<'_, str>> {
    let url = match url.find('#') {
        Some(end) => &url[..end],
        None => url,
    };
    if url.starts_with('/') {
        return Some(Cow::Borrowed(url));
    }
    let (scheme, rest) = url.split_once("://")?;
    if !crate::policy::url::is_scheme(scheme) {
        return None;
    }
    let after_authority = &rest[rest.find(['/', '?']).unwrap_or(rest.len())..];
    if after_authority.starts_with('/') {
        Some(Cow::Borrowed(after_authority))
    } else {
        Some(Cow::Owned(alloc::format!("/{after_authority}")))
    }
}

/// Normalizes a request target (`:path`, query included) into the path routes match on.
///
/// Borrows when the path is already normal, which is the common case.
///
/// ```
/// use scopegate_core::{normalize_path as normalize, PathError};
/// assert_eq!(normalize("/api//orders/./7?x=1").unwrap(), "/api/orders/7");
/// assert_eq!(normalize("/api/public/%2e%2e/admin").unwrap(), "/api/admin");
/// assert_eq!(normalize("/%7Euser/a%2fb"), Err(PathError::EncodedSeparator));
/// assert_eq!(normalize("/api/../../etc"), Err(PathError::EscapesRoot));
/// ```
pub fn normalize(target: &str) -> Result<Cow<'_, str>, PathError> {
    // Byte scans throughout: this runs on every request, and char patterns cost more than
    // the rest of the function in the filter's size-optimised build (measured).
    let path = match target.bytes().position(|b| b == b'?' || b == b'#') {
        Some(end) => &target[..end],
        None => target,
    };
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let mut needs_rewrite = false;
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let byte = decode_escape(bytes, i)?;
                match byte {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0 => return Err(PathError::Nul),
                    _ => {}
                }
                needs_rewrite |= is_unreserved(byte)
                    || bytes[i + 1].is_ascii_lowercase()
                    || bytes[i + 2].is_ascii_lowercase();
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash),
            0 => return Err(PathError::Nul),
            b if b <= b' ' || b >= 0x7f => return Err(PathError::InvalidCharacter),
            _ => {}
        }
        i += 1;
    }
    if !needs_rewrite && path != "/" {
        needs_rewrite = bytes
            .split(|&b| b == b'/')
            .skip(1)
            .any(|segment| segment.is_empty() || segment == b"." || segment == b"..");
    }
    if !needs_rewrite {
        return Ok(Cow::Borrowed(path));
    }
    rewrite(path).map(Cow::Owned)
}

fn rewrite(path: &str) -> Result<String, PathError> {
    let mut segments: Vec<String> = Vec::new();
    for raw in path.split('/').skip(1) {
        let segment = decode_unreserved(raw)?;
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::EscapesRoot);
                }
            }
            _ => segments.push(segment),
        }
    }
    let mut normalized = String::with_capacity(path.len());
    if segments.is_empty() {
        normalized.push('/');
    }
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    Ok(normalized)
}

/// Decodes percent-escapes of unreserved characters and upper-cases the others.
fn decode_unreserved(segment: &str) -> Result<String, PathError> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = decode_escape(bytes, i)?;
            if is_unreserved(byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    Ok(out)
}

fn decode_escape(bytes: &[u8], at: usize) -> Result<u8, PathError> {
    let hi = bytes.get(at + 1).and_then(|b| hex_value(*b));
    let lo = bytes.get(at + 2).and_then(|b| hex_value(*b));
    match (hi, lo) {
        (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
        _ => Err(PathError::MalformedPercentEncoding),
    }
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 `unreserved`.
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets() {
        let target = |url: &str| request_target(url).map(Cow::into_owned);
        assert_eq!(target("/a/b?c=d").as_deref(), Some("/a/b?c=d"));
        assert_eq!(target("/a#frag").as_deref(), Some("/a"));
        assert_eq!(
            target("HTTPS://h.example:8443/x/../y").as_deref(),
            Some("/x/../y")
        );
        assert_eq!(target("http://u:p@h/a").as_deref(), Some("/a"));
        assert_eq!(target("http://h#f").as_deref(), Some("/"));
        assert_eq!(target("wss+x.y-z://h/ws").as_deref(), Some("/ws"));
        assert_eq!(target("//api///x/").as_deref(), Some("//api///x/"));
        for relative in ["", "a/b", "?q", "#f", "1http://h/a", "://h/a", "ht tp://h/"] {
            assert_eq!(target(relative), None, "{relative:?}");
        }
    }

    fn ok(input: &str) -> String {
        normalize(input).unwrap().into_owned()
    }

    #[test]
    fn already_normal_paths_are_borrowed() {
        assert!(matches!(normalize("/api/orders/7"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize("/"), Ok(Cow::Borrowed("/"))));
        assert!(matches!(normalize("/a%20b?q"), Ok(Cow::Borrowed("/a%20b"))));
    }

    #[test]
    fn normalizes() {
        assert_eq!(ok("/api//orders///7"), "/api/orders/7");
        assert_eq!(ok("/api/orders/"), "/api/orders");
        assert_eq!(ok("//"), "/");
        assert_eq!(ok("/a/./b/../c"), "/a/c");
        assert_eq!(ok("/a/b/.."), "/a");
        assert_eq!(ok("/a/.."), "/");
        assert_eq!(ok("/%61pi/%7e%41"), "/api/~A");
        assert_eq!(ok("/a%c3%a9"), "/a%C3%A9");
        assert_eq!(ok("/api/public/%2e%2e/admin"), "/api/admin");
        assert_eq!(ok("/api/public/%2E./admin#frag"), "/api/admin");
        assert_eq!(ok("/a?b/../c"), "/a");
    }

    #[test]
    fn refuses_unsafe_paths() {
        assert_eq!(normalize("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a%2Fb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a%5cb"), Err(PathError::EncodedSeparator));
        assert_eq!(normalize("/a\\b"), Err(PathError::Backslash));
        assert_eq!(normalize("/a%00"), Err(PathError::Nul));
        assert_eq!(normalize("/a\0"), Err(PathError::Nul));
        assert_eq!(normalize("/.."), Err(PathError::EscapesRoot));
        assert_eq!(normalize("/a/../../b"), Err(PathError::EscapesRoot));
        assert_eq!(normalize("/%2e%2e/x"), Err(PathError::EscapesRoot));
        assert_eq!(normalize("/a%zz"), Err(PathError::MalformedPercentEncoding));
        assert_eq!(normalize("/a%4"), Err(PathError::MalformedPercentEncoding));
        assert_eq!(normalize("/a%"), Err(PathError::MalformedPercentEncoding));
        assert_eq!(normalize("/a b"), Err(PathError::InvalidCharacter));
        assert_eq!(normalize("/a\r\nX: y"), Err(PathError::InvalidCharacter));
        assert_eq!(normalize("/é"), Err(PathError::InvalidCharacter));
        assert_eq!(normalize("*"), Err(PathError::NotAbsolute));
        assert_eq!(normalize("http://h/a"), Err(PathError::NotAbsolute));
        assert_eq!(normalize(""), Err(PathError::NotAbsolute));
        let long = alloc::format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(normalize(&long), Err(PathError::TooLong));
    }
}
