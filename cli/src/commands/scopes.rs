//! `scopegate scopes POLICY JWT`: verify a token and print its effective scopes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::input::{load_policy, Clock};
use crate::jwks::{missing_keys_hint, JwksArgs};
use crate::keys::keys_for;

/// Verify a token and print its effective scopes, one a line
///
/// The effective scopes are the token's scope claims and its mapped roles, as the policy
/// reads them. The keys of an issuer with a `jwks_uri` come from a `--jwks` file, or are
/// fetched from that URL (`--offline` never fetches). A token the policy refuses is an
/// error (exit 2) that says why.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy document (JSON)
    #[arg(value_name = "POLICY")]
    policy: PathBuf,
    /// The access token (a JWT, without `Bearer `)
    token: String,
    #[command(flatten)]
    jwks: JwksArgs,
    /// Never fetch a `jwks_uri`: only `--jwks` files and inline keys
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    clock: Clock,
}

/// Prints the scopes; a refused token is an error (exit 2) that says why.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let policy = load_policy(&args.policy)?;
    let token = token(&args.token);
    let (keys, _) = keys_for(
        &policy,
        &args.policy,
        &args.jwks,
        Some(token),
        !args.offline,
    )?;
    let principal = policy
        .authenticate(token, &keys, args.clock.now()?)
        .map_err(|err| {
            let hint = err
                .refetch_issuer()
                .filter(|&issuer| keys.get(issuer).is_none())
                .and_then(|issuer| missing_keys_hint(&policy, issuer))
                .map(|hint| format!(" ({hint})"))
                .unwrap_or_default();
            Error::new(format!("token refused: {err}{hint}"))
        })?;
    for scope in principal.scopes.iter() {
        writeln!(out, "{scope}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The token without a `Bearer ` pasted along with it.
fn token(given: &str) -> &str {
    given.strip_prefix("Bearer ").unwrap_or(given)
}
