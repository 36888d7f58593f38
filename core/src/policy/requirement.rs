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
    /// This alternative is fully covered; its rendered scopes are given for step-up checks.
    Satisfied(Vec<Cow<'r, str>>),
    /// The smallest set of scopes still missing (first alternative on a tie).
    Missing(Vec<Cow<'r, str>>),
    /// A placeholder value cannot form a scope.
    BadParameter,
}

impl Requirement {
    pub(crate) fn evaluate<'r>(
        &'r self,
        rules: &ScopeRules,
        granted: &ScopeSet,
        params: &[&str],
    ) -> Evaluation<'r> {
        let mut best: Option<Vec<Cow<'r, str>>> = None;
        for alternative in &self.alternatives {
            let mut rendered = Vec::with_capacity(alternative.len());
            for template in alternative {
                match template.render(rules, params) {
                    Some(scope) => rendered.push(scope),
                    None => return Evaluation::BadParameter,
                }
            }
            let mut missing: Vec<Cow<'r, str>> = Vec::new();
            for scope in &rendered {
                if !rules.is_covered(granted.iter(), scope) && !missing.contains(scope) {
                    missing.push(scope.clone());
                }
            }
            if missing.is_empty() {
                return Evaluation::Satisfied(rendered);
            }
            if best.as_ref().is_none_or(|b| missing.len() < b.len()) {
                best = Some(missing);
            }
        }
        Evaluation::Missing(best.unwrap_or_default())
    }
}
