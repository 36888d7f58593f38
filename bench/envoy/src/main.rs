//! The gateway benchmark behind `./scripts/bench`: Envoy 1.40 on 127.0.0.1, one worker
//! each (`--concurrency 1`), answering `GET /api/resources` of `examples/policy.json` with a
//! `direct_response` after the authentication filters, in five setups started side by side:
//!
//! 1. no authentication, and 0 an empty proxy-wasm filter (`bench/empty-filter`), which
//!    is what any Wasm filter costs;
//! 2. Envoy's `jwt_authn` + `rbac` enforcing the same policy (see `native.rs`), and 2c the
//!    same with jwt_authn's token cache on (it is off unless configured);
//! 3. the scopegate filter with `token_cache.max_entries: 0`;
//! 4. the scopegate filter with its token cache (1,024 entries).
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
//! `--connections 16`, `--setups 1,0,2,2c,3,4` (a subset, for a quick comparison).

// A benchmark harness: a broken setup aborts the run with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod native;
mod wrk;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use scopegate_tests::harness::{
    envoy_config, filter_wasm, free_port, request, require_envoy_and_filter, Envoy, TempDir,
    Upstreams,
};
use scopegate_tests::{alice_token, repo_root, unix_now, TestKeys};
use serde_json::{json, Value};

const PATH: &str = "/api/resources";
const OK_BODY: &str = "ok";

struct Options {
    duration: u32,
    warmup: u32,
    rounds: usize,
    connections: u32,
    setups: Vec<Setup>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        duration: 5,
        warmup: 1,
        rounds: 3,
        connections: 16,
        setups: SETUPS.to_vec(),
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
            "--duration" => options.duration = number()?,
            "--warmup" => options.warmup = number()?,
            "--rounds" => options.rounds = number()? as usize,
            "--connections" => options.connections = number()?,
            "--setups" => {
                let list = args.next().unwrap_or_default();
                options.setups = SETUPS
                    .into_iter()
                    .filter(|s| list.split(',').any(|key| key == s.key()))
                    .collect();
                if options.setups.is_empty() {
                    return Err(format!(
                        "--setups takes a list of 1, 0, 2, 2c, 3, 4: `{list}`"
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
enum Setup {
    NoAuth,
    Empty,
    Native,
    NativeCached,
    Filter,
    FilterCached,
}

const SETUPS: [Setup; 6] = [
    Setup::NoAuth,
    Setup::Empty,
    Setup::Native,
    Setup::NativeCached,
    Setup::Filter,
    Setup::FilterCached,
];

impl Setup {
    fn key(self) -> &'static str {
        match self {
            Self::NoAuth => "1",
            Self::Empty => "0",
            Self::Native => "2",
            Self::NativeCached => "2c",
            Self::Filter => "3",
            Self::FilterCached => "4",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::NoAuth => "(1) no auth",
            Self::Empty => "(0) empty Wasm filter",
            Self::Native => "(2) jwt_authn + rbac",
            Self::NativeCached => "(2c) jwt_authn + rbac, jwt cache",
            Self::Filter => "(3) scopegate, cache off",
            Self::FilterCached => "(4) scopegate, cache on",
        }
    }

    /// The Envoy bootstrap of this setup, from the harness's (listener, admin, filter
    /// configuration), with its routes and HTTP filters replaced.
    fn config(self, listen: u16, policy: &Value) -> Value {
        let mut policy = policy.clone();
        let entries = if self == Self::Filter { 0 } else { 1024 };
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
        let (filters, routes) = match self {
            Self::NoAuth => (vec![router], direct),
            Self::Empty => {
                let mut empty = scopegate;
                empty["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] =
                    json!(empty_filter_wasm());
                (vec![empty, router], direct)
            }
            Self::Native | Self::NativeCached => {
                let cache = (self == Self::NativeCached).then_some(1024);
                let (mut filters, routes) = native::enforce(&policy, cache, OK_BODY);
                filters.push(router);
                (filters, routes)
            }
            Self::Filter | Self::FilterCached => (vec![scopegate, router], direct),
        };
        manager["http_filters"] = json!(filters);
        manager["route_config"] = routes;
        config
    }
}

/// A row: one token, and the status every setup but (1) must answer.
struct Row {
    alg: &'static str,
    allowed: bool,
    token: String,
}

impl Row {
    fn expected(&self, setup: Setup) -> u16 {
        if self.allowed || matches!(setup, Setup::NoAuth | Setup::Empty) {
            200
        } else {
            403
        }
    }

    fn label(&self) -> &'static str {
        if self.allowed {
            "allowed (200)"
        } else {
            "denied (403)"
        }
    }
}

/// The filter that does nothing, as `./scripts/bench` builds it.
fn empty_filter_wasm() -> std::path::PathBuf {
    repo_root().join("target/wasm32-wasip1/filter/scopegate_empty_filter.wasm")
}

/// A token of the policy's test issuer (test keys of seed 1) with `claims` added, valid
/// long enough for any run (the cache keeps a token until its `exp`).
fn token(keys: &TestKeys, policy: &Value, alg: &str, claims: &Value) -> String {
    alice_token(keys, policy, alg, 6 * 3600, claims).expect("an issuer with inline keys")
}

fn rows(policy: &Value, keys: &TestKeys) -> Vec<Row> {
    let mut rows = Vec::new();
    for alg in ["RS256", "ES256", "EdDSA"] {
        for (allowed, scope) in [(true, "openid resource:read"), (false, "openid")] {
            rows.push(Row {
                alg,
                allowed,
                token: token(keys, policy, alg, &json!({ "scope": scope })),
            });
        }
    }
    rows
}

/// A request on which the native setup and the filter are compared before measuring.
struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    /// The token's claims besides iss, aud, sub, iat, exp; `None` for no token.
    claims: Option<Value>,
    scopegate: u16,
    native: u16,
}

/// The policy's rules that the native setup reproduces, and two that it cannot.
fn agreement_cases() -> Vec<Case> {
    let case = |what, method, path, claims: Option<Value>, scopegate, native| Case {
        what,
        method,
        path,
        claims,
        scopegate,
        native,
    };
    let scope = |scope: &str| Some(json!({ "scope": scope }));
    vec![
        case(
            "a parent scope covers its children",
            "GET",
            "/api/resources",
            scope("resource"),
            200,
            200,
        ),
        case(
            "`.write` covers read",
            "GET",
            "/api/resources",
            scope("resource.write"),
            200,
            200,
        ),
        case(
            "`resources` is not `resource`",
            "GET",
            "/api/resources",
            scope("resources"),
            403,
            403,
        ),
        case(
            "a role mapped to a scope",
            "POST",
            "/api/resources",
            Some(json!({"roles": ["resource-admin"]})),
            200,
            200,
        ),
        case(
            "a namespaced role claim",
            "PUT",
            "/api/inventory/sku-1/price",
            Some(json!({"https://scopegate.test/roles": ["inventory-manager"]})),
            200,
            200,
        ),
        case(
            "`scp` as an array",
            "GET",
            "/api/resources/9",
            Some(json!({"scp": ["resource:read"]})),
            200,
            200,
        ),
        case(
            "`permissions`",
            "DELETE",
            "/api/resources/9",
            Some(json!({"permissions": ["resource:write"]})),
            200,
            200,
        ),
        case(
            "`inventory:price.write` is not `inventory.write`",
            "PUT",
            "/api/inventory/sku-1",
            scope("inventory:price.write"),
            403,
            403,
        ),
        case(
            "any_of, second alternative",
            "GET",
            "/api/orders/7/shipping",
            scope("order:shipping"),
            200,
            200,
        ),
        case(
            "any_of, half of the first",
            "GET",
            "/api/orders/7/shipping",
            scope("order:shipping:status"),
            403,
            403,
        ),
        case(
            "the most specific route wins",
            "GET",
            "/api/orders/7/items",
            scope("order:item"),
            200,
            200,
        ),
        case(
            "a public route without a token",
            "GET",
            "/api/public/docs",
            None,
            200,
            200,
        ),
        case("no token", "GET", "/api/resources", None, 401, 401),
        case(
            "an unmatched route",
            "GET",
            "/api/else",
            scope("resource"),
            403,
            403,
        ),
        case(
            "a prefix scope of another id (native: any id)",
            "GET",
            "/api/transactions/124",
            scope("transaction-123"),
            403,
            200,
        ),
        case(
            "`max_age` step-up (native: none)",
            "POST",
            "/api/payments",
            Some(json!({"scope": "payment.write resource:read", "auth_time": unix_now() - 3600})),
            401,
            200,
        ),
    ]
}

/// Sends every agreement case to the native setup and to the filter; an answer other than
/// the expected one stops the benchmark. Returns the markdown table of the answers.
fn agreement(
    policy: &Value,
    keys: &TestKeys,
    native: &Envoy,
    filter: &Envoy,
) -> Result<String, String> {
    let mut table = String::from(
        "| request | token claims | scopegate | jwt_authn + rbac |\n| --- | --- | ---: | ---: |\n",
    );
    for case in agreement_cases() {
        let header = case
            .claims
            .as_ref()
            .map(|claims| format!("Bearer {}", token(keys, policy, "ES256", claims)));
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("authorization", h)])
            .unwrap_or_default();
        let mut answers = Vec::new();
        for (envoy, expected) in [(filter, case.scopegate), (native, case.native)] {
            let status = request(envoy.port, case.method, case.path, &headers)
                .map_err(|e| format!("{}: {e}", case.what))?
                .status;
            if status != expected {
                return Err(format!(
                    "{}: {} {} answered {status}, expected {expected}\n{}",
                    case.what,
                    case.method,
                    case.path,
                    envoy.log()
                ));
            }
            answers.push(status);
        }
        let claims = case
            .claims
            .map_or_else(|| "no token".to_owned(), |c| format!("`{c}`"));
        let _ = writeln!(
            table,
            "| {}: `{} {}` | {claims} | {} | {} |",
            case.what, case.method, case.path, answers[0], answers[1]
        );
    }
    Ok(table)
}

/// The medians of one cell over the rounds.
#[derive(Default)]
struct Cell {
    load: Vec<wrk::Run>,
    single: Vec<wrk::Run>,
    anomalies: Vec<String>,
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl Cell {
    fn rps(&self) -> f64 {
        median(self.load.iter().map(|r| r.rps))
    }
    fn load_p50(&self) -> f64 {
        median(self.load.iter().map(|r| r.p50))
    }
    fn load_p99(&self) -> f64 {
        median(self.load.iter().map(|r| r.p99))
    }
    fn p50(&self) -> f64 {
        median(self.single.iter().map(|r| r.p50))
    }
    fn p99(&self) -> f64 {
        median(self.single.iter().map(|r| r.p99))
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu})")
}

fn version(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|e| format!("{program}: {e}"))
}

fn run() -> Result<(), String> {
    let options = options()?;
    require_envoy_and_filter();
    if options.setups.contains(&Setup::Empty) && !empty_filter_wasm().exists() {
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
    let keys = TestKeys::from_seed(1);
    let rows = rows(&policy, &keys);
    let scratch = TempDir::new("bench");
    let hook = wrk::write_hook(scratch.path());
    let load_before = loadavg();

    let mut envoys = Vec::new();
    for &setup in &options.setups {
        let listen = free_port();
        let envoy = Envoy::start(&setup.config(listen, &policy), listen)
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

fn report(
    options: &Options,
    rows: &[Row],
    cells: &[Vec<Cell>],
    elapsed: Duration,
    load_before: &str,
    load_after: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}; load average {load_before} before, {load_after} after; {}; wrk {}.",
        machine(),
        version(
            &repo_root().join(".venv/bin/envoy").display().to_string(),
            &["--version"]
        )
        .split_whitespace()
        .last()
        .unwrap_or("envoy ?"),
        version("wrk", &["-v"])
            .split_whitespace()
            .nth(1)
            .unwrap_or("?"),
    );
    let _ = writeln!(
        out,
        "Envoy --concurrency 1 per setup; wrk -t1, {}s runs after a {}s warm-up, medians of {} \
         rounds ({:.0} s); `GET {PATH}`, filter {}.\n",
        options.duration,
        options.warmup,
        options.rounds,
        elapsed.as_secs_f64(),
        filter_wasm()
            .strip_prefix(repo_root())
            .unwrap_or(&filter_wasm())
            .display()
    );
    let _ = writeln!(
        out,
        "| token | request | setup | req/s ({c} conn.) | × (2) | × (1) | p50 µs | p99 µs | p50 µs (1 conn.) | p99 µs (1 conn.) | p99 added to (1) |",
        c = options.connections
    );
    let _ = writeln!(
        out,
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut anomalies = Vec::new();
    let position = |wanted: Setup| options.setups.iter().position(|&s| s == wanted);
    for (row, row_cells) in rows.iter().zip(cells) {
        let figure = |setup: Option<usize>, f: &dyn Fn(&Cell) -> f64| {
            setup.map_or(f64::NAN, |index| f(&row_cells[index]))
        };
        let no_auth_rps = figure(position(Setup::NoAuth), &Cell::rps);
        let no_auth_p99 = figure(position(Setup::NoAuth), &Cell::p99);
        let native_rps = figure(position(Setup::Native), &Cell::rps);
        for (setup, cell) in options.setups.iter().zip(row_cells) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:+.0} µs |",
                row.alg,
                row.label(),
                setup.label(),
                cell.rps(),
                cell.rps() / native_rps,
                cell.rps() / no_auth_rps,
                cell.load_p50(),
                cell.load_p99(),
                cell.p50(),
                cell.p99(),
                cell.p99() - no_auth_p99,
            );
            for anomaly in &cell.anomalies {
                anomalies.push(format!(
                    "{} {} {}: {anomaly}",
                    row.alg,
                    row.label(),
                    setup.label()
                ));
            }
        }
    }
    if anomalies.is_empty() {
        let _ = writeln!(
            out,
            "\nEvery run answered as expected (allowed rows all 2xx, denied rows all 403) \
             without socket errors."
        );
    } else {
        let _ = writeln!(out, "\nAnomalies:");
        for anomaly in anomalies {
            let _ = writeln!(out, "- {anomaly}");
        }
    }
    out
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}
