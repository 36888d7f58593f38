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
//!   forwards the request (with the forwarded-claim headers replaced) or answers it.
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
mod stats;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use scopegate_core::cache::TokenCache;
use scopegate_core::jwks::MAX_JWKS_LEN;
use scopegate_core::refresh::{JwksFetch, KeyRefresh};
use scopegate_core::{Decision, KeyStore, Policy, Request, RequestReader, TokenError, UnixTime};

use stats::Stats;

/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// What the root context shares with its HTTP contexts. The host runs one VM per worker
/// thread, so each worker has its own copy; nothing here crosses threads.
struct Shared {
    policy: Policy,
    keys: RefCell<KeyStore>,
    refresh: RefCell<KeyRefresh>,
    cache: RefCell<TokenCache>,
    stats: RefCell<Stats>,
}

impl Shared {
    /// Sends a JWKS fetch from `context`, recording it as failed at once if the host
    /// refuses it (unknown cluster).
    fn dispatch(&self, context: &dyn Context, fetch: JwksFetch<'_>, now: UnixTime) -> Option<u32> {
        let headers = vec![
            (":method", "GET"),
            (":path", fetch.path),
            (":authority", fetch.authority),
            ("accept", "application/json"),
        ];
        match context.dispatch_http_call(fetch.cluster, headers, None, vec![], FETCH_TIMEOUT) {
            Ok(token) => Some(token),
            Err(status) => {
                warn!(
                    "cannot fetch the JWKS of issuer {} over cluster `{}`: {status:?}",
                    fetch.issuer, fetch.cluster
                );
                self.fetched(fetch.issuer, Err(()), now);
                None
            }
        }
    }

    /// Reads the answer of a JWKS fetch of `issuer` that `context` dispatched.
    fn answered(&self, issuer: usize, headers: usize, body_size: usize) {
        let answer = call_answer(headers, body_size);
        let answer = answer
            .as_ref()
            .map(|(status, body)| (*status, body.as_slice()));
        self.fetched(issuer, answer.map_err(|_| ()), now());
    }

    /// Takes the answer of a JWKS fetch.
    fn fetched(&self, issuer: usize, answer: Result<(u16, &[u8]), ()>, now: UnixTime) {
        let mut keys = self.keys.borrow_mut();
        let result =
            self.refresh
                .borrow_mut()
                .completed(&self.policy, issuer, answer, &mut keys, now);
        let name = self
            .policy
            .issuers()
            .get(issuer)
            .map_or("?", |i| i.issuer());
        match result {
            Ok(count) => {
                info!("installed {count} keys of `{name}`");
                self.stats.borrow_mut().count("jwks.fetch_ok");
            }
            Err(err) => {
                warn!("keeping the previous keys of `{name}`: {err}");
                self.stats.borrow_mut().count("jwks.fetch_failed");
            }
        }
    }

    /// Decides `request`, verifying through the cache. Returns the issuer whose keys are
    /// worth re-fetching when the token failed for want of a key.
    fn decide(&self, request: &Request<'_>, now: UnixTime) -> (Decision<'_>, Option<usize>) {
        let mut refetch = None;
        let decision = self.policy.decide_with(request, now, |token| {
            if let Some(principal) = self.cache.borrow_mut().get(token, now) {
                self.stats.borrow_mut().count("cache.hit");
                return Ok(principal);
            }
            self.stats.borrow_mut().count("cache.miss");
            let principal = self
                .policy
                .authenticate(token, &self.keys.borrow(), now)
                .inspect_err(|err: &TokenError| refetch = err.refetch_issuer())?;
            let principal = Rc::new(principal);
            self.cache
                .borrow_mut()
                .insert(token, Rc::clone(&principal), now);
            Ok(principal)
        });
        (decision, refetch)
    }
}

/// The host's time. If the host cannot tell it, the end of time: every token is then
/// expired (401) rather than never expiring.
fn now() -> UnixTime {
    match host::now_seconds() {
        Ok(seconds) => UnixTime(seconds),
        Err(err) => {
            error!("the host cannot tell the time ({err}): treating every token as expired");
            UnixTime(u64::MAX)
        }
    }
}

#[derive(Default)]
struct Root {
    shared: Option<Rc<Shared>>,
    /// JWKS fetches in flight from the root context: call token to issuer.
    fetches: HashMap<u32, usize>,
}

impl Root {
    fn fetch_due(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = now();
        let due = shared.refresh.borrow_mut().due(&shared.policy, now);
        for fetch in due {
            if let Some(token) = shared.dispatch(self, fetch, now) {
                self.fetches.insert(token, fetch.issuer);
            }
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let (Some(issuer), Some(shared)) = (self.fetches.remove(&token), self.shared.clone())
        else {
            return;
        };
        shared.answered(issuer, headers, body_size);
    }
}

/// The status and body of a finished `dispatch_http_call`; no headers means no answer.
fn call_answer(headers: usize, body_size: usize) -> Result<(u16, Vec<u8>), ()> {
    if headers == 0 {
        return Err(());
    }
    let map = host::call_response_headers().map_err(|_| ())?;
    let status = map
        .pairs()
        .into_iter()
        .find(|(name, _)| *name == b":status")
        .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok())
        .ok_or(())?;
    // One byte past the limit is enough for the core to refuse the body as too large.
    let body = host::call_response_body(body_size.min(MAX_JWKS_LEN + 1)).unwrap_or_default();
    Ok((status, body))
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
        let policy = match Policy::from_json(text) {
            Ok(policy) => policy,
            Err(err) => {
                error!("policy rejected: {err}");
                return false;
            }
        };
        let shared = Shared {
            keys: RefCell::default(),
            refresh: RefCell::new(KeyRefresh::new(&policy)),
            cache: RefCell::new(TokenCache::new(policy.token_cache_entries())),
            stats: RefCell::new(Stats::new()),
            policy,
        };
        let remote = !shared.refresh.borrow().is_empty();
        info!(
            "policy loaded: {} issuers, realm `{}`{}",
            shared.policy.issuers().len(),
            shared.policy.realm(),
            if shared.policy.dry_run() {
                ", dry run"
            } else {
                ""
            }
        );
        self.shared = Some(Rc::new(shared));
        self.fetches.clear();
        if remote {
            self.set_tick_period(Duration::from_secs(1));
            self.fetch_due();
        }
        true
    }

    fn on_tick(&mut self) {
        self.fetch_due();
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        let shared = Rc::clone(self.shared.as_ref()?);
        Some(Box::new(Filter {
            shared,
            refetching: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One request.
struct Filter {
    shared: Rc<Shared>,
    /// The call token and issuer of a JWKS re-fetch this request waits for.
    refetching: Option<(u32, usize)>,
}

impl Filter {
    /// Reads the request, decides, and enforces. `may_refetch` is false on the second pass
    /// after a re-fetch, so a request waits for at most one fetch.
    fn run(&mut self, may_refetch: bool) -> Action {
        let headers = match host::request_headers() {
            Ok(headers) => headers,
            Err(err) => {
                // Read as a request without method or path, which the core refuses (400).
                warn!("cannot read the request headers: {err}");
                host::HeaderMap::default()
            }
        };
        let pairs = headers.pairs();
        let reader = RequestReader::from_pairs(pairs.iter().copied());
        let request = reader.request();
        let shared = Rc::clone(&self.shared);
        for forwarded in shared.policy.forwarded_headers() {
            let present = pairs
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(forwarded.as_bytes()));
            if present {
                if let Err(err) = host::remove_request_header(forwarded) {
                    // The client's value would reach the upstream: refuse to forward.
                    return self.fail_closed(&format!("cannot remove `{forwarded}`: {err}"));
                }
            }
        }
        let now = now();
        let (decision, refetch) = shared.decide(&request, now);
        if let (true, Some(issuer)) = (may_refetch, refetch) {
            let fetch = shared
                .refresh
                .borrow_mut()
                .request_early(&shared.policy, issuer, now);
            if let Some(fetch) = fetch {
                if let Some(token) = shared.dispatch(self, fetch, now) {
                    self.refetching = Some((token, issuer));
                    return Action::Pause;
                }
            }
        }
        shared.stats.borrow_mut().record(&decision);
        match shared.policy.enforce(&decision) {
            Some(response) => {
                let sent = host::send_local_response(
                    response.status,
                    &response.headers,
                    response.body.as_bytes(),
                );
                if let Err(err) = sent {
                    warn!("cannot answer {} locally: {err}", response.status);
                }
                Action::Pause
            }
            None => {
                if let Decision::Deny(denial) = &decision {
                    info!(
                        "dry run: would answer {} ({}) to {} {}: {}",
                        denial.status,
                        denial.reason.code(),
                        request.method.escape_debug(),
                        request.path.escape_debug(),
                        denial.reason
                    );
                    shared.stats.borrow_mut().count("dry_run.let_through");
                }
                if let Decision::Allow(allow) = &decision {
                    for (name, value) in &allow.headers {
                        if let Err(err) = host::set_request_header(name, value) {
                            return self.fail_closed(&format!("cannot set `{name}`: {err}"));
                        }
                    }
                }
                Action::Continue
            }
        }
    }

    /// The host refused a header change the decision depends on: the request must not
    /// reach the upstream as it is.
    fn fail_closed(&self, why: &str) -> Action {
        error!("{why}; answering 500");
        self.shared.stats.borrow_mut().count("host_error");
        let _ = host::send_local_response(
            500,
            &[("content-type", "application/json")],
            br#"{"error":"server_error"}"#,
        );
        Action::Pause
    }
}

impl Context for Filter {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let Some((expected, issuer)) = self.refetching.take() else {
            return;
        };
        if expected != token {
            return;
        }
        Rc::clone(&self.shared).answered(issuer, headers, body_size);
        if let Action::Continue = self.run(false) {
            if let Err(err) = host::resume_request() {
                warn!("cannot resume the request after the key re-fetch: {err}");
            }
        }
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        // The request went away while waiting for a re-fetch; the host cancels the call.
        if let Some((_, issuer)) = self.refetching.take() {
            self.shared.refresh.borrow_mut().abandon(issuer);
        }
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.run(true)
    }
}
