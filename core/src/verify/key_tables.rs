//! When a key gets its tables of multiples (ES256's and EdDSA's verifiers).
//!
//! A key used once (a DPoP proof's) would pay more for its tables than it saves, and one
//! that verified nothing yet gets none: forged tokens without a `kid`, which every key of
//! the issuer is tried on, build no tables. So a key is checked without them until one
//! signature verified with it, and with them from its next check on.

use core::sync::atomic::{AtomicBool, Ordering};

/// A key's tables `T`, built at its first check after a signature verified with it. Shared
/// by the key's clones (behind an `Arc`), so that a clone does not build them again; a key
/// read again (at every JWKS refresh, and by each worker) starts without them.
#[derive(Debug)]
pub(crate) struct KeyTables<T> {
    used: AtomicBool,
    tables: spin::Once<T>,
}

impl<T> Default for KeyTables<T> {
    fn default() -> Self {
        Self {
            used: AtomicBool::new(false),
            tables: spin::Once::new(),
        }
    }
}

impl<T> KeyTables<T> {
    /// `check` given the tables (built by `build` when first needed) once a signature
    /// verified with the key, `None` before; its answer.
    pub(crate) fn check(
        &self,
        build: impl FnOnce() -> T,
        check: impl FnOnce(Option<&T>) -> bool,
    ) -> bool {
        let used = self.used.load(Ordering::Relaxed);
        let valid = check(used.then(|| self.tables.call_once(build)));
        if valid && !used {
            self.used.store(true, Ordering::Relaxed);
        }
        valid
    }

    /// Makes every later check use the tables, as one valid signature does.
    #[cfg(test)]
    pub(crate) fn use_tables(&self) {
        self.used.store(true, Ordering::Relaxed);
    }

    /// Whether later checks use the tables, and whether they are built.
    #[cfg(test)]
    pub(crate) fn state(&self) -> (bool, bool) {
        (
            self.used.load(Ordering::Relaxed),
            self.tables.is_completed(),
        )
    }
}
