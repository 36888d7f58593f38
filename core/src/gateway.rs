//! The gateway's request path as one sans-IO state machine, in the manner of rustls's
//! connection: the host feeds it events (a request's headers, the answer of a fetch it
//! asked for, a timer tick, a request that went away) and it answers with what the host
//! must do. It owns the compiled policy, the fetched keys, their refresh schedule and the
//! cache of verified tokens; it never performs I/O and never reads a clock.
//!
//! | event | method | answer |
//! | --- | --- | --- |
//! | request headers (raw bytes) | [`Gateway::on_request_headers`] | [`Step::Forward`], [`Step::Respond`], [`Step::Wait`] for a key fetch or [`Step::Hold`] for one in flight, [`Step::Introspect`] or [`Step::Park`] for an introspection, or [`Step::ReadBody`] on an MCP route |
//! | request body progress | [`Gateway::body_progress`] | keep buffering, or read the body |
//! | the request body | [`Gateway::on_request_body`] | [`Step::Forward`] or [`Step::Respond`] |
//! | the answer of a fetch | [`Gateway::on_fetch_answer`] | what happened, for the log; then feed the headers of the request that waited for it, and of every request held for that issuer, again |
//! | the answer of an introspection call | [`Gateway::on_introspection_answer`] | what happened, for the log; then feed the headers of the request that sent it, and of every request parked on it, again |
//! | a fetch the host could not send | [`Gateway::on_fetch_answer`] with `Err(())` | the same |
//! | timer tick | [`Gateway::on_tick`] | the fetches now due; and [`Gateway::take_deferred`]: the requests to feed again from the timer ([`Step::Defer`]) |
//! | a request went away | [`Gateway::on_abandoned`] | — |
//! | after any event | [`Gateway::take_ready`] | the held and parked requests to feed again |
//!
//! A host that names its requests ([`Exchange::for_request`]) keeps no queue: the gateway
//! holds the waiting requests by id and hands them back. Counters are events too: the
//! host drains [`Gateway::drain_counts`] into its stats.
//!
//! ```
//! use scopegate_core::gateway::{Exchange, Gateway, Step};
//! use scopegate_core::{Policy, UnixTime};
//! let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
//!   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
//!                "jwks_uri": "http://127.0.0.1:9000/jwks", "jwks_cluster": "idp"}],
//!   "routes": [{"path": "/health", "public": true},
//!              {"path": "/admin", "require": "admin"}]}"#)?;
//! let mut gateway = Gateway::new(policy);
//! let now = UnixTime(1_767_000_000);
//!
//! // At start the root context fetches the issuer's keys.
//! let due = gateway.on_tick(now);
//! assert_eq!((due[0].cluster, due[0].path), ("idp", "/jwks"));
//!
//! let mut exchange = Exchange::default();
//! let headers: [(&[u8], &[u8]); 3] =
//!     [(b":method", b"GET"), (b":path", b"/admin"), (b"user-agent", b"M\xfcller")];
//! let Step::Respond(reply) = gateway.on_request_headers(&mut exchange, &headers, now) else {
//!     panic!("no token: answered locally")
//! };
//! assert_eq!(reply.local_response().status, 401);
//! let counted: Vec<_> = gateway.drain_counts().map(|c| c.to_string()).collect();
//! assert_eq!(counted, ["decision.deny_no_token"]);
//! # Ok::<(), scopegate_core::PolicyError>(())
//! ```

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::decision::{AllowReason, DenyReason};
use crate::decision::{Decision, Denial, LocalResponse, Served};
use crate::dpop::{first_use_shared, ProofId, ReplayCache};
use crate::introspection::{Answers, Budget, Known};
use crate::policy::{KeyStore, Policy};
use crate::refresh::KeyRefresh;
use crate::request::{Request, RequestReader};
use crate::shared_memory::SharedMemory;
use crate::time::UnixTime;
use crate::token::{Principal, TokenError};

mod cache;
mod waiting;

pub use crate::introspection::{IntrospectionCall, MAX_ANSWER_LEN};
pub use crate::refresh::{FetchError, JwksFetch, FETCH_LOST_AFTER_SECONDS};
use cache::TokenCache;
pub use waiting::RequestId;
use waiting::{Resumed, Waiting};

/// How a host hands over a request's serialized metadata (see [`Exchange::with_metadata_lookup`]).
pub type MetadataLookup = fn() -> Option<Vec<u8>>;

/// A header's name and value, as bytes from the host.
pub type HeaderPair<'a> = (&'a [u8], &'a [u8]);

/// The gateway: a compiled policy with its keys, key schedule and token cache.
#[derive(Debug)]
pub struct Gateway {
    policy: Policy,
    keys: KeyStore,
    refresh: KeyRefresh,
    cache: TokenCache,
    /// The DPoP proofs accepted lately, when the policy takes DPoP tokens.
    proofs: ReplayCache,
    /// Introspection answers, and the calls in flight.
    answers: Answers,
    /// Each issuer's introspection budget, by position.
    budgets: Vec<Budget>,
    /// Memory every VM of the host sees, when the host has some (see
    /// [`Gateway::share_memory`]).
    memory: Option<Box<dyn SharedMemory>>,
    counts: Vec<Count>,
    /// Whether the host can resume one request from another's event (see
    /// [`Gateway::set_resumes_others`]).
    resumes_others: bool,
    /// The requests held, parked or deferred, by their host's id.
    waiting: Waiting,
}

/// A request stops at most this many times for introspection (its own call, or another
/// request's that it waits on, and once more if that one was abandoned).
const MAX_INTROSPECTION_WAITS: u8 = 2;

/// What the gateway knows about one request across events. The host keeps one per request
/// and passes it back with each event of that request.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// The host's id of the request, under which the gateway keeps it waiting.
    id: Option<RequestId>,
    /// Whether the gateway has kept it waiting under that id (see [`Exchange::is_kept`]).
    kept: bool,
    /// The issuer whose keys the request waits for.
    waiting_for: Option<usize>,
    /// A request waits for at most one fetch (its own, or one it is held for).
    waited: bool,
    /// The token's principal, kept while an MCP route's body is read so that the token
    /// is verified once per request.
    principal: Option<Rc<Principal>>,
    /// The largest body the matched MCP route reads.
    body_limit: Option<usize>,
    /// Set while [`Gateway::on_request_body_over_limit`] decides.
    body_over_limit: bool,
    /// The SHA-256 of the connection's client certificate, if the host knows it.
    client_certificate_sha256: Option<[u8; 32]>,
    /// How to ask the host for it, as hex digits, when a token is bound to one.
    certificate_lookup: Option<fn() -> Option<Vec<u8>>>,
    /// How to ask the host for the request's metadata, when a token's issuer is verified
    /// by Envoy's `jwt_authn`.
    metadata_lookup: Option<MetadataLookup>,
    /// The DPoP proof this request was let in with: seen again when its body is read.
    proof: Option<ProofId>,
    /// The introspection call this request waits for, and whether it sent it.
    introspection: Option<(u64, bool)>,
    /// How often it stopped for introspection.
    introspection_waits: u8,
}

/// What the host does with the request body seen so far (see [`Gateway::body_progress`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyProgress {
    /// Keep buffering: the body is not complete and within the limit.
    Buffer,
    /// Read the whole buffered body, this many bytes, and give them to
    /// [`Gateway::on_request_body`].
    Read(usize),
    /// The body is over the route's limit: ask [`Gateway::on_request_body_over_limit`],
    /// without reading it.
    OverLimit,
}

impl Exchange {
    /// An exchange for a request on a mutual-TLS connection whose client certificate has
    /// this SHA-256, as 64 hex digits (Envoy's `connection.sha256_peer_certificate_digest`);
    /// other bytes are ignored, and certificate-bound tokens then refused.
    pub fn with_client_certificate_sha256_hex(hex: &[u8]) -> Self {
        Self {
            client_certificate_sha256: crate::request::sha256_from_hex(hex),
            ..Self::default()
        }
    }

    /// An exchange that asks `lookup` for the SHA-256 of the connection's client
    /// certificate (64 hex digits) when, and only when, a request's token is bound to a
    /// certificate (RFC 8705 `cnf.x5t#S256`).
    pub fn with_client_certificate_lookup(lookup: fn() -> Option<Vec<u8>>) -> Self {
        Self {
            certificate_lookup: Some(lookup),
            ..Self::default()
        }
    }

    /// The same exchange, asking `lookup` for the request's metadata (serialized as for
    /// `get_property(["metadata"])`) when, and only when, a token's issuer is verified by
    /// Envoy's `jwt_authn`.
    pub fn with_metadata_lookup(mut self, lookup: MetadataLookup) -> Self {
        self.metadata_lookup = Some(lookup);
        self
    }

    /// The same exchange, for the request its host names `id`. The gateway then keeps the
    /// request waiting itself when it is held or parked (and when it needs a call it cannot
    /// send from where it is fed again: [`Step::Defer`]), and says when to feed it again:
    /// [`Gateway::take_ready`], [`Gateway::take_deferred`]. Without an id the host keeps
    /// its own waiting requests.
    ///
    /// ```
    /// use scopegate_core::gateway::{Exchange, RequestId};
    /// let exchange = Exchange::default().for_request(RequestId(7));
    /// assert_eq!(exchange.id(), Some(RequestId(7)));
    /// ```
    pub fn for_request(mut self, id: RequestId) -> Self {
        self.id = Some(id);
        self
    }

    /// The host's id of the request, if it gave one.
    pub fn id(&self) -> Option<RequestId> {
        self.id
    }

    /// Whether the gateway has kept this request waiting under its id at some point: only
    /// then will it hand the id back ([`Gateway::take_ready`], [`Gateway::take_deferred`]),
    /// so a host need look requests up by id only once this is true, and most requests
    /// (never held or parked) cost it nothing.
    pub fn is_kept(&self) -> bool {
        self.kept
    }

    /// The issuer whose key fetch this request waits for, if any.
    pub fn waiting_for(&self) -> Option<usize> {
        self.waiting_for
    }

    /// The ticket of the introspection call this request waits for, if any.
    pub fn introspection(&self) -> Option<u64> {
        self.introspection.map(|(ticket, _)| ticket)
    }
}

/// What the host does next with a request.
#[derive(Debug)]
pub enum Step<'g> {
    /// Send the request to the upstream after these header changes.
    Forward(Forward<'g>),
    /// Answer the request without the upstream.
    Respond(Reply<'g>),
    /// Send this fetch, then give its answer to [`Gateway::on_fetch_answer`] and feed the
    /// request's headers again; the request waits meanwhile.
    Wait(JwksFetch<'g>),
    /// A fetch of this issuer's keys is in flight (the timer's, or another request's): hold
    /// this request until the host has given that fetch's answer to
    /// [`Gateway::on_fetch_answer`] (or the fetch went away), then feed its headers again.
    /// So a burst of tokens signed by a newly published key waits for the one re-fetch
    /// instead of being refused against the old keys.
    Hold(usize),
    /// Send this introspection call, then give its answer to
    /// [`Gateway::on_introspection_answer`] and feed the request's headers again, and those
    /// of every request parked on its ticket; the request waits meanwhile.
    Introspect(IntrospectionCall<'g>),
    /// Another request's introspection call for the same token is in flight: park this
    /// request until that ticket is answered (or abandoned), then feed its headers again.
    Park(u64),
    /// The request, fed again from another request's event, needs an introspection call of
    /// its own, which a proxy-wasm host cannot send from there (it gives a call's answer to
    /// the running context): pause it; [`Gateway::take_deferred`] hands it back on the
    /// host's next timer tick, where its call is sent as the timer's. Only for an exchange
    /// with an id ([`Exchange::for_request`]).
    Defer,
    /// An MCP route, its token valid: make these header changes, then buffer the request
    /// body (never the response), asking [`Gateway::body_progress`] as it arrives. A host
    /// that must let the headers go on to read the body (proxy-wasm) does so now; the body
    /// itself goes nowhere until [`Gateway::on_request_body`] lets it.
    ReadBody {
        /// The route's limit; a larger body is refused with 413.
        max_bytes: usize,
        /// The header changes, as for [`Step::Forward`].
        forward: Forward<'g>,
    },
}

/// Header changes for a request that goes to the upstream, and for its response.
#[derive(Debug, Default)]
pub struct Forward<'g> {
    /// Headers to remove first: the forwarded-claim headers a client sent, which it must
    /// not be able to forge.
    pub remove: Vec<&'g str>,
    /// Headers to set (verified claims, effective scopes).
    pub set: Vec<(&'g str, String)>,
    /// Why the request passes and the route it matched (by position in the policy), as
    /// [`Decision::Allow`] says; `None` for a denial a dry run lets through, and in
    /// [`Step::ReadBody`], where the body decides.
    pub allowed: Option<(AllowReason, Option<usize>)>,
    /// In dry-run mode, the denial the request would have had; the host logs it.
    pub would_deny: Option<Denial>,
    /// Headers to add to the upstream's response: the next DPoP nonce once the window
    /// turns (RFC 9449 §8.2), so a client never waits for a `use_dpop_nonce` 401.
    pub respond: Vec<(&'static str, String)>,
}

/// A local answer.
#[derive(Debug)]
pub enum Reply<'g> {
    /// A 400, 401 or 403.
    Deny(Denial),
    /// The RFC 9728 metadata document.
    Serve(Served<'g>),
}

impl Reply<'_> {
    /// The status, headers and body to send.
    pub fn local_response(&self) -> LocalResponse<'_> {
        match self {
            Self::Deny(denial) => denial.local_response(),
            Self::Serve(served) => served.local_response(),
        }
    }
}

/// One increment of a counter. Its [`Display`](fmt::Display) is the counter's name under
/// the host's prefix, e.g. `decision.allow_public` or `missing_scope.resource:write`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Count {
    /// A decision, by [`Decision::code`].
    Decision(&'static str),
    /// Why a token was refused, by [`TokenError::code`].
    InvalidToken(&'static str),
    /// A scope a 403 reported missing.
    MissingScope(String),
    /// A token found in the cache.
    CacheHit,
    /// A token verified because it was not in the cache.
    CacheMiss,
    /// A JWKS installed.
    JwksFetchOk,
    /// A JWKS fetch that failed or answered something unusable.
    JwksFetchFailed,
    /// A request held for a fetch in flight ([`Step::Hold`]).
    JwksHold,
    /// A JWKS another VM of the host fetched, installed here.
    JwksShared,
    /// A denial let through in dry-run mode.
    DryRunLetThrough,
    /// Introspection: `hit` (a kept answer), `call` (one sent), `wait` (a request parked
    /// on another's call), `active`, `inactive`, `failed` (the answers), `over_budget` (a
    /// call not made: answered 503).
    Introspection(&'static str),
}

impl Count {
    /// The counter's family and the name within it.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::MissingScope(scope) => ("missing_scope", scope),
            // Every other count has fixed parts.
            fixed => fixed.fixed_parts().unwrap_or_default(),
        }
    }

    /// The family and name of every count but [`Count::MissingScope`], whose name is the
    /// scope: a host keeps its counter ids by these without building a name per request.
    ///
    /// ```
    /// use scopegate_core::gateway::Count;
    ///
    /// assert_eq!(Count::CacheHit.fixed_parts(), Some(("cache", "hit")));
    /// assert_eq!(Count::MissingScope("resource:write".into()).fixed_parts(), None);
    /// ```
    pub fn fixed_parts(&self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::Decision(code) => ("decision", code),
            Self::InvalidToken(code) => ("invalid_token", code),
            Self::MissingScope(_) => return None,
            Self::CacheHit => ("cache", "hit"),
            Self::CacheMiss => ("cache", "miss"),
            Self::JwksFetchOk => ("jwks", "fetch_ok"),
            Self::JwksFetchFailed => ("jwks", "fetch_failed"),
            Self::JwksHold => ("jwks", "hold"),
            Self::JwksShared => ("jwks", "shared"),
            Self::DryRunLetThrough => ("dry_run", "let_through"),
            Self::Introspection(what) => ("introspection", what),
        })
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (family, name) = self.parts();
        write!(f, "{family}.{name}")
    }
}

/// What became of an introspection answer, for the host's log: never the token or the
/// gateway's credentials.
#[derive(Debug)]
pub struct IntrospectionOutcome {
    /// The endpoint's status, if it answered.
    pub status: Option<u16>,
    /// Why the token is refused, if it is.
    pub refused: Option<TokenError>,
}

impl fmt::Display for IntrospectionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.refused, self.status) {
            (None, _) => f.write_str("introspection: the token is active"),
            (Some(err), Some(status)) => write!(f, "introspection (status {status}): {err}"),
            (Some(err), None) => write!(f, "introspection (no answer): {err}"),
        }
    }
}

/// What became of a fetch's answer, for the host's log.
#[derive(Debug)]
pub struct FetchOutcome<'g> {
    /// The issuer.
    pub issuer: &'g str,
    /// How many keys were installed, or why the previous ones stay.
    pub result: Result<usize, FetchError>,
}

impl fmt::Display for FetchOutcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(count) => write!(f, "installed {count} keys of `{}`", self.issuer),
            Err(err) => write!(f, "keeping the previous keys of `{}`: {err}", self.issuer),
        }
    }
}

impl Gateway {
    /// A gateway for `policy`, with no fetched keys yet and an empty token cache.
    pub fn new(policy: Policy) -> Self {
        Self {
            refresh: KeyRefresh::new(&policy),
            cache: TokenCache::new(policy.token_cache_entries()),
            proofs: ReplayCache::new(policy.dpop().map_or(1, |d| d.replay_cache_entries())),
            answers: Answers::new(policy.token_cache_entries().max(64)),
            budgets: (0..policy.issuers().len())
                .map(|at| {
                    let rules = policy.issuers()[at].introspection();
                    Budget::new(at, rules.map(|r| r.budget()).unwrap_or_default())
                })
                .collect(),
            memory: None,
            keys: KeyStore::default(),
            counts: Vec::new(),
            resumes_others: true,
            waiting: Waiting::default(),
            policy,
        }
    }

    /// Says whether the host can resume a waiting request from another request's event
    /// (Envoy can, through `proxy_set_effective_context`; ngx_wasm_module cannot: there it
    /// does nothing). When it cannot, no request is ever held or parked: one that needs
    /// the answer of an introspection call in flight sends a call of its own
    /// ([`Step::Introspect`]), and one that would wait for a key fetch in flight is
    /// decided with the keys at hand.
    ///
    /// ```
    /// use scopegate_core::gateway::Gateway;
    /// use scopegate_core::Policy;
    /// use scopegate_core::gateway::{Exchange, Step};
    /// use scopegate_core::UnixTime;
    /// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "http://127.0.0.1:9000/jwks", "jwks_cluster": "idp"}],
    ///   "routes": [{"path": "/admin", "require": "admin"}]}"#)?;
    /// let mut gateway = Gateway::new(policy);
    /// gateway.set_resumes_others(false);
    /// let now = UnixTime(1_767_000_000);
    /// // The start fetch is in flight (the host sent it on its tick) ...
    /// assert_eq!(gateway.on_tick(now).len(), 1);
    /// // ... and a request for those keys is not held for it: it is decided (401 until the
    /// // keys come), never left waiting on an event that cannot resume it.
    /// let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln";
    /// let auth = format!("Bearer {token}");
    /// let headers = [
    ///     (&b":method"[..], &b"GET"[..]),
    ///     (b":path", b"/admin"),
    ///     (b"authorization", auth.as_bytes()),
    /// ];
    /// let step = gateway.on_request_headers(&mut Exchange::default(), &headers, now);
    /// assert!(matches!(step, Step::Respond(_)), "{step:?}");
    /// # Ok::<(), scopegate_core::PolicyError>(())
    /// ```
    pub fn set_resumes_others(&mut self, resumes: bool) {
        self.resumes_others = resumes;
    }

    /// Hands the gateway memory that every VM of the host sees: DPoP proofs are then
    /// checked against one replay cache for the whole host (one proof sent to each worker
    /// is accepted once), and the introspection calls per second are counted for the whole
    /// host. Without it both are per gateway.
    ///
    /// ```
    /// use scopegate_core::gateway::Gateway;
    /// use scopegate_core::shared_memory::LocalMemory;
    /// use scopegate_core::Policy;
    /// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "http://127.0.0.1:9000/jwks", "jwks_cluster": "idp"}],
    ///   "routes": [{"path": "/health", "public": true}]}"#)?;
    /// let mut gateway = Gateway::new(policy);
    /// // One store for every gateway of the process (the filter hands it the host's).
    /// gateway.share_memory(Box::new(LocalMemory::default()));
    /// # Ok::<(), scopegate_core::PolicyError>(())
    /// ```
    pub fn share_memory(&mut self, memory: Box<dyn SharedMemory>) {
        self.memory = Some(memory);
    }

    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The keys fetched so far.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Whether any issuer's keys are fetched, so the host needs a timer.
    pub fn fetches_keys(&self) -> bool {
        !self.refresh.is_empty()
    }

    /// A request's headers arrived (all of them, as the host hands them over; names in any
    /// case, values any bytes). Feed them again, with the same `exchange`, after the answer
    /// of a fetch this returned in [`Step::Wait`].
    pub fn on_request_headers<'g>(
        &'g mut self,
        exchange: &mut Exchange,
        headers: &[HeaderPair<'_>],
        now: UnixTime,
    ) -> Step<'g> {
        exchange.principal = None;
        exchange.body_limit = None;
        exchange.proof = None;
        let resumed = exchange.id.and_then(|id| self.waiting.resumed(id));
        self.step(exchange, headers, None, resumed, now)
    }

    /// What to do with the body of a request answered [`Step::ReadBody`], when `buffered`
    /// bytes have arrived and `complete` says whether that is all of it.
    pub fn body_progress(exchange: &Exchange, buffered: usize, complete: bool) -> BodyProgress {
        let limit = exchange.body_limit.unwrap_or(0);
        if buffered > limit {
            BodyProgress::OverLimit
        } else if complete {
            BodyProgress::Read(buffered)
        } else {
            BodyProgress::Buffer
        }
    }

    /// Whether a request's headers say its body is empty (`content-length: 0`, without
    /// `transfer-encoding`), so that a host which never reports the end of an empty body
    /// (ngx_wasm_module calls no body callback then) is not waited on. Headers alone cannot
    /// tell more: Envoy hands a chunked HTTP/1.1 request without `transfer-encoding`.
    ///
    /// ```
    /// use scopegate_core::gateway::Gateway;
    /// let empty = [(&b"Content-Length"[..], &b"0"[..])];
    /// assert!(Gateway::declares_no_body(&empty));
    /// assert!(!Gateway::declares_no_body(&[(&b"content-length"[..], &b"2"[..])]));
    /// assert!(!Gateway::declares_no_body(&[]));
    /// ```
    pub fn declares_no_body(headers: &[HeaderPair<'_>]) -> bool {
        let mut empty = false;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"content-length") {
                empty = value.trim_ascii() == b"0";
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return false;
            }
        }
        empty
    }

    /// The body of a request answered [`Step::ReadBody`] (as [`Gateway::body_progress`]
    /// said to read it), with the same headers and `exchange`: the decision.
    pub fn on_request_body<'g>(
        &'g mut self,
        exchange: &mut Exchange,
        headers: &[HeaderPair<'_>],
        body: &[u8],
        now: UnixTime,
    ) -> Step<'g> {
        if exchange.body_limit.take().is_none() {
            // Not asked for: decide from the headers alone, as if no body had come.
            return self.on_request_headers(exchange, headers, now);
        }
        let mut step = self.step(exchange, headers, Some(body), None, now);
        exchange.principal = None;
        exchange.proof = None;
        if let Step::Forward(forward) = &mut step {
            // Made when the gateway asked for the body.
            forward.remove.clear();
            forward.set.clear();
        }
        step
    }

    /// The answer to a request whose body grew past the route's limit
    /// ([`BodyProgress::OverLimit`]), with the same headers and `exchange`: 413, or what
    /// the headers alone already refuse.
    pub fn on_request_body_over_limit<'g>(
        &'g mut self,
        exchange: &mut Exchange,
        headers: &[HeaderPair<'_>],
        now: UnixTime,
    ) -> Step<'g> {
        exchange.body_over_limit = true;
        let step = self.on_request_body(exchange, headers, &[], now);
        exchange.body_over_limit = false;
        step
    }

    fn step<'g>(
        &'g mut self,
        exchange: &mut Exchange,
        headers: &[HeaderPair<'_>],
        body: Option<&[u8]>,
        resumed: Option<Resumed>,
        now: UnixTime,
    ) -> Step<'g> {
        exchange.waiting_for = None;
        exchange.introspection = None;
        let reader = RequestReader::from_pairs(headers.iter().copied());
        let mut request = reader.request();
        request.body = body;
        request.body_over_limit = exchange.body_over_limit;
        request.client_certificate_sha256 = exchange.client_certificate_sha256;
        let (policy, proofs) = (&self.policy, &mut self.proofs);
        let memory = self.memory.as_deref();
        let mut lookup = Lookup {
            policy,
            keys: &self.keys,
            metadata: exchange.metadata_lookup,
            cache: &mut self.cache,
            counts: &mut self.counts,
            answers: &mut self.answers,
            budgets: &mut self.budgets,
            memory,
            refresh: &mut self.refresh,
            resumes_others: self.resumes_others,
            waiting: &mut self.waiting,
            resumed,
            refetch: None,
            pending: None,
        };
        let accepted = &mut exchange.proof;
        // The decision, and the principal it was made for.
        let mut decide = |request: &Request<'_>, known: Option<Rc<Principal>>| {
            let mut used = None;
            let first_use = |proof: &ProofId| {
                let replays = (memory, &mut *proofs);
                first_use_of(proof, &mut *accepted, policy, replays, now)
            };
            let decision = policy.decide_with_proofs(
                request,
                now,
                |token| {
                    let principal = match known {
                        Some(principal) => principal,
                        None => lookup.principal(token, now)?,
                    };
                    used = Some(Rc::clone(&principal));
                    Ok::<_, TokenError>(principal)
                },
                first_use,
            );
            (decision, used)
        };
        let (mut decision, mut used) = decide(&request, exchange.principal.clone());
        // The client certificate is looked up only for a token bound to one, so that other
        // requests make no host call for it.
        if certificate_mismatch(&decision) && request.client_certificate_sha256.is_none() {
            if let Some(digest) = certificate_digest(exchange.certificate_lookup) {
                request.client_certificate_sha256 = Some(digest);
                (decision, used) = decide(&request, used);
            }
        }
        if let Decision::NeedBody(need) = &decision {
            exchange.principal = used;
            exchange.body_limit = Some(need.max_bytes);
        }
        if let Some(step) = lookup.wait(exchange, now) {
            return step;
        }
        record(&mut self.counts, &decision);
        let nonce = || next_nonce(policy, exchange.proof.as_ref(), request.origin, now);
        answer_step(policy, &mut self.counts, decision, headers, nonce)
    }

    /// The answer of a key fetch of `issuer`: its status and body, or `Err(())` when there
    /// was none (the host could not send it, the connection failed, it was cancelled).
    pub fn on_fetch_answer(
        &mut self,
        issuer: usize,
        answer: Result<(u16, &[u8]), ()>,
        now: UnixTime,
    ) -> FetchOutcome<'_> {
        let result = self
            .refresh
            .completed(&self.policy, issuer, answer, &mut self.keys, now);
        self.counts.push(match result {
            Ok(_) => Count::JwksFetchOk,
            Err(_) => Count::JwksFetchFailed,
        });
        let issuer = self
            .policy
            .issuers()
            .get(issuer)
            .map_or("?", |i| i.issuer());
        FetchOutcome { issuer, result }
    }

    /// The answer of the introspection call `ticket` (sent for `issuer`): its status and
    /// body, or `Err(())` when there was none (the host could not send it, the connection
    /// failed, it timed out). Every request that waits on the ticket is then fed again.
    pub fn on_introspection_answer(
        &mut self,
        ticket: u64,
        issuer: usize,
        answer: Result<(u16, &[u8]), ()>,
        now: UnixTime,
    ) -> IntrospectionOutcome {
        let rules = self
            .policy
            .issuers()
            .get(issuer)
            .and_then(|i| i.introspection());
        let (result, status) = match (rules, answer) {
            (Some(rules), Ok((200, body))) => {
                let principal = rules.principal(&self.policy, issuer, body, &self.keys, now);
                (principal, Some(200))
            }
            (_, Ok((status, _))) => (Err(TokenError::IntrospectionUnavailable), Some(status)),
            (_, Err(())) => (Err(TokenError::IntrospectionUnavailable), None),
        };
        let outcome = IntrospectionOutcome {
            status,
            refused: result.as_ref().err().cloned(),
        };
        self.counts.push(Count::Introspection(match &result {
            Ok(_) => "active",
            Err(TokenError::IntrospectionUnavailable) => "failed",
            Err(TokenError::Inactive) => "inactive",
            // Active, but its claims do not pass: counted with the decision.
            Err(_) => "active",
        }));
        let refused_seconds = rules.map_or(0, |r| r.inactive_cache_seconds);
        self.answers.finish(ticket, result, refused_seconds, now);
        if let Some(budget) = self.budgets.get_mut(issuer) {
            budget.settle(ticket);
        }
        self.waiting.answered(ticket);
        outcome
    }

    /// A timer tick: the key fetches now due (at start, on each refresh, and the retries
    /// after failures).
    pub fn on_tick(&mut self, now: UnixTime) -> Vec<JwksFetch<'_>> {
        self.refresh.due(&self.policy, now)
    }

    /// The request of `exchange` went away (the host calls this for every request that
    /// ends, or only for those that wait). The fetch it waited for, which the host cancels,
    /// is not waited for by the next request; an introspection call it sent is forgotten,
    /// and the requests parked on it are ready to be fed again ([`Gateway::take_ready`]),
    /// one of them then introspecting anew.
    pub fn on_abandoned(&mut self, exchange: &mut Exchange) {
        if let Some(issuer) = exchange.waiting_for.take() {
            self.refresh.abandon(issuer);
        }
        if let Some((ticket, true)) = exchange.introspection.take() {
            self.answers.abandon(ticket);
            self.budgets.iter_mut().for_each(|b| b.settle(ticket));
            self.waiting.answered(ticket);
        }
        if let (Some(id), true) = (exchange.id, exchange.kept) {
            self.waiting.forget(id);
        }
    }

    /// The requests to feed again now, from the event at hand: those parked on a call that
    /// was answered or went away, and those held for a key fetch no longer in flight. Ask
    /// after each event (a call's answer, a tick, a request gone); feed each again with
    /// [`Gateway::on_request_headers`], in its own context.
    ///
    /// ```
    /// use scopegate_core::gateway::{Exchange, Gateway, RequestId, Step};
    /// use scopegate_core::{Policy, UnixTime};
    /// let policy = Policy::from_json(r#"{"version": 1, "realm": "api",
    ///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
    ///                "jwks_uri": "http://127.0.0.1:9000/jwks", "jwks_cluster": "idp"}],
    ///   "routes": [{"path": "/admin", "require": "admin"}]}"#)?;
    /// let mut gateway = Gateway::new(policy);
    /// let now = UnixTime(1_767_000_000);
    /// // The start fetch is in flight: a request for those keys is held for it.
    /// assert_eq!(gateway.on_tick(now).len(), 1);
    /// let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.\
    ///     eyJpc3MiOiJodHRwczovL2lkcCIsImF1ZCI6ImFwaSIsInN1YiI6ImEiLCJleHAiOjE3NjcwMDM2MDB9.c2ln";
    /// let auth = format!("Bearer {token}");
    /// let headers = [(&b":method"[..], &b"GET"[..]), (b":path", b"/admin"),
    ///                (b"authorization", auth.as_bytes())];
    /// let mut exchange = Exchange::default().for_request(RequestId(7));
    /// let step = gateway.on_request_headers(&mut exchange, &headers, now);
    /// assert!(matches!(step, Step::Hold(0)), "{step:?}");
    /// assert!(gateway.take_ready(now).is_empty(), "still in flight");
    /// // The fetch failed: request 7 is fed again (and refused, as there are no keys).
    /// let _ = gateway.on_fetch_answer(0, Err(()), now);
    /// assert_eq!(gateway.take_ready(now), [RequestId(7)]);
    /// # Ok::<(), scopegate_core::PolicyError>(())
    /// ```
    pub fn take_ready(&mut self, now: UnixTime) -> Vec<RequestId> {
        let refresh = &self.refresh;
        self.waiting
            .take_ready(|issuer| refresh.in_flight(issuer, now))
    }

    /// The requests answered [`Step::Defer`], to feed again from the host's timer, where
    /// the introspection call each needs is sent as the timer's.
    pub fn take_deferred(&mut self) -> Vec<RequestId> {
        self.waiting.take_deferred()
    }

    /// Whether any request waits for the timer ([`Gateway::take_deferred`]).
    pub fn has_deferred(&self) -> bool {
        self.waiting.has_deferred()
    }

    /// Whether any request waits at all: a host asks [`Gateway::take_ready`] only then.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The host does not send the fetch this request was handed ([`Step::Wait`]): another
    /// VM of the host sends it (see [`crate::shared_keys`]). The request is held for it as
    /// for [`Step::Hold`], and is ready again once the fetch is not in flight here
    /// ([`Gateway::on_fetch_deferred`] ends it when the other VM's fetch is over).
    pub fn on_fetch_left_to_another(&mut self, exchange: &mut Exchange) {
        if let (Some(issuer), Some(id)) = (exchange.waiting_for.take(), exchange.id) {
            self.waiting.hold(issuer, id);
            exchange.kept = true;
        }
    }

    /// Every issuer's key fetch (due or not): what a host that shares keys between its VMs
    /// looks up in its shared data on each tick (see [`crate::shared_keys`]).
    pub fn key_sources(&self) -> Vec<JwksFetch<'_>> {
        self.refresh.sources(&self.policy)
    }

    /// A keys record another VM of the host wrote (see [`crate::shared_keys`]): its keys
    /// are installed if they are good, and the next refresh is rescheduled from its fetch.
    /// A fetch of this issuer in flight here is no longer waited for (its requests held
    /// are fed again).
    pub fn on_keys_shared(&mut self, issuer: usize, record: &[u8]) -> FetchOutcome<'_> {
        let result = match crate::shared_keys::decode_keys(record) {
            Some((at, jwks)) => self.refresh.installed_elsewhere(
                &self.policy,
                issuer,
                jwks,
                UnixTime(at),
                &mut self.keys,
            ),
            None => Err(FetchError::Jwks(crate::jwks::JwksError::Json(
                "the shared keys record has no fetch time".into(),
            ))),
        };
        if result.is_ok() {
            self.counts.push(Count::JwksShared);
        }
        let issuer = self
            .policy
            .issuers()
            .get(issuer)
            .map_or("?", |i| i.issuer());
        FetchOutcome { issuer, result }
    }

    /// The fetch of `issuer` is left to another VM of the host: not in flight here, and
    /// not due before `retry_at`. Requests held for it are fed again once it is not in
    /// flight; a host that waits for the other VM's keys keeps them held until then.
    pub fn on_fetch_deferred(&mut self, issuer: usize, retry_at: UnixTime) {
        self.refresh.defer(issuer, retry_at);
    }

    /// The fetch a request was handed for `issuer` ([`Step::Wait`]) is not sent: another VM's
    /// keys for it came in first and are installed with [`Gateway::on_keys_shared`]. The
    /// request is then fed again; it may still fetch if those keys lack its `kid`.
    pub fn on_fetch_unsent(&mut self, issuer: usize) {
        self.refresh.unsent(issuer);
    }

    /// The lease to write when this VM's fetch of `issuer`, made under `lease`, is over.
    pub fn lease_after_fetch(
        &self,
        issuer: usize,
        lease: &crate::shared_keys::Lease,
        succeeded: bool,
        now: UnixTime,
    ) -> crate::shared_keys::Lease {
        let refresh = self.refresh.refresh_seconds(&self.policy, issuer);
        lease.after_fetch(succeeded, now.0, refresh)
    }

    /// Whether a key fetch of `issuer` is in flight: the requests held for it
    /// ([`Step::Hold`]) are fed again once it is not.
    pub fn fetch_in_flight(&self, issuer: usize, now: UnixTime) -> bool {
        self.refresh.in_flight(issuer, now)
    }

    /// The counter increments since the last call.
    pub fn drain_counts(&mut self) -> impl Iterator<Item = Count> + '_ {
        self.counts.drain(..)
    }
}

/// What an introspected token needs before it can be decided.
enum Pending {
    /// A call for it is in flight: wait for this ticket.
    Wait(u64),
    /// Introspect it at this issuer (`true`: again, beside a call in flight).
    Start(usize, String, bool),
}

/// Is `proof` used for the first time, in this worker or (with shared memory) any? The
/// request's own proof, seen again once its body has come, counts as its first use.
fn first_use_of(
    proof: &ProofId,
    accepted: &mut Option<ProofId>,
    policy: &Policy,
    (memory, proofs): (Option<&dyn SharedMemory>, &mut ReplayCache),
    now: UnixTime,
) -> bool {
    if *accepted == Some(*proof) {
        return true;
    }
    let fresh = match (memory, policy.dpop()) {
        (Some(memory), Some(rules)) => {
            first_use_shared(memory, rules.replay_cache_entries(), proof, now)
        }
        _ => proofs.first_use(proof, now),
    };
    if fresh {
        *accepted = Some(*proof);
    }
    fresh
}

/// What finding the principal of a token not seen in this exchange may use, and what it
/// leaves for the step: an issuer whose keys to fetch, an introspection to wait on.
struct Lookup<'p, 'a> {
    policy: &'p Policy,
    keys: &'a KeyStore,
    metadata: Option<MetadataLookup>,
    cache: &'a mut TokenCache,
    counts: &'a mut Vec<Count>,
    answers: &'a mut Answers,
    budgets: &'a mut [Budget],
    memory: Option<&'a dyn SharedMemory>,
    refresh: &'a mut KeyRefresh,
    resumes_others: bool,
    waiting: &'a mut Waiting,
    /// How the request is being fed again, if it is.
    resumed: Option<Resumed>,
    refetch: Option<usize>,
    pending: Option<Pending>,
}

impl<'p> Lookup<'p, '_> {
    fn principal(&mut self, token: &str, now: UnixTime) -> Result<Rc<Principal>, TokenError> {
        match self.policy.introspecting(token) {
            // Signed answers (RFC 9701) are verified with the issuer's keys: fetched first,
            // as for a JWT, when none have come yet.
            Some(issuer) if lacks_answer_keys(self.policy, self.keys, issuer) => {
                self.refetch = Some(issuer);
                Err(TokenError::KeysUnavailable { issuer })
            }
            Some(issuer) => introspected(
                self.answers,
                self.counts,
                (issuer, token),
                (self.budgets, self.memory),
                self.resumes_others,
                now,
                &mut self.pending,
            ),
            None => {
                let host = (self.keys, self.metadata);
                verify(
                    self.policy,
                    self.cache,
                    self.counts,
                    host,
                    token,
                    now,
                    &mut self.refetch,
                )
            }
        }
    }

    /// What the request waits for, if anything: the introspection of its token, or keys
    /// of its issuer (once per exchange).
    fn wait(&mut self, exchange: &mut Exchange, now: UnixTime) -> Option<Step<'p>> {
        if let Some(pending) = self.pending.take() {
            let (answers, budgets) = (&mut *self.answers, &mut *self.budgets);
            let step = introspection_step(
                self.policy,
                answers,
                budgets,
                self.counts,
                exchange,
                pending,
                now,
            );
            if let Some(step) = step {
                return Some(self.queue(exchange, step));
            }
        }
        // A request fed again sends no fetch of its own: it is decided with the keys at hand.
        let issuer = self
            .refetch
            .filter(|_| !exchange.waited && self.resumed.is_none())?;
        let step = key_step(
            self.policy,
            self.refresh,
            self.counts,
            self.resumes_others,
            issuer,
            now,
        )?;
        exchange.waiting_for = matches!(step, Step::Wait(_)).then_some(issuer);
        exchange.waited = true;
        Some(self.queue(exchange, step))
    }

    /// Keeps a request with an id waiting under it: held, parked, or deferred to the
    /// timer when it was fed again from another request's event and needs a call.
    fn queue(&mut self, exchange: &mut Exchange, step: Step<'p>) -> Step<'p> {
        let Some(id) = exchange.id else {
            return step;
        };
        match (&step, self.resumed) {
            (Step::Hold(issuer), _) => self.waiting.hold(*issuer, id),
            (Step::Park(ticket), _) => self.waiting.park(*ticket, id),
            (Step::Introspect(_), Some(Resumed::ByAnother)) => {
                give_up_call(self.answers, self.budgets, exchange);
                self.waiting.defer(id);
                exchange.kept = true;
                return Step::Defer;
            }
            // Sent as the timer's, the call does not go away with this request, which
            // waits for it as a parked one does.
            (Step::Introspect(call), Some(Resumed::ByTimer)) => {
                exchange.introspection = Some((call.ticket, false));
                self.waiting.park(call.ticket, id);
            }
            _ => return step,
        }
        exchange.kept = true;
        step
    }
}

/// Gives up the introspection call a request was just handed, without counting it as one
/// of the request's stops: it is fed again later, where it can send it.
fn give_up_call(answers: &mut Answers, budgets: &mut [Budget], exchange: &mut Exchange) {
    if let Some((ticket, true)) = exchange.introspection.take() {
        answers.abandon(ticket);
        budgets.iter_mut().for_each(|b| b.settle(ticket));
        exchange.introspection_waits = exchange.introspection_waits.saturating_sub(1);
    }
}

/// The step for a decision: forward (with the forwarded headers the client sent removed,
/// the verified ones set, a new DPoP nonce when one is due), answer, or read the body.
fn answer_step<'g>(
    policy: &'g Policy,
    counts: &mut Vec<Count>,
    decision: Decision<'g>,
    headers: &[HeaderPair<'_>],
    nonce: impl FnOnce() -> Vec<(&'static str, String)>,
) -> Step<'g> {
    let remove = || {
        policy
            .forwarded_headers()
            .filter(|name| {
                headers
                    .iter()
                    .any(|(sent, _)| sent.eq_ignore_ascii_case(name.as_bytes()))
            })
            .collect()
    };
    match decision {
        Decision::Allow(allow) => Step::Forward(Forward {
            remove: remove(),
            set: allow.headers,
            allowed: Some((allow.reason, allow.route)),
            would_deny: None,
            respond: nonce(),
        }),
        Decision::Serve(served) => Step::Respond(Reply::Serve(served)),
        Decision::Deny(denial) if policy.dry_run() => {
            counts.push(Count::DryRunLetThrough);
            Step::Forward(Forward {
                remove: remove(),
                set: Vec::new(),
                allowed: None,
                would_deny: Some(denial),
                respond: Vec::new(),
            })
        }
        Decision::Deny(denial) => Step::Respond(Reply::Deny(denial)),
        Decision::NeedBody(need) => Step::ReadBody {
            max_bytes: need.max_bytes,
            forward: Forward {
                remove: remove(),
                set: need.headers,
                allowed: None,
                would_deny: None,
                respond: Vec::new(),
            },
        },
    }
}

/// The step of a request whose token waits on introspection: parked behind the call in
/// flight for it, or the call to send; `None` when it has waited long enough, or the call
/// cannot be made (then its answer is a failure).
fn introspection_step<'g>(
    policy: &'g Policy,
    answers: &mut Answers,
    budgets: &mut [Budget],
    counts: &mut Vec<Count>,
    exchange: &mut Exchange,
    pending: Pending,
    now: UnixTime,
) -> Option<Step<'g>> {
    if exchange.introspection_waits >= MAX_INTROSPECTION_WAITS {
        return None;
    }
    match pending {
        Pending::Wait(ticket) => {
            exchange.introspection = Some((ticket, false));
            exchange.introspection_waits += 1;
            counts.push(Count::Introspection("wait"));
            Some(Step::Park(ticket))
        }
        Pending::Start(issuer, token, again) => {
            let rules = policy.issuers().get(issuer).and_then(|i| i.introspection());
            let started = match again {
                true => answers.start_again(&token),
                false => answers.start(&token, now),
            };
            // Refused by the caller when every kept entry is a call in flight.
            let (Some(rules), Some(ticket)) = (rules, started) else {
                return None;
            };
            if let Some(budget) = budgets.get_mut(issuer) {
                budget.hold(ticket);
            }
            if let Some(call) = rules.call(&token, issuer, ticket, now) {
                exchange.introspection = Some((ticket, true));
                exchange.introspection_waits += 1;
                counts.push(Count::Introspection("call"));
                return Some(Step::Introspect(call));
            }
            // Nothing to sign the client assertion with: a failed call.
            let failed = Err(TokenError::IntrospectionUnavailable);
            answers.finish(ticket, failed, 0, now);
            budgets.iter_mut().for_each(|b| b.settle(ticket));
            None
        }
    }
}

/// The step of a request whose token needs keys of `issuer` not yet fetched: the fetch to
/// make, or a hold behind the fetch in flight (when the host resumes held requests).
fn key_step<'g>(
    policy: &'g Policy,
    refresh: &mut KeyRefresh,
    counts: &mut Vec<Count>,
    resumes_others: bool,
    issuer: usize,
    now: UnixTime,
) -> Option<Step<'g>> {
    if let Some(fetch) = refresh.request_early(policy, issuer, now) {
        return Some(Step::Wait(fetch));
    }
    if resumes_others && refresh.in_flight(issuer, now) {
        counts.push(Count::JwksHold);
        return Some(Step::Hold(issuer));
    }
    None
}

/// Whether `issuer` takes signed introspection answers but has no keys to verify them yet.
fn lacks_answer_keys(policy: &Policy, keys: &KeyStore, issuer: usize) -> bool {
    policy
        .issuers()
        .get(issuer)
        .and_then(|i| i.introspection())
        .is_some_and(|rules| rules.jwt_response)
        && keys.keys_for(policy, issuer).is_none()
}

/// The `DPoP-Nonce` (and, for a browser, its CORS exposure) for the response to a request
/// let in with a proof whose nonce is from the previous window.
fn next_nonce(
    policy: &Policy,
    proof: Option<&ProofId>,
    origin: Option<&str>,
    now: UnixTime,
) -> Vec<(&'static str, String)> {
    let nonces = policy.dpop().and_then(|rules| rules.nonce());
    let (Some(nonces), Some(proof)) = (nonces, proof) else {
        return Vec::new();
    };
    if !proof.nonce_stale {
        return Vec::new();
    }
    let mut headers = alloc::vec![("dpop-nonce", nonces.issue(now))];
    if origin.is_some() {
        headers.push(("access-control-expose-headers", String::from("DPoP-Nonce")));
    }
    headers
}

/// An introspected token: its kept answer, or what it waits for (in `pending`); refused
/// with 503 when it would need a call over the issuer's budget.
#[allow(clippy::too_many_arguments)]
fn introspected(
    answers: &mut Answers,
    counts: &mut Vec<Count>,
    (issuer, token): (usize, &str),
    (budgets, memory): (&mut [Budget], Option<&dyn SharedMemory>),
    resumes_others: bool,
    now: UnixTime,
    pending: &mut Option<Pending>,
) -> Result<Rc<Principal>, TokenError> {
    let known = answers.get(token, now);
    let calls =
        matches!(known, Known::Unknown) || (matches!(known, Known::InFlight(_)) && !resumes_others);
    if calls
        && !budgets
            .get_mut(issuer)
            .is_some_and(|b| b.admit(now, memory))
    {
        counts.push(Count::Introspection("over_budget"));
        return Err(TokenError::IntrospectionBusy);
    }
    match known {
        Known::Answer(answer) => {
            counts.push(Count::Introspection("hit"));
            answer
        }
        Known::InFlight(_) if !resumes_others => {
            *pending = Some(Pending::Start(issuer, String::from(token), true));
            Err(TokenError::IntrospectionUnavailable)
        }
        Known::InFlight(ticket) => {
            *pending = Some(Pending::Wait(ticket));
            Err(TokenError::IntrospectionUnavailable)
        }
        Known::Unknown => {
            *pending = Some(Pending::Start(issuer, String::from(token), false));
            Err(TokenError::IntrospectionUnavailable)
        }
    }
}

/// A token not known to this request: from the cache, else verified (and cached).
fn verify(
    policy: &Policy,
    cache: &mut TokenCache,
    counts: &mut Vec<Count>,
    (keys, metadata): (&KeyStore, Option<MetadataLookup>),
    token: &str,
    now: UnixTime,
    refetch: &mut Option<usize>,
) -> Result<Rc<Principal>, TokenError> {
    let none = || None;
    let metadata: &dyn Fn() -> Option<Vec<u8>> = match &metadata {
        Some(lookup) => lookup,
        None => &none,
    };
    if let Some(hit) = cache.get(token, now) {
        counts.push(Count::CacheHit);
        // Each request brings its own payload: a token jwt_authn verified once is taken
        // only with this request's metadata holding it again.
        match &hit.payload {
            Some(payload) => {
                let issuer = policy.issuers.get(hit.principal.issuer);
                let issuer = issuer.ok_or(TokenError::NotVerifiedByHost)?;
                crate::token::host_verifies(issuer, payload, metadata)?;
            }
            // Never stored so; refused rather than taken unchecked should it ever be.
            None if policy.verified_by_host(hit.principal.issuer) => {
                return Err(TokenError::NotVerifiedByHost)
            }
            None => {}
        }
        return Ok(hit.principal);
    }
    counts.push(Count::CacheMiss);
    let (principal, payload) =
        crate::token::authenticate_keeping_payload(policy, token, keys, metadata, now)
            .inspect_err(|err: &TokenError| *refetch = err.refetch_issuer())?;
    let principal = Rc::new(principal);
    cache.insert(token, Rc::clone(&principal), payload, now);
    Ok(principal)
}

fn record(counts: &mut Vec<Count>, decision: &Decision<'_>) {
    // Not a decision yet: the body decides, and is counted then.
    if let Decision::NeedBody(_) = decision {
        return;
    }
    counts.push(Count::Decision(decision.code()));
    let Decision::Deny(denial) = decision else {
        return;
    };
    if let DenyReason::InvalidToken(err) = &denial.reason {
        counts.push(Count::InvalidToken(err.code()));
    }
    counts.extend(denial.missing.iter().cloned().map(Count::MissingScope));
}

/// Whether a token bound to a client certificate was refused for want of the right one.
fn certificate_mismatch(decision: &Decision<'_>) -> bool {
    matches!(decision, Decision::Deny(denial)
        if denial.reason == DenyReason::InvalidToken(TokenError::CertificateMismatch))
}

/// The SHA-256 of the connection's client certificate, asked of the host.
fn certificate_digest(lookup: Option<fn() -> Option<Vec<u8>>>) -> Option<[u8; 32]> {
    lookup
        .and_then(|lookup| lookup())
        .and_then(|hex| crate::request::sha256_from_hex(&hex))
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::ToString;
    use core::cell::RefCell;

    use base64ct::{Base64UrlUnpadded, Encoding};
    use serde_json::json;

    use super::*;
    use crate::token::jwt_authn::{encode::metadata, JWT_AUTHN};

    std::thread_local! {
        /// What the host's metadata holds for the request being decided.
        static METADATA: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }

    fn lookup() -> Option<Vec<u8>> {
        METADATA.with(|m| m.borrow().clone())
    }

    fn holding(payload: Option<&serde_json::Value>) {
        let bytes = payload.map(|p| metadata(JWT_AUTHN, &json!({ "payload": p })));
        METADATA.with(|m| *m.borrow_mut() = bytes);
    }

    /// A token of an issuer jwt_authn verifies, taken from the cache on its second request,
    /// is still taken only with that request's metadata holding its payload.
    #[test]
    fn a_cached_token_jwt_authn_verified_needs_its_payload_in_each_request() {
        let policy = Policy::from_json(
            r#"{"version": 1, "realm": "api",
                "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
                             "jwt_authn": {"payload_in_metadata": "payload"}}],
                "routes": [{"path": "/r", "require": "read"}]}"#,
        )
        .unwrap();
        let claims = json!({"iss": "https://idp", "aud": "api", "exp": 2000, "scope": "read"});
        let encode =
            |v: &serde_json::Value| Base64UrlUnpadded::encode_string(v.to_string().as_bytes());
        let token = format!(
            "{}.{}.c2ln",
            encode(&json!({"alg": "ES256"})),
            encode(&claims)
        );
        let keys = KeyStore::default();
        let mut cache = TokenCache::new(8);
        let mut counts = Vec::new();
        let now = UnixTime(1000);
        let mut run = |counts: &mut Vec<Count>| {
            let host = (&keys, Some(lookup as MetadataLookup));
            verify(&policy, &mut cache, counts, host, &token, now, &mut None)
        };

        holding(None);
        assert_eq!(run(&mut counts).unwrap_err(), TokenError::NotVerifiedByHost);
        holding(Some(&claims));
        assert!(
            run(&mut counts).is_ok(),
            "verified by the host: taken, and cached"
        );
        assert!(run(&mut counts).is_ok(), "again, from the cache");
        assert_eq!(counts.last(), Some(&Count::CacheHit));
        // The same token on a request whose metadata lacks its payload, or holds another
        // token's: refused, cached or not.
        holding(None);
        assert_eq!(run(&mut counts).unwrap_err(), TokenError::NotVerifiedByHost);
        let other = json!({"iss": "https://idp", "aud": "api", "exp": 2000, "scope": "admin"});
        holding(Some(&other));
        assert_eq!(run(&mut counts).unwrap_err(), TokenError::NotVerifiedByHost);
        assert_eq!(counts.last(), Some(&Count::CacheHit));
    }
}
