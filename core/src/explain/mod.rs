//! Why the gateway decides a request as it does: the questions of an RBAC troubleshooting
//! guide answered from the policy, the request and its token. Which route matched and why
//! the others did not, what it requires, each scope the token holds and where it came
//! from, what is missing, the claim at fault, and what to do about it.
//!
//! The decision is the gateway's own ([`Policy::decide`], or [`Policy::precheck`] when the
//! signature is not checked): an explanation never disagrees with the gateway.

mod remedy;
mod routes;
mod token;

use alloc::string::String;
use alloc::vec::Vec;

use crate::decision::{Decision, DenyReason};
use crate::path::{normalize, PathError};
use crate::policy::{Access, KeyStore, Policy};
use crate::request::Request;
use crate::time::UnixTime;
use crate::token::credential_of;

pub use remedy::Remedy;
pub use routes::{RouteCandidate, RouteOutcome};
pub use token::{ClaimValue, Fault, ScopeOrigin, ScopeSource, TokenReport};

/// How to explain.
#[derive(Clone, Copy, Debug)]
pub struct ExplainOptions<'k> {
    /// Keys fetched for remote-JWKS issuers; `None`: the signature is not checked and the
    /// explanation says so.
    pub keys: Option<&'k KeyStore>,
    /// The clock of token validation.
    pub now: UnixTime,
    /// When the policy last changed (its file's modification time), for "issued before".
    pub policy_changed_at: Option<UnixTime>,
}

/// What the matched route requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Required {
    /// Nothing: the route is public.
    Public,
    /// Every scope of one of these alternatives, with the path's placeholder values filled in.
    AnyOf(Vec<Vec<String>>),
    /// An MCP route: each JSON-RPC message has its rule; these are the route's own
    /// alternatives (empty: a valid token), and the denial names what a message needed.
    Mcp(Vec<Vec<String>>),
}

/// The answer to "why this decision?".
#[derive(Clone, Debug)]
pub struct Explanation<'p> {
    /// The gateway's decision.
    pub decision: Decision<'p>,
    /// Was the token's signature checked?
    pub signature_checked: bool,
    /// The normalized path, or why the path cannot be normalized.
    pub path: Result<String, PathError>,
    /// Every route whose template fits the path, with the chosen one.
    pub routes: Vec<RouteCandidate<'p>>,
    /// The chosen route's requirement.
    pub required: Option<Required>,
    /// The token, if one was sent.
    pub token: Option<TokenReport>,
    /// What would change the decision.
    pub remedies: Vec<Remedy>,
}

impl Policy {
    /// Explains the decision on `request`.
    ///
    /// ```
    /// use scopegate_core::explain::{ExplainOptions, Remedy, Required, RouteOutcome};
    /// use scopegate_core::{Policy, Request, UnixTime};
    /// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
    ///   "roles": {"claims": ["roles"], "map": {"editor": ["resource:write"]}},
    ///   "routes": [{"path": "/api/**", "require": "resource:read"},
    ///              {"path": "/api/resources", "methods": ["POST"], "require": "resource:write"}]}"#).unwrap();
    /// // {"alg":"ES256"} . {"iss":"https://idp","aud":"api","exp":2000000000,"scope":"resource:read","roles":["viewer"]}
    /// let token = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsImF1ZCI6ImFwaSIsImV4cCI6MjAwMDAwMDAwMCwic2NvcGUiOiJyZXNvdXJjZTpyZWFkIiwicm9sZXMiOlsidmlld2VyIl19.c2ln";
    /// let bearer = format!("Bearer {token}");
    /// let authorization = [bearer.as_str()];
    /// let mut request = Request::new("POST", "/api/resources");
    /// request.authorization = &authorization;
    /// let options = ExplainOptions { keys: None, now: UnixTime(1_700_000_000), policy_changed_at: None };
    /// let why = policy.explain(&request, &options);
    /// assert_eq!(why.decision.status(), Some(403));
    /// assert_eq!(why.routes[0].outcome, RouteOutcome::LessSpecificThan(1));
    /// assert_eq!(why.routes[1].outcome, RouteOutcome::Chosen);
    /// assert_eq!(why.required, Some(Required::AnyOf(vec![vec!["resource:write".into()]])));
    /// assert!(why.remedies.contains(&Remedy::AssignRole {
    ///     scope: "resource:write".into(), roles: vec!["editor".into()] }));
    /// assert!(why.remedies.contains(&Remedy::MapRole { claim: "roles".into(), role: "viewer".into() }));
    /// ```
    pub fn explain<'p>(
        &'p self,
        request: &Request<'_>,
        options: &ExplainOptions<'_>,
    ) -> Explanation<'p> {
        let decision = match options.keys {
            Some(keys) => self.decide(request, keys, options.now),
            None => self.precheck(request, options.now),
        };
        let path = normalize(request.path).map(|p| String::from(&*p));
        let found = path
            .as_ref()
            .ok()
            .and_then(|p| self.table.find(request.method, p).map(|f| (f, p)));
        let (routes, required) = match (&path, found) {
            (Ok(path), Some((found, _))) => {
                let route = &self.routes[found.index];
                let required = match &route.access {
                    Access::Public => Required::Public,
                    Access::Protected(requirement) => Required::AnyOf(
                        routes::rendered_alternatives(self, requirement, found.params()),
                    ),
                    Access::Mcp(mcp) => Required::Mcp(
                        mcp.default
                            .as_ref()
                            .map(|r| routes::rendered_alternatives(self, r, found.params()))
                            .unwrap_or_default(),
                    ),
                };
                let routes = routes::candidates(self, request.method, path, Some(found.index));
                (routes, Some(required))
            }
            (Ok(path), None) => (routes::candidates(self, request.method, path, None), None),
            (Err(_), _) => (Vec::new(), None),
        };
        let denial = match &decision {
            Decision::Deny(denial) => Some(denial),
            _ => None,
        };
        let token = credential_of(request.authorization)
            .ok()
            .flatten()
            .map(|credential| {
                let error = match denial.map(|d| &d.reason) {
                    Some(DenyReason::InvalidToken(err)) => Some(err.clone()),
                    _ => None,
                };
                let mut needed: Vec<String> = denial.map(|d| d.missing.clone()).unwrap_or_default();
                if let Some(Required::AnyOf(alternatives) | Required::Mcp(alternatives)) = &required
                {
                    needed.extend(alternatives.iter().flatten().cloned());
                }
                TokenReport::read(
                    self,
                    credential.token,
                    error,
                    &needed,
                    options.keys,
                    options.now,
                    path.as_deref().ok(),
                )
            });
        let remedies = denial
            .map(|denial| remedy::remedies(self, denial, token.as_ref(), options.policy_changed_at))
            .unwrap_or_default();
        Explanation {
            decision,
            signature_checked: options.keys.is_some(),
            path,
            routes,
            required,
            token,
            remedies,
        }
    }

    /// The remedies for a 403 known only from its answer (the challenge's `scope`, the
    /// body's `missing`): the roles that grant each missing scope, and the scopes to ask for.
    ///
    /// ```
    /// use scopegate_core::explain::Remedy;
    /// let policy = scopegate_core::Policy::from_json(r#"{"version": 1, "realm": "api",
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
    ///   "roles": {"map": {"editor": ["resource:write"]}},
    ///   "routes": [{"path": "/api/**", "require": "resource:write"}]}"#).unwrap();
    /// let remedies = policy.remedies_for_missing(&["resource:write".into(), "audit".into()], &["openid"]);
    /// assert_eq!(remedies[0], Remedy::AssignRole { scope: "resource:write".into(), roles: vec!["editor".into()] });
    /// assert_eq!(remedies[1], Remedy::NoRoleGrants { scope: "audit".into() });
    /// assert_eq!(remedies[2].to_string(), r#"request scope="openid resource:write audit" next (adds `resource:write`, `audit`)"#);
    /// ```
    pub fn remedies_for_missing(&self, missing: &[String], held: &[&str]) -> Vec<Remedy> {
        let mut out = Vec::new();
        remedy::role_remedies(self, missing, &mut out);
        remedy::request_remedy(self, held, missing, &mut out);
        out
    }
}
