//! `scopegate demo`: the offline tour of the decisions, through the gateway.
//!
//! The example policy and fourteen requests of the shared decision vectors (with tokens
//! signed by the example issuer's keys, `demo-tour.json`) are compiled into the binary with
//! `include_str!`: the tour reads no file at run time and works from any directory, and it
//! always shows the policy and tokens of the sources it was built from.

use std::io::Write;
use std::process::ExitCode;

use scopegate_core::{Policy, UnixTime};
use serde::Deserialize;

use crate::error::Error;
use crate::host::{header_pairs, Host, Outcome};

/// `examples/policy.json`.
const POLICY: &str = include_str!("../../../examples/policy.json");
/// The tour's requests: cases of the `example` suite of `tests/vectors/decisions.json`
/// (`cli/tests/cli.rs` checks that they still are), so that the binary carries fourteen
/// requests rather than every vector.
const TOUR: &str = include_str!("demo-tour.json");

/// Tour the example policy's decisions, offline
///
/// Fourteen requests under examples/policy.json with tokens of the example issuer, and what
/// the gateway answers each. The policy and the tokens are built into the binary.
#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Deserialize)]
struct Tour {
    now: u64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    request: CaseRequest,
}

#[derive(Deserialize)]
struct CaseRequest {
    method: String,
    path: String,
    #[serde(default)]
    authorization: Vec<String>,
}

/// Prints each request, its credentials and the gateway's answer.
pub fn run(_: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    // Both documents are built in: a failure here is a broken build, not a user's input.
    let built_in = |what: &str, err: &dyn std::fmt::Display| {
        Error::new(format!(
            "the built-in {what} is unusable ({err}): rebuild scopegate"
        ))
    };
    let policy = Policy::from_json(POLICY).map_err(|e| built_in("examples/policy.json", &e))?;
    let tour: Tour = serde_json::from_str(TOUR).map_err(|e| built_in("demo tour", &e))?;
    let now = UnixTime(tour.now);
    let mut host = Host::start(policy, Vec::new(), now)?;
    writeln!(
        out,
        "scopegate demo: examples/policy.json, tokens signed by the example issuer's keys, now = {}\n",
        now.0
    )?;
    for case in &tour.cases {
        let (name, request) = (&case.name, &case.request);
        let mut headers = vec![
            (":method", request.method.as_str()),
            (":path", request.path.as_str()),
        ];
        headers.extend(
            request
                .authorization
                .iter()
                .map(|a| ("authorization", a.as_str())),
        );
        writeln!(out, "# {name}")?;
        writeln!(
            out,
            "{} {}  {}",
            request.method,
            request.path,
            describe_token(&request.authorization)
        )?;
        match host.request(&header_pairs(&headers), None, now)? {
            Outcome::Forward { set, .. } if set.is_empty() => {
                writeln!(out, "  -> pass to the API")?;
            }
            Outcome::Forward { set, .. } => {
                let set: Vec<String> = set.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                writeln!(out, "  -> pass to the API with {}", set.join("; "))?;
            }
            Outcome::Deny(denial) => {
                writeln!(
                    out,
                    "  -> {}  WWW-Authenticate: {}",
                    denial.status, denial.www_authenticate
                )?;
                writeln!(out, "         {}", denial.body)?;
            }
            Outcome::Serve { body, .. } => writeln!(out, "  -> 200 {body}")?,
        }
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A short description of the credentials: the token's scope-bearing claims, decoded
/// without verification just for display.
fn describe_token(authorization: &[String]) -> String {
    match authorization {
        [] => "(no token)".to_owned(),
        [_, _, ..] => format!("({} Authorization headers)", authorization.len()),
        [value] => {
            let token = value.strip_prefix("Bearer ").unwrap_or(value);
            match scopegate_core::decode_token(token) {
                Ok(decoded) => {
                    let claims = decoded.claims();
                    let mut parts = vec![format!("alg={}", decoded.algorithm())];
                    for claim in ["scope", "roles", "exp", "auth_time"] {
                        if let Some(value) = claims.get(claim) {
                            parts.push(format!("{claim}={value}"));
                        }
                    }
                    format!("(token: {})", parts.join(" "))
                }
                Err(err) => format!("(token: {err})"),
            }
        }
    }
}
