//! An MCP endpoint behind the filter in a real Envoy: per-tool scopes read from the
//! JSON-RPC body, batches, the body limit, malformed bodies, `Mcp-Method` / `Mcp-Name`
//! that disagree with the body, chunked bodies, and what is never buffered (other routes'
//! bodies, responses, event streams), and two resources with their own metadata and
//! audiences behind one Envoy.
//!
//! Needs `./scripts/setup` and `./scripts/build-filter` (as `./scripts/test` runs them).
//! Each test starts its own Envoy and upstream on free 127.0.0.1 ports, stopped when it
//! ends (Envoy by PID).

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use scopegate_tests::harness::{
    request, send_raw, Host, HttpServer, Proxy, Recorder, Response, ServerResponse, Upstreams,
};
use scopegate_tests::on_each_host;
use scopegate_tests::{mint, unix_now as now, TestKeys};
use serde_json::{json, Map, Value};

on_each_host!(
    resource_uris_are_normalized_before_they_are_matched,
    each_tool_call_is_held_to_its_own_scope_and_the_body_reaches_the_server_intact,
    a_batch_needs_what_each_call_needs,
    malformed_and_oversized_bodies_and_disagreeing_headers_fail_closed,
    chunked_bodies_are_buffered_to_their_end_or_to_the_limit,
    only_mcp_request_bodies_are_buffered,
    hostile_mcp_bodies_fail_closed_in_envoy,
    two_resources_each_with_its_metadata_and_audience,
    a_2026_07_28_client_reads_the_gateways_refusals_as_json_rpc_errors,
    trusted_mirrored_headers_authorize_2026_07_28_calls_without_reading_their_bodies,
);

const ISSUER: &str = "https://idp.scopegate.test";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const METADATA: &str = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp";
const LIMIT: usize = 4096;

fn policy(keys: &TestKeys) -> Value {
    json!({
        "version": 1,
        "realm": "mcp",
        "resource": RESOURCE,
        "issuers": [{"issuer": ISSUER, "audiences": [RESOURCE], "algorithms": ["EdDSA", "ES256"],
                     "jwks": keys.jwks("")}],
        "routes": [
            {"path": "/mcp", "mcp": {"max_body_bytes": LIMIT, "rules": [
                {"method": "tools/call", "require": "mcp:tools"},
                {"method": "tools/call", "name": "get-env", "require": "mcp:admin"},
                {"method": "resources/read", "require": "mcp:tools"},
                {"method": "resources/read", "uri": "file:///secret/{id}", "require": "mcp:admin"}
            ]}},
            {"path": "/upload", "methods": ["POST"], "require": "mcp:tools"}
        ],
        "forward": {"claims": [{"claim": "sub", "header": "x-scopegate-sub"}]}
    })
}

struct Mcp {
    proxy: Proxy,
    recorder: Recorder,
    _api: HttpServer,
    keys: TestKeys,
}

impl Mcp {
    fn start(host: Host) -> Self {
        Self::start_with(host, |_| {})
    }

    /// Started with the test policy as `change` leaves it.
    fn start_with(host: Host, change: impl FnOnce(&mut Value)) -> Self {
        let keys = TestKeys::from_seed(1);
        let mut policy = policy(&keys);
        change(&mut policy);
        let (api, recorder) = HttpServer::recording_echo();
        let upstreams = Upstreams {
            api: api.port,
            jwks: None,
        };
        let proxy = host.start(&upstreams, &policy);
        Self {
            proxy,
            recorder,
            _api: api,
            keys,
        }
    }

    fn token(&self, scope: &str) -> String {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(ISSUER));
        claims.insert("aud".into(), json!(RESOURCE));
        claims.insert("sub".into(), json!("alice"));
        claims.insert("exp".into(), json!(now() + 600));
        claims.insert("scope".into(), json!(scope));
        mint(&self.keys, &json!({"alg": "EdDSA"}), &claims)
    }

    /// `POST /mcp` with `body` and these extra headers, the token holding `scope`.
    fn post(&self, scope: &str, body: &[u8], extra: &[(&str, &str)]) -> Response {
        let mut head = format!(
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
             content-length: {}\r\nconnection: close\r\n",
            self.token(scope),
            body.len()
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        send_raw(self.proxy.port(), &bytes)
            .unwrap_or_else(|e| panic!("exchange: {e}\n{}", self.proxy.log()))
    }
}

fn call(name: &str, id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": {"message": "hello"}}})
}

fn bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// The error_description of a 400 or 413, from its challenge and its body.
fn refused(response: &Response, status: u16, description: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        response.header("www-authenticate"),
        Some(
            format!(r#"Bearer error="invalid_request", error_description="{description}""#)
                .as_str()
        )
    );
    assert_eq!(
        response.json(),
        json!({"error": "invalid_request", "error_description": description})
    );
}

fn each_tool_call_is_held_to_its_own_scope_and_the_body_reaches_the_server_intact(host: Host) {
    let mcp = Mcp::start(host);
    // No token: the 401 points at the MCP resource's own metadata document.
    let response = request(mcp.proxy.port(), "POST", "/mcp", &[("content-length", "0")]).unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some(format!(r#"Bearer realm="mcp", resource_metadata="{METADATA}""#).as_str())
    );
    let metadata = request(
        mcp.proxy.port(),
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
    )
    .unwrap();
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.json()["resource"], RESOURCE);
    assert_eq!(
        metadata.json()["scopes_supported"],
        json!(["mcp:admin", "mcp:tools"])
    );

    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}});
    assert_eq!(
        mcp.post("", &bytes(&initialize), &[]).status,
        200,
        "a valid token, no scope"
    );

    let echo = bytes(&call("echo", 1));
    let response = mcp.post("mcp:tools", &echo, &[]);
    assert_eq!(response.status, 200, "{}", response.body);
    let seen = mcp.recorder.requests();
    let last = seen.last().expect("the upstream got the call");
    assert_eq!(
        last.body, echo,
        "the buffered body is forwarded byte for byte"
    );
    assert_eq!(last.header_values("x-scopegate-sub"), ["alice"]);

    let before = mcp.recorder.len();
    let response = mcp.post("mcp:tools", &bytes(&call("get-env", 2)), &[]);
    assert_eq!(response.status, 403);
    assert_eq!(
        response.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer realm="mcp", error="insufficient_scope", scope="mcp:admin", resource_metadata="{METADATA}""#
            )
            .as_str()
        )
    );
    assert_eq!(response.json()["missing"], "mcp:admin");
    assert_eq!(
        mcp.recorder.len(),
        before,
        "a refused call never reaches the server"
    );
    assert_eq!(
        mcp.post("mcp:tools mcp:admin", &bytes(&call("get-env", 3)), &[])
            .status,
        200
    );
    match mcp.proxy.counter("missing_scope.mcp:admin") {
        Ok(missing) => assert_eq!(missing, 1),
        Err(limit) => limit.note("each_tool_call_is_held_to_its_own_scope"),
    }
}

fn a_batch_needs_what_each_call_needs(host: Host) {
    let mcp = Mcp::start(host);
    let batch = json!([call("echo", 1), call("get-env", 2)]);
    let response = mcp.post("mcp:tools", &bytes(&batch), &[]);
    assert_eq!(response.status, 403);
    assert_eq!(
        response.json(),
        json!({"error": "insufficient_scope", "scope": "mcp:tools mcp:admin", "missing": "mcp:admin"})
    );
    let before = mcp.recorder.len();
    let response = mcp.post("mcp:tools mcp:admin", &bytes(&batch), &[]);
    assert_eq!(response.status, 200);
    assert_eq!(mcp.recorder.len(), before + 1);
    let notifications = json!([{"jsonrpc": "2.0", "method": "notifications/initialized"},
                               {"jsonrpc": "2.0", "id": 9, "method": "ping"}]);
    assert_eq!(mcp.post("", &bytes(&notifications), &[]).status, 200);
}

fn malformed_and_oversized_bodies_and_disagreeing_headers_fail_closed(host: Host) {
    let mcp = Mcp::start(host);
    let before = mcp.recorder.len();
    refused(
        &mcp.post("mcp:tools", b"{\"jsonrpc\": \"2.0\", \"method\": ", &[]),
        400,
        "The request body is not JSON",
    );
    refused(
        &mcp.post("mcp:tools", b"", &[]),
        400,
        "The request body is not JSON",
    );
    refused(
        &mcp.post("mcp:tools", b"\xff\xfe\x00garbage", &[]),
        400,
        "The request body is not JSON",
    );
    refused(
        &mcp.post("mcp:tools", br#"{"id": 1, "method": "tools/call"}"#, &[]),
        400,
        "The request body is not a JSON-RPC 2.0 message or batch of messages",
    );
    refused(
        &mcp.post("mcp:tools", b"[]", &[]),
        400,
        "The request body is an empty JSON-RPC batch",
    );
    refused(
        &mcp.post("mcp:tools", &[b'['; 200], &[]),
        400,
        "The request body nests arrays and objects too deeply",
    );
    let mut big = call("echo", 1);
    big["params"]["arguments"]["message"] = json!("x".repeat(LIMIT));
    let over = mcp.post("mcp:tools", &bytes(&big), &[]);
    match host {
        Host::Envoy => refused(
            &over,
            413,
            "The request body is over the limit of this MCP endpoint",
        ),
        // nginx's `client_max_body_size` (the route's limit) answers first, with its own page.
        Host::Nginx => assert_eq!(over.status, 413, "{}", over.body),
    }
    let mismatch = "The Mcp-Method or Mcp-Name header does not match the request body";
    let get_env = bytes(&call("get-env", 1));
    refused(
        &mcp.post(
            "mcp:tools",
            &get_env,
            &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
        ),
        400,
        mismatch,
    );
    refused(
        &mcp.post(
            "mcp:tools",
            &bytes(&call("echo", 1)),
            &[("mcp-method", "ping")],
        ),
        400,
        mismatch,
    );
    refused(
        &mcp.post(
            "mcp:tools",
            &get_env,
            &[("mcp-name", "=?base64?not base64?=")],
        ),
        400,
        "The Mcp-Method or Mcp-Name header is not valid =?base64?...?= text",
    );
    // A repeated Mcp-Name (Envoy may fold it, or hand both): refused either way.
    let repeated = mcp.post(
        "mcp:tools",
        &bytes(&call("echo", 1)),
        &[("mcp-name", "echo"), ("mcp-name", "echo")],
    );
    assert_eq!(repeated.status, 400, "{}", repeated.body);
    assert_eq!(
        mcp.recorder.len(),
        before,
        "nothing malformed reached the server"
    );
    match mcp.proxy.counter("decision.deny_bad_body") {
        Ok(denied) => assert_eq!(denied, 11),
        Err(limit) => {
            limit.note("malformed_and_oversized_bodies_and_disagreeing_headers_fail_closed")
        }
    }
    // Headers that agree (one in base64) pass, and the server sees them.
    let response = mcp.post(
        "mcp:tools",
        &bytes(&call("echo", 1)),
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ],
    );
    assert_eq!(response.status, 200, "{}", response.body);
}

/// A chunked body sent in pieces with pauses: buffered until its end, then decided; and a
/// chunked body that grows past the limit is refused as soon as it does.
fn chunked_bodies_are_buffered_to_their_end_or_to_the_limit(host: Host) {
    let mcp = Mcp::start(host);
    let body = bytes(&call("echo", 5));
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        mcp.token("mcp:tools")
    );
    if host == Host::Nginx {
        // nginx: a body to an MCP route needs Content-Length (`unframed_body_guard`).
        for end in [&b"0\r\n\r\n"[..], b"5\r\nhello\r\n0\r\n\r\n"] {
            let mut stream = TcpStream::connect(("127.0.0.1", mcp.proxy.port())).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(end).unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
        }
        assert!(mcp.recorder.is_empty(), "a chunked body reached the server");
        return;
    }
    let mut stream = TcpStream::connect(("127.0.0.1", mcp.proxy.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(7) {
        stream
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .unwrap();
        stream.write_all(piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
        thread::sleep(Duration::from_millis(5));
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(mcp.recorder.requests().last().unwrap().body, body);

    // An empty chunked body: read as empty and refused, never let through undecided (a
    // host may call no body callback for it).
    let before = mcp.recorder.len();
    let mut stream = TcpStream::connect(("127.0.0.1", mcp.proxy.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(
        mcp.recorder.len(),
        before,
        "an empty body reached the server"
    );

    // Over the limit in chunks, with no end: refused without waiting for the end.
    let mut stream = TcpStream::connect(("127.0.0.1", mcp.proxy.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let piece = vec![b' '; 1024];
    for _ in 0..5 {
        stream.write_all(b"400\r\n").unwrap();
        stream.write_all(&piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// Bodies of other routes stream through unread (no limit, beyond Envoy's own buffer
/// size), and responses, event streams included, are never buffered.
fn only_mcp_request_bodies_are_buffered(host: Host) {
    let mcp = Mcp::start(host);
    let big = vec![b'a'; 3 << 20];
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        mcp.token("mcp:tools"),
        big.len()
    );
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&big);
    let response = send_raw(mcp.proxy.port(), &raw).unwrap();
    assert_eq!(
        response.status, 200,
        "a 3 MiB body of a REST route is not buffered"
    );
    assert_eq!(
        mcp.recorder.requests().last().unwrap().body.len(),
        big.len()
    );

    // An MCP server that answers with an event stream.
    let keys = TestKeys::from_seed(1);
    let events =
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n".repeat(200);
    let served = events.clone();
    let sse = HttpServer::start(move |_| ServerResponse {
        status: 200,
        content_type: "text/event-stream",
        body: served.clone(),
    });
    let upstreams = Upstreams {
        api: sse.port,
        jwks: None,
    };
    let proxy = host.start(&upstreams, &policy(&keys));
    let mcp_sse = Mcp {
        proxy,
        recorder: Recorder::default(),
        _api: sse,
        keys,
    };
    let response = mcp_sse.post("mcp:tools", &bytes(&call("echo", 1)), &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.body, events);
}

/// A seeded corpus of hostile MCP bodies and headers at the Envoy boundary: random bytes,
/// truncated and mutated JSON-RPC, deep nesting, odd Unicode, forged `Mcp-*` headers. No
/// 5xx, no panic in Envoy's log, every answer is what the core decides for the same bytes,
/// nothing the core refuses reaches the server, and a valid call passes afterwards.
fn hostile_mcp_bodies_fail_closed_in_envoy(host: Host) {
    use rand::{Rng, SeedableRng};
    use scopegate_core::{KeyStore, Policy, Request, UnixTime};

    let mcp = Mcp::start(host);
    let policy = Policy::from_json(&policy(&mcp.keys).to_string()).unwrap();
    let keys = KeyStore::default();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x006d_6370);
    let scope = "mcp:tools";
    let token = mcp.token(scope);
    let auth = [format!("Bearer {token}")];
    let auth: Vec<&str> = auth.iter().map(String::as_str).collect();
    let valid = bytes(&call("echo", 1));
    let pieces: [&[u8]; 12] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b",",
        b":",
        b"\\u0000",
        b"\xff",
        b"\xc3\x28",
        b"\"jsonrpc\":\"2.0\"",
        b"\"method\":\"tools/call\"",
    ];
    let names = [
        "echo",
        "get-env",
        "",
        "get-env\u{0}",
        "\u{202e}echo",
        "ECHO",
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for case in 0..300 {
        let body: Vec<u8> = match case % 6 {
            0 => (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect(),
            1 => {
                let mut b = valid.clone();
                let cut = rng.gen_range(0..b.len());
                b.truncate(cut);
                b
            }
            2 => {
                let mut b = valid.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..b.len());
                    b[at] = rng.gen();
                }
                b
            }
            3 => (0..rng.gen_range(1..40))
                .flat_map(|_| pieces[rng.gen_range(0..pieces.len())].to_vec())
                .collect(),
            4 => {
                let depth = rng.gen_range(10..120);
                let mut b = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":"#.to_vec();
                b.extend(std::iter::repeat_n(b'[', depth));
                b.extend(std::iter::repeat_n(b']', depth));
                b.extend_from_slice(b"}}");
                b
            }
            _ => {
                let name = names[rng.gen_range(0..names.len())];
                let batch: Vec<Value> = (0..rng.gen_range(1..4)).map(|i| call(name, i)).collect();
                bytes(&json!(batch))
            }
        };
        let forged = names[rng.gen_range(0..names.len())];
        let extra: Vec<(&str, &str)> = if rng.gen_bool(0.3) {
            vec![("mcp-method", "tools/call"), ("mcp-name", forged)]
        } else {
            vec![]
        };
        let before = mcp.recorder.len();
        let response = mcp.post(scope, &body, &extra);
        let mut request = Request::new("POST", "/mcp")
            .with_authorization(&auth)
            .with_body(&body);
        request.mcp_method = extra.first().map(|(_, v)| *v);
        request.mcp_name = extra.get(1).map(|(_, v)| v.trim_matches([' ', '\t']));
        let decided = policy.decide(&request, &keys, UnixTime(now()));
        let expected = decided.status().unwrap_or(200);
        *statuses.entry(response.status).or_insert(0) += 1;
        assert!(
            response.status < 500,
            "case {case}: {} for {body:?}",
            response.status
        );
        // A header value Envoy itself cannot carry (a NUL) never reaches the filter.
        if !forged.contains('\u{0}') || extra.is_empty() {
            assert_eq!(response.status, expected, "case {case}: {body:?} {extra:?}");
        }
        let reached = mcp.recorder.len() > before;
        assert_eq!(
            reached,
            response.status == 200,
            "case {case}: upstream hit {reached}"
        );
    }
    assert!(!mcp.proxy.log().contains("panicked"), "{}", mcp.proxy.log());
    assert_eq!(mcp.post(scope, &valid, &[]).status, 200);
    assert!(
        statuses.len() >= 3,
        "the corpus reaches several answers: {statuses:?}"
    );
    eprintln!("hostile MCP corpus: statuses {statuses:?}");
}

/// Two resources behind one Envoy (RFC 9728 `resources`): each metadata document is
/// served, each 401 names its own, and a token for one resource is refused on the other.
fn two_resources_each_with_its_metadata_and_audience(host: Host) {
    let keys = TestKeys::from_seed(1);
    let api_resource = "http://127.0.0.1:8080/api";
    let policy = json!({
        "version": 1,
        "realm": "gw",
        "resources": [{"resource": RESOURCE}, {"resource": api_resource}],
        "issuers": [{"issuer": ISSUER, "audiences": ["http://127.0.0.1:8080"],
                     "algorithms": ["EdDSA"], "jwks": keys.jwks("")}],
        "routes": [
            {"path": "/mcp", "mcp": {"rules": [
                {"method": "tools/call", "name": "get-env", "require": "mcp:admin"}
            ]}},
            {"path": "/api/**", "require": "api"}
        ]
    });
    let (api, recorder) = HttpServer::recording_echo();
    let upstreams = Upstreams {
        api: api.port,
        jwks: None,
    };
    let proxy = host.start(&upstreams, &policy);
    let token = |aud: &str, scope: &str| {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(ISSUER));
        claims.insert("aud".into(), json!(aud));
        claims.insert("sub".into(), json!("alice"));
        claims.insert("exp".into(), json!(now() + 600));
        claims.insert("scope".into(), json!(scope));
        format!("Bearer {}", mint(&keys, &json!({"alg": "EdDSA"}), &claims))
    };

    for (path, resource, scopes) in [
        (
            "/.well-known/oauth-protected-resource/mcp",
            RESOURCE,
            json!(["mcp:admin"]),
        ),
        (
            "/.well-known/oauth-protected-resource/api",
            api_resource,
            json!(["api"]),
        ),
    ] {
        let response = request(proxy.port(), "GET", path, &[]).unwrap();
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        let document = response.json();
        assert_eq!(document["resource"], json!(resource), "{path}");
        assert_eq!(document["scopes_supported"], scopes, "{path}");
    }

    let no_token = request(proxy.port(), "GET", "/api/orders", &[]).unwrap();
    assert_eq!(no_token.status, 401);
    assert_eq!(
        no_token.header("www-authenticate"),
        Some(
            "Bearer realm=\"gw\", resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/api\""
        )
    );

    // The MCP resource's token holds `api`, but it was not issued for the API.
    let mcp_token = token(RESOURCE, "api");
    let refused = request(
        proxy.port(),
        "GET",
        "/api/orders",
        &[("authorization", &mcp_token)],
    )
    .unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(
        refused.header("www-authenticate"),
        Some(
            "Bearer realm=\"gw\", error=\"invalid_token\", error_description=\"The access token is not meant for this resource\", resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/api\""
        )
    );
    let api_token = token(api_resource, "api");
    let allowed = request(
        proxy.port(),
        "GET",
        "/api/orders",
        &[("authorization", &api_token)],
    )
    .unwrap();
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(
        recorder.len(),
        1,
        "only the API's own token reached the API"
    );
    // The token cache holds the verified principal: the same token on the other resource
    // is still refused.
    let body = bytes(&call("echo", 1));
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: {api_token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&body);
    let cross = send_raw(proxy.port(), &raw).unwrap();
    assert_eq!(cross.status, 401, "{}", cross.body);
    assert!(
        cross
            .header("www-authenticate")
            .is_some_and(|c| c.contains("oauth-protected-resource/mcp\"")),
        "{:?}",
        cross.header("www-authenticate")
    );
    assert_eq!(recorder.len(), 1, "{}", proxy.log());
}

/// A resource URI is matched as a server that normalizes it reads it (RFC 3986): every
/// spelling of `file:///secret/7` needs the secret rule's scope, and a URI that cannot be
/// normalized is refused; none reaches the server with `mcp:tools` alone.
fn resource_uris_are_normalized_before_they_are_matched(host: Host) {
    let mcp = Mcp::start(host);
    let read = |uri: &str| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read",
                          "params": {"uri": uri}});
        mcp.post("mcp:tools", &bytes(&body), &[])
    };
    assert_eq!(read("file:///public/7").status, 200, "the route's rule");
    let before = mcp.recorder.len();
    for uri in [
        "file:///secret/7",
        "file:///public/../secret/7",
        "file:///secret/7/.",
        "file:///secret/./7",
        "FILE:///secret/7",
        "file:///secret//7",
        "file:///%73ecret/7",
    ] {
        let response = read(uri);
        assert_eq!(response.status, 403, "{uri}: {}", response.body);
        assert!(
            response.body.contains("mcp:admin"),
            "{uri}: {}",
            response.body
        );
    }
    for uri in [
        "file:///secret%2f7",
        "file:///../secret/7",
        "file:///%zz/7",
        "secret/7",
    ] {
        refused(
            &read(uri),
            400,
            "The call's params.uri cannot be normalized",
        );
    }
    assert_eq!(
        mcp.recorder.len(),
        before,
        "a secret was read with mcp:tools"
    );
    assert_eq!(
        mcp.post(
            "mcp:tools mcp:admin",
            &bytes(&json!({"jsonrpc": "2.0", "id": 2,
            "method": "resources/read", "params": {"uri": "file:///public/../secret/7"}})),
            &[]
        )
        .status,
        200
    );
}

/// A 2026-07-28 call: `params._meta` names the revision, as `MCP-Protocol-Version` must.
fn call_2026(name: &str, id: u64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": {"message": message},
                      "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
}

/// What a 2026-07-28 server answers malformed traffic with, and so the gateway: HTTP 400
/// and a JSON-RPC error for the request's id, which the client's SDK reads as the server's.
/// A missing scope stays an RFC 6750 403 challenge.
fn a_2026_07_28_client_reads_the_gateways_refusals_as_json_rpc_errors(host: Host) {
    let mcp = Mcp::start(host);
    let before = mcp.recorder.len();
    let v2026 = ("mcp-protocol-version", "2026-07-28");
    let mismatch = "The Mcp-Method or Mcp-Name header does not match the request body";
    let response = mcp.post(
        "mcp:tools",
        &bytes(&call_2026("get-env", 3, "hi")),
        &[("mcp-method", "tools/call"), ("mcp-name", "echo"), v2026],
    );
    assert_eq!(response.status, 400, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.json(),
        json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32020, "message": mismatch}})
    );
    let missing = mcp.post(
        "mcp:tools",
        &bytes(&call_2026("echo", 4, "hi")),
        &[("mcp-method", "tools/call"), v2026],
    );
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(missing.json()["id"], 4);
    assert_eq!(missing.json()["error"]["code"], -32020);
    let unsupported = mcp.post(
        "mcp:tools",
        &bytes(&call("echo", 5)),
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("mcp-protocol-version", "2099-01-01"),
        ],
    );
    assert_eq!(unsupported.status, 400, "{}", unsupported.body);
    assert_eq!(unsupported.json()["error"]["code"], -32022);
    assert_eq!(
        unsupported.json()["error"]["data"]["requested"],
        "2099-01-01"
    );
    assert_eq!(
        unsupported.json()["error"]["data"]["supported"],
        json!([
            "2024-11-05",
            "2025-03-26",
            "2025-06-18",
            "2025-11-25",
            "2026-07-28"
        ])
    );
    assert_eq!(
        mcp.recorder.len(),
        before,
        "nothing malformed reached the server"
    );

    let scope = mcp.post(
        "mcp:tools",
        &bytes(&call_2026("get-env", 6, "hi")),
        &[("mcp-method", "tools/call"), ("mcp-name", "get-env"), v2026],
    );
    assert_eq!(scope.status, 403, "{}", scope.body);
    let challenge = scope.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="mcp:admin""#), "{challenge}");
    let agreeing = mcp.post(
        "mcp:tools",
        &bytes(&call_2026("echo", 7, "hi")),
        &[("mcp-method", "tools/call"), ("mcp-name", "echo"), v2026],
    );
    assert_eq!(agreeing.status, 200, "{}", agreeing.body);
    assert_eq!(mcp.recorder.len(), before + 1);
}

/// With `trust_mirrored_headers` the gateway decides a 2026-07-28 call from `Mcp-Method` /
/// `Mcp-Name` without reading its body: a body over the route's limit passes whole (the
/// upstream checks the headers against it); an older revision's body is still read.
fn trusted_mirrored_headers_authorize_2026_07_28_calls_without_reading_their_bodies(host: Host) {
    let mcp = Mcp::start_with(host, |policy| {
        policy["routes"][0]["mcp"]["trust_mirrored_headers"] = json!(true);
    });
    let v2026 = ("mcp-protocol-version", "2026-07-28");
    // Over the limit on nginx too would meet nginx's own `client_max_body_size` first.
    let message = match host {
        Host::Envoy => "x".repeat(2 * LIMIT),
        Host::Nginx => String::from("hi"),
    };
    let body = bytes(&call_2026("echo", 1, &message));
    let echo = [("mcp-method", "tools/call"), ("mcp-name", "echo"), v2026];
    let response = mcp.post("mcp:tools", &body, &echo);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        mcp.recorder.requests().last().unwrap().body,
        body,
        "the body passed whole"
    );
    let get_env = [("mcp-method", "tools/call"), ("mcp-name", "get-env"), v2026];
    let refused = mcp.post(
        "mcp:tools",
        &bytes(&call_2026("get-env", 2, "hi")),
        &get_env,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let no_name = mcp.post("mcp:tools", &body, &[("mcp-method", "tools/call"), v2026]);
    assert_eq!(no_name.status, 400, "{}", no_name.body);
    assert_eq!(no_name.json()["error"]["code"], -32020);
    if host == Host::Envoy {
        let older = [
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let read = mcp.post("mcp:tools", &bytes(&call("echo", 3)), &older);
        assert_eq!(read.status, 200, "{}", read.body);
        let mut big = call("echo", 4);
        big["params"]["arguments"]["message"] = json!(message);
        let over = mcp.post("mcp:tools", &bytes(&big), &older);
        assert_eq!(
            over.status, 413,
            "an older revision's body is read: {}",
            over.body
        );
    }
}
