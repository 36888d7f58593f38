//! `--nginx`: the filter's cost in nginx 1.27.4 + ngx_wasm_module 3bed278 (built by
//! `./scripts/setup` into `.nginx/`), as NGINX.md measured it by hand: every answer comes
//! from a `return 200` server in the same nginx, proxied over keep-alive connections, in
//! four setups started side by side:
//!
//! - (n1) no filter;
//! - (n0) the empty proxy-wasm filter (`bench/empty-filter`): what any Wasm filter costs;
//! - (n3) the scopegate filter with `token_cache.max_entries: 0`;
//! - (n4) the scopegate filter with its token cache.
//!
//! Rows, rounds, rotation and medians as for Envoy (main.rs); the report gives req/s and
//! the ratios (n4)÷(n0), (n4)÷(n1), (n0)÷(n1) and (n3)÷(n1).

use std::time::Instant;

use scopegate_tests::harness::{
    filter_wasm, free_port, nginx_missing, quoted, request, Nginx, TempDir,
};
use scopegate_tests::TestKeys;
use serde_json::{json, Value};

use crate::report::{loadavg, median};
use crate::{empty_filter_wasm, rows, wrk, Options, Row, PATH};

#[derive(Clone, Copy, PartialEq, Eq)]
enum NginxSetup {
    Plain,
    Empty,
    Filter,
    FilterCached,
}

const SETUPS: [NginxSetup; 4] = [
    NginxSetup::Plain,
    NginxSetup::Empty,
    NginxSetup::Filter,
    NginxSetup::FilterCached,
];

impl NginxSetup {
    fn label(self) -> &'static str {
        match self {
            Self::Plain => "(n1) nginx, no filter",
            Self::Empty => "(n0) empty Wasm filter",
            Self::Filter => "(n3) scopegate, cache off",
            Self::FilterCached => "(n4) scopegate, cache on",
        }
    }

    fn expected(self, row: &Row) -> u16 {
        match self {
            Self::Plain | Self::Empty => 200,
            Self::Filter | Self::FilterCached => row.expected_status(),
        }
    }

    /// The nginx configuration: `listen` proxies to a `return 200` server on `upstream`.
    fn config(self, listen: u16, upstream: u16, workers: u32, policy: &Value) -> String {
        let mut policy = policy.clone();
        let entries = if self == Self::Filter { 0 } else { 1024 };
        policy["token_cache"] = json!({"max_entries": entries});
        let (wasm, filter) = match self {
            Self::Plain => (String::new(), String::new()),
            Self::Empty => (
                format!(
                    "wasm {{ module empty {}; shm_kv * 1m; }}\n",
                    empty_filter_wasm().display()
                ),
                "            proxy_wasm empty;\n".to_owned(),
            ),
            Self::Filter | Self::FilterCached => (
                format!(
                    "wasm {{ module scopegate {}; shm_kv * 4m; }}\n",
                    filter_wasm().display()
                ),
                format!(
                    "            proxy_wasm scopegate {};\n",
                    quoted(&policy.to_string())
                ),
            ),
        };
        format!(
            "worker_processes {workers};
error_log logs/error.log warn;
pid logs/nginx.pid;
events {{ worker_connections 1024; }}
{wasm}http {{
    access_log off;
    upstream backend {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{upstream};
        location / {{ return 200 ok; }}
    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
{filter}            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_pass http://backend/;
        }}
    }}
}}
"
        )
    }
}

/// Runs the nginx comparison and prints its tables.
pub(crate) fn run(options: &Options, policy: &Value) -> Result<(), String> {
    if let Some(missing) = nginx_missing() {
        return Err(missing);
    }
    let keys = TestKeys::from_seed(1);
    let rows = rows(policy, &keys);
    let scratch = TempDir::new("bench-nginx");
    let hook = wrk::write_hook(scratch.path());
    let load_before = loadavg();
    let mut hosts = Vec::new();
    for setup in SETUPS {
        let (listen, upstream) = (free_port(), free_port());
        let config = setup.config(listen, upstream, options.workers, policy);
        let nginx = Nginx::start(&config, listen)
            .map_err(|f| format!("{}: nginx did not start:\n{}", setup.label(), f.log))?;
        eprintln!(
            "bench: {} on 127.0.0.1:{listen} (pid {})",
            setup.label(),
            nginx.pid()
        );
        hosts.push((setup, nginx));
    }
    for row in &rows {
        let authorization = format!("Bearer {}", row.token);
        for (setup, nginx) in &hosts {
            let response = request(
                nginx.port,
                "GET",
                PATH,
                &[("authorization", &authorization)],
            )
            .map_err(|e| format!("{}: {e}", setup.label()))?;
            if response.status != setup.expected(row) {
                return Err(format!(
                    "{} answered {} to the {} token, expected {}\n{}",
                    setup.label(),
                    response.status,
                    row.alg,
                    setup.expected(row),
                    nginx.log()
                ));
            }
        }
    }
    let started = Instant::now();
    // rps[row][setup][round]
    let mut rps = vec![vec![Vec::new(); hosts.len()]; rows.len()];
    let mut anomalies = Vec::new();
    for round in 0..options.rounds {
        for (r, row) in rows.iter().enumerate() {
            let header = vec![format!("Authorization: Bearer {}", row.token)];
            for k in 0..hosts.len() {
                let s = (k + round + r) % hosts.len();
                let (setup, nginx) = &hosts[s];
                let url = format!("http://127.0.0.1:{}{PATH}", nginx.port);
                wrk::run(&hook, &url, &header, options.connections, options.warmup)?;
                let run = wrk::run(&hook, &url, &header, options.connections, options.duration)?;
                let expected_non_2xx = if setup.expected(row) == 200 {
                    0
                } else {
                    run.requests
                };
                if run.non_2xx != expected_non_2xx || run.socket_errors != 0 {
                    anomalies.push(format!(
                        "{} {} {}: {} of {} not 2xx, {} socket errors",
                        row.alg,
                        row.label(),
                        setup.label(),
                        run.non_2xx,
                        run.requests,
                        run.socket_errors
                    ));
                }
                eprintln!(
                    "bench: round {} {} {} {}: {:.0} req/s",
                    round + 1,
                    row.alg,
                    row.label(),
                    setup.label(),
                    run.rps
                );
                rps[r][s].push(run.rps);
            }
        }
    }
    let elapsed = started.elapsed();
    drop(hosts);
    println!(
        "nginx 1.27.4 + ngx_wasm_module 3bed278 (Wasmtime 26), worker_processes {}, wrk -t1 \
         -c{} -d{}s, median of {} rounds, {:.0} s; load average before {load_before}, after {}\n",
        options.workers,
        options.connections,
        options.duration,
        options.rounds,
        elapsed.as_secs_f64(),
        loadavg()
    );
    println!(
        "| token | (n1) req/s | (n0) req/s | (n3) req/s | (n4) req/s | (n4)÷(n0) | (n4)÷(n1) | \
         (n0)÷(n1) | (n3)÷(n1) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (r, row) in rows.iter().enumerate() {
        let m: Vec<f64> = rps[r]
            .iter()
            .map(|runs| median(runs.iter().copied()))
            .collect();
        println!(
            "| {} {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            row.alg,
            row.label(),
            m[0],
            m[1],
            m[2],
            m[3],
            m[3] / m[1],
            m[3] / m[0],
            m[1] / m[0],
            m[2] / m[0]
        );
    }
    if !anomalies.is_empty() {
        println!("\nAnomalies:\n- {}", anomalies.join("\n- "));
    }
    Ok(())
}
