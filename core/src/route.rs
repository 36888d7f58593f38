//! Route templates and the table that finds the most specific route for a request.
//!
//! A template is an absolute path whose segments are literals, `{param}` placeholders, or a
//! final `**` that matches zero or more further segments. Among the routes that match a
//! path, the most specific wins whatever their order in the policy: segments compare left
//! to right, a literal beats a placeholder, a placeholder beats `**`, and a template that
//! ends beats a `**` at the same place. On one template, a route that lists the request's
//! method beats a route for any method.
//!
//! The table is a segment trie searched depth-first in that order, so the first route found
//! is the most specific one, and a search visits each trie node at most once.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::path::is_unreserved;

/// Most `{param}` placeholders in one template.
pub const MAX_PARAMS: usize = 8;

/// Why a route template was refused. Each names what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// The template does not start with `/`.
    NotAbsolute,
    /// `//` or a trailing `/`.
    EmptySegment,
    /// `**` is not the last segment, or `*` appears inside a segment.
    MisplacedWildcard,
    /// A `{...}` placeholder is not a whole segment or its name is not an identifier.
    BadPlaceholder {
        /// The segment.
        segment: String,
    },
    /// The same placeholder name twice.
    DuplicatePlaceholder {
        /// The name.
        name: String,
    },
    /// More than [`MAX_PARAMS`] placeholders.
    TooManyPlaceholders,
    /// A literal segment that a normalized request path never contains, so the route could
    /// never be reached (`.`, `..`, a percent-escape of an unreserved character, an encoded
    /// slash, a character that must be encoded, ...).
    Unreachable {
        /// The segment.
        segment: String,
        /// The form it would have in a normalized path, if it has one.
        normalized: Option<String>,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("a route template must start with `/`"),
            Self::EmptySegment => {
                f.write_str("a route template has no empty segments: no `//` and no trailing `/`")
            }
            Self::MisplacedWildcard => {
                f.write_str("`**` may only be the whole last segment, as in `/api/**`")
            }
            Self::BadPlaceholder { segment } => write!(
                f,
                "`{segment}` is not a placeholder: write a whole segment `{{name}}` with a name \
                 of letters, digits and `_`"
            ),
            Self::DuplicatePlaceholder { name } => {
                write!(f, "placeholder `{{{name}}}` appears twice")
            }
            Self::TooManyPlaceholders => {
                write!(f, "a route template has at most {MAX_PARAMS} placeholders")
            }
            Self::Unreachable {
                segment,
                normalized: Some(normalized),
            } => write!(
                f,
                "unreachable route: segment `{segment}` never occurs in a normalized path; \
                 write `{normalized}`"
            ),
            Self::Unreachable {
                segment,
                normalized: None,
            } => write!(
                f,
                "unreachable route: segment `{segment}` never occurs in a normalized path"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TemplateError {}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param(Box<str>),
}

/// A parsed route template such as `/api/orders/{id}/items` or `/api/public/**`.
///
/// ```
/// use scopegate_core::RouteTemplate;
/// let t = RouteTemplate::parse("/api/orders/{id}/**").unwrap();
/// assert_eq!(t.params().collect::<Vec<_>>(), ["id"]);
/// assert!(t.is_catch_all());
/// assert!(RouteTemplate::parse("/api/**/x").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTemplate {
    segments: Vec<Segment>,
    catch_all: bool,
}

impl RouteTemplate {
    /// Request paths this template fits, for probing which route a table picks: each
    /// placeholder filled with `value`, and `**` with nothing, one segment and two.
    pub(crate) fn sample_paths(&self, value: &str) -> Vec<String> {
        let mut base = String::new();
        for segment in &self.segments {
            base.push('/');
            match segment {
                Segment::Literal(literal) => base.push_str(literal),
                Segment::Param(_) => base.push_str(value),
            }
        }
        if !self.catch_all {
            return alloc::vec![if base.is_empty() {
                String::from("/")
            } else {
                base
            }];
        }
        let root = if base.is_empty() {
            String::from("/")
        } else {
            base.clone()
        };
        alloc::vec![
            root,
            alloc::format!("{base}/{value}"),
            alloc::format!("{base}/{value}/{value}"),
        ]
    }

    /// Parses and checks a template.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let Some(rest) = template.strip_prefix('/') else {
            return Err(TemplateError::NotAbsolute);
        };
        let mut segments = Vec::new();
        let mut catch_all = false;
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (index, part) in parts.iter().enumerate() {
                if part.is_empty() {
                    return Err(TemplateError::EmptySegment);
                }
                if *part == "**" {
                    if index + 1 != parts.len() {
                        return Err(TemplateError::MisplacedWildcard);
                    }
                    catch_all = true;
                } else if part.contains('*') {
                    return Err(TemplateError::MisplacedWildcard);
                } else if part.contains(['{', '}']) {
                    let name =
                        placeholder_name(part).ok_or_else(|| TemplateError::BadPlaceholder {
                            segment: String::from(*part),
                        })?;
                    let repeated = segments
                        .iter()
                        .any(|s| matches!(s, Segment::Param(n) if **n == *name));
                    if repeated {
                        return Err(TemplateError::DuplicatePlaceholder {
                            name: String::from(name),
                        });
                    }
                    segments.push(Segment::Param(name.into()));
                } else {
                    check_literal(part)?;
                    segments.push(Segment::Literal((*part).into()));
                }
            }
        }
        let params = segments
            .iter()
            .filter(|s| matches!(s, Segment::Param(_)))
            .count();
        if params > MAX_PARAMS {
            return Err(TemplateError::TooManyPlaceholders);
        }
        Ok(Self {
            segments,
            catch_all,
        })
    }

    /// Placeholder names, in path order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(&**name),
            Segment::Literal(_) => None,
        })
    }

    /// The position of placeholder `name` among [`Self::params`].
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params().position(|p| p == name)
    }

    /// Does the template end with `**`?
    pub fn is_catch_all(&self) -> bool {
        self.catch_all
    }
}

fn placeholder_name(segment: &str) -> Option<&str> {
    let name = segment.strip_prefix('{')?.strip_suffix('}')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// A literal must be a segment exactly as path normalization leaves it.
fn check_literal(segment: &str) -> Result<(), TemplateError> {
    let unreachable = |normalized: Option<String>| TemplateError::Unreachable {
        segment: String::from(segment),
        normalized,
    };
    if segment == "." || segment == ".." {
        return Err(unreachable(None));
    }
    let probe = alloc::format!("/{segment}");
    match crate::path::normalize(&probe) {
        Ok(normalized) if normalized == probe => Ok(()),
        Ok(normalized) => Err(unreachable(Some(String::from(&normalized[1..])))),
        Err(_) => Err(unreachable(None)),
    }
}

/// The methods a route applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Methods {
    /// Every method.
    Any,
    /// Only these (upper-case tokens, deduplicated).
    Only(Vec<Box<str>>),
}

impl Methods {
    /// Does the set contain `method`?
    pub fn contains(&self, method: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(list) => list.iter().any(|m| **m == *method),
        }
    }

    /// A method both sets contain, if any; both being [`Methods::Any`] counts.
    fn overlap<'a>(&'a self, other: &'a Self) -> Option<&'a str> {
        match (self, other) {
            (Self::Any, Self::Any) => Some("*"),
            (Self::Only(a), Self::Only(b)) => a.iter().find(|m| b.contains(m)).map(|m| &**m),
            // An explicit list is more specific than `Any` on the same template.
            _ => None,
        }
    }

    /// Is it every method?
    pub fn is_any(&self) -> bool {
        matches!(self, Self::Any)
    }
}

/// Is `method` an HTTP method token (RFC 9110 `token`) in upper case?
pub fn is_method_token(method: &str) -> bool {
    !method.is_empty()
        && method
            .bytes()
            .all(|b| crate::challenge::is_tchar(b) && !b.is_ascii_lowercase())
}

/// A route that matched, with the values of its placeholders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch<'p> {
    /// Position of the route in the table (and the policy's `routes`).
    pub index: usize,
    params: [&'p str; MAX_PARAMS],
    param_count: usize,
}

impl<'p> RouteMatch<'p> {
    /// The placeholder values, in path order; each a segment of the normalized path.
    pub fn params(&self) -> &[&'p str] {
        &self.params[..self.param_count]
    }
}

/// Two routes that would match the same requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConflict {
    /// The route added first.
    pub existing: usize,
    /// A method both apply to (`*` for two routes without a method list).
    pub method: String,
}

#[derive(Clone, Debug, Default)]
struct Node {
    literals: Vec<(Box<str>, Node)>,
    param: Option<Box<Node>>,
    exact: Vec<(Methods, usize)>,
    catch_all: Vec<(Methods, usize)>,
}

impl Node {
    fn literal(&self, segment: &str) -> Option<&Node> {
        self.literals
            .binary_search_by(|(s, _)| (**s).cmp(segment))
            .ok()
            .map(|i| &self.literals[i].1)
    }

    fn literal_mut(&mut self, segment: &str) -> &mut Node {
        let index = match self.literals.binary_search_by(|(s, _)| (**s).cmp(segment)) {
            Ok(i) => i,
            Err(i) => {
                self.literals.insert(i, (segment.into(), Node::default()));
                i
            }
        };
        &mut self.literals[index].1
    }
}

/// Picks the entry for `method`: an explicit method list first, then a route for any method.
fn pick(entries: &[(Methods, usize)], method: &str) -> Option<usize> {
    entries
        .iter()
        .find(|(m, _)| !m.is_any() && m.contains(method))
        .or_else(|| entries.iter().find(|(m, _)| m.is_any()))
        .map(|(_, index)| *index)
}

/// The compiled routes of a policy.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    root: Node,
    len: usize,
}

impl RouteTable {
    /// Adds a route; its index is the number of routes added before it. Refuses a route
    /// that would match exactly the requests of one already added for some method.
    pub fn insert(
        &mut self,
        template: &RouteTemplate,
        methods: Methods,
    ) -> Result<usize, RouteConflict> {
        let mut node = &mut self.root;
        for segment in &template.segments {
            node = match segment {
                Segment::Literal(literal) => node.literal_mut(literal),
                Segment::Param(_) => node.param.get_or_insert_with(Default::default),
            };
        }
        let entries = if template.catch_all {
            &mut node.catch_all
        } else {
            &mut node.exact
        };
        for (existing_methods, existing) in entries.iter() {
            if let Some(method) = existing_methods.overlap(&methods) {
                return Err(RouteConflict {
                    existing: *existing,
                    method: String::from(method),
                });
            }
        }
        let index = self.len;
        entries.push((methods, index));
        self.len += 1;
        Ok(index)
    }

    /// How many routes.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The most specific route for `method` on a normalized path (see
    /// [`crate::path::normalize`]). Does not allocate.
    pub fn find<'p>(&self, method: &str, normalized_path: &'p str) -> Option<RouteMatch<'p>> {
        let rest = normalized_path.strip_prefix('/')?;
        let mut found = RouteMatch {
            index: 0,
            params: [""; MAX_PARAMS],
            param_count: 0,
        };
        let index = walk(&self.root, rest, method, &mut found, 0)?;
        found.index = index;
        Some(found)
    }
}

fn walk<'p>(
    node: &Node,
    rest: &'p str,
    method: &str,
    found: &mut RouteMatch<'p>,
    params: usize,
) -> Option<usize> {
    if rest.is_empty() {
        found.param_count = params;
        return pick(&node.exact, method).or_else(|| pick(&node.catch_all, method));
    }
    let (segment, tail) = match rest.bytes().position(|b| b == b'/') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, ""),
    };
    if let Some(child) = node.literal(segment) {
        if let Some(index) = walk(child, tail, method, found, params) {
            return Some(index);
        }
    }
    if let Some(child) = &node.param {
        if params < MAX_PARAMS {
            found.params[params] = segment;
            if let Some(index) = walk(child, tail, method, found, params + 1) {
                return Some(index);
            }
        }
    }
    found.param_count = params;
    pick(&node.catch_all, method)
}

/// Is `segment` made only of characters a normalized path keeps as they are? Used for
/// placeholder values that become part of a scope.
pub(crate) fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(is_unreserved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn table(templates: &[(&str, Methods)]) -> RouteTable {
        let mut table = RouteTable::default();
        for (template, methods) in templates {
            table
                .insert(&RouteTemplate::parse(template).unwrap(), methods.clone())
                .unwrap();
        }
        table
    }

    fn only(methods: &[&str]) -> Methods {
        Methods::Only(methods.iter().map(|m| (*m).into()).collect())
    }

    #[test]
    fn template_errors() {
        assert_eq!(RouteTemplate::parse("api"), Err(TemplateError::NotAbsolute));
        assert_eq!(
            RouteTemplate::parse("/a//b"),
            Err(TemplateError::EmptySegment)
        );
        assert_eq!(
            RouteTemplate::parse("/a/"),
            Err(TemplateError::EmptySegment)
        );
        assert_eq!(
            RouteTemplate::parse("/a/**/b"),
            Err(TemplateError::MisplacedWildcard)
        );
        assert_eq!(
            RouteTemplate::parse("/a*"),
            Err(TemplateError::MisplacedWildcard)
        );
        assert!(matches!(
            RouteTemplate::parse("/a/x{id}"),
            Err(TemplateError::BadPlaceholder { .. })
        ));
        assert!(matches!(
            RouteTemplate::parse("/a/{1d}"),
            Err(TemplateError::BadPlaceholder { .. })
        ));
        assert!(matches!(
            RouteTemplate::parse("/{a}/{a}"),
            Err(TemplateError::DuplicatePlaceholder { .. })
        ));
        assert_eq!(
            RouteTemplate::parse("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"),
            Err(TemplateError::TooManyPlaceholders)
        );
        assert_eq!(
            RouteTemplate::parse("/a/%7Euser"),
            Err(TemplateError::Unreachable {
                segment: "%7Euser".into(),
                normalized: Some("~user".into())
            })
        );
        assert!(matches!(
            RouteTemplate::parse("/a/.."),
            Err(TemplateError::Unreachable { .. })
        ));
        assert!(matches!(
            RouteTemplate::parse("/a/b c"),
            Err(TemplateError::Unreachable { .. })
        ));
        assert!(RouteTemplate::parse("/").is_ok());
        assert!(RouteTemplate::parse("/**").is_ok());
        assert!(RouteTemplate::parse("/a%20b/{x_1}").is_ok());
    }

    #[test]
    fn most_specific_wins_whatever_the_order() {
        let templates = [
            ("/**", Methods::Any),
            ("/api/**", Methods::Any),
            ("/api/{kind}/{id}", Methods::Any),
            ("/api/orders/{id}", Methods::Any),
            ("/api/orders/{id}/**", Methods::Any),
            ("/api/orders/special", Methods::Any),
            ("/api/{kind}/special", Methods::Any),
        ];
        let cases = [
            ("/api/orders/special", "/api/orders/special"),
            ("/api/orders/7", "/api/orders/{id}"),
            ("/api/orders/7/items", "/api/orders/{id}/**"),
            ("/api/users/special", "/api/{kind}/special"),
            ("/api/users/7", "/api/{kind}/{id}"),
            ("/api/users/7/x", "/api/**"),
            ("/api", "/api/**"),
            ("/other", "/**"),
            ("/", "/**"),
        ];
        // Every rotation of the insertion order gives the same answers.
        for shift in 0..templates.len() {
            let mut order = templates.to_vec();
            order.rotate_left(shift);
            let t = table(&order);
            for (path, expected) in cases {
                let found = t.find("GET", path).unwrap();
                assert_eq!(order[found.index].0, expected, "{path} with shift {shift}");
            }
        }
    }

    #[test]
    fn params_are_captured() {
        let t = table(&[("/a/{x}/b/{y}", Methods::Any), ("/a/{x}/c", Methods::Any)]);
        assert_eq!(t.find("GET", "/a/1/b/2").unwrap().params(), ["1", "2"]);
        assert_eq!(t.find("GET", "/a/1/c").unwrap().params(), ["1"]);
        assert!(t.find("GET", "/a/1").is_none());
        assert!(t.find("GET", "/a/1/b/2/3").is_none());
    }

    #[test]
    fn backtracks_when_a_literal_branch_dead_ends() {
        let t = table(&[("/a/b/c", Methods::Any), ("/a/{x}/d", Methods::Any)]);
        let found = t.find("GET", "/a/b/d").unwrap();
        assert_eq!((found.index, found.params()), (1, &["b"][..]));
    }

    #[test]
    fn methods_select_and_explicit_beats_any() {
        let t = table(&[
            ("/r", only(&["GET", "HEAD"])),
            ("/r", only(&["POST"])),
            ("/r", Methods::Any),
            ("/s", only(&["GET"])),
        ]);
        assert_eq!(t.find("GET", "/r").unwrap().index, 0);
        assert_eq!(t.find("POST", "/r").unwrap().index, 1);
        assert_eq!(t.find("DELETE", "/r").unwrap().index, 2);
        assert!(t.find("POST", "/s").is_none());
    }

    #[test]
    fn method_falls_back_to_a_less_specific_route() {
        let t = table(&[
            ("/api/orders", only(&["GET"])),
            ("/api/**", only(&["POST"])),
        ]);
        assert_eq!(t.find("POST", "/api/orders").unwrap().index, 1);
    }

    #[test]
    fn conflicts_are_refused() {
        let mut t = table(&[("/a/{x}", only(&["GET", "PUT"]))]);
        let err = t
            .insert(&RouteTemplate::parse("/a/{y}").unwrap(), only(&["PUT"]))
            .unwrap_err();
        assert_eq!(
            err,
            RouteConflict {
                existing: 0,
                method: "PUT".into()
            }
        );
        t.insert(&RouteTemplate::parse("/a/{y}").unwrap(), Methods::Any)
            .unwrap();
        assert!(t
            .insert(&RouteTemplate::parse("/a/{z}").unwrap(), Methods::Any)
            .is_err());
        // `/a/**` and `/a/{x}` are different shapes.
        t.insert(&RouteTemplate::parse("/a/**").unwrap(), Methods::Any)
            .unwrap();
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn method_tokens() {
        for ok in ["GET", "M-SEARCH", "X_1"] {
            assert!(is_method_token(ok));
        }
        for bad in ["", "get", "GE T", "GET\r"] {
            assert!(!is_method_token(bad));
        }
        let _ = vec![0];
    }

    mod properties {
        use alloc::borrow::ToOwned;
        use alloc::format;
        use alloc::string::String;
        use alloc::vec;
        use alloc::vec::Vec;

        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::super::{Methods, RouteTable, RouteTemplate};

        proptest! {
            #[test]
            fn route_choice_does_not_depend_on_order(
                templates in vec(vec(prop::sample::select(vec!["a", "b", "{p}"]), 0..4)
                    .prop_flat_map(|segments| (Just(segments), any::<bool>())), 1..10),
                path in vec(prop::sample::select(vec!["a", "b", "c"]), 0..5),
            ) {
                let mut shapes: Vec<String> = Vec::new();
                for (segments, catch_all) in &templates {
                    let mut named: Vec<String> = segments
                        .iter()
                        .enumerate()
                        .map(|(i, s)| if *s == "{p}" { format!("{{p{i}}}") } else { (*s).to_owned() })
                        .collect();
                    if *catch_all {
                        named.push("**".to_owned());
                    }
                    let shape = format!("/{}", named.join("/"));
                    if !shapes.contains(&shape) {
                        shapes.push(shape);
                    }
                }
                let build = |order: &[String]| {
                    let mut table = RouteTable::default();
                    for template in order {
                        table.insert(&RouteTemplate::parse(template).expect("template"), Methods::Any).expect("no conflict");
                    }
                    table
                };
                let path = format!("/{}", path.join("/"));
                let forward = build(&shapes);
                let mut reversed = shapes.clone();
                reversed.reverse();
                let backward = build(&reversed);
                let a = forward.find("GET", &path).map(|m| shapes[m.index].clone());
                let b = backward.find("GET", &path).map(|m| reversed[m.index].clone());
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn the_documented_table() {
        use crate::route::{Methods, RouteTable, RouteTemplate};
        let mut table = RouteTable::default();
        table
            .insert(&RouteTemplate::parse("/api/**").unwrap(), Methods::Any)
            .unwrap();
        table
            .insert(
                &RouteTemplate::parse("/api/orders/{id}").unwrap(),
                Methods::Any,
            )
            .unwrap();
        let found = table.find("GET", "/api/orders/7").unwrap();
        assert_eq!((found.index, found.params()), (1, &["7"][..]));
        assert_eq!(table.find("GET", "/api/other").unwrap().index, 0);
        assert!(table.find("GET", "/else").is_none());
    }
}
