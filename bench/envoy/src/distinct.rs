//! Many distinct tokens (`--distinct N`): what the token caches do when every request
//! carries one of N tokens in turn, as behind a gateway with many users, and with several
//! workers, each of which keeps its own cache. Setups (2c) jwt_authn + rbac with its cache
//! and (4) scopegate with its cache (1,024 entries each), each with `--workers` workers;
//! for (4) the hit ratio from the filter's own counters (`cache.hit`, `cache.miss`) over
//! the measured run. The tokens are EdDSA (quick to make); each differs in its `jti`.

use std::fmt::Write as _;
use std::path::Path;

use scopegate_tests::harness::{free_port, request, Envoy, TempDir};
use scopegate_tests::TestKeys;
use serde_json::{json, Value};

use crate::report::median;
use crate::{token, wrk, Options, Setup, PATH};

pub(crate) fn run(options: &Options, policy: &Value, count: usize) -> Result<(), String> {
    let keys = TestKeys::from_seed(1);
    let tokens: Vec<String> = (0..count)
        .map(|n| {
            let claims = json!({"scope": "openid resource:read", "jti": format!("t{n}")});
            token(&keys, policy, "EdDSA", &claims)
        })
        .collect();
    let scratch = TempDir::new("bench-distinct");
    let hook = write_rotating_hook(scratch.path(), &tokens);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{count} distinct EdDSA tokens in turn, Envoy --concurrency {}, wrk -t1 -c{}, {}s runs \
         after a {}s warm-up, medians of {} rounds:\n",
        options.workers, options.connections, options.duration, options.warmup, options.rounds
    );
    let _ = writeln!(
        out,
        "| setup | req/s | p50 µs | p99 µs | hit ratio, measured runs (scopegate) | tokens verified in all, warm-ups included (scopegate) |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for setup in [Setup::NativeCached, Setup::FilterCached] {
        let listen = free_port();
        let envoy = Envoy::start_on_workers(&setup.config(listen, policy), listen, options.workers)
            .map_err(|f| format!("{}: Envoy did not start:\n{}", setup.label(), f.log))?;
        let first = format!("Bearer {}", tokens[0]);
        let answer = request(envoy.port, "GET", PATH, &[("authorization", &first)])
            .map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(format!(
                "{}: {} to a valid token",
                setup.label(),
                answer.status
            ));
        }
        let url = format!("http://127.0.0.1:{}{PATH}", envoy.port);
        let mut runs = Vec::new();
        let mut ratios = Vec::new();
        for _ in 0..options.rounds {
            wrk::run(&hook, &url, &[], options.connections, options.warmup)?;
            let (hits, misses) = (envoy.counter(HITS), envoy.counter(MISSES));
            let run = wrk::run(&hook, &url, &[], options.connections, options.duration)?;
            if run.non_2xx != 0 || run.socket_errors != 0 {
                return Err(format!("{}: {run:?}", setup.label()));
            }
            let (hits, misses) = (envoy.counter(HITS) - hits, envoy.counter(MISSES) - misses);
            if hits + misses > 0 {
                ratios.push(hits as f64 / (hits + misses) as f64);
            }
            runs.push(run);
        }
        let (ratio, verified) = match setup {
            Setup::FilterCached => (
                format!("{:.4}", median(ratios.into_iter())),
                envoy.counter(MISSES).to_string(),
            ),
            _ => ("—".into(), "—".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {ratio} | {verified} |",
            setup.label(),
            median(runs.iter().map(|r| r.rps)),
            median(runs.iter().map(|r| r.p50)),
            median(runs.iter().map(|r| r.p99)),
        );
    }
    println!("{out}");
    Ok(())
}

const HITS: &str = "wasmcustom.scopegate.cache.hit";
const MISSES: &str = "wasmcustom.scopegate.cache.miss";

/// A wrk script that sends the tokens in turn, one per request, and prints the figures
/// line of `wrk::write_hook`.
fn write_rotating_hook(dir: &Path, tokens: &[String]) -> std::path::PathBuf {
    let base = wrk::write_hook(dir);
    let done = std::fs::read_to_string(&base).expect("the hook");
    let list: Vec<String> = tokens.iter().map(|t| format!("\"{t}\"")).collect();
    let script = format!(
        "local tokens = {{{}}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  \
         return wrk.format(nil, nil, {{[\"Authorization\"] = \"Bearer \" .. tokens[(i % #tokens) + 1]}})\n\
         end\n{done}",
        list.join(",\n")
    );
    let path = dir.join("rotating.lua");
    std::fs::write(&path, script).expect("write the wrk script");
    path
}
