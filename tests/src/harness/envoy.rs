//! Envoy from the project's venv with the built filter, started and stopped by PID.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{envoy_binary, filter_wasm, get, require_envoy_and_filter, TempDir};

/// Upstream clusters of a test Envoy.
pub struct Upstreams {
    /// The API the listener routes to.
    pub api: u16,
    /// The JWKS server, as cluster `jwks`.
    pub jwks: Option<u16>,
}

/// An Envoy bootstrap: one listener on `listen` with the scopegate filter configured with
/// `policy`, routing everything to cluster `api`. Envoy's own path normalization is left
/// off so that the filter sees the raw request target.
pub fn envoy_config(listen: u16, upstreams: &Upstreams, policy: &str) -> Value {
    let cluster = |name: &str, port: u16| {
        json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
            ]}]}
        })
    };
    let mut clusters = vec![cluster("api", upstreams.api)];
    if let Some(port) = upstreams.jwks {
        clusters.push(cluster("jwks", port));
    }
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "api",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "api",
                        "route_config": {"virtual_hosts": [{
                            "name": "api", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "api"}}]
                        }]},
                        "http_filters": [
                            {
                                "name": "scopegate",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                    "config": {
                                        "name": "scopegate",
                                        "root_id": "scopegate",
                                        "configuration": {
                                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                                            "value": policy
                                        },
                                        "vm_config": {
                                            "vm_id": "scopegate",
                                            "runtime": "envoy.wasm.runtime.v8",
                                            "code": {"local": {"filename": filter_wasm()}}
                                        }
                                    }
                                }
                            },
                            {
                                "name": "envoy.filters.http.router",
                                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                            }
                        ]
                    }
                }]}]
            }],
            "clusters": clusters
        }
    })
}

/// A running Envoy, killed by PID on drop.
pub struct Envoy {
    child: Child,
    /// The listener port.
    pub port: u16,
    /// The admin port.
    pub admin: u16,
    log: PathBuf,
    _dir: TempDir,
}

/// How an Envoy start ended when it did not come up.
#[derive(Debug)]
pub struct EnvoyFailed {
    /// Exit status, if it exited.
    pub status: Option<i32>,
    /// Everything it logged.
    pub log: String,
}

impl crate::harness::StartFailure for EnvoyFailed {
    fn log(&self) -> &str {
        &self.log
    }
}

impl Envoy {
    /// Envoy with the filter enforcing `policy`, on a free port, in front of `upstreams`;
    /// panics with Envoy's log if it does not start.
    pub fn with_filter(upstreams: &Upstreams, policy: &Value) -> Self {
        Self::with_filter_on_workers(upstreams, policy, 1)
    }

    /// As [`Envoy::with_filter`], with `workers` worker threads (`--concurrency`): one VM of
    /// the filter per worker, besides the main thread's.
    pub fn with_filter_on_workers(upstreams: &Upstreams, policy: &Value, workers: u32) -> Self {
        crate::harness::on_a_free_port(|listen| {
            let config = envoy_config(listen, upstreams, &policy.to_string());
            Self::start_on_workers(&config, listen, workers)
        })
        .unwrap_or_else(|failed| panic!("Envoy did not start: {failed:?}"))
    }

    /// Starts Envoy on `config` with one worker and waits until its admin says LIVE and its
    /// listener accepts connections.
    pub fn start(config: &Value, listen: u16) -> Result<Self, EnvoyFailed> {
        Self::start_on_workers(config, listen, 1)
    }

    /// As [`Envoy::start`], with `workers` worker threads (`--concurrency`).
    pub fn start_on_workers(
        config: &Value,
        listen: u16,
        workers: u32,
    ) -> Result<Self, EnvoyFailed> {
        let dir = TempDir::new("envoy");
        let config_path = dir.path().join("envoy.json");
        fs::write(
            &config_path,
            serde_json::to_vec_pretty(config).expect("JSON"),
        )
        .expect("write config");
        Self::start_file_on_workers(&config_path, listen, dir, workers)
    }

    /// Starts Envoy on a config file (YAML or JSON); `dir` holds its log and lives as long
    /// as the process.
    pub fn start_file(config_path: &Path, listen: u16, dir: TempDir) -> Result<Self, EnvoyFailed> {
        Self::start_file_on_workers(config_path, listen, dir, 1)
    }

    /// As [`Envoy::start_file`], with `workers` worker threads.
    pub fn start_file_on_workers(
        config_path: &Path,
        listen: u16,
        dir: TempDir,
        workers: u32,
    ) -> Result<Self, EnvoyFailed> {
        require_envoy_and_filter();
        let admin_path = dir.path().join("admin-address");
        let log = dir.path().join("envoy.log");
        let log_file = fs::File::create(&log).expect("log file");
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(config_path)
            .args(["--concurrency", &workers.to_string()])
            .args(["--disable-hot-restart", "-l", "info"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("spawn envoy");
        let mut envoy = Envoy {
            child,
            port: listen,
            admin: 0,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err(EnvoyFailed {
                    status: status.code(),
                    log: envoy.log(),
                });
            }
            if envoy.admin == 0 {
                envoy.admin = fs::read_to_string(&admin_path)
                    .ok()
                    .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
                    .unwrap_or(0);
            }
            if envoy.admin != 0 {
                let ready = get(envoy.admin, "/ready").is_ok_and(|r| r.status == 200);
                if ready && TcpStream::connect(("127.0.0.1", listen)).is_ok() {
                    return Ok(envoy);
                }
            }
            if Instant::now() > deadline {
                return Err(EnvoyFailed {
                    status: None,
                    log: envoy.log(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A counter of the filter (`wasmcustom.…`) in the admin `/stats`, 0 when absent.
    pub fn counter(&self, name: &str) -> u64 {
        stat_value(&self.stats(), name)
    }

    /// Every `wasmcustom` stat line.
    pub fn stats(&self) -> String {
        get(self.admin, "/stats?filter=wasmcustom")
            .map(|r| r.body)
            .unwrap_or_default()
    }

    /// Any counter or gauge of the admin `/stats` by its full name (`http.api.downstream_rq_5xx`),
    /// 0 when absent.
    pub fn stat(&self, name: &str) -> u64 {
        let stats = get(self.admin, "/stats")
            .map(|r| r.body)
            .unwrap_or_default();
        stat_value(&stats, name)
    }
}

/// The value of the stat `name` in an admin `/stats` listing, 0 when absent.
fn stat_value(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or(0)
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs Envoy's `--mode validate`-free start on a config expected to fail, and returns its
/// exit and log; kills it if it unexpectedly comes up.
pub fn envoy_refuses(config: &Value, listen: u16) -> EnvoyFailed {
    match Envoy::start(config, listen) {
        Ok(envoy) => panic!(
            "Envoy started (pid {}) but should have refused",
            envoy.pid()
        ),
        Err(failed) => failed,
    }
}
