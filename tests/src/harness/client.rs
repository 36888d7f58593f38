//! A raw HTTP/1.1 client that sends exactly the bytes it is given.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

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
