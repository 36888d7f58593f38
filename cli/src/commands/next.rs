//! `scopegate next POLICY --held SCOPES --missing SCOPES`: the next scope request.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use crate::error::Error;
use crate::input::load_policy;

/// Plan the next scope request from the scopes held and missing
///
/// Prints the scopes to add (minimal under the policy's coverage rules) and the whole
/// `scope` parameter of the next authorization request.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy document (JSON)
    #[arg(value_name = "POLICY")]
    policy: PathBuf,
    /// The scopes the client holds, space-separated
    #[arg(long, value_name = "SCOPES", default_value = "")]
    held: String,
    /// The scopes a 403 reported missing, space-separated
    #[arg(long, value_name = "SCOPES", default_value = "")]
    missing: String,
}

/// Prints `{"add": [...], "scope": "..."}`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let policy = load_policy(&args.policy)?;
    let request = policy
        .scope_rules()
        .next_request(&split(&args.held), &split(&args.missing))
        .map_err(|err| Error::new(err.to_string()))?;
    serde_json::to_writer_pretty(
        &mut *out,
        &json!({"add": request.add, "scope": request.scope}),
    )?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

fn split(list: &str) -> Vec<&str> {
    scopegate_core::client::split_scopes(list).collect()
}
