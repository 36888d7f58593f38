//! What every command reads: the policy file and the clock.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use scopegate_core::{Policy, UnixTime};

use crate::error::Error;

/// Reads and compiles the policy at `path`; errors name the file and the JSON path.
pub fn load_policy(path: &Path) -> Result<Policy, Error> {
    let text = fs::read_to_string(path).map_err(|err| Error::file(path, err))?;
    Policy::from_json(&text).map_err(|err| Error::file(path, err))
}

/// `--now SECONDS`: the clock of token validation, the system's by default.
#[derive(Clone, Debug, clap::Args)]
pub struct Clock {
    /// The time to validate tokens at, in seconds since 1970 (default: the system clock)
    #[arg(long, value_name = "SECONDS")]
    now: Option<u64>,
}

impl Clock {
    /// The time given, or the system's.
    pub fn now(&self) -> Result<UnixTime, Error> {
        if let Some(now) = self.now {
            return Ok(UnixTime(now));
        }
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| {
            Error::new("the system clock is before 1970: give the time with --now SECONDS")
        })?;
        Ok(UnixTime(since.as_secs()))
    }
}
