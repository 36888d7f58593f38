//! `WWW-Authenticate` challenges: built for RFC 6750 / RFC 9470 / RFC 9728 denials, and
//! parsed by the RFC 9110 §11.6.1 grammar.
//!
//! Parsing follows the grammar rather than splitting on commas, because commas and `=`
//! legitimately appear inside quoted values (RFC 6750's own examples) and separate both
//! parameters and challenges.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Longest `WWW-Authenticate` value the parser accepts, in bytes.
pub const MAX_CHALLENGE_LEN: usize = 16 * 1024;

/// One challenge: an auth-scheme with either a token68 or a list of parameters.
///
/// ```
/// use scopegate_core::Challenge;
/// let challenge = Challenge::new("Bearer")
///     .with_param("realm", "api")
///     .with_param("error", "insufficient_scope")
///     .with_param("scope", "resource:write");
/// let header = challenge.to_header_value();
/// assert_eq!(header, r#"Bearer realm="api", error="insufficient_scope", scope="resource:write""#);
/// assert_eq!(scopegate_core::parse_challenges(&header).unwrap(), [challenge]);
/// ```
///
/// Serialised (for the browser package, the CLI and the vectors) as
/// `{"scheme": "Bearer", "params": [["realm", "api"]]}`, with `"token68"` when present.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Challenge {
    /// The auth-scheme as written (compare it case-insensitively).
    pub scheme: String,
    /// The token68 form, for schemes that use it instead of parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token68: Option<String>,
    /// Parameters in order, names lower-cased, values unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A challenge with no parameters.
    pub fn new(scheme: &str) -> Self {
        Self {
            scheme: String::from(scheme),
            token68: None,
            params: Vec::new(),
        }
    }

    /// Adds a parameter (the name is lower-cased).
    #[must_use]
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.params
            .push((name.to_ascii_lowercase(), String::from(value)));
        self
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Is this a `Bearer` challenge?
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Bearer")
    }

    /// The scopes of a `scope` parameter (space-separated), if present.
    ///
    /// ```
    /// let c = &scopegate_core::parse_challenges(r#"Bearer scope="a b""#).unwrap()[0];
    /// assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.param("scope")
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// The value of a `max_age` parameter (RFC 9470), if present and a number.
    pub fn max_age(&self) -> Option<u64> {
        self.param("max_age").and_then(|v| v.parse().ok())
    }

    /// Serializes the challenge. Values are quoted-strings with `"` and `\` escaped, except
    /// a numeric `max_age`, which RFC 9470 writes as a token.
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str(&self.scheme);
        if let Some(token68) = &self.token68 {
            out.push(' ');
            out.push_str(token68);
        }
        for (index, (name, value)) in self.params.iter().enumerate() {
            out.push_str(if index == 0 { " " } else { ", " });
            out.push_str(name);
            out.push('=');
            let numeric = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            if name == "max_age" && numeric {
                out.push_str(value);
            } else {
                push_quoted(&mut out, value);
            }
        }
        out
    }
}

fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Why a `WWW-Authenticate` value could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeParseError {
    /// Byte offset where parsing stopped.
    pub at: usize,
    /// What the grammar expected there.
    pub expected: &'static str,
}

impl fmt::Display for ChallengeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid WWW-Authenticate value at byte {}: expected {}",
            self.at, self.expected
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ChallengeParseError {}

/// Parses a `WWW-Authenticate` field value into its challenges.
///
/// ```
/// use scopegate_core::parse_challenges;
/// let header = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#;
/// let challenges = parse_challenges(header).unwrap();
/// assert_eq!(challenges.len(), 2);
/// assert_eq!(challenges[0].param("title"), Some(r#"Login to "apps""#));
/// assert_eq!(challenges[1].scheme, "Basic");
///
/// let bearer = &parse_challenges(
///     r#"Bearer realm="example", error="insufficient_scope", scope="a, b=c""#,
/// ).unwrap()[0];
/// assert_eq!(bearer.param("scope"), Some("a, b=c"));
/// ```
pub fn parse_challenges(input: &str) -> Result<Vec<Challenge>, ChallengeParseError> {
    if input.len() > MAX_CHALLENGE_LEN {
        return Err(ChallengeParseError {
            at: MAX_CHALLENGE_LEN,
            expected: "a header value no longer than 16 KiB",
        });
    }
    let mut parser = Parser {
        bytes: input.as_bytes(),
        input,
        pos: 0,
    };
    let mut challenges = Vec::new();
    loop {
        parser.skip_list_separators();
        if parser.at_end() {
            break;
        }
        challenges.push(parser.challenge()?);
    }
    if challenges.is_empty() {
        return Err(parser.error("at least one challenge"));
    }
    Ok(challenges)
}

struct Parser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, expected: &'static str) -> ChallengeParseError {
        ChallengeParseError {
            at: self.pos,
            expected,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Skips OWS and empty list elements (`#` rule allows `, ,`).
    fn skip_list_separators(&mut self) {
        loop {
            self.skip_ows();
            if self.peek() == Some(b',') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.input[start..self.pos])
    }

    fn challenge(&mut self) -> Result<Challenge, ChallengeParseError> {
        let Some(scheme) = self.token() else {
            return Err(self.error("an auth-scheme token"));
        };
        let mut challenge = Challenge::new(scheme);
        let before_space = self.pos;
        self.skip_ows();
        if self.at_end() || self.peek() == Some(b',') {
            return Ok(challenge);
        }
        if self.pos == before_space {
            return Err(self.error("a space after the auth-scheme"));
        }
        if let Some((name, value)) = self.try_auth_param()? {
            challenge.params.push((name, value));
            self.more_params(&mut challenge)?;
        } else {
            challenge.token68 = Some(String::from(self.token68()?));
        }
        Ok(challenge)
    }

    /// Parses `token BWS "=" BWS ( token / quoted-string )` at the current position, or
    /// rewinds and returns `None` if what is there is not an auth-param.
    fn try_auth_param(&mut self) -> Result<Option<(String, String)>, ChallengeParseError> {
        let start = self.pos;
        let Some(name) = self.token() else {
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        self.skip_ows();
        if self.peek() != Some(b'=') {
            self.pos = start;
            return Ok(None);
        }
        self.pos += 1;
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else if let Some(token) = self.token() {
            String::from(token)
        } else {
            // `abc=` followed by nothing usable: that was a token68 with padding.
            self.pos = start;
            return Ok(None);
        };
        Ok(Some((name, value)))
    }

    fn more_params(&mut self, challenge: &mut Challenge) -> Result<(), ChallengeParseError> {
        loop {
            self.skip_ows();
            if self.peek() != Some(b',') {
                if self.at_end() {
                    return Ok(());
                }
                return Err(self.error("`,` between auth-params"));
            }
            let before_comma = self.pos;
            self.skip_list_separators();
            if self.at_end() {
                return Ok(());
            }
            match self.try_auth_param()? {
                Some((name, value)) => {
                    if challenge.params.iter().any(|(n, _)| *n == name) {
                        return Err(self.error("each auth-param name once per challenge"));
                    }
                    challenge.params.push((name, value));
                }
                None => {
                    // The next element starts a new challenge.
                    self.pos = before_comma;
                    return Ok(());
                }
            }
        }
    }

    fn token68(&mut self) -> Result<&'a str, ChallengeParseError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        }) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("a token68 or an auth-param"));
        }
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        let end = self.pos;
        self.skip_ows();
        if !self.at_end() && self.peek() != Some(b',') {
            return Err(self.error("`,` or the end after a token68"));
        }
        Ok(&self.input[start..end])
    }

    fn quoted_string(&mut self) -> Result<String, ChallengeParseError> {
        self.pos += 1;
        let mut value = String::new();
        let mut chunk_start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error("a closing `\"`")),
                Some(b'"') => {
                    value.push_str(&self.input[chunk_start..self.pos]);
                    self.pos += 1;
                    return Ok(value);
                }
                Some(b'\\') => {
                    value.push_str(&self.input[chunk_start..self.pos]);
                    self.pos += 1;
                    let escaped = self.input[self.pos..]
                        .chars()
                        .next()
                        .filter(|c| *c == '\t' || *c >= ' ' && *c != '\u{7f}')
                        .ok_or_else(|| self.error("a character after `\\`"))?;
                    value.push(escaped);
                    self.pos += escaped.len_utf8();
                    chunk_start = self.pos;
                }
                Some(b) if b == b'\t' || b >= b' ' && b != 0x7f => self.pos += 1,
                Some(_) => return Err(self.error("a visible character in a quoted-string")),
            }
        }
    }
}

/// RFC 9110 `tchar`.
pub(crate) const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn one(input: &str) -> Challenge {
        let mut all = parse_challenges(input).unwrap();
        assert_eq!(all.len(), 1, "{input}");
        all.remove(0)
    }

    #[test]
    fn rfc6750_examples() {
        let c = one(r#"Bearer realm="example""#);
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("example"));
        let c = one(
            r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
        );
        assert_eq!(c.param("error"), Some("invalid_token"));
        assert_eq!(
            c.param("ERROR_DESCRIPTION"),
            Some("The access token expired")
        );
    }

    #[test]
    fn rfc9470_max_age_token() {
        let c = one(
            r#"Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age=5"#,
        );
        assert_eq!(c.max_age(), Some(5));
    }

    #[test]
    fn several_challenges_and_token68() {
        let all = parse_challenges(
            r#"Basic dXNlcjpwYXNz==, Bearer realm="a, b", scope="x y", Negotiate, , DPoP algs="ES256""#,
        )
        .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].token68.as_deref(), Some("dXNlcjpwYXNz=="));
        assert_eq!(all[1].param("realm"), Some("a, b"));
        assert_eq!(all[1].scopes().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(all[2].scheme, "Negotiate");
        assert!(all[2].params.is_empty());
        assert_eq!(all[3].param("algs"), Some("ES256"));
    }

    #[test]
    fn quoted_pairs_unescape() {
        let c = one(r#"Bearer realm="a \"quoted\" \\ \x""#);
        assert_eq!(c.param("realm"), Some(r#"a "quoted" \ x"#));
    }

    #[test]
    fn bws_around_equals_and_case() {
        let c = one("bearer Realm = \"r\" ,\tScope=a");
        assert_eq!(
            c.params,
            vec![("realm".into(), "r".into()), ("scope".into(), "a".into())]
        );
    }

    #[test]
    fn errors_name_the_position() {
        let cases = [
            ("", 0),
            (" , ", 3),
            ("Bearer realm=\"open", 18),
            ("Bearer realm=\"a\" error=\"b\"", 17),
            ("Bearer a=1, a=2", 15),
            ("=x", 0),
            ("Bearer\"x\"", 6),
            ("Basic abc def", 10),
            ("Bearer realm=\"\u{1}\"", 14),
        ];
        for (input, at) in cases {
            let err = parse_challenges(input).unwrap_err();
            assert_eq!(err.at, at, "{input:?}: {err}");
        }
        let long = "a".repeat(MAX_CHALLENGE_LEN + 1);
        assert!(parse_challenges(&long).is_err());
    }

    #[test]
    fn builds_and_escapes() {
        let c = Challenge::new("Bearer")
            .with_param("realm", "say \"hi\" \\o/")
            .with_param("max_age", "300");
        assert_eq!(
            c.to_header_value(),
            r#"Bearer realm="say \"hi\" \\o/", max_age=300"#
        );
        assert_eq!(one(&c.to_header_value()), c);
    }
}
