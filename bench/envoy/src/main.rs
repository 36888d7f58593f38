//! The gateway benchmark behind `./scripts/bench`: Envoy 1.40 on 127.0.0.1, one worker
//! each (`--concurrency 1`), answering `GET /api/resources` of `examples/policy.json` with a
//! `direct_response` after the authentication filters, in the setups below, started side by side:
//!
//! 1. no authentication, and 0 an empty proxy-wasm filter (`bench/empty-filter`), which
//!    is what any Wasm filter costs;
//! 2. Envoy's `jwt_authn` + `rbac` enforcing the same policy (see `native.rs`), and 2c the
//!    same with jwt_authn's token cache on (it is off unless configured);
//! 3. the scopegate filter with `token_cache.max_entries: 0`;
//! 4. the scopegate filter with its token cache (1,024 entries);
//! 5. Envoy's `jwt_authn` verifying the signature (failures let through) and scopegate
//!    deciding the rest from the payload it put in the metadata (`issuers[].jwt_authn`),
//!    both without a token cache, and 5c the same with both caches on (scopegate's keeps
//!    the payload and checks each request's metadata against it);
//!    5e (5)'s jwt_authn followed by the empty filter, and 5h by the empty filter making
//!    (5)'s two host calls of every request (the header map, the metadata): what (5) costs
//!    before the scopegate filter does any work of its own.
//!
//! Each is loaded by Debian's `wrk` with RS256, ES256 and EdDSA tokens of the example
//! issuer (the test keys of seed 1; issuers of the policy without inline keys are left
//! out), one that holds `resource:read` (200) and one that does not (403). A cell is a warm-up, a run with `--connections` connections (throughput
//! and loaded latency) and a run with one connection (latency without queueing); the setups
//! of a row are measured back to back in an order that rotates, every row once per round,
//! and each figure is the median over the rounds. Prints markdown tables with the ratios of
//! each setup to (2) and (1).
//!
//! Options: `--duration 5` (seconds per run), `--warmup 1`, `--rounds 3`,
//! `--connections 16`, `--setups 1,0,2,2c,3,4,5,5c,5e,5h` (a subset, for a quick comparison),
//! `--workers 1` (Envoy's `--concurrency` for every setup), `--distinct N` for many
//! distinct tokens instead (see `distinct.rs`), `--mcp` for the MCP route's cost
//! instead (see `mcp.rs`), and `--nginx` for nginx instead of Envoy (see `nginx.rs`).

// A benchmark harness: a broken setup aborts the run with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agreement;
mod distinct;
mod mcp;
mod native;
mod nginx;
mod report;
mod signals;
mod wrk;

use std::process::ExitCode;
use std::time::Instant;

use scopegate_tests::harness::{
    envoy_config, free_port, request, require_envoy_and_filter, Envoy, TempDir, Upstreams,
};
use scopegate_tests::{alice_token, repo_root, TestKeys};
use serde_json::{json, Value};

use agreement::*;
use report::*;

pub(crate) const PATH: &str = "/api/resources";
pub(crate) const OK_BODY: &str = "ok";

pub(crate) struct Options {
    pub(crate) duration: u32,
    pub(crate) warmup: u32,
    pub(crate) rounds: usize,
    pub(crate) connections: u32,
    pub(crate) setups: Vec<Setup>,
    /// `--mcp`: the MCP comparison (mcp.rs) instead of the token comparison.
    pub(crate) mcp: bool,
    /// `--nginx`: the same tokens in nginx (nginx.rs) instead of Envoy.
    pub(crate) nginx: bool,
    /// Envoy's worker threads in every setup.
    pub(crate) workers: u32,
    /// `--distinct N`: N distinct tokens per run (distinct.rs) instead of one.
    pub(crate) distinct: Option<usize>,
}

pub(crate) fn options() -> Result<Options, String> {
    let mut options = Options {
        duration: 5,
        warmup: 1,
        rounds: 3,
        connections: 16,
        setups: SETUPS.to_vec(),
        mcp: false,
        nginx: false,
        workers: 1,
        distinct: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> Result<u32, String> {
            args.next()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or(format!("{arg} needs a positive number"))
        };
        match arg.as_str() {
            "--mcp" => options.mcp = true,
            "--nginx" => options.nginx = true,
            "--duration" => options.duration = number()?,
            "--warmup" => options.warmup = number()?,
            "--rounds" => options.rounds = number()? as usize,
            "--connections" => options.connections = number()?,
            "--workers" => options.workers = number()?,
            "--distinct" => options.distinct = Some(number()? as usize),
            "--setups" => {
                let list = args.next().unwrap_or_default();
                options.setups = SETUPS
                    .into_iter()
                    .filter(|s| list.split(',').any(|key| key == s.key()))
                    .collect();
                if options.setups.is_empty() {
                    return Err(format!(
                        "--setups takes a list of 1, 0, 2, 2c, 3, 4, 5, 5c, 5e, 5h: `{list}`"
                    ));
                }
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
}

/// The setups, in table order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    NoAuth,
    Empty,
    Native,
    NativeCached,
    Filter,
    FilterCached,
    VerifiedByJwtAuthn,
    VerifiedByJwtAuthnCached,
    JwtAuthnEmpty,
    JwtAuthnHostCalls,
}

pub(crate) const SETUPS: [Setup; 10] = [
    Setup::NoAuth,
    Setup::Empty,
    Setup::Native,
    Setup::NativeCached,
    Setup::Filter,
    Setup::FilterCached,
    Setup::VerifiedByJwtAuthn,
    Setup::VerifiedByJwtAuthnCached,
    Setup::JwtAuthnEmpty,
    Setup::JwtAuthnHostCalls,
];

impl Setup {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::NoAuth => "1",
            Self::Empty => "0",
            Self::Native => "2",
            Self::NativeCached => "2c",
            Self::Filter => "3",
            Self::FilterCached => "4",
            Self::VerifiedByJwtAuthn => "5",
            Self::VerifiedByJwtAuthnCached => "5c",
            Self::JwtAuthnEmpty => "5e",
            Self::JwtAuthnHostCalls => "5h",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::NoAuth => "(1) no auth",
            Self::Empty => "(0) empty Wasm filter",
            Self::Native => "(2) jwt_authn + rbac",
            Self::NativeCached => "(2c) jwt_authn + rbac, jwt cache",
            Self::Filter => "(3) scopegate, cache off",
            Self::FilterCached => "(4) scopegate, cache on",
            Self::VerifiedByJwtAuthn => "(5) jwt_authn verifies, scopegate decides",
            Self::VerifiedByJwtAuthnCached => "(5c) the same, jwt_authn's jwt cache",
            Self::JwtAuthnEmpty => "(5e) (5)'s jwt_authn + empty Wasm filter",
            Self::JwtAuthnHostCalls => "(5h) (5)'s jwt_authn + (5)'s two host calls",
        }
    }

    /// The Envoy bootstrap of this setup, from the harness's (listener, admin, filter
    /// configuration), with its routes and HTTP filters replaced.
    pub(crate) fn config(self, listen: u16, policy: &Value) -> Value {
        let mut policy = policy.clone();
        // (3) and (5) see every token as new: no token cache.
        let uncached = matches!(self, Self::Filter | Self::VerifiedByJwtAuthn);
        let entries = if uncached { 0 } else { 1024 };
        policy["token_cache"] = json!({"max_entries": entries});
        let policy_text = policy.to_string();
        // The `api` cluster stays unused: every route answers directly.
        let upstreams = Upstreams {
            api: listen,
            jwks: None,
        };
        let mut config = envoy_config(listen, &upstreams, &policy_text);
        let manager = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]
            ["filters"][0]["typed_config"];
        // As in examples/envoy.yaml, so that Envoy and scopegate agree on the path.
        manager["normalize_path"] = json!(true);
        manager["merge_slashes"] = json!(true);
        manager["path_with_escaped_slashes_action"] = json!("REJECT_REQUEST");
        let router = manager["http_filters"][1].clone();
        let scopegate = manager["http_filters"][0].clone();
        let direct = json!({"virtual_hosts": [{"name": "api", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": OK_BODY}}}
        ]}]});
        let empty = |calls: &str| {
            let mut empty = scopegate.clone();
            let config = &mut empty["typed_config"]["config"];
            config["vm_config"]["code"]["local"]["filename"] = json!(empty_filter_wasm());
            config["configuration"]["value"] = json!(calls);
            empty
        };
        let (filters, routes) = match self {
            Self::NoAuth => (vec![router], direct),
            Self::Empty => (vec![empty(""), router], direct),
            Self::JwtAuthnEmpty | Self::JwtAuthnHostCalls => {
                let (jwt_authn, _) = native::verify_only(&policy, None);
                let calls = match self {
                    Self::JwtAuthnEmpty => "",
                    _ => "calls: headers metadata",
                };
                (vec![jwt_authn, empty(calls), router], direct)
            }
            Self::Native | Self::NativeCached => {
                let cache = (self == Self::NativeCached).then_some(1024);
                let (mut filters, routes) = native::enforce(&policy, cache, OK_BODY);
                filters.push(router);
                (filters, routes)
            }
            Self::Filter | Self::FilterCached => (vec![scopegate, router], direct),
            Self::VerifiedByJwtAuthn | Self::VerifiedByJwtAuthnCached => {
                let cache = (self == Self::VerifiedByJwtAuthnCached).then_some(1024);
                let (jwt_authn, verified) = native::verify_only(&policy, cache);
                let mut scopegate = scopegate;
                scopegate["typed_config"]["config"]["configuration"]["value"] =
                    json!(verified.to_string());
                (vec![jwt_authn, scopegate, router], direct)
            }
        };
        manager["http_filters"] = json!(filters);
        manager["route_config"] = routes;
        config
    }
}

/// What a row's token gets from every setup that authenticates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    Denied,
    /// The allowed token with one signature byte changed: what an anonymous client can
    /// send to make the gateway verify a signature it never caches.
    Forged,
}

/// A row: one token, and the status every setup but (1) and (0) must answer.
pub(crate) struct Row {
    pub(crate) alg: &'static str,
    pub(crate) outcome: Outcome,
    pub(crate) token: String,
}

impl Row {
    fn expected(&self, setup: Setup) -> u16 {
        match setup {
            // They do not enforce: jwt_authn lets a forged token through to them.
            Setup::NoAuth | Setup::Empty | Setup::JwtAuthnEmpty | Setup::JwtAuthnHostCalls => 200,
            _ => self.expected_status(),
        }
    }

    /// What a gateway that enforces the policy answers.
    fn expected_status(&self) -> u16 {
        match self.outcome {
            Outcome::Allowed => 200,
            Outcome::Denied => 403,
            Outcome::Forged => 401,
        }
    }

    fn label(&self) -> &'static str {
        match self.outcome {
            Outcome::Allowed => "allowed (200)",
            Outcome::Denied => "denied (403)",
            Outcome::Forged => "forged signature (401)",
        }
    }
}

/// `token` with one base64url character in the middle of its signature changed, so that
/// the signature still decodes, to bytes that do not verify.
fn forged(token: &str) -> String {
    let dot = token.rfind('.').expect("a JWS");
    let at = dot + 1 + (token.len() - dot - 1) / 2;
    let replacement = if &token[at..=at] == "A" { "B" } else { "A" };
    format!("{}{replacement}{}", &token[..at], &token[at + 1..])
}

/// The filter that does nothing, as `./scripts/bench` builds it.
pub(crate) fn empty_filter_wasm() -> std::path::PathBuf {
    repo_root().join("target/wasm32-wasip1/filter/scopegate_empty_filter.wasm")
}

/// A token of the policy's test issuer (test keys of seed 1) with `claims` added, valid
/// long enough for any run (the cache keeps a token until its `exp`).
pub(crate) fn token(keys: &TestKeys, policy: &Value, alg: &str, claims: &Value) -> String {
    alice_token(keys, policy, alg, 6 * 3600, claims).expect("an issuer with inline keys")
}

pub(crate) fn rows(policy: &Value, keys: &TestKeys) -> Vec<Row> {
    let mut rows = Vec::new();
    for alg in ["RS256", "ES256", "EdDSA"] {
        for (outcome, scope) in [
            (Outcome::Allowed, "openid resource:read"),
            (Outcome::Denied, "openid"),
        ] {
            rows.push(Row {
                alg,
                outcome,
                token: token(keys, policy, alg, &json!({ "scope": scope })),
            });
        }
        let allowed = &rows[rows.len() - 2].token;
        rows.push(Row {
            alg,
            outcome: Outcome::Forged,
            token: forged(allowed),
        });
    }
    rows
}

pub(crate) fn run() -> Result<(), String> {
    let options = options()?;
    require_envoy_and_filter();
    let empty_setups = [Setup::Empty, Setup::JwtAuthnEmpty, Setup::JwtAuthnHostCalls];
    let wants_empty = options.setups.iter().any(|s| empty_setups.contains(s));
    if !options.mcp && wants_empty && !empty_filter_wasm().exists() {
        return Err(format!(
            "{} is missing: cargo build --profile filter -p scopegate-empty-filter --target \
             wasm32-wasip1 (./scripts/bench does)",
            empty_filter_wasm().display()
        ));
    }
    let policy_path = repo_root().join("examples/policy.json");
    let mut policy: Value = serde_json::from_str(
        &std::fs::read_to_string(&policy_path).map_err(|e| format!("{policy_path:?}: {e}"))?,
    )
    .map_err(|e| e.to_string())?;
    // Only issuers with inline keys: no identity provider runs here, and an issuer whose
    // JWKS cannot be fetched would only add retries to the measurements.
    if let Some(issuers) = policy["issuers"].as_array_mut() {
        issuers.retain(|issuer| issuer.get("jwks").is_some());
    }
    if options.mcp {
        return mcp::run(&options, &policy);
    }
    if options.nginx {
        return nginx::run(&options, &policy);
    }
    if let Some(count) = options.distinct {
        return distinct::run(&options, &policy, count);
    }
    let keys = TestKeys::from_seed(1);
    let rows = rows(&policy, &keys);
    let scratch = TempDir::new("bench");
    let hook = wrk::write_hook(scratch.path());
    let load_before = loadavg();

    let mut envoys = Vec::new();
    for &setup in &options.setups {
        let listen = free_port();
        let envoy =
            Envoy::start_on_workers(&setup.config(listen, &policy), listen, options.workers)
                .map_err(|f| format!("{}: Envoy did not start:\n{}", setup.label(), f.log))?;
        eprintln!(
            "bench: {} on 127.0.0.1:{} (pid {})",
            setup.label(),
            envoy.port,
            envoy.pid()
        );
        envoys.push((setup, envoy));
    }
    for row in &rows {
        let authorization = format!("Bearer {}", row.token);
        for (setup, envoy) in &envoys {
            let response = request(
                envoy.port,
                "GET",
                PATH,
                &[("authorization", &authorization)],
            )
            .map_err(|e| format!("{}: {e}", setup.label()))?;
            if response.status != row.expected(*setup) {
                return Err(format!(
                    "{} answered {} to the {} {} token, expected {}: {:?}\n{}",
                    setup.label(),
                    response.status,
                    row.alg,
                    row.label(),
                    row.expected(*setup),
                    response.body,
                    envoy.log()
                ));
            }
        }
    }

    let find = |wanted: Setup| envoys.iter().find(|(s, _)| *s == wanted).map(|(_, e)| e);
    let agreed = match (find(Setup::Native), find(Setup::Filter)) {
        (Some(native), Some(filter)) => Some(agreement(&policy, &keys, native, filter)?),
        _ => None,
    };

    let started = Instant::now();
    let cells_per_round = rows.len() * envoys.len();
    let mut cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|_| envoys.iter().map(|_| Cell::default()).collect())
        .collect();
    for round in 0..options.rounds {
        for (r, row) in rows.iter().enumerate() {
            let header = vec![format!("Authorization: Bearer {}", row.token)];
            for k in 0..envoys.len() {
                // Rotate who goes first, so that drift in the machine's load spreads evenly.
                let s = (k + round + r) % envoys.len();
                let (setup, envoy) = &envoys[s];
                let url = format!("http://127.0.0.1:{}{PATH}", envoy.port);
                let load = options.connections;
                wrk::run(&hook, &url, &header, load, options.warmup)?;
                let loaded = wrk::run(&hook, &url, &header, load, options.duration)?;
                let single = wrk::run(&hook, &url, &header, 1, options.duration)?;
                let cell = &mut cells[r][s];
                for (name, run) in [("loaded", &loaded), ("single", &single)] {
                    let expected_non_2xx = if row.expected(*setup) == 200 {
                        0
                    } else {
                        run.requests
                    };
                    if run.non_2xx != expected_non_2xx || run.socket_errors != 0 {
                        cell.anomalies.push(format!(
                            "{name} run of round {}: {} of {} requests not 2xx, {} socket errors",
                            round + 1,
                            run.non_2xx,
                            run.requests,
                            run.socket_errors
                        ));
                    }
                }
                cell.load.push(loaded);
                cell.single.push(single);
                let done = round * cells_per_round + r * envoys.len() + k + 1;
                eprintln!(
                    "bench: [{done}/{}] {} {} {}: {:.0} req/s, p99 {:.0} µs; 1 connection: p50 {:.0} µs",
                    cells_per_round * options.rounds,
                    row.alg,
                    row.label(),
                    setup.label(),
                    loaded.rps,
                    loaded.p99,
                    single.p50
                );
            }
        }
    }
    let elapsed = started.elapsed();
    let load_after = loadavg();
    drop(envoys);

    println!(
        "{}",
        report(&options, &rows, &cells, elapsed, &load_before, &load_after)
    );
    if let Some(table) = agreed {
        println!("The same policy in both, checked before measuring (ES256 tokens):\n\n{table}");
    }
    Ok(())
}

fn main() -> ExitCode {
    signals::stop_children_on_signals();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}
