//! Small threaded HTTP/1.1 servers on 127.0.0.1: an echo upstream, a JWKS server, a
//! recording upstream.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::json;

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
    /// The body (as `content-length` or chunked transfer coding delimits it).
    pub body: Vec<u8>,
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

    /// Records `request`, for a handler of the test's own.
    pub fn push(&self, request: &ServerRequest) {
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

type Handler = dyn Fn(&ServerRequest) -> (u16, &'static str, Vec<u8>) + Send + Sync;

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
        Self::start_raw(port, move |request| {
            let response = handler(request);
            (
                response.status,
                response.content_type,
                response.body.into_bytes(),
            )
        })
    }

    /// A server of one file: `GET path` answers 200 with `bytes` (`content_type`), anything
    /// else 404; records every request (a test can count the fetches).
    pub fn file(path: &str, content_type: &'static str, bytes: Vec<u8>) -> (Self, Recorder) {
        let recorder = Recorder::default();
        let recording = recorder.clone();
        let path = path.to_owned();
        let server = Self::start_raw(0, move |request| {
            recording.push(request);
            if request.method == "GET" && request.target == path {
                (200, content_type, bytes.clone())
            } else {
                (404, "text/plain", b"not found".to_vec())
            }
        })
        .expect("bind 127.0.0.1");
        (server, recorder)
    }

    /// Starts on `port` (0: any) with a handler that answers a status, a content type and
    /// the body's bytes.
    fn start_raw(
        port: u16,
        handler: impl Fn(&ServerRequest) -> (u16, &'static str, Vec<u8>) + Send + Sync + 'static,
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
        let (status, content_type, body) = handler(&request);
        let reason = if status == 200 { "OK" } else { "Status" };
        // One write: a head and a body in two segments would wait on delayed ACKs.
        let mut message = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len(),
        )
        .into_bytes();
        message.extend_from_slice(&body);
        if writer.write_all(&message).is_err() {
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
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(ServerRequest {
        method,
        target,
        headers,
        head,
        body,
    })
}

/// A chunked body (RFC 9112 §7.1), trailers skipped.
fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let size = line.trim().split(';').next()?;
        let size = usize::from_str_radix(size, 16).ok()?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer).ok()?;
                if trailer.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(&chunk[..size]);
    }
}
