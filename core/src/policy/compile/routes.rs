//! Routes and their requirements.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::policy::document::{RequirementDocument, RouteDocument};
use crate::policy::requirement::{ScopeTemplate, TemplateScopeError};
use crate::policy::{Access, PolicyError, Requirement};
use crate::route::{is_method_token, Methods, RouteTemplate};
use crate::scope::ScopeRules;

use super::invalid_scope_message;
use super::mcp::compile_mcp;

pub(super) fn compile_route(
    index: usize,
    route: &RouteDocument,
    rules: &ScopeRules,
) -> Result<(RouteTemplate, Methods, Access), PolicyError> {
    let path = format!("routes[{index}]");
    let template = RouteTemplate::parse(&route.path)
        .map_err(|e| PolicyError::new(format!("{path}.path"), format!("{e}")))?;
    let methods = match &route.methods {
        None => Methods::Any,
        Some(list) if list.is_empty() => {
            return Err(PolicyError::new(
                format!("{path}.methods"),
                "unreachable route: an empty list matches no request; remove `methods` to \
                 match every method",
            ))
        }
        Some(list) => {
            let mut methods: Vec<Box<str>> = Vec::with_capacity(list.len());
            for (at, method) in list.iter().enumerate() {
                if !is_method_token(method) {
                    return Err(PolicyError::new(
                        format!("{path}.methods[{at}]"),
                        format!("`{method}` is not an upper-case HTTP method such as GET"),
                    ));
                }
                if !methods.iter().any(|m| **m == **method) {
                    methods.push(method.as_str().into());
                }
            }
            Methods::Only(methods)
        }
    };
    if route.authenticated && (route.public || route.require.is_some() || route.mcp.is_some()) {
        return Err(PolicyError::new(
            format!("{path}.authenticated"),
            "`authenticated: true` is for a route that needs a valid token and no scope: not \
             with `public`, `require` or `mcp` (a token is needed for those already)",
        ));
    }
    if let Some(mcp) = &route.mcp {
        if route.public {
            return Err(PolicyError::new(
                path,
                "an MCP route is not `public`: MCP servers take a token on every request",
            ));
        }
        let default = route
            .require
            .as_ref()
            .map(|require| {
                let param_index = |name: &str| template.param_index(name);
                compile_requirement(&format!("{path}.require"), require, rules, &param_index)
            })
            .transpose()?;
        let mcp = compile_mcp(&format!("{path}.mcp"), mcp, default, rules, &template)?;
        return Ok((template, methods, Access::Mcp(mcp)));
    }
    let access =
        match (route.public, &route.require) {
            (true, Some(_)) => {
                return Err(PolicyError::new(
                    path,
                    "a route is either `public: true` or has `require`, not both",
                ))
            }
            (true, None) => Access::Public,
            // One alternative of no scopes: satisfied by every valid token.
            (false, None) if route.authenticated => Access::Protected(Requirement {
                alternatives: alloc::vec![Vec::new()],
            }),
            (false, None) => return Err(PolicyError::new(
                path,
                "add `require` with the scopes this route needs, `authenticated: true` for any \
                 valid token, or `public: true`",
            )),
            (false, Some(requirement)) => Access::Protected(compile_requirement(
                &format!("{path}.require"),
                requirement,
                rules,
                &|name: &str| template.param_index(name),
            )?),
        };
    Ok((template, methods, access))
}

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
