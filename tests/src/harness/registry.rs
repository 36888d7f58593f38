//! Debian's `docker-registry` (Distribution 2.8) on 127.0.0.1 with a scratch storage
//! directory, started and stopped by PID, and Debian's `skopeo` to push to it and pull
//! from it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port, get, TempDir};

/// The registry binary of Debian's `docker-registry` package.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// A running registry, killed by PID on drop.
pub struct Registry {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry on a free port with empty storage and waits until `/v2/` answers;
    /// panics with its log if it does not.
    pub fn start() -> Self {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "{REGISTRY_BINARY} is missing: run ./scripts/setup (Debian package docker-registry)"
        );
        let dir = TempDir::new("registry");
        let port = free_port();
        let config = dir.path().join("config.yml");
        // No upload purging: nothing runs in the background but the HTTP server.
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let log = dir.path().join("registry.log");
        let log_file = fs::File::create(&log).expect("log file");
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("spawn docker-registry");
        let mut registry = Self {
            child,
            port,
            log,
            dir,
        };
        let up = eventually(Duration::from_secs(20), || {
            matches!(registry.child.try_wait(), Ok(None))
                && get(port, "/v2/").is_ok_and(|r| r.status == 200)
        });
        assert!(up, "docker-registry did not start:\n{}", registry.log());
        registry
    }

    /// `docker://127.0.0.1:PORT/NAME`.
    pub fn reference(&self, name: &str) -> String {
        format!("docker://127.0.0.1:{}/{name}", self.port)
    }

    /// A scratch directory that lives as long as the registry.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs Debian's `skopeo` with `args` (plus `--insecure-policy`, so that the machine's
/// signature policy file plays no part) and returns its standard output; panics with its
/// standard error when it fails.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run skopeo ({e}): run ./scripts/setup (Debian package skopeo)")
        });
    assert!(
        output.status.success(),
        "skopeo {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
