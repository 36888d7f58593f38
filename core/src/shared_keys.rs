//! One JWKS fetch per refresh for a whole host, not one per VM.
//!
//! Envoy runs one Wasm VM per worker thread (and one on its main thread); each VM has its
//! own [`Gateway`](crate::gateway::Gateway). What they share is the host's key-value
//! store (proxy-wasm shared data: get a value with its version, set it only if the version
//! is unchanged). This module decides what goes into it; the host only moves the bytes.
//!
//! Two records per fetched JWKS, named after its cluster and URI ([`RecordNames`]):
//!
//! - the **lease** ([`Lease`]): which VM may fetch, until when, whether it is fetching
//!   now, and how many attempts in a row failed. A VM fetches only after it wrote itself
//!   into the lease (compare-and-swap); the others leave the fetch to it. A lease whose
//!   time is up is anyone's, so a VM that went away (a configuration reload) holds nothing
//!   for long. A failed fetch leaves the lease to the failing VM until its backoff is over,
//!   so the backoff holds for the whole host.
//! - the **keys** ([`encode_keys`], [`decode_keys`]): the last JWKS that was fetched and
//!   installed, with the time of the fetch. Only good keys are written, so an outage keeps
//!   the last good keys in every VM. Each VM installs a newer record on its next timer tick
//!   ([`Gateway::on_keys_shared`](crate::gateway::Gateway::on_keys_shared)).
//!
//! ```
//! use scopegate_core::shared_keys::{claim, Claim, Lease};
//! // Nobody holds the lease: VM 7 takes it for its fetch.
//! let Claim::Fetch(mine) = claim(None, 7, 1000, false) else { panic!() };
//! assert_eq!((mine.owner, mine.fetching), (7, true));
//! let written = mine.to_string();
//! // VM 9 reads it back and leaves the fetch to VM 7 until the lease ends.
//! let held = Lease::parse(written.as_bytes()).unwrap();
//! assert_eq!(claim(Some(&held), 9, 1001, false), Claim::Leave { until: mine.until });
//! // The fetch failed: VM 7 keeps the lease for its backoff; an unknown `kid` may still
//! // fetch at once (its rate limit is the policy's `jwks_refetch_seconds`).
//! let after = mine.after_fetch(false, 1002, 300);
//! assert_eq!((after.until, after.failures, after.fetching), (1003, 1, false));
//! assert_eq!(claim(Some(&after), 9, 1002, false), Claim::Leave { until: 1003 });
//! assert!(matches!(claim(Some(&after), 9, 1002, true), Claim::Fetch(_)));
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::refresh::JwksFetch;

/// How long a fetching lease lasts: longer than any host's fetch timeout (the gateway
/// filter's is 5 s), so that the VM that fetches is answered or timed out before anyone
/// else may fetch.
pub const FETCH_LEASE_SECONDS: u64 = 7;

/// The longest wait between attempts while a JWKS keeps failing (as a single VM waits).
const MAX_BACKOFF_SECONDS: u64 = 64;

/// The names of the two shared records of one fetched JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordNames {
    /// The lease record.
    pub lease: String,
    /// The keys record.
    pub keys: String,
}

impl RecordNames {
    /// The records of the JWKS `fetch` gets: the same cluster and URI share them, whichever
    /// policy names them.
    pub fn of(fetch: &JwksFetch<'_>) -> Self {
        let base = alloc::format!(
            "scopegate.jwks.v1 {} {}{}",
            fetch.cluster,
            fetch.authority,
            fetch.path
        );
        Self {
            lease: alloc::format!("{base} lease"),
            keys: alloc::format!("{base} keys"),
        }
    }
}

/// Who may fetch one JWKS, until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The VM that holds it (a number the host hands out once per VM).
    pub owner: u64,
    /// Unix seconds at which it ends; from then on any VM may take it.
    pub until: u64,
    /// Whether the owner has a fetch in flight (else it waits out a backoff).
    pub fetching: bool,
    /// Failed attempts in a row, whoever made them.
    pub failures: u32,
}

impl Lease {
    /// The lease a host's records start with: held by nobody, over since ever. A VM that
    /// finds no lease record writes this one before it claims it: the host's
    /// compare-and-swap cannot create a record only if it is absent (version 0 means "write
    /// whatever is there"), so two VMs claiming a missing record at once would both win.
    /// Claiming a record that exists is a real compare-and-swap.
    ///
    /// ```
    /// use scopegate_core::shared_keys::{claim, Claim, Lease};
    /// assert_eq!(Lease::VACANT.to_string(), "0 0 waiting 0");
    /// assert!(matches!(claim(Some(&Lease::VACANT), 7, 1000, false), Claim::Fetch(_)));
    /// ```
    pub const VACANT: Self = Self {
        owner: 0,
        until: 0,
        fetching: false,
        failures: 0,
    };

    /// Reads a lease record; `None` for anything else (then the lease is anyone's).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = core::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let owner = parts.next()?.parse().ok()?;
        let until = parts.next()?.parse().ok()?;
        let fetching = match parts.next()? {
            "fetching" => true,
            "waiting" => false,
            _ => return None,
        };
        let failures = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self {
            owner,
            until,
            fetching,
            failures,
        })
    }

    /// The lease once its owner's fetch is over, at `now`: free at once after a success,
    /// else kept for a backoff of 1, 2, 4 … seconds (at most 64 s and `refresh_seconds`).
    pub fn after_fetch(&self, succeeded: bool, now: u64, refresh_seconds: u64) -> Self {
        if succeeded {
            return Self {
                owner: self.owner,
                until: now,
                fetching: false,
                failures: 0,
            };
        }
        let backoff = (1u64 << self.failures.min(6))
            .min(MAX_BACKOFF_SECONDS)
            .min(refresh_seconds.max(1));
        Self {
            owner: self.owner,
            until: now.saturating_add(backoff),
            fetching: false,
            failures: self.failures.saturating_add(1),
        }
    }
}

impl fmt::Display for Lease {
    /// The record as written: `owner until fetching|waiting failures`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.fetching { "fetching" } else { "waiting" };
        write!(f, "{} {} {state} {}", self.owner, self.until, self.failures)
    }
}

/// What a VM that wants to fetch does, given the lease it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Write this lease (only if the record is unchanged since it was read), then fetch.
    Fetch(Lease),
    /// Another VM fetches (or waits out a failure): take its keys when they come, and ask
    /// again at `until` if none came.
    Leave {
        /// When the other VM's lease ends.
        until: u64,
    },
}

/// Whether VM `me` may fetch at `now`, given the `current` lease (`None`: no record, or
/// one that does not read as a lease). `early` is a fetch for a token whose `kid` the keys
/// lack: it does not wait out another VM's backoff (the policy's `jwks_refetch_seconds`
/// bounds those), but it does wait for another VM's fetch in flight.
pub fn claim(current: Option<&Lease>, me: u64, now: u64, early: bool) -> Claim {
    let free = match current {
        None => true,
        Some(lease) => lease.owner == me || lease.until <= now || (early && !lease.fetching),
    };
    if free {
        Claim::Fetch(Lease {
            owner: me,
            until: now.saturating_add(FETCH_LEASE_SECONDS),
            fetching: true,
            failures: current.map_or(0, |lease| lease.failures),
        })
    } else {
        Claim::Leave {
            until: current.map_or(now, |lease| lease.until),
        }
    }
}

/// The keys record: the time of the fetch, a newline, then the JWKS as fetched.
pub fn encode_keys(fetched_at: u64, jwks: &[u8]) -> Vec<u8> {
    let mut record = alloc::format!("{fetched_at}\n").into_bytes();
    record.extend_from_slice(jwks);
    record
}

/// The time of the fetch and the JWKS of a keys record; `None` if it is not one.
pub fn decode_keys(record: &[u8]) -> Option<(u64, &[u8])> {
    let newline = record.iter().position(|&b| b == b'\n')?;
    let at = core::str::from_utf8(&record[..newline])
        .ok()?
        .parse()
        .ok()?;
    Some((at, &record[newline + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn lease(owner: u64, until: u64, fetching: bool, failures: u32) -> Lease {
        Lease {
            owner,
            until,
            fetching,
            failures,
        }
    }

    #[test]
    fn a_lease_reads_back_as_written_and_nothing_else_reads_as_one() {
        let written = lease(3, 1_767_000_007, true, 2);
        assert_eq!(written.to_string(), "3 1767000007 fetching 2");
        assert_eq!(Lease::parse(written.to_string().as_bytes()), Some(written));
        let waiting = lease(u64::MAX, 0, false, u32::MAX);
        assert_eq!(Lease::parse(waiting.to_string().as_bytes()), Some(waiting));
        for bad in [
            &b""[..],
            b"3",
            b"3 10 fetching",
            b"3 10 sleeping 0",
            b"3 10 fetching 0 extra",
            b"-3 10 fetching 0",
            b"3 10 fetching 0\n",
            b"\xff 10 fetching 0",
        ] {
            assert_eq!(Lease::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_vacant_lease_is_anyones_and_reads_back() {
        assert_eq!(
            Lease::parse(Lease::VACANT.to_string().as_bytes()),
            Some(Lease::VACANT)
        );
        for early in [false, true] {
            let Claim::Fetch(taken) = claim(Some(&Lease::VACANT), 5, 100, early) else {
                panic!("a vacant lease, early: {early}")
            };
            assert_eq!(taken, lease(5, 100 + FETCH_LEASE_SECONDS, true, 0));
        }
    }

    #[test]
    fn only_one_vm_fetches_while_a_lease_runs() {
        let Claim::Fetch(mine) = claim(None, 1, 100, false) else {
            panic!("a free lease")
        };
        assert_eq!(mine, lease(1, 100 + FETCH_LEASE_SECONDS, true, 0));
        // Others leave it, early or not; the owner may renew it.
        assert_eq!(
            claim(Some(&mine), 2, 101, false),
            Claim::Leave { until: mine.until }
        );
        assert_eq!(
            claim(Some(&mine), 2, 101, true),
            Claim::Leave { until: mine.until }
        );
        assert!(matches!(claim(Some(&mine), 1, 101, false), Claim::Fetch(_)));
        // A lease whose owner went away ends, and someone else takes it.
        let Claim::Fetch(taken) = claim(Some(&mine), 2, mine.until, false) else {
            panic!("an ended lease")
        };
        assert_eq!(taken.owner, 2);
    }

    #[test]
    fn failures_back_off_for_the_whole_host() {
        let mut current = lease(1, 0, true, 0);
        let mut waits = Vec::new();
        for _ in 0..8 {
            let after = current.after_fetch(false, 1000, 30);
            waits.push(after.until - 1000);
            // Whoever fetches next keeps counting.
            let Claim::Fetch(next) = claim(Some(&after), 2, after.until, false) else {
                panic!("the backoff is over")
            };
            current = next;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        let ok = current.after_fetch(true, 2000, 30);
        assert_eq!(ok, lease(2, 2000, false, 0));
        assert!(matches!(claim(Some(&ok), 1, 2000, false), Claim::Fetch(_)));
    }

    #[test]
    fn keys_records_carry_the_time_of_the_fetch() {
        let record = encode_keys(1_767_000_000, br#"{"keys":[]}"#);
        assert_eq!(
            decode_keys(&record),
            Some((1_767_000_000, &br#"{"keys":[]}"#[..]))
        );
        assert_eq!(decode_keys(b"{\"keys\":[]}"), None);
        assert_eq!(decode_keys(b"soon\n{}"), None);
        assert_eq!(decode_keys(b"5\n"), Some((5, &b""[..])));
    }

    #[test]
    fn records_are_named_after_cluster_and_uri() {
        let fetch = JwksFetch {
            issuer: 4,
            cluster: "idp",
            scheme: "https",
            authority: "idp.test:8443",
            path: "/keys?v=2",
        };
        let names = RecordNames::of(&fetch);
        assert_eq!(
            names.lease,
            "scopegate.jwks.v1 idp idp.test:8443/keys?v=2 lease"
        );
        assert_eq!(
            names.keys,
            "scopegate.jwks.v1 idp idp.test:8443/keys?v=2 keys"
        );
        let other = RecordNames::of(&JwksFetch { issuer: 0, ..fetch });
        assert_eq!(other, names, "the issuer's position does not matter");
    }
}
