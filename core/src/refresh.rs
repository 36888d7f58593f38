//! When to fetch each remote JWKS, and what to do with the answer.
//!
//! The host performs the HTTP calls (the gateway filter with `dispatch_http_call` over an
//! Envoy cluster); this module decides when: at start, every `jwks_refresh_seconds`, early
//! when a token names a `kid` the keys lack (at most once per `jwks_refetch_seconds`), and
//! with a growing backoff after failures. A failed or unusable answer never replaces the
//! last good keys, and until the first keys arrive tokens of that issuer are refused
//! ([`TokenError::KeysUnavailable`](crate::TokenError::KeysUnavailable)), never let through.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::jwks::{JwksError, KeySet};
use crate::policy::{KeySource, KeyStore, Policy};
use crate::time::UnixTime;

/// How long the host may take to answer a fetch before it is considered lost and may be
/// sent again; hosts time their calls out well before this.
pub const FETCH_LOST_AFTER_SECONDS: u64 = 60;

/// The longest wait between attempts while an issuer's JWKS keeps failing.
const MAX_BACKOFF_SECONDS: u64 = 64;

/// One HTTP GET for the host to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksFetch<'p> {
    /// Position of the issuer in the policy's `issuers`.
    pub issuer: usize,
    /// The upstream cluster that reaches the JWKS server.
    pub cluster: &'p str,
    /// The `:scheme` of `jwks_uri`, `http` or `https`.
    pub scheme: &'static str,
    /// The `:authority` (host and port) of `jwks_uri`.
    pub authority: &'p str,
    /// The `:path` of `jwks_uri`, query included.
    pub path: &'p str,
}

/// Why a fetched JWKS was not installed. The previous keys, if any, stay in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// The call failed before an HTTP answer (connection refused, timeout, no cluster).
    NoResponse,
    /// The server answered with a status other than 200.
    Status(u16),
    /// The proxy answered in the server's place: it could not connect (Envoy's 503
    /// `upstream connect error …` or `no healthy upstream`) or the server did not answer in
    /// time (Envoy's 504 `upstream request timeout`).
    Unreachable {
        /// The proxy's status.
        status: u16,
        /// The first line of the proxy's own answer, printable ASCII only.
        detail: String,
    },
    /// The body is not a JWKS with a usable key.
    Jwks(JwksError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoResponse => f.write_str(
                "no answer from the JWKS server: check that the cluster exists and reaches it",
            ),
            Self::Status(status) => write!(f, "the JWKS server answered HTTP {status}"),
            Self::Unreachable {
                status: 504,
                detail,
            } => write!(
                f,
                "the JWKS server did not answer in time (the proxy answered 504 itself: {detail})"
            ),
            Self::Unreachable { status, detail } => write!(
                f,
                "the JWKS server could not be reached over the cluster (the proxy answered \
                 {status} itself: {detail})"
            ),
            Self::Jwks(err) => write!(f, "{err}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FetchError {}

#[derive(Clone, Debug)]
struct Entry {
    issuer: usize,
    next_at: u64,
    sent_at: Option<u64>,
    early_at: Option<u64>,
    /// `early_at` before the last early fetch was handed out, for [`KeyRefresh::unsent`].
    early_before: Option<u64>,
    failures: u32,
}

/// The fetch schedule of every issuer with a `jwks_uri`.
#[derive(Clone, Debug, Default)]
pub struct KeyRefresh {
    entries: Vec<Entry>,
}

impl KeyRefresh {
    /// A schedule with every remote JWKS of `policy` due at once.
    pub fn new(policy: &Policy) -> Self {
        let entries = policy
            .issuers()
            .iter()
            .enumerate()
            .filter(|(_, issuer)| matches!(issuer.keys(), KeySource::Remote(_)))
            .map(|(issuer, _)| Entry {
                issuer,
                next_at: 0,
                sent_at: None,
                early_at: None,
                early_before: None,
                failures: 0,
            })
            .collect();
        Self { entries }
    }

    /// Whether any issuer's keys are fetched (the host needs a timer only then).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fetches to send now; each is marked in flight until [`KeyRefresh::completed`].
    pub fn due<'p>(&mut self, policy: &'p Policy, now: UnixTime) -> Vec<JwksFetch<'p>> {
        let mut due = Vec::new();
        for entry in &mut self.entries {
            if entry.in_flight(now) || now.0 < entry.next_at {
                continue;
            }
            if let Some(fetch) = fetch_for(policy, entry.issuer) {
                entry.sent_at = Some(now.0);
                due.push(fetch);
            }
        }
        due
    }

    /// A fetch to send now because a token of `issuer` names an unknown `kid` or its keys
    /// have not arrived, unless one is in flight or an early fetch was sent less than
    /// `jwks_refetch_seconds` ago. This bounds what a stream of tokens with made-up `kid`s
    /// can make the gateway do.
    pub fn request_early<'p>(
        &mut self,
        policy: &'p Policy,
        issuer: usize,
        now: UnixTime,
    ) -> Option<JwksFetch<'p>> {
        let refetch = match policy.issuers().get(issuer)?.keys() {
            KeySource::Remote(remote) => remote.refetch_seconds,
            _ => return None,
        };
        let entry = self.entries.iter_mut().find(|e| e.issuer == issuer)?;
        if entry.in_flight(now) {
            return None;
        }
        if entry
            .early_at
            .is_some_and(|at| now.0 < at.saturating_add(refetch))
        {
            return None;
        }
        let fetch = fetch_for(policy, issuer)?;
        // The first fetch of all is the start fetch, whichever event sends it (a request
        // may come before the host's first timer tick): it leaves the early allowance.
        let first = entry.next_at == 0 && entry.failures == 0;
        entry.early_before = entry.early_at;
        if !first {
            entry.early_at = Some(now.0);
        }
        entry.sent_at = Some(now.0);
        Some(fetch)
    }

    /// Whether a fetch of `issuer` is in flight, so that a request needing fresh keys can
    /// wait for its answer rather than be refused against the keys held.
    pub fn in_flight(&self, issuer: usize, now: UnixTime) -> bool {
        self.entries
            .iter()
            .any(|e| e.issuer == issuer && e.in_flight(now))
    }

    /// The fetch of every issuer with a `jwks_uri`, whether due or not.
    pub fn sources<'p>(&self, policy: &'p Policy) -> Vec<JwksFetch<'p>> {
        self.entries
            .iter()
            .filter_map(|entry| fetch_for(policy, entry.issuer))
            .collect()
    }

    /// Leaves a fetch of `issuer` to another VM of the host (see
    /// [`shared_keys`](crate::shared_keys)): it is no longer in flight here, and the next
    /// attempt is not before `retry_at` (unless keys come from that VM first).
    pub fn defer(&mut self, issuer: usize, retry_at: UnixTime) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.issuer == issuer) {
            entry.sent_at = None;
            entry.next_at = entry.next_at.max(retry_at.0);
        }
    }

    /// Takes a JWKS of `issuer` that another VM fetched at `fetched_at` and installed. Good
    /// keys are installed into `keys` as if this VM had fetched them (the next refresh is
    /// due a refresh period after `fetched_at`); anything else changes nothing, since the
    /// fetch was not this VM's.
    pub fn installed_elsewhere(
        &mut self,
        policy: &Policy,
        issuer: usize,
        jwks: &[u8],
        fetched_at: UnixTime,
        keys: &mut KeyStore,
    ) -> Result<usize, FetchError> {
        let refresh = match policy.issuers().get(issuer).map(|i| i.keys()) {
            Some(KeySource::Remote(remote)) => remote.refresh_seconds,
            _ => return Err(FetchError::NoResponse),
        };
        let set = parse_answer(Ok((200, jwks)))?;
        let Some(entry) = self.entries.iter_mut().find(|e| e.issuer == issuer) else {
            return Err(FetchError::NoResponse);
        };
        let usable = set.keys().count();
        keys.install(issuer, set);
        entry.sent_at = None;
        entry.failures = 0;
        entry.next_at = fetched_at.0.saturating_add(refresh);
        Ok(usable)
    }

    /// The refresh period of `issuer`'s keys (0 for an issuer whose keys are not fetched).
    pub fn refresh_seconds(&self, policy: &Policy, issuer: usize) -> u64 {
        match policy.issuers().get(issuer).map(|i| i.keys()) {
            Some(KeySource::Remote(remote)) => remote.refresh_seconds,
            _ => 0,
        }
    }

    /// The early fetch of `issuer` last handed out was not sent after all (another VM's
    /// keys came in first): it is not in flight, and its early allowance is given back, so
    /// a token whose `kid` those keys lack may still fetch.
    pub fn unsent(&mut self, issuer: usize) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.issuer == issuer) {
            entry.sent_at = None;
            entry.early_at = entry.early_before;
        }
    }

    /// Forgets a fetch of `issuer` whose answer will never come (the host cancelled it, as
    /// when the request that waited for it went away), so the next one need not wait for
    /// [`FETCH_LOST_AFTER_SECONDS`]. The schedule is otherwise unchanged.
    pub fn abandon(&mut self, issuer: usize) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.issuer == issuer) {
            entry.sent_at = None;
        }
    }

    /// Takes the answer to a fetch of `issuer`: `Ok((status, body))`, or `Err(())` when the
    /// call failed without an answer. Good keys are installed into `keys` and the number of
    /// usable keys returned; on any failure the previous keys stay and the next attempt is
    /// scheduled with a backoff (1, 2, 4 ... seconds, at most the refresh interval).
    #[allow(clippy::result_unit_err)]
    pub fn completed(
        &mut self,
        policy: &Policy,
        issuer: usize,
        answer: Result<(u16, &[u8]), ()>,
        keys: &mut KeyStore,
        now: UnixTime,
    ) -> Result<usize, FetchError> {
        let refresh = match policy.issuers().get(issuer).map(|i| i.keys()) {
            Some(KeySource::Remote(remote)) => remote.refresh_seconds,
            _ => return Err(FetchError::NoResponse),
        };
        let result = parse_answer(answer);
        let Some(entry) = self.entries.iter_mut().find(|e| e.issuer == issuer) else {
            return Err(FetchError::NoResponse);
        };
        entry.sent_at = None;
        match result {
            Ok(set) => {
                let usable = set.keys().count();
                keys.install(issuer, set);
                entry.failures = 0;
                entry.next_at = now.0.saturating_add(refresh);
                Ok(usable)
            }
            Err(err) => {
                let backoff = 1u64 << entry.failures.min(6);
                entry.failures = entry.failures.saturating_add(1);
                let wait = backoff.min(MAX_BACKOFF_SECONDS).min(refresh);
                entry.next_at = now.0.saturating_add(wait);
                Err(err)
            }
        }
    }
}

impl Entry {
    fn in_flight(&self, now: UnixTime) -> bool {
        self.sent_at
            .is_some_and(|at| now.0 < at.saturating_add(FETCH_LOST_AFTER_SECONDS))
    }
}

fn parse_answer(answer: Result<(u16, &[u8]), ()>) -> Result<KeySet, FetchError> {
    let (status, body) = answer.map_err(|()| FetchError::NoResponse)?;
    if status != 200 {
        return Err(proxy_answer(status, body).unwrap_or(FetchError::Status(status)));
    }
    let text = core::str::from_utf8(body)
        .map_err(|_| FetchError::Jwks(JwksError::Json("the body is not UTF-8".into())))?;
    KeySet::from_json(text).map_err(FetchError::Jwks)
}

/// The local answers Envoy's router gives when it cannot reach an upstream, by status.
const PROXY_ANSWERS: [(u16, &str); 3] = [
    (503, "upstream connect error"),
    (503, "no healthy upstream"),
    (504, "upstream request timeout"),
];

/// The answer as [`FetchError::Unreachable`] when it is the proxy's own, not the server's.
fn proxy_answer(status: u16, body: &[u8]) -> Option<FetchError> {
    let known = PROXY_ANSWERS
        .iter()
        .any(|(s, start)| *s == status && body.starts_with(start.as_bytes()));
    if !known {
        return None;
    }
    let detail = body
        .iter()
        .take_while(|&&b| b != b'\n')
        .take(240)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    Some(FetchError::Unreachable { status, detail })
}

fn fetch_for(policy: &Policy, issuer: usize) -> Option<JwksFetch<'_>> {
    let KeySource::Remote(remote) = policy.issuers().get(issuer)?.keys() else {
        return None;
    };
    Some(JwksFetch {
        issuer,
        cluster: &remote.cluster,
        scheme: remote.scheme,
        authority: &remote.authority,
        path: &remote.path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_is_due_at_once_then_after_each_refresh() {
        use crate::{KeyStore, Policy, UnixTime};
        let policy = Policy::from_json(
            r#"{"version": 1, "realm": "api",
          "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["EdDSA"],
                       "jwks_uri": "http://127.0.0.1:9000/jwks", "jwks_cluster": "idp",
                       "jwks_refresh_seconds": 300}],
          "routes": []}"#,
        )
        .unwrap();
        let mut refresh = KeyRefresh::new(&policy);
        let mut keys = KeyStore::default();

        // Due at once, then not again while the call is in flight.
        let due = refresh.due(&policy, UnixTime(1000));
        assert_eq!(
            (due[0].cluster, due[0].authority, due[0].path),
            ("idp", "127.0.0.1:9000", "/jwks")
        );
        assert!(refresh.due(&policy, UnixTime(1001)).is_empty());

        let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        assert_eq!(
            refresh.completed(&policy, 0, Ok((200, jwks)), &mut keys, UnixTime(1001)),
            Ok(1)
        );
        assert!(keys.get(0).is_some());
        assert!(refresh.due(&policy, UnixTime(1300)).is_empty());
        assert_eq!(refresh.due(&policy, UnixTime(1301)).len(), 1);
    }

    const JWKS: &[u8] = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn policy(extra: &str) -> Policy {
        Policy::from_json(&alloc::format!(
            r#"{{"version": 1, "realm": "api",
              "issuers": [
                {{"issuer": "https://inline", "audiences": ["api"], "algorithms": ["HS256"],
                  "hmac_secret": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}},
                {{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["EdDSA"],
                  "jwks_uri": "http://idp.test:8080/keys?v=1", "jwks_cluster": "idp"{extra}}}],
              "routes": []}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_proxys_own_answers_are_told_apart_from_the_servers() {
        let refused = b"upstream connect error or disconnect/reset before headers. reset reason: \
remote connection failure, transport failure reason: delayed connect error: Connection refused";
        let err = parse_answer(Ok((503, refused))).unwrap_err();
        assert!(
            matches!(err, FetchError::Unreachable { status: 503, .. }),
            "{err:?}"
        );
        let text = alloc::format!("{err}");
        assert!(text.contains("could not be reached"), "{text}");
        assert!(text.contains("Connection refused"), "{text}");
        let err = parse_answer(Ok((504, b"upstream request timeout"))).unwrap_err();
        assert!(alloc::format!("{err}").contains("did not answer in time"));
        // The server's own 503, and Envoy's text under another status, are the server's.
        assert_eq!(
            parse_answer(Ok((503, b"maintenance"))).unwrap_err(),
            FetchError::Status(503)
        );
        assert_eq!(
            parse_answer(Ok((500, b"upstream request timeout"))).unwrap_err(),
            FetchError::Status(500)
        );
        // Hostile bytes in the proxy's text never reach a log line unescaped.
        let err = parse_answer(Ok((503, b"no healthy upstream\x1b[31m\xff"))).unwrap_err();
        let FetchError::Unreachable { detail, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(detail, "no healthy upstream?[31m?");
    }

    #[test]
    fn only_remote_issuers_are_scheduled() {
        let policy = policy("");
        let mut refresh = KeyRefresh::new(&policy);
        let due = refresh.due(&policy, UnixTime(10));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].issuer, 1);
        assert_eq!(due[0].authority, "idp.test:8080");
        assert_eq!(due[0].path, "/keys?v=1");
    }

    #[test]
    fn failures_keep_the_last_good_keys_and_back_off() {
        let policy = policy(r#", "jwks_refresh_seconds": 30"#);
        let mut refresh = KeyRefresh::new(&policy);
        let mut keys = KeyStore::default();
        refresh.due(&policy, UnixTime(0));
        assert_eq!(
            refresh.completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(0)),
            Ok(1)
        );
        // The server goes down: each failure leaves the keys and waits longer.
        let mut now = 30;
        let mut waits = Vec::new();
        for _ in 0..7 {
            assert_eq!(refresh.due(&policy, UnixTime(now)).len(), 1);
            let err = refresh.completed(&policy, 1, Err(()), &mut keys, UnixTime(now));
            assert_eq!(err, Err(FetchError::NoResponse));
            assert!(keys.get(1).is_some(), "last good keys are kept");
            let next = (now..now + 100)
                .find(|&t| {
                    let mut probe = refresh.clone();
                    !probe.due(&policy, UnixTime(t)).is_empty()
                })
                .unwrap();
            waits.push(next - now);
            now = next;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        // A 500 and a body that is not a JWKS do not replace the keys either.
        refresh.due(&policy, UnixTime(now));
        let err = refresh.completed(&policy, 1, Ok((500, JWKS)), &mut keys, UnixTime(now));
        assert_eq!(err, Err(FetchError::Status(500)));
        refresh.due(&policy, UnixTime(now + 30));
        let err = refresh.completed(&policy, 1, Ok((200, b"<html>")), &mut keys, UnixTime(now));
        assert!(matches!(err, Err(FetchError::Jwks(_))));
        let empty = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        refresh.due(&policy, UnixTime(now + 60));
        let err = refresh.completed(&policy, 1, Ok((200, empty)), &mut keys, UnixTime(now));
        assert!(matches!(
            err,
            Err(FetchError::Jwks(JwksError::NoUsableKey(_)))
        ));
        assert_eq!(keys.get(1).unwrap().keys().count(), 1);
    }

    #[test]
    fn early_fetches_are_rate_limited() {
        let policy = policy(r#", "jwks_refetch_seconds": 10"#);
        let mut refresh = KeyRefresh::new(&policy);
        let mut keys = KeyStore::default();
        // In flight: no second fetch.
        assert_eq!(refresh.due(&policy, UnixTime(100)).len(), 1);
        assert!(refresh.request_early(&policy, 1, UnixTime(100)).is_none());
        refresh
            .completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(100))
            .unwrap();
        let first = refresh.request_early(&policy, 1, UnixTime(101)).unwrap();
        assert_eq!(first.issuer, 1);
        refresh
            .completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(101))
            .unwrap();
        assert!(refresh.request_early(&policy, 1, UnixTime(110)).is_none());
        assert!(refresh.request_early(&policy, 1, UnixTime(111)).is_some());
        // One that is not sent gives its allowance back, once.
        refresh.unsent(1);
        assert!(!refresh.in_flight(1, UnixTime(112)));
        assert!(refresh.request_early(&policy, 1, UnixTime(112)).is_some());
        refresh
            .completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(112))
            .unwrap();
        assert!(refresh.request_early(&policy, 1, UnixTime(113)).is_none());
        // Inline issuers and unknown positions never fetch.
        assert!(refresh.request_early(&policy, 0, UnixTime(500)).is_none());
        assert!(refresh.request_early(&policy, 9, UnixTime(500)).is_none());
    }

    #[test]
    fn a_fetch_is_in_flight_until_answered_abandoned_or_lost() {
        let policy = policy("");
        let mut refresh = KeyRefresh::new(&policy);
        let mut keys = KeyStore::default();
        assert!(!refresh.in_flight(1, UnixTime(0)));
        refresh.due(&policy, UnixTime(0));
        assert!(refresh.in_flight(1, UnixTime(0)));
        assert!(
            !refresh.in_flight(0, UnixTime(0)),
            "inline keys are never fetched"
        );
        assert!(!refresh.in_flight(1, UnixTime(FETCH_LOST_AFTER_SECONDS)));
        refresh
            .completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(1))
            .unwrap();
        assert!(!refresh.in_flight(1, UnixTime(1)));
        refresh.request_early(&policy, 1, UnixTime(2)).unwrap();
        assert!(refresh.in_flight(1, UnixTime(2)));
        refresh.abandon(1);
        assert!(!refresh.in_flight(1, UnixTime(2)));
    }

    #[test]
    fn keys_fetched_elsewhere_are_installed_and_reschedule() {
        let policy = policy(r#", "jwks_refresh_seconds": 30"#);
        let mut refresh = KeyRefresh::new(&policy);
        let mut keys = KeyStore::default();
        assert_eq!(refresh.sources(&policy).len(), 1);
        // Due, but another VM fetches: left to it until its lease ends.
        assert_eq!(refresh.due(&policy, UnixTime(100)).len(), 1);
        refresh.defer(1, UnixTime(107));
        assert!(!refresh.in_flight(1, UnixTime(100)));
        assert!(refresh.due(&policy, UnixTime(106)).is_empty());
        // Its keys arrive: installed, the next refresh a period after its fetch.
        let installed = refresh.installed_elsewhere(&policy, 1, JWKS, UnixTime(103), &mut keys);
        assert_eq!(installed, Ok(1));
        assert!(keys.get(1).is_some());
        assert!(refresh.due(&policy, UnixTime(132)).is_empty());
        assert_eq!(refresh.due(&policy, UnixTime(133)).len(), 1);
        // A record that is not a JWKS changes nothing.
        let err = refresh.installed_elsewhere(&policy, 1, b"<html>", UnixTime(140), &mut keys);
        assert!(matches!(err, Err(FetchError::Jwks(_))));
        assert_eq!(keys.get(1).unwrap().keys().count(), 1);
        assert!(refresh
            .installed_elsewhere(&policy, 0, JWKS, UnixTime(140), &mut keys)
            .is_err());
        assert_eq!(refresh.refresh_seconds(&policy, 1), 30);
        assert_eq!(refresh.refresh_seconds(&policy, 0), 0);
    }

    #[test]
    fn a_start_fetch_a_request_sends_leaves_the_early_allowance() {
        let policy = policy(r#", "jwks_refetch_seconds": 10"#);
        let mut refresh = KeyRefresh::new(&policy);
        let mut keys = KeyStore::default();
        // A request before the first tick sends the start fetch.
        assert!(refresh.request_early(&policy, 1, UnixTime(100)).is_some());
        assert!(refresh.due(&policy, UnixTime(100)).is_empty(), "in flight");
        refresh
            .completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(100))
            .unwrap();
        // A rotation right after: the early fetch is still allowed, once.
        assert!(refresh.request_early(&policy, 1, UnixTime(101)).is_some());
        refresh
            .completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(101))
            .unwrap();
        assert!(refresh.request_early(&policy, 1, UnixTime(102)).is_none());
    }

    #[test]
    fn an_abandoned_fetch_can_be_sent_again_at_once() {
        let policy = policy(r#", "jwks_refetch_seconds": 10"#);
        let mut refresh = KeyRefresh::new(&policy);
        let mut keys = KeyStore::default();
        refresh.due(&policy, UnixTime(0));
        refresh
            .completed(&policy, 1, Ok((200, JWKS)), &mut keys, UnixTime(0))
            .unwrap();
        assert!(refresh.request_early(&policy, 1, UnixTime(20)).is_some());
        refresh.abandon(1);
        // Not in flight any more, but the early-fetch rate limit still holds.
        assert!(refresh.request_early(&policy, 1, UnixTime(21)).is_none());
        assert_eq!(refresh.due(&policy, UnixTime(300)).len(), 1);
    }

    #[test]
    fn a_lost_fetch_is_sent_again() {
        let policy = policy("");
        let mut refresh = KeyRefresh::new(&policy);
        assert_eq!(refresh.due(&policy, UnixTime(0)).len(), 1);
        assert!(refresh
            .due(&policy, UnixTime(FETCH_LOST_AFTER_SECONDS - 1))
            .is_empty());
        assert_eq!(
            refresh
                .due(&policy, UnixTime(FETCH_LOST_AFTER_SECONDS))
                .len(),
            1
        );
    }
}
