//! `scopegate lint POLICY`: every error of a policy with its JSON path, then warnings.

mod locate;
mod sarif;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use scopegate_core::lint::{lint, Finding, Severity};
use serde_json::json;

use crate::error::Error;

/// Report every error of a policy at once, then the warnings a reviewer needs
///
/// Errors are what stops a gateway loading the policy, each with its JSON path (and line).
/// Warnings: a route shadowed by more specific ones, a public route overlapping a protected
/// one, role mappings to scopes no route needs, required scopes no role grants and no
/// metadata document advertises, prefix scopes never bound, `unmatched: allow`, `max_age`
/// while sample tokens (--token) have no `auth_time`, audiences that are not the resource
/// URL.
///
/// Exit code 0 without errors (and, with --deny-warnings, without warnings), 1 with
/// findings, 2 when the file cannot be read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy document (JSON)
    #[arg(value_name = "POLICY")]
    policy: PathBuf,
    /// Output: text (file:line:column: level[rule] path: message), json, or sarif
    /// (SARIF 2.1.0, for code-scanning UIs)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// A sample access token of one of the policy's issuers (decoded, not verified), for
    /// the rules about what tokens carry; repeat for several
    #[arg(long = "token", value_name = "JWT")]
    tokens: Vec<String>,
    /// Exit 1 on warnings too
    #[arg(long)]
    deny_warnings: bool,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per finding.
    Text,
    /// A JSON array of findings.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// A finding with where it is in the file.
pub struct Located<'a> {
    pub finding: &'a Finding,
    pub line: usize,
    pub column: usize,
}

/// Lints; exit 1 with findings that fail the run.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let text =
        std::fs::read_to_string(&args.policy).map_err(|err| Error::file(&args.policy, err))?;
    let tokens: Vec<&str> = args
        .tokens
        .iter()
        .map(|t| t.strip_prefix("Bearer ").unwrap_or(t))
        .collect();
    let findings = lint(&text, &tokens);
    let located: Vec<Located<'_>> = findings
        .iter()
        .map(|finding| {
            let (line, column) = locate::locate(&text, &finding.path).unwrap_or((1, 1));
            Located {
                finding,
                line,
                column,
            }
        })
        .collect();
    let file = args.policy.display().to_string();
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match args.format {
        Format::Text => {
            for l in &located {
                let level = match l.finding.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                writeln!(
                    out,
                    "{file}:{}:{}: {level}[{}] {}: {}",
                    l.line, l.column, l.finding.rule, l.finding.path, l.finding.message
                )?;
            }
            let plural =
                |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
            writeln!(
                out,
                "{file}: {}, {}",
                plural(errors, "error"),
                plural(warnings, "warning")
            )?;
        }
        Format::Json => {
            let list: Vec<_> = located
                .iter()
                .map(|l| {
                    json!({
                        "severity": match l.finding.severity { Severity::Error => "error", Severity::Warning => "warning" },
                        "rule": l.finding.rule,
                        "path": l.finding.path,
                        "message": l.finding.message,
                        "line": l.line,
                        "column": l.column,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &list)?;
            writeln!(out)?;
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif::report(&file, &located))?;
            writeln!(out)?;
        }
    }
    let fails = errors > 0 || (args.deny_warnings && warnings > 0);
    Ok(if fails {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
