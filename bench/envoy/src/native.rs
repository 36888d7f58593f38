//! The same policy in Envoy's own filters: `envoy.filters.http.jwt_authn` verifies the token
//! and puts its payload in the dynamic metadata, `envoy.filters.http.rbac` checks the
//! scopes per route, and the route table does the route matching.
//!
//! What carries over, and how:
//! - routes: one Envoy route per policy route (path regex, `:method` header), ordered most
//!   specific first as scopegate orders them, then a catch-all 403 for `unmatched: deny`;
//! - issuers: one jwt_authn provider each (issuer, audiences, inline JWKS, leeway as
//!   `clock_skew_seconds`), `requires_any` across providers on protected routes, disabled
//!   on public ones;
//! - a required scope: an RBAC principal that accepts every granted scope covering it,
//!   enumerated at config time (its ancestors across the separator, and their `.write`
//!   forms, as `ScopeRules::covers` decides), in each scope claim as a space-separated
//!   string or as an array, plus every role of `roles.map` that grants a covering scope;
//!   `all_of` becomes `and_ids`, `any_of` `or_ids`;
//! - forwarded claims: `claim_to_headers`; the metadata document: a direct response.
//!
//! What does not carry over (see the README's benchmark section): a prefix scope bound to
//! a path parameter (`transaction-{id}`) is approximated by any id, wider than the policy;
//! `max_age` step-up, the `typ` check, per-issuer algorithm lists, the RFC 6750 / 9470
//! challenges and JSON bodies, the 400s for unsafe paths and query tokens, CORS of denials,
//! and stripping forged forwarded headers have no equivalent in these two filters.

use scopegate_core::DEFAULT_SCOPE_CLAIMS;
use scopegate_core::{Policy, ScopeRules};
use serde_json::{json, Value};

/// The metadata namespace jwt_authn writes the payload under.
const PAYLOAD_KEY: &str = "jwt_payload";
const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";
const RBAC: &str = "envoy.filters.http.rbac";
/// Stands for a path parameter inside a required scope while coverage is computed.
const PARAM_MARK: &str = "PARAMxMARK";
/// What a path parameter may hold once scopegate has checked it (unreserved characters).
const PARAM_CLASS: &str = "[A-Za-z0-9._~-]+";

/// The HTTP filters and the route table that enforce `document` natively. `cache_size`
/// turns on jwt_authn's cache of verified tokens (off unless configured).
pub fn enforce(document: &Value, cache_size: Option<u32>, ok_body: &str) -> (Vec<Value>, Value) {
    let policy = Policy::from_json(&document.to_string()).expect("the policy compiles");
    let rules = policy.scope_rules();
    let providers = providers(document, cache_size);
    let provider_names: Vec<String> = providers.keys().cloned().collect();
    let requirement = match provider_names.as_slice() {
        [one] => json!({"provider_name": one}),
        many => json!({"requires_any": {"requirements":
            many.iter().map(|p| json!({"provider_name": p})).collect::<Vec<_>>()}}),
    };
    let filters = vec![
        json!({"name": JWT_AUTHN, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "requirement_map": {"token": requirement}
        }}),
        // No top-level rules: each protected route carries its own.
        json!({"name": RBAC, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
        }}),
    ];

    let claims = Claims::of(document);
    let mut routes: Vec<(Vec<u8>, bool, Value)> = Vec::new();
    for route in document["routes"].as_array().expect("routes") {
        let path = route["path"].as_str().expect("path");
        let mut envoy_route = json!({
            "match": {"safe_regex": {"regex": path_regex(path)}},
            "direct_response": {"status": 200, "body": {"inline_string": ok_body}}
        });
        let methods: Vec<&str> = route["methods"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !methods.is_empty() {
            envoy_route["match"]["headers"] = json!([{"name": ":method",
                "string_match": {"safe_regex": {"regex": methods.join("|")}}}]);
        }
        let per_filter = if route["public"] == json!(true) {
            json!({JWT_AUTHN: jwt_per_route(json!({"disabled": true}))})
        } else {
            let principal = requirement_principal(&route["require"], rules, &claims);
            json!({
                JWT_AUTHN: jwt_per_route(json!({"requirement_name": "token"})),
                RBAC: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
                    "rbac": {"rules": {"action": "ALLOW", "policies": {"scopes": {
                        "permissions": [{"any": true}],
                        "principals": [principal]
                    }}}}
                }
            })
        };
        envoy_route["typed_per_filter_config"] = per_filter;
        routes.push((specificity(path), methods.is_empty(), envoy_route));
    }
    // Envoy takes the first match; scopegate the most specific, method lists first. The sort
    // is stable, and templates of equal rank never match the same path.
    routes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut routes: Vec<Value> = routes.into_iter().map(|(_, _, r)| r).collect();
    if let Some(resource) = document["resource"].as_str() {
        let served_path = resource
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
            .unwrap_or("");
        routes.insert(
            0,
            json!({
                "match": {"path": format!("/.well-known/oauth-protected-resource{served_path}")},
                "direct_response": {"status": 200, "body": {"inline_string":
                    policy.resource_metadata().unwrap_or_default()}},
                "typed_per_filter_config": {JWT_AUTHN: jwt_per_route(json!({"disabled": true}))}
            }),
        );
    }
    let unmatched = if document["unmatched"] == json!("allow") {
        json!({"status": 200, "body": {"inline_string": ok_body}})
    } else {
        json!({"status": 403, "body": {"inline_string": "no route"}})
    };
    routes.push(json!({
        "match": {"prefix": "/"},
        "direct_response": unmatched,
        "typed_per_filter_config": {JWT_AUTHN: jwt_per_route(json!({"disabled": true}))}
    }));
    (
        filters,
        json!({"virtual_hosts": [{"name": "api", "domains": ["*"], "routes": routes}]}),
    )
}

/// Setup (5): jwt_authn verifies the tokens (the providers of [`enforce`], failures let
/// through for scopegate to refuse) and scopegate decides everything else, each issuer of
/// `document` marked verified by jwt_authn. The jwt_authn filter and that policy.
pub fn verify_only(document: &Value, cache_size: Option<u32>) -> (Value, Value) {
    let mut providers = providers(document, cache_size);
    for provider in providers.values_mut() {
        // scopegate forwards the claims itself.
        if let Some(provider) = provider.as_object_mut() {
            provider.remove("claim_to_headers");
        }
    }
    let mut requirements: Vec<Value> = providers
        .keys()
        .map(|name| json!({"provider_name": name}))
        .collect();
    requirements.push(json!({"allow_missing_or_failed": {}}));
    let filter = json!({"name": JWT_AUTHN, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": providers,
        "rules": [{"match": {"prefix": "/"},
                   "requires": {"requires_any": {"requirements": requirements}}}]
    }});
    let mut policy = document.clone();
    for issuer in policy["issuers"].as_array_mut().into_iter().flatten() {
        let Some(issuer) = issuer.as_object_mut() else {
            continue;
        };
        for key in [
            "jwks",
            "jwks_uri",
            "jwks_cluster",
            "jwks_refresh_seconds",
            "jwks_refetch_seconds",
        ] {
            issuer.remove(key);
        }
        issuer.insert(
            "jwt_authn".into(),
            json!({"payload_in_metadata": PAYLOAD_KEY}),
        );
    }
    (filter, policy)
}

fn jwt_per_route(config: Value) -> Value {
    let mut config = config;
    config["@type"] =
        json!("type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig");
    config
}

fn providers(document: &Value, cache_size: Option<u32>) -> serde_json::Map<String, Value> {
    let forward = document["forward"]["claims"].as_array().cloned();
    let mut claim_to_headers: Vec<Value> = forward
        .unwrap_or_default()
        .iter()
        .map(|f| json!({"header_name": f["header"], "claim_name": f["claim"]}))
        .collect();
    if let Some(header) = document["forward"]["scopes_header"].as_str() {
        claim_to_headers.push(json!({"header_name": header, "claim_name": "scope"}));
    }
    let mut providers = serde_json::Map::new();
    for (index, issuer) in document["issuers"]
        .as_array()
        .expect("issuers")
        .iter()
        .enumerate()
    {
        let mut provider = json!({
            "issuer": issuer["issuer"],
            "audiences": issuer["audiences"],
            "local_jwks": {"inline_string": issuer["jwks"].to_string()},
            // scopegate leaves the Authorization header to the upstream.
            "forward": true,
            "payload_in_metadata": PAYLOAD_KEY,
            "clock_skew_seconds": issuer["leeway_seconds"].as_u64().unwrap_or(60),
            "claim_to_headers": claim_to_headers,
        });
        if let Some(size) = cache_size {
            provider["jwt_cache_config"] = json!({"jwt_cache_size": size});
        }
        providers.insert(format!("issuer{index}"), provider);
    }
    providers
}

/// The claims a policy reads scopes and roles from, and its role map.
struct Claims {
    scopes: Vec<String>,
    roles: Vec<String>,
    role_map: Vec<(String, Vec<String>)>,
}

impl Claims {
    fn of(document: &Value) -> Self {
        let names = |value: &Value, default: &[&str]| -> Vec<String> {
            value.as_array().map_or_else(
                || default.iter().map(|s| s.to_string()).collect(),
                |list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                },
            )
        };
        let role_map = document["roles"]["map"]
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(role, scopes)| (role.clone(), names(scopes, &[])))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            scopes: names(&document["scopes"]["claims"], &DEFAULT_SCOPE_CLAIMS),
            roles: names(&document["roles"]["claims"], &["roles"]),
            role_map,
        }
    }
}

/// `any_of` of `all_of`s of single scopes, as RBAC principals.
fn requirement_principal(require: &Value, rules: &ScopeRules, claims: &Claims) -> Value {
    let alternatives: Vec<Vec<&str>> = match require {
        Value::String(scope) => vec![vec![scope.as_str()]],
        Value::Array(all) => vec![all.iter().filter_map(Value::as_str).collect()],
        Value::Object(object) if object.contains_key("all_of") => vec![object["all_of"]
            .as_array()
            .expect("all_of")
            .iter()
            .filter_map(Value::as_str)
            .collect()],
        Value::Object(object) => object["any_of"]
            .as_array()
            .expect("any_of")
            .iter()
            .map(|all| {
                all.as_array()
                    .expect("an any_of alternative")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect()
            })
            .collect(),
        other => panic!("unexpected requirement {other}"),
    };
    let mut any: Vec<Value> = alternatives
        .iter()
        .map(|all| {
            let mut ids: Vec<Value> = all
                .iter()
                .map(|scope| scope_principal(scope, rules, claims))
                .collect();
            if ids.len() == 1 {
                ids.remove(0)
            } else {
                json!({"and_ids": {"ids": ids}})
            }
        })
        .collect();
    if any.len() == 1 {
        any.remove(0)
    } else {
        json!({"or_ids": {"ids": any}})
    }
}

/// A principal that holds when the token grants a scope covering `required`.
fn scope_principal(required: &str, rules: &ScopeRules, claims: &Claims) -> Value {
    // `transaction-{id}`: coverage is computed on a marker, which then becomes a class of
    // ids. Envoy cannot bind it to the path's id, so any id passes.
    let (marked, bound) = match (required.find('{'), required.rfind('}')) {
        (Some(open), Some(close)) if open < close => (
            format!(
                "{}{PARAM_MARK}{}",
                &required[..open],
                &required[close + 1..]
            ),
            true,
        ),
        _ => (required.to_owned(), false),
    };
    let covering = covering_scopes(&marked, rules);
    let alternation = covering
        .iter()
        .map(|scope| {
            let escaped = regex_escape(scope);
            if bound {
                escaped.replace(PARAM_MARK, PARAM_CLASS)
            } else {
                escaped
            }
        })
        .collect::<Vec<_>>()
        .join("|");
    let mut ids = Vec::new();
    for claim in &claims.scopes {
        // A space-separated string (`scope`) ...
        ids.push(metadata(
            claim,
            json!({"string_match": {"safe_regex": {"regex": format!("(?:.* )?(?:{alternation})(?: .*)?")}}}),
        ));
        // ... or an array of strings (`scp`, `permissions`).
        ids.push(metadata(
            claim,
            json!({"list_match": {"one_of": {"string_match": {"safe_regex": {"regex": format!("(?:{alternation})")}}}}}),
        ));
    }
    let roles: Vec<String> = claims
        .role_map
        .iter()
        .filter(|(_, scopes)| scopes.iter().any(|s| rules.covers(s, &marked)))
        .map(|(role, _)| regex_escape(role))
        .collect();
    if !roles.is_empty() {
        let roles = format!("(?:{})", roles.join("|"));
        for claim in &claims.roles {
            ids.push(metadata(
                claim,
                json!({"string_match": {"safe_regex": {"regex": roles}}}),
            ));
            ids.push(metadata(
                claim,
                json!({"list_match": {"one_of": {"string_match": {"safe_regex": {"regex": roles}}}}}),
            ));
        }
    }
    json!({"or_ids": {"ids": ids}})
}

/// Every scope that covers `required` under `rules`: its ancestors across the separator,
/// each with and without the write suffix, kept where `ScopeRules::covers` agrees.
fn covering_scopes(required: &str, rules: &ScopeRules) -> Vec<String> {
    let suffix = rules.write_suffix().unwrap_or("");
    let base = required.strip_suffix(suffix).unwrap_or(required);
    let separator = rules.separator();
    let mut ancestors: Vec<&str> = base
        .match_indices(separator)
        .map(|(at, _)| &base[..at])
        .collect();
    ancestors.push(base);
    let mut covering = Vec::new();
    for ancestor in ancestors {
        for candidate in [ancestor.to_owned(), format!("{ancestor}{suffix}")] {
            if rules.covers(&candidate, required) && !covering.contains(&candidate) {
                covering.push(candidate);
            }
        }
    }
    covering
}

fn metadata(claim: &str, value: Value) -> Value {
    let mut path = vec![json!({"key": PAYLOAD_KEY})];
    match claim.strip_prefix('/') {
        // A JSON pointer: one key per step.
        Some(pointer) => path.extend(
            pointer
                .split('/')
                .map(|step| json!({"key": step.replace("~1", "/").replace("~0", "~")})),
        ),
        None => path.push(json!({"key": claim})),
    }
    json!({"metadata": {"filter": JWT_AUTHN, "path": path, "value": value}})
}

/// A route template as an RE2 regex over the normalized path (Envoy merges slashes and
/// resolves dot segments itself; scopegate also drops a trailing slash).
fn path_regex(template: &str) -> String {
    let (fixed, catch_all) = match template.strip_suffix("/**") {
        Some(fixed) => (fixed, true),
        None => (template, false),
    };
    let mut regex = String::new();
    for segment in fixed.split('/').filter(|s| !s.is_empty()) {
        regex.push('/');
        if segment.starts_with('{') && segment.ends_with('}') {
            regex.push_str("[^/]+");
        } else {
            regex.push_str(&regex_escape(segment));
        }
    }
    if catch_all {
        regex.push_str("(?:/.*)?");
    } else {
        regex.push_str("/?");
    }
    regex
}

/// Sort key of a template, smallest most specific: per segment a literal (0) before a
/// parameter (1), and a template that ends (0) before `**` (2) at the same place.
fn specificity(template: &str) -> Vec<u8> {
    let mut key: Vec<u8> = template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| match segment {
            "**" => 2,
            s if s.starts_with('{') => 1,
            _ => 0,
        })
        .collect();
    if key.last() != Some(&2) {
        key.push(0);
    }
    key
}

fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' && c != '-' && c != ':' && c != '/' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
