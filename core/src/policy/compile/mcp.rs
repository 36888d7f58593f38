//! The `mcp` rules of a route.

use alloc::format;
use alloc::vec::Vec;

use super::requirement::compile_requirement;
use crate::mcp::{target_kind, McpRoute, McpRule, RuleTarget, TargetKind, UriTemplate};
use crate::policy::document::{McpDocument, McpRuleDocument, DEFAULT_MCP_MAX_BODY_BYTES};
use crate::policy::requirement::Requirement;
use crate::policy::PolicyError;
use crate::route::RouteTemplate;
use crate::scope::ScopeRules;

/// The largest `max_body_bytes`: bodies are buffered in the proxy's memory.
const MAX_MCP_BODY_BYTES: usize = 64 << 20;

pub(super) fn compile_mcp(
    path: &str,
    doc: &McpDocument,
    default: Option<Requirement>,
    rules: &ScopeRules,
    template: &RouteTemplate,
) -> Result<McpRoute, PolicyError> {
    let max_body = doc.max_body_bytes.unwrap_or(DEFAULT_MCP_MAX_BODY_BYTES);
    if max_body == 0 || max_body > MAX_MCP_BODY_BYTES {
        return Err(PolicyError::new(
            format!("{path}.max_body_bytes"),
            format!("must be between 1 and {MAX_MCP_BODY_BYTES}"),
        ));
    }
    let mut compiled: Vec<McpRule> = Vec::with_capacity(doc.rules.len());
    for (index, rule) in doc.rules.iter().enumerate() {
        let at = format!("{path}.rules[{index}]");
        let method = rule.method.as_str();
        let is_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_graphic());
        if !is_method {
            return Err(PolicyError::new(
                format!("{at}.method"),
                format!("`{method}` is not a JSON-RPC method name such as `tools/call`"),
            ));
        }
        let target = rule_target(&at, method, rule)?;
        if let Some(earlier) = compiled
            .iter()
            .position(|r| *r.method == *method && r.target == target)
        {
            return Err(PolicyError::new(
                at,
                format!(
                    "duplicate rule: {path}.rules[{earlier}] already has this method and \
                     target; merge their requirements"
                ),
            ));
        }
        let requirement = match &target {
            RuleTarget::Uri(uri) => {
                let param_index = |name: &str| uri.capture_index(name);
                compile_requirement(&format!("{at}.require"), &rule.require, rules, &param_index)?
            }
            _ => {
                let param_index = |name: &str| template.param_index(name);
                compile_requirement(&format!("{at}.require"), &rule.require, rules, &param_index)?
            }
        };
        compiled.push(McpRule {
            method: method.into(),
            target,
            requirement,
        });
    }
    Ok(McpRoute {
        max_body,
        trust_mirrored_headers: doc.trust_mirrored_headers,
        default,
        rules: compiled,
    })
}

/// What a rule's `name` or `uri` selects, given what its method names.
fn rule_target(at: &str, method: &str, rule: &McpRuleDocument) -> Result<RuleTarget, PolicyError> {
    match (&rule.name, &rule.uri, target_kind(method)) {
        (Some(_), Some(_), _) => Err(PolicyError::new(at, "a rule has `name` or `uri`, not both")),
        (None, None, _) => Ok(RuleTarget::Method),
        (Some(name), None, Some(TargetKind::Name)) => Ok(RuleTarget::Name(name.as_str().into())),
        (None, Some(uri), Some(TargetKind::Uri)) => {
            let template = UriTemplate::parse(uri)
                .map_err(|err| PolicyError::new(format!("{at}.uri"), err.message()))?;
            Ok(RuleTarget::Uri(template))
        }
        (Some(_), None, _) => Err(PolicyError::new(
            format!("{at}.name"),
            format!(
                "`{method}` names nothing: `name` is for `tools/call` and \
                 `prompts/get`, `uri` for `resources/read`, `resources/subscribe` \
                 and `resources/unsubscribe`"
            ),
        )),
        (None, Some(_), _) => Err(PolicyError::new(
            format!("{at}.uri"),
            format!(
                "`{method}` has no resource URI: `uri` is for `resources/read`, \
                 `resources/subscribe` and `resources/unsubscribe`"
            ),
        )),
    }
}
