//! `scopegate challenge WWW_AUTHENTICATE`: parse a `WWW-Authenticate` value.

use std::io::Write;
use std::process::ExitCode;

use scopegate_core::parse_challenges;

use crate::error::Error;

/// Parse a WWW-Authenticate value into its challenges, as JSON
///
/// A value that does not parse is an error (exit 2) that names the byte where it fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The header value, e.g. 'Bearer realm="api", error="insufficient_scope", scope="a b"'
    #[arg(value_name = "WWW_AUTHENTICATE")]
    header: String,
}

/// Prints `[{"scheme": ..., "params": [[name, value], ...]}, ...]`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let challenges = parse_challenges(&args.header).map_err(|err| Error::new(err.to_string()))?;
    serde_json::to_writer_pretty(&mut *out, &challenges)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}
