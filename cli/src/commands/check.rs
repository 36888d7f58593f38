//! `scopegate check POLICY`: compile a policy and list its issuers and routes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use scopegate_core::KeySource;

use crate::error::Error;
use crate::input::load_policy;

/// Compile a policy and list its issuers and routes
///
/// Prints the realm, each issuer with its algorithms and where its keys come from, each
/// route's path template, and a warning for each JWKS key the policy skips. A policy that
/// does not compile is an error (exit 2) that names the file and the JSON path.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy document (JSON)
    #[arg(value_name = "POLICY")]
    policy: PathBuf,
}

/// Prints the compiled policy's outline, with a warning for each JWKS key it skips.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let policy = load_policy(&args.policy)?;
    writeln!(
        out,
        "{}: ok, realm `{}`",
        args.policy.display(),
        policy.realm()
    )?;
    for (index, issuer) in policy.issuers().iter().enumerate() {
        let algorithms: Vec<&str> = issuer.algorithms().iter().map(|a| a.name()).collect();
        let keys = match issuer.keys() {
            KeySource::Inline(set) => {
                for skipped in set.skipped() {
                    writeln!(out, "  warning: issuers[{index}].jwks.{skipped}")?;
                }
                format!("{} inline keys", set.keys().count())
            }
            KeySource::Remote(remote) => {
                format!("keys from {} via cluster `{}`", remote.uri, remote.cluster)
            }
            KeySource::SecretOnly => "shared secret".to_owned(),
            KeySource::JwtAuthn(key) => format!("verified by Envoy's jwt_authn, payload `{key}`"),
        };
        writeln!(
            out,
            "  issuers[{index}] {} ({}; {keys})",
            issuer.issuer(),
            algorithms.join(", ")
        )?;
    }
    let mut index = 0;
    while let Some(path) = policy.route_path(index) {
        writeln!(out, "  routes[{index}] {path}")?;
        index += 1;
    }
    Ok(ExitCode::SUCCESS)
}
