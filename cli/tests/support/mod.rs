//! What the command line's tests share: running the binary, temporary directories, the
//! shared decision vectors.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The repository's root.
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Runs `scopegate ARGS` in `dir` with `stdin` as its standard input (none: closed):
/// exit code, stdout, stderr.
pub fn scopegate_with(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    let output = child.wait_with_output().expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `scopegate ARGS` in `dir`.
pub fn scopegate_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    scopegate_with(dir, args, None)
}

/// Runs `scopegate ARGS` at the repository's root.
pub fn scopegate(args: &[&str]) -> (i32, String, String) {
    scopegate_in(Path::new(REPO), args)
}

/// A directory of its own for one test, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("scopegate-cli-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

pub fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|err| panic!("{err}: {out}"))
}

/// A suite of the shared decision vectors.
pub fn suite(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(REPO).join("tests/vectors/decisions.json"))
        .expect("vectors");
    let vectors: Value = serde_json::from_str(&text).expect("JSON");
    vectors["suites"]
        .as_array()
        .and_then(|suites| suites.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no suite `{name}`"))
}

pub fn case<'a>(suite: &'a Value, name: &str) -> &'a Value {
    suite["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no case `{name}`"))
}

/// The case's token, without `Bearer `.
pub fn bearer(case: &Value) -> &str {
    case["request"]["authorization"][0]
        .as_str()
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("a bearer token")
}

/// A one-thread HTTP server on 127.0.0.1 that answers each request in turn with the next
/// of `answers` (status, body), then stops. Its port.
pub fn serve(answers: Vec<(u16, String)>) -> u16 {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// An unsigned JWT (`alg` ES256, signature `sig`) with these claims, for explanations that
/// do not check the signature.
pub fn unsigned_jwt(claims: &Value) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let part = |v: &str| Base64UrlUnpadded::encode_string(v.as_bytes());
    format!(
        "{}.{}.c2ln",
        part(r#"{"alg":"ES256","typ":"at+jwt"}"#),
        part(&claims.to_string())
    )
}
