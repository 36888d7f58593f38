//! The inverse of a denial: from what a client sees of a gateway's answer (its status, its
//! `WWW-Authenticate` header, its JSON body) back to what was refused and which scopes to
//! ask for. The browser package turns a server's 403 into the same typed error as its own
//! pre-check through this, so the rule lives here once.
//!
//! The header is read first (RFC 6750 §3); when a cross-origin response hides it (no
//! `Access-Control-Expose-Headers`), the gateway's JSON body says the same.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use serde_json::Value;

use crate::challenge::parse_challenges;
use crate::decision::ErrorCode;
use crate::scope::split_scopes;

/// What a denial says, read back from the response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadDenial {
    /// The HTTP status.
    pub status: u16,
    /// The challenge's `error`, `unauthorized` for a 401 without one.
    pub error: String,
    /// For a 403 `insufficient_scope`, the scopes its `scope` names: what the request
    /// needs (possibly none: a route the policy does not configure); `None` for every other
    /// denial.
    pub insufficient_scope: Option<Vec<String>>,
    /// Which of them are missing, when the gateway's JSON body says so.
    pub missing: Option<Vec<String>>,
    /// The `max_age` of an RFC 9470 step-up.
    pub max_age: Option<u64>,
    /// The `acr_values` of an RFC 9470 step-up: the authentication context classes to ask
    /// the authorization server for, one of them.
    pub acr_values: Option<Vec<String>>,
    /// Where it was read: `header` or `body`.
    pub source: &'static str,
}

/// Reads a gateway's denial from a response; `None` when it is not one (a 2xx, another
/// scheme's challenge, a body that is not the gateway's JSON).
///
/// ```
/// use scopegate_core::read_denial;
/// let header = r#"Bearer realm="api", error="insufficient_scope", scope="resource:write""#;
/// let denial = read_denial(403, Some(header), None).unwrap();
/// assert_eq!(denial.insufficient_scope, Some(vec!["resource:write".to_owned()]));
///
/// // CORS hid the header: the body says the same, and which of them are missing.
/// let body = r#"{"error":"insufficient_scope","scope":"a b","missing":"b"}"#;
/// let denial = read_denial(403, None, Some(body)).unwrap();
/// assert_eq!((denial.insufficient_scope.unwrap().len(), denial.source), (2, "body"));
/// assert_eq!(denial.missing, Some(vec!["b".to_owned()]));
///
/// let denial = read_denial(401, Some(r#"Bearer realm="api""#), None).unwrap();
/// assert_eq!((denial.error.as_str(), denial.insufficient_scope), ("unauthorized", None));
/// assert_eq!(read_denial(200, None, Some("{}")), None);
/// ```
pub fn read_denial(
    status: u16,
    www_authenticate: Option<&str>,
    body: Option<&str>,
) -> Option<ReadDenial> {
    if !is_denial_status(status) {
        return None;
    }
    let from_header = www_authenticate.and_then(|header| {
        let challenges = parse_challenges(header).ok()?;
        // A gateway that takes DPoP tokens answers a DPoP request with a DPoP challenge.
        let bearer = challenges.into_iter().find(|c| {
            c.scheme.eq_ignore_ascii_case("bearer") || c.scheme.eq_ignore_ascii_case("dpop")
        })?;
        let param = |name: &str| {
            bearer
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        Some(Fields {
            error: param("error"),
            scope: param("scope"),
            missing: None,
            max_age: param("max_age").and_then(|age| age.parse().ok()),
            acr_values: param("acr_values"),
            source: "header",
        })
    });
    let fields = from_header.or_else(|| {
        // from_slice, not from_str: the token decoder's instantiation, one less linked.
        let value: Value = serde_json::from_slice(body?.as_bytes()).ok()?;
        let text = |name: &str| value.get(name)?.as_str().map(String::from);
        Some(Fields {
            error: Some(text("error")?),
            scope: text("scope"),
            missing: text("missing"),
            max_age: value.get("max_age").and_then(Value::as_u64),
            acr_values: text("acr_values"),
            source: "body",
        })
    })?;
    let error = fields.error.unwrap_or_else(|| String::from("unauthorized"));
    // Split as every scope list written as text is (`split_scopes`).
    let list = |text: Option<String>| -> Vec<String> {
        split_scopes(&text.unwrap_or_default())
            .map(String::from)
            .collect()
    };
    let insufficient = status == 403 && error == ErrorCode::InsufficientScope.as_str();
    // The header lacks `missing`; the body, when CORS lets it be read, has it too.
    let missing = fields.missing.or_else(|| {
        let value: Value = serde_json::from_slice(body?.as_bytes()).ok()?;
        value.get("missing")?.as_str().map(String::from)
    });
    Some(ReadDenial {
        status,
        insufficient_scope: insufficient.then(|| list(fields.scope)),
        missing: (insufficient && missing.is_some()).then(|| list(missing)),
        error,
        max_age: fields.max_age,
        acr_values: fields.acr_values.map(|text| list(Some(text))),
        source: fields.source,
    })
}

/// The statuses a denial is read from: 4xx.
pub(crate) fn is_denial_status(status: u16) -> bool {
    (400..500).contains(&status)
}

struct Fields {
    error: Option<String>,
    scope: Option<String>,
    missing: Option<String>,
    max_age: Option<u64>,
    acr_values: Option<String>,
    source: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyStore, Policy, Request, UnixTime};

    /// Every denial the core makes reads back to what it said.
    #[test]
    fn a_denial_reads_back_from_its_header_and_from_its_body() {
        let policy = Policy::from_json(
            r#"{"version": 1, "realm": "api",
              "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["HS256"],
                "hmac_secret": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}],
              "routes": [{"path": "/a", "require": "a"}]}"#,
        )
        .unwrap();
        for request in [Request::new("GET", "/a"), Request::new("GET", "/nowhere")] {
            let decision = policy.decide(&request, &KeyStore::default(), UnixTime(0));
            let crate::decision::Decision::Deny(denial) = decision else {
                panic!("denied")
            };
            let by_header = read_denial(denial.status, Some(&denial.www_authenticate), None);
            let by_body = read_denial(denial.status, None, Some(&denial.body)).unwrap();
            let by_header = by_header.unwrap();
            assert_eq!(by_header.error, by_body.error);
            assert_eq!(by_header.insufficient_scope, by_body.insufficient_scope);
            let needed = (denial.status == 403).then(|| denial.required.clone());
            assert_eq!(by_body.insufficient_scope, needed);
            assert_eq!(
                by_header.error,
                denial.error.map_or("unauthorized", |e| e.as_str())
            );
        }
    }

    #[test]
    fn what_is_not_a_gateway_denial_is_none() {
        assert_eq!(read_denial(403, Some("Basic realm=\"x\""), None), None);
        assert_eq!(read_denial(403, None, Some("<html>")), None);
        assert_eq!(read_denial(403, None, Some(r#"{"message":"no"}"#)), None);
        assert_eq!(read_denial(500, Some("Bearer error=\"x\""), None), None);
        // A 401 insufficient_scope is not a scope problem the client can fix by asking.
        let denial = read_denial(401, Some(r#"Bearer error="insufficient_scope""#), None);
        assert_eq!(denial.unwrap().insufficient_scope, None);
        // An unreadable header falls back to the body.
        let denial = read_denial(
            403,
            Some("Bearer error=\"unterminated"),
            Some(r#"{"error":"insufficient_scope","scope":"x"}"#),
        );
        assert_eq!(denial.unwrap().source, "body");
    }
}
