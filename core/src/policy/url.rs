//! `jwks_uri` into the authority and path of a fetch, once, when the policy is compiled.

/// `http://host:port/path?query` into (`host:port`, `/path?query`); the policy compiler
/// refuses URLs this cannot split.
pub(super) fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
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
    Some((authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("https://idp.example/.well-known/jwks.json"),
            Some(("idp.example", "/.well-known/jwks.json"))
        );
        assert_eq!(
            split_url("http://127.0.0.1:9000"),
            Some(("127.0.0.1:9000", "/"))
        );
        assert_eq!(split_url("http://h?x=1"), None);
        assert_eq!(split_url("http://h/p#frag"), Some(("h", "/p")));
        assert_eq!(split_url("http:///p"), None);
        assert_eq!(split_url("http://user@h/p"), None);
        assert_eq!(split_url("ftp://h/p"), None);
    }
}
