//! A `require` value (a list of scopes, or `any_of` lists) compiled into a [`Requirement`],
//! for routes and MCP rules alike.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::policy::document::RequirementDocument;
use crate::policy::requirement::{Requirement, ScopeTemplate, TemplateScopeError};
use crate::policy::PolicyError;
use crate::scope::ScopeRules;

use super::invalid_scope_message;

pub(super) fn compile_requirement(
    path: &str,
    doc: &RequirementDocument,
    rules: &ScopeRules,
    param_index: &dyn Fn(&str) -> Option<usize>,
) -> Result<Requirement, PolicyError> {
    let lists: Vec<(String, &Vec<String>)> = match doc {
        RequirementDocument::AllOf(list) => alloc::vec![(String::from(path), list)],
        RequirementDocument::AnyOf(lists) => {
            if lists.is_empty() {
                return Err(PolicyError::new(
                    format!("{path}.any_of"),
                    "needs at least one list of scopes",
                ));
            }
            lists
                .iter()
                .enumerate()
                .map(|(i, list)| (format!("{path}.any_of[{i}]"), list))
                .collect()
        }
    };
    let mut alternatives = Vec::with_capacity(lists.len());
    for (list_path, list) in lists {
        if list.is_empty() {
            let hint = if list_path.contains(".mcp.rules[") {
                "an empty scope list requires nothing; for messages that need only a valid \
                 token, leave them to the route (without `require`, it asks for no scope)"
            } else {
                "an empty scope list requires nothing; use `public: true` for open routes"
            };
            return Err(PolicyError::new(list_path, hint));
        }
        let mut alternative = Vec::with_capacity(list.len());
        for scope in list {
            let compiled = ScopeTemplate::compile(scope, rules, param_index).map_err(|err| {
                let message = match err {
                    TemplateScopeError::Invalid => invalid_scope_message(scope),
                    TemplateScopeError::BarePrefix => format!(
                        "`{scope}` is a bare prefix scope, which no token can satisfy; \
                             bind it to a placeholder as in `{scope}{{id}}`"
                    ),
                    TemplateScopeError::UndeclaredPrefix(prefix) => format!(
                        "`{scope}` uses undeclared prefix scope `{prefix}`; add it to \
                             `scopes.prefixes`"
                    ),
                    TemplateScopeError::UnknownPlaceholder(name) => format!(
                        "`{scope}` uses `{{{name}}}`, which the route path (or the rule's \
                             resource URI template) does not have"
                    ),
                    TemplateScopeError::Malformed => format!(
                        "`{scope}` is not a valid bound scope: write `<prefix>{{param}}`, \
                             optionally followed by the write suffix"
                    ),
                };
                PolicyError::new(list_path.clone(), message)
            })?;
            if !alternative.contains(&compiled) {
                alternative.push(compiled);
            }
        }
        alternatives.push(alternative);
    }
    Ok(Requirement { alternatives })
}
