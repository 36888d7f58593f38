//! `scopegate explain POLICY METHOD URL`: why the gateway decides a request as it does.

mod input;
mod json;
mod text;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use scopegate_core::explain::{ExplainOptions, Explanation};
use scopegate_core::request_target;
use scopegate_core::{Decision, Request, UnixTime};

use crate::error::Error;
use crate::input::{load_policy, Clock};
use crate::jwks::JwksArgs;
use crate::keys::{keys_for, KeyOrigin};

use input::{Answer, Given};

/// Explain a decision: the route, what it requires, the token's scopes and their
/// origins, what is missing, and what to do
///
/// The token comes from --token, from -H header lines, or from standard input (a token,
/// header lines, or a pasted 401/403 answer). A 401/403 answer (--answer FILE, or pasted)
/// is explained too: the missing scopes it names, the roles that grant them, the scope
/// request to make. The signature is checked with --jwks files or the keys fetched from
/// the issuer's `jwks_uri`; --no-verify explains without checking it, and says so.
///
/// Exit code 0 when the request passes, 1 when it is denied, 2 for unusable input.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy document (JSON)
    #[arg(value_name = "POLICY")]
    policy: PathBuf,
    /// The request method, in upper case
    method: String,
    /// The request URL or path (`https://api.example/orders/7`, `/orders/7`)
    url: String,
    /// The access token (a JWT; `Bearer ` may be included)
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// A request header line, `Name: value` (Authorization, DPoP, Origin, Mcp-Method, ...);
    /// repeat for several
    #[arg(short = 'H', long = "header", value_name = "LINE")]
    headers: Vec<String>,
    /// A 401/403 answer to explain: status line, headers, JSON body (`-`: standard input)
    #[arg(long, value_name = "FILE")]
    answer: Option<String>,
    /// The request body, for an MCP route (a JSON-RPC message or batch)
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,
    #[command(flatten)]
    jwks: JwksArgs,
    /// Do not check the signature (and fetch no keys): explain what the token claims
    #[arg(long)]
    no_verify: bool,
    /// When the policy last changed, in seconds since 1970 (default: the file's
    /// modification time), for "issued before the policy changed"
    #[arg(long, value_name = "SECONDS")]
    policy_changed_at: Option<u64>,
    /// Print JSON for tools instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    clock: Clock,
}

/// What the two renderings take.
pub struct Report<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub now: UnixTime,
    pub explanation: &'a Explanation<'a>,
    pub keys: &'a KeyOrigin,
    pub answer: Option<&'a Answer>,
    pub answer_remedies: Vec<scopegate_core::explain::Remedy>,
    pub policy: &'a scopegate_core::Policy,
}

/// Explains; exit 0 for a pass, 1 for a denial.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let policy = load_policy(&args.policy)?;
    let target = request_target(&args.url).ok_or_else(|| {
        Error::new(format!(
            "`{}` is neither an absolute URL nor a path starting with `/`",
            args.url
        ))
    })?;
    let mut given = Given::default();
    for line in &args.headers {
        given.headers.push(input::header_line(line)?);
    }
    if let Some(token) = &args.token {
        given
            .headers
            .push(("authorization".into(), input::bearer(token)));
    }
    if let Some(source) = &args.answer {
        given.answer = Some(input::parse_answer(&input::read_text(source)?)?);
    } else if given.headers.is_empty() {
        if let Some(text) = input::stdin_text()? {
            input::classify(&text, &mut given)?;
        }
    }
    let body = match &args.body {
        Some(path) => Some(std::fs::read(path).map_err(|err| Error::file(path, err))?),
        None => None,
    };
    let header = |name: &str| -> Vec<&str> {
        given
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let authorization = header("authorization");
    let dpop = header("dpop");
    let token = authorization.first().map(|value| {
        value
            .split_once(' ')
            .map_or(*value, |(_, token)| token.trim())
    });
    if let Some(token) = token {
        if policy.introspecting(token).is_some() {
            return Err(Error::new(
                "the policy sends this token to its issuer's introspection endpoint, which \
                 the command line does not call; introspect it yourself",
            ));
        }
    }
    let (keys, origin) = keys_for(&policy, &args.policy, &args.jwks, token, !args.no_verify)?;
    let now = args.clock.now()?;
    let policy_changed_at = match args.policy_changed_at {
        Some(at) => Some(UnixTime(at)),
        None => std::fs::metadata(&args.policy)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| UnixTime(d.as_secs())),
    };
    let mut request = Request::new(&args.method, &target);
    request.authorization = &authorization;
    request.dpop = &dpop;
    request.origin = header("origin").first().copied();
    request.mcp_method = header("mcp-method").first().copied();
    request.mcp_name = header("mcp-name").first().copied();
    request.mcp_protocol_version = header("mcp-protocol-version").first().copied();
    request.body = body.as_deref();
    let options = ExplainOptions {
        keys: (!args.no_verify).then_some(&keys),
        now,
        policy_changed_at,
    };
    let explanation = policy.explain(&request, &options);
    let answer_remedies = match (&given.answer, token) {
        (Some(answer), None) => policy.remedies_for_missing(&answer.missing(), &[]),
        _ => Vec::new(),
    };
    let report = Report {
        method: &args.method,
        target: &target,
        now,
        explanation: &explanation,
        keys: &origin,
        answer: given.answer.as_ref(),
        answer_remedies,
        policy: &policy,
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &json::render(&report))?;
        writeln!(out)?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        text::render(&report, colour, out)?;
    }
    let passes = matches!(
        explanation.decision,
        Decision::Allow(_) | Decision::Serve(_) | Decision::NeedBody(_)
    );
    Ok(if passes {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
