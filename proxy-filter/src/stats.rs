//! Counters in the host's stats (Envoy shows them as `wasmcustom.scopegate.*`).

use std::collections::HashMap;

use scopegate_core::decision::DECISION_CODES;

use crate::host::{define_counter, increment_counter};
use scopegate_core::gateway::Count;

/// Distinct scope counters kept before the rest go to `missing_scope.other`: scopes built
/// from path parameters would otherwise make one counter per resource.
const MAX_SCOPE_COUNTERS: usize = 128;

/// Counter ids by name, defined on first use. Names that are `&'static str` codes are
/// looked up by code, so that counting a decision does not build a string.
pub(crate) struct Stats {
    ids: HashMap<String, Option<u32>>,
    decisions: HashMap<&'static str, Option<u32>>,
    token_errors: HashMap<&'static str, Option<u32>>,
    scope_counters: usize,
}

impl Stats {
    pub(crate) fn new() -> Self {
        // Declared up front so that every decision counter shows, at 0, from the start.
        let decisions = DECISION_CODES
            .iter()
            .map(|code| (*code, define(&format!("decision.{code}"))))
            .collect();
        Self {
            ids: HashMap::new(),
            decisions,
            token_errors: HashMap::new(),
            scope_counters: 0,
        }
    }

    /// Records one counter event of the gateway.
    pub(crate) fn count(&mut self, count: &Count) {
        match count {
            Count::Decision(code) => count_code(&mut self.decisions, "decision", code),
            Count::InvalidToken(code) => count_code(&mut self.token_errors, "invalid_token", code),
            Count::MissingScope(scope) => {
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
            other => self.increment(&other.to_string()),
        }
    }

    /// Counts a request answered 500 because the host refused a header change.
    pub(crate) fn count_host_error(&mut self) {
        self.increment("host_error");
    }

    fn increment(&mut self, name: &str) {
        let id = self.id(name);
        increment(id);
    }

    fn id(&mut self, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = define(name);
        self.ids.insert(name.to_owned(), id);
        id
    }
}

/// Defines the counter `scopegate.<name>`; `None` if the host has no metrics.
fn define(name: &str) -> Option<u32> {
    define_counter(&format!("scopegate.{name}")).ok()
}

/// Adds one to `scopegate.<family>.<code>`, defining it on first use.
fn count_code(ids: &mut HashMap<&'static str, Option<u32>>, family: &str, code: &'static str) {
    let id = *ids
        .entry(code)
        .or_insert_with(|| define(&format!("{family}.{code}")));
    increment(id);
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        // A host without metrics support loses the count, not the request.
        let _ = increment_counter(id);
    }
}
