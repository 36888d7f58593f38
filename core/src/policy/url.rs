//! `jwks_uri` into the scheme, authority and path of a fetch, once, when the policy is
//! compiled.

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

#[cfg(test)]
mod tests {
    use super::*;

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
