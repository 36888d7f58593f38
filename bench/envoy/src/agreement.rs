//! The cases on which jwt_authn + rbac and the filter must answer alike before anything is
//! measured (and where they may differ: what Envoy cannot express).

use std::fmt::Write as _;

use scopegate_tests::harness::{request, Envoy};
use scopegate_tests::{unix_now, TestKeys};
use serde_json::{json, Value};

use crate::token;

/// A request on which the native setup and the filter are compared before measuring.
pub(crate) struct Case {
    pub(crate) what: &'static str,
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    /// The token's claims besides iss, aud, sub, iat, exp; `None` for no token.
    pub(crate) claims: Option<Value>,
    pub(crate) scopegate: u16,
    pub(crate) native: u16,
}

/// The policy's rules that the native setup reproduces, and two that it cannot.
pub(crate) fn agreement_cases() -> Vec<Case> {
    let case = |what, method, path, claims: Option<Value>, scopegate, native| Case {
        what,
        method,
        path,
        claims,
        scopegate,
        native,
    };
    let scope = |scope: &str| Some(json!({ "scope": scope }));
    vec![
        case(
            "a parent scope covers its children",
            "GET",
            "/api/resources",
            scope("resource"),
            200,
            200,
        ),
        case(
            "`.write` covers read",
            "GET",
            "/api/resources",
            scope("resource.write"),
            200,
            200,
        ),
        case(
            "`resources` is not `resource`",
            "GET",
            "/api/resources",
            scope("resources"),
            403,
            403,
        ),
        case(
            "a role mapped to a scope",
            "POST",
            "/api/resources",
            Some(json!({"roles": ["resource-admin"]})),
            200,
            200,
        ),
        case(
            "a namespaced role claim",
            "PUT",
            "/api/inventory/sku-1/price",
            Some(json!({"https://scopegate.test/roles": ["inventory-manager"]})),
            200,
            200,
        ),
        case(
            "`scp` as an array",
            "GET",
            "/api/resources/9",
            Some(json!({"scp": ["resource:read"]})),
            200,
            200,
        ),
        case(
            "`permissions`",
            "DELETE",
            "/api/resources/9",
            Some(json!({"permissions": ["resource:write"]})),
            200,
            200,
        ),
        case(
            "`inventory:price.write` is not `inventory.write`",
            "PUT",
            "/api/inventory/sku-1",
            scope("inventory:price.write"),
            403,
            403,
        ),
        case(
            "any_of, second alternative",
            "GET",
            "/api/orders/7/shipping",
            scope("order:shipping"),
            200,
            200,
        ),
        case(
            "any_of, half of the first",
            "GET",
            "/api/orders/7/shipping",
            scope("order:shipping:status"),
            403,
            403,
        ),
        case(
            "the most specific route wins",
            "GET",
            "/api/orders/7/items",
            scope("order:item"),
            200,
            200,
        ),
        case(
            "a public route without a token",
            "GET",
            "/api/public/docs",
            None,
            200,
            200,
        ),
        case("no token", "GET", "/api/resources", None, 401, 401),
        case(
            "an unmatched route",
            "GET",
            "/api/else",
            scope("resource"),
            403,
            403,
        ),
        case(
            "a prefix scope of another id (native: any id)",
            "GET",
            "/api/transactions/124",
            scope("transaction-123"),
            403,
            200,
        ),
        case(
            "`max_age` step-up (native: none)",
            "POST",
            "/api/payments",
            Some(json!({"scope": "payment.write resource:read", "auth_time": unix_now() - 3600})),
            401,
            200,
        ),
    ]
}

/// Sends every agreement case to the native setup and to the filter; an answer other than
/// the expected one stops the benchmark. Returns the markdown table of the answers.
pub(crate) fn agreement(
    policy: &Value,
    keys: &TestKeys,
    native: &Envoy,
    filter: &Envoy,
) -> Result<String, String> {
    let mut table = String::from(
        "| request | token claims | scopegate | jwt_authn + rbac |\n| --- | --- | ---: | ---: |\n",
    );
    for case in agreement_cases() {
        let header = case
            .claims
            .as_ref()
            .map(|claims| format!("Bearer {}", token(keys, policy, "ES256", claims)));
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("authorization", h)])
            .unwrap_or_default();
        let mut answers = Vec::new();
        for (envoy, expected) in [(filter, case.scopegate), (native, case.native)] {
            let status = request(envoy.port, case.method, case.path, &headers)
                .map_err(|e| format!("{}: {e}", case.what))?
                .status;
            if status != expected {
                return Err(format!(
                    "{}: {} {} answered {status}, expected {expected}\n{}",
                    case.what,
                    case.method,
                    case.path,
                    envoy.log()
                ));
            }
            answers.push(status);
        }
        let claims = case
            .claims
            .map_or_else(|| "no token".to_owned(), |c| format!("`{c}`"));
        let _ = writeln!(
            table,
            "| {}: `{} {}` | {claims} | {} | {} |",
            case.what, case.method, case.path, answers[0], answers[1]
        );
    }
    Ok(table)
}
