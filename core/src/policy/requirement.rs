//! A route's compiled scope requirement, and the smallest missing set.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::route::is_plain_segment;
use crate::scope::{is_valid_scope, ScopeRules, ScopeSet};

/// One required scope: a literal, or a declared prefix bound to a path placeholder
/// (`transaction-{id}`), optionally followed by the write suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScopeTemplate {
    Literal(Box<str>),
    Bound {
        prefix: Box<str>,
        param: usize,
        suffix: Box<str>,
    },
}

/// Why a requirement's scope was refused at compile time.
pub(crate) enum TemplateScopeError {
    Invalid,
    BarePrefix,
    UndeclaredPrefix(String),
    UnknownPlaceholder(String),
    Malformed,
}

impl ScopeTemplate {
    pub(crate) fn compile(
        text: &str,
        rules: &ScopeRules,
        param_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, TemplateScopeError> {
        let Some(open) = text.find('{') else {
            if !is_valid_scope(text) {
                return Err(TemplateScopeError::Invalid);
            }
            if rules.is_bare_prefix(text) {
                return Err(TemplateScopeError::BarePrefix);
            }
            return Ok(Self::Literal(text.into()));
        };
        let (prefix, rest) = text.split_at(open);
        let close = rest.find('}').ok_or(TemplateScopeError::Malformed)?;
        let name = &rest[1..close];
        let suffix = &rest[close + 1..];
        if !rules.is_bare_prefix(prefix) {
            return Err(TemplateScopeError::UndeclaredPrefix(String::from(prefix)));
        }
        let suffix_ok = suffix.is_empty() || Some(suffix) == rules.write_suffix();
        if !suffix_ok || name.contains(['{', '}']) {
            return Err(TemplateScopeError::Malformed);
        }
        let param = param_index(name)
            .ok_or_else(|| TemplateScopeError::UnknownPlaceholder(String::from(name)))?;
        Ok(Self::Bound {
            prefix: prefix.into(),
            param,
            suffix: suffix.into(),
        })
    }

    /// The concrete scope for these placeholder values, or `None` when the value cannot
    /// safely become part of a scope.
    fn render<'r>(&'r self, rules: &ScopeRules, params: &[&str]) -> Option<Cow<'r, str>> {
        match self {
            Self::Literal(scope) => Some(Cow::Borrowed(scope)),
            Self::Bound {
                prefix,
                param,
                suffix,
            } => {
                let value = params.get(*param)?;
                // A value holding the separator or the write suffix would make the holder of
                // another resource's scope cover this one.
                let unsafe_value = !is_plain_segment(value)
                    || value.contains(rules.separator())
                    || rules.write_suffix().is_some_and(|w| value.ends_with(w));
                if unsafe_value {
                    return None;
                }
                Some(Cow::Owned(alloc::format!("{prefix}{value}{suffix}")))
            }
        }
    }

    /// The scope as a person reads it: rendered, or with a value that cannot form a scope
    /// shown as it is.
    pub(crate) fn shown(&self, rules: &ScopeRules, params: &[&str]) -> String {
        match (self.render(rules, params), self) {
            (Some(scope), _) => scope.into_owned(),
            (
                None,
                Self::Bound {
                    prefix,
                    param,
                    suffix,
                },
            ) => {
                let value = params.get(*param).copied().unwrap_or("?");
                alloc::format!("{prefix}{value}{suffix} (`{value}` cannot form a scope)")
            }
            (None, Self::Literal(scope)) => String::from(&**scope),
        }
    }

    pub(crate) fn literal(&self) -> Option<&str> {
        match self {
            Self::Literal(scope) => Some(scope),
            Self::Bound { .. } => None,
        }
    }
}

/// Every scope of at least one alternative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub(crate) alternatives: Vec<Vec<ScopeTemplate>>,
}

/// How a token fares against a requirement.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Evaluation<'r> {
    /// The alternative at this position is fully covered.
    Satisfied(usize),
    /// The alternative with the smallest set of scopes still missing (the first on a tie):
    /// every scope it requires, and those of them still missing.
    Missing {
        /// Every scope of the chosen alternative.
        required: Vec<Cow<'r, str>>,
        /// The ones the token lacks.
        missing: Vec<Cow<'r, str>>,
    },
    /// A placeholder value cannot form a scope.
    BadParameter,
}

impl Requirement {
    /// Counts before it collects, so that a satisfied requirement of literal scopes is
    /// decided without allocating.
    pub(crate) fn evaluate<'r>(
        &'r self,
        rules: &ScopeRules,
        granted: &ScopeSet,
        params: &[&str],
    ) -> Evaluation<'r> {
        let mut best: Option<(usize, usize)> = None;
        for (index, alternative) in self.alternatives.iter().enumerate() {
            let mut missing = 0;
            for template in alternative {
                match template.render(rules, params) {
                    Some(scope) if rules.is_covered(granted.iter(), &scope) => {}
                    Some(_) => missing += 1,
                    None => return Evaluation::BadParameter,
                }
            }
            if missing == 0 {
                return Evaluation::Satisfied(index);
            }
            if best.is_none_or(|(_, fewest)| missing < fewest) {
                best = Some((index, missing));
            }
        }
        let Some((index, _)) = best else {
            return Evaluation::Missing {
                required: Vec::new(),
                missing: Vec::new(),
            };
        };
        let required = self.rendered(index, rules, params);
        let missing = required
            .iter()
            .filter(|scope| !rules.is_covered(granted.iter(), scope))
            .cloned()
            .collect();
        Evaluation::Missing { required, missing }
    }

    /// The concrete scopes of alternative `index` (placeholders already checked).
    pub(crate) fn rendered<'r>(
        &'r self,
        index: usize,
        rules: &ScopeRules,
        params: &[&str],
    ) -> Vec<Cow<'r, str>> {
        self.alternatives
            .get(index)
            .into_iter()
            .flatten()
            .filter_map(|template| template.render(rules, params))
            .collect()
    }
}
