//! The host side of `scopegate_core::shared_keys`: one JWKS fetch per refresh for the whole
//! Envoy instead of one per VM. This module only moves records in and out of the host's
//! shared data; what they mean, and who fetches, is decided by the core.
//!
//! Without shared data (a host that lacks it, or refuses a call) each VM fetches on its own,
//! as before.

use std::cell::{Cell, RefCell};

use log::{info, warn};
use scopegate_core::gateway::{FetchOutcome, Gateway, JwksFetch};
use scopegate_core::shared_keys::{claim, encode_keys, Claim, Lease, RecordNames};
use scopegate_core::shared_memory::{SetError, SharedMemory};
use scopegate_core::UnixTime;

use crate::host::{self, CAS_MISMATCH};
use crate::vec_map::VecMap;

/// The record read at load to learn whether the host has shared data at all.
pub(crate) const PROBE: &str = "scopegate.probe.v1";

/// The shared-data record that hands each VM its number.
const VM_NUMBERS: &str = "scopegate.vm.v1 numbers";

/// The timer's period, in milliseconds: how soon requests waiting for another VM's fetch
/// see its keys, and how soon after load the first fetch goes out. Set once: nginx's
/// ngx_wasm_module traps on a second `proxy_set_tick_period_milliseconds`.
const TICK_MS: u32 = 100;

/// How often a tick does its work while nothing waits: key refreshes are scheduled in
/// seconds, so the other ticks return at once.
const IDLE_WORK_NANOS: u64 = 1_000_000_000;

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
    seen: RefCell<VecMap<usize, u32>>,
    /// The lease of each fetch this VM has in flight.
    leases: RefCell<VecMap<usize, Lease>>,
    /// Issuers whose keys another VM is fetching while requests here wait for them.
    watching: RefCell<VecMap<usize, UnixTime>>,
    /// Whether the first sync has created the missing lease records.
    vacated: Cell<bool>,
    /// Whether the timer is set.
    timer_set: Cell<bool>,
    /// The host's clock, in nanoseconds, when a tick last did its work.
    last_work: Cell<u64>,
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
    /// lack). Taking the lease is a compare-and-swap, tried again if another VM wrote it.
    pub(crate) fn permit(&self, fetch: &JwksFetch<'_>, early: bool, now: UnixTime) -> Permit {
        // A request before the first tick: this VM is serving, so it is no check-only VM.
        self.start(now);
        let Some(me) = self.me.get() else {
            return Permit::Send;
        };
        let names = RecordNames::of(fetch);
        for _ in 0..3 {
            let (current, cas) = match host::shared_data(&names.lease) {
                Ok(Some((bytes, cas))) => (Lease::parse(&bytes), cas),
                // No record yet: one is created vacant, then claimed by compare-and-swap.
                Ok(None) => match create_vacant(&names.lease) {
                    Ok(()) => continue,
                    Err(_) => return Permit::Send,
                },
                Err(_) => return Permit::Send,
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
    /// The timer runs faster from now on, so they see the keys within 100 ms.
    pub(crate) fn watch(&self, issuer: usize, until: UnixTime) {
        self.watching.borrow_mut().insert(issuer, until);
    }

    /// Sets the timer, once.
    pub(crate) fn start_timer(&self) -> Result<(), host::HostError> {
        if !self.timer_set.get() {
            host::set_tick_period(TICK_MS)?;
            self.timer_set.set(true);
        }
        Ok(())
    }

    /// Whether this tick does its work: the first one, every one while requests wait for
    /// another VM's fetch, else one a second.
    pub(crate) fn tick_works(&self) -> bool {
        let Ok(now) = host::now_nanos() else {
            return true;
        };
        let due = !self.started.get()
            || self.is_watching()
            || now.saturating_sub(self.last_work.get()) >= IDLE_WORK_NANOS;
        if due {
            self.last_work.set(now);
        }
        due
    }

    /// Whether another VM wrote a keys record for `fetch` that this VM has not installed
    /// yet. A request whose `kid` the keys lack asks this before it fetches: the keys it
    /// needs may have come in since the last tick.
    pub(crate) fn has_newer_keys(&self, fetch: &JwksFetch<'_>) -> bool {
        self.me.get().is_some()
            && host::shared_data(&RecordNames::of(fetch).keys)
                .is_ok_and(|record| record.is_some_and(|(_, cas)| !self.is_seen(fetch.issuer, cas)))
    }

    /// The fetch a request was handed for `issuer` is not sent: the keys record another VM
    /// wrote since is installed instead, if it is good. The request then decides again,
    /// and may still fetch if those keys lack its `kid`.
    pub(crate) fn install_instead(&self, gateway: &mut Gateway, issuer: usize) {
        gateway.on_fetch_unsent(issuer);
        let Some(names) = names_of(gateway, issuer) else {
            return;
        };
        if let Some(record) = self.take_newer(issuer, &names) {
            log_shared(&gateway.on_keys_shared(issuer, &record));
        }
    }

    fn is_seen(&self, issuer: usize, cas: u32) -> bool {
        self.seen.borrow().get(&issuer) == Some(&cas)
    }

    fn take_newer(&self, issuer: usize, names: &RecordNames) -> Option<Vec<u8>> {
        let (record, cas) = host::shared_data(&names.keys).ok()??;
        if self.seen.borrow_mut().insert(issuer, cas) == Some(cas) {
            return None;
        }
        Some(record)
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
            if host::replace_shared_data(&names.keys, &record).is_ok() {
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
        if !self.vacated.replace(true) {
            for (_, names) in &sources {
                if let Ok(None) = host::shared_data(&names.lease) {
                    let _ = create_vacant(&names.lease);
                }
            }
        }
        // Which waits are over is read before the keys: a VM writes its keys before it
        // releases its lease, so a wait seen over here finds the keys installed below.
        let over: Vec<usize> = self
            .watching
            .borrow()
            .iter()
            .filter(|(issuer, until)| {
                !gateway.fetch_in_flight(**issuer, now)
                    || now.0 >= until.0
                    || !another_fetching(&sources, **issuer)
            })
            .map(|(issuer, _)| *issuer)
            .collect();
        for (issuer, names) in &sources {
            let Some(record) = self.take_newer(*issuer, names) else {
                continue;
            };
            log_shared(&gateway.on_keys_shared(*issuer, &record));
        }
        for issuer in over {
            self.watching.borrow_mut().remove(&issuer);
            gateway.on_fetch_deferred(issuer, now);
        }
    }
}

/// Whether the lease of `issuer` says another VM's fetch is still in flight.
fn another_fetching(sources: &[(usize, RecordNames)], issuer: usize) -> bool {
    let Some((_, names)) = sources.iter().find(|(i, _)| *i == issuer) else {
        return false;
    };
    match host::shared_data(&names.lease) {
        Ok(Some((bytes, _))) => Lease::parse(&bytes).is_some_and(|lease| lease.fetching),
        _ => false,
    }
}

fn log_shared(outcome: &FetchOutcome<'_>) {
    match &outcome.result {
        Ok(_) => info!("{outcome} (fetched by another worker)"),
        Err(_) => warn!("{outcome} (a record another worker wrote)"),
    }
}

/// Writes a vacant lease where there is none (see [`Lease::VACANT`]).
fn create_vacant(name: &str) -> Result<(), host::HostError> {
    host::create_shared_data(name, Lease::VACANT.to_string().as_bytes())
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
                (count, Some(cas))
            }
            None => (0, None),
        };
        let next = count.wrapping_add(1);
        let text = next.to_string();
        let written = match cas {
            Some(cas) => host::set_shared_data(VM_NUMBERS, text.as_bytes(), cas),
            None => host::create_shared_data(VM_NUMBERS, text.as_bytes()),
        };
        match written {
            Ok(()) => return Some(next.wrapping_mul(1 << 32) ^ (nanos & 0xffff_ffff)),
            Err(CAS_MISMATCH) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// The host's shared data as the gateway's [`SharedMemory`]: the replay cache and the
/// introspection budget of the whole host. A record the host will not read is absent; one
/// it will not write is refused (the gateway then refuses the request it was for).
#[derive(Debug)]
pub(crate) struct HostMemory;

impl SharedMemory for HostMemory {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        host::shared_data(key).ok().flatten()
    }

    fn set(&self, key: &str, value: &[u8], version: Option<u32>) -> Result<(), SetError> {
        let written = match version {
            Some(cas) => host::set_shared_data(key, value, cas),
            None => host::create_shared_data(key, value),
        };
        match written {
            Ok(()) => Ok(()),
            Err(CAS_MISMATCH) => Err(SetError::Changed),
            Err(err) => {
                warn!("the host refuses to write shared data `{key}`: {err}");
                Err(SetError::Refused)
            }
        }
    }
}
