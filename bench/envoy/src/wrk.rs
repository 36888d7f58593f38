//! Debian's `wrk` as a child process, with a Lua `done` hook that prints the figures in one
//! line, so that nothing depends on wrk's human-readable report.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The marker of the hook's line.
const MARKER: &str = "SCOPEGATE_BENCH";

/// Writes the Lua hook into `dir` and returns its path.
pub fn write_hook(dir: &Path) -> PathBuf {
    let path = dir.join("done.lua");
    let hook = format!(
        r#"-- Written by the scopegate benchmark: one line of figures at the end of a run.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("{MARKER} %d %d %.0f %.0f %d %d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#
    );
    std::fs::write(&path, hook).expect("write the wrk hook");
    path
}

/// One wrk run.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Requests completed per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50: f64,
    /// 99th percentile latency, µs.
    pub p99: f64,
    /// Responses that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// Requests completed.
    pub requests: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
}

/// Load on `url` with one thread and `connections` connections for `seconds`, sending
/// `headers`.
pub fn run(
    hook: &Path,
    url: &str,
    headers: &[String],
    connections: u32,
    seconds: u32,
) -> Result<Run, String> {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .arg("-s")
        .arg(hook);
    for header in headers {
        command.arg("-H").arg(header);
    }
    let output = command
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("wrk: {e} (install Debian's wrk: apt-get install wrk)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk exited with {}: {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(MARKER))
        .ok_or_else(|| format!("wrk printed no {MARKER} line: {stdout}"))?;
    let numbers: Vec<f64> = line
        .split_whitespace()
        .map(|n| n.parse::<f64>().map_err(|e| format!("{n}: {e}")))
        .collect::<Result<_, _>>()?;
    let [requests, duration_us, p50, p99, non_2xx, socket_errors] = numbers[..] else {
        return Err(format!("unexpected wrk figures: {line}"));
    };
    Ok(Run {
        rps: requests / (duration_us / 1e6),
        p50,
        p99,
        non_2xx: non_2xx as u64,
        requests: requests as u64,
        socket_errors: socket_errors as u64,
    })
}
