//! Counters in the host's stats (Envoy shows them as `wasmcustom.scopegate.*`).

use std::collections::HashMap;

use proxy_wasm::hostcalls::{define_metric, increment_metric};
use proxy_wasm::types::MetricType;
use scopegate_core::decision::DECISION_CODES;
use scopegate_core::Decision;

/// Distinct scope counters kept before the rest go to `missing_scope.other`: scopes built
/// from path parameters would otherwise make one counter per resource.
const MAX_SCOPE_COUNTERS: usize = 128;

/// Counter ids by name, defined on first use.
pub(crate) struct Stats {
    ids: HashMap<String, Option<u32>>,
    scope_counters: usize,
}

impl Stats {
    pub(crate) fn new() -> Self {
        let mut stats = Self {
            ids: HashMap::new(),
            scope_counters: 0,
        };
        // Declared up front so that every decision counter shows, at 0, from the start.
        for code in DECISION_CODES {
            stats.id(&format!("decision.{code}"));
        }
        stats
    }

    /// Adds one to `scopegate.<name>`.
    pub(crate) fn count(&mut self, name: &str) {
        if let Some(id) = self.id(name) {
            // A host without metrics support loses the count, not the request.
            let _ = increment_metric(id, 1);
        }
    }

    /// Counts a decision, its token error, and each missing scope.
    pub(crate) fn record(&mut self, decision: &Decision<'_>) {
        self.count(&format!("decision.{}", decision.code()));
        let Decision::Deny(denial) = decision else {
            return;
        };
        if let scopegate_core::DenyReason::InvalidToken(err) = &denial.reason {
            self.count(&format!("invalid_token.{}", err.code()));
        }
        for scope in &denial.missing {
            let name = format!("missing_scope.{scope}");
            if self.ids.contains_key(&name) || self.scope_counters < MAX_SCOPE_COUNTERS {
                if !self.ids.contains_key(&name) {
                    self.scope_counters += 1;
                }
                self.count(&name);
            } else {
                self.count("missing_scope.other");
            }
        }
    }

    fn id(&mut self, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = define_metric(MetricType::Counter, &format!("scopegate.{name}")).ok();
        self.ids.insert(name.to_owned(), id);
        id
    }
}
