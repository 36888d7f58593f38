//! # scopegate-filter
//!
//! A proxy-wasm HTTP filter that enforces a scopegate policy in Envoy, or in nginx through
//! ngx_wasm_module. The plugin configuration is the policy document. Everything about
//! scopes, tokens, routes and statuses is decided by `scopegate-core`; this crate only
//! translates between proxy-wasm calls and core calls:
//!
//! - the root context compiles the policy once in `on_configure` (a broken policy makes it
//!   return false, so the host refuses the configuration), fetches remote JWKS over the
//!   policy's cluster on a timer, and owns the verified-token cache and the counters;
//! - each HTTP context reads the request headers, asks the core for a decision, and either
//!   forwards the request (with the forwarded-claim headers replaced) or answers it; on an
//!   MCP route the core asks for the request body first, which the context buffers up to
//!   the route's limit (responses are never buffered).
//!
//! Header values are bytes: the filter never turns a header into a `String` (see
//! [`host`]), so no byte a client sends can trap the VM.
//!
//! Host calls used (all in proxy-wasm ABI 0.2.1 and implemented by ngx_wasm_module):
//! `proxy_log`, `proxy_get_current_time_nanoseconds`, `proxy_set_tick_period_milliseconds`,
//! `proxy_get_buffer_bytes`, `proxy_get_header_map_pairs`,
//! `proxy_replace_header_map_value`, `proxy_remove_header_map_value`,
//! `proxy_send_local_response`, `proxy_continue_stream`, `proxy_http_call`,
//! `proxy_define_metric`, `proxy_increment_metric`.

mod host;
mod sharing;
mod stats;
mod vec_map;

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use scopegate_core::gateway::{
    BodyProgress, Exchange, Forward, Gateway, JwksFetch, RequestId, Step,
};
use scopegate_core::gateway::{IntrospectionCall, MAX_ANSWER_LEN};
use scopegate_core::{Policy, UnixTime, MAX_JWKS_LEN};

use sharing::{Permit, Sharing};
use stats::Stats;
use vec_map::VecMap;

/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(Root { id, ..Root::default() })
    });
}}

/// What the root context shares with its HTTP contexts. The host runs one VM per worker
/// thread, so each worker has its own copy; nothing here crosses threads.
struct Shared {
    gateway: RefCell<Gateway>,
    stats: RefCell<Stats>,
    /// The requests the gateway keeps waiting ([`Exchange::is_kept`]), by context id, for
    /// the ids it hands back to feed again; a request is listed from its first wait to its
    /// end, so the others cost no lookup here.
    requests: RefCell<VecMap<u32, Weak<RefCell<Request>>>>,
    /// Introspection calls the root context sent for deferred requests: call token to
    /// ticket and issuer.
    root_calls: RefCell<Vec<(u32, u64, usize)>>,
    /// The root context's id: calls sent for deferred requests belong to it.
    root_id: u32,
    /// Set while the root context feeds the deferred requests again: a call one of them
    /// sends is the root context's.
    feeding_deferred: Cell<bool>,
    /// The fetched keys this VM shares with the host's other VMs.
    sharing: Sharing,
    /// Whether the host is ngx_wasm_module (learned on the first request; see
    /// [`Shared::is_ngx`]).
    ngx: Cell<Option<bool>>,
}

impl Shared {
    /// Whether the host is ngx_wasm_module, which differs from Envoy in two ways the
    /// filter must translate: its `:authority` is made up (`server_name` or the machine's
    /// name, and the local port), and `proxy_set_effective_context` does nothing, so one
    /// request cannot be resumed from another's event (the gateway is told so).
    fn is_ngx(&self) -> bool {
        if let Some(ngx) = self.ngx.get() {
            return ngx;
        }
        let ngx = host::is_ngx_wasm_module();
        if ngx {
            // Learned only once the gateway has been told: asked again otherwise.
            let Ok(mut gateway) = self.gateway.try_borrow_mut() else {
                return true;
            };
            gateway.set_resumes_others(false);
            info!("ngx_wasm_module: `Host` stands for `:authority`, and no request waits for another's call");
        }
        self.ngx.set(Some(ngx));
        ngx
    }

    /// The request's header pairs as the core reads them: on ngx_wasm_module the `Host`
    /// header stands in for the made-up `:authority` (a DPoP proof's `htu` names what the
    /// client asked for).
    fn request_pairs<'h>(&self, headers: &'h host::HeaderMap) -> Option<Vec<host::Pair<'h>>> {
        let mut pairs = headers.pairs().ok()?;
        if self.is_ngx() {
            host::authority_from_host_header(&mut pairs);
        }
        Some(pairs)
    }

    /// Records the gateway's counter events.
    fn count(&self, gateway: &mut Gateway) {
        let mut stats = self.stats.borrow_mut();
        for count in gateway.drain_counts() {
            stats.count(&count);
        }
    }

    /// Takes the answer of a JWKS fetch of `issuer` (`None`: there was none).
    fn fetched(&self, gateway: &mut Gateway, issuer: usize, answer: Option<(u16, Vec<u8>)>) {
        let (taken, now) = answer_now(answer.as_ref());
        let outcome = gateway.on_fetch_answer(issuer, taken, now);
        let installed = outcome.result.is_ok();
        match &outcome.result {
            Ok(_) => info!("{outcome}"),
            Err(_) => warn!("{outcome}"),
        }
        let jwks = answer
            .as_ref()
            .filter(|_| installed)
            .map(|(_, body)| body.as_slice());
        self.sharing.fetched(gateway, issuer, jwks, now);
        self.count(gateway);
    }

    /// Takes the answer of the introspection call `ticket` (`None`: there was none).
    fn introspected(&self, ticket: u64, issuer: usize, answer: Option<(u16, Vec<u8>)>) {
        let Ok(mut gateway) = self.gateway.try_borrow_mut() else {
            return;
        };
        let (answer, now) = answer_now(answer.as_ref());
        let outcome = gateway.on_introspection_answer(ticket, issuer, answer, now);
        if outcome.refused.is_some() {
            info!("{outcome}");
        }
        self.count(&mut gateway);
    }

    /// Feeds again, each in its own context, the requests the gateway says are ready
    /// (parked on a call that was answered or went away, held for a key fetch that is
    /// over). The gateway lets none of them send a call from here (the SDK would route its
    /// answer to the context that is running now): one that needs a call is deferred to the
    /// root context's next tick ([`Root::feed_deferred`]).
    fn feed_ready(&self) {
        let waiting = self
            .gateway
            .try_borrow()
            .is_ok_and(|gateway| gateway.has_waiting());
        if !waiting {
            return;
        }
        let Some(now) = now() else {
            return;
        };
        let Ok(ready) = self.gateway.try_borrow_mut().map(|mut g| g.take_ready(now)) else {
            return;
        };
        self.feed_again(&ready, "a call it waited for");
    }

    /// Feeds each request again, in its own context.
    fn feed_again(&self, ids: &[RequestId], what: &str) {
        for id in ids {
            let request = self.requests.borrow().get(&id.0).and_then(Weak::upgrade);
            let Some(request) = request else {
                continue;
            };
            let Ok(mut request) = request.try_borrow_mut() else {
                continue;
            };
            if proxy_wasm::hostcalls::set_effective_context(id.0).is_err() {
                continue;
            }
            if let Action::Continue = request.run() {
                if let Err(err) = host::resume_request() {
                    warn!("cannot resume a request after {what}: {err}");
                    self.stats.borrow_mut().count_host_error();
                }
            }
        }
    }
}

/// Sends an introspection call from the running context; `None` if the host refuses it.
/// The call's `authorization` header holds the gateway's secret: it is never logged.
fn dispatch_introspection(call: &IntrospectionCall<'_>) -> Option<u32> {
    let mut headers = vec![
        (":method", "POST"),
        (":scheme", call.scheme),
        (":path", call.path),
        (":authority", call.authority),
    ];
    headers.extend(call.headers.iter().copied());
    let timeout = Duration::from_millis(call.timeout_ms);
    let body = Some(call.body.as_bytes());
    match proxy_wasm::hostcalls::dispatch_http_call(call.cluster, headers, body, vec![], timeout) {
        Ok(token) => Some(token),
        Err(status) => {
            warn!(
                "cannot introspect over cluster `{}`: {status:?}",
                call.cluster
            );
            None
        }
    }
}

/// Sends a JWKS fetch from the running context; `None` if the host refuses it.
fn dispatch_fetch(fetch: &JwksFetch<'_>) -> Option<u32> {
    let headers = vec![
        (":method", "GET"),
        (":scheme", fetch.scheme),
        (":path", fetch.path),
        (":authority", fetch.authority),
        ("accept", "application/json"),
    ];
    match proxy_wasm::hostcalls::dispatch_http_call(
        fetch.cluster,
        headers,
        None,
        vec![],
        FETCH_TIMEOUT,
    ) {
        Ok(token) => Some(token),
        Err(status) => {
            warn!(
                "cannot fetch the JWKS of issuer {} over cluster `{}`: {status:?}",
                fetch.issuer, fetch.cluster
            );
            None
        }
    }
}

/// A call's answer as the gateway takes it (`Err`: there was none), and the time. Without a
/// clock the answer is taken as none: the gateway's schedule retries.
fn answer_now(answer: Option<&(u16, Vec<u8>)>) -> (Result<(u16, &[u8]), ()>, UnixTime) {
    let answer = answer
        .map(|(status, body)| (*status, body.as_slice()))
        .ok_or(());
    match now() {
        Some(now) => (answer, now),
        None => (Err(()), UnixTime(0)),
    }
}

/// The host's time; `None` (logged) if the host cannot tell it. Nothing is decided or
/// scheduled without it: a made-up time would either accept expired tokens or push the key
/// refresh schedule out of reach.
fn now() -> Option<UnixTime> {
    match host::now_seconds() {
        Ok(seconds) => Some(UnixTime(seconds)),
        Err(err) => {
            error!("the host cannot tell the time: {err}");
            None
        }
    }
}

#[derive(Default)]
struct Root {
    id: u32,
    shared: Option<Rc<Shared>>,
    /// JWKS fetches in flight from the root context: call token to issuer.
    fetches: VecMap<u32, usize>,
}

impl Root {
    /// Sends the fetches due, through the leases of the host's shared data, so that one
    /// VM of the host fetches for all. Never from `on_configure`: a host may refuse calls
    /// there (ngx_wasm_module traps), and Envoy may be running a VM only to check the
    /// configuration, which would hold a lease and never use it.
    fn fetch_due(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let Ok(mut gateway) = shared.gateway.try_borrow_mut() else {
            return;
        };
        let Some(now) = now() else {
            return;
        };
        shared.sharing.start(now);
        shared.sharing.sync(&mut gateway, now);
        let sharing = &shared.sharing;
        let due: Vec<(usize, Result<Option<u32>, UnixTime>)> = gateway
            .on_tick(now)
            .iter()
            .map(|fetch| {
                let sent = match sharing.permit(fetch, false, now) {
                    Permit::Send => Ok(dispatch_fetch(fetch)),
                    Permit::Leave(until) => Err(until),
                };
                (fetch.issuer, sent)
            })
            .collect();
        for (issuer, sent) in due {
            match sent {
                Ok(Some(token)) => {
                    self.fetches.insert(token, issuer);
                }
                Ok(None) => shared.fetched(&mut gateway, issuer, None),
                Err(until) => gateway.on_fetch_deferred(issuer, until),
            }
        }
        shared.count(&mut gateway);
        drop(gateway);
        shared.feed_ready();
    }

    /// Feeds the deferred requests again from the root context: the first sends the
    /// introspection call its token needs (it belongs to the root context, which no
    /// request outlives), the others park on it.
    fn feed_deferred(&self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let Ok(deferred) = shared
            .gateway
            .try_borrow_mut()
            .map(|mut g| g.take_deferred())
        else {
            return;
        };
        shared.feeding_deferred.set(true);
        shared.feed_again(&deferred, "introspection");
        shared.feeding_deferred.set(false);
        let _ = proxy_wasm::hostcalls::set_effective_context(self.id);
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let deferred_call = {
            let mut calls = shared.root_calls.borrow_mut();
            let at = calls.iter().position(|(sent, _, _)| *sent == token);
            at.map(|at| calls.swap_remove(at))
        };
        if let Some((_, ticket, issuer)) = deferred_call {
            let answer = call_answer(headers, body_size, MAX_ANSWER_LEN);
            shared.introspected(ticket, issuer, answer);
            shared.feed_ready();
            let _ = proxy_wasm::hostcalls::set_effective_context(self.id);
            return;
        }
        let Some(issuer) = self.fetches.remove(&token) else {
            return;
        };
        let answer = call_answer(headers, body_size, MAX_JWKS_LEN);
        if let Ok(mut gateway) = shared.gateway.try_borrow_mut() {
            shared.fetched(&mut gateway, issuer, answer);
        };
        shared.feed_ready();
    }
}

/// The status and body of a finished `dispatch_http_call`; no headers means no answer.
fn call_answer(headers: usize, body_size: usize, limit: usize) -> Option<(u16, Vec<u8>)> {
    if headers == 0 {
        return None;
    }
    let map = host::call_response_headers().ok()?;
    let status = map
        .pairs()
        .ok()?
        .into_iter()
        .find(|(name, _)| *name == b":status")
        .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok())?;
    // One byte past the limit is enough for the core to refuse the body as too large.
    let body = host::call_response_body(body_size.min(limit + 1)).unwrap_or_default();
    Some((status, body))
}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let Some(config) = self.get_plugin_configuration() else {
            error!("no plugin configuration: give the policy document as `configuration`");
            return false;
        };
        let Ok(text) = std::str::from_utf8(&config) else {
            error!("the plugin configuration is not UTF-8 text");
            return false;
        };
        // Secrets written `{"env": "NAME"}` come from the VM's environment (WASI `environ_get`:
        // Envoy's `vm_config.environment_variables`, nginx's `env` directive).
        let env = |name: &str| std::env::var(name).ok();
        let policy = match Policy::from_json_with_env(text, &env) {
            Ok(policy) => policy,
            Err(err) => {
                error!("policy rejected: {err}");
                return false;
            }
        };
        info!(
            "policy loaded: {} issuers, realm `{}`{}",
            policy.issuers().len(),
            policy.realm(),
            if policy.dry_run() { ", dry run" } else { "" }
        );
        let gateway = Gateway::new(policy);
        let remote = gateway.fetches_keys();
        let shared = Rc::new(Shared {
            gateway: RefCell::new(gateway),
            stats: RefCell::new(Stats::new()),
            requests: RefCell::new(VecMap::new()),
            root_calls: RefCell::new(Vec::new()),
            root_id: self.id,
            feeding_deferred: Cell::new(false),
            sharing: Sharing::default(),
            ngx: Cell::new(None),
        });
        self.fetches.clear();
        // Keys (and, later, DPoP replays) are shared through the host's shared data; a
        // host without it (nginx without a `shm_kv` zone) traps on the first read, so the
        // read is made here, at load, after a line that says what to add.
        info!("checking the host's shared data (nginx: `shm_kv * 1m;` in the `wasm {{}}` block)");
        if let Err(err) = host::shared_data(sharing::PROBE) {
            error!(
                "the host refuses shared data ({err}): in nginx, add `shm_kv * 1m;` to the \
                 `wasm {{}}` block"
            );
            return false;
        }
        // DPoP replays and the introspection budget are then checked for the whole host.
        shared
            .gateway
            .borrow_mut()
            .share_memory(Box::new(sharing::HostMemory));
        // The first fetch goes out on the first tick (100 ms from now) or with the first
        // request that needs the keys, whichever comes first.
        if remote {
            if let Err(err) = shared.sharing.start_timer() {
                warn!("cannot set the timer, so keys are never refreshed: {err}");
            }
        }
        self.shared = Some(shared);
        true
    }

    fn on_tick(&mut self) {
        let deferred = self.shared.as_ref().is_some_and(|shared| {
            shared
                .gateway
                .try_borrow()
                .is_ok_and(|gateway| gateway.has_deferred())
        });
        if deferred {
            self.feed_deferred();
        }
        let works = self
            .shared
            .as_ref()
            .is_some_and(|shared| shared.sharing.tick_works());
        if works {
            self.fetch_due();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = Rc::clone(self.shared.as_ref()?);
        let request = Rc::new(RefCell::new(Request {
            shared: Rc::clone(&shared),
            context_id,
            exchange: Exchange::with_client_certificate_lookup(host::client_certificate_sha256_hex)
                .with_metadata_lookup(host::request_metadata)
                .for_request(RequestId(context_id)),
            fetch: None,
            introspection: None,
            body: (0, false),
            reading: None,
            respond: Vec::new(),
            listed: false,
        }));
        Some(Box::new(Filter { request }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One request's context: its state is shared (weakly, through [`Shared::requests`]) with
/// the events that may feed it again.
struct Filter {
    request: Rc<RefCell<Request>>,
}

/// One request.
struct Request {
    shared: Rc<Shared>,
    context_id: u32,
    exchange: Exchange,
    /// The call token and issuer of the key fetch this request waits for.
    fetch: Option<(u32, usize)>,
    /// The call token, ticket and issuer of the introspection call this request sent.
    introspection: Option<(u32, u64, usize)>,
    /// The request body as the host reported it so far: bytes buffered, and whether that
    /// is all of it.
    body: (usize, bool),
    /// The request headers while the gateway waits for the body (an MCP route): proxy-wasm
    /// hosts stop handing them over once they went on to the upstream.
    reading: Option<host::HeaderMap>,
    /// Headers to add to the response (the next DPoP nonce).
    respond: Vec<(&'static str, String)>,
    /// Whether it is in [`Shared::requests`].
    listed: bool,
}

/// What the header phase leads to, once the gateway is no longer borrowed.
enum Next {
    Act(Action),
    /// The fetch of this issuer's keys could not be sent: decide again without it.
    Again(usize),
    /// The introspection call (ticket, issuer) could not be sent: decide again, refused.
    Unsent(u64, usize),
    /// Another worker fetches the keys this request was handed the fetch of: held for them.
    LeftToAnother,
    /// Another worker has fetched this issuer's keys: install them and decide again.
    KeysShared(usize),
    ReadBody(host::HeaderMap),
}

impl Request {
    /// A fetch of keys the gateway asks for: installed from another worker that has them,
    /// sent, left to the worker that sends it (held until its keys come), or, when none of
    /// these can be, given up.
    fn on_key_fetch(&mut self, shared: &Shared, fetch: &JwksFetch<'_>, now: UnixTime) -> Next {
        // Another worker may have fetched the keys since this one's last tick.
        if shared.sharing.has_newer_keys(fetch) {
            return Next::KeysShared(fetch.issuer);
        }
        let sent = match shared.sharing.permit(fetch, true, now) {
            Permit::Send => dispatch_fetch(fetch).map(Ok),
            // A host that cannot resume this request from the tick that would see the
            // other worker's keys: it fetches them itself.
            Permit::Leave(_) if shared.is_ngx() => dispatch_fetch(fetch).map(Ok),
            Permit::Leave(until) => Some(Err(until)),
        };
        match sent {
            Some(Ok(token)) => {
                self.fetch = Some((token, fetch.issuer));
                Next::Act(Action::Pause)
            }
            // Another worker fetches these keys: held until they come (or it fails).
            Some(Err(until)) => {
                shared.sharing.watch(fetch.issuer, until);
                Next::LeftToAnother
            }
            // Decided again without waiting: the exchange has had its one fetch.
            None => Next::Again(fetch.issuer),
        }
    }

    /// An introspection call the gateway asks for: sent by this request, or, for a deferred
    /// request fed again by the root context, sent with the root context as the effective
    /// one (the host ties the call to it; the gateway parks the request on it).
    fn on_introspection_call(&mut self, shared: &Shared, call: &IntrospectionCall<'_>) -> Next {
        if !shared.feeding_deferred.get() {
            return match dispatch_introspection(call) {
                Some(token) => {
                    self.introspection = Some((token, call.ticket, call.issuer));
                    Next::Act(Action::Pause)
                }
                None => Next::Unsent(call.ticket, call.issuer),
            };
        }
        let _ = proxy_wasm::hostcalls::set_effective_context(shared.root_id);
        let sent = dispatch_introspection(call);
        let _ = proxy_wasm::hostcalls::set_effective_context(self.context_id);
        match sent {
            Some(token) => {
                let (ticket, issuer) = (call.ticket, call.issuer);
                shared.root_calls.borrow_mut().push((token, ticket, issuer));
                Next::Act(Action::Pause)
            }
            None => Next::Unsent(call.ticket, call.issuer),
        }
    }

    /// Feeds the request's headers to the gateway and does what it says.
    fn run(&mut self) -> Action {
        // Without the headers, or a clock, nothing can be decided, and in dry-run mode the
        // client's forwarded-claim headers could not even be removed: refuse.
        let headers = match host::request_headers() {
            Ok(headers) => headers,
            Err(err) => {
                return self.fail_closed(&format!("cannot read the request headers: {err}"))
            }
        };
        let Some(pairs) = self.shared.request_pairs(&headers) else {
            return self.fail_closed("the host handed a malformed header map");
        };
        let Some(now) = now() else {
            return self.fail_closed("the host cannot tell the time");
        };
        let shared = Rc::clone(&self.shared);
        let Ok(mut gateway) = shared.gateway.try_borrow_mut() else {
            return self.fail_closed("the gateway is busy (a host call re-entered the filter)");
        };
        let next = match gateway.on_request_headers(&mut self.exchange, &pairs, now) {
            Step::Wait(fetch) => self.on_key_fetch(&shared, &fetch, now),
            Step::Introspect(call) => self.on_introspection_call(&shared, &call),
            // The gateway keeps it waiting and says when to feed it again.
            Step::Hold(_) | Step::Park(_) | Step::Defer => Next::Act(Action::Pause),
            // proxy-wasm hosts hand a body only to a filter that let the headers go on
            // (Envoy turns a paused header phase into "stop all"), so the upstream gets
            // the headers now; the body waits in the filter until it is judged, and a
            // refused request is answered locally and reset upstream before any of it.
            Step::ReadBody { forward, .. } => match self.change_headers(&forward) {
                Ok(()) => Next::ReadBody(headers.clone()),
                Err(err) => Next::Act(
                    self.fail_closed(&format!("cannot change the forwarded-claim headers: {err}")),
                ),
            },
            step => Next::Act(self.act(step, &pairs)),
        };
        if let Next::KeysShared(issuer) = next {
            shared.sharing.install_instead(&mut gateway, issuer);
        }
        if let Next::LeftToAnother = next {
            gateway.on_fetch_left_to_another(&mut self.exchange);
        }
        if let Next::Again(issuer) = next {
            shared.fetched(&mut gateway, issuer, None);
        }
        shared.count(&mut gateway);
        drop(gateway);
        self.follow(&shared, next)
    }

    /// What the request does once the gateway is left: its action, or a rerun after the
    /// queues it affects are fed again, or the reading of its body.
    fn follow(&mut self, shared: &Shared, next: Next) -> Action {
        match next {
            Next::Act(action) => action,
            Next::LeftToAnother => Action::Pause,
            // The rerun finds the keys, or fetches (the record is taken as seen), or is
            // decided without them if it may not.
            Next::KeysShared(_) => {
                shared.feed_ready();
                let _ = proxy_wasm::hostcalls::set_effective_context(self.context_id);
                self.run()
            }
            Next::Again(_) => {
                // Those held for this request's fetch are fed again first.
                shared.feed_ready();
                let _ = proxy_wasm::hostcalls::set_effective_context(self.context_id);
                self.run()
            }
            Next::Unsent(ticket, issuer) => {
                shared.introspected(ticket, issuer, None);
                shared.feed_ready();
                let _ = proxy_wasm::hostcalls::set_effective_context(self.context_id);
                self.run()
            }
            Next::ReadBody(headers) => {
                // No body will come: the headers ended the request, or say it is empty
                // (a host may then call no body callback at all).
                let absent = headers
                    .pairs()
                    .is_ok_and(|pairs| Gateway::declares_no_body(&pairs));
                if absent {
                    self.body = (0, true);
                }
                self.reading = Some(headers);
                match self.body {
                    (_, true) => self.body_progress(),
                    _ => Action::Continue,
                }
            }
        }
    }

    /// The body of an MCP route has grown (or ended): buffer on, or decide.
    fn body_progress(&mut self) -> Action {
        let (buffered, complete) = self.body;
        match Gateway::body_progress(&self.exchange, buffered, complete) {
            BodyProgress::Buffer => Action::Pause,
            BodyProgress::Read(len) => self.decide_body(Some(len)),
            BodyProgress::OverLimit => self.decide_body(None),
        }
    }

    /// Decides on the body of `len` bytes, or (`None`) on a body over the limit, which is
    /// not read: a host may have spooled it where a filter cannot read it.
    fn decide_body(&mut self, len: Option<usize>) -> Action {
        let Some(headers) = self.reading.take() else {
            return self.fail_closed("the request body was read twice");
        };
        let body = match len.map(host::request_body).transpose() {
            Ok(body) => body,
            Err(err) => return self.fail_closed(&format!("cannot read the request body: {err}")),
        };
        let Some(pairs) = self.shared.request_pairs(&headers) else {
            return self.fail_closed("the host handed a malformed header map");
        };
        let Some(now) = now() else {
            return self.fail_closed("the host cannot tell the time");
        };
        let shared = Rc::clone(&self.shared);
        let Ok(mut gateway) = shared.gateway.try_borrow_mut() else {
            return self.fail_closed("the gateway is busy (a host call re-entered the filter)");
        };
        let step = match &body {
            Some(body) => gateway.on_request_body(&mut self.exchange, &pairs, body, now),
            None => gateway.on_request_body_over_limit(&mut self.exchange, &pairs, now),
        };
        let action = self.act(step, &pairs);
        shared.count(&mut gateway);
        action
    }

    /// Answers the request, or lets it through with the forwarded-claim headers replaced.
    fn act(&mut self, step: Step<'_>, pairs: &[(&[u8], &[u8])]) -> Action {
        match step {
            Step::Respond(reply) => {
                let response = reply.local_response();
                let sent = host::send_local_response(
                    response.status,
                    &response.headers,
                    response.body.as_bytes(),
                );
                if let Err(err) = sent {
                    // Still paused: the request times out rather than passing.
                    warn!("cannot answer {} locally: {err}", response.status);
                    self.shared.stats.borrow_mut().count_host_error();
                }
                Action::Pause
            }
            Step::Forward(mut forward) => {
                if let Some(denial) = &forward.would_deny {
                    let header = |wanted: &[u8]| {
                        let value = pairs.iter().find(|(name, _)| *name == wanted);
                        host::printable(value.map_or(&b""[..], |(_, v)| v))
                    };
                    info!(
                        "dry run: would answer {} ({}) to {} {}: {}",
                        denial.status,
                        denial.reason.code(),
                        header(b":method"),
                        header(b":path"),
                        denial.reason
                    );
                }
                self.respond = std::mem::take(&mut forward.respond);
                match self.change_headers(&forward) {
                    Ok(()) => Action::Continue,
                    Err(err) => self
                        .fail_closed(&format!("cannot change the forwarded-claim headers: {err}")),
                }
            }
            // The body phase never waits or asks again; refuse rather than guess.
            Step::Wait(_)
            | Step::Hold(_)
            | Step::Introspect(_)
            | Step::Park(_)
            | Step::Defer
            | Step::ReadBody { .. } => {
                self.fail_closed("the gateway asked for a fetch or the body after the body")
            }
        }
    }

    /// Removes the forwarded-claim headers a client sent and sets the verified ones.
    fn change_headers(&self, forward: &Forward<'_>) -> Result<(), host::HostError> {
        forward
            .remove
            .iter()
            .try_for_each(|name| host::remove_request_header(name))
            .and_then(|()| {
                forward
                    .set
                    .iter()
                    .try_for_each(|(name, value)| host::set_request_header(name, value))
            })
    }

    /// The host refused or lacked something the decision depends on: the request must not
    /// reach the upstream as it is. Counted as `host_error`.
    fn fail_closed(&self, why: &str) -> Action {
        error!("{why}; answering 500");
        if let Ok(mut stats) = self.shared.stats.try_borrow_mut() {
            stats.count_host_error();
        }
        let body = br#"{"error":"server_error"}"#;
        let _ = host::send_local_response(500, &[("content-type", "application/json")], body);
        Action::Pause
    }
}

impl Context for Filter {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let Ok(mut request) = self.request.try_borrow_mut() else {
            return;
        };
        request.call_answered(token, headers, body_size);
        self.list_if_kept(&mut request);
    }
}

impl Filter {
    /// Lists the request where the events that feed it again find it, once the gateway
    /// keeps it waiting. Only a request's own callbacks make it wait: one fed again from
    /// elsewhere was listed already.
    fn list_if_kept(&self, request: &mut Request) {
        if request.listed || !request.exchange.is_kept() {
            return;
        }
        request.listed = true;
        let me = Rc::downgrade(&self.request);
        request
            .shared
            .requests
            .borrow_mut()
            .insert(request.context_id, me);
    }
}

impl Request {
    /// The answer of a call this request sent: a key fetch or an introspection.
    fn call_answered(&mut self, token: u32, headers: usize, body_size: usize) {
        if let Some((expected, ticket, issuer)) = self.introspection {
            if expected == token {
                self.introspection = None;
                let answer = call_answer(headers, body_size, MAX_ANSWER_LEN);
                let shared = Rc::clone(&self.shared);
                shared.introspected(ticket, issuer, answer);
                self.resume_after("introspection");
                shared.feed_ready();
                let _ = proxy_wasm::hostcalls::set_effective_context(self.context_id);
                return;
            }
        }
        let Some((expected, issuer)) = self.fetch else {
            return;
        };
        if expected != token {
            return;
        }
        self.fetch = None;
        let answer = call_answer(headers, body_size, MAX_JWKS_LEN);
        let shared = Rc::clone(&self.shared);
        if let Ok(mut gateway) = shared.gateway.try_borrow_mut() {
            shared.fetched(&mut gateway, issuer, answer);
        }
        self.resume_after("the key re-fetch");
        shared.feed_ready();
        let _ = proxy_wasm::hostcalls::set_effective_context(self.context_id);
    }

    /// Decides the paused request again, and lets it go on if it may.
    fn resume_after(&mut self, what: &str) {
        if let Action::Continue = self.run() {
            if let Err(err) = host::resume_request() {
                warn!("cannot resume the request after {what}: {err}");
                self.shared.stats.borrow_mut().count_host_error();
            }
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // The request went away, perhaps while waiting: the host cancels a call it sent, and
        // the gateway forgets it and readies the requests parked on its introspection.
        let fetch = self.fetch.take();
        self.introspection = None;
        if self.listed {
            self.shared.requests.borrow_mut().remove(&self.context_id);
        }
        let Ok(mut gateway) = self.shared.gateway.try_borrow_mut() else {
            return;
        };
        // The host cancels the fetch: its lease ends as a failure would.
        // (The clock is read only then: most requests end without a fetch of their own.)
        let now = fetch.and_then(|_| now());
        if let (Some((_, issuer)), Some(now)) = (fetch, now) {
            self.shared.sharing.fetched(&gateway, issuer, None, now);
        }
        gateway.on_abandoned(&mut self.exchange);
        drop(gateway);
        self.shared.feed_ready();
    }
}

impl HttpContext for Filter {
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let Ok(mut request) = self.request.try_borrow_mut() else {
            return Action::Continue;
        };
        for (name, value) in std::mem::take(&mut request.respond) {
            if let Err(err) = host::add_response_header(name, &value) {
                warn!("cannot add `{name}` to the response: {err}");
            }
        }
        Action::Continue
    }

    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        let Ok(mut request) = self.request.try_borrow_mut() else {
            return Action::Pause;
        };
        if end_of_stream {
            request.body = (0, true);
        }
        let action = request.run();
        self.list_if_kept(&mut request);
        action
    }

    /// Only an MCP route's request body is buffered, while the gateway reads it; every
    /// other body, and every response, streams through untouched.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Ok(mut request) = self.request.try_borrow_mut() else {
            return Action::Pause;
        };
        request.body = (body_size, end_of_stream);
        if request.reading.is_some() {
            return request.body_progress();
        }
        Action::Continue
    }
}
