//! The one serialisable form of a decision: what the browser package's `check` returns,
//! what the CLI prints, and what the shared vectors (`tests/vectors/checks.json`) hold.

use alloc::vec::Vec;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{Decision, DenyReason};
use crate::policy::Policy;

/// A decision as data, with camelCase field names:
/// `{allowed, status, code, error, required, missing, challenge, maxAge, body, tokenError,
/// route, allowedOrigin, headers}`. `status` is `null` for a pass; `error` is the challenge's
/// `error`, `unauthorized` when the request had no token; `route` is the matched route's
/// path template; `headers` the forwarded claims of a pass.
///
/// ```
/// use scopegate_core::{KeyStore, Policy, Request, UnixTime};
/// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///   "routes": [{"path": "/orders", "methods": ["POST"], "require": "order.write"}]}"#)?;
/// let decision = policy.decide(&Request::new("POST", "/orders"), &KeyStore::default(), UnixTime(0));
/// let answer = decision.answer(&policy);
/// assert_eq!((answer.allowed, answer.status, answer.error), (false, Some(401), Some("unauthorized")));
/// assert_eq!(answer.challenge, Some(r#"Bearer realm="api""#));
/// assert_eq!(
///     answer.to_json(),
///     r#"{"allowed":false,"status":401,"code":"deny_no_token","error":"unauthorized","required":[],"missing":[],"challenge":"Bearer realm=\"api\"","maxAge":null,"body":"{\"error\":\"unauthorized\"}","tokenError":null,"route":"/orders","allowedOrigin":null,"headers":{}}"#
/// );
/// # Ok::<(), scopegate_core::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer<'d> {
    /// The request goes to the upstream (or is served the metadata document).
    pub allowed: bool,
    /// The status the client sees; `None` for a pass.
    pub status: Option<u16>,
    /// [`Decision::code`].
    pub code: &'static str,
    /// The challenge's `error`, or `unauthorized` for a request without a token.
    pub error: Option<&'static str>,
    /// Every scope of the requirement alternative a 403 chose: what the challenge's `scope`
    /// says the request needs.
    pub required: &'d [alloc::string::String],
    /// The missing scopes of a 403.
    pub missing: &'d [alloc::string::String],
    /// The `WWW-Authenticate` value.
    pub challenge: Option<&'d str>,
    /// The `max_age` of a step-up.
    pub max_age: Option<u64>,
    /// The `acr_values` of a step-up (one of them is needed); absent when none.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub acr_values: &'d [alloc::string::String],
    /// The response body (a denial's JSON, or the metadata document).
    pub body: Option<&'d str>,
    /// [`TokenError::code`](crate::TokenError::code) of an invalid token.
    pub token_error: Option<&'static str>,
    /// The matched route's path template.
    pub route: Option<&'d str>,
    /// The origin allowed to read the denial (CORS).
    pub allowed_origin: Option<&'d str>,
    /// Forwarded claim headers of a pass, by name.
    #[serde(serialize_with = "header_map")]
    pub headers: Vec<(&'d str, &'d str)>,
}

fn header_map<S: Serializer>(headers: &[(&str, &str)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(headers.len()))?;
    for (name, value) in headers {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

impl Answer<'_> {
    /// The answer as compact JSON.
    pub fn to_json(&self) -> alloc::string::String {
        // Only strings, numbers and booleans: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl<'p> Decision<'p> {
    /// The decision as data, for clients and tools; `policy` is the one that decided.
    pub fn answer<'d>(&'d self, policy: &'d Policy) -> Answer<'d> {
        let route = |index: Option<usize>| index.and_then(|i| policy.route_path(i));
        let code = self.code();
        match self {
            Decision::Allow(allow) => Answer {
                allowed: true,
                status: None,
                code,
                error: None,
                required: &[],
                missing: &[],
                challenge: None,
                max_age: None,
                acr_values: &[],
                body: None,
                token_error: None,
                route: route(allow.route),
                allowed_origin: None,
                headers: allow
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect(),
            },
            // Not decided yet: the token is valid, the body decides.
            Decision::NeedBody(need) => Answer {
                allowed: false,
                status: None,
                code,
                error: None,
                required: &[],
                missing: &[],
                challenge: None,
                max_age: None,
                acr_values: &[],
                body: None,
                token_error: None,
                route: route(Some(need.route)),
                allowed_origin: None,
                headers: Vec::new(),
            },
            Decision::Serve(served) => Answer {
                allowed: true,
                status: Some(200),
                code,
                error: None,
                required: &[],
                missing: &[],
                challenge: None,
                max_age: None,
                acr_values: &[],
                body: Some(served.body),
                token_error: None,
                route: None,
                allowed_origin: None,
                headers: Vec::new(),
            },
            Decision::Deny(denial) => Answer {
                allowed: false,
                status: Some(denial.status),
                code,
                error: Some(denial.error.map_or("unauthorized", |e| e.as_str())),
                required: &denial.required,
                missing: &denial.missing,
                challenge: Some(&denial.www_authenticate),
                max_age: denial.max_age,
                acr_values: &denial.acr_values,
                body: Some(&denial.body),
                token_error: match &denial.reason {
                    DenyReason::InvalidToken(err) => Some(err.code()),
                    _ => None,
                },
                route: route(denial.route),
                allowed_origin: denial.allowed_origin.as_deref(),
                headers: Vec::new(),
            },
        }
    }
}
