//! Time as the core sees it: a number the host passes in.

/// A point in time, in whole seconds since 1970-01-01T00:00:00Z. The core never reads a
/// clock: the gateway passes the host's time, the browser `Date.now()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);
