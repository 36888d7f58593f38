//! Scopes: their syntax, the rules that decide when a granted scope covers a required one,
//! and the set of scopes a token carries.
//!
//! Coverage follows the conventions of Curity's "Scope Best Practices":
//! - a scope covers its descendants, and the separator is a hard boundary: `order` covers
//!   `order:item` but not `orders`;
//! - read is the default, `X.write` covers `X`, every descendant of `X`, and their `.write`
//!   forms; a read scope never covers a write scope;
//! - a declared prefix scope such as `transaction-` is a family of concrete scopes
//!   (`transaction-123`); granted bare, it grants nothing.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The scopes of a scope list written as text: space-separated (RFC 6749 §3.3), and any
/// other ASCII whitespace (a tab, a newline of a pasted list) separates too, since no scope
/// can contain it. Empty items are skipped. The same rule splits `acr_values`.
///
/// ```
/// use scopegate_core::client::split_scopes;
/// assert_eq!(split_scopes(" a  b\tc\n").collect::<Vec<_>>(), ["a", "b", "c"]);
/// assert_eq!(split_scopes("").count(), 0);
/// ```
pub fn split_scopes(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
}

/// Is `scope` a syntactically valid scope token (RFC 6749 §3.3)?
///
/// A scope is one or more characters from `%x21 / %x23-5B / %x5D-7E`: printable ASCII
/// without space, `"` and `\`.
///
/// ```
/// use scopegate_core::is_valid_scope;
/// assert!(is_valid_scope("inventory:price.write"));
/// assert!(!is_valid_scope("resource read"));
/// assert!(!is_valid_scope("say\"hi\""));
/// assert!(!is_valid_scope(""));
/// ```
pub fn is_valid_scope(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(is_scope_byte)
}

/// The byte offset of the first character a scope may not contain, if any.
pub(crate) fn first_invalid_scope_byte(scope: &str) -> Option<usize> {
    scope.bytes().position(|b| !is_scope_byte(b))
}

const fn is_scope_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Why a scope or a set of scope rules was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeError {
    /// The scope is empty or has a character outside `%x21 / %x23-5B / %x5D-7E`.
    InvalidScope {
        /// The offending scope, as given.
        scope: String,
    },
    /// The hierarchy separator is empty or not made of scope characters.
    InvalidSeparator,
    /// The write suffix is empty or not made of scope characters.
    InvalidWriteSuffix,
    /// A bare prefix scope was asked for; only concrete ones (`transaction-123`) mean
    /// anything, and asking for the bare one would repeat forever.
    BarePrefix {
        /// The prefix.
        prefix: String,
    },
    /// A prefix scope is not a valid scope.
    InvalidPrefix {
        /// The offending prefix.
        prefix: String,
    },
}

impl ScopeError {
    /// A stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidScope { .. } => "invalid_scope",
            Self::InvalidSeparator => "invalid_separator",
            Self::InvalidWriteSuffix => "invalid_write_suffix",
            Self::BarePrefix { .. } => "bare_prefix",
            Self::InvalidPrefix { .. } => "invalid_prefix",
        }
    }
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidScope { scope } => write!(
                f,
                "`{scope}` is not a valid scope: scopes are non-empty and use printable ASCII \
                 except space, `\"` and `\\` (RFC 6749 section 3.3)"
            ),
            Self::InvalidSeparator => f.write_str(
                "the hierarchy separator must be one or more printable ASCII characters other \
                 than space, `\"` and `\\`",
            ),
            Self::InvalidWriteSuffix => f.write_str(
                "the write suffix must be one or more printable ASCII characters other than \
                 space, `\"` and `\\`",
            ),
            Self::BarePrefix { prefix } => write!(
                f,
                "`{prefix}` is a bare prefix scope: ask for a concrete one such as `{prefix}123`"
            ),
            Self::InvalidPrefix { prefix } => write!(
                f,
                "prefix scope `{prefix}` is not a valid scope (printable ASCII except space, \
                 `\"` and `\\`)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ScopeError {}

/// The rules that decide when one scope covers another: hierarchy separator, write suffix
/// and declared prefix scopes. A policy carries one; [`ScopeRules::default`] is `:`,
/// `.write` and no prefixes.
///
/// ```
/// use scopegate_core::ScopeRules;
/// let rules = ScopeRules::default();
/// assert!(rules.covers("order", "order:shipping:status"));
/// assert!(!rules.covers("order", "orders"));
/// assert!(rules.covers("inventory.write", "inventory:price.write"));
/// assert!(!rules.covers("inventory:price.write", "inventory.write"));
/// assert!(!rules.covers("inventory", "inventory.write"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeRules {
    separator: Box<str>,
    write_suffix: Option<Box<str>>,
    prefixes: Vec<Box<str>>,
}

impl Default for ScopeRules {
    fn default() -> Self {
        Self {
            separator: ":".into(),
            write_suffix: Some(".write".into()),
            prefixes: Vec::new(),
        }
    }
}

impl ScopeRules {
    /// Rules with the given separator, write suffix (`None` disables write semantics) and
    /// prefix scopes (each ending where the concrete id starts, e.g. `transaction-`).
    ///
    /// ```
    /// use scopegate_core::ScopeRules;
    /// let rules = ScopeRules::new("/", None, &["tx-"]).unwrap();
    /// assert!(rules.covers("files", "files/reports"));
    /// assert!(!rules.covers("tx-", "tx-7"));
    /// assert!(ScopeRules::new("", None, &[]).is_err());
    /// ```
    pub fn new(
        separator: &str,
        write_suffix: Option<&str>,
        prefixes: &[&str],
    ) -> Result<Self, ScopeError> {
        if !is_valid_scope(separator) {
            return Err(ScopeError::InvalidSeparator);
        }
        if let Some(suffix) = write_suffix {
            if !is_valid_scope(suffix) {
                return Err(ScopeError::InvalidWriteSuffix);
            }
        }
        let mut declared: Vec<Box<str>> = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            if !is_valid_scope(prefix) {
                return Err(ScopeError::InvalidPrefix {
                    prefix: String::from(*prefix),
                });
            }
            declared.push((*prefix).into());
        }
        // The same sort as a token's scopes (`ScopeSet`): one copy of the sort code.
        declared.sort_unstable();
        declared.dedup();
        Ok(Self {
            separator: separator.into(),
            write_suffix: write_suffix.map(Into::into),
            prefixes: declared,
        })
    }

    /// The hierarchy separator.
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The write suffix, if write semantics are on.
    pub fn write_suffix(&self) -> Option<&str> {
        self.write_suffix.as_deref()
    }

    /// The declared prefix scopes, sorted, once each.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(|p| &**p)
    }

    /// Is `scope` exactly a declared prefix scope (which, granted, grants nothing)?
    pub fn is_bare_prefix(&self, scope: &str) -> bool {
        self.prefixes.iter().any(|p| **p == *scope)
    }

    /// Splits `scope` into its base and whether it carries the write suffix.
    fn split_write<'s>(&self, scope: &'s str) -> (&'s str, bool) {
        match &self.write_suffix {
            Some(suffix) if scope.len() > suffix.len() && scope.ends_with(&**suffix) => {
                (&scope[..scope.len() - suffix.len()], true)
            }
            _ => (scope, false),
        }
    }

    /// Is `scope` equal to `ancestor` or below it in the hierarchy?
    fn is_self_or_descendant(&self, ancestor: &str, scope: &str) -> bool {
        match scope.strip_prefix(ancestor) {
            Some("") => true,
            Some(rest) => rest.starts_with(&*self.separator),
            None => false,
        }
    }

    /// Does the granted scope `granted` satisfy a requirement for `required`?
    ///
    /// Both are compared as given; neither is checked for syntax (a token's scopes are
    /// checked when the token is read, a policy's when it is compiled).
    pub fn covers(&self, granted: &str, required: &str) -> bool {
        if self.is_bare_prefix(granted) {
            return false;
        }
        let (granted_base, granted_write) = self.split_write(granted);
        let (required_base, required_write) = self.split_write(required);
        if required_write && !granted_write {
            return false;
        }
        self.is_self_or_descendant(granted_base, required_base)
    }

    /// Is `required` covered by any scope of `granted`?
    ///
    /// ```
    /// use scopegate_core::ScopeRules;
    /// let rules = ScopeRules::default();
    /// assert!(rules.is_covered(["openid", "order"], "order:item"));
    /// assert!(!rules.is_covered(["openid", "orders"], "order:item"));
    /// ```
    pub fn is_covered<'g, I>(&self, granted: I, required: &str) -> bool
    where
        I: IntoIterator<Item = &'g str>,
    {
        granted.into_iter().any(|g| self.covers(g, required))
    }

    /// Removes every scope that another scope of the list covers, and duplicates; keeps the
    /// first occurrence's position.
    ///
    /// ```
    /// use scopegate_core::ScopeRules;
    /// let rules = ScopeRules::default();
    /// let minimal = rules.minimize(&["order:item", "openid", "order", "order"]);
    /// assert_eq!(minimal, ["openid", "order"]);
    /// ```
    pub fn minimize<'s>(&self, scopes: &[&'s str]) -> Vec<&'s str> {
        let mut kept: Vec<&'s str> = Vec::with_capacity(scopes.len());
        for (index, scope) in scopes.iter().enumerate() {
            let first_occurrence = !scopes[..index].contains(scope);
            let covered_by_other = scopes
                .iter()
                .any(|other| other != scope && self.covers(other, scope));
            if first_occurrence && !covered_by_other {
                kept.push(scope);
            }
        }
        kept
    }

    /// The next authorization request for a client that holds `held` and was told it misses
    /// `missing`: the scopes to add (none already covered, none covered by another) and the
    /// full scope string to ask for, which is what is held plus what is missing, minimised.
    /// Asking for [`ScopeRequest::scope`] never drops a held scope's coverage, and once it is
    /// granted the next request adds nothing, so a progressive flow cannot loop.
    ///
    /// ```
    /// use scopegate_core::ScopeRules;
    /// let rules = ScopeRules::default();
    /// let next = rules
    ///     .next_request(&["openid", "resource:read", "inventory:price.write"],
    ///                   &["resource:write", "inventory.write"])
    ///     .unwrap();
    /// assert_eq!(next.add, ["resource:write", "inventory.write"]);
    /// assert_eq!(next.scope, "openid resource:read resource:write inventory.write");
    /// ```
    pub fn next_request(
        &self,
        held: &[&str],
        missing: &[&str],
    ) -> Result<ScopeRequest, ScopeError> {
        for scope in held.iter().chain(missing) {
            if !is_valid_scope(scope) {
                return Err(ScopeError::InvalidScope {
                    scope: String::from(*scope),
                });
            }
        }
        if let Some(bare) = missing.iter().find(|m| self.is_bare_prefix(m)) {
            return Err(ScopeError::BarePrefix {
                prefix: String::from(*bare),
            });
        }
        let uncovered: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|m| !self.is_covered(held.iter().copied(), m))
            .collect();
        let add = self.minimize(&uncovered);
        let mut union: Vec<&str> = Vec::with_capacity(held.len() + add.len());
        union.extend_from_slice(held);
        union.extend_from_slice(&add);
        let full = self.minimize(&union);
        Ok(ScopeRequest {
            add: add.into_iter().map(String::from).collect(),
            scope: full.join(" "),
        })
    }
}

/// The outcome of [`ScopeRules::next_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeRequest {
    /// The scopes to ask for that are not yet covered, minimal.
    pub add: Vec<String>,
    /// The whole `scope` parameter for the next authorization request, space-separated.
    pub scope: String,
}

/// The scopes a token grants: the union of its scope claims and its mapped roles,
/// deduplicated and sorted.
///
/// ```
/// use scopegate_core::ScopeSet;
/// let set = ScopeSet::from_iter(["b", "a", "b"]);
/// assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b"]);
/// assert!(set.contains("a"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet {
    scopes: Vec<Box<str>>,
}

impl ScopeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: &str) {
        if let Err(at) = self.scopes.binary_search_by(|s| (**s).cmp(scope)) {
            self.scopes.insert(at, scope.into());
        }
    }

    /// Is exactly `scope` in the set (no coverage rules applied)?
    pub fn contains(&self, scope: &str) -> bool {
        self.scopes.binary_search_by(|s| (**s).cmp(scope)).is_ok()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> + Clone {
        self.scopes.iter().map(|s| &**s)
    }

    /// How many scopes.
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }
}

impl<'a> FromIterator<&'a str> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = &'a str>>(iter: T) -> Self {
        let mut scopes: Vec<Box<str>> = iter.into_iter().map(Into::into).collect();
        scopes.sort_unstable();
        scopes.dedup();
        Self { scopes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn rules() -> ScopeRules {
        ScopeRules::new(":", Some(".write"), &["transaction-"]).unwrap()
    }

    #[test]
    fn hierarchy_stops_at_the_separator() {
        let r = rules();
        assert!(r.covers("order", "order"));
        assert!(r.covers("order", "order:item"));
        assert!(r.covers("order", "order:shipping:status"));
        assert!(!r.covers("order", "orders"));
        assert!(!r.covers("order", "order-x"));
        assert!(!r.covers("order", "orderitem"));
        assert!(!r.covers("order:item", "order"));
        assert!(!r.covers("order:item", "order:price"));
    }

    #[test]
    fn write_suffix_rules() {
        let r = rules();
        assert!(r.covers("inventory.write", "inventory"));
        assert!(r.covers("inventory.write", "inventory:price"));
        assert!(r.covers("inventory.write", "inventory:price.write"));
        assert!(r.covers("inventory.write", "inventory.write"));
        assert!(!r.covers("inventory:price.write", "inventory.write"));
        assert!(!r.covers("inventory:price.write", "inventory"));
        assert!(r.covers("inventory:price.write", "inventory:price"));
        assert!(!r.covers("inventory", "inventory.write"));
        assert!(!r.covers("inventory", "inventory:price.write"));
        assert!(!r.covers("inventory.write", "inventorys"));
        assert!(!r.covers("inventory.write", "inventory.writer"));
        // `.write` alone has no base: it is an ordinary read scope.
        assert!(r.covers(".write", ".write"));
        assert!(!r.covers(".write", "x.write"));
    }

    #[test]
    fn write_suffix_can_be_disabled() {
        let r = ScopeRules::new(":", None, &[]).unwrap();
        assert!(!r.covers("inventory.write", "inventory"));
        assert!(r.covers("inventory", "inventory:price"));
        assert!(!r.covers("inventory", "inventory.write"));
    }

    #[test]
    fn other_separators() {
        let r = ScopeRules::new("/", Some("_w"), &[]).unwrap();
        assert!(r.covers("files_w", "files/reports_w"));
        assert!(!r.covers("files", "files:reports"));
        assert!(ScopeRules::new("a b", None, &[]).is_err());
        assert!(ScopeRules::new(":", Some(""), &[]).is_err());
    }

    #[test]
    fn bare_prefix_grants_nothing() {
        let r = rules();
        assert!(!r.covers("transaction-", "transaction-123"));
        assert!(!r.covers("transaction-", "transaction-"));
        assert!(r.covers("transaction-123", "transaction-123"));
        assert!(!r.covers("transaction-123", "transaction-124"));
        assert!(!r.covers("transaction-12", "transaction-123"));
    }

    #[test]
    fn scope_syntax() {
        for ok in ["a", "!", "#[]~", "https://api.example.com/read"] {
            assert!(is_valid_scope(ok), "{ok}");
        }
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\tb", "a\u{7f}"] {
            assert!(!is_valid_scope(bad), "{bad:?}");
        }
    }

    #[test]
    fn next_request_adds_only_what_is_uncovered() {
        let r = rules();
        let next = r
            .next_request(&["order", "openid"], &["order:item", "resource:write"])
            .unwrap();
        assert_eq!(next.add, vec!["resource:write"]);
        assert_eq!(next.scope, "order openid resource:write");
    }

    #[test]
    fn next_request_minimises_and_keeps_coverage() {
        let r = rules();
        let next = r
            .next_request(
                &["resource:read", "inventory:price.write"],
                &["inventory:price", "inventory.write", "inventory.write"],
            )
            .unwrap();
        assert_eq!(next.add, vec!["inventory.write"]);
        assert_eq!(next.scope, "resource:read inventory.write");
        let again = r.next_request(&["resource:read", "inventory.write"], &["inventory.write"]);
        assert_eq!(again.unwrap().add, Vec::<String>::new());
    }

    #[test]
    fn next_request_refuses_invalid_scopes() {
        let err = rules().next_request(&["ok"], &["not ok"]).unwrap_err();
        assert_eq!(
            err,
            ScopeError::InvalidScope {
                scope: "not ok".into()
            }
        );
    }

    #[test]
    fn next_request_refuses_bare_prefixes() {
        let err = rules().next_request(&[], &["transaction-"]).unwrap_err();
        assert_eq!(err.code(), "bare_prefix");
    }

    #[test]
    fn scope_set_is_sorted_and_unique() {
        let mut set = ScopeSet::new();
        set.insert("b");
        set.insert("a");
        set.insert("b");
        assert_eq!(set.len(), 2);
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
