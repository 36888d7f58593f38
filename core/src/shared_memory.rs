//! Memory that every VM of a host sees (proxy-wasm shared data), for the defences that must
//! hold for a whole Envoy rather than one worker: the DPoP replay cache and the
//! introspection budget. In the manner of rustls's `StoresServerSessions`, the gateway is
//! handed the store once ([`crate::gateway::Gateway::share_memory`]) and decides what to
//! write; the host only moves bytes.
//!
//! Records are updated by compare-and-swap: a writer reads a record with its version and
//! writes it back only if nobody wrote in between.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

/// Why a record was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetError {
    /// Another writer changed it since it was read: read it again.
    Changed,
    /// The host refused (no shared memory, or it is full).
    Refused,
}

/// Byte records by key, shared by the host's VMs.
pub trait SharedMemory: core::fmt::Debug {
    /// The record under `key` and its version, or `None` if there is none.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;

    /// Writes `value` under `key` if the record is still at `version`, or, for `None`, if
    /// there is no record: [`SetError::Changed`] otherwise. "No record" must be checked
    /// atomically too: two writers that both found none must not both succeed, or the later
    /// erases the earlier (a DPoP proof accepted on two workers).
    fn set(&self, key: &str, value: &[u8], version: Option<u32>) -> Result<(), SetError>;
}

/// A [`SharedMemory`] of one process, for tests and for hosts that run one VM.
///
/// ```
/// use scopegate_core::shared_memory::{LocalMemory, SetError, SharedMemory};
/// let memory = LocalMemory::default();
/// memory.set("k", b"one", None).unwrap();
/// let (value, version) = memory.get("k").unwrap();
/// assert_eq!(value, b"one");
/// memory.set("k", b"two", Some(version)).unwrap();
/// assert_eq!(memory.set("k", b"three", Some(version)), Err(SetError::Changed));
/// assert_eq!(memory.set("k", b"four", None), Err(SetError::Changed), "there is a record");
/// ```
#[derive(Debug, Default)]
pub struct LocalMemory {
    records: RefCell<BTreeMap<String, (Vec<u8>, u32)>>,
}

impl SharedMemory for LocalMemory {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.records.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], version: Option<u32>) -> Result<(), SetError> {
        let mut records = self.records.borrow_mut();
        let current = records.get(key).map(|(_, v)| *v);
        if version != current {
            return Err(SetError::Changed);
        }
        let current = current.unwrap_or(0);
        records.insert(key.into(), (value.to_vec(), current.wrapping_add(1).max(1)));
        Ok(())
    }
}
