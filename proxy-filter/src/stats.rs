//! Counters in the host's stats (Envoy shows them as `wasmcustom.scopegate.*`).

use std::collections::BTreeMap;

use scopegate_core::DECISION_CODES;

use crate::host::{define_counter, increment_counter};
use scopegate_core::gateway::Count;

/// Distinct scope counters kept before the rest go to `missing_scope.other`: scopes built
/// from path parameters would otherwise make one counter per resource.
const MAX_SCOPE_COUNTERS: usize = 128;

/// Counter ids, defined on first use. Counts with fixed names are kept by those
/// (`&'static str` pairs, compared without hashing), so that counting a request builds no
/// string: a cached request counts two of them.
pub(crate) struct Stats {
    fixed: Vec<FixedCounter>,
    ids: BTreeMap<String, Option<u32>>,
    scope_counters: usize,
}

/// A counter of a [`Count`] with fixed parts: family, name, id.
type FixedCounter = (&'static str, &'static str, Option<u32>);

impl Stats {
    pub(crate) fn new() -> Self {
        // Declared up front so that every decision counter shows, at 0, from the start.
        let fixed = DECISION_CODES
            .iter()
            .map(|code| ("decision", *code, define("decision", code)))
            .collect();
        Self {
            fixed,
            ids: BTreeMap::new(),
            scope_counters: 0,
        }
    }

    /// Records one counter event of the gateway.
    pub(crate) fn count(&mut self, count: &Count) {
        if let Some((family, name)) = count.fixed_parts() {
            let id = self.fixed_id(family, name);
            increment(id);
            return;
        }
        if let Count::MissingScope(scope) = count {
            let name = format!("missing_scope.{scope}");
            if self.ids.contains_key(&name) || self.scope_counters < MAX_SCOPE_COUNTERS {
                if !self.ids.contains_key(&name) {
                    self.scope_counters += 1;
                }
                self.increment(&name);
            } else {
                self.increment("missing_scope.other");
            }
        }
    }

    /// Counts a request answered 500 because the host refused a header change.
    pub(crate) fn count_host_error(&mut self) {
        self.increment("host_error");
    }

    fn fixed_id(&mut self, family: &'static str, name: &'static str) -> Option<u32> {
        let known = self
            .fixed
            .iter()
            .find(|(f, n, _)| *n == name && *f == family);
        if let Some((_, _, id)) = known {
            return *id;
        }
        let id = define(family, name);
        self.fixed.push((family, name, id));
        id
    }

    fn increment(&mut self, name: &str) {
        let id = match self.ids.get(name) {
            Some(id) => *id,
            None => {
                let id = define_counter(&format!("scopegate.{name}")).ok();
                self.ids.insert(name.to_owned(), id);
                id
            }
        };
        increment(id);
    }
}

/// Defines the counter `scopegate.<family>.<name>`; `None` if the host has no metrics.
fn define(family: &str, name: &str) -> Option<u32> {
    define_counter(&format!("scopegate.{family}.{name}")).ok()
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        // A host without metrics support loses the count, not the request.
        let _ = increment_counter(id);
    }
}
