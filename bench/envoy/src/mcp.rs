//! `bench-envoy --mcp`: what an MCP route costs at the gateway. Three Envoys side by side
//! in front of a fourth that answers every request itself (`direct_response`, so the
//! upstream is as cheap as Envoy gets and reads the whole body): (1) without
//! authentication, (4) with the scopegate filter and its token cache, and (4h) the same
//! with `trust_mirrored_headers` on the MCP route. Rows: a REST `GET` of
//! `examples/policy.json` (no body), an MCP `tools/call` of an open tool (a small body, read
//! and parsed), the same with 16 KiB of arguments, a privileged tool refused with 403, and
//! 2026-07-28 calls (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`) with 1 KiB and
//! 256 KiB bodies, which (4h) decides from the headers without buffering the body.
//! The difference between the REST row and the MCP rows of (4), against the same rows of
//! (1), is the buffering and parsing of the body; (4h) against (4) is what header mode
//! saves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use scopegate_tests::harness::{envoy_config, free_port, send_raw, Envoy, Response, Upstreams};
use scopegate_tests::TestKeys;
use serde_json::{json, Value};

use crate::report::{loadavg, machine, median};
use crate::{token, wrk, Options, OK_BODY};

struct McpRow {
    label: &'static str,
    method: &'static str,
    path: &'static str,
    body: String,
    /// Extra request headers (the 2026-07-28 mirrors).
    headers: &'static [(&'static str, &'static str)],
    status: u16,
}

const MIRRORED: &[(&str, &str)] = &[
    ("Mcp-Method", "tools/call"),
    ("Mcp-Name", "echo"),
    ("MCP-Protocol-Version", "2026-07-28"),
];

/// A 2026-07-28 `tools/call` of `echo` whose body is `size` bytes long.
fn call_2026(size: usize) -> String {
    let with = |message: &str| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"message": message},
                          "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
        .to_string()
    };
    let overhead = with("").len();
    with(&"x".repeat(size.saturating_sub(overhead)))
}

fn call(tool: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
    .to_string()
}

fn rows() -> Vec<McpRow> {
    vec![
        McpRow {
            label: "REST GET /api/resources, no body",
            method: "GET",
            path: "/api/resources",
            body: String::new(),
            headers: &[],
            status: 200,
        },
        McpRow {
            label: "MCP tools/call echo, 0.1 KiB body",
            method: "POST",
            path: "/mcp",
            body: call("echo", json!({"message": "hello"})),
            headers: &[],
            status: 200,
        },
        McpRow {
            label: "MCP tools/call echo, 16 KiB body",
            method: "POST",
            path: "/mcp",
            body: call("echo", json!({"message": "x".repeat(16 * 1024)})),
            headers: &[],
            status: 200,
        },
        McpRow {
            label: "MCP tools/call get-env, refused (403)",
            method: "POST",
            path: "/mcp",
            body: call("get-env", json!({})),
            headers: &[],
            status: 403,
        },
        McpRow {
            label: "MCP 2026-07-28 tools/call echo, 1 KiB body",
            method: "POST",
            path: "/mcp",
            body: call_2026(1024),
            headers: MIRRORED,
            status: 200,
        },
        McpRow {
            label: "MCP 2026-07-28 tools/call echo, 256 KiB body",
            method: "POST",
            path: "/mcp",
            body: call_2026(256 * 1024),
            headers: MIRRORED,
            status: 200,
        },
    ]
}

/// The example policy, whose `/mcp` route needs `mcp:tools` for every message and
/// `mcp:admin` too for `get-env`, with its token cache.
fn policy(example: &Value, trust_mirrored_headers: bool) -> Value {
    let mut policy = example.clone();
    policy["token_cache"] = json!({"max_entries": 1024});
    let routes = policy["routes"].as_array_mut().expect("routes");
    for route in routes.iter_mut().filter(|route| route.get("mcp").is_some()) {
        // Room for the 256 KiB row in body mode.
        route["mcp"]["max_body_bytes"] = json!(1 << 20);
        if trust_mirrored_headers {
            route["mcp"]["trust_mirrored_headers"] = json!(true);
        }
    }
    policy
}

fn direct_upstream(listen: u16) -> Value {
    let mut config = envoy_config(
        listen,
        &Upstreams {
            api: listen,
            jwks: None,
        },
        "{}",
    );
    let manager = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let router = manager["http_filters"][1].clone();
    manager["http_filters"] = json!([router]);
    manager["route_config"] = json!({"virtual_hosts": [{"name": "api", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": OK_BODY}}}
    ]}]});
    config
}

fn front(listen: u16, upstream: u16, policy: Option<&Value>) -> Value {
    let text = policy.map(Value::to_string).unwrap_or_default();
    let mut config = envoy_config(
        listen,
        &Upstreams {
            api: upstream,
            jwks: None,
        },
        &text,
    );
    let manager = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    manager["normalize_path"] = json!(true);
    manager["merge_slashes"] = json!(true);
    if policy.is_none() {
        let router = manager["http_filters"][1].clone();
        manager["http_filters"] = json!([router]);
    }
    config
}

fn send(port: u16, row: &McpRow, authorization: &str) -> std::io::Result<Response> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: {authorization}\r\n",
        row.method, row.path
    );
    if !row.body.is_empty() {
        head.push_str("content-type: application/json\r\n");
        let _ = write!(head, "content-length: {}\r\n", row.body.len());
    }
    for (name, value) in row.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    head.push_str(&row.body);
    send_raw(port, head.as_bytes())
}

fn hook(dir: &Path, index: usize, row: &McpRow) -> PathBuf {
    let done = std::fs::read_to_string(wrk::write_hook(dir)).expect("hook");
    let path = dir.join(format!("mcp-{index}.lua"));
    let mut script = format!("wrk.method = {:?}\n", row.method);
    if !row.body.is_empty() {
        // A Lua long string: the bodies hold no `]==]`.
        let _ = writeln!(script, "wrk.body = [==[{}]==]", row.body);
        script.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
        script.push_str("wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n");
    }
    for (name, value) in row.headers {
        let _ = writeln!(script, "wrk.headers[{name:?}] = {value:?}");
    }
    script.push_str(&done);
    std::fs::write(&path, script).expect("write the wrk script");
    path
}

pub(crate) fn run(options: &Options, example: &Value) -> Result<(), String> {
    let policy_body = policy(example, false);
    let policy_headers = policy(example, true);
    let keys = TestKeys::from_seed(1);
    // One token for both resources of the example policy, so that every row sends the same.
    let audiences = json!(["http://127.0.0.1:8080", "http://127.0.0.1:8080/mcp"]);
    let claims = json!({"scope": "openid resource:read mcp:tools", "aud": audiences});
    let token = token(&keys, &policy_body, "ES256", &claims);
    let scratch = scopegate_tests::harness::TempDir::new("bench-mcp");
    let upstream_port = free_port();
    let upstream = Envoy::start(&direct_upstream(upstream_port), upstream_port)
        .map_err(|f| format!("upstream Envoy did not start:\n{}", f.log))?;
    let mut fronts = Vec::new();
    for (label, policy) in [
        ("(1) no auth", None),
        ("(4) scopegate, cache on", Some(&policy_body)),
        ("(4h) scopegate, trusted headers", Some(&policy_headers)),
    ] {
        let listen = free_port();
        let envoy = Envoy::start(&front(listen, upstream.port, policy), listen)
            .map_err(|f| format!("{label}: Envoy did not start:\n{}", f.log))?;
        eprintln!(
            "bench: {label} on 127.0.0.1:{} (pid {})",
            envoy.port,
            envoy.pid()
        );
        fronts.push((label, envoy));
    }
    let rows = rows();
    let authorization = format!("Bearer {token}");
    for row in &rows {
        for (label, envoy) in &fronts {
            let response =
                send(envoy.port, row, &authorization).map_err(|e| format!("{label}: {e}"))?;
            let expected = if label.starts_with("(1)") {
                200
            } else {
                row.status
            };
            if response.status != expected {
                return Err(format!(
                    "{label} answered {} to `{}`, expected {expected}: {}\n{}",
                    response.status,
                    row.label,
                    response.body,
                    envoy.log()
                ));
            }
        }
    }
    let load_before = loadavg();
    let header = vec![format!("Authorization: Bearer {token}")];
    // [row][front] -> (loaded rps, single-connection p50) per round
    let mut figures = vec![vec![(Vec::new(), Vec::new()); fronts.len()]; rows.len()];
    for round in 0..options.rounds {
        for (r, row) in rows.iter().enumerate() {
            let script = hook(scratch.path(), r, row);
            for k in 0..fronts.len() {
                let f = (k + round + r) % fronts.len();
                let (label, envoy) = &fronts[f];
                let url = format!("http://127.0.0.1:{}{}", envoy.port, row.path);
                wrk::run(&script, &url, &header, options.connections, options.warmup)?;
                let loaded = wrk::run(
                    &script,
                    &url,
                    &header,
                    options.connections,
                    options.duration,
                )?;
                let single = wrk::run(&script, &url, &header, 1, options.duration)?;
                let expected_non_2xx = |run: &wrk::Run| {
                    if row.status == 200 || label.starts_with("(1)") {
                        0
                    } else {
                        run.requests
                    }
                };
                for run in [&loaded, &single] {
                    if run.non_2xx != expected_non_2xx(run) || run.socket_errors != 0 {
                        return Err(format!(
                            "{label}, {}: {} of {} not 2xx, {} socket errors",
                            row.label, run.non_2xx, run.requests, run.socket_errors
                        ));
                    }
                }
                eprintln!(
                    "bench: mcp round {} {} {label}: {:.0} req/s; 1 connection p50 {:.0} µs",
                    round + 1,
                    row.label,
                    loaded.rps,
                    single.p50
                );
                figures[r][f].0.push(loaded.rps);
                figures[r][f].1.push(single.p50);
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MCP at the gateway: Envoy 1.40 under wrk, {} rounds of {} s, {} connections, one worker per Envoy, upstream an Envoy `direct_response`; {}; load average {load_before} -> {}\n",
        options.rounds, options.duration, options.connections, machine(), loadavg()
    );
    let _ = writeln!(out, "| request | (1) no auth: req/s | (4) scopegate: req/s | (4h) trusted headers: req/s | (4)/(1) | (4h)/(4) | (1) p50, 1 conn. | (4) p50, 1 conn. | (4h) p50, 1 conn. | (4) − (1) | (4h) − (4) |");
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (r, row) in rows.iter().enumerate() {
        let rps = |f: usize| median(figures[r][f].0.iter().copied());
        let p50 = |f: usize| median(figures[r][f].1.iter().copied());
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} µs | {:.0} µs | {:.0} µs | {:+.0} µs | {:+.0} µs |",
            row.label,
            rps(0),
            rps(1),
            rps(2),
            rps(1) / rps(0),
            rps(2) / rps(1),
            p50(0),
            p50(1),
            p50(2),
            p50(1) - p50(0),
            p50(2) - p50(1)
        );
    }
    println!("{out}");
    drop(fronts);
    drop(upstream);
    Ok(())
}
