//! # scopegate-core
//!
//! OAuth 2.0 scope decisions that are explicit, identical everywhere, and cheap: the one
//! implementation behind the scopegate gateway filter (proxy-wasm) and the scopegate browser
//! package (wasm-bindgen). `no_std` + `alloc`, no I/O, no clock: time and fetched keys are
//! passed in.
//!
//! - [`scope`]: scope syntax, hierarchical coverage (`order` covers `order:item`), the
//!   `.write` suffix, prefix scopes, progressive requests.
//! - [`Policy`]: the JSON policy document compiled into a route matcher.
//! - [`token`]: bearer extraction, JWS decoding, jwt-compact verification, claim checks.
//! - [`KeySet`]: JWKS parsing.
//! - [`Decision`]: pass, or deny with the RFC 6750 / RFC 9470 challenge and JSON body.
//! - [`parse_challenges`]: RFC 9110 `WWW-Authenticate` parsing.
//! - [`client`]: what a client does with the gateway's answers (scopes held, the next
//!   authorization request, which denials a scope request fixes).
//! - [`gateway`]: the gateway's request path as a sans-IO state machine (cache, keys,
//!   re-fetches, dry run) that the proxy-wasm filter, the benchmarks and the CLI drive.
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

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod acr;
mod algorithm;
mod challenge;
pub mod client;
mod decision;
pub mod denial;
pub mod dpop;
pub mod explain;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "gateway")]
mod hmac;
pub mod introspection;
mod json;
mod jwks;
pub mod lint;
pub mod mcp;
pub mod path;
pub mod policy;
#[cfg(feature = "gateway")]
mod refresh;
mod request;
pub mod route;
pub mod scope;
#[cfg(feature = "gateway")]
pub mod shared_keys;
pub mod shared_memory;
#[cfg(feature = "gateway")]
mod sign;
mod time;
pub mod token;
#[cfg(feature = "gateway")]
mod verify;

// docs/core.md's Rust examples run as doctests (`cargo test -p scopegate-core --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../docs/core.md")]
mod docs_core {}

pub use challenge::{parse_challenges, Challenge, ChallengeParseError, MAX_CHALLENGE_LEN};
pub use decision::{
    Allow, AllowReason, Answer, Decision, Denial, DenyReason, ErrorCode, LocalResponse, NeedBody,
    Served, DECISION_CODES,
};
pub use jwks::{Algorithm, Jwk, JwksError, KeySet, KeyType, SkippedKey, MAX_JWKS_LEN, MAX_KEYS};
pub use policy::{KeyStore, Policy, PolicyDocument, PolicyError};
pub use request::{Request, RequestHeader, RequestReader};
pub use scope::{ScopeRequest, ScopeRules, ScopeSet};
pub use time::UnixTime;
pub use token::{Principal, TokenError};
