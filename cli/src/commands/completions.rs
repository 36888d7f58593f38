//! `scopegate completions SHELL`: a shell completion script, from clap_complete.

use std::io::Write;
use std::process::ExitCode;

use clap_complete::Shell;

use crate::error::Error;

/// Print a shell completion script
///
/// For example `scopegate completions bash > ~/.local/share/bash-completion/completions/scopegate`
/// or `scopegate completions zsh > ~/.zfunc/_scopegate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// Writes the script for the whole command line `command`.
pub fn run(
    args: &Args,
    command: &mut clap::Command,
    out: &mut dyn Write,
) -> Result<ExitCode, Error> {
    // clap_complete panics on a failed write: render first, then write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, command, "scopegate", &mut script);
    out.write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}
