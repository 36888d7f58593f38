//! The requests a gateway keeps waiting, by the id their host gave them: held for a key
//! fetch in flight, parked on another request's introspection call, or deferred to the
//! host's timer because they need a call of their own where they cannot send one. The
//! gateway says which to feed again and remembers how each was fed, so that every host
//! (the proxy-wasm filter, the command line) runs the same loop and keeps no queue.

use alloc::vec::Vec;

/// A request as its host names it (proxy-wasm: the HTTP context's id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u32);

/// How a request is being fed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// From another request's event: it sends no call of its own, because a host gives a
    /// call's answer to the context that sent it, and this one is not the running one.
    ByAnother,
    /// From the host's timer: the call it needs is sent as the timer's, which no request
    /// outlives.
    ByTimer,
}

/// The waiting requests of one gateway.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    /// Held for the key fetch of an issuer, by issuer.
    held: Vec<(usize, RequestId)>,
    /// Parked on an introspection call, by ticket.
    parked: Vec<(u64, RequestId)>,
    /// Parked requests whose call was answered or went away.
    ready: Vec<RequestId>,
    /// Requests that need a call of their own: fed again from the timer.
    deferred: Vec<RequestId>,
    /// Requests handed to the host to feed again, and how, until they are.
    resuming: Vec<(RequestId, Resumed)>,
}

impl Waiting {
    pub(crate) fn hold(&mut self, issuer: usize, id: RequestId) {
        self.held.push((issuer, id));
    }

    pub(crate) fn park(&mut self, ticket: u64, id: RequestId) {
        self.parked.push((ticket, id));
    }

    pub(crate) fn defer(&mut self, id: RequestId) {
        self.deferred.push(id);
    }

    /// The call `ticket` was answered, or will never be: the requests parked on it are
    /// ready.
    pub(crate) fn answered(&mut self, ticket: u64) {
        let ready = &mut self.ready;
        self.parked.retain(|(on, id)| {
            let waits = *on != ticket;
            if !waits {
                ready.push(*id);
            }
            waits
        });
    }

    /// The requests to feed again from the running event: those whose call was answered,
    /// and those held for a fetch no longer `in_flight`.
    pub(crate) fn take_ready(&mut self, in_flight: impl Fn(usize) -> bool) -> Vec<RequestId> {
        let mut ready = core::mem::take(&mut self.ready);
        self.held.retain(|(issuer, id)| {
            let waits = in_flight(*issuer);
            if !waits {
                ready.push(*id);
            }
            waits
        });
        self.resume(&ready, Resumed::ByAnother);
        ready
    }

    /// The deferred requests, to feed again from the timer.
    pub(crate) fn take_deferred(&mut self) -> Vec<RequestId> {
        let deferred = core::mem::take(&mut self.deferred);
        self.resume(&deferred, Resumed::ByTimer);
        deferred
    }

    pub(crate) fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    fn resume(&mut self, ids: &[RequestId], how: Resumed) {
        for id in ids {
            self.resuming.retain(|(other, _)| other != id);
            self.resuming.push((*id, how));
        }
    }

    /// How the request `id` is being fed again, if it is: asked once per feeding.
    pub(crate) fn resumed(&mut self, id: RequestId) -> Option<Resumed> {
        let at = self.resuming.iter().position(|(other, _)| *other == id)?;
        Some(self.resuming.swap_remove(at).1)
    }

    /// The request `id` went away: it waits for nothing any more.
    pub(crate) fn forget(&mut self, id: RequestId) {
        if self.is_empty() {
            return;
        }
        self.held.retain(|(_, other)| *other != id);
        self.parked.retain(|(_, other)| *other != id);
        self.ready.retain(|other| *other != id);
        self.deferred.retain(|other| *other != id);
        self.resuming.retain(|(other, _)| *other != id);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
            && self.parked.is_empty()
            && self.ready.is_empty()
            && self.deferred.is_empty()
            && self.resuming.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_request_is_ready_once_its_call_is_answered() {
        let mut waiting = Waiting::default();
        waiting.park(7, RequestId(1));
        waiting.park(8, RequestId(2));
        waiting.answered(7);
        assert_eq!(waiting.take_ready(|_| true), [RequestId(1)]);
        assert_eq!(waiting.resumed(RequestId(1)), Some(Resumed::ByAnother));
        assert_eq!(waiting.resumed(RequestId(1)), None, "asked once");
        assert_eq!(waiting.take_ready(|_| true), []);
    }

    #[test]
    fn a_held_request_is_ready_once_the_fetch_is_not_in_flight() {
        let mut waiting = Waiting::default();
        waiting.hold(0, RequestId(1));
        waiting.hold(1, RequestId(2));
        assert_eq!(waiting.take_ready(|_| true), []);
        assert_eq!(waiting.take_ready(|issuer| issuer == 1), [RequestId(1)]);
        assert_eq!(waiting.take_ready(|_| false), [RequestId(2)]);
    }

    #[test]
    fn a_request_that_went_away_is_never_handed_back() {
        let mut waiting = Waiting::default();
        waiting.park(7, RequestId(1));
        waiting.hold(0, RequestId(1));
        waiting.defer(RequestId(1));
        waiting.forget(RequestId(1));
        waiting.answered(7);
        assert_eq!(waiting.take_ready(|_| false), []);
        assert_eq!(waiting.take_deferred(), []);
        assert!(waiting.is_empty());
    }

    #[test]
    fn deferred_requests_are_fed_from_the_timer() {
        let mut waiting = Waiting::default();
        waiting.defer(RequestId(3));
        assert!(waiting.has_deferred());
        assert_eq!(waiting.take_deferred(), [RequestId(3)]);
        assert_eq!(waiting.resumed(RequestId(3)), Some(Resumed::ByTimer));
        assert!(!waiting.has_deferred());
    }
}
