//! What compiles but needs a human: each [`Rule`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::policy::document::{env_name, Secret, Unmatched};
use crate::policy::{Access, Policy, PolicyDocument, Requirement, ScopeTemplate};
use crate::token::decode::decode;

use super::{samples, Finding, Severity};

/// A warning rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Every request the route fits goes to more specific routes: it decides nothing.
    ShadowedRoute,
    /// A public route fits requests a protected route fits too.
    PublicOverlap,
    /// `roles.map` grants a scope no route needs.
    UnusedRoleScope,
    /// A route needs a scope no role grants and no metadata document advertises: no
    /// client can learn to ask for it.
    UnknowableScope,
    /// A `scopes.prefixes` entry no route binds to a placeholder.
    UnboundPrefix,
    /// `unmatched: allow` lets every request no route fits through unchecked.
    UnmatchedAllowed,
    /// `scopes.max_age` while a sample token of an issuer has no `auth_time`: every such
    /// request needs a step-up.
    MaxAgeWithoutAuthTime,
    /// The audiences accepted for a resource do not include its URL (RFC 8707, MCP).
    AudienceNotResource,
    /// A secret written in the document instead of named in the environment
    /// (`{"env": "NAME"}`): the file cannot be committed, put in a resource many can read
    /// or handed to the browser package.
    InlineSecret,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 9] = [
        Rule::ShadowedRoute,
        Rule::PublicOverlap,
        Rule::UnusedRoleScope,
        Rule::UnknowableScope,
        Rule::UnboundPrefix,
        Rule::UnmatchedAllowed,
        Rule::MaxAgeWithoutAuthTime,
        Rule::AudienceNotResource,
        Rule::InlineSecret,
    ];

    /// The rule's stable id (SARIF `ruleId`).
    pub const fn id(self) -> &'static str {
        match self {
            Self::ShadowedRoute => "shadowed-route",
            Self::PublicOverlap => "public-overlap",
            Self::UnusedRoleScope => "unused-role-scope",
            Self::UnknowableScope => "unknowable-scope",
            Self::UnboundPrefix => "unbound-prefix",
            Self::UnmatchedAllowed => "unmatched-allowed",
            Self::MaxAgeWithoutAuthTime => "max-age-without-auth-time",
            Self::AudienceNotResource => "audience-not-resource",
            Self::InlineSecret => "inline-secret",
        }
    }

    /// One line on what the rule finds.
    pub const fn summary(self) -> &'static str {
        match self {
            Self::ShadowedRoute => "a route shadowed for every method by more specific ones",
            Self::PublicOverlap => "a public route overlapping a protected one",
            Self::UnusedRoleScope => "a role mapped to a scope no route needs",
            Self::UnknowableScope => "a required scope no role grants and no client can know about",
            Self::UnboundPrefix => "a prefix scope never bound to a path placeholder",
            Self::UnmatchedAllowed => "unmatched requests let through unchecked",
            Self::MaxAgeWithoutAuthTime => "max_age for an issuer whose tokens carry no auth_time",
            Self::AudienceNotResource => "an audience that is not the resource URL",
            Self::InlineSecret => {
                "a secret written in the policy instead of named in the environment"
            }
        }
    }
}

fn warn(rule: Rule, path: String, message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        rule: rule.id(),
        path,
        message,
    }
}

/// Every secret written in the document, never its value.
fn inline_secrets(
    document: &PolicyDocument,
    original: &dyn Fn(&str, usize) -> usize,
    out: &mut Vec<Finding>,
) {
    let mut inline = |path: String| {
        out.push(warn(
            Rule::InlineSecret,
            path,
            String::from(
                "a secret written in the policy: name an environment variable of the Wasm VM \
                 instead, `{\"env\": \"NAME\"}` (Envoy `vm_config.environment_variables`, \
                 Istio `vmConfig.env`), so that the file holds none",
            ),
        ))
    };
    for (at, issuer) in document.issuers.iter().enumerate() {
        let path = format!("issuers[{}]", original("issuers", at));
        if matches!(issuer.hmac_secret, Some(Secret::Inline(_))) {
            inline(format!("{path}.hmac_secret"));
        }
        let Some(introspection) = &issuer.introspection else {
            continue;
        };
        if matches!(introspection.client_secret, Some(Secret::Inline(_))) {
            inline(format!("{path}.introspection.client_secret"));
        }
        if introspection
            .private_key
            .as_ref()
            .is_some_and(|key| env_name(key).is_none())
        {
            inline(format!("{path}.introspection.private_key"));
        }
    }
    let nonce = document.dpop.as_ref().and_then(|dpop| dpop.nonce.as_ref());
    if nonce.is_some_and(|nonce| matches!(nonce.secret, Secret::Inline(_))) {
        inline(String::from("dpop.nonce.secret"));
    }
}

fn requirements(access: &Access) -> Vec<&Requirement> {
    match access {
        Access::Public => Vec::new(),
        Access::Protected(requirement) => alloc::vec![requirement],
        Access::Mcp(mcp) => mcp.requirements().collect(),
    }
}

fn templates(policy: &Policy) -> impl Iterator<Item = (usize, &ScopeTemplate)> {
    policy.routes.iter().enumerate().flat_map(|(index, route)| {
        requirements(&route.access)
            .into_iter()
            .flat_map(|r| r.alternatives.iter().flatten())
            .map(move |template| (index, template))
    })
}

/// The warnings of a compiled policy; `original` maps a compiled entry's index back to
/// the file's (`"routes"`, 2) → 3 when lint set an entry aside.
pub(super) fn warnings(
    policy: &Policy,
    document: &PolicyDocument,
    tokens: &[&str],
    original: &dyn Fn(&str, usize) -> usize,
) -> Vec<Finding> {
    let mut out = Vec::new();
    inline_secrets(document, original, &mut out);
    let route = |index: usize| format!("routes[{}]", original("routes", index));
    shadowed_routes(policy, &route, &mut out);
    public_overlaps(policy, &route, &mut out);
    unused_role_scopes(policy, document, &mut out);
    unknowable_scopes(policy, document, &route, &mut out);
    unbound_prefixes(policy, document, &mut out);
    if document.unmatched == Unmatched::Allow {
        out.push(warn(
            Rule::UnmatchedAllowed,
            String::from("unmatched"),
            String::from(
                "every request no route fits goes to the upstream unchecked; `deny` (the \
                 default) fails closed",
            ),
        ));
    }
    if !document.scopes.max_age.is_empty() {
        max_age_without_auth_time(policy, tokens, original, &mut out);
    }
    audience_warnings(policy, document, original, &mut out);
    out
}

fn shadowed_routes(policy: &Policy, route: &dyn Fn(usize) -> String, out: &mut Vec<Finding>) {
    for index in 0..policy.routes.len() {
        if let Some(by) = samples::shadowed_by(policy, index).filter(|by| !by.is_empty()) {
            let by: Vec<String> = by.iter().map(|&i| route(i)).collect();
            out.push(warn(
                Rule::ShadowedRoute,
                route(index),
                format!(
                    "`{}` decides no request: every request it fits goes to the more specific {}; \
                     remove it or change its path",
                    policy.routes[index].path,
                    by.join(", ")
                ),
            ));
        }
    }
}

fn public_overlaps(policy: &Policy, route: &dyn Fn(usize) -> String, out: &mut Vec<Finding>) {
    for (public, entry) in policy.routes.iter().enumerate() {
        if !matches!(entry.access, Access::Public) {
            continue;
        }
        for (protected, other) in policy.routes.iter().enumerate() {
            if matches!(other.access, Access::Public)
                || !samples::overlap(policy, public, protected)
            {
                continue;
            }
            out.push(warn(
                Rule::PublicOverlap,
                route(public),
                format!(
                    "public `{}` fits requests that protected {} `{}` fits too: the more \
                     specific one decides each request; check that the public route opens only \
                     what it should",
                    entry.path,
                    route(protected),
                    other.path
                ),
            ));
        }
    }
}

fn unused_role_scopes(policy: &Policy, document: &PolicyDocument, out: &mut Vec<Finding>) {
    let needed = |granted: &str| {
        templates(policy).any(|(_, template)| match template {
            ScopeTemplate::Literal(scope) => policy.rules.covers(granted, scope),
            ScopeTemplate::Bound { prefix, .. } => granted.starts_with(&**prefix),
        })
    };
    let Some(roles) = &document.roles else {
        return;
    };
    for (role, scopes) in &roles.map {
        for (at, scope) in scopes.iter().enumerate() {
            if !needed(scope) {
                out.push(warn(
                    Rule::UnusedRoleScope,
                    format!("roles.map.{role}[{at}]"),
                    format!("role `{role}` grants `{scope}`, which no route needs"),
                ));
            }
        }
    }
}

fn unknowable_scopes(
    policy: &Policy,
    document: &PolicyDocument,
    route: &dyn Fn(usize) -> String,
    out: &mut Vec<Finding>,
) {
    let advertised = |scope: &str| {
        let single = document.resource.is_some();
        let listed = document.resources.iter().flatten().any(|r| {
            r.scopes_supported
                .as_ref()
                .is_none_or(|list| list.iter().any(|s| s == scope))
        });
        single || listed
    };
    let mut reported: Vec<&str> = Vec::new();
    for (index, template) in templates(policy) {
        let Some(scope) = template.literal() else {
            continue;
        };
        let granted = policy
            .role_map
            .iter()
            .flat_map(|(_, granted)| granted)
            .any(|g| policy.rules.covers(g, scope));
        if granted || advertised(scope) || reported.contains(&scope) {
            continue;
        }
        reported.push(scope);
        out.push(warn(
            Rule::UnknowableScope,
            route(index),
            format!(
                "`{scope}` is granted by no role and advertised by no metadata document \
                 (`resource`): a client learns it only from a 403; map a role to it or \
                 publish `resource`"
            ),
        ));
    }
}

fn unbound_prefixes(policy: &Policy, document: &PolicyDocument, out: &mut Vec<Finding>) {
    for (at, prefix) in document.scopes.prefixes.iter().enumerate() {
        let bound = templates(policy).any(|(_, template)| {
            matches!(template, ScopeTemplate::Bound { prefix: p, .. } if **p == **prefix)
        });
        if !bound {
            out.push(warn(
                Rule::UnboundPrefix,
                format!("scopes.prefixes[{at}]"),
                format!(
                    "prefix scope `{prefix}` is bound by no route: require `{prefix}{{id}}` on a \
                     route with an `{{id}}` placeholder, or remove it"
                ),
            ));
        }
    }
}

/// One finding per issuer whose first sample token carries no `auth_time`.
fn max_age_without_auth_time(
    policy: &Policy,
    tokens: &[&str],
    original: &dyn Fn(&str, usize) -> usize,
    out: &mut Vec<Finding>,
) {
    let mut seen: Vec<usize> = Vec::new();
    for (sample, token) in tokens.iter().enumerate() {
        let Ok(decoded) = decode(token) else { continue };
        let claims = decoded.claims();
        let issuer = claims
            .get("iss")
            .and_then(serde_json::Value::as_str)
            .and_then(|iss| policy.issuer_by_name(iss));
        let Some((index, issuer)) = issuer else {
            continue;
        };
        if claims.get("auth_time").is_some() || seen.contains(&index) {
            continue;
        }
        seen.push(index);
        out.push(warn(
            Rule::MaxAgeWithoutAuthTime,
            String::from("scopes.max_age"),
            format!(
                "sample token {sample} of issuers[{}] `{}` has no `auth_time`: every request \
                 needing a scope with a max_age gets a 401 step-up; have the IdP add \
                 `auth_time` to access tokens",
                original("issuers", index),
                issuer.issuer
            ),
        ));
    }
}

/// A resource by position in `resources` (`None`: the single `resource`), its URL, and
/// the audiences it accepts (`None`: the issuers').
type ResourceAudiences<'d> = (Option<usize>, &'d str, Option<&'d Vec<String>>);

fn audience_warnings(
    policy: &Policy,
    document: &PolicyDocument,
    original: &dyn Fn(&str, usize) -> usize,
    out: &mut Vec<Finding>,
) {
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let resources: Vec<ResourceAudiences<'_>> = match &document.resources {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, r)| (Some(i), r.resource.as_str(), r.audiences.as_ref()))
            .collect(),
        None => document
            .resource
            .iter()
            .map(|r| (None, r.as_str(), None))
            .collect(),
    };
    for (at, url, audiences) in resources {
        match (at, audiences) {
            (Some(at), Some(audiences)) if !audiences.iter().any(|a| same(a, url)) => {
                let at = original("resources", at);
                out.push(warn(
                    Rule::AudienceNotResource,
                    format!("resources[{at}].audiences"),
                    format!(
                        "tokens for `{url}` are accepted with audience {}, not the resource URL: \
                         clients that send `resource={url}` (RFC 8707, MCP) get tokens for `{url}`",
                        audiences.join(", ")
                    ),
                ));
            }
            // An entry of `resources` without `audiences` accepts its own URL.
            (_, Some(_)) | (Some(_), None) => {}
            (None, None) => {
                for (index, issuer) in policy.issuers.iter().enumerate() {
                    if issuer.audiences.iter().any(|a| same(a, url)) {
                        continue;
                    }
                    let index = original("issuers", index);
                    out.push(warn(
                        Rule::AudienceNotResource,
                        format!("issuers[{index}].audiences"),
                        format!(
                            "the resource is `{url}` but tokens of `{}` are accepted with \
                             audience {}: add `{url}`, which clients that send `resource` \
                             (RFC 8707, MCP) get tokens for",
                            issuer.issuer,
                            issuer
                                .audiences
                                .iter()
                                .map(|a| &**a)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
    }
}
