//! # scopegate-core
//!
//! OAuth 2.0 scope decisions that are explicit, identical everywhere, and cheap: the one
//! implementation behind the scopegate gateway filter (proxy-wasm) and the scopegate browser
//! package (wasm-bindgen). `no_std` + `alloc`, no I/O, no clock: time and fetched keys are
//! passed in.
//!
//! The crate root holds what every host uses; the modules below it are for one kind of host.
//!
//! - The policy: [`Policy`] (the JSON document compiled into a route matcher, read through
//!   [`PolicyDocument`], whose sections are in [`document`]), [`Issuer`], [`KeySource`],
//!   [`KeyStore`], [`KeySet`] (JWKS parsing), [`PolicyError`].
//! - Requests: [`Request`], [`normalize_path`], [`request_target`], [`RouteTemplate`].
//! - Scopes: [`ScopeSet`], [`ScopeRules`] (hierarchical coverage: `order` covers
//!   `order:item`; the `.write` suffix; prefix scopes), [`ScopeRequest`] (progressive
//!   requests), [`is_valid_scope`].
//! - Tokens: [`bearer_token`], [`decode_token`], [`scopes_of`], [`Principal`], [`TokenError`].
//! - Answers: [`Decision`] (pass, or deny with the RFC 6750 / RFC 9470 challenge and JSON
//!   body), [`parse_challenges`] (RFC 9110 `WWW-Authenticate`), [`read_denial`] (a denial as
//!   a client reads it back).
//! - [`gateway`]: the gateway's request path as a sans-IO state machine (cache, keys,
//!   re-fetches, waiting requests, dry run) that the proxy-wasm filter, the benchmarks and the
//!   CLI drive; [`shared_keys`] and [`shared_memory`]: what the host's VMs share.
//! - [`client`]: what a client does with the gateway's answers (scopes held, the next
//!   authorization request, which denials a scope request fixes).
//! - [`explain`] and [`lint`]: why a request is decided as it is, and what in a policy is
//!   likely a mistake (the CLI's `explain` and `lint`).
//!
//! ```
//! use scopegate_core::{Decision, KeyStore, Policy, Request, UnixTime};
//!
//! let policy = Policy::from_json(r#"{
//!   "version": 1,
//!   "realm": "orders-api",
//!   "issuers": [{"issuer": "https://idp.example", "audiences": ["orders-api"],
//!                "algorithms": ["RS256"], "jwks_uri": "https://idp.example/jwks",
//!                "jwks_cluster": "idp"}],
//!   "routes": [
//!     {"path": "/api/public/**", "public": true},
//!     {"path": "/api/resources", "methods": ["POST"], "require": "resource:write"}
//!   ]
//! }"#)?;
//!
//! let keys = KeyStore::default();
//! let now = UnixTime(1_767_000_000);
//! let decision = policy.decide(&Request::new("GET", "/api/public/docs"), &keys, now);
//! assert!(matches!(decision, Decision::Allow(_)));
//!
//! // `..` is resolved before matching: this is not a public route.
//! let decision = policy.decide(&Request::new("POST", "/api/public/../resources"), &keys, now);
//! assert_eq!(decision.status(), Some(401));
//! # Ok::<(), scopegate_core::PolicyError>(())
//! ```
#![no_std]
#![warn(missing_docs)]
#![warn(unnameable_types)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod acr;
mod algorithm;
mod challenge;
pub mod client;
mod decision;
mod denial;
mod dpop;
pub mod explain;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "gateway")]
mod hmac;
mod introspection;
mod json;
mod jwks;
pub mod lint;
mod mcp;
mod path;
mod policy;
#[cfg(feature = "gateway")]
mod refresh;
mod request;
mod route;
mod scope;
#[cfg(feature = "gateway")]
pub mod shared_keys;
pub mod shared_memory;
#[cfg(feature = "gateway")]
mod sign;
mod time;
mod token;
#[cfg(any(feature = "rsa", feature = "ecdsa", feature = "eddsa"))]
mod verify;

/// Internals that the fuzz targets (`fuzz/`) and the V8 benchmark (`bench/`) drive directly;
/// not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::dpop::first_use_shared;
    pub use crate::introspection::Budget;
    pub use crate::mcp::normalize_uri;
    pub use crate::token::jwt_authn;
}

// docs/core.md's Rust examples run as doctests (`cargo test -p scopegate-core --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../docs/core.md")]
mod docs_core {}

pub use challenge::{parse_challenges, Challenge, ChallengeParseError, MAX_CHALLENGE_LEN};
pub use decision::{
    Allow, AllowReason, Answer, Decision, Denial, DenyReason, ErrorCode, LocalResponse, NeedBody,
    Served, DECISION_CODES,
};
pub use denial::{read_denial, ReadDenial};
pub use dpop::{DpopRules, NonceAge, NonceRules, ProofError, ProofId};
pub use introspection::{BudgetLimits, IntrospectedTokens, IntrospectionRules};
pub use jwks::{Algorithm, Jwk, JwksError, KeySet, KeyType, SkippedKey, MAX_JWKS_LEN, MAX_KEYS};
pub use mcp::McpError;
pub use path::{normalize as normalize_path, request_target, PathError, MAX_PATH_LEN};
pub use policy::{
    document, Issuer, KeySource, KeyStore, Policy, PolicyDocument, PolicyError, RemoteJwks,
    DEFAULT_SEPARATOR, DEFAULT_WRITE_SUFFIX,
};
pub use request::{Request, RequestHeader, RequestReader};
pub use route::{RouteTemplate, TemplateError, MAX_PARAMS};
pub use scope::{is_valid_scope, ScopeError, ScopeRequest, ScopeRules, ScopeSet};
pub use time::UnixTime;
pub use token::{
    bearer_token, decode as decode_token, scopes_of, AudienceMatch, BearerError, Confirmation,
    Principal, TokenError, UnverifiedToken, DEFAULT_SCOPE_CLAIMS, MAX_TOKEN_LEN,
};
