//! `scopegate decide POLICY METHOD PATH`: one request through the core's gateway.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use scopegate_core::{Allow, Decision, Served};

use crate::error::Error;
use crate::host::{header_pairs, Host, Outcome};
use crate::input::{load_policy, Clock};
use crate::jwks::{missing_keys_hint, JwksArgs};

/// Decide one request through the gateway and print the answer as JSON
///
/// The request runs through the core's gateway as in the proxy filter. Exit 0 when it goes
/// to the upstream (or is served the metadata document), 1 when it is denied, 2 on an
/// error. The command fetches nothing: the keys of an issuer with a `jwks_uri` come from
/// --jwks; without them its tokens are refused (401, `keys_unavailable`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy document (JSON)
    #[arg(value_name = "POLICY")]
    policy: PathBuf,
    /// The request method, e.g. GET
    method: String,
    /// The request target, path and query, e.g. /api/resources?page=2
    path: String,
    /// An access token, sent as `authorization: Bearer JWT`; twice for two headers
    #[arg(long, value_name = "JWT")]
    token: Vec<String>,
    /// The request's Origin header (CORS)
    #[arg(long)]
    origin: Option<String>,
    /// Any other request header, e.g. -H 'access-control-request-method: PUT'
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The request body, read by MCP routes (JSON-RPC), e.g.
    /// '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}'
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,
    #[command(flatten)]
    jwks: JwksArgs,
    #[command(flatten)]
    clock: Clock,
}

fn parse_header(value: &str) -> Result<(String, String), String> {
    let (name, value) = value
        .split_once(':')
        .filter(|(name, _)| !name.trim().is_empty())
        .ok_or("expected `NAME: VALUE`, e.g. `access-control-request-method: PUT`")?;
    Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
}

/// Runs the request through the gateway and prints `Decision::answer`, pretty.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let policy = load_policy(&args.policy)?;
    let jwks = args.jwks.load(&policy, &args.policy)?;
    let now = args.clock.now()?;
    let mut host = Host::start(policy, jwks, now)?;

    let authorization: Vec<String> = args
        .token
        .iter()
        .map(|token| format!("Bearer {}", token.strip_prefix("Bearer ").unwrap_or(token)))
        .collect();
    let mut headers: Vec<(&str, &str)> = vec![(":method", &args.method), (":path", &args.path)];
    headers.extend(authorization.iter().map(|a| ("authorization", a.as_str())));
    headers.extend(args.origin.iter().map(|o| ("origin", o.as_str())));
    headers.extend(args.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let pairs = header_pairs(&headers);
    let body = args.body.as_deref().map(str::as_bytes);
    let outcome = host.request(&pairs, body, now)?;

    let decision = match &outcome {
        Outcome::Deny(denial) => Decision::Deny(denial.clone()),
        Outcome::Forward {
            would_deny: Some(denial),
            ..
        } => Decision::Deny(denial.clone()),
        Outcome::Serve { content_type, body } => Decision::Serve(Served { content_type, body }),
        Outcome::Forward {
            set,
            allowed: Some((reason, route)),
            would_deny: None,
        } => Decision::Allow(Allow {
            reason: *reason,
            route: *route,
            headers: set
                .iter()
                .map(|(name, value)| (name.as_str(), value.clone()))
                .collect(),
        }),
        Outcome::Forward {
            allowed: None,
            would_deny: None,
            ..
        } => {
            return Err(Error::new(
                "the gateway forwards the request without saying why: this is a bug, please \
                 report it",
            ))
        }
    };
    serde_json::to_writer_pretty(&mut *out, &decision.answer(host.policy()))?;
    writeln!(out)?;

    for &issuer in host.keys_missing() {
        if let Some(hint) = missing_keys_hint(host.policy(), issuer) {
            eprintln!("note: {hint}");
        }
    }
    Ok(match outcome {
        Outcome::Deny(_) => ExitCode::from(1),
        Outcome::Forward {
            would_deny: Some(_),
            ..
        } => {
            eprintln!(
                "note: the policy is a dry run (`dry_run: true`): the gateway logs this denial \
                 and forwards the request"
            );
            ExitCode::SUCCESS
        }
        Outcome::Forward { .. } | Outcome::Serve { .. } => ExitCode::SUCCESS,
    })
}
