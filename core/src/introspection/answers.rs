//! What the introspection endpoint answered, per token, until the answer goes stale; and
//! the calls in flight, so that concurrent requests with one token wait on one call.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;

use crate::time::UnixTime;
use crate::token::fingerprint::{fingerprint, same_token, Fingerprint};
use crate::token::{Principal, TokenError};

/// How long a failed call's answer is kept: the requests that waited on it read it, and a
/// down endpoint gets at most one call per token per second.
const FAILURE_SECONDS: u64 = 1;

/// A token's introspection: answered (active or refused) until a time, or in flight.
#[derive(Clone, Debug)]
enum State {
    Answered {
        answer: Result<Rc<Principal>, TokenError>,
        until: u64,
    },
    InFlight {
        ticket: u64,
    },
}

/// What is known of a token's introspection.
#[derive(Debug)]
pub enum Known {
    /// The endpoint's answer, still fresh.
    Answer(Result<Rc<Principal>, TokenError>),
    /// A call for it is in flight: wait for the one with this ticket.
    InFlight(u64),
    /// Nothing: introspect it.
    Unknown,
}

/// Introspection answers by token, bounded; the entry expiring first makes room.
///
/// Entries are found by the token cache's fingerprint and hold the token, so only the very
/// same token text reads an answer, as in the gateway's token cache; the maps are of the
/// same types as the token cache's, which keeps the filter from carrying a second copy of
/// their code.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    capacity: usize,
    entries: BTreeMap<Fingerprint, Entry>,
    /// Answered entries by the time they go stale; in-flight ones are not here.
    by_until: BTreeSet<(u64, Fingerprint)>,
    /// Calls in flight: ticket to the entry waiting for it.
    in_flight: BTreeMap<u64, Fingerprint>,
    next_ticket: u64,
}

#[derive(Clone, Debug)]
struct Entry {
    token: Box<str>,
    state: State,
}

impl Answers {
    /// At most `capacity` tokens (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    /// What is known of `token` at `now`.
    pub fn get(&mut self, token: &str, now: UnixTime) -> Known {
        let key = fingerprint(token);
        let Some(entry) = self.entries.get(&key) else {
            return Known::Unknown;
        };
        if !same_token(&entry.token, token) {
            return Known::Unknown;
        }
        match &entry.state {
            State::InFlight { ticket } => Known::InFlight(*ticket),
            State::Answered { answer, until } if now.0 <= *until => Known::Answer(answer.clone()),
            State::Answered { until, .. } => {
                self.by_until.remove(&(*until, key));
                self.entries.remove(&key);
                Known::Unknown
            }
        }
    }

    /// Marks `token` in flight: its ticket, or `None` when every entry is a call in flight
    /// (then the request is refused rather than the endpoint flooded), or when another
    /// token with the same fingerprint is in flight.
    pub fn start(&mut self, token: &str, now: UnixTime) -> Option<u64> {
        self.evict_stale(now);
        let key = fingerprint(token);
        match self.entries.get(&key).map(|entry| &entry.state) {
            Some(State::InFlight { .. }) => return None,
            Some(State::Answered { until, .. }) => {
                self.by_until.remove(&(*until, key));
                self.entries.remove(&key);
            }
            None => {}
        }
        if self.entries.len() >= self.capacity {
            let (_, soonest) = self.by_until.pop_first()?;
            self.entries.remove(&soonest);
        }
        self.next_ticket = self.next_ticket.wrapping_add(1);
        let ticket = self.next_ticket;
        self.in_flight.insert(ticket, key);
        let state = State::InFlight { ticket };
        self.entries.insert(
            key,
            Entry {
                token: token.into(),
                state,
            },
        );
        Some(ticket)
    }

    /// A second call for a token whose first is in flight, for a request that cannot wait
    /// for the first (see `Gateway::set_resumes_others`): whichever answers first is kept.
    /// `None` when no call for it is in flight.
    pub fn start_again(&mut self, token: &str) -> Option<u64> {
        let key = fingerprint(token);
        if !matches!(
            self.entries.get(&key).map(|entry| &entry.state),
            Some(State::InFlight { .. })
        ) {
            return None;
        }
        self.next_ticket = self.next_ticket.wrapping_add(1);
        let ticket = self.next_ticket;
        self.in_flight.insert(ticket, key);
        Some(ticket)
    }

    /// The answer of the call `ticket`: kept until the principal's `expires_at` if active,
    /// `refused_seconds` if the token is refused, one second if the call failed. Unknown
    /// tickets (abandoned calls) are ignored.
    pub fn finish(
        &mut self,
        ticket: u64,
        answer: Result<Principal, TokenError>,
        refused_seconds: u64,
        now: UnixTime,
    ) {
        let Some(key) = self.in_flight.remove(&ticket) else {
            return;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        // The first answer of any call for the token (see `start_again`) is kept.
        if !matches!(entry.state, State::InFlight { .. }) {
            return;
        }
        let until = match &answer {
            Ok(principal) => principal.expires_at,
            Err(TokenError::IntrospectionUnavailable) => now.0.saturating_add(FAILURE_SECONDS),
            Err(_) => now.0.saturating_add(refused_seconds),
        };
        let answer = answer.map(Rc::new);
        entry.state = State::Answered { answer, until };
        self.by_until.insert((until, key));
    }

    /// The call `ticket` will not be answered (the request that sent it went away, and the
    /// host cancelled it): the next request with its token introspects again.
    pub fn abandon(&mut self, ticket: u64) {
        let Some(key) = self.in_flight.remove(&ticket) else {
            return;
        };
        let waiting = self.entries.get(&key).map(|entry| &entry.state);
        if matches!(waiting, Some(State::InFlight { ticket: t }) if *t == ticket) {
            self.entries.remove(&key);
        }
    }

    /// Calls in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn evict_stale(&mut self, now: UnixTime) {
        while let Some(&(until, key)) = self.by_until.first() {
            if until >= now.0 {
                break;
            }
            self.by_until.pop_first();
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_of_calls_in_flight_refuses_more() {
        let mut answers = Answers::new(2);
        assert!(answers.start("a", UnixTime(0)).is_some());
        assert!(answers.start("b", UnixTime(0)).is_some());
        assert_eq!(answers.start("c", UnixTime(0)), None);
    }

    #[test]
    fn answers_make_room_soonest_first() {
        let mut answers = Answers::new(2);
        let a = answers.start("a", UnixTime(0)).unwrap();
        answers.finish(a, Err(TokenError::Inactive), 5, UnixTime(0));
        let b = answers.start("b", UnixTime(0)).unwrap();
        answers.finish(b, Err(TokenError::Inactive), 50, UnixTime(0));
        assert!(answers.start("c", UnixTime(1)).is_some());
        assert!(matches!(answers.get("a", UnixTime(1)), Known::Unknown));
        assert!(matches!(answers.get("b", UnixTime(1)), Known::Answer(_)));
    }

    #[test]
    fn only_the_same_token_reads_an_answer() {
        // Same last 16 bytes, so the same fingerprint.
        let (ours, theirs) = ("a.0123456789abcdef", "b.0123456789abcdef");
        let mut answers = Answers::new(4);
        let ticket = answers.start(ours, UnixTime(0)).unwrap();
        assert!(matches!(answers.get(theirs, UnixTime(0)), Known::Unknown));
        // While ours is in flight, theirs cannot take the entry (nor strand our waiters).
        assert_eq!(answers.start(theirs, UnixTime(0)), None);
        answers.finish(ticket, Err(TokenError::Inactive), 5, UnixTime(0));
        assert!(matches!(answers.get(theirs, UnixTime(0)), Known::Unknown));
        assert!(matches!(
            answers.get(ours, UnixTime(0)),
            Known::Answer(Err(_))
        ));
        // Answered, it makes room for theirs.
        let theirs_ticket = answers.start(theirs, UnixTime(1)).unwrap();
        assert!(matches!(answers.get(ours, UnixTime(1)), Known::Unknown));
        assert!(
            matches!(answers.get(theirs, UnixTime(1)), Known::InFlight(t) if t == theirs_ticket)
        );
        // A stale ticket cannot write over the newer call.
        answers.finish(ticket, Err(TokenError::Inactive), 5, UnixTime(1));
        assert!(matches!(
            answers.get(theirs, UnixTime(1)),
            Known::InFlight(_)
        ));
    }

    #[test]
    fn an_abandoned_call_is_forgotten() {
        let mut answers = Answers::new(2);
        let a = answers.start("a", UnixTime(0)).unwrap();
        answers.abandon(a);
        assert!(matches!(answers.get("a", UnixTime(0)), Known::Unknown));
        answers.finish(a, Err(TokenError::Inactive), 5, UnixTime(0));
        assert!(matches!(answers.get("a", UnixTime(0)), Known::Unknown));
        assert_eq!(answers.in_flight(), 0);
    }

    #[test]
    fn the_documented_answers() {
        use crate::introspection::{Answers, Known};
        use crate::{TokenError, UnixTime};
        let mut answers = Answers::new(8);
        let ticket = answers.start("opaque", UnixTime(100)).unwrap();
        assert!(matches!(answers.get("opaque", UnixTime(100)), Known::InFlight(t) if t == ticket));
        answers.finish(ticket, Err(TokenError::Inactive), 10, UnixTime(100));
        assert!(matches!(
            answers.get("opaque", UnixTime(110)),
            Known::Answer(Err(_))
        ));
        assert!(matches!(
            answers.get("opaque", UnixTime(111)),
            Known::Unknown
        ));
    }
}
