//! `scopegate`: scopegate-core on the command line. One module per command under
//! `commands/`; arguments, help, usage errors and shell completions from clap.
//!
//! Exit codes: 0 success (for `decide`, the request goes to the upstream or is served the
//! metadata document), 1 a denial (`decide`), 2 a usage error (from clap) or an input the
//! command cannot use (a policy that does not compile, a file that cannot be read, ...).

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod commands;
mod error;
mod fetch;
mod host;
mod input;
mod jwks;
mod keys;
mod openapi;
mod time;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::{challenge, check, completions, decide, demo, explain, import, lint, next, scopes};
use error::Error;

/// OAuth 2.0 scope decisions on the command line
///
/// Check a policy, decide a request through the gateway, verify a token's scopes, plan the
/// next scope request, parse a challenge, tour the example decisions.
#[derive(Debug, Parser)]
#[command(
    name = "scopegate",
    version,
    after_help = "Exit codes: 0 success or a pass, 1 a denial (decide, explain) or findings (lint), 2 a usage, policy or input error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Decide(decide::Args),
    Explain(explain::Args),
    Lint(lint::Args),
    Scopes(scopes::Args),
    Next(next::Args),
    Challenge(challenge::Args),
    Demo(demo::Args),
    Completions(completions::Args),
    Import(import::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Check(args) => check::run(&args, &mut out),
        Command::Decide(args) => decide::run(&args, &mut out),
        Command::Explain(args) => explain::run(&args, &mut out),
        Command::Lint(args) => lint::run(&args, &mut out),
        Command::Scopes(args) => scopes::run(&args, &mut out),
        Command::Next(args) => next::run(&args, &mut out),
        Command::Challenge(args) => challenge::run(&args, &mut out),
        Command::Demo(args) => demo::run(&args, &mut out),
        Command::Completions(args) => completions::run(&args, &mut Cli::command(), &mut out),
        Command::Import(args) => import::run(&args, &mut out),
    };
    match result.and_then(|code| out.flush().map(|()| code).map_err(Error::from)) {
        Ok(code) => code,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
