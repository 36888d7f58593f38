//! An issuer's compiled introspection settings: what the policy says, without the calls.

use alloc::boxed::Box;
use core::fmt;

use super::assertion::AssertionKey;
use super::limits::BudgetLimits;

/// Default cap on how long an active answer is kept (`cache_seconds`).
pub const DEFAULT_CACHE_SECONDS: u64 = 300;
/// Default time an inactive answer is kept (`inactive_cache_seconds`).
pub const DEFAULT_INACTIVE_CACHE_SECONDS: u64 = 10;
/// Default time the gateway waits for the endpoint (`timeout_ms`).
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// Which of an issuer's tokens are introspected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntrospectedTokens {
    /// Those that are not a JWS (opaque tokens); JWTs are verified locally.
    Opaque,
    /// Every token of the issuer, JWTs too (their signatures are then not checked
    /// locally: the issuer answers for them).
    All,
}

/// How the gateway authenticates to the introspection endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: this `authorization` value (`Basic …`).
    SecretBasic(Box<str>),
    /// `private_key_jwt` (RFC 7523): an assertion signed with this key per call.
    PrivateKeyJwt(AssertionKey),
    /// The credential is named in the environment and was not read (a policy loaded
    /// without one, as the browser package does): no call is made.
    Unread,
}

/// An issuer's compiled introspection settings.
#[derive(Clone)]
pub struct IntrospectionRules {
    pub(crate) cluster: Box<str>,
    pub(crate) scheme: &'static str,
    pub(crate) authority: Box<str>,
    pub(crate) path: Box<str>,
    /// The endpoint's URL: a client assertion's audience.
    pub(crate) endpoint: Box<str>,
    pub(crate) auth: ClientAuth,
    pub(crate) client_id: Box<str>,
    pub(crate) tokens: IntrospectedTokens,
    /// Ask for RFC 9701 answers: a JWT the issuer signs.
    pub(crate) jwt_response: bool,
    pub(crate) cache_seconds: u64,
    pub(crate) inactive_cache_seconds: u64,
    pub(crate) timeout_ms: u64,
    /// How many calls the gateway may make.
    pub(crate) budget: BudgetLimits,
}

impl fmt::Debug for IntrospectionRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionRules")
            .field("cluster", &self.cluster)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("client_id", &self.client_id)
            .field("auth", &"(redacted)")
            .field("tokens", &self.tokens)
            .field("cache_seconds", &self.cache_seconds)
            .field("inactive_cache_seconds", &self.inactive_cache_seconds)
            .field("timeout_ms", &self.timeout_ms)
            .field("budget", &self.budget)
            .finish()
    }
}
