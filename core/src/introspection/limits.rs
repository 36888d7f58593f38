//! How many introspection calls the policy lets a gateway make (spent in `budget.rs`).

/// Default `max_calls_per_second`: a small IdP answers that many without notice.
pub const DEFAULT_CALLS_PER_SECOND: u32 = 20;
/// Default `max_calls_in_flight`.
pub const DEFAULT_CALLS_IN_FLIGHT: u32 = 8;

/// The compiled limits of an issuer's introspection calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Calls started in one second of the gateway's clock.
    pub per_second: u32,
    /// Calls sent and not yet answered.
    pub in_flight: u32,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        Self {
            per_second: DEFAULT_CALLS_PER_SECOND,
            in_flight: DEFAULT_CALLS_IN_FLIGHT,
        }
    }
}
