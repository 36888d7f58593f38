//! The policy's verbs: from a request to a [`Decision`].

use alloc::borrow::{Borrow, Cow};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use super::{
    Allow, AllowReason, Decision, Denial, DenyReason, ErrorCode, LocalResponse, NeedBody, Served,
};
use crate::challenge::Challenge;
use crate::dpop::{single_proof, ProofContext, ProofError, ProofId};
use crate::mcp::{
    call_from_headers, check_headers, check_revision, jsonrpc_error, read_body, McpError,
    McpEvaluation, McpRoute, Message, Revision,
};
use crate::path::{normalize, PathError};
use crate::policy::{Access, Evaluation, KeyStore, Policy, Requirement};
use crate::request::{Request, RequestHeader};
use crate::route::RouteMatch;
use crate::time::UnixTime;
use crate::token::{
    self, credential_of, AuthScheme, BearerError, Confirmation, Principal, Signature, TokenError,
};

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr_values: Option<&'a str>,
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
    ///
    /// A DPoP proof is not looked at: the client makes one for each request it sends.
    pub fn precheck<'p>(&'p self, request: &Request<'_>, now: UnixTime) -> Decision<'p> {
        // No proof is checked: a const parameter, so that this build of the decision (the
        // only one the browser package links) carries no DPoP proof checking at all.
        self.decide_inner::<_, _, _, false>(
            request,
            now,
            |token| token::authenticate_trusted(self, token, now),
            |_| true,
        )
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

    /// As [`Policy::authenticate`], with the host asked for the request's metadata (as
    /// `get_property(["metadata"])` serializes it) when the token's issuer is verified by
    /// Envoy's `jwt_authn` (`issuers[].jwt_authn`): its payload there must be the token's.
    pub fn authenticate_with_host(
        &self,
        token: &str,
        keys: &KeyStore,
        metadata: &dyn Fn() -> Option<alloc::vec::Vec<u8>>,
        now: UnixTime,
    ) -> Result<Principal, TokenError> {
        token::authenticate(self, token, Signature::VerifyOrAskHost(keys, metadata), now)
    }

    /// Whether the issuer at `issuer` is verified by Envoy's `jwt_authn`: each request with
    /// one of its tokens needs its own verified payload in the metadata, cached token or not.
    pub fn verified_by_host(&self, issuer: usize) -> bool {
        self.issuers
            .get(issuer)
            .is_some_and(|i| matches!(i.keys, crate::policy::KeySource::JwtAuthn(_)))
    }

    /// Validates a token's claims and reads its scopes without checking the signature.
    pub fn authenticate_unverified(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Principal, TokenError> {
        token::authenticate_trusted(self, token, now)
    }

    /// Decides a request with a caller-supplied token validation, so that a host can put a
    /// cache of [`Principal`]s in front of [`Policy::authenticate`]. A cached principal must
    /// not be used after its [`Principal::expires_at`].
    ///
    /// DPoP proofs are checked, but not against replay: a host that accepts DPoP-bound
    /// tokens keeps the proofs it accepted and decides with
    /// [`Policy::decide_with_proofs`] (the [`gateway`](crate::gateway) does).
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
        self.decide_with_proofs(request, now, authenticate, |_| true)
    }

    /// [`Policy::decide_with`], with `first_use` asked whether an accepted DPoP proof is
    /// used for the first time (it records it and answers `true`) or replayed (`false`).
    pub fn decide_with_proofs<'p, P, F, R>(
        &'p self,
        request: &Request<'_>,
        now: UnixTime,
        authenticate: F,
        first_use: R,
    ) -> Decision<'p>
    where
        P: Borrow<Principal>,
        F: FnOnce(&str) -> Result<P, TokenError>,
        R: FnOnce(&ProofId) -> bool,
    {
        self.decide_inner::<_, _, _, true>(request, now, authenticate, first_use)
    }

    fn decide_inner<'p, P, F, R, const CHECK_PROOFS: bool>(
        &'p self,
        request: &Request<'_>,
        now: UnixTime,
        authenticate: F,
        first_use: R,
    ) -> Decision<'p>
    where
        P: Borrow<Principal>,
        F: FnOnce(&str) -> Result<P, TokenError>,
        R: FnOnce(&ProofId) -> bool,
    {
        let path = match Self::readable_path(request) {
            Ok(path) => path,
            Err(reason) => return self.deny(request, reason, None, Needed::default(), None),
        };
        if let Some(answer) = self.unrouted(request, &path) {
            return answer;
        }
        let Some(found) = self.table.find(request.method, &path) else {
            if self.allow_unmatched {
                return allow(AllowReason::Unmatched, None);
            }
            return self.deny(request, DenyReason::NoRoute, None, Needed::default(), None);
        };
        let route = Some(found.index);
        let access = &self.routes[found.index].access;
        if let Access::Public = access {
            return allow(AllowReason::Public, route);
        }
        let (scheme, token) = match self.credential(request) {
            Ok(credential) => credential,
            Err(reason) => return self.deny(request, reason, route, Needed::default(), None),
        };
        let principal = match authenticate(token) {
            Ok(principal) => principal,
            Err(err) => {
                let reason = DenyReason::InvalidToken(err);
                return self.deny(request, reason, route, Needed::default(), None);
            }
        };
        let principal: &Principal = principal.borrow();
        let held = if self.audience_fits(&path, principal) {
            self.possession::<R, CHECK_PROOFS>(request, scheme, token, principal, now, first_use)
        } else {
            Err(TokenError::WrongAudience)
        };
        if let Err(err) = held {
            let reason = DenyReason::InvalidToken(err);
            return self.deny(request, reason, route, Needed::default(), None);
        }
        match access {
            Access::Public => allow(AllowReason::Public, route),
            Access::Protected(requirement) => {
                self.decide_requirement(request, requirement, &found, principal, now)
            }
            Access::Mcp(mcp) => {
                self.decide_mcp(request, mcp, found.index, found.params(), principal, now)
            }
        }
    }

    /// The normalized path, or why a request whose headers cannot be read is refused.
    fn readable_path<'r>(request: &Request<'r>) -> Result<Cow<'r, str>, DenyReason> {
        let reason = match (request.unreadable, normalize(request.path)) {
            // A target that is not UTF-8 has a non-ASCII byte, which a UTF-8 one would be
            // refused for too.
            (Some(RequestHeader::Path), _) => DenyReason::BadPath(PathError::InvalidCharacter),
            (Some(header), _) => DenyReason::BadHeader(header),
            (None, Ok(path)) => return Ok(path),
            (None, Err(err)) => DenyReason::BadPath(err),
        };
        Err(reason)
    }

    /// What a request gets before any route is looked at: the metadata document it asks
    /// for, or a pass for a CORS preflight.
    fn unrouted<'p>(&'p self, request: &Request<'_>, path: &str) -> Option<Decision<'p>> {
        if matches!(request.method, "GET" | "HEAD") {
            if let Some(resource) = self.resources.iter().find(|r| *r.metadata_path == *path) {
                return Some(Decision::Serve(Served {
                    content_type: "application/json",
                    body: &resource.metadata_document,
                }));
            }
        }
        let preflight = request.method == "OPTIONS"
            && request.origin.is_some()
            && request.access_control_request_method.is_some();
        preflight.then(|| allow(AllowReason::Preflight, None))
    }

    /// The request's one credential, its scheme and token, or why it has none.
    fn credential<'r>(&self, request: &Request<'r>) -> Result<(AuthScheme, &'r str), DenyReason> {
        let reason = if has_query_token(request.path) {
            DenyReason::BadCredentials(BearerError::TokenInQuery)
        } else {
            match credential_of(request.authorization) {
                // A DPoP token where the policy has no `dpop` is another scheme's credential.
                Ok(Some(c)) if c.scheme == AuthScheme::Dpop && self.dpop.is_none() => {
                    DenyReason::NoToken
                }
                Ok(Some(credential)) => return Ok((credential.scheme, credential.token)),
                Ok(None) => DenyReason::NoToken,
                Err(err) => DenyReason::BadCredentials(err),
            }
        };
        Err(reason)
    }

    /// A route's requirement against the token's scopes, then its step-up.
    fn decide_requirement<'p>(
        &'p self,
        request: &Request<'_>,
        requirement: &Requirement,
        found: &RouteMatch<'_>,
        principal: &Principal,
        now: UnixTime,
    ) -> Decision<'p> {
        let route = Some(found.index);
        match requirement.evaluate(&self.rules, &principal.scopes, found.params()) {
            Evaluation::BadParameter => self.deny(
                request,
                DenyReason::BadParameter,
                route,
                Needed::default(),
                None,
            ),
            Evaluation::Missing { required, missing } => {
                let owned = |scopes: Vec<Cow<'_, str>>| {
                    scopes.into_iter().map(|s| s.into_owned()).collect()
                };
                let scopes = Needed {
                    required: owned(required),
                    missing: owned(missing),
                };
                self.deny(request, DenyReason::InsufficientScope, route, scopes, None)
            }
            Evaluation::Satisfied(alternative) => {
                if self.may_step_up(found.index) {
                    let required = requirement.rendered(alternative, &self.rules, found.params());
                    if let Some(step_up) = self.step_up(found.index, &required, principal, now) {
                        let reason = DenyReason::StepUpRequired;
                        return self.deny(request, reason, route, Needed::default(), Some(step_up));
                    }
                }
                self.authorized(route, principal)
            }
        }
    }

    /// An MCP route, past its token: each JSON-RPC message of the body held to its rule.
    fn decide_mcp<'p>(
        &'p self,
        request: &Request<'_>,
        mcp: &McpRoute,
        index: usize,
        params: &[&str],
        principal: &Principal,
        now: UnixTime,
    ) -> Decision<'p> {
        let route = Some(index);
        let revision = match Revision::of_header(request.mcp_protocol_version) {
            Ok(revision) => revision,
            Err(err) => return self.refuse_mcp(request, err, route, Revision::Stateless),
        };
        let messages = match mcp_messages(request, mcp, revision) {
            Ok(Some(messages)) => messages,
            Ok(None) => {
                return Decision::NeedBody(NeedBody {
                    route: index,
                    max_bytes: mcp.max_body,
                    headers: self.forward_headers(principal),
                })
            }
            Err(err) => return self.refuse_mcp(request, err, route, revision),
        };
        match mcp.evaluate(&self.rules, &principal.scopes, &messages, params) {
            McpEvaluation::Refused(err) => self.refuse_mcp(request, err, route, revision),
            McpEvaluation::BadParameter => self.deny(
                request,
                DenyReason::BadParameter,
                route,
                Needed::default(),
                None,
            ),
            McpEvaluation::Missing { required, missing } => {
                let scopes = Needed {
                    required: required.into_iter().map(|s| s.into_owned()).collect(),
                    missing: missing.into_iter().map(|s| s.into_owned()).collect(),
                };
                self.deny(request, DenyReason::InsufficientScope, route, scopes, None)
            }
            McpEvaluation::Satisfied(required) => {
                if let Some(step_up) = self.step_up(index, &required, principal, now) {
                    let reason = DenyReason::StepUpRequired;
                    return self.deny(request, reason, route, Needed::default(), Some(step_up));
                }
                self.authorized(route, principal)
            }
        }
    }

    /// A refusal of malformed MCP traffic: 400 (413) `invalid_request`, whose body a
    /// 2026-07-28 client reads as a JSON-RPC error for its request.
    fn refuse_mcp<'p>(
        &self,
        request: &Request<'_>,
        err: McpError,
        route: Option<usize>,
        revision: Revision,
    ) -> Decision<'p> {
        let reason = DenyReason::BadBody(err);
        let mut decision = self.deny(request, reason, route, Needed::default(), None);
        if let Decision::Deny(denial) = &mut decision {
            let jsonrpc = matches!(
                err,
                McpError::UnsupportedVersion | McpError::VersionMismatch
            );
            if revision == Revision::Stateless || jsonrpc {
                denial.body = jsonrpc_error(err, request.body, request.mcp_protocol_version);
            }
        }
        decision
    }

    /// Is the request made by the token's possessor? A bound token (RFC 7800 `cnf`) needs
    /// its proof: a DPoP proof for `cnf.jkt` (checked here, and `first_use` asked about
    /// replay), the client certificate for `cnf.x5t#S256`. A token sent as `DPoP` must be
    /// bound to a DPoP key; a bearer token may be refused by `dpop.required`.
    fn possession<R: FnOnce(&ProofId) -> bool, const CHECK_PROOFS: bool>(
        &self,
        request: &Request<'_>,
        scheme: AuthScheme,
        token: &str,
        principal: &Principal,
        now: UnixTime,
        first_use: R,
    ) -> Result<(), TokenError> {
        let confirmation = principal.confirmation.as_ref();
        let (AuthScheme::Dpop, Some(rules)) = (scheme, &self.dpop) else {
            if self.dpop.as_ref().is_some_and(|rules| rules.required())
                && !matches!(confirmation, Some(Confirmation::DpopKey(_)))
            {
                return Err(TokenError::DpopRequired);
            }
            return match confirmation {
                Some(confirmation) => {
                    confirmation.proven_by(request.client_certificate_sha256.as_ref())
                }
                None => Ok(()),
            };
        };
        let Some(Confirmation::DpopKey(jkt)) = confirmation else {
            return Err(TokenError::NotDpopBound);
        };
        if !CHECK_PROOFS {
            return Ok(());
        }
        let proof = single_proof(request.dpop).map_err(TokenError::Proof)?;
        let context = ProofContext {
            method: request.method,
            target: request.path,
            scheme: request.scheme,
            authority: request.authority,
            token,
            jkt,
        };
        let id = rules
            .check(proof, &context, now)
            .map_err(TokenError::Proof)?;
        if !first_use(&id) {
            return Err(TokenError::Proof(crate::dpop::ProofError::Replayed));
        }
        Ok(())
    }

    /// Was the token issued for the resource that governs `path`? (Its own audiences if it
    /// has some, else the issuers'.)
    fn audience_fits(&self, path: &str, principal: &Principal) -> bool {
        match self.resource_for(path) {
            Some(index) if self.resources[index].audiences.is_some() => {
                principal.audiences.fits_resource(index)
            }
            _ => principal.audiences.fits_issuer(),
        }
    }

    /// Can any request of the route at `index` need a step-up? (Saves rendering the
    /// required scopes when no scope has a `max_age` or `acr_values`.)
    fn may_step_up(&self, index: usize) -> bool {
        !self.max_age.is_empty()
            || !self.acr_values.is_empty()
            || !self.routes[index].acr_values.is_empty()
    }

    /// The RFC 9470 step-up a request of the route at `index`, allowed by the scopes
    /// `required`, needs: the smallest `max_age` among those scopes if the authentication
    /// is older, and the `acr_values` of the route and of those scopes if the token's
    /// `acr` is not among each of them.
    fn step_up(
        &self,
        index: usize,
        required: &[alloc::borrow::Cow<'_, str>],
        principal: &Principal,
        now: UnixTime,
    ) -> Option<StepUp> {
        let covered = |scope: &str| required.iter().any(|r| self.rules.covers(scope, r));
        let max_age = self
            .max_age
            .iter()
            .filter(|(scope, _)| covered(scope))
            .map(|(_, age)| *age)
            .min()
            .filter(|max_age| {
                principal
                    .auth_time
                    .is_none_or(|t| now.0 > t.saturating_add(*max_age))
            });
        let lists = core::iter::once(&*self.routes[index].acr_values)
            .filter(|list| !list.is_empty())
            .chain(
                self.acr_values
                    .iter()
                    .filter(|(scope, _)| covered(scope))
                    .map(|(_, list)| &**list),
            );
        let acr = principal.acr.as_deref();
        let mut unmet: Vec<&[Box<str>]> = Vec::new();
        let mut all: Vec<&[Box<str>]> = Vec::new();
        for list in lists {
            all.push(list);
            if !acr.is_some_and(|acr| list.iter().any(|value| **value == *acr)) {
                unmet.push(list);
            }
        }
        let acr_values = match unmet.first() {
            None => Vec::new(),
            // What satisfies every list at once, in the order of the first; when nothing
            // does (the policy asks for classes no one login has), the first unmet list.
            Some(first) => {
                let both: Vec<String> = all[0]
                    .iter()
                    .filter(|value| all.iter().all(|list| list.contains(value)))
                    .map(|value| String::from(&**value))
                    .collect();
                if both.is_empty() {
                    first.iter().map(|value| String::from(&**value)).collect()
                } else {
                    both
                }
            }
        };
        (max_age.is_some() || !acr_values.is_empty()).then_some(StepUp {
            max_age,
            acr_values,
        })
    }

    fn authorized<'p>(&'p self, route: Option<usize>, principal: &Principal) -> Decision<'p> {
        Decision::Allow(Allow {
            reason: AllowReason::Authorized,
            route,
            headers: self.forward_headers(principal),
        })
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
        scopes: Needed,
        step_up: Option<StepUp>,
    ) -> Decision<'p> {
        let Needed { required, missing } = scopes;
        let StepUp {
            max_age,
            acr_values,
        } = step_up.unwrap_or_default();
        let (status, error, description) = refusal(&reason, max_age, &acr_values);
        // RFC 6750 §3 and the MCP authorization spec: `scope` is what the request needs (every
        // scope of the chosen alternative), so a client that replaces its scope with the
        // challenge's keeps what it held; the body also says which of them are missing.
        let scope = (!required.is_empty()).then(|| required.join(" "));
        let missing_text = (!missing.is_empty()).then(|| missing.join(" "));
        let bad_request = matches!(error, Some(ErrorCode::InvalidRequest));
        let acr_text = (!acr_values.is_empty()).then(|| acr_values.join(" "));
        let max_age_text = max_age.map(|age| alloc::format!("{age}"));
        let metadata = if bad_request {
            None
        } else {
            self.governing_resource(request.path)
                .map(|resource| &*resource.metadata_url)
        };
        let params = ChallengeParams {
            // RFC 6750 §3: a 400 carries no realm in section 5's table; every other denial
            // does.
            realm: (!bad_request).then_some(&*self.realm),
            error,
            description,
            scope: scope.as_deref(),
            acr_values: acr_text.as_deref(),
            max_age: max_age_text.as_deref(),
            metadata,
        };
        let challenge = |scheme: &str, algs: Option<&str>| params.header(scheme, algs);
        let www_authenticate = match self.challenge_schemes(request, &reason) {
            Schemes::Bearer => challenge("Bearer", None),
            Schemes::Dpop(algs) => challenge("DPoP", Some(algs)),
            // RFC 9449 §7.1: a resource that takes both says so in one header.
            Schemes::Both(algs) => {
                let mut both = challenge("Bearer", None);
                both.push_str(", ");
                both.push_str(&challenge("DPoP", Some(algs)));
                both
            }
        };
        let body = Body {
            error: error.map_or("unauthorized", ErrorCode::as_str),
            error_description: description,
            scope: scope.as_deref(),
            missing: missing_text.as_deref(),
            acr_values: acr_text.as_deref(),
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
            required,
            missing,
            max_age,
            acr_values,
            route,
            www_authenticate,
            body: serde_json::to_string(&body).unwrap_or_default(),
            allowed_origin,
        })
    }
}

/// The status, challenge `error` and description of a refusal.
fn refusal(
    reason: &DenyReason,
    max_age: Option<u64>,
    acr_values: &[String],
) -> (u16, Option<ErrorCode>, Option<&'static str>) {
    match reason {
        DenyReason::BadHeader(h) => (400, Some(ErrorCode::InvalidRequest), Some(h.not_text())),
        DenyReason::BadBody(e) => (
            e.status(),
            Some(ErrorCode::InvalidRequest),
            Some(e.description()),
        ),
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
        DenyReason::InvalidToken(e @ TokenError::Proof(ProofError::UseNonce(_))) => {
            (401, Some(ErrorCode::UseDpopNonce), Some(e.description()))
        }
        DenyReason::InvalidToken(e @ TokenError::Proof(_)) => (
            401,
            Some(ErrorCode::InvalidDpopProof),
            Some(e.description()),
        ),
        DenyReason::InvalidToken(e @ TokenError::IntrospectionBusy) => (
            503,
            Some(ErrorCode::TemporarilyUnavailable),
            Some(e.description()),
        ),
        DenyReason::InvalidToken(e) => (401, Some(ErrorCode::InvalidToken), Some(e.description())),
        DenyReason::InsufficientScope => (403, Some(ErrorCode::InsufficientScope), None),
        DenyReason::StepUpRequired => (
            401,
            Some(ErrorCode::InsufficientUserAuthentication),
            Some(match (max_age, acr_values.is_empty()) {
                (Some(_), true) => "A more recent authentication is required",
                (None, _) => "A different authentication level is required",
                (Some(_), false) => "A more recent authentication of a different level is required",
            }),
        ),
        DenyReason::NoRoute => (
            403,
            Some(ErrorCode::InsufficientScope),
            Some("No route is configured for this request"),
        ),
    }
}

/// The parameters of a denial's challenge, one per scheme it names.
struct ChallengeParams<'a> {
    realm: Option<&'a str>,
    error: Option<ErrorCode>,
    description: Option<&'a str>,
    scope: Option<&'a str>,
    acr_values: Option<&'a str>,
    max_age: Option<&'a str>,
    metadata: Option<&'a str>,
}

impl ChallengeParams<'_> {
    fn header(&self, scheme: &str, algs: Option<&str>) -> String {
        let mut challenge = Challenge::new(scheme);
        let params = [
            ("realm", self.realm),
            ("error", self.error.map(ErrorCode::as_str)),
            ("error_description", self.description),
            ("scope", self.scope),
            ("acr_values", self.acr_values),
            ("max_age", self.max_age),
            ("algs", algs),
            ("resource_metadata", self.metadata),
        ];
        for (name, value) in params {
            if let Some(value) = value {
                challenge = challenge.with_param(name, value);
            }
        }
        challenge.to_header_value()
    }
}

/// The challenges of a denial.
enum Schemes<'p> {
    Bearer,
    /// With the proof algorithms.
    Dpop(&'p str),
    Both(&'p str),
}

impl Policy {
    /// `DPoP` for a request that came with a DPoP token, for a refused proof, and for every
    /// denial where only DPoP-bound tokens are accepted (`dpop.required`: a client told
    /// `Bearer` would never learn that, nor the algorithms); both for a request without a
    /// token where bearer and DPoP tokens are accepted.
    fn challenge_schemes(&self, request: &Request<'_>, reason: &DenyReason) -> Schemes<'_> {
        let Some(rules) = &self.dpop else {
            return Schemes::Bearer;
        };
        let dpop_request = matches!(credential_of(request.authorization),
            Ok(Some(credential)) if credential.scheme == AuthScheme::Dpop);
        match reason {
            _ if dpop_request => Schemes::Dpop(rules.algs()),
            DenyReason::InvalidToken(TokenError::Proof(_) | TokenError::DpopRequired) => {
                Schemes::Dpop(rules.algs())
            }
            _ if rules.required() => Schemes::Dpop(rules.algs()),
            DenyReason::NoToken => Schemes::Both(rules.algs()),
            _ => Schemes::Bearer,
        }
    }

    /// The resource whose metadata a denial of `target` points at.
    fn governing_resource(&self, target: &str) -> Option<&crate::policy::Resource> {
        match self.resources.as_slice() {
            [] => None,
            // The single `resource` governs every request, even one whose path cannot be
            // normalized.
            [only] if only.prefix.is_empty() => Some(only),
            resources => {
                let path = normalize(target).ok()?;
                self.resource_for(&path).map(|index| &resources[index])
            }
        }
    }
}

/// What an RFC 9470 step-up asks for.
#[derive(Default)]
struct StepUp {
    max_age: Option<u64>,
    acr_values: Vec<String>,
}

/// The scopes of a 403: every scope of the chosen alternative, and those missing.
#[derive(Default)]
struct Needed {
    required: Vec<String>,
    missing: Vec<String>,
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

/// The JSON-RPC messages an MCP request makes, `None` while its body is still to be read.
/// Requests without a JSON-RPC body (GET for the event stream, DELETE to end a session)
/// are held to the route's own requirement, like a response; any other method's body is
/// read (a server may take a PUT as it takes a POST), unless the request is a 2026-07-28
/// one and the upstream checks its mirrored headers.
fn mcp_messages(
    request: &Request<'_>,
    mcp: &McpRoute,
    revision: Revision,
) -> Result<Option<Vec<Message>>, McpError> {
    if matches!(request.method, "GET" | "HEAD" | "DELETE") {
        return Ok(Some(alloc::vec![Message::Response]));
    }
    let Some(body) = request.body else {
        if !(mcp.trust_mirrored_headers && revision == Revision::Stateless) {
            return Ok(None);
        }
        let calls = if request.mcp_headers_repeated {
            Err(McpError::RepeatedHeader)
        } else {
            call_from_headers(request.mcp_method, request.mcp_name)
        };
        return calls.map(Some);
    };
    if request.body_over_limit || body.len() > mcp.max_body {
        return Err(McpError::TooLarge);
    }
    let messages = read_body(body)?;
    check_mirrors(request, revision, &messages)?;
    Ok(Some(messages))
}

/// The mirrored headers against the body: once each, saying what it says, and present
/// where the revision requires them.
fn check_mirrors(
    request: &Request<'_>,
    revision: Revision,
    messages: &[Message],
) -> Result<(), McpError> {
    if request.mcp_headers_repeated {
        return Err(McpError::RepeatedHeader);
    }
    let (method, name) = (request.mcp_method, request.mcp_name);
    check_headers(method, name, messages)?;
    check_revision(
        revision,
        request.mcp_protocol_version,
        method,
        name,
        messages,
    )
}
