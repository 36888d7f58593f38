//! Routes and their requirements.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use crate::policy::document::RouteDocument;
use crate::policy::requirement::Requirement;
use crate::policy::{Access, PolicyError};
use crate::route::{is_method_token, Methods, RouteTemplate};
use crate::scope::ScopeRules;

use super::mcp::compile_mcp;
use super::requirement::compile_requirement;

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
