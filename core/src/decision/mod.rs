//! One function from a request to a decision: pass, deny with the exact status,
//! `WWW-Authenticate` challenge and JSON body, or serve the RFC 9728 metadata document.
//!
//! | case | status | challenge error |
//! | --- | --- | --- |
//! | public route, CORS preflight | pass | — |
//! | no token on a protected route | 401 | none (`Bearer realm="…"`) |
//! | malformed, bad signature, expired, wrong `iss`/`aud`, unknown `kid` | 401 | `invalid_token` |
//! | two credentials, token in the query, unsafe path, a needed header not UTF-8 | 400 | `invalid_request` |
//! | an MCP body that is not JSON-RPC or disagrees with `Mcp-Method` / `Mcp-Name` | 400 | `invalid_request` |
//! | an MCP body over the route's limit | 413 | `invalid_request` |
//! | scopes missing | 403 | `insufficient_scope` with `scope` |
//! | authentication older than a scope's `max_age` | 401 | `insufficient_user_authentication` with `max_age` |
//! | a DPoP proof missing, replayed, for another request, key or token (RFC 9449) | 401 | `invalid_dpop_proof` (a `DPoP` challenge with `algs`) |
//! | no route, default deny | 403 | `insufficient_scope` |

mod answer;
mod decide;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::mcp::McpError;
use crate::path::PathError;
use crate::request::RequestHeader;
use crate::token::{BearerError, TokenError};

pub use answer::Answer;

/// The outcome for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision<'p> {
    /// Let the request through to the upstream.
    Allow(Allow<'p>),
    /// Answer it with a 400, 401 or 403.
    Deny(Denial),
    /// Answer it with a document (the RFC 9728 protected resource metadata).
    Serve(Served<'p>),
    /// The token is valid but the route is an MCP endpoint: decide again with the request
    /// body ([`Request::with_body`](crate::Request::with_body)), which the host reads up
    /// to `max_bytes`.
    NeedBody(NeedBody<'p>),
}

/// What a host reads before an MCP route can be decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedBody<'p> {
    /// The matched route, by position in the policy.
    pub route: usize,
    /// The largest body the route accepts; a larger one is answered with 413.
    pub max_bytes: usize,
    /// The verified claims to forward, as for a pass: a proxy that can only read a body
    /// after the headers went on (proxy-wasm) sets them now.
    pub headers: Vec<(&'p str, String)>,
}

impl Decision<'_> {
    /// The HTTP status the client sees when the decision is enforced; `None` for a pass.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Allow(_) | Self::NeedBody(_) => None,
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
            Self::NeedBody(_) => "read_body",
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
            Self::Allow(_) | Self::NeedBody(_) => None,
            Self::Deny(denial) => Some(denial.local_response()),
            Self::Serve(served) => Some(served.local_response()),
        }
    }
}

/// Every value of [`Decision::code`] a gateway counts, for hosts that declare their counters
/// up front (`read_body` is not counted: the decision comes with the body).
pub const DECISION_CODES: [&str; 15] = [
    "allow_public",
    "allow_preflight",
    "allow_authorized",
    "allow_unmatched",
    "deny_bad_header",
    "deny_bad_body",
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
    /// [`Policy::forwarded_headers`](crate::Policy::forwarded_headers) from every request first.
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
    /// 401, RFC 9449: the DPoP proof is refused.
    InvalidDpopProof,
    /// RFC 9449 §9: the proof must carry the server's current nonce.
    UseDpopNonce,
    /// 503: the token cannot be checked now (RFC 6749 §4.1.2.1's name); no challenge.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The registered name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// Why a request is denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// A header the decision needs is not UTF-8 text.
    BadHeader(RequestHeader),
    /// An MCP route's body is over its limit, not JSON-RPC, or disagrees with the
    /// `Mcp-Method` / `Mcp-Name` headers.
    BadBody(McpError),
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
            Self::BadBody(_) => "deny_bad_body",
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
            Self::BadBody(e) => write!(f, "bad body: {e}"),
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
    /// 400, 401, 403, 411, 413, or 503 (a token the gateway cannot check now).
    pub status: u16,
    /// Why.
    pub reason: DenyReason,
    /// The challenge's `error`, absent for a request without a token.
    pub error: Option<ErrorCode>,
    /// Every scope of the requirement alternative chosen for a 403 (the one with the
    /// smallest missing set): the challenge's `scope`.
    pub required: Vec<String>,
    /// Those of [`Denial::required`] the token lacks (403); the body's `missing`.
    pub missing: Vec<String>,
    /// The `max_age` to meet (step-up).
    pub max_age: Option<u64>,
    /// The authentication context classes to meet, one of them (RFC 9470 `acr_values`).
    pub acr_values: Vec<String>,
    /// The matched route, by position in the policy.
    pub route: Option<usize>,
    /// The `WWW-Authenticate` value.
    pub www_authenticate: String,
    /// The JSON body.
    pub body: String,
    /// The request's `Origin`, when the policy lets that origin read denials.
    pub allowed_origin: Option<String>,
}

/// How long a client waits before it tries a token the gateway could not check now: the
/// introspection budget is counted per second.
const RETRY_AFTER_SECONDS: &str = "1";

impl Denial {
    /// The fresh DPoP nonce a `use_dpop_nonce` denial hands out (`DPoP-Nonce`, RFC 9449 §9).
    pub fn dpop_nonce(&self) -> Option<&str> {
        match &self.reason {
            DenyReason::InvalidToken(crate::token::TokenError::Proof(
                crate::dpop::ProofError::UseNonce(nonce),
            )) => Some(nonce),
            _ => None,
        }
    }

    /// The response headers: `www-authenticate` (`retry-after` for a 503, which challenges
    /// nothing), `content-type`, `cache-control`, and the CORS headers that let an allowed
    /// origin's scripts read the challenge.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let first = match self.status {
            503 => ("retry-after", RETRY_AFTER_SECONDS),
            _ => ("www-authenticate", self.www_authenticate.as_str()),
        };
        let mut headers = alloc::vec![
            first,
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ];
        let nonce = self.dpop_nonce();
        if let Some(nonce) = nonce {
            headers.push(("dpop-nonce", nonce));
        }
        if let Some(origin) = &self.allowed_origin {
            headers.push(("access-control-allow-origin", origin.as_str()));
            let exposed = match (self.status, nonce) {
                (503, _) => "Retry-After",
                (_, Some(_)) => "WWW-Authenticate, DPoP-Nonce",
                (_, None) => "WWW-Authenticate",
            };
            headers.push(("access-control-expose-headers", exposed));
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
