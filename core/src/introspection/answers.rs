//! What the introspection endpoint answered, per token, until the answer goes stale; and
//! the calls in flight, so that concurrent requests with one token wait on one call.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;

use crate::token::{Principal, TokenError};
use crate::UnixTime;

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
/// ```
/// use scopegate_core::introspection::{Answers, Known};
/// use scopegate_core::{TokenError, UnixTime};
/// let mut answers = Answers::new(8);
/// let ticket = answers.start("opaque", UnixTime(100)).unwrap();
/// assert!(matches!(answers.get("opaque", UnixTime(100)), Known::InFlight(t) if t == ticket));
/// answers.finish(ticket, Err(TokenError::Inactive), 10, UnixTime(100));
/// assert!(matches!(answers.get("opaque", UnixTime(110)), Known::Answer(Err(_))));
/// assert!(matches!(answers.get("opaque", UnixTime(111)), Known::Unknown));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Answers {
    capacity: usize,
    entries: BTreeMap<Box<str>, State>,
    /// Answered entries by the time they go stale; in-flight ones are not here.
    by_until: BTreeSet<(u64, Box<str>)>,
    in_flight: BTreeMap<u64, Box<str>>,
    next_ticket: u64,
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
        let Some(state) = self.entries.get(token) else {
            return Known::Unknown;
        };
        match state {
            State::InFlight { ticket } => Known::InFlight(*ticket),
            State::Answered { answer, until } if now.0 <= *until => Known::Answer(answer.clone()),
            State::Answered { until, .. } => {
                let until = *until;
                self.by_until.remove(&(until, Box::from(token)));
                self.entries.remove(token);
                Known::Unknown
            }
        }
    }

    /// Marks `token` in flight: its ticket, or `None` when every entry is a call in flight
    /// (then the request is refused rather than the endpoint flooded).
    pub fn start(&mut self, token: &str, now: UnixTime) -> Option<u64> {
        self.evict_stale(now);
        if self.entries.len() >= self.capacity {
            let soonest = self.by_until.pop_first()?;
            self.entries.remove(&soonest.1);
        }
        self.next_ticket = self.next_ticket.wrapping_add(1);
        let ticket = self.next_ticket;
        let token: Box<str> = Box::from(token);
        self.in_flight.insert(ticket, token.clone());
        self.entries.insert(token, State::InFlight { ticket });
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
        let Some(token) = self.in_flight.remove(&ticket) else {
            return;
        };
        let until = match &answer {
            Ok(principal) => principal.expires_at,
            Err(TokenError::IntrospectionUnavailable) => now.0.saturating_add(FAILURE_SECONDS),
            Err(_) => now.0.saturating_add(refused_seconds),
        };
        let answer = answer.map(Rc::new);
        self.by_until.insert((until, token.clone()));
        self.entries
            .insert(token, State::Answered { answer, until });
    }

    /// The call `ticket` will not be answered (the request that sent it went away, and the
    /// host cancelled it): the next request with its token introspects again.
    pub fn abandon(&mut self, ticket: u64) {
        if let Some(token) = self.in_flight.remove(&ticket) {
            self.entries.remove(&token);
        }
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn evict_stale(&mut self, now: UnixTime) {
        while let Some((until, _)) = self.by_until.first() {
            if *until >= now.0 {
                break;
            }
            if let Some((_, token)) = self.by_until.pop_first() {
                self.entries.remove(&token);
            }
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
    fn an_abandoned_call_is_forgotten() {
        let mut answers = Answers::new(2);
        let a = answers.start("a", UnixTime(0)).unwrap();
        answers.abandon(a);
        assert!(matches!(answers.get("a", UnixTime(0)), Known::Unknown));
        answers.finish(a, Err(TokenError::Inactive), 5, UnixTime(0));
        assert!(matches!(answers.get("a", UnixTime(0)), Known::Unknown));
        assert_eq!(answers.in_flight(), 0);
    }
}
