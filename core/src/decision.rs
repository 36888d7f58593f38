//! One function from a request to a decision: pass, deny with the exact status,
//! `WWW-Authenticate` challenge and JSON body, or serve the RFC 9728 metadata document.
//!
//! | case | status | challenge error |
//! | --- | --- | --- |
//! | public route, CORS preflight | pass | — |
//! | no token on a protected route | 401 | none (`Bearer realm="…"`) |
//! | malformed, bad signature, expired, wrong `iss`/`aud`, unknown `kid` | 401 | `invalid_token` |
//! | two credentials, token in the query, unsafe path, a needed header not UTF-8 | 400 | `invalid_request` |
//! | scopes missing | 403 | `insufficient_scope` with `scope` |
//! | authentication older than a scope's `max_age` | 401 | `insufficient_user_authentication` with `max_age` |
//! | no route, default deny | 403 | `insufficient_scope` |

use alloc::borrow::Borrow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use crate::challenge::Challenge;
use crate::path::{normalize, PathError};
use crate::policy::{Access, Evaluation, KeyStore, Policy};
use crate::request::{Request, RequestHeader};
use crate::token::{self, bearer_token, BearerError, Principal, Signature, TokenError};
use crate::UnixTime;

/// The outcome for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision<'p> {
    /// Let the request through to the upstream.
    Allow(Allow<'p>),
    /// Answer it with a 400, 401 or 403.
    Deny(Denial),
    /// Answer it with a document (the RFC 9728 protected resource metadata).
    Serve(Served<'p>),
}

impl Decision<'_> {
    /// The HTTP status the client sees when the decision is enforced; `None` for a pass.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Allow(_) => None,
            Self::Deny(denial) => Some(denial.status),
            Self::Serve(_) => Some(200),
        }
    }

    /// A stable name for stats and logs: `allow_public`, `deny_insufficient_scope`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Self::Allow(allow) => allow.reason.code(),
            Self::Deny(denial) => denial.reason.code(),
            Self::Serve(_) => "serve_metadata",
        }
    }

    /// The response a host sends instead of forwarding the request: every denial and the
    /// served metadata document; `None` for a pass.
    ///
    /// ```
    /// use scopegate_core::{KeyStore, Policy, Request, UnixTime};
    /// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
    ///   "routes": [{"path": "/health", "public": true}]}"#).unwrap();
    /// let keys = KeyStore::default();
    /// let decision = policy.decide(&Request::new("GET", "/admin"), &keys, UnixTime(0));
    /// let response = decision.local_response().unwrap();
    /// assert_eq!(response.status, 403);
    /// assert_eq!(response.headers[0].0, "www-authenticate");
    /// assert!(response.headers[0].1.starts_with(r#"Bearer realm="api", error="insufficient_scope""#));
    /// assert!(response.body.starts_with(r#"{"error":"insufficient_scope""#));
    /// assert!(policy.decide(&Request::new("GET", "/health"), &keys, UnixTime(0)).local_response().is_none());
    /// ```
    pub fn local_response(&self) -> Option<LocalResponse<'_>> {
        match self {
            Self::Allow(_) => None,
            Self::Deny(denial) => Some(denial.local_response()),
            Self::Serve(served) => Some(served.local_response()),
        }
    }
}

/// Every value of [`Decision::code`], for hosts that declare their counters up front.
pub const DECISION_CODES: [&str; 14] = [
    "allow_public",
    "allow_preflight",
    "allow_authorized",
    "allow_unmatched",
    "deny_bad_header",
    "deny_bad_path",
    "deny_bad_credentials",
    "deny_bad_parameter",
    "deny_no_token",
    "deny_invalid_token",
    "deny_insufficient_scope",
    "deny_step_up",
    "deny_no_route",
    "serve_metadata",
];

/// A response answered by the host itself, without the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse<'d> {
    /// The HTTP status.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(&'static str, &'d str)>,
    /// The body.
    pub body: &'d str,
}

/// A pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow<'p> {
    /// Why.
    pub reason: AllowReason,
    /// The matched route, by position in the policy.
    pub route: Option<usize>,
    /// Headers to add to the upstream request (verified claims). The host removes
    /// [`Policy::forwarded_headers`] from every request first.
    pub headers: Vec<(&'p str, String)>,
}

/// Why a request passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowReason {
    /// The route is public.
    Public,
    /// A CORS preflight, which carries no credentials by design.
    Preflight,
    /// The token is valid and covers the route's requirement.
    Authorized,
    /// No route matched and the policy lets unmatched requests through.
    Unmatched,
}

impl AllowReason {
    /// A stable name for stats.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Public => "allow_public",
            Self::Preflight => "allow_preflight",
            Self::Authorized => "allow_authorized",
            Self::Unmatched => "allow_unmatched",
        }
    }
}

/// The `error` of an RFC 6750 / RFC 9470 challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400.
    InvalidRequest,
    /// 401.
    InvalidToken,
    /// 403.
    InsufficientScope,
    /// 401, RFC 9470 step-up.
    InsufficientUserAuthentication,
}

impl ErrorCode {
    /// The registered name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
        }
    }
}

/// Why a request is denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// A header the decision needs is not UTF-8 text.
    BadHeader(RequestHeader),
    /// The path cannot be normalized safely.
    BadPath(PathError),
    /// The credentials are presented wrongly.
    BadCredentials(BearerError),
    /// A path placeholder bound to a prefix scope holds a value that cannot form a scope.
    BadParameter,
    /// No token on a protected route.
    NoToken,
    /// The token is not acceptable.
    InvalidToken(TokenError),
    /// Scopes are missing.
    InsufficientScope,
    /// The authentication is older than a required scope's `max_age`.
    StepUpRequired,
    /// No route matches and unmatched requests are denied.
    NoRoute,
}

impl DenyReason {
    /// A stable name for stats.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadHeader(_) => "deny_bad_header",
            Self::BadPath(_) => "deny_bad_path",
            Self::BadCredentials(_) => "deny_bad_credentials",
            Self::BadParameter => "deny_bad_parameter",
            Self::NoToken => "deny_no_token",
            Self::InvalidToken(_) => "deny_invalid_token",
            Self::InsufficientScope => "deny_insufficient_scope",
            Self::StepUpRequired => "deny_step_up",
            Self::NoRoute => "deny_no_route",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHeader(h) => write!(f, "bad header: {}", h.not_text()),
            Self::BadPath(e) => write!(f, "bad path: {e}"),
            Self::BadCredentials(e) => write!(f, "bad credentials: {e}"),
            Self::BadParameter => f.write_str("a path parameter cannot form a scope"),
            Self::NoToken => f.write_str("no bearer token"),
            Self::InvalidToken(e) => write!(f, "invalid token: {e}"),
            Self::InsufficientScope => f.write_str("insufficient scope"),
            Self::StepUpRequired => f.write_str("authentication too old for the scope"),
            Self::NoRoute => f.write_str("no route matches"),
        }
    }
}

/// A denial with everything the response needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// 400, 401 or 403.
    pub status: u16,
    /// Why.
    pub reason: DenyReason,
    /// The challenge's `error`, absent for a request without a token.
    pub error: Option<ErrorCode>,
    /// The scopes missing (403), smallest set.
    pub missing: Vec<String>,
    /// The `max_age` to meet (step-up).
    pub max_age: Option<u64>,
    /// The matched route, by position in the policy.
    pub route: Option<usize>,
    /// The `WWW-Authenticate` value.
    pub www_authenticate: String,
    /// The JSON body.
    pub body: String,
    /// The request's `Origin`, when the policy lets that origin read denials.
    pub allowed_origin: Option<String>,
}

impl Denial {
    /// The response headers: `www-authenticate`, `content-type`, `cache-control`, and the
    /// CORS headers that let an allowed origin's scripts read the challenge.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = alloc::vec![
            ("www-authenticate", self.www_authenticate.as_str()),
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ];
        if let Some(origin) = &self.allowed_origin {
            headers.push(("access-control-allow-origin", origin.as_str()));
            headers.push(("access-control-expose-headers", "WWW-Authenticate"));
            headers.push(("vary", "Origin"));
        }
        headers
    }

    /// The response that answers the request.
    pub fn local_response(&self) -> LocalResponse<'_> {
        LocalResponse {
            status: self.status,
            headers: self.headers(),
            body: &self.body,
        }
    }
}

/// A document answered locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served<'p> {
    /// Its media type.
    pub content_type: &'static str,
    /// Its body.
    pub body: &'p str,
}

impl<'p> Served<'p> {
    /// The response that serves the document.
    pub fn local_response(&self) -> LocalResponse<'p> {
        LocalResponse {
            status: 200,
            headers: alloc::vec![
                ("content-type", self.content_type),
                ("cache-control", "max-age=300"),
            ],
            body: self.body,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<u64>,
}

impl Policy {
    /// Decides a request at the gateway: tokens are verified against the policy's inline
    /// keys and the fetched keys in `keys`.
    ///
    /// ```
    /// use scopegate_core::{Decision, KeyStore, Policy, Request, UnixTime};
    /// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
    ///   "routes": [{"path": "/api/resources", "methods": ["POST"], "require": "resource:write"},
    ///              {"path": "/health", "public": true}]}"#).unwrap();
    /// let keys = KeyStore::default();
    /// let now = UnixTime(1_700_000_000);
    ///
    /// assert!(matches!(policy.decide(&Request::new("GET", "/health"), &keys, now), Decision::Allow(_)));
    /// let Decision::Deny(denial) = policy.decide(&Request::new("POST", "/api/resources"), &keys, now)
    /// else { panic!() };
    /// assert_eq!(denial.status, 401);
    /// assert_eq!(denial.www_authenticate, r#"Bearer realm="api""#);
    /// assert_eq!(denial.body, r#"{"error":"unauthorized"}"#);
    /// ```
    pub fn decide<'p>(
        &'p self,
        request: &Request<'_>,
        keys: &KeyStore,
        now: UnixTime,
    ) -> Decision<'p> {
        self.decide_with(request, now, |token| self.authenticate(token, keys, now))
    }

    /// The response a gateway sends for `decision`, `None` to forward the request: in
    /// `dry_run` mode denials are only logged and the request goes through, while the
    /// metadata document is still served.
    ///
    /// ```
    /// use scopegate_core::{KeyStore, Policy, Request, UnixTime};
    /// let policy = Policy::from_json(r#"{"version": 1, "realm": "api", "dry_run": true,
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
    ///   "routes": [{"path": "/admin", "require": "admin"}]}"#).unwrap();
    /// let decision = policy.decide(&Request::new("GET", "/admin"), &KeyStore::default(), UnixTime(0));
    /// assert_eq!(decision.status(), Some(401));
    /// assert!(policy.enforce(&decision).is_none(), "dry run: let through");
    /// ```
    pub fn enforce<'d>(&self, decision: &'d Decision<'_>) -> Option<LocalResponse<'d>> {
        if self.dry_run && matches!(decision, Decision::Deny(_)) {
            return None;
        }
        decision.local_response()
    }

    /// The decision the gateway would make, without checking the token's signature: for
    /// clients that pre-check the token they hold before sending a request. Never use it to
    /// protect anything.
    pub fn precheck<'p>(&'p self, request: &Request<'_>, now: UnixTime) -> Decision<'p> {
        self.decide_with(request, now, |token| {
            token::authenticate(self, token, Signature::Trust, now)
        })
    }

    /// Validates a token (signature, claims, scopes) into a [`Principal`].
    pub fn authenticate(
        &self,
        token: &str,
        keys: &KeyStore,
        now: UnixTime,
    ) -> Result<Principal, TokenError> {
        token::authenticate(self, token, Signature::Verify(keys), now)
    }

    /// Validates a token's claims and reads its scopes without checking the signature.
    pub fn authenticate_unverified(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Principal, TokenError> {
        token::authenticate(self, token, Signature::Trust, now)
    }

    /// Decides a request with a caller-supplied token validation, so that a host can put a
    /// cache of [`Principal`]s in front of [`Policy::authenticate`]. A cached principal must
    /// not be used after its [`Principal::expires_at`].
    pub fn decide_with<'p, P, F>(
        &'p self,
        request: &Request<'_>,
        now: UnixTime,
        authenticate: F,
    ) -> Decision<'p>
    where
        P: Borrow<Principal>,
        F: FnOnce(&str) -> Result<P, TokenError>,
    {
        if let Some(header) = request.unreadable {
            // A target that is not UTF-8 has a non-ASCII byte, which a UTF-8 one would be
            // refused for too.
            let reason = match header {
                RequestHeader::Path => DenyReason::BadPath(PathError::InvalidCharacter),
                header => DenyReason::BadHeader(header),
            };
            return self.deny(request, reason, None, Vec::new(), None);
        }
        let path = match normalize(request.path) {
            Ok(path) => path,
            Err(err) => {
                return self.deny(request, DenyReason::BadPath(err), None, Vec::new(), None);
            }
        };
        if let Some(resource) = &self.resource {
            if *path == *resource.metadata_path && matches!(request.method, "GET" | "HEAD") {
                return Decision::Serve(Served {
                    content_type: "application/json",
                    body: &resource.metadata_document,
                });
            }
        }
        let preflight = request.method == "OPTIONS"
            && request.origin.is_some()
            && request.access_control_request_method.is_some();
        if preflight {
            return allow(AllowReason::Preflight, None);
        }
        let Some(found) = self.table.find(request.method, &path) else {
            if self.allow_unmatched {
                return allow(AllowReason::Unmatched, None);
            }
            return self.deny(request, DenyReason::NoRoute, None, Vec::new(), None);
        };
        let route = Some(found.index);
        let requirement = match &self.routes[found.index].access {
            Access::Public => return allow(AllowReason::Public, route),
            Access::Protected(requirement) => requirement,
        };
        if has_query_token(request.path) {
            let reason = DenyReason::BadCredentials(BearerError::TokenInQuery);
            return self.deny(request, reason, route, Vec::new(), None);
        }
        let token = match bearer_token(request.authorization) {
            Ok(Some(token)) => token,
            Ok(None) => return self.deny(request, DenyReason::NoToken, route, Vec::new(), None),
            Err(err) => {
                let reason = DenyReason::BadCredentials(err);
                return self.deny(request, reason, route, Vec::new(), None);
            }
        };
        let principal = match authenticate(token) {
            Ok(principal) => principal,
            Err(err) => {
                let reason = DenyReason::InvalidToken(err);
                return self.deny(request, reason, route, Vec::new(), None);
            }
        };
        let principal: &Principal = principal.borrow();
        match requirement.evaluate(&self.rules, &principal.scopes, found.params()) {
            Evaluation::BadParameter => {
                self.deny(request, DenyReason::BadParameter, route, Vec::new(), None)
            }
            Evaluation::Missing(missing) => {
                let missing = missing.into_iter().map(|s| s.into_owned()).collect();
                self.deny(request, DenyReason::InsufficientScope, route, missing, None)
            }
            Evaluation::Satisfied(alternative) => {
                let max_age = if self.max_age.is_empty() {
                    None
                } else {
                    let required = requirement.rendered(alternative, &self.rules, found.params());
                    self.max_age
                        .iter()
                        .filter(|(scope, _)| required.iter().any(|r| self.rules.covers(scope, r)))
                        .map(|(_, age)| *age)
                        .min()
                };
                if let Some(max_age) = max_age {
                    let fresh = principal
                        .auth_time
                        .is_some_and(|t| now.0 <= t.saturating_add(max_age));
                    if !fresh {
                        let reason = DenyReason::StepUpRequired;
                        return self.deny(request, reason, route, Vec::new(), Some(max_age));
                    }
                }
                Decision::Allow(Allow {
                    reason: AllowReason::Authorized,
                    route,
                    headers: self.forward_headers(principal),
                })
            }
        }
    }

    fn forward_headers(&self, principal: &Principal) -> Vec<(&str, String)> {
        let mut headers: Vec<(&str, String)> = principal
            .forwarded
            .iter()
            .filter_map(|(index, value)| {
                self.forward
                    .get(*index)
                    .map(|f| (&*f.header, value.clone()))
            })
            .collect();
        if let Some(header) = &self.forward_scopes {
            let scopes: Vec<&str> = principal.scopes.iter().collect();
            headers.push((header, scopes.join(" ")));
        }
        headers
    }

    fn deny<'p>(
        &self,
        request: &Request<'_>,
        reason: DenyReason,
        route: Option<usize>,
        missing: Vec<String>,
        max_age: Option<u64>,
    ) -> Decision<'p> {
        let (status, error, description): (u16, Option<ErrorCode>, Option<&str>) = match &reason {
            DenyReason::BadHeader(h) => (400, Some(ErrorCode::InvalidRequest), Some(h.not_text())),
            DenyReason::BadPath(e) => (400, Some(ErrorCode::InvalidRequest), Some(e.description())),
            DenyReason::BadCredentials(e) => {
                (400, Some(ErrorCode::InvalidRequest), Some(e.description()))
            }
            DenyReason::BadParameter => (
                400,
                Some(ErrorCode::InvalidRequest),
                Some("A path parameter cannot form the required scope"),
            ),
            DenyReason::NoToken => (401, None, None),
            DenyReason::InvalidToken(e) => {
                (401, Some(ErrorCode::InvalidToken), Some(e.description()))
            }
            DenyReason::InsufficientScope => (403, Some(ErrorCode::InsufficientScope), None),
            DenyReason::StepUpRequired => (
                401,
                Some(ErrorCode::InsufficientUserAuthentication),
                Some("A more recent authentication is required"),
            ),
            DenyReason::NoRoute => (
                403,
                Some(ErrorCode::InsufficientScope),
                Some("No route is configured for this request"),
            ),
        };
        let scope = (!missing.is_empty()).then(|| missing.join(" "));
        let mut challenge = Challenge::new("Bearer");
        // RFC 6750 §3: a 400 carries no realm in section 5's table; every other denial does.
        if status != 400 {
            challenge = challenge.with_param("realm", &self.realm);
        }
        if let Some(error) = error {
            challenge = challenge.with_param("error", error.as_str());
        }
        if let Some(description) = description {
            challenge = challenge.with_param("error_description", description);
        }
        if let Some(scope) = &scope {
            challenge = challenge.with_param("scope", scope);
        }
        if let Some(max_age) = max_age {
            challenge = challenge.with_param("max_age", &alloc::format!("{max_age}"));
        }
        if let Some(resource) = &self.resource {
            if status != 400 {
                challenge = challenge.with_param("resource_metadata", &resource.metadata_url);
            }
        }
        let body = Body {
            error: error.map_or("unauthorized", ErrorCode::as_str),
            error_description: description,
            scope: scope.as_deref(),
            max_age,
        };
        let allowed_origin = request
            .origin
            .filter(|origin| {
                self.cors_origins
                    .iter()
                    .any(|allowed| &**allowed == "*" || **allowed == **origin)
            })
            .map(String::from);
        Decision::Deny(Denial {
            status,
            reason,
            error,
            missing,
            max_age,
            route,
            www_authenticate: challenge.to_header_value(),
            body: serde_json::to_string(&body).unwrap_or_default(),
            allowed_origin,
        })
    }
}

fn allow<'p>(reason: AllowReason, route: Option<usize>) -> Decision<'p> {
    Decision::Allow(Allow {
        reason,
        route,
        headers: Vec::new(),
    })
}

/// Does the query string carry an `access_token` parameter (RFC 6750 §2.3)?
fn has_query_token(target: &str) -> bool {
    let target = target.as_bytes();
    let Some(start) = target.iter().position(|&b| b == b'?') else {
        return false;
    };
    let query = &target[start + 1..];
    let query = query.split(|&b| b == b'#').next().unwrap_or(b"");
    query
        .split(|&b| b == b'&')
        .any(|pair| pair.split(|&b| b == b'=').next() == Some(b"access_token"))
}
