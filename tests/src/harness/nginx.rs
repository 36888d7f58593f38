//! nginx with Kong's ngx_wasm_module (built by `scripts/setup-nginx` into `.nginx/`) running
//! the built filter, started and stopped by PID: the master, and its workers if the master
//! does not take them down.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use scopegate_core::Policy;
use serde_json::Value;

use super::{children_of, filter_wasm, get, signal, TempDir, Upstreams};
use crate::repo_root;

/// The nginx binary `scripts/setup-nginx` builds.
pub fn nginx_binary() -> PathBuf {
    repo_root().join(".nginx/sbin/nginx")
}

/// Why the nginx tier cannot run here, or `None` when it can: the binary is missing
/// because `../shared/third_party/` (nginx and ngx_wasm_module sources) is not beside the
/// clone, or `./scripts/setup` has not run.
pub fn nginx_missing() -> Option<String> {
    (!nginx_binary().exists()).then(|| {
        format!(
            "{} is missing: ./scripts/setup builds it from nginx-1.27.4.tar.gz and \
             ngx_wasm_module-3bed278.tar.gz in ../shared/third_party/ (docs/gateway-filter.md, \
             \"nginx\")",
            nginx_binary().display()
        )
    })
}

/// The longest argument nginx's configuration parser takes (its `NGX_CONF_BUFFER`, 4 KiB
/// with the quotes): the policy is one argument of `proxy_wasm`.
pub const MAX_INLINE_POLICY: usize = 4094;

/// What an nginx test host needs besides the policy.
pub struct NginxOptions {
    /// `worker_processes`.
    pub workers: u32,
    /// The `shm_kv` zone the filter shares keys through; `false` leaves it out (to see the
    /// filter refuse to load).
    pub shared_data: bool,
}

impl Default for NginxOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            shared_data: true,
        }
    }
}

/// The policy as ngx_wasm_module's calls need it: where Envoy names a cluster (`jwks`),
/// nginx connects to an address, so each `jwks_cluster` and introspection `cluster`
/// named `jwks` becomes `127.0.0.1:<port>` of that upstream.
pub fn policy_for_nginx(policy: &Value, upstreams: &Upstreams) -> Value {
    let mut policy = policy.clone();
    let Some(port) = upstreams.jwks else {
        return policy;
    };
    let address = Value::String(format!("127.0.0.1:{port}"));
    if let Some(issuers) = policy.get_mut("issuers").and_then(Value::as_array_mut) {
        for issuer in issuers {
            if issuer.get("jwks_cluster").and_then(Value::as_str) == Some("jwks") {
                issuer["jwks_cluster"] = address.clone();
            }
            if let Some(introspection) = issuer.get_mut("introspection") {
                if introspection.get("cluster").and_then(Value::as_str) == Some("jwks") {
                    introspection["cluster"] = address.clone();
                }
            }
        }
    }
    policy
}

/// The plain paths (no template, no glob) of the policy's MCP routes.
fn mcp_paths(policy: &Value) -> Vec<String> {
    policy
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|route| route.get("mcp").is_some())
        .filter_map(|route| route.get("path")?.as_str())
        .filter(|path| !path.contains(['{', '*', ' ', ';', '\'', '"']))
        .map(str::to_owned)
        .collect()
}

/// The policy as one single-quoted nginx argument: nginx turns `\\` and `\'` back into
/// `\` and `'`, so JSON escapes survive.
pub fn quoted(policy: &str) -> String {
    format!("'{}'", policy.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The body limit of the policy's MCP routes (the largest; 1 MiB by default), which
/// nginx's body buffer must hold: a larger body is spooled to a file that the filter
/// cannot read (and refuses with 413 unread). The maximum is left larger, for the other
/// routes of the location, whose bodies nginx reads whole before proxying them.
fn body_limit(policy: &Value) -> u64 {
    const DEFAULT: u64 = 1 << 20;
    policy
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|route| route.get("mcp"))
        .map(|mcp| {
            mcp.get("max_body_bytes")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT)
        })
        .max()
        .unwrap_or(DEFAULT)
}

/// An nginx configuration for a test, shaped as `examples/nginx.conf`: `listen`, the filter
/// enforcing `policy` in front of `upstreams.api`, requests that carry a forwarded-claim
/// header refused before the filter runs (see [`forged_header_guard`]), and a filter-free
/// `/.harness/ready` location.
pub fn nginx_config(
    listen: u16,
    upstreams: &Upstreams,
    policy: &Value,
    options: &NginxOptions,
) -> String {
    let policy = policy_for_nginx(policy, upstreams);
    let text = policy.to_string();
    let forwarded: Vec<String> = match Policy::from_json(&text) {
        Ok(compiled) => compiled.forwarded_headers().map(str::to_owned).collect(),
        // A broken policy, for the tests that see it refused: nothing to forward.
        Err(_) => Vec::new(),
    };
    let guard = forged_header_guard(&forwarded);
    let shm = if options.shared_data {
        "    shm_kv * 4m;\n"
    } else {
        ""
    };
    let limit = body_limit(&policy);
    // Each MCP route with a plain path gets a location of its own whose body maximum is the
    // route's limit, so that nginx answers 413 as soon as a body grows past it (nginx reads
    // a body to its end before the filter sees it). `$uri` is that exact path there.
    let mcp_paths = mcp_paths(&policy);
    let unframed = unframed_body_guard(&mcp_paths);
    let mcp_locations: String = mcp_paths
        .iter()
        .map(|path| {
            format!(
                "        location = {path} {{
            proxy_wasm scopegate {policy};
            client_body_buffer_size {limit};
            client_max_body_size {limit};
            proxy_pass http://127.0.0.1:{api}$uri$is_args$args;
        }}
",
                policy = quoted(&text),
                api = upstreams.api,
            )
        })
        .collect();
    format!(
        "worker_processes {workers};
error_log logs/error.log info;
pid logs/nginx.pid;
events {{ worker_connections 1024; }}
wasm {{
    module scopegate {filter};
{shm}    socket_connect_timeout 2s;
}}
http {{
    access_log off;
{guard_map}{unframed_map}    server {{
        listen 127.0.0.1:{listen};
        default_type application/json;
{guard_if}{unframed_if}        location = /.harness/ready {{ return 204; }}
{mcp_locations}        location / {{
            proxy_wasm scopegate {policy};
            client_body_buffer_size {limit};
            client_max_body_size 16m;
            proxy_pass http://127.0.0.1:{api}/;
        }}
    }}
}}
",
        workers = options.workers,
        filter = filter_wasm().display(),
        policy = quoted(&text),
        api = upstreams.api,
        guard_map = guard.map,
        guard_if = guard.refuse,
        unframed_map = unframed.map,
        unframed_if = unframed.refuse,
    )
}

/// ngx_wasm_module calls no body callback for an empty body, and only `content-length: 0`
/// tells the filter in advance; so a request to an MCP route that may carry a body
/// (not GET, HEAD, DELETE or OPTIONS) without `Content-Length` (chunked, or no framing at
/// all) is answered 411 before the filter, which would otherwise wait for a body that
/// never comes while the request went on.
pub fn unframed_body_guard(mcp_paths: &[String]) -> Guard {
    if mcp_paths.is_empty() {
        return Guard {
            map: String::new(),
            refuse: String::new(),
        };
    }
    let entries: String = mcp_paths
        .iter()
        .map(|path| format!("        \"~^[A-Z]+:{}:$\" 1;\n", path.replace('.', "\\.")))
        .collect();
    Guard {
        map: format!(
            "    map \"$request_method:$uri:$content_length\" $scopegate_unframed {{\n        \
             \"~^(GET|HEAD|DELETE|OPTIONS):\" 0;\n{entries}        default 0;\n    }}\n"
        ),
        refuse: "        if ($scopegate_unframed) { return 411 '{\"error\":\"invalid_request\",\
                 \"error_description\":\"an MCP request body needs Content-Length\"}'; }\n"
            .to_owned(),
    }
}

/// Two pieces of configuration that refuse a request before the filter runs.
pub struct Guard {
    /// A `map` for the `http {}` block: a variable that is 1 for such a request.
    pub map: String,
    /// An `if` for the `server {}` block: such a request is answered in the server's
    /// rewrite phase, before any location (and the filter) is chosen.
    pub refuse: String,
}

/// ngx_wasm_module removes a request header by clearing its hash, and `proxy_pass` still
/// sends it (`proxy_set_header` cannot drop it either: its lookup uses that hash). So a
/// request that carries a header the filter forwards is refused in the rewrite phase,
/// which runs before the filter; Envoy removes the headers instead.
pub fn forged_header_guard(forwarded: &[String]) -> Guard {
    if forwarded.is_empty() {
        return Guard {
            map: String::new(),
            refuse: String::new(),
        };
    }
    let variables: String = forwarded
        .iter()
        .map(|name| format!("$http_{}", name.to_ascii_lowercase().replace('-', "_")))
        .collect();
    let names = forwarded.join(", ");
    Guard {
        map: format!("    map \"{variables}\" $scopegate_forged {{ \"\" 0; default 1; }}\n"),
        refuse: format!(
            "        if ($scopegate_forged) {{ return 400 '{{\"error\":\"invalid_request\",\
             \"error_description\":\"{names}: set by the gateway, never by a client\"}}'; }}\n"
        ),
    }
}

/// A running nginx, stopped by PID on drop.
pub struct Nginx {
    child: Child,
    /// The listener port.
    pub port: u16,
    dir: TempDir,
}

/// How an nginx start ended when it did not come up.
#[derive(Debug)]
pub struct NginxFailed {
    /// Exit status, if it exited.
    pub status: Option<i32>,
    /// Its error log and what it printed.
    pub log: String,
}

impl super::StartFailure for NginxFailed {
    fn log(&self) -> &str {
        &self.log
    }
}

impl Nginx {
    /// nginx with the filter enforcing `policy` on a free port in front of `upstreams`.
    pub fn with_filter(
        upstreams: &Upstreams,
        policy: &Value,
        options: &NginxOptions,
    ) -> Result<Self, NginxFailed> {
        super::on_a_free_port(|listen| {
            Self::start(&nginx_config(listen, upstreams, policy, options), listen)
        })
    }

    /// Starts nginx on a configuration text (its prefix is a new temp dir, so `logs/`
    /// paths are its own) and waits until a worker answers on `listen`. A worker that
    /// exits for good (a filter that fails to load: nginx logs `cannot be respawned` and
    /// its master keeps the port with no worker behind it) is a failed start.
    pub fn start(config: &str, listen: u16) -> Result<Self, NginxFailed> {
        if let Some(missing) = nginx_missing() {
            panic!("{missing}");
        }
        let dir = TempDir::new("nginx");
        fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        let config_path = dir.path().join("nginx.conf");
        fs::write(&config_path, config).expect("write config");
        let out = fs::File::create(dir.path().join("logs/stderr.log")).expect("log file");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("spawn nginx");
        let mut nginx = Nginx {
            child,
            port: listen,
            dir,
        };
        // Each worker compiles the filter (about a second with Cranelift) before it
        // accepts; a worker that answers has loaded it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(NginxFailed {
                    status: status.code(),
                    log: nginx.log(),
                });
            }
            if nginx.log().contains("cannot be respawned") {
                return Err(NginxFailed {
                    status: None,
                    log: nginx.log(),
                });
            }
            if TcpStream::connect(("127.0.0.1", listen)).is_ok()
                // Any answer: a worker is up (the filter may answer a config without the
                // ready location).
                && get(listen, "/.harness/ready").is_ok()
            {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                return Err(NginxFailed {
                    status: None,
                    log: nginx.log(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The master's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The error log (the filter's lines among nginx's) and what nginx printed.
    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        read("logs/error.log") + &read("logs/stderr.log")
    }

    /// The prefix directory.
    pub fn prefix(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let master = self.child.id();
        let workers = children_of(master);
        // TERM: the master stops its workers and exits at once.
        signal(master, "-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A worker the master did not take down is stopped by its PID too.
        for worker in workers {
            if fs::metadata(format!("/proc/{worker}")).is_ok() {
                signal(worker, "-KILL");
            }
        }
    }
}
