//! What a client of the gateway does with its answers: the rules the browser package and the
//! CLI used to keep for themselves, kept here once so that every host agrees.
//!
//! - [`split_scopes`]: how a list of scopes (or of `acr` values) written as text is split.
//! - [`is_valid_acr`]: what an authentication context class reference may contain;
//!   [`is_s256_challenge`]: what a PKCE S256 code challenge looks like.
//! - [`issued_here`], [`held_scopes`], [`held_at`]: which scopes a client holds at a resource.
//! - [`widen`]: the authorization request that keeps what is held (and asks for consent with
//!   `offline_access`).
//! - [`authorization_params`]: what an authorization request may carry, and its query
//!   parameters in order.
//! - [`authorization_header`]: the `Authorization` header a client sends with a token.
//! - [`call_access`]: whether a JSON-RPC call is allowed, and which denials a scope request
//!   fixes.
//! - [`wants_denial_body`], [`fix_of`], [`needed`]: whether to read a response's body for
//!   its denial, and what a client does about a denial it read back from a response.
//! - [`issuer_of`]: the policy's issuer a token names.
//!
//! The shared vectors `tests/vectors/client.json` run every rule here from Rust and, through
//! the npm package's public API, from JS.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use crate::decision::{Decision, DenyReason, ErrorCode};
use crate::denial::{is_denial_status, ReadDenial};
use crate::policy::Policy;
use crate::request::Request;
use crate::scope::{is_valid_scope, ScopeError, ScopeRequest, ScopeRules};
use crate::time::UnixTime;
use crate::token::{decode, scopes_of, TokenError};

pub use crate::acr::is_valid_acr;
pub use authorize::{authorization_params, AuthorizationRequest, AuthorizationRequestError};

mod authorize;

pub use crate::scope::split_scopes;

/// Is `value` an S256 PKCE code challenge (RFC 7636 §4.2): the base64url encoding, without
/// padding, of a SHA-256 digest, so 43 characters of `A-Z a-z 0-9 - _`?
///
/// ```
/// use scopegate_core::client::is_s256_challenge;
/// assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
/// assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="));
/// assert!(!is_s256_challenge("plain-verifier"));
/// ```
pub fn is_s256_challenge(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `Authorization` header a client sends with the access token `access`: `Bearer`
/// and the token; none without a token, and none for an empty one (an empty token is no
/// token, as everywhere here).
///
/// ```
/// use scopegate_core::client::authorization_header;
/// assert_eq!(authorization_header(Some("abc")).as_deref(), Some("Bearer abc"));
/// assert_eq!(authorization_header(Some("")), None);
/// assert_eq!(authorization_header(None), None);
/// ```
pub fn authorization_header(access: Option<&str>) -> Option<String> {
    access
        .filter(|access| !access.is_empty())
        .map(|access| format!("Bearer {access}"))
}

/// Is the token refused only for its age (`exp`, `nbf`, `iat`)? Such a token was still
/// issued for this resource, and its scopes are still what the client holds there.
///
/// ```
/// use scopegate_core::client::is_about_age;
/// use scopegate_core::TokenError;
/// assert!(is_about_age(&TokenError::Expired { exp: 1, now: 2 }));
/// assert!(!is_about_age(&TokenError::WrongAudience));
/// ```
pub fn is_about_age(err: &TokenError) -> bool {
    matches!(
        err,
        TokenError::Expired { .. }
            | TokenError::NotYetValid { .. }
            | TokenError::IssuedInFuture { .. }
    )
}

/// Was the token of this decision issued for the resource that decided? Every decision says
/// yes except a refusal of the token for anything but its age (another audience, another
/// issuer, not a JWT): such a token holds nothing there.
///
/// ```
/// use scopegate_core::client::issued_here;
/// use scopegate_core::{KeyStore, Policy, Request, UnixTime};
/// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///   "routes": [{"path": "/a", "require": "a"}]}"#)?;
/// let bearer = ["Bearer not-a-jwt"];
/// let request = Request::new("GET", "/a").with_authorization(&bearer);
/// assert!(!issued_here(&policy.precheck(&request, UnixTime(0))));
/// assert!(issued_here(&policy.precheck(&Request::new("GET", "/a"), UnixTime(0))));
/// # Ok::<(), scopegate_core::PolicyError>(())
/// ```
pub fn issued_here(decision: &Decision<'_>) -> bool {
    match decision {
        Decision::Deny(denial) => match &denial.reason {
            DenyReason::InvalidToken(err) => is_about_age(err),
            _ => true,
        },
        _ => true,
    }
}

/// The scopes a client holds: those its token response granted (`scope`), then those of its
/// access token as `policy` reads them (its default scope claims without one), each once.
/// An opaque or unreadable access token adds nothing; an empty one is none. Scopes that are
/// not valid scope tokens cannot be asked for and are left out.
///
/// ```
/// use scopegate_core::client::held_scopes;
/// // {"scope":"b c"}
/// let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzY29wZSI6ImIgYyJ9.c2ln";
/// assert_eq!(held_scopes(None, &["a", "b", "x\"y"], Some(jwt)), ["a", "b", "c"]);
/// assert_eq!(held_scopes(None, &["a"], Some("opaque")), ["a"]);
/// ```
pub fn held_scopes(policy: Option<&Policy>, granted: &[&str], access: Option<&str>) -> Vec<String> {
    let from_token = access
        .filter(|access| !access.is_empty())
        .and_then(|access| scopes_of(access, policy).ok());
    let mut held: Vec<String> = Vec::new();
    let token_scopes = from_token.iter().flat_map(|set| set.iter());
    for scope in granted.iter().copied().chain(token_scopes) {
        if is_valid_scope(scope) && !held.iter().any(|h| h == scope) {
            held.push(String::from(scope));
        }
    }
    held
}

/// The scopes a client holds at the resource `policy` guards, for a request to `target`: none
/// when the gateway there refuses the access token as not issued for it ([`issued_here`],
/// asked with a `GET`), else [`held_scopes`].
///
/// ```
/// use scopegate_core::client::held_at;
/// use scopegate_core::{Policy, UnixTime};
/// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///   "routes": [{"path": "/a", "require": "a"}]}"#)?;
/// assert_eq!(held_at(&policy, "/a", &["a"], None, UnixTime(0)), ["a"]);
/// assert!(held_at(&policy, "/a", &["a"], Some("not-a-jwt"), UnixTime(0)).is_empty());
/// # Ok::<(), scopegate_core::PolicyError>(())
/// ```
pub fn held_at(
    policy: &Policy,
    target: &str,
    granted: &[&str],
    access: Option<&str>,
    now: UnixTime,
) -> Vec<String> {
    if let Some(bearer) = authorization_header(access) {
        let authorization = [bearer.as_str()];
        let request = Request::new("GET", target).with_authorization(&authorization);
        if !issued_here(&policy.precheck(&request, now)) {
            return Vec::new();
        }
    }
    held_scopes(Some(policy), granted, access)
}

/// The authorization request that keeps what is held: its `scope` parameter, and its
/// `prompt` parameter when that changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Widened {
    /// The whole `scope` parameter: held plus requested, minimised.
    pub scope: String,
    /// The `prompt` parameter to set, `None` to leave it as it is: with `offline_access` in
    /// `scope`, the request's `prompt` values and `consent` ([`widen`] says when and why).
    pub prompt: Option<String>,
}

/// Widens a requested scope list to one that keeps what is held; `None` when nothing is
/// requested and nothing is held (the request stays as it is). `prompt` is the request's
/// `prompt` parameter, if it has one.
///
/// A `scope` with `offline_access` asks for consent, as the MCP SDKs do and as OpenID Connect
/// Core §11 requires ("a prompt parameter value of consent MUST be used"): `consent` joins
/// the request's `prompt` values, a space-separated list (Core §3.1.2.1), in one parameter
/// (a second `prompt` parameter would make the request invalid, RFC 6749 §3.1). Nothing
/// changes when the list has `consent` already, or has `none`: `none` asks for no page at
/// all and may not be combined with another value, so the caller's silent request stays
/// silent, and the authorization server answers it with `consent_required` or without a
/// refresh token, which that caller handles, instead of `invalid_request`.
///
/// ```
/// use scopegate_core::client::widen;
/// use scopegate_core::ScopeRules;
/// let rules = ScopeRules::default();
/// let widened = widen(&rules, &["offline_access", "a:b"], &["a"], None)?.unwrap();
/// assert_eq!((widened.scope.as_str(), widened.prompt.as_deref()), ("offline_access a", Some("consent")));
/// let widened = widen(&rules, &["offline_access"], &["a"], Some("login"))?.unwrap();
/// assert_eq!(widened.prompt.as_deref(), Some("login consent"));
/// assert_eq!(widen(&rules, &["offline_access"], &["a"], Some("none"))?.unwrap().prompt, None);
/// assert_eq!(widen(&rules, &["a"], &["b"], None)?.unwrap().prompt, None);
/// assert_eq!(widen(&rules, &[], &[], None)?, None);
/// # Ok::<(), scopegate_core::ScopeError>(())
/// ```
pub fn widen(
    rules: &ScopeRules,
    held: &[&str],
    requested: &[&str],
    prompt: Option<&str>,
) -> Result<Option<Widened>, ScopeError> {
    if held.is_empty() && requested.is_empty() {
        return Ok(None);
    }
    let scope = rules.next_request(held, requested)?.scope;
    let values = prompt.unwrap_or_default();
    let consent = split_scopes(&scope).any(|s| s == "offline_access")
        && !split_scopes(values).any(|v| v == "consent" || v == "none");
    let prompt = consent.then(|| {
        let mut list = String::new();
        for value in split_scopes(values) {
            list.push_str(value);
            list.push(' ');
        }
        list.push_str("consent");
        list
    });
    Ok(Some(Widened { scope, prompt }))
}

/// Does [`crate::denial::read_denial`] want a response's body: a denial's status (4xx), and
/// a `Content-Type` that is JSON (`application/json` or a `+json` type; case and parameters
/// aside)? A client reads the body only then: the gateway's JSON body says what CORS may hide
/// of the header, and any other body (an HTML error page, a stream) is not read for nothing.
///
/// ```
/// use scopegate_core::client::wants_denial_body;
/// assert!(wants_denial_body(403, Some("application/json")));
/// assert!(wants_denial_body(401, Some("Application/JSON; charset=utf-8")));
/// assert!(wants_denial_body(403, Some("application/problem+json")));
/// assert!(!wants_denial_body(403, Some("text/html")));
/// assert!(!wants_denial_body(403, None));
/// assert!(!wants_denial_body(200, Some("application/json")));
/// ```
pub fn wants_denial_body(status: u16, content_type: Option<&str>) -> bool {
    let value = content_type.unwrap_or_default().as_bytes();
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let json = essence.eq_ignore_ascii_case(b"application/json")
        || essence.len() > 6 && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json");
    is_denial_status(status) && json
}

/// What a client does about a denial read back from a response ([`crate::denial::read_denial`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Ask for more scopes: a 403 `insufficient_scope`.
    Scopes,
    /// Sign in again (RFC 9470 step-up): `insufficient_user_authentication`.
    SignIn,
    /// Nothing the client can ask for.
    None,
}

impl Fix {
    /// A stable name: `scopes`, `sign_in`, `none`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scopes => "scopes",
            Self::SignIn => "sign_in",
            Self::None => "none",
        }
    }
}

/// What a client does about `denial`.
///
/// ```
/// use scopegate_core::client::{fix_of, Fix};
/// use scopegate_core::read_denial;
/// let header = r#"Bearer error="insufficient_scope", scope="a""#;
/// assert_eq!(fix_of(&read_denial(403, Some(header), None).unwrap()), Fix::Scopes);
/// let header = r#"Bearer error="insufficient_user_authentication", max_age="60""#;
/// assert_eq!(fix_of(&read_denial(401, Some(header), None).unwrap()), Fix::SignIn);
/// let header = r#"Bearer error="invalid_token""#;
/// assert_eq!(fix_of(&read_denial(401, Some(header), None).unwrap()), Fix::None);
/// ```
pub fn fix_of(denial: &ReadDenial) -> Fix {
    if denial.insufficient_scope.is_some() {
        Fix::Scopes
    } else if denial.error == ErrorCode::InsufficientUserAuthentication.as_str() {
        Fix::SignIn
    } else {
        Fix::None
    }
}

/// What a 403 `insufficient_scope` asks of a client: the scope request that fixes it and the
/// scopes missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needed {
    /// The next authorization request; `None` when the denial names no scope (a route the
    /// policy does not configure: no scope request fixes it).
    pub request: Option<ScopeRequest>,
    /// The scopes missing: those the denial says (the pre-check, or the gateway's JSON body),
    /// else those the request adds.
    pub missing: Vec<String>,
}

/// What a 403 `insufficient_scope` whose challenge names `required` asks of a client holding
/// `held`; `missing` is what the denial says is missing, when it says.
///
/// ```
/// use scopegate_core::client::needed;
/// use scopegate_core::ScopeRules;
/// let rules = ScopeRules::default();
/// let fix = needed(&rules, &["a", "b:c"], &["a", "b"], None)?;
/// assert_eq!((fix.request.unwrap().scope, fix.missing), ("a b".to_owned(), vec!["b".to_owned()]));
/// assert_eq!(needed(&rules, &["a"], &[], None)?.request, None);
/// # Ok::<(), scopegate_core::ScopeError>(())
/// ```
pub fn needed(
    rules: &ScopeRules,
    held: &[&str],
    required: &[&str],
    missing: Option<&[&str]>,
) -> Result<Needed, ScopeError> {
    let request = if required.is_empty() {
        None
    } else {
        Some(rules.next_request(held, required)?)
    };
    let missing = match (missing, &request) {
        (Some(missing), _) => missing.iter().copied().map(String::from).collect(),
        (None, Some(request)) => request.add.clone(),
        (None, None) => Vec::new(),
    };
    Ok(Needed { request, missing })
}

/// One JSON-RPC call's access, as the browser package's `mcpScopeRequest` answers it:
/// `{allowed, required, missing, scope, reason?, tokenError?, maxAge?, acrValues?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallAccess {
    /// The gateway lets the call through.
    pub allowed: bool,
    /// Every scope of the requirement the refusal chose.
    pub required: Vec<String>,
    /// Those the token lacks.
    pub missing: Vec<String>,
    /// The whole `scope` parameter to ask for (held plus needed, minimised), when a scope
    /// request fixes the refusal.
    pub scope: Option<String>,
    /// When no scope request helps: the decision's code (no token, a refused token, a
    /// step-up, an unconfigured route, a malformed call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The token error of a refused token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_error: Option<&'static str>,
    /// The `max_age` of a step-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// The `acr_values` of a step-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<Vec<String>>,
}

/// One JSON-RPC call (`method`, with `params` `name` and `uri` when given) POSTed to the MCP
/// endpoint `target` with the access token `access`, decided as the gateway would (its
/// signature taken as valid); when refused, whether a scope request fixes it and which.
/// Only a 403 `insufficient_scope` naming scopes does; the scopes held are [`held_scopes`].
///
/// ```
/// use scopegate_core::client::call_access;
/// use scopegate_core::{Policy, UnixTime};
/// let policy = Policy::from_json(r#"{"version": 1, "realm": "mcp",
///   "issuers": [{"issuer": "https://idp", "audiences": ["mcp"], "algorithms": ["ES256"],
///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///   "routes": [{"path": "/mcp", "mcp": {"rules": [{"method": "tools/call", "require": "tools"}]}}]}"#)?;
/// // {"iss":"https://idp","aud":"mcp","exp":2000000000,"scope":"openid"}
/// let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsImF1ZCI6Im1jcCIsImV4cCI6MjAwMDAwMDAwMCwic2NvcGUiOiJvcGVuaWQifQ.c2ln";
/// let access = call_access(&policy, "/mcp", &[], Some(jwt), "tools/call", Some("t"), None, UnixTime(0))
///     .unwrap();
/// assert_eq!((access.allowed, access.scope.as_deref()), (false, Some("openid tools")));
/// let access = call_access(&policy, "/mcp", &[], None, "tools/call", Some("t"), None, UnixTime(0))
///     .unwrap();
/// assert_eq!((access.scope, access.reason), (None, Some("deny_no_token")));
/// # Ok::<(), scopegate_core::PolicyError>(())
/// ```
// The call's parts, positionally, as the browser package passes them.
#[allow(clippy::too_many_arguments)]
pub fn call_access(
    policy: &Policy,
    target: &str,
    granted: &[&str],
    access: Option<&str>,
    method: &str,
    name: Option<&str>,
    uri: Option<&str>,
    now: UnixTime,
) -> Result<CallAccess, ScopeError> {
    // The request body as a JSON-RPC client sends it; strings escaped by serde_json.
    let text = |value: &str| serde_json::to_string(value).unwrap_or_default();
    let mut params = Vec::new();
    if let Some(name) = name {
        params.push(format!(r#""name":{}"#, text(name)));
    }
    if let Some(uri) = uri {
        params.push(format!(r#""uri":{}"#, text(uri)));
    }
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":{},"params":{{{}}}}}"#,
        text(method),
        params.join(",")
    );
    let bearer = authorization_header(access);
    let authorization: Vec<&str> = bearer.iter().map(String::as_str).collect();
    let mut request = Request::new("POST", target).with_authorization(&authorization);
    request.body = Some(body.as_bytes());
    let decision = policy.precheck(&request, now);
    let answer = decision.answer(policy);
    let mut result = CallAccess {
        allowed: answer.allowed,
        required: answer.required.to_vec(),
        missing: answer.missing.to_vec(),
        scope: None,
        reason: None,
        token_error: None,
        max_age: None,
        acr_values: None,
    };
    if answer.allowed {
        return Ok(result);
    }
    let fixable = matches!(&decision, Decision::Deny(denial)
        if matches!(denial.reason, DenyReason::InsufficientScope) && !denial.required.is_empty());
    if fixable {
        let held = held_scopes(Some(policy), granted, access);
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        let required: Vec<&str> = answer.required.iter().map(String::as_str).collect();
        result.scope = Some(policy.scope_rules().next_request(&held, &required)?.scope);
        return Ok(result);
    }
    result.reason = Some(answer.code);
    result.token_error = answer.token_error;
    result.max_age = answer.max_age;
    if !answer.acr_values.is_empty() {
        result.acr_values = Some(answer.acr_values.to_vec());
    }
    Ok(result)
}

/// The position in the policy's `issuers` of the issuer `token` names in its `iss`, if any
/// (the token is decoded, not verified).
///
/// ```
/// use scopegate_core::client::issuer_of;
/// use scopegate_core::Policy;
/// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///   "routes": [{"path": "/a", "require": "a"}]}"#)?;
/// // {"iss":"https://idp"}
/// assert_eq!(issuer_of(&policy, "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln"), Some(0));
/// assert_eq!(issuer_of(&policy, "opaque"), None);
/// # Ok::<(), scopegate_core::PolicyError>(())
/// ```
pub fn issuer_of(policy: &Policy, token: &str) -> Option<usize> {
    let decoded = decode(token).ok()?;
    let iss = decoded.claims().get("iss")?.as_str()?;
    policy.issuer_by_name(iss).map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn nothing_held_and_nothing_requested_leaves_the_request_alone() {
        let rules = ScopeRules::default();
        assert_eq!(widen(&rules, &[], &[], Some("login")), Ok(None));
        let widened = widen(&rules, &["a"], &[], None).unwrap().unwrap();
        assert_eq!(
            widened,
            Widened {
                scope: "a".into(),
                prompt: None
            }
        );
        assert_eq!(vec!["x"], split_scopes("x").collect::<Vec<_>>());
    }
}
