//! The authorization request of the authorization code flow with PKCE (RFC 6749 §4.1.1,
//! RFC 7636 §4.3), with RFC 8707 resources and RFC 9470 step-up parameters: what it may
//! carry, and its query parameters in order. The npm package's `authorizationUrl` sets
//! these on the endpoint's URL and does nothing else.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::{is_s256_challenge, is_valid_acr};
use crate::policy::url::is_absolute_uri;
use crate::scope::is_valid_scope;

/// The parameters the request sets itself, which an extra parameter may not set.
const RESERVED: [&str; 10] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "acr_values",
    "max_age",
];

/// The largest `max_age`: 2^53 − 1, the largest whole number a JS (and JSON) number holds
/// exactly.
const MAX_AGE: f64 = 9_007_199_254_740_991.0;

/// An authorization request, each member as the client gives it; `Default` is a request
/// with nothing in it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AuthorizationRequest<'a> {
    /// The authorization endpoint the parameters are set on, when the host hands it over:
    /// an absolute URI without a fragment (RFC 6749 §3.1).
    pub authorization_endpoint: Option<&'a str>,
    /// `response_type`; `code` when `None`.
    pub response_type: Option<&'a str>,
    /// `client_id`: not empty.
    pub client_id: &'a str,
    /// `redirect_uri`: an absolute URI without a fragment (RFC 6749 §3.1.2).
    pub redirect_uri: &'a str,
    /// The scopes, each a valid scope token (RFC 6749 §3.3); no `scope` parameter without any.
    pub scopes: &'a [&'a str],
    /// `state`, when given.
    pub state: Option<&'a str>,
    /// `code_challenge`: an S256 challenge ([`is_s256_challenge`]).
    pub code_challenge: &'a str,
    /// `code_challenge_method`: `S256`, also when `None`; `plain` is refused.
    pub code_challenge_method: Option<&'a str>,
    /// The RFC 8707 `resource`s, one parameter each: absolute URIs without a fragment.
    pub resources: &'a [&'a str],
    /// The RFC 9470 `acr_values` of a step-up, when given: one valid class or more
    /// ([`is_valid_acr`]).
    pub acr_values: Option<&'a [&'a str]>,
    /// The RFC 9470 `max_age` of a step-up, in seconds, when given: a whole number from 0
    /// to 2^53 − 1. A float, as JS and JSON numbers are, so that every host checks it by
    /// this one rule.
    pub max_age: Option<f64>,
    /// More parameters (`prompt`, `login_hint`, …), set after the others in this order; none
    /// may be one the request sets itself.
    pub extra: &'a [(&'a str, &'a str)],
}

/// Why an authorization request cannot be made. Its `Display` is the message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizationRequestError {
    /// The authorization endpoint (given) is not an absolute URI without a fragment.
    Endpoint(String),
    /// `client_id` is empty.
    EmptyClientId,
    /// `redirect_uri` (given) is not an absolute URI without a fragment.
    RedirectUri(String),
    /// A scope (given) is not a valid scope token.
    Scope(String),
    /// `code_challenge` is not an S256 challenge.
    CodeChallenge,
    /// `code_challenge_method` is not `S256`.
    CodeChallengeMethod,
    /// A `resource` (given) is not an absolute URI without a fragment.
    Resource(String),
    /// `acr_values` is empty, or names a class that is not valid.
    AcrValues,
    /// `max_age` is not a whole number of seconds from 0 to 2^53 − 1.
    MaxAge,
    /// An extra parameter (named) is one the request sets itself.
    Reserved(String),
}

impl fmt::Display for AuthorizationRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each message is a text, the value given (quoted as JSON, as JS's JSON.stringify
        // writes it) if any, and a text after it: one copy of the code for all of them.
        let (before, value, after) = match self {
            Self::Endpoint(uri) => (
                "the authorization endpoint must be an absolute URI without a fragment (RFC \
                 6749 section 3.1), got ",
                Some(uri),
                "",
            ),
            Self::EmptyClientId => ("client_id must not be empty", None, ""),
            Self::RedirectUri(uri) => (
                "redirect_uri must be an absolute URI without a fragment (RFC 6749 section \
                 3.1.2), got ",
                Some(uri),
                "",
            ),
            Self::Scope(scope) => (
                "",
                Some(scope),
                " is not a valid scope (RFC 6749 section 3.3)",
            ),
            Self::CodeChallenge => (
                "code_challenge must be an S256 challenge: 43 base64url characters (RFC 7636 \
                 section 4.2)",
                None,
                "",
            ),
            Self::CodeChallengeMethod => {
                ("only the S256 code challenge method is supported", None, "")
            }
            Self::Resource(uri) => (
                "resource must be an absolute URI without a fragment (RFC 8707), got ",
                Some(uri),
                "",
            ),
            Self::AcrValues => (
                "acr_values must be authentication context classes, one or more: printable \
                 ASCII but space, quotes and backslashes",
                None,
                "",
            ),
            Self::MaxAge => ("max_age must be a whole number of seconds", None, ""),
            Self::Reserved(name) => (
                "an extra parameter may not set ",
                Some(name),
                ": use its own option",
            ),
        };
        f.write_str(before)?;
        if let Some(value) = value {
            f.write_str(&serde_json::to_string(value.as_str()).unwrap_or_default())?;
        }
        f.write_str(after)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AuthorizationRequestError {}

/// The query parameters of `request`, in order: `response_type`, `client_id`,
/// `redirect_uri`, `scope` (with scopes), `state` (when given), `code_challenge`,
/// `code_challenge_method`, each `resource`, `acr_values` and `max_age` (when given), then
/// the extra ones. A client sets them on the authorization endpoint's URL, each replacing
/// any parameter of its name the endpoint has. The first member that cannot be sent, in
/// that order, is the error.
///
/// ```
/// use scopegate_core::client::{authorization_params, AuthorizationRequest, AuthorizationRequestError};
/// let request = AuthorizationRequest {
///     client_id: "spa",
///     redirect_uri: "https://app.example/callback",
///     scopes: &["openid", "resource:write"],
///     code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
///     resources: &["https://api.example/"],
///     max_age: Some(300.0),
///     ..AuthorizationRequest::default()
/// };
/// let params = authorization_params(&request)?;
/// let names: Vec<&str> = params.iter().map(|(name, _)| *name).collect();
/// assert_eq!(names, ["response_type", "client_id", "redirect_uri", "scope", "code_challenge",
///                    "code_challenge_method", "resource", "max_age"]);
/// assert_eq!(params[3].1, "openid resource:write");
/// assert_eq!(params[7].1, "300");
///
/// let fragment = AuthorizationRequest { resources: &["https://api.example/#x"], ..request };
/// assert_eq!(
///     authorization_params(&fragment).unwrap_err().to_string(),
///     r#"resource must be an absolute URI without a fragment (RFC 8707), got "https://api.example/#x""#
/// );
/// let endpoint = AuthorizationRequest { authorization_endpoint: Some("https://idp.example/a#b"), ..request };
/// assert!(matches!(authorization_params(&endpoint), Err(AuthorizationRequestError::Endpoint(_))));
/// let extra = AuthorizationRequest { extra: &[("scope", "admin")], ..request };
/// assert_eq!(authorization_params(&extra), Err(AuthorizationRequestError::Reserved("scope".into())));
/// # Ok::<(), AuthorizationRequestError>(())
/// ```
pub fn authorization_params<'a>(
    request: &AuthorizationRequest<'a>,
) -> Result<Vec<(&'a str, String)>, AuthorizationRequestError> {
    use AuthorizationRequestError as E;
    let r = request;
    if let Some(endpoint) = r.authorization_endpoint.filter(|uri| !is_absolute_uri(uri)) {
        return Err(E::Endpoint(endpoint.into()));
    }
    if r.client_id.is_empty() {
        return Err(E::EmptyClientId);
    }
    if !is_absolute_uri(r.redirect_uri) {
        return Err(E::RedirectUri(r.redirect_uri.into()));
    }
    if let Some(scope) = r.scopes.iter().find(|s| !is_valid_scope(s)) {
        return Err(E::Scope((*scope).into()));
    }
    if !is_s256_challenge(r.code_challenge) {
        return Err(E::CodeChallenge);
    }
    let method = r.code_challenge_method.unwrap_or("S256");
    if method != "S256" {
        return Err(E::CodeChallengeMethod);
    }
    if let Some(uri) = r.resources.iter().find(|uri| !is_absolute_uri(uri)) {
        return Err(E::Resource((*uri).into()));
    }
    if r.acr_values
        .is_some_and(|classes| classes.is_empty() || !classes.iter().all(|c| is_valid_acr(c)))
    {
        return Err(E::AcrValues);
    }
    let max_age = match r.max_age {
        None => None,
        // In range (NaN is not), then whole: the cast truncates, and is exact below 2^53.
        Some(age) if (0.0..=MAX_AGE).contains(&age) && age as u64 as f64 == age => Some(age as u64),
        Some(_) => return Err(E::MaxAge),
    };
    if let Some((name, _)) = r.extra.iter().find(|(name, _)| RESERVED.contains(name)) {
        return Err(E::Reserved((*name).into()));
    }

    let mut params: Vec<(&'a str, String)> = alloc::vec![
        ("response_type", r.response_type.unwrap_or("code").into()),
        ("client_id", r.client_id.into()),
        ("redirect_uri", r.redirect_uri.into()),
    ];
    if !r.scopes.is_empty() {
        params.push(("scope", r.scopes.join(" ")));
    }
    if let Some(state) = r.state {
        params.push(("state", state.into()));
    }
    params.push(("code_challenge", r.code_challenge.into()));
    params.push(("code_challenge_method", method.into()));
    for resource in r.resources {
        params.push(("resource", (*resource).into()));
    }
    if let Some(classes) = r.acr_values {
        params.push(("acr_values", classes.join(" ")));
    }
    if let Some(age) = max_age {
        // serde_json's number writer: no second integer formatter in the browser build.
        params.push(("max_age", serde_json::Value::from(age).to_string()));
    }
    for &(name, value) in r.extra {
        params.push((name, value.into()));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> AuthorizationRequest<'static> {
        AuthorizationRequest {
            client_id: "spa",
            redirect_uri: "https://app.example/cb",
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ..AuthorizationRequest::default()
        }
    }

    #[test]
    fn max_age_is_a_whole_number_a_js_number_holds() {
        let age = |max_age| authorization_params(&AuthorizationRequest { max_age, ..base() });
        assert_eq!(age(Some(0.0)).unwrap().last().unwrap().1, "0");
        assert_eq!(age(Some(-0.0)).unwrap().last().unwrap().1, "0");
        assert_eq!(
            age(Some(MAX_AGE)).unwrap().last().unwrap().1,
            "9007199254740991"
        );
        for bad in [-1.0, 1.5, MAX_AGE + 1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                age(Some(bad)),
                Err(AuthorizationRequestError::MaxAge),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_first_member_in_order_is_the_error() {
        let request = AuthorizationRequest {
            client_id: "",
            redirect_uri: "/cb",
            ..base()
        };
        assert_eq!(
            authorization_params(&request),
            Err(AuthorizationRequestError::EmptyClientId)
        );
        let classes: &[&str] = &[];
        let request = AuthorizationRequest {
            acr_values: Some(classes),
            ..base()
        };
        assert_eq!(
            authorization_params(&request),
            Err(AuthorizationRequestError::AcrValues)
        );
    }
}
