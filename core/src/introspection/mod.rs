//! Token introspection (RFC 7662): tokens the gateway cannot judge alone, such as opaque
//! access tokens, are sent to their issuer's introspection endpoint, and the answer's
//! members (`active`, `scope`, `exp`, `aud`, `iss`, `sub`, `cnf`, `acr`, `auth_time`, …)
//! feed the same decision as a JWT's claims.
//!
//! The core builds the call and reads its answer; the host sends it
//! ([`Step::Introspect`](crate::gateway::Step::Introspect)). Answers are kept in
//! [`Answers`]: active ones until `exp`, capped by the issuer's `cache_seconds`; inactive
//! ones for `inactive_cache_seconds`; a failed call for one second, long enough for every
//! request that waited on it to read the failure. An endpoint that is down, slow or
//! answers garbage gives 401 `introspection_unavailable`, never a pass.
//!
//! ```
//! use scopegate_core::{Policy, UnixTime};
//! let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
//!   "issuers": [{"issuer": "https://idp", "audiences": ["api"],
//!     "introspection": {"endpoint": "http://127.0.0.1:9000/introspect", "cluster": "idp",
//!                       "client_id": "gateway", "client_secret": "s3cret"}}],
//!   "routes": [{"path": "/api", "require": "read"}]}"#)?;
//! let rules = policy.issuers()[0].introspection().unwrap();
//! let call = rules.call("opaque-token", 0, 7, UnixTime(1_767_000_000)).unwrap();
//! assert_eq!((call.cluster, call.path, call.body.as_str()),
//!            ("idp", "/introspect", "token=opaque-token&token_type_hint=access_token"));
//! // The secret goes in the `authorization` header only, never in a log line.
//! assert!(!format!("{rules:?}").contains("s3cret"));
//!
//! let answer = br#"{"active": true, "scope": "read", "aud": "api", "exp": 1767000600}"#;
//! let keys = scopegate_core::KeyStore::default();
//! let principal = rules.principal(&policy, 0, answer, &keys, UnixTime(1_767_000_000)).unwrap();
//! assert!(principal.scopes.contains("read"));
//! # Ok::<(), scopegate_core::PolicyError>(())
//! ```

// Without the gateway (the browser's pre-check) no call is made, yet the rules are compiled
// from the same document so that both builds accept the same policies.
#![cfg_attr(not(feature = "gateway"), allow(dead_code, unused_imports))]

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use crate::policy::Policy;
use crate::time::UnixTime;
use crate::token::{principal_of_claims, Principal, TokenError};

#[cfg(feature = "gateway")]
mod answers;
pub(crate) mod assertion;
#[cfg(feature = "gateway")]
pub(crate) mod budget;
pub(crate) mod form;
pub(crate) mod limits;
pub(crate) mod rules;

#[cfg(feature = "gateway")]
pub(crate) use answers::{Answers, Known};
#[cfg(feature = "gateway")]
pub use budget::Budget;
use form::form_encode;
pub use limits::BudgetLimits;
pub use rules::{ClientAuth, IntrospectedTokens, IntrospectionRules};

/// Longest answer read, in bytes: a token's worth of claims.
pub const MAX_ANSWER_LEN: usize = 16 * 1024;
/// One introspection call for the host to send: `POST path` over `cluster`.
#[cfg(feature = "gateway")]
#[derive(Debug)]
pub struct IntrospectionCall<'g> {
    /// Which call this is: give it back with the answer.
    pub ticket: u64,
    /// Position of the issuer in the policy's `issuers`.
    pub issuer: usize,
    /// The cluster to send it over.
    pub cluster: &'g str,
    /// The request's `:scheme`, from the endpoint's URL.
    pub scheme: &'static str,
    /// The request's `:authority`.
    pub authority: &'g str,
    /// The request's `:path`.
    pub path: &'g str,
    /// The request headers besides the pseudo-headers. An `authorization` value holds the
    /// client secret: hosts must not log it.
    pub headers: Vec<(&'static str, &'g str)>,
    /// The form-encoded body (with a client assertion, for `private_key_jwt`).
    pub body: String,
    /// How long to wait for the answer, in milliseconds.
    pub timeout_ms: u64,
}

impl IntrospectionRules {
    /// How many calls the gateway may make.
    pub fn budget(&self) -> BudgetLimits {
        self.budget
    }

    /// Which tokens it introspects.
    pub fn tokens(&self) -> IntrospectedTokens {
        self.tokens
    }

    /// The call that introspects `token` for the issuer at `issuer`, at `now`; `None` when
    /// this build cannot sign the client assertion `private_key_jwt` needs.
    #[cfg(feature = "gateway")]
    pub fn call(
        &self,
        token: &str,
        issuer: usize,
        ticket: u64,
        now: UnixTime,
    ) -> Option<IntrospectionCall<'_>> {
        let mut body = String::with_capacity(token.len() + 40);
        body.push_str("token=");
        form_encode(token, &mut body);
        body.push_str("&token_type_hint=access_token");
        let mut headers = Vec::with_capacity(3);
        headers.push(("content-type", "application/x-www-form-urlencoded"));
        headers.push((
            "accept",
            if self.jwt_response {
                "application/token-introspection+jwt"
            } else {
                "application/json"
            },
        ));
        match &self.auth {
            ClientAuth::SecretBasic(authorization) => {
                headers.push(("authorization", &**authorization))
            }
            ClientAuth::PrivateKeyJwt(key) => {
                let mut jti = Vec::with_capacity(token.len() + 16);
                jti.extend_from_slice(token.as_bytes());
                jti.extend_from_slice(&ticket.to_be_bytes());
                jti.extend_from_slice(&now.0.to_be_bytes());
                let assertion = key.assertion(&self.client_id, &self.endpoint, &jti, now.0)?;
                body.push_str("&client_id=");
                form_encode(&self.client_id, &mut body);
                body.push_str(
                    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
                );
                body.push_str("&client_assertion=");
                body.push_str(&assertion);
            }
            ClientAuth::Unread => return None,
        }
        Some(IntrospectionCall {
            ticket,
            issuer,
            cluster: &self.cluster,
            scheme: self.scheme,
            authority: &self.authority,
            path: &self.path,
            headers,
            body,
            timeout_ms: self.timeout_ms,
        })
    }

    /// Reads an answer's body (status 200 already checked by the caller) into the
    /// principal it describes, or why the token is refused: inactive, from another issuer,
    /// or claims that fail the same checks as a JWT's.
    ///
    /// With `jwt_response` the body is an RFC 9701 JWT: signed by the issuer with one of
    /// its keys in `keys`, `typ` `token-introspection+jwt`, `iss` the issuer, `aud` the
    /// gateway's client id, and the answer in `token_introspection`. Anything else, a plain
    /// JSON answer included, is no answer.
    pub fn principal(
        &self,
        policy: &Policy,
        issuer: usize,
        body: &[u8],
        keys: &crate::policy::KeyStore,
        now: UnixTime,
    ) -> Result<Principal, TokenError> {
        if body.len() > MAX_ANSWER_LEN || !crate::json::depth_within(body, crate::json::MAX_DEPTH) {
            return Err(TokenError::IntrospectionUnavailable);
        }
        let answer: Value = if self.jwt_response {
            self.signed_answer(policy, issuer, body, keys)?
        } else {
            serde_json::from_slice(body).map_err(|_| TokenError::IntrospectionUnavailable)?
        };
        let Value::Object(members) = &answer else {
            return Err(TokenError::IntrospectionUnavailable);
        };
        match members.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Err(TokenError::Inactive),
            _ => return Err(TokenError::IntrospectionUnavailable),
        }
        let Some(trusted) = policy.issuers().get(issuer) else {
            return Err(TokenError::IntrospectionUnavailable);
        };
        // RFC 7662 makes `iss` optional; when the endpoint names one, it is this issuer.
        match members.get("iss") {
            None => {}
            Some(Value::String(iss)) if iss.as_str() == trusted.issuer() => {}
            Some(Value::String(iss)) => return Err(TokenError::UntrustedIssuer(iss.clone())),
            Some(_) => {
                return Err(TokenError::InvalidClaim {
                    claim: String::from("iss"),
                    expected: "a string",
                })
            }
        }
        let mut principal = principal_of_claims(policy, issuer, &answer, now, false)?;
        principal.expires_at = principal
            .expires_at
            .min(now.0.saturating_add(self.cache_seconds));
        Ok(principal)
    }
}

impl IntrospectionRules {
    /// The `token_introspection` member of an RFC 9701 answer, after its signature, `typ`,
    /// `iss` and `aud`.
    fn signed_answer(
        &self,
        policy: &Policy,
        issuer: usize,
        body: &[u8],
        keys: &crate::policy::KeyStore,
    ) -> Result<Value, TokenError> {
        let unavailable = |_| TokenError::IntrospectionUnavailable;
        let jws = core::str::from_utf8(body).map_err(unavailable)?.trim();
        let mut claims = crate::token::issuer_signed_claims(
            policy,
            issuer,
            jws,
            "token-introspection+jwt",
            keys,
        )
        .map_err(|_| TokenError::IntrospectionUnavailable)?;
        let trusted = policy.issuers().get(issuer).map(|i| i.issuer());
        let aud_fits = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == *self.client_id,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.client_id)),
            _ => false,
        };
        if claims.get("iss").and_then(Value::as_str) != trusted || !aud_fits {
            return Err(TokenError::IntrospectionUnavailable);
        }
        match claims.get_mut("token_introspection").map(Value::take) {
            Some(answer @ Value::Object(_)) => Ok(answer),
            _ => Err(TokenError::IntrospectionUnavailable),
        }
    }
}
