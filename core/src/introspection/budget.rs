//! How many introspection calls a gateway may make: a client sending random opaque tokens
//! must not turn the gateway into an amplifier against the issuer, nor the issuer's slowdown
//! into 401s for every valid token. Tokens whose answer is kept never spend the budget.
//!
//! Calls per second are counted in the host's shared memory when it has one (every worker
//! of an Envoy counts against one budget: see [`crate::shared_memory`]); calls in flight are
//! counted per gateway, as each worker sends and receives its own.

use alloc::vec::Vec;

use crate::shared_memory::{SetError, SharedMemory};
use crate::time::UnixTime;

use super::limits::BudgetLimits;

/// Attempts at a compare-and-swap of the shared counter before the call is refused.
const CAS_ATTEMPTS: usize = 4;

/// One issuer's spending of its budget.
#[derive(Clone, Debug)]
pub struct Budget {
    issuer: usize,
    limits: BudgetLimits,
    /// The second counted here when the host has no shared memory, and its calls.
    window: (u64, u32),
    /// Tickets of the calls in flight (a few: a list is smaller code than a set).
    in_flight: Vec<u64>,
}

impl Budget {
    /// The budget of the issuer at `issuer`, with nothing spent.
    pub fn new(issuer: usize, limits: BudgetLimits) -> Self {
        Self {
            issuer,
            limits,
            window: (0, 0),
            in_flight: Vec::new(),
        }
    }

    /// Counts one call at `now`: `false`, and nothing counted, when the calls in flight or
    /// this second's calls are at their limit (or the shared counter could not be updated:
    /// refused rather than uncounted). The call, once sent, is [`Budget::hold`]'s.
    pub fn admit(&mut self, now: UnixTime, memory: Option<&dyn SharedMemory>) -> bool {
        if self.in_flight.len() >= self.limits.in_flight as usize {
            return false;
        }
        match memory {
            Some(memory) => self.count_shared(memory, now),
            None => self.count_here(now),
        }
    }

    /// The admitted call `ticket` is in flight.
    pub fn hold(&mut self, ticket: u64) {
        self.in_flight.push(ticket);
    }

    /// The call `ticket` was answered, failed or was abandoned: no longer in flight.
    pub fn settle(&mut self, ticket: u64) {
        self.in_flight.retain(|held| *held != ticket);
    }

    /// Calls in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn count_here(&mut self, now: UnixTime) -> bool {
        let (second, calls) = &mut self.window;
        if *second != now.0 {
            (*second, *calls) = (now.0, 0);
        }
        if *calls >= self.limits.per_second {
            return false;
        }
        *calls += 1;
        true
    }

    /// The shared record is the second (8 bytes) and its calls (4 bytes), big-endian.
    fn count_shared(&self, memory: &dyn SharedMemory, now: UnixTime) -> bool {
        let mut key = *b"scopegate.introspection.v1 budget 00000000";
        hex_u32(self.issuer as u32, &mut key[34..]);
        let Ok(key) = core::str::from_utf8(&key) else {
            return false;
        };
        for _ in 0..CAS_ATTEMPTS {
            let (record, cas) = match memory.get(key) {
                Some((record, cas)) => (record, Some(cas)),
                None => (Vec::new(), None),
            };
            let calls = match record.get(..12) {
                Some(r) if r[..8] == now.0.to_be_bytes() => {
                    u32::from_be_bytes([r[8], r[9], r[10], r[11]])
                }
                _ => 0,
            };
            if calls >= self.limits.per_second {
                return false;
            }
            let mut next = [0u8; 12];
            next[..8].copy_from_slice(&now.0.to_be_bytes());
            next[8..].copy_from_slice(&(calls + 1).to_be_bytes());
            match memory.set(key, &next, cas) {
                Ok(()) => return true,
                Err(SetError::Changed) => continue,
                Err(SetError::Refused) => return false,
            }
        }
        false
    }
}

/// Writes `value` as 8 lowercase hex digits into `out`.
fn hex_u32(value: u32, out: &mut [u8]) {
    for (i, byte) in out.iter_mut().take(8).enumerate() {
        let nibble = (value >> (28 - 4 * i)) & 0xf;
        *byte = b"0123456789abcdef"[nibble as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_memory::LocalMemory;

    #[test]
    fn calls_in_flight_are_bounded_until_settled() {
        let limits = BudgetLimits {
            per_second: 100,
            in_flight: 2,
        };
        let mut budget = Budget::new(0, limits);
        for ticket in [1, 2] {
            assert!(budget.admit(UnixTime(5), None));
            budget.hold(ticket);
        }
        assert!(!budget.admit(UnixTime(5), None));
        budget.settle(1);
        assert!(budget.admit(UnixTime(5), None));
        assert_eq!(budget.in_flight(), 1);
    }

    #[test]
    fn gateways_sharing_memory_share_the_calls_per_second() {
        let memory = LocalMemory::default();
        let limits = BudgetLimits {
            per_second: 3,
            in_flight: 100,
        };
        let (mut one, mut two) = (Budget::new(0, limits), Budget::new(0, limits));
        let now = UnixTime(1_000);
        let spent: usize = (0..4)
            .map(|_| {
                usize::from(one.admit(now, Some(&memory)))
                    + usize::from(two.admit(now, Some(&memory)))
            })
            .sum();
        assert_eq!(spent, 3, "one budget for both");
        assert!(one.admit(UnixTime(1_001), Some(&memory)));
        // Another issuer has its own.
        let mut other = Budget::new(1, limits);
        assert!(other.admit(now, Some(&memory)));
    }

    #[test]
    fn the_documented_budget() {
        use crate::introspection::{Budget, BudgetLimits};
        use crate::UnixTime;
        let mut budget = Budget::new(
            0,
            BudgetLimits {
                per_second: 2,
                in_flight: 1,
            },
        );
        assert!(budget.admit(UnixTime(100), None));
        budget.hold(1);
        assert!(!budget.admit(UnixTime(100), None), "one call in flight");
        budget.settle(1);
        assert!(budget.admit(UnixTime(100), None));
        assert!(!budget.admit(UnixTime(100), None), "two calls this second");
        assert!(budget.admit(UnixTime(101), None), "a new second");
    }
}
