//! The `--json` rendering: the explanation's fields, named as in the text output.

use scopegate_core::explain::{Remedy, Required, RouteOutcome, ScopeOrigin, TokenReport};
use scopegate_core::Decision;
use serde_json::{json, Value};

use crate::keys::KeyOrigin;

use super::Report;

/// The explanation as one JSON object.
pub fn render(report: &Report<'_>) -> Value {
    let why = report.explanation;
    let decision = match &why.decision {
        Decision::Deny(denial) => json!({
            "code": why.decision.code(),
            "status": denial.status,
            "error": denial.error.map(|e| e.as_str()),
            "reason": denial.reason.to_string(),
            "required": denial.required,
            "missing": denial.missing,
            "www_authenticate": denial.www_authenticate,
        }),
        other => json!({ "code": other.code(), "status": other.status() }),
    };
    let routes: Vec<Value> = why
        .routes
        .iter()
        .map(|route| {
            let (outcome, more_specific) = match route.outcome {
                RouteOutcome::Chosen => ("chosen", None),
                RouteOutcome::MethodNotListed => ("method_not_listed", None),
                RouteOutcome::LessSpecificThan(chosen) => ("less_specific", Some(chosen)),
            };
            json!({
                "index": route.index,
                "path": route.path,
                "methods": route.methods,
                "outcome": outcome,
                "more_specific": more_specific,
            })
        })
        .collect();
    let required = why.required.as_ref().map(|required| match required {
        Required::Public => json!({"public": true}),
        Required::AnyOf(any_of) => json!({"any_of": any_of}),
        Required::Mcp(any_of) => json!({"mcp": true, "any_of": any_of}),
    });
    let keys = match report.keys {
        KeyOrigin::Policy => json!({"from": "policy"}),
        KeyOrigin::File(file) => json!({"from": "file", "file": file}),
        KeyOrigin::Fetched(uri) => json!({"from": "jwks_uri", "uri": uri}),
        KeyOrigin::None => Value::Null,
    };
    let answer = report.answer.map(|answer| {
        json!({
            "status": answer.status,
            "error": answer.param("error"),
            "scope": answer.param("scope"),
            "missing": answer.missing(),
        })
    });
    let remedies: Vec<Value> = why
        .remedies
        .iter()
        .chain(&report.answer_remedies)
        .map(remedy)
        .collect();
    json!({
        "method": report.method,
        "target": report.target,
        "decision": decision,
        "signature_checked": why.signature_checked,
        "keys": keys,
        "path": why.path.as_ref().ok(),
        "routes": routes,
        "required": required,
        "token": why.token.as_ref().map(token),
        "answer": answer,
        "remedies": remedies,
        "issuers": report.policy.issuers().iter().map(|i| i.issuer()).collect::<Vec<_>>(),
    })
}

fn token(token: &TokenReport) -> Value {
    let scopes: Vec<Value> = token
        .scopes
        .iter()
        .map(|source| match &source.origin {
            ScopeOrigin::Claim(claim) => json!({"scope": source.scope, "claim": claim}),
            ScopeOrigin::Role { claim, role } => {
                json!({"scope": source.scope, "claim": claim, "role": role})
            }
        })
        .collect();
    let values = |list: &[scopegate_core::explain::ClaimValue]| -> Vec<Value> {
        list.iter()
            .map(|v| json!({"claim": v.claim, "value": v.value}))
            .collect()
    };
    json!({
        "iss": token.issuer,
        "issuer_index": token.policy_issuer,
        "sub": token.subject,
        "aud": token.audiences,
        "alg": token.algorithm,
        "kid": token.key_id,
        "typ": token.token_type,
        "iat": token.issued_at,
        "nbf": token.not_before,
        "exp": token.expires,
        "auth_time": token.auth_time,
        "acr": token.acr,
        "error": token.error.as_ref().map(|e| json!({"code": e.code(), "message": e.to_string()})),
        "fault": token.fault.as_ref().map(|f| json!({"name": f.name, "got": f.got, "wanted": f.wanted})),
        "scopes": scopes,
        "unmapped_roles": values(&token.unmapped_roles),
        "unread_claims": values(&token.unread),
    })
}

fn remedy(remedy: &Remedy) -> Value {
    let mut value = json!({"code": remedy.code(), "text": remedy.to_string()});
    let extra = match remedy {
        Remedy::AssignRole { scope, roles } => json!({"scope": scope, "roles": roles}),
        Remedy::NoRoleGrants { scope } => json!({"scope": scope}),
        Remedy::ReadClaim { claim, values } => json!({"claim": claim, "values": values}),
        Remedy::MapRole { claim, role } => json!({"claim": claim, "role": role}),
        Remedy::RequestScopes(next) => json!({"scope": next.scope, "add": next.add}),
        Remedy::IssuedBeforePolicy {
            issued_at,
            policy_changed_at,
        } => {
            json!({"iat": issued_at, "policy_changed_at": policy_changed_at})
        }
        Remedy::Reauthenticate {
            max_age,
            acr_values,
        } => {
            json!({"max_age": max_age, "acr_values": acr_values})
        }
        _ => json!({}),
    };
    if let (Value::Object(map), Value::Object(extra)) = (&mut value, extra) {
        map.extend(extra);
    }
    value
}
