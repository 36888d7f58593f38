//! The figures of a run and the machine they came from, as the tables print them.

use std::fmt::Write as _;
use std::time::Duration;

use scopegate_tests::harness::filter_wasm;
use scopegate_tests::repo_root;

use crate::{wrk, Options, Row, Setup, PATH};

/// The medians of one cell over the rounds.
#[derive(Default)]
pub(crate) struct Cell {
    pub(crate) load: Vec<wrk::Run>,
    pub(crate) single: Vec<wrk::Run>,
    pub(crate) anomalies: Vec<String>,
}

pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
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

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub(crate) fn machine() -> String {
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

pub(crate) fn version(program: &str, args: &[&str]) -> String {
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

pub(crate) fn report(
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
        "Envoy --concurrency {} per setup; wrk -t1, {}s runs after a {}s warm-up, medians of {} \
         rounds ({:.0} s); `GET {PATH}`, filter {}.\n",
        options.workers,
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
                "| {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                row.alg,
                row.label(),
                setup.label(),
                cell.rps(),
                ratio(cell.rps() / native_rps),
                ratio(cell.rps() / no_auth_rps),
                cell.load_p50(),
                cell.load_p99(),
                cell.p50(),
                cell.p99(),
                added(cell.p99() - no_auth_p99),
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
            "\nEvery run answered as each setup should (allowed rows all 2xx, denied rows all 403, \
             forged rows all 401, where the setup enforces) without socket errors."
        );
    } else {
        let _ = writeln!(out, "\nAnomalies:");
        for anomaly in anomalies {
            let _ = writeln!(out, "- {anomaly}");
        }
    }
    out
}

/// A ratio to a setup of the run, or `—` when that setup was not measured (`--setups`
/// without it).
fn ratio(figure: f64) -> String {
    if figure.is_nan() {
        return "—".to_owned();
    }
    format!("{figure:.2}")
}

/// Microseconds added to a setup of the run, or `—` as for [`ratio`].
fn added(figure: f64) -> String {
    if figure.is_nan() {
        return "—".to_owned();
    }
    format!("{figure:+.0} µs")
}
