//! The host side of `scopegate_core::shared_keys`: one JWKS fetch per refresh for the whole
//! Envoy instead of one per VM. This module only moves records in and out of the host's
//! shared data; what they mean, and who fetches, is decided by the core.
//!
//! Without shared data (a host that lacks it, or refuses a call) each VM fetches on its own,
//! as before.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use log::{info, warn};
use scopegate_core::gateway::Gateway;
use scopegate_core::refresh::JwksFetch;
use scopegate_core::shared_keys::{claim, encode_keys, Claim, Lease, RecordNames};
use scopegate_core::UnixTime;

use crate::host;

/// The shared-data record that hands each VM its number.
const VM_NUMBERS: &str = "scopegate.vm.v1 numbers";

/// `CasMismatch`: another VM wrote the record since it was read.
const CAS_MISMATCH: host::HostError = host::HostError(8);

/// What a VM that wants to fetch a JWKS may do.
pub(crate) enum Permit {
    /// Send the fetch.
    Send,
    /// Another VM fetches it (or waits out a failure) until then.
    Leave(UnixTime),
}

/// This VM's part in sharing keys.
#[derive(Default)]
pub(crate) struct Sharing {
    /// This VM's number in the leases; `None` before the first tick, and for good when
    /// the host has no shared data.
    me: Cell<Option<u64>>,
    /// Whether the first tick has tried to number this VM.
    started: Cell<bool>,
    /// The version of each issuer's keys record last installed (or written) here.
    seen: RefCell<HashMap<usize, u32>>,
    /// The lease of each fetch this VM has in flight.
    leases: RefCell<HashMap<usize, Lease>>,
    /// Issuers whose keys another VM is fetching while requests here wait for them.
    watching: RefCell<HashMap<usize, UnixTime>>,
}

impl Sharing {
    /// Numbers this VM, on its first tick or request: not in `on_configure`, where Envoy may
    /// be running a VM only to check the configuration, which would then hold a lease it
    /// never uses.
    pub(crate) fn start(&self, now: UnixTime) {
        if self.started.replace(true) {
            return;
        }
        self.me.set(vm_number(now));
        match self.me.get() {
            Some(me) => info!("sharing fetched keys with the other workers as VM {me}"),
            None => warn!("the host has no shared data: this worker fetches keys on its own"),
        }
    }

    /// Whether any request waits for another VM's fetch (the tick is faster then).
    pub(crate) fn is_watching(&self) -> bool {
        !self.watching.borrow().is_empty()
    }

    /// Whether this VM may send `fetch` now (`early`: for a token whose `kid` the keys
    /// lack). Taking the lease is a compare-and-swap, tried twice if another VM wrote it.
    pub(crate) fn permit(&self, fetch: &JwksFetch<'_>, early: bool, now: UnixTime) -> Permit {
        // A request before the first tick: this VM is serving, so it is no check-only VM.
        self.start(now);
        let Some(me) = self.me.get() else {
            return Permit::Send;
        };
        let names = RecordNames::of(fetch);
        for _ in 0..2 {
            let Ok(record) = host::shared_data(&names.lease) else {
                return Permit::Send;
            };
            let (current, cas) = match &record {
                Some((bytes, cas)) => (Lease::parse(bytes), *cas),
                None => (None, 0),
            };
            match claim(current.as_ref(), me, now.0, early) {
                Claim::Leave { until } => return Permit::Leave(UnixTime(until)),
                Claim::Fetch(lease) => {
                    match host::set_shared_data(&names.lease, lease.to_string().as_bytes(), cas) {
                        Ok(()) => {
                            self.leases.borrow_mut().insert(fetch.issuer, lease);
                            return Permit::Send;
                        }
                        Err(CAS_MISMATCH) => continue,
                        Err(_) => return Permit::Send,
                    }
                }
            }
        }
        Permit::Leave(UnixTime(now.0.saturating_add(1)))
    }

    /// Requests here wait for the keys another VM fetches for `issuer`, until `until`.
    pub(crate) fn watch(&self, issuer: usize, until: UnixTime) {
        self.watching.borrow_mut().insert(issuer, until);
    }

    /// This VM's fetch of `issuer` is over: the lease is released (kept for the backoff
    /// after a failure), and installed keys are written for the other VMs.
    pub(crate) fn fetched(
        &self,
        gateway: &Gateway,
        issuer: usize,
        installed: Option<&[u8]>,
        now: UnixTime,
    ) {
        let Some(lease) = self.leases.borrow_mut().remove(&issuer) else {
            return;
        };
        let Some(names) = names_of(gateway, issuer) else {
            return;
        };
        if let Some(jwks) = installed {
            let record = encode_keys(now.0, jwks);
            if host::set_shared_data(&names.keys, &record, 0).is_ok() {
                if let Ok(Some((_, cas))) = host::shared_data(&names.keys) {
                    self.seen.borrow_mut().insert(issuer, cas);
                }
            }
        }
        // Released only while it is still this VM's: it may have ended and been taken.
        if let Ok(Some((bytes, cas))) = host::shared_data(&names.lease) {
            if Lease::parse(&bytes).is_some_and(|current| current.owner == lease.owner) {
                let after = gateway.lease_after_fetch(issuer, &lease, installed.is_some(), now);
                let _ = host::set_shared_data(&names.lease, after.to_string().as_bytes(), cas);
            }
        }
    }

    /// On each tick: installs the keys other VMs wrote since the last one, and ends the
    /// waits for another VM's fetch that is over (its keys came, it failed, its lease ran
    /// out). The requests held for them are fed again by the caller.
    pub(crate) fn sync(&self, gateway: &mut Gateway, now: UnixTime) {
        if self.me.get().is_none() {
            return;
        }
        let sources: Vec<(usize, RecordNames)> = gateway
            .key_sources()
            .iter()
            .map(|fetch| (fetch.issuer, RecordNames::of(fetch)))
            .collect();
        for (issuer, names) in sources {
            let Ok(Some((record, cas))) = host::shared_data(&names.keys) else {
                continue;
            };
            if self.seen.borrow().get(&issuer) == Some(&cas) {
                continue;
            }
            self.seen.borrow_mut().insert(issuer, cas);
            let outcome = gateway.on_keys_shared(issuer, &record);
            match &outcome.result {
                Ok(_) => info!("{outcome} (fetched by another worker)"),
                Err(_) => warn!("{outcome} (a record another worker wrote)"),
            }
        }
        let watched: Vec<(usize, UnixTime)> = self
            .watching
            .borrow()
            .iter()
            .map(|(issuer, until)| (*issuer, *until))
            .collect();
        for (issuer, until) in watched {
            let over = !gateway.fetch_in_flight(issuer, now)
                || now.0 >= until.0
                || !another_fetching(gateway, issuer);
            if over {
                self.watching.borrow_mut().remove(&issuer);
                gateway.on_fetch_deferred(issuer, now);
            }
        }
    }
}

/// Whether the lease of `issuer` says another VM's fetch is still in flight.
fn another_fetching(gateway: &Gateway, issuer: usize) -> bool {
    let Some(names) = names_of(gateway, issuer) else {
        return false;
    };
    match host::shared_data(&names.lease) {
        Ok(Some((bytes, _))) => Lease::parse(&bytes).is_some_and(|lease| lease.fetching),
        _ => false,
    }
}

fn names_of(gateway: &Gateway, issuer: usize) -> Option<RecordNames> {
    gateway
        .key_sources()
        .iter()
        .find(|fetch| fetch.issuer == issuer)
        .map(RecordNames::of)
}

/// A number for this VM from a counter in shared data, mixed with the clock's nanoseconds
/// so that two VMs that both created the counter at once still differ; `None` if the host
/// has no shared data.
fn vm_number(now: UnixTime) -> Option<u64> {
    let nanos = host::now_nanos().unwrap_or(now.0);
    for _ in 0..16 {
        let (count, cas) = match host::shared_data(VM_NUMBERS).ok()? {
            Some((bytes, cas)) => {
                let count: u64 = std::str::from_utf8(&bytes).ok()?.parse().ok()?;
                (count, cas)
            }
            None => (0, 0),
        };
        let next = count.wrapping_add(1);
        match host::set_shared_data(VM_NUMBERS, next.to_string().as_bytes(), cas) {
            Ok(()) => return Some(next.wrapping_mul(1 << 32) ^ (nanos & 0xffff_ffff)),
            Err(CAS_MISMATCH) => continue,
            Err(_) => return None,
        }
    }
    None
}
