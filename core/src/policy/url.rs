//! `jwks_uri` into the scheme, authority and path of a fetch, once, when the policy is
//! compiled; and the RFC 3986 syntax the other URIs are checked by (a request target's
//! scheme, an authorization request's `redirect_uri` and `resource`).

/// The parts of an endpoint URL a host's HTTP call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SplitUrl<'u> {
    /// `http` or `https`, the `:scheme` of the call: hosts that reach the endpoint by its
    /// address (nginx) speak TLS only when told.
    pub(super) scheme: &'static str,
    /// `host:port`, the `:authority`.
    pub(super) authority: &'u str,
    /// Path and query, the `:path`.
    pub(super) path: &'u str,
}

/// `http://host:port/path?query` into its scheme, `host:port` and `/path?query`; the policy
/// compiler refuses URLs this cannot split.
pub(super) fn split_url(url: &str) -> Option<SplitUrl<'_>> {
    let (scheme, rest) = match url.strip_prefix("https://") {
        Some(rest) => ("https", rest),
        None => ("http", url.strip_prefix("http://")?),
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    let (authority, path) = match rest.find(['/', '?']) {
        // `http://host?query` has no path to put the query after.
        Some(at) if rest[at..].starts_with('?') => return None,
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return None;
    }
    Some(SplitUrl {
        scheme,
        authority,
        path,
    })
}

/// Is `scheme` a URI scheme (RFC 3986 §3.1): a letter, then letters, digits, `+`, `-`, `.`?
pub(crate) fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Is `uri` an absolute URI without a fragment (RFC 3986 §4.3, what RFC 6749 §3.1.2 asks of
/// a `redirect_uri` and RFC 8707 §2 of a `resource`): a scheme, `:`, something after it,
/// only the characters a URI may hold (printable ASCII but space, `"<>\^{|}` and the
/// backtick), every `%` the start of an escape, no `#`. An `http` or `https` URI also needs
/// a host, `//` and a non-empty authority (RFC 9110 §4.2.1), as [`split_url`] does.
pub(crate) fn is_absolute_uri(uri: &str) -> bool {
    let Some(colon) = uri.find(':') else {
        return false;
    };
    let (scheme, rest) = (&uri[..colon], &uri[colon + 1..]);
    let bytes = rest.as_bytes();
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        let ok = if b == b'%' {
            let hex = bytes.get(at + 1..at + 3).unwrap_or_default();
            hex.len() == 2 && hex.iter().all(u8::is_ascii_hexdigit)
        } else {
            (b'!'..=b'~').contains(&b)
                && !matches!(
                    b,
                    b'"' | b'#' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                )
        };
        if !ok {
            return false;
        }
        at += 1;
    }
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let host_ok = !http
        || rest
            .strip_prefix("//")
            .is_some_and(|r| !r.is_empty() && !r.starts_with(['/', '?']));
    is_scheme(scheme) && !rest.is_empty() && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uris_have_a_scheme_and_no_fragment() {
        for uri in [
            "https://api.example/",
            "https://api.example",
            "https://api.example?x=1",
            "http://127.0.0.1:8080/mcp",
            "urn:example:resource",
            "myapp:/callback",
            "https://api.example/a%20b",
        ] {
            assert!(is_absolute_uri(uri), "{uri}");
        }
        for uri in [
            "",
            "/relative",
            "api.example/x",
            "1https://a",
            "https://api.example/#frag",
            "https://api.example/#",
            "https://",
            "https:///path",
            "https:api.example",
            "HTTPS://",
            "https://api.example/a b",
            "https://api.example/caf\u{e9}",
            "https://api.example/%zz",
            "https://api.example/%2",
            "urn:",
        ] {
            assert!(!is_absolute_uri(uri), "{uri}");
        }
        assert!(is_scheme("web+app") && !is_scheme("") && !is_scheme("a b"));
    }

    fn parts(url: &str) -> Option<(&'static str, &str, &str)> {
        split_url(url).map(|u| (u.scheme, u.authority, u.path))
    }

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        assert_eq!(
            parts("https://idp.example/.well-known/jwks.json"),
            Some(("https", "idp.example", "/.well-known/jwks.json"))
        );
        assert_eq!(
            parts("http://127.0.0.1:9000"),
            Some(("http", "127.0.0.1:9000", "/"))
        );
        assert_eq!(split_url("http://h?x=1"), None);
        assert_eq!(parts("http://h/p#frag"), Some(("http", "h", "/p")));
        assert_eq!(split_url("http:///p"), None);
        assert_eq!(split_url("http://user@h/p"), None);
        assert_eq!(split_url("ftp://h/p"), None);
    }
}
