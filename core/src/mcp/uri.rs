//! Resource URI templates of MCP rules: literal text and `{name}` captures, the RFC 6570
//! level 1 subset an operator writes for `resources/read` (`file:///docs/{id}`).
//!
//! A capture matches a non-empty run of characters without `/`, `?` or `#`, so that it
//! can never stand for more than one path segment of the URI; the captured value then
//! becomes part of a bound prefix scope only if it is a plain segment (see
//! [`crate::policy`]'s bound scopes).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

/// A resource URI as the rules match it (RFC 3986 §6.2.2): scheme and host in lower case,
/// unreserved characters decoded and escapes in upper case, dot segments removed and empty
/// segments dropped as the HTTP path rules do ([`crate::path::normalize`]), the fragment
/// dropped. A URI that cannot be normalized is refused, never matched as written: a server
/// that normalizes it would read another resource than the rule saw.
pub fn normalize_uri(uri: &str) -> Result<String, super::McpError> {
    let malformed = super::McpError::MalformedUri;
    let (scheme, rest) = uri.split_once(':').ok_or(malformed)?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(malformed);
    }
    let rest = rest.split('#').next().unwrap_or(rest);
    let (hierarchy, query) = match rest.find('?') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme.to_ascii_lowercase());
    out.push(':');
    let path = match hierarchy.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let authority = &after[..end];
            if authority
                .bytes()
                .any(|b| b <= b' ' || b >= 0x7f || b == b'\\')
            {
                return Err(malformed);
            }
            out.push_str("//");
            match authority.rsplit_once('@') {
                Some((user, host)) => {
                    out.push_str(user);
                    out.push('@');
                    out.push_str(&host.to_ascii_lowercase());
                }
                None => out.push_str(&authority.to_ascii_lowercase()),
            }
            &after[end..]
        }
        None => hierarchy,
    };
    if path.starts_with('/') {
        out.push_str(&crate::path::normalize(path).map_err(|_| malformed)?);
    } else if !path.is_empty() {
        // A rootless path (`urn:…`): the same rules, without the root.
        let rooted = alloc::format!("/{path}");
        let normalized = crate::path::normalize(&rooted).map_err(|_| malformed)?;
        out.push_str(&normalized[1..]);
    }
    if query.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(malformed);
    }
    out.push_str(query);
    Ok(out)
}

/// Most captures in one URI template.
pub const MAX_CAPTURES: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(Box<str>),
    Capture(Box<str>),
}

/// A compiled resource URI template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UriTemplate {
    pieces: Vec<Piece>,
    /// Characters of literal text, the template's specificity: among templates that match
    /// a URI the one with the most literal text wins, then the one whose text sorts first,
    /// so that the choice never depends on the order of the rules.
    literal_len: usize,
    source: Box<str>,
}

/// Why a URI template was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UriTemplateError {
    Empty,
    Unbalanced,
    BadName(String),
    Adjacent,
    Duplicate(String),
    TooMany,
}

impl UriTemplateError {
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Empty => String::from("a resource URI template cannot be empty"),
            Self::Unbalanced => String::from("`{` and `}` do not pair up"),
            Self::BadName(name) => alloc::format!(
                "`{{{name}}}` is not a capture: write `{{name}}` with letters, digits and `_` \
                 (RFC 6570 operators such as `{{+path}}` are not supported)"
            ),
            Self::Adjacent => String::from(
                "two captures in a row cannot be told apart: put literal text between them",
            ),
            Self::Duplicate(name) => alloc::format!("`{{{name}}}` is captured twice"),
            Self::TooMany => alloc::format!("more than {MAX_CAPTURES} captures"),
        }
    }
}

impl UriTemplate {
    pub(crate) fn parse(text: &str) -> Result<Self, UriTemplateError> {
        if text.is_empty() {
            return Err(UriTemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut literal_len = 0;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(0) if rest.starts_with('}') => return Err(UriTemplateError::Unbalanced),
                Some(0) => {
                    let close = rest.find('}').ok_or(UriTemplateError::Unbalanced)?;
                    let name = &rest[1..close];
                    let is_name = !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if !is_name {
                        return Err(UriTemplateError::BadName(String::from(name)));
                    }
                    if matches!(pieces.last(), Some(Piece::Capture(_))) {
                        return Err(UriTemplateError::Adjacent);
                    }
                    if pieces
                        .iter()
                        .any(|p| matches!(p, Piece::Capture(n) if **n == *name))
                    {
                        return Err(UriTemplateError::Duplicate(String::from(name)));
                    }
                    pieces.push(Piece::Capture(name.into()));
                    rest = &rest[close + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    literal_len += end;
                    pieces.push(Piece::Literal(rest[..end].into()));
                    rest = &rest[end..];
                }
            }
        }
        if pieces
            .iter()
            .filter(|p| matches!(p, Piece::Capture(_)))
            .count()
            > MAX_CAPTURES
        {
            return Err(UriTemplateError::TooMany);
        }
        Ok(Self {
            pieces,
            literal_len,
            source: text.into(),
        })
    }

    /// The position of capture `name` among the captures.
    pub(crate) fn capture_index(&self, name: &str) -> Option<usize> {
        self.captures().position(|capture| capture == name)
    }

    fn captures(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Capture(name) => Some(&**name),
            Piece::Literal(_) => None,
        })
    }

    /// Does this template win over `other` when both match?
    pub(crate) fn beats(&self, other: &Self) -> bool {
        self.literal_len > other.literal_len
            || (self.literal_len == other.literal_len && self.source < other.source)
    }

    /// The captured values if `uri` matches the whole template. A capture tries every
    /// place its run could end (`{id}.txt` matches `a.txt.txt` with `a.txt`), shortest
    /// first, so a URI that fits the template is never left to a weaker rule.
    ///
    /// Trying places costs steps; a URI that needs more than [`MAX_MATCH_STEPS`] against
    /// one template is `Err` (refused, not left to a weaker rule), so no body can make the
    /// gateway search for long.
    pub(crate) fn matches<'u>(&self, uri: &'u str) -> Result<Option<Vec<&'u str>>, TooComplex> {
        let mut values = Vec::new();
        let mut steps = 0;
        let found = match_from(&self.pieces, uri, &mut values, &mut steps)?;
        Ok(found.then_some(values))
    }
}

/// Steps one URI may take against one template.
pub const MAX_MATCH_STEPS: usize = 10_000;

/// A URI took more than [`MAX_MATCH_STEPS`] to match a template.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooComplex;

fn match_from<'u>(
    pieces: &[Piece],
    rest: &'u str,
    values: &mut Vec<&'u str>,
    steps: &mut usize,
) -> Result<bool, TooComplex> {
    *steps += 1;
    if *steps > MAX_MATCH_STEPS {
        return Err(TooComplex);
    }
    let Some((piece, more)) = pieces.split_first() else {
        return Ok(rest.is_empty());
    };
    match piece {
        Piece::Literal(text) => match rest.strip_prefix(&**text) {
            Some(after) => match_from(more, after, values, steps),
            None => Ok(false),
        },
        Piece::Capture(_) => {
            // A capture never holds `/`, `?` or `#`: the run is bounded by the first one.
            let run = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            for end in (1..=run).filter(|&end| rest.is_char_boundary(end)) {
                values.push(&rest[..end]);
                if match_from(more, &rest[end..], values, steps)? {
                    return Ok(true);
                }
                values.pop();
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn resource_uris_are_normalized_before_matching_or_refused() {
        // Each names secret 7 to a server that normalizes (issue 31's bypasses).
        for uri in [
            "file:///secret/7",
            "file:///public/../secret/7",
            "file:///secret/7/.",
            "file:///secret/./7",
            "FILE:///secret/7",
            "file:///secret//7",
            "file:///%73ecret/7",
            "file:///secret/7#part",
        ] {
            assert_eq!(
                normalize_uri(uri).as_deref(),
                Ok("file:///secret/7"),
                "{uri}"
            );
        }
        assert_eq!(
            normalize_uri("HTTPS://Docs.Example/A/%7e?q=1").as_deref(),
            Ok("https://docs.example/A/~?q=1")
        );
        assert_eq!(normalize_uri("urn:x:a/./b").as_deref(), Ok("urn:x:a/b"));
        assert_eq!(
            normalize_uri("test://static/resource/1").as_deref(),
            Ok("test://static/resource/1")
        );
        for uri in [
            "no-scheme",
            ":///x",
            "1file:///x",
            "file:///secret%2f7",
            "file:///a/%5c/b",
            "file:///../secret/7",
            "file:///secret/%zz",
            "file:///sec ret",
            "file:///a\\b",
            "file://ho st/a",
        ] {
            assert_eq!(
                normalize_uri(uri),
                Err(crate::mcp::McpError::MalformedUri),
                "{uri}"
            );
        }
        let template = UriTemplate::parse("file:///secret/{id}").unwrap();
        let normalized = normalize_uri("file:///public/../secret/7").unwrap();
        assert_eq!(template.matches(&normalized).unwrap(), Some(vec!["7"]));
    }

    impl UriTemplate {
        fn matches_ok<'u>(&self, uri: &'u str) -> Option<Vec<&'u str>> {
            self.matches(uri)
                .unwrap_or_else(|_| panic!("too complex: {uri}"))
        }
    }

    #[test]
    fn a_hostile_uri_is_refused_within_the_step_bound() {
        let template = UriTemplate::parse("x{a}x{b}x{c}x{d}x{e}x{f}x{g}x{h}y")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let uri = "x".repeat(4000);
        assert_eq!(template.matches(&uri), Err(TooComplex));
        let short = "xaxbxcxdxexfxgxhy";
        assert_eq!(template.matches_ok(short).map(|v| v.len()), Some(8));
    }

    #[test]
    fn captures_stop_at_slashes_and_literals() {
        let template =
            UriTemplate::parse("file:///docs/{id}.md").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(template.matches_ok("file:///docs/42.md"), Some(vec!["42"]));
        assert_eq!(
            template.matches_ok("file:///docs/a.md.md"),
            Some(vec!["a.md"])
        );
        assert_eq!(template.matches_ok("file:///docs/a/b.md"), None);
        assert_eq!(template.matches_ok("file:///docs/.md"), None);
        assert_eq!(template.matches_ok("file:///docs/42.md?x"), None);
        let two = UriTemplate::parse("db://{table}/{row}").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(two.matches_ok("db://users/7"), Some(vec!["users", "7"]));
        assert_eq!(two.capture_index("row"), Some(1));
        assert_eq!(two.matches_ok("db://users/7/x"), None);
        let exact = UriTemplate::parse("test://static").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(exact.matches_ok("test://static"), Some(vec![]));
        assert_eq!(exact.matches_ok("test://static/1"), None);
    }

    #[test]
    fn bad_templates_are_refused() {
        for (text, err) in [
            ("", UriTemplateError::Empty),
            ("a{b", UriTemplateError::Unbalanced),
            ("a}b", UriTemplateError::Unbalanced),
            ("a{+b}", UriTemplateError::BadName(String::from("+b"))),
            ("a{b}{c}", UriTemplateError::Adjacent),
            ("{b}/{b}", UriTemplateError::Duplicate(String::from("b"))),
        ] {
            assert_eq!(UriTemplate::parse(text), Err(err), "{text}");
        }
    }

    #[test]
    fn the_documented_uris() {
        assert_eq!(
            normalize_uri("FILE:///public/../secret/./7").unwrap(),
            "file:///secret/7"
        );
        assert_eq!(
            normalize_uri("file:///%73ecret//7").unwrap(),
            "file:///secret/7"
        );
        assert!(normalize_uri("no scheme").is_err());
    }
}
