//! A real MCP server behind the filter, end to end: the MCP reference server
//! (`@modelcontextprotocol/server-everything`, Streamable HTTP) behind Envoy with the
//! scopegate filter, the demo IdP (`examples/idp/idp.mjs`, npm `oidc-provider`) issuing JWT
//! access tokens for the MCP resource URL, and MCP clients on the official TypeScript SDK
//! (`tests/e2e/mcp-client.mjs`) that discover everything from the gateway's 401.
//!
//! - alice, on the plain SDK: 401 → RFC 9728 metadata → the IdP's metadata → code + PKCE at
//!   the IdP, where she approves the minimal grant (`mcp:tools`) → `echo` → 403 on
//!   `get-env` → the SDK re-authorizes with the challenge's `scope` → `get-env` runs → `echo`
//!   still works in the same MCP session;
//! - bob (no role for `mcp:admin`), on the plain SDK: the IdP refuses `mcp:admin` at both
//!   authorization requests, and the 403 stays (the SDK gives up after one step-up);
//! - alice on a client that pre-checks with the scopegate npm package: never a 403;
//! - alice on the plain SDK against a policy whose metadata lists only `mcp:tools`
//!   (`resources[].scopes_supported`): the SDK asks for the minimal grant by itself;
//! - alice and bob on the v2 TypeScript client (`@modelcontextprotocol/client` 2.4.0,
//!   `tests/e2e/mcp-client-v2.mjs`) and on the Python SDK (PyPI `mcp` 2.3.0,
//!   `tests/e2e/mcp_client.py`, from `.venv`), each on the 2025 revision against the
//!   reference server and pinned to 2026-07-28 against `tests/e2e/mcp-server-v2.mjs`
//!   (`@modelcontextprotocol/server` 2.4.0): these SDKs step up to the union of the held and
//!   the challenged scopes themselves; alice's call runs on the same client, bob keeps his
//!   403;
//! - alice on the v2 client with the npm package's pre-checks, without `withHeldScopes`.
//! - alice on the v2 TypeScript and the Python client, pinned to 2026-07-28, with the fetch
//!   (an httpx2 request hook) rewriting `Mcp-Name` of every `tools/call get-env` to `echo`:
//!   the gateway's 400 and JSON-RPC `-32020` reach the caller as the SDK's own MCP error
//!   (`ProtocolError` / `MCPError`) after the SDK's one re-list-and-retry, the server never
//!   sees the call, and the next call works;
//! - alice's 2026-07-28 story on the v2 client against a policy with
//!   `trust_mirrored_headers`: the same sign-in and step-up, decided from the headers, and a
//!   tampered `Mcp-Name` passing the gateway to be refused by the server itself.
//!
//! The exact challenges (recorded by the fetch the transport is given) and the `scope` of
//! every authorization request (recorded in the provider's `redirectToAuthorization`) are
//! asserted. Needs `./scripts/setup` and `./scripts/build-filter` (as `./scripts/test` runs
//! them); runs the Node pieces on Node 22 from `.tools/` when it is there. Every process is
//! stopped by its PID when the test ends, passing or failing.

// A test: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use scopegate_tests::harness::{envoy_config, eventually, free_port, Envoy, TempDir, Upstreams};
use scopegate_tests::node::{node_22, NodeProcess};
use scopegate_tests::{repo_root, scopegate_binary};
use serde_json::{json, Value};

/// An environment variable of the MCP server, which only `get-env` shows.
const MARKER: (&str, &str) = ("SCOPEGATE_MCP_E2E", "get-env ran on the MCP server");
const STARTUP: Duration = Duration::from_secs(30);

/// The policy Envoy enforces: `echo` (any tool) needs `mcp:tools`, `get-env` needs
/// `mcp:tools` and `mcp:admin`; the IdP's keys are fetched over the `jwks` cluster.
fn policy(resource: &str, idp: &str) -> Value {
    json!({
        "version": 1,
        "realm": "mcp",
        "resource": resource,
        "issuers": [{
            "issuer": idp,
            "audiences": [resource],
            "algorithms": ["ES256"],
            "token_type": "at+jwt",
            "jwks_uri": format!("{idp}/jwks"),
            "jwks_cluster": "jwks"
        }],
        "routes": [{
            "path": "/mcp",
            "methods": ["GET", "POST", "DELETE"],
            "mcp": {"rules": [
                {"method": "tools/call", "require": "mcp:tools"},
                {"method": "tools/call", "name": "get-env", "require": ["mcp:tools", "mcp:admin"]}
            ]}
        }],
        "forward": {"claims": [{"claim": "sub", "header": "x-scopegate-sub"}]}
    })
}

fn node() -> Command {
    match node_22() {
        Some(node) => Command::new(node),
        None => {
            println!("# Node 22 is not in .tools/ (./scripts/setup-web installs it): using node on the PATH");
            Command::new("node")
        }
    }
}

/// The MCP server behind the gateway.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    /// `@modelcontextprotocol/server-everything` (on the 1.x SDK: the 2025 revision, sessions).
    Everything,
    /// `tests/e2e/mcp-server-v2.mjs` on `@modelcontextprotocol/server` 2.4.0
    /// (`createMcpHandler`: the 2026-07-28 revision, stateless, and a 2025 fallback).
    V2,
}

/// The IdP, the MCP server and Envoy in front of it, on free 127.0.0.1 ports.
struct Stack {
    idp: NodeProcess,
    idp_origin: String,
    mcp: NodeProcess,
    envoy: Envoy,
    resource: String,
    policy_file: PathBuf,
    /// What the metadata document lists.
    scopes_supported: Value,
    _dir: TempDir,
}

impl Stack {
    /// With the policy above: the metadata's `scopes_supported` is every scope of the rules.
    fn start() -> Self {
        Self::start_with(None)
    }

    /// With `scopes_supported` set, the policy names its resource in `resources[]` (which
    /// can say what the metadata lists) instead of `resource`.
    fn start_with(scopes_supported: Option<&[&str]>) -> Self {
        Self::start_on(Server::Everything, scopes_supported)
    }

    fn start_on(server_kind: Server, scopes_supported: Option<&[&str]>) -> Self {
        Self::start_full(server_kind, scopes_supported, false)
    }

    /// The v2 server behind a policy whose MCP route has `trust_mirrored_headers`: the
    /// gateway decides 2026-07-28 calls from `Mcp-Method` / `Mcp-Name` without their bodies.
    fn start_trusting_mirrored_headers() -> Self {
        Self::start_full(Server::V2, None, true)
    }

    fn start_full(
        server_kind: Server,
        scopes_supported: Option<&[&str]>,
        trust_mirrored_headers: bool,
    ) -> Self {
        let e2e = repo_root().join("tests/e2e");
        let server = match server_kind {
            Server::Everything => {
                e2e.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
            }
            Server::V2 => e2e.join("mcp-server-v2.mjs"),
        };
        assert!(
            e2e.join("node_modules/@modelcontextprotocol/server-everything").exists()
                && e2e.join("node_modules/@modelcontextprotocol/sdk").exists()
                && e2e.join("node_modules/@modelcontextprotocol/client").exists()
                && e2e.join("node_modules/@modelcontextprotocol/server").exists(),
            "the MCP servers and SDKs are not installed in tests/e2e/node_modules: run ./scripts/setup"
        );
        let (idp_port, mcp_port, envoy_port) = (free_port(), free_port(), free_port());
        let idp = format!("http://127.0.0.1:{idp_port}");
        let resource = format!("http://127.0.0.1:{envoy_port}/mcp");

        let mut command = node();
        command.arg(repo_root().join("examples/idp/idp.mjs")).args([
            "--port",
            &idp_port.to_string(),
            "--audience",
            &format!("http://127.0.0.1:{envoy_port}"),
            "--mcp-resource",
            &resource,
        ]);
        let idp_process = NodeProcess::spawn("the IdP", command, Some(" ready "), STARTUP, true)
            .unwrap_or_else(|e| panic!("{e}"));

        // The reference server's own launcher, as its `streamableHttp` script runs it, bound
        // to 127.0.0.1 (tests/e2e/loopback.mjs), or the v2 server (which binds 127.0.0.1
        // itself), with nothing of this environment but a marker.
        let mut command = node();
        match server_kind {
            Server::Everything => {
                command
                    .arg("--import")
                    .arg(e2e.join("loopback.mjs"))
                    .arg(&server)
                    .arg("streamableHttp");
            }
            Server::V2 => {
                command.arg(&server);
            }
        }
        command
            .current_dir(&e2e)
            .env_clear()
            .env("PORT", mcp_port.to_string())
            .env(MARKER.0, MARKER.1);
        let mcp = NodeProcess::spawn(
            "the MCP server",
            command,
            Some(&format!("listening on port {mcp_port}")),
            STARTUP,
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));

        let mut policy = policy(&resource, &idp);
        if trust_mirrored_headers {
            policy["routes"][0]["mcp"]["trust_mirrored_headers"] = json!(true);
        }
        if let Some(scopes) = scopes_supported {
            let object = policy.as_object_mut().unwrap();
            object.remove("resource");
            object.insert(
                "resources".into(),
                json!([{"resource": resource, "scopes_supported": scopes}]),
            );
        }
        let scopes_supported =
            scopes_supported.map_or(json!(["mcp:admin", "mcp:tools"]), |s| json!(s));
        let upstreams = Upstreams {
            api: mcp_port,
            jwks: Some(idp_port),
        };
        let mut config = envoy_config(envoy_port, &upstreams, &policy.to_string());
        // The MCP session's event stream (GET /mcp) stays open: no route timeout.
        config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["timeout"] =
            json!("0s");
        let envoy = Envoy::start(&config, envoy_port)
            .unwrap_or_else(|failed| panic!("Envoy did not start: {failed:?}"));
        // The IdP's tokens get 401 until the filter has the IdP's keys.
        assert!(
            eventually(Duration::from_secs(15), || {
                envoy.counter("wasmcustom.scopegate.jwks.fetch_ok") >= 1
            }),
            "the filter did not get the IdP's keys from {idp}/jwks:\n{}",
            envoy.log()
        );
        let dir = TempDir::new("mcp-e2e");
        let policy_file = dir.path().join("policy.json");
        std::fs::write(&policy_file, policy.to_string()).unwrap();
        Self {
            idp: idp_process,
            idp_origin: idp,
            mcp,
            envoy,
            resource,
            policy_file,
            scopes_supported,
            _dir: dir,
        }
    }

    /// `scopegate explain` on bob's stepped-up token and his refused `get-env` call: the
    /// IdP's keys fetched from its `jwks_uri`, the MCP rule that decided, what is missing,
    /// and that no role of the policy grants it.
    fn assert_explained(&self, bob: &Value) {
        let token = bob["tokens"][1]["access_token"]
            .as_str()
            .expect("bob's token");
        let body = self._dir.path().join("get-env.json");
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "get-env", "arguments": {}}});
        std::fs::write(&body, call.to_string()).unwrap();
        let output = Command::new(scopegate_binary())
            .arg("explain")
            .arg(&self.policy_file)
            .args(["POST", &self.resource, "--token", token])
            .args(["-H", "Mcp-Method: tools/call", "-H", "Mcp-Name: get-env"])
            .arg("--body")
            .arg(&body)
            .args(["--policy-changed-at", "0", "--json"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let why: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(why["decision"]["status"], 403, "{why}");
        assert_eq!(why["decision"]["missing"], json!(["mcp:admin"]));
        assert_eq!(
            why["keys"],
            json!({"from": "jwks_uri", "uri": format!("{}/jwks", self.idp_origin)})
        );
        assert_eq!(why["routes"][0]["outcome"], "chosen");
        assert_eq!(why["token"]["sub"], "bob");
        assert_eq!(
            why["token"]["scopes"],
            json!([{"scope": "mcp:tools", "claim": "scope"}])
        );
        let remedies: Vec<&str> = why["remedies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert_eq!(remedies, ["no_role_grants", "request_scopes"], "{why}");
        assert_eq!(why["remedies"][1]["scope"], "mcp:tools mcp:admin");
    }

    /// Runs `tests/e2e/mcp-client.mjs` (the 1.32 SDK) with `args` and returns its transcript.
    fn client(&self, args: &[&str]) -> Value {
        self.run_client("mcp-client.mjs", args)
    }

    /// Runs `tests/e2e/mcp-client-v2.mjs` (`@modelcontextprotocol/client` 2.4.0).
    fn client_v2(&self, args: &[&str]) -> Value {
        self.run_client("mcp-client-v2.mjs", args)
    }

    /// Runs `tests/e2e/mcp_client.py` (PyPI `mcp`) on the project's venv.
    fn client_python(&self, args: &[&str]) -> Value {
        let python = repo_root().join(".venv/bin/python");
        assert!(
            Command::new(&python)
                .args(["-c", "import mcp.client.auth"])
                .status()
                .is_ok_and(|s| s.success()),
            "the Python MCP SDK is not in .venv: run ./scripts/setup (tests/e2e/requirements.txt)"
        );
        let mut command = Command::new(python);
        command.arg(repo_root().join("tests/e2e/mcp_client.py"));
        self.run(command, args)
    }

    fn run_client(&self, script: &str, args: &[&str]) -> Value {
        let mut command = node();
        command.arg(repo_root().join("tests/e2e").join(script));
        self.run(command, args)
    }

    /// Runs a client `command` with `--mcp` and `args` and returns its transcript.
    fn run(&self, mut command: Command, args: &[&str]) -> Value {
        command
            .args(["--mcp", &self.resource])
            .args(args)
            .current_dir(repo_root().join("tests/e2e"));
        let mut client = NodeProcess::spawn("the MCP client", command, None, STARTUP, false)
            .unwrap_or_else(|e| panic!("{e}"));
        // The client stops itself after 60 s; this is the backstop.
        let status = client.wait(Duration::from_secs(90)).unwrap();
        let output = client.output();
        let transcript = output
            .lines()
            .find_map(|line| line.strip_prefix("mcp-e2e: "))
            .unwrap_or_else(|| panic!("no transcript from the client ({status}):\n{output}"));
        let transcript: Value = serde_json::from_str(transcript).unwrap();
        println!("{}", serde_json::to_string_pretty(&transcript).unwrap());
        assert!(
            status.success(),
            "the client failed:\n{output}\n{}\n{}",
            self.idp.output(),
            self.mcp.output()
        );
        transcript
    }
}

/// The parts of a transcript's list that `fields` name, one object per entry.
fn pick(transcript: &Value, list: &str, fields: &[&str]) -> Vec<Value> {
    transcript[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {transcript}"))
        .iter()
        .map(|entry| {
            let picked = fields.iter().map(|f| ((*f).to_owned(), entry[*f].clone()));
            Value::Object(picked.collect())
        })
        .collect()
}

/// The `scope` of every authorization request, in order.
fn requested_scopes(transcript: &Value) -> Vec<String> {
    transcript["authorization_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|request| request["scope"].as_str().unwrap_or("(none)").to_owned())
        .collect()
}

/// The access tokens' `scope` claims, in order.
fn token_scopes(transcript: &Value) -> Vec<&str> {
    transcript["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["claims"]["scope"].as_str().unwrap_or("(none)"))
        .collect()
}

/// The IdP's log lines that start with `prefix`.
fn idp_lines<'a>(log: &'a str, prefix: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

impl Stack {
    fn metadata_url(&self) -> String {
        self.resource
            .replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    }

    /// The 401 of a request without a token: no scope, the metadata's URL.
    fn no_token_challenge(&self) -> Value {
        self.no_token_challenge_at("initialize")
    }

    /// The same 401, met by the request `rpc` (`server/discover`, or a first call).
    fn no_token_challenge_at(&self, rpc: &str) -> Value {
        json!({
            "status": 401,
            "rpc": rpc,
            "www_authenticate": format!(r#"Bearer realm="mcp", resource_metadata="{}""#, self.metadata_url()),
            "body": r#"{"error":"unauthorized"}"#,
        })
    }

    /// The 403 of `get-env` with a token that has `mcp:tools` only: `scope` is everything
    /// the call needs, not only what is missing.
    fn get_env_challenge(&self) -> Value {
        json!({
            "status": 403,
            "rpc": "tools/call get-env",
            "www_authenticate": format!(
                r#"Bearer realm="mcp", error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{}""#,
                self.metadata_url()
            ),
            "body": r#"{"error":"insufficient_scope","scope":"mcp:tools mcp:admin","missing":"mcp:admin"}"#,
        })
    }

    /// What every authorization request of these clients carries besides its `scope`, and
    /// one MCP session throughout (the 2025 revision).
    fn assert_authorization_requests(&self, transcript: &Value, client_id: &str) {
        self.assert_sign_in(transcript, client_id);
        assert_one_session(transcript);
    }

    /// What every authorization request carries besides its `scope`; the discovery, once;
    /// the tokens' audience, issuer and subject.
    fn assert_sign_in(&self, transcript: &Value, client_id: &str) {
        let idp = &self.idp_origin;
        for request in transcript["authorization_requests"].as_array().unwrap() {
            assert_eq!(request["endpoint"], format!("{idp}/auth"), "{request}");
            assert_eq!(request["client_id"], client_id, "{request}");
            assert_eq!(request["resource"], self.resource.as_str(), "{request}");
            assert_eq!(request["response_type"], "code", "{request}");
            assert_eq!(request["code_challenge_method"], "S256", "{request}");
            assert_eq!(request["code_challenge"], true, "{request}");
            assert_eq!(request["state"], true, "{request}");
            assert_eq!(
                request["redirect_uri"], "http://127.0.0.1/callback",
                "{request}"
            );
        }
        // Discovery once, from the 401: the resource's metadata through the gateway, then the
        // IdP's (RFC 8414); the step-up reuses what was found.
        assert_eq!(
            transcript["discovery"],
            json!([
                {"url": self.metadata_url(), "status": 200, "document": {
                    "resource": self.resource,
                    "authorization_servers": [idp],
                    "scopes_supported": self.scopes_supported,
                    "bearer_methods_supported": ["header"]
                }},
                {"url": format!("{idp}/.well-known/oauth-authorization-server"), "status": 200}
            ])
        );
        for token in transcript["tokens"].as_array().unwrap() {
            assert_eq!(token["claims"]["aud"], self.resource.as_str(), "{token}");
            assert_eq!(token["claims"]["iss"], idp.as_str(), "{token}");
            assert_eq!(token["claims"]["sub"], transcript["user"], "{token}");
            assert_eq!(token["refresh_token"], false, "{token}");
        }
    }
}

/// One MCP session throughout, step-ups included (the 2025 revision): every session ID the
/// client saw is the same one.
fn assert_one_session(transcript: &Value) {
    let sessions = transcript["sessions"].as_array().unwrap();
    assert!(
        !sessions.is_empty() && sessions.iter().all(|s| s == &sessions[0] && s.is_string()),
        "{sessions:?}"
    );
}

/// No MCP session at all (the 2026-07-28 revision is stateless), and every request to the
/// MCP endpoint a POST whose `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version` headers
/// mirror its body, as the client sent it.
fn assert_stateless_2026(transcript: &Value) {
    let sessions = transcript["sessions"].as_array().unwrap();
    assert!(sessions.iter().all(Value::is_null), "{sessions:?}");
    for request in transcript["requests"].as_array().unwrap() {
        assert_eq!(request["method"], "POST", "{request}");
        assert_eq!(request["mcp_protocol_version"], "2026-07-28", "{request}");
        let rpc = request["rpc"].as_str().unwrap();
        let (method, name) = rpc
            .split_once(' ')
            .map_or((rpc, None), |(m, n)| (m, Some(n)));
        assert_eq!(request["mcp_method"], method, "{request}");
        assert_eq!(request["mcp_name"].as_str(), name, "{request}");
    }
}

/// The MCP server's environment as `get-env` printed it: only what the test gave it.
fn assert_get_env_ran(call: &Value) {
    let env: Value = serde_json::from_str(call["text"].as_str().unwrap()).unwrap();
    assert_eq!(env[MARKER.0], MARKER.1, "{call}");
    assert_eq!(env.as_object().unwrap().len(), 2, "{env}");
}

#[test]
fn mcp_clients_discover_sign_in_and_step_up_through_the_gateway() {
    let stack = Stack::start();
    let challenge_fields = ["status", "rpc", "www_authenticate", "body"];
    let call_fields = ["tool", "ok", "step_ups"];

    // alice on the plain SDK, approving the minimal grant at first.
    let alice = stack.client(&[
        "--scenario",
        "sdk",
        "--user",
        "alice",
        "--decline-at-first",
        "mcp:admin",
    ]);
    stack.assert_authorization_requests(&alice, "scopegate-mcp-sdk");
    assert_eq!(
        pick(&alice, "challenges", &challenge_fields),
        [stack.no_token_challenge(), stack.get_env_challenge()]
    );
    // The first request asks for the metadata's scopes_supported (the 401 names none, so the
    // SDK takes them all, SEP-835); the step-up asks for the 403's scope, as it is.
    assert_eq!(
        requested_scopes(&alice),
        ["mcp:admin mcp:tools", "mcp:tools mcp:admin"]
    );
    assert_eq!(
        pick(&alice, "consents", &["offered", "approved"]),
        [
            json!({"offered": ["mcp:tools", "mcp:admin"], "approved": ["mcp:tools"]}),
            json!({"offered": ["mcp:admin"], "approved": ["mcp:admin"]}),
        ]
    );
    assert_eq!(token_scopes(&alice), ["mcp:tools", "mcp:tools mcp:admin"]);
    assert_eq!(
        pick(&alice, "calls", &call_fields),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": true, "step_ups": 1}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    assert_eq!(alice["calls"][0]["text"], "Echo: hello");
    assert_get_env_ran(&alice["calls"][1]);
    assert_eq!(alice["calls"][2]["text"], "Echo: still here");

    // bob on the plain SDK: his roles do not allow mcp:admin; the IdP leaves it out of both
    // tokens, the SDK steps up once, meets the same 403 and gives up; echo still works.
    let bob = stack.client(&["--scenario", "sdk", "--user", "bob"]);
    stack.assert_authorization_requests(&bob, "scopegate-mcp-sdk");
    assert_eq!(
        pick(&bob, "challenges", &challenge_fields),
        [
            stack.no_token_challenge(),
            stack.get_env_challenge(),
            stack.get_env_challenge()
        ]
    );
    assert_eq!(
        requested_scopes(&bob),
        ["mcp:admin mcp:tools", "mcp:tools mcp:admin"]
    );
    // The consent page offers bob mcp:tools only; at the step-up there is nothing to ask.
    assert_eq!(
        pick(&bob, "consents", &["offered", "approved"]),
        [json!({"offered": ["mcp:tools"], "approved": ["mcp:tools"]})]
    );
    assert!(bob["consents"][0]["page"]
        .as_str()
        .unwrap()
        .contains("Not for your roles: mcp:admin"));
    assert_eq!(token_scopes(&bob), ["mcp:tools", "mcp:tools"]);
    assert_eq!(
        pick(&bob, "calls", &call_fields),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": false, "step_ups": 1}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    assert_eq!(bob["calls"][1]["code"], 403);
    stack.assert_explained(&bob);
    assert_eq!(
        bob["calls"][1]["error"],
        "Streamable HTTP error: Server returned 403 after trying upscoping"
    );

    // The IdP saw the same authorization requests, and said why.
    let log = stack.idp.output();
    let resource = &stack.resource;
    let sdk_request = |scope: &str| {
        format!(
            r#"idp: authorization request from scopegate-mcp-sdk: scope "{scope}", resource "{resource}""#
        )
    };
    assert_eq!(
        idp_lines(&log, "idp: authorization request from scopegate-mcp-sdk"),
        [
            sdk_request("mcp:admin mcp:tools"),
            sdk_request("mcp:tools mcp:admin"),
            sdk_request("mcp:admin mcp:tools"),
            sdk_request("mcp:tools mcp:admin"),
        ]
    );
    assert_eq!(
        idp_lines(&log, "idp: alice "),
        [
            "idp: alice approved mcp:tools, declined mcp:admin for scopegate-mcp-sdk",
            "idp: alice approved mcp:admin for scopegate-mcp-sdk",
        ]
    );
    assert_eq!(
        idp_lines(&log, "idp: refused "),
        [
            "idp: refused mcp:admin to bob (roles: none)",
            "idp: refused mcp:admin to bob (roles: none)",
        ]
    );

    // The gateway counted the same: two 401s without a token, three 403s for mcp:admin.
    let counter = |name: &str| stack.envoy.counter(&format!("wasmcustom.scopegate.{name}"));
    assert_eq!(
        counter("decision.deny_no_token"),
        2,
        "{}",
        stack.envoy.stats()
    );
    assert_eq!(counter("decision.deny_insufficient_scope"), 3);
    assert_eq!(counter("missing_scope.mcp:admin"), 3);
    assert_eq!(counter("decision.deny_invalid_token"), 0);
}

/// alice on a client that pre-checks each call with the scopegate npm package
/// (`policy.mcpAccess`, `policy.mcpScopeRequest`, `withHeldScopes`) against the gateway's
/// own policy: it asks for `mcp:admin` before it calls `get-env` and never meets the 403.
#[test]
fn a_client_that_prechecks_with_the_scopegate_package_never_meets_the_403() {
    let package = repo_root().join("target/npm/scopegate");
    assert!(
        package.join("node/index.js").exists(),
        "the npm package is not built in {}: run ./scripts/build-web",
        package.display()
    );
    let stack = Stack::start();
    let alice = stack.client(&[
        "--scenario",
        "precheck",
        "--user",
        "alice",
        "--decline-at-first",
        "mcp:admin",
        "--package",
        package.to_str().unwrap(),
        "--policy",
        stack.policy_file.to_str().unwrap(),
    ]);
    stack.assert_authorization_requests(&alice, "scopegate-mcp-precheck");
    // Only the 401 that starts the sign-in.
    assert_eq!(
        pick(
            &alice,
            "challenges",
            &["status", "rpc", "www_authenticate", "body"]
        ),
        [stack.no_token_challenge()]
    );
    // With the first token (mcp:tools): echo may run; get-env needs mcp:admin, and the
    // request to make is the whole scope, what is held included.
    let get_env = json!({"allowed": false, "required": ["mcp:tools", "mcp:admin"],
                         "missing": ["mcp:admin"], "scope": "mcp:tools mcp:admin"});
    let mut access = get_env.clone();
    access["name"] = json!("get-env");
    assert_eq!(alice["access"][1], access);
    assert_eq!(alice["access"][0]["name"], "echo");
    assert_eq!(alice["access"][0]["allowed"], true);
    assert_eq!(
        pick(&alice, "prechecks", &["tool", "allowed"]),
        [
            json!({"tool": "echo", "allowed": true}),
            json!({"tool": "get-env", "allowed": false}),
            json!({"tool": "echo", "allowed": true}),
        ]
    );
    let mut precheck = get_env;
    precheck["tool"] = json!("get-env");
    assert_eq!(alice["prechecks"][1], precheck);
    // The SDK was asked for the missing scope; withHeldScopes made the authorization
    // request the pre-check's scope.
    assert_eq!(alice["asked_sdk_for"], "mcp:admin");
    assert_eq!(
        requested_scopes(&alice),
        ["mcp:admin mcp:tools", "mcp:tools mcp:admin"]
    );
    assert_eq!(
        pick(&alice, "consents", &["offered", "approved"]),
        [
            json!({"offered": ["mcp:tools", "mcp:admin"], "approved": ["mcp:tools"]}),
            json!({"offered": ["mcp:admin"], "approved": ["mcp:admin"]}),
        ]
    );
    assert_eq!(token_scopes(&alice), ["mcp:tools", "mcp:tools mcp:admin"]);
    assert_eq!(
        pick(&alice, "calls", &["tool", "ok", "step_ups"]),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": true, "step_ups": 0}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    assert_get_env_ran(&alice["calls"][1]);
    let counter = |name: &str| stack.envoy.counter(&format!("wasmcustom.scopegate.{name}"));
    assert_eq!(
        counter("decision.deny_no_token"),
        1,
        "{}",
        stack.envoy.stats()
    );
    assert_eq!(counter("decision.deny_insufficient_scope"), 0);
}

/// The same policy with its resource in `resources[]`, whose metadata lists only the scope
/// every tool needs: the plain SDK then asks for the minimal grant by itself, and alice
/// approves all it asks for; the step-up is the same.
#[test]
fn a_metadata_document_with_the_baseline_scope_keeps_the_first_grant_small() {
    let stack = Stack::start_with(Some(&["mcp:tools"]));
    let alice = stack.client(&["--scenario", "sdk", "--user", "alice"]);
    stack.assert_authorization_requests(&alice, "scopegate-mcp-sdk");
    assert_eq!(
        pick(
            &alice,
            "challenges",
            &["status", "rpc", "www_authenticate", "body"]
        ),
        [stack.no_token_challenge(), stack.get_env_challenge()]
    );
    assert_eq!(
        requested_scopes(&alice),
        ["mcp:tools", "mcp:tools mcp:admin"]
    );
    assert_eq!(
        pick(&alice, "consents", &["offered", "approved"]),
        [
            json!({"offered": ["mcp:tools"], "approved": ["mcp:tools"]}),
            json!({"offered": ["mcp:admin"], "approved": ["mcp:admin"]}),
        ]
    );
    assert_eq!(token_scopes(&alice), ["mcp:tools", "mcp:tools mcp:admin"]);
    assert_eq!(
        pick(&alice, "calls", &["tool", "ok", "step_ups"]),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": true, "step_ups": 1}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    assert_get_env_ran(&alice["calls"][1]);
}

/// The gateway's counters of one stack: the 401s without a token, the 403s for `mcp:admin`.
fn assert_counted(stack: &Stack, no_token: u64, insufficient: u64) {
    let counter = |name: &str| stack.envoy.counter(&format!("wasmcustom.scopegate.{name}"));
    assert_eq!(
        counter("decision.deny_no_token"),
        no_token,
        "{}",
        stack.envoy.stats()
    );
    assert_eq!(counter("decision.deny_insufficient_scope"), insufficient);
    assert_eq!(counter("missing_scope.mcp:admin"), insufficient);
    assert_eq!(counter("decision.deny_invalid_token"), 0);
}

/// alice's story on a client that unions scopes itself (SEP-2350): the minimal grant first,
/// a 403 on `get-env`, one step-up to the union of what the token holds and what the 403
/// names, `get-env` runs, `echo` still works on the same client. `first` is the request
/// that met the 401; `union` is the step-up's `scope` as the SDK ordered it.
fn assert_alice_steps_up_to_the_union(
    stack: &Stack,
    alice: &Value,
    client_id: &str,
    first: &str,
    union: &str,
) {
    stack.assert_sign_in(alice, client_id);
    assert_eq!(
        pick(
            alice,
            "challenges",
            &["status", "rpc", "www_authenticate", "body"]
        ),
        [
            stack.no_token_challenge_at(first),
            stack.get_env_challenge()
        ]
    );
    // The 401 names no scope: the first request asks for the metadata's scopes_supported;
    // the step-up asks for the union, which is the 403's scope here (mcp:tools is held).
    assert_eq!(requested_scopes(alice), ["mcp:admin mcp:tools", union]);
    assert_eq!(
        pick(alice, "consents", &["offered", "approved"]),
        [
            json!({"offered": ["mcp:tools", "mcp:admin"], "approved": ["mcp:tools"]}),
            json!({"offered": ["mcp:admin"], "approved": ["mcp:admin"]}),
        ]
    );
    assert_eq!(token_scopes(alice), ["mcp:tools", "mcp:tools mcp:admin"]);
    assert_eq!(
        pick(alice, "calls", &["tool", "ok", "step_ups"]),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": true, "step_ups": 1}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    assert_eq!(alice["calls"][0]["text"], "Echo: hello");
    assert_get_env_ran(&alice["calls"][1]);
    assert_eq!(alice["calls"][2]["text"], "Echo: still here");
}

/// bob's story: the IdP refuses `mcp:admin` at both authorization requests, the step-up's
/// token holds what the first did, and the 403 stays; `echo` still works.
fn assert_bob_keeps_his_403(stack: &Stack, bob: &Value, client_id: &str, first: &str, union: &str) {
    stack.assert_sign_in(bob, client_id);
    assert_eq!(
        pick(
            bob,
            "challenges",
            &["status", "rpc", "www_authenticate", "body"]
        ),
        [
            stack.no_token_challenge_at(first),
            stack.get_env_challenge(),
            stack.get_env_challenge()
        ]
    );
    assert_eq!(requested_scopes(bob), ["mcp:admin mcp:tools", union]);
    assert_eq!(
        pick(bob, "consents", &["offered", "approved"]),
        [json!({"offered": ["mcp:tools"], "approved": ["mcp:tools"]})]
    );
    assert_eq!(token_scopes(bob), ["mcp:tools", "mcp:tools"]);
    assert_eq!(
        pick(bob, "calls", &["tool", "ok", "step_ups"]),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": false, "step_ups": 1}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    stack.assert_explained(bob);
}

/// The IdP's log of one client's stories: alice's two authorization requests and her
/// consents, then bob's two and the refusals.
fn assert_idp_log(stack: &Stack, client_id: &str, union: &str) {
    let log = stack.idp.output();
    let resource = &stack.resource;
    let request = |scope: &str| {
        format!(
            r#"idp: authorization request from {client_id}: scope "{scope}", resource "{resource}""#
        )
    };
    assert_eq!(
        idp_lines(
            &log,
            &format!("idp: authorization request from {client_id}")
        ),
        [
            request("mcp:admin mcp:tools"),
            request(union),
            request("mcp:admin mcp:tools"),
            request(union),
        ]
    );
    assert_eq!(
        idp_lines(&log, "idp: alice "),
        [
            format!("idp: alice approved mcp:tools, declined mcp:admin for {client_id}"),
            format!("idp: alice approved mcp:admin for {client_id}"),
        ]
    );
    assert_eq!(
        idp_lines(&log, "idp: refused "),
        [
            "idp: refused mcp:admin to bob (roles: none)",
            "idp: refused mcp:admin to bob (roles: none)",
        ]
    );
}

/// The v2 TypeScript SDK (`@modelcontextprotocol/client` 2.4.0) on its default, the 2025
/// revision, against the reference server: on the 403 it asks for the union of the token's
/// scope and the challenge's by itself (SEP-2350), and steps up once per request; the app
/// retries the call after finishAuth, and sends the user to the IdP once per call.
#[test]
fn the_v2_typescript_client_steps_up_to_the_union_through_the_gateway() {
    let stack = Stack::start();
    let union = "mcp:tools mcp:admin";
    let alice = stack.client_v2(&["--user", "alice", "--decline-at-first", "mcp:admin"]);
    assert_alice_steps_up_to_the_union(&stack, &alice, "scopegate-mcp-v2", "initialize", union);
    assert_one_session(&alice);
    assert_eq!(alice["unfollowed_authorizations"], json!([]));

    let bob = stack.client_v2(&["--user", "bob"]);
    assert_bob_keeps_his_403(&stack, &bob, "scopegate-mcp-v2", "initialize", union);
    assert_one_session(&bob);
    // After the step-up the call is retried with bob's new token, meets the 403 again, and
    // the SDK (whose retry limit is per request) would send bob to the IdP once more for
    // the same union: the app does not follow, and the call ends with the 403.
    assert_eq!(
        requested_scopes(&json!({"authorization_requests": bob["unfollowed_authorizations"]})),
        [union]
    );
    assert!(
        bob["calls"][1]["error"]
            .as_str()
            .unwrap()
            .contains("once per call"),
        "{}",
        bob["calls"][1]
    );
    assert_idp_log(&stack, "scopegate-mcp-v2", union);
    assert_counted(&stack, 2, 3);
}

/// The v2 TypeScript SDK pinned to the 2026-07-28 revision against a v2 server
/// (`createMcpHandler`) behind the gateway: stateless POSTs whose `Mcp-Method` and `Mcp-Name`
/// mirror their bodies, the gateway's rules matched on them; the same sign-in and step-up.
#[test]
fn the_v2_typescript_client_on_the_2026_07_28_revision_steps_up_through_the_gateway() {
    let stack = Stack::start_on(Server::V2, None);
    let union = "mcp:tools mcp:admin";
    let pinned = ["--protocol", "2026-07-28"];
    let alice = stack.client_v2(
        &[
            &pinned[..],
            &["--user", "alice", "--decline-at-first", "mcp:admin"],
        ]
        .concat(),
    );
    assert_eq!(alice["negotiated_protocol_version"], "2026-07-28");
    assert_eq!(alice["era"], "modern");
    assert_alice_steps_up_to_the_union(
        &stack,
        &alice,
        "scopegate-mcp-v2",
        "server/discover",
        union,
    );
    assert_stateless_2026(&alice);

    let bob = stack.client_v2(&[&pinned[..], &["--user", "bob"]].concat());
    assert_bob_keeps_his_403(&stack, &bob, "scopegate-mcp-v2", "server/discover", union);
    assert_stateless_2026(&bob);
    assert_idp_log(&stack, "scopegate-mcp-v2", union);
    assert_counted(&stack, 2, 3);
}

/// The Python SDK (PyPI `mcp` 2.3.0): `OAuthClientProvider` as the httpx2 client's auth, on
/// the 2025 revision against the reference server. Its step-up runs inside the request: on
/// the 403 it unions what it asked for before, the token's scope and the challenge's
/// (SEP-2350), signs in, and resends once; a second 403 is the call's answer.
#[test]
fn the_python_client_steps_up_to_the_union_through_the_gateway() {
    let stack = Stack::start();
    // What the first request asked for comes first in the Python SDK's union.
    let union = "mcp:admin mcp:tools";
    let legacy = ["--mode", "legacy"];
    let alice = stack.client_python(
        &[
            &legacy[..],
            &["--user", "alice", "--decline-at-first", "mcp:admin"],
        ]
        .concat(),
    );
    assert_alice_steps_up_to_the_union(&stack, &alice, "scopegate-mcp-python", "initialize", union);
    assert_one_session(&alice);

    let bob = stack.client_python(&[&legacy[..], &["--user", "bob"]].concat());
    assert_bob_keeps_his_403(&stack, &bob, "scopegate-mcp-python", "initialize", union);
    assert_one_session(&bob);
    // The transport turns the second 403 into the call's JSON-RPC error.
    assert_eq!(
        bob["calls"][1]["error"],
        "MCPError: Server returned an error response"
    );
    assert_idp_log(&stack, "scopegate-mcp-python", union);
    assert_counted(&stack, 2, 3);
}

/// The Python SDK on the 2026-07-28 revision against the v2 server: the same story, and
/// every request carries the mirrored headers.
#[test]
fn the_python_client_on_the_2026_07_28_revision_steps_up_through_the_gateway() {
    let stack = Stack::start_on(Server::V2, None);
    let union = "mcp:admin mcp:tools";
    let pinned = ["--mode", "2026-07-28"];
    let alice = stack.client_python(
        &[
            &pinned[..],
            &["--user", "alice", "--decline-at-first", "mcp:admin"],
        ]
        .concat(),
    );
    assert_eq!(alice["negotiated_protocol_version"], "2026-07-28");
    assert_alice_steps_up_to_the_union(
        &stack,
        &alice,
        "scopegate-mcp-python",
        "tools/call echo",
        union,
    );
    assert_stateless_2026(&alice);

    let bob = stack.client_python(&[&pinned[..], &["--user", "bob"]].concat());
    assert_bob_keeps_his_403(
        &stack,
        &bob,
        "scopegate-mcp-python",
        "tools/call echo",
        union,
    );
    assert_stateless_2026(&bob);
    // The transport turns the second 403 into the call's JSON-RPC error.
    assert_eq!(
        bob["calls"][1]["error"],
        "MCPError: Server returned an error response"
    );
    assert_idp_log(&stack, "scopegate-mcp-python", union);
    assert_counted(&stack, 2, 3);
}

/// alice on the v2 TypeScript SDK with the scopegate npm package's pre-checks: the
/// pre-check's `scope` (what is held and what the call needs) goes to the SDK's auth() as
/// it is, without the `withHeldScopes` wrapper the 1.32 SDK needs; she never meets the 403.
#[test]
fn the_v2_typescript_client_prechecks_with_the_scopegate_package() {
    let package = repo_root().join("target/npm/scopegate");
    assert!(
        package.join("node/index.js").exists(),
        "the npm package is not built in {}: run ./scripts/build-web",
        package.display()
    );
    let stack = Stack::start();
    let alice = stack.client_v2(&[
        "--scenario",
        "precheck",
        "--user",
        "alice",
        "--decline-at-first",
        "mcp:admin",
        "--package",
        package.to_str().unwrap(),
        "--policy",
        stack.policy_file.to_str().unwrap(),
    ]);
    stack.assert_sign_in(&alice, "scopegate-mcp-v2");
    assert_one_session(&alice);
    assert_eq!(
        pick(
            &alice,
            "challenges",
            &["status", "rpc", "www_authenticate", "body"]
        ),
        [stack.no_token_challenge()]
    );
    let get_env = json!({"allowed": false, "required": ["mcp:tools", "mcp:admin"],
                         "missing": ["mcp:admin"], "scope": "mcp:tools mcp:admin"});
    let mut access = get_env.clone();
    access["name"] = json!("get-env");
    assert_eq!(alice["access"][1], access);
    assert_eq!(alice["access"][0]["allowed"], true);
    let mut precheck = get_env;
    precheck["tool"] = json!("get-env");
    assert_eq!(alice["prechecks"][1], precheck);
    assert_eq!(alice["asked_sdk_for"], "mcp:tools mcp:admin");
    assert_eq!(
        requested_scopes(&alice),
        ["mcp:admin mcp:tools", "mcp:tools mcp:admin"]
    );
    assert_eq!(token_scopes(&alice), ["mcp:tools", "mcp:tools mcp:admin"]);
    assert_eq!(
        pick(&alice, "calls", &["tool", "ok", "step_ups"]),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": true, "step_ups": 0}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    assert_get_env_ran(&alice["calls"][1]);
    assert_counted(&stack, 1, 0);
}

/// The v2 TypeScript client in `versionNegotiation: {mode: 'auto'}` against the v2 server:
/// its `server/discover` probe meets the gateway's 401, it signs in, and the connection is
/// on the 2026-07-28 revision; alice's story is the same.
#[test]
fn the_v2_typescript_client_negotiates_2026_07_28_through_the_gateway() {
    let stack = Stack::start_on(Server::V2, None);
    let union = "mcp:tools mcp:admin";
    let alice = stack.client_v2(&[
        "--protocol",
        "auto",
        "--user",
        "alice",
        "--decline-at-first",
        "mcp:admin",
    ]);
    assert_eq!(alice["negotiated_protocol_version"], "2026-07-28");
    assert_eq!(alice["era"], "modern");
    assert_alice_steps_up_to_the_union(
        &stack,
        &alice,
        "scopegate-mcp-v2",
        "server/discover",
        union,
    );
    assert_stateless_2026(&alice);
    assert_counted(&stack, 1, 1);
}

/// What the gateway answers a 2026-07-28 call whose `Mcp-Name` disagrees with its body.
const MISMATCH: &str = "The Mcp-Method or Mcp-Name header does not match the request body";

/// The `tools/call` requests the v2 server logged, by their `Mcp-Name` header.
fn server_tool_calls(stack: &Stack) -> Vec<String> {
    stack
        .mcp
        .output()
        .lines()
        .filter(|line| line.contains("POST /mcp mcp-method=tools/call "))
        .map(|line| {
            let name = line.split("mcp-name=").nth(1).unwrap();
            name.split(' ').next().unwrap().to_owned()
        })
        .collect()
}

/// The tampered requests of a transcript: `tools/call get-env` in the body, `Mcp-Name: echo`.
fn tampered_requests(transcript: &Value) -> Vec<&Value> {
    let tampered: Vec<&Value> = transcript["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|request| request["tampered"] == true)
        .collect();
    for request in &tampered {
        assert_eq!(request["rpc"], "tools/call get-env", "{request}");
        assert_eq!(request["mcp_method"], "tools/call", "{request}");
        assert_eq!(request["mcp_name"], "echo", "{request}");
        assert_eq!(request["mcp_protocol_version"], "2026-07-28", "{request}");
        assert_eq!(request["status"], 400, "{request}");
        assert_eq!(request["content_type"], "application/json", "{request}");
    }
    tampered
}

/// The gateway's refusal of each tampered request (`attempts` of them): HTTP 400, a JSON-RPC
/// `-32020` error for the request's id, and the `invalid_request` challenge.
fn assert_refused_by_the_gateway(transcript: &Value, attempts: usize) {
    let tampered = tampered_requests(transcript);
    assert_eq!(tampered.len(), attempts, "{}", transcript["requests"]);
    for request in tampered {
        let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
        assert!(body["id"].is_number(), "{body}");
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32020, "message": MISMATCH}})
        );
    }
    let refusals: Vec<&Value> = transcript["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == 400)
        .collect();
    assert_eq!(refusals.len(), attempts, "{}", transcript["challenges"]);
    for challenge in refusals {
        assert_eq!(
            challenge["www_authenticate"],
            format!(r#"Bearer error="invalid_request", error_description="{MISMATCH}""#)
        );
        assert_eq!(challenge["rpc"], "tools/call get-env");
    }
}

/// The tampered call failed with the SDK's JSON-RPC error, without a step-up, and the
/// untampered calls around it ran on the same client.
fn assert_calls_around_the_mismatch(transcript: &Value) {
    assert_eq!(
        pick(transcript, "calls", &["tool", "ok", "step_ups"]),
        [
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
            json!({"tool": "get-env", "ok": false, "step_ups": 0}),
            json!({"tool": "echo", "ok": true, "step_ups": 0}),
        ]
    );
    assert_eq!(transcript["calls"][0]["text"], "Echo: hello");
    assert_eq!(transcript["calls"][2]["text"], "Echo: still here");
    assert_eq!(
        transcript["calls"][1]["code"], -32020,
        "{}",
        transcript["calls"][1]
    );
}

/// The JSON-RPC methods of a transcript's requests to the MCP endpoint, with the status of
/// each and whether it was tampered with.
fn request_log(transcript: &Value) -> Vec<String> {
    transcript["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mark = if r["tampered"] == true {
                " (tampered)"
            } else {
                ""
            };
            format!("{} {}{mark}", r["rpc"].as_str().unwrap_or("-"), r["status"])
        })
        .collect()
}

/// A 2026-07-28 client whose `Mcp-Name` disagrees with its body (the fetch given to the v2
/// TypeScript transport, an httpx2 request hook under the Python SDK, rewrite `get-env` to
/// `echo`, as a client smuggling a call past a gateway that trusted the header would): the
/// gateway answers HTTP 400 with the JSON-RPC error a 2026-07-28 server sends, `-32020`
/// for the request's id. The TypeScript SDK reads it as the server's `ProtocolError`; its
/// callTool takes a `-32020` for stale tool metadata, re-lists the tools and sends the call
/// once more, and when that is refused too it rejects with the gateway's code and message.
/// The Python SDK raises `MCPError` with them. The next call on the same client works; the
/// server never sees a tampered call.
#[test]
fn a_mirrored_header_mismatch_from_a_2026_07_28_client_comes_back_as_a_json_rpc_error() {
    let stack = Stack::start_on(Server::V2, None);
    let tamper = ["--tamper", "get-env=echo"];
    let alice = ["--user", "alice", "--decline-at-first", "mcp:admin"];
    let typescript =
        stack.client_v2(&[&["--protocol", "2026-07-28"][..], &alice, &tamper].concat());
    assert_eq!(typescript["negotiated_protocol_version"], "2026-07-28");
    assert_eq!(
        request_log(&typescript),
        [
            "server/discover 401",
            "server/discover 200",
            "tools/call echo 200",
            "tools/call get-env 400 (tampered)",
            "tools/list 200",
            "tools/call get-env 400 (tampered)",
            "tools/call echo 200",
        ]
    );
    assert_refused_by_the_gateway(&typescript, 2);
    assert_calls_around_the_mismatch(&typescript);
    let error = &typescript["calls"][1];
    assert_eq!(error["error_class"], "ProtocolError", "{error}");
    assert_eq!(error["protocol_error"], true, "{error}");
    assert_eq!(error["error"], MISMATCH, "{error}");
    assert_eq!(error["error_data"], Value::Null, "{error}");
    // Two calls reached the server, both `echo`: the refused ones never left the gateway.
    assert_eq!(server_tool_calls(&stack), ["echo", "echo"]);

    let python = stack.client_python(&[&["--mode", "2026-07-28"][..], &alice, &tamper].concat());
    assert_eq!(python["negotiated_protocol_version"], "2026-07-28");
    // The Python SDK lists the tools before its first call of another tool, and on the
    // -32020 re-lists them and sends the call once more, as the TypeScript SDK does.
    assert_eq!(
        request_log(&python),
        [
            "tools/call echo 401",
            "tools/call echo 200",
            "tools/list 200",
            "tools/call get-env 400 (tampered)",
            "tools/list 200",
            "tools/call get-env 400 (tampered)",
            "tools/call echo 200",
        ]
    );
    assert_refused_by_the_gateway(&python, 2);
    assert_calls_around_the_mismatch(&python);
    let error = &python["calls"][1];
    assert_eq!(error["error_class"], "MCPError", "{error}");
    assert_eq!(error["error_message"], MISMATCH, "{error}");
    assert_eq!(error["error"], format!("MCPError: {MISMATCH}"), "{error}");
    assert_eq!(error["error_data"], Value::Null, "{error}");
    assert_eq!(server_tool_calls(&stack), ["echo", "echo", "echo", "echo"]);
    // The gateway counts the four refusals as malformed bodies; no scope was missing.
    let counter = |name: &str| stack.envoy.counter(&format!("wasmcustom.scopegate.{name}"));
    assert_eq!(
        counter("decision.deny_bad_body"),
        4,
        "{}",
        stack.envoy.stats()
    );
    assert_eq!(counter("decision.deny_no_token"), 2);
    assert_eq!(counter("decision.deny_insufficient_scope"), 0);
}

/// alice's 2026-07-28 story on the v2 TypeScript client against a policy with
/// `trust_mirrored_headers` on the MCP route: the gateway decides every call from its
/// `Mcp-Method` / `Mcp-Name` headers without buffering the body, and the sign-in, the 403
/// on `get-env`, the step-up and the calls are the same. That the body goes unread shows
/// with a tampered `Mcp-Name`: it passes the gateway, and the v2 server refuses it itself.
#[test]
fn the_v2_typescript_client_steps_up_through_a_gateway_that_trusts_the_mirrored_headers() {
    let stack = Stack::start_trusting_mirrored_headers();
    let union = "mcp:tools mcp:admin";
    let alice = [
        "--protocol",
        "2026-07-28",
        "--user",
        "alice",
        "--decline-at-first",
        "mcp:admin",
    ];
    let story = stack.client_v2(&alice);
    assert_eq!(story["negotiated_protocol_version"], "2026-07-28");
    assert_eq!(story["era"], "modern");
    assert_alice_steps_up_to_the_union(
        &stack,
        &story,
        "scopegate-mcp-v2",
        "server/discover",
        union,
    );
    assert_stateless_2026(&story);
    assert_counted(&stack, 1, 1);
    assert_eq!(server_tool_calls(&stack), ["echo", "get-env", "echo"]);

    // The tampered calls say `echo` in their headers, which alice's first token allows: the
    // gateway lets them through, and the server refuses them with its own -32020 (with
    // `data`); the SDK re-lists the tools and tries once more, as with the gateway's.
    let tampered = stack.client_v2(&[&alice[..], &["--tamper", "get-env=echo"]].concat());
    assert_eq!(
        request_log(&tampered),
        [
            "server/discover 401",
            "server/discover 200",
            "tools/call echo 200",
            "tools/call get-env 400 (tampered)",
            "tools/list 200",
            "tools/call get-env 400 (tampered)",
            "tools/call echo 200",
        ]
    );
    assert_eq!(tampered_requests(&tampered).len(), 2);
    // No challenge on the server's 400s: only the 401 of the sign-in.
    assert_eq!(
        pick(&tampered, "challenges", &["status"]),
        [json!({"status": 401})]
    );
    assert_calls_around_the_mismatch(&tampered);
    let error = &tampered["calls"][1];
    let server_says =
        r#"the body carries params.name="get-env" but the Mcp-Name header names "echo""#;
    assert_eq!(error["error_class"], "ProtocolError", "{error}");
    assert_eq!(
        error["error"],
        format!("Bad Request: the request headers and body disagree: {server_says}"),
        "{error}"
    );
    assert_eq!(
        error["error_data"],
        json!({"mismatch": {"header": "echo", "body": server_says}}),
        "{error}"
    );
    assert_eq!(
        server_tool_calls(&stack),
        ["echo", "get-env", "echo", "echo", "echo", "echo", "echo"]
    );
    assert_eq!(
        idp_lines(
            &stack.mcp.output(),
            "mcp-server-v2: Rejected inbound request (name-header-mismatch)"
        )
        .len(),
        2
    );
    let counter = |name: &str| stack.envoy.counter(&format!("wasmcustom.scopegate.{name}"));
    assert_eq!(
        counter("decision.deny_bad_body"),
        0,
        "{}",
        stack.envoy.stats()
    );
    assert_eq!(counter("decision.deny_no_token"), 2);
    assert_eq!(counter("decision.deny_insufficient_scope"), 1);
}
