//! The demo behind `./scripts/demo`: the whole story on 127.0.0.1.
//!
//! - the demo IdP (npm `oidc-provider`, `examples/idp/idp.mjs`): JWT access tokens for the
//!   API, a role -> allowed scopes rule;
//! - Envoy with the scopegate filter enforcing `examples/policy.json`, its JWKS fetched from
//!   the IdP over the `idp` cluster;
//! - an example API behind Envoy that echoes the claims the gateway forwards;
//! - the MCP reference server (npm `@modelcontextprotocol/server-everything`, Streamable
//!   HTTP) behind Envoy at `/mcp`, its own RFC 8707 resource with per-tool scopes;
//! - the SPA (`examples/spa/`), which imports the locally built npm package `scopegate`.
//!
//! It fills the ports into the policy (`target/demo/policy.json`, the one file Envoy and
//! the SPA both load) and into `examples/envoy.yaml`, starts everything, shows a 200, a 401
//! and a 403 with a token of the policy's test issuer, and waits for Enter (or Ctrl-C)
//! while you use the SPA. `--check` instead runs the browser story (`tests/e2e/story.mjs`,
//! Playwright with Debian's Chromium) and exits: status 1 if an answer or a step was not
//! the expected one. Every process it starts is killed by its PID when it ends.
//!
//! Options: `--port 8080` (Envoy), `--admin-port 9901`, `--api-port 9080`,
//! `--mcp-port 9090`, `--idp-port 9000`, `--spa-port 5173`, `--check`,
//! `--screenshots tests/output/e2e`.

use std::fs;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use scopegate_tests::harness::{
    eventually, filter_wasm, request, send_raw, Envoy, HttpServer, Response, ServerResponse,
    TempDir,
};
use scopegate_tests::node::{node_22, NodeProcess};
use scopegate_tests::{alice_token, repo_root, TestKeys};
use serde_json::{json, Value};

/// The origins `examples/policy.json` is written for; replaced when the ports differ.
const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";
const DEFAULT_IDP: &str = "http://127.0.0.1:9000";
const DEFAULT_SPA: &str = "http://127.0.0.1:5173";

struct Options {
    port: u16,
    admin_port: u16,
    api_port: u16,
    mcp_port: u16,
    idp_port: u16,
    spa_port: u16,
    check: bool,
    screenshots: PathBuf,
}

impl Options {
    fn gateway(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn idp(&self) -> String {
        format!("http://127.0.0.1:{}", self.idp_port)
    }
    fn spa(&self) -> String {
        format!("http://127.0.0.1:{}", self.spa_port)
    }
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 8080,
        admin_port: 9901,
        api_port: 9080,
        mcp_port: 9090,
        idp_port: 9000,
        spa_port: 5173,
        check: false,
        screenshots: repo_root().join("tests/output/e2e"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let port = |text: String| text.parse().map_err(|_| format!("`{text}` is not a port"));
        match arg.as_str() {
            "--port" => options.port = port(value()?)?,
            "--admin-port" => options.admin_port = port(value()?)?,
            "--api-port" => options.api_port = port(value()?)?,
            "--mcp-port" => options.mcp_port = port(value()?)?,
            "--idp-port" => options.idp_port = port(value()?)?,
            "--spa-port" => options.spa_port = port(value()?)?,
            "--screenshots" => options.screenshots = PathBuf::from(value()?),
            "--check" => options.check = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
}

/// `examples/policy.json` for these ports: the gateway's origin (the `resource` and the
/// audiences), the IdP's (its issuer and `jwks_uri`) and the SPA's (CORS).
fn demo_policy(text: &str, options: &Options) -> String {
    text.replace(DEFAULT_GATEWAY, &options.gateway())
        .replace(DEFAULT_IDP, &options.idp())
        .replace(DEFAULT_SPA, &options.spa())
}

/// `examples/envoy.yaml` with its placeholders filled in.
fn envoy_yaml(options: &Options, policy: &str) -> Result<String, String> {
    let path = repo_root().join("examples/envoy.yaml");
    let template = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let indent = template
        .lines()
        .find(|l| l.trim() == "${POLICY}")
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .ok_or("examples/envoy.yaml has no ${POLICY} line")?;
    let policy = policy
        .lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"));
    Ok(template
        .replace("${POLICY}", &policy)
        .replace("${LISTEN_PORT}", &options.port.to_string())
        .replace("${ADMIN_PORT}", &options.admin_port.to_string())
        .replace("${API_PORT}", &options.api_port.to_string())
        .replace("${MCP_PORT}", &options.mcp_port.to_string())
        .replace("${IDP_PORT}", &options.idp_port.to_string())
        .replace("${SPA_ORIGIN}", &options.spa())
        .replace("${FILTER_WASM}", &filter_wasm().display().to_string()))
}

/// The example API: echoes the request and the claims the gateway forwarded.
fn example_api(port: u16) -> Result<HttpServer, String> {
    HttpServer::start_on(port, |request| ServerResponse {
        status: 200,
        content_type: "application/json",
        body: json!({
            "api": "example",
            "method": request.method,
            "path": request.target,
            "forwarded": request.headers.iter()
                .filter(|(name, _)| name.starts_with("x-scopegate-"))
                .collect::<Vec<_>>(),
        })
        .to_string(),
    })
    .map_err(|e| format!("example API on 127.0.0.1:{port}: {e}"))
}

/// The MCP reference server on 127.0.0.1 (`tests/e2e/loopback.mjs` keeps its bare
/// `listen(PORT)` off other interfaces), on Node 22 when `.tools/` has it.
fn mcp_server(port: u16, startup: Duration) -> Result<NodeProcess, String> {
    let e2e = repo_root().join("tests/e2e");
    let server = e2e.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if !server.exists() {
        return Err(format!(
            "{} is not installed: run ./scripts/setup",
            server.display()
        ));
    }
    let mut command = Command::new(node_22().unwrap_or_else(|| PathBuf::from("node")));
    command
        .arg("--import")
        .arg(e2e.join("loopback.mjs"))
        .arg(&server)
        .arg("streamableHttp")
        .current_dir(&e2e)
        .env_clear()
        .env("PORT", port.to_string());
    NodeProcess::spawn(
        "the MCP server",
        command,
        Some(&format!("listening on port {port}")),
        startup,
        false,
    )
}

fn run() -> Result<bool, String> {
    let options = options()?;
    let root = repo_root();
    let package = root.join("target/npm/scopegate");
    if !package.join("web/index.js").exists() {
        return Err(format!(
            "the npm package is not built in {}: run ./scripts/build-web (./scripts/demo does)",
            package.display()
        ));
    }
    let policy_path = root.join("examples/policy.json");
    let policy_text =
        fs::read_to_string(&policy_path).map_err(|e| format!("{}: {e}", policy_path.display()))?;
    let policy_text = demo_policy(&policy_text, &options);
    let policy: Value = serde_json::from_str(&policy_text).map_err(|e| e.to_string())?;
    let out_dir = root.join("target/demo");
    fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let demo_policy_path = out_dir.join("policy.json");
    fs::write(&demo_policy_path, &policy_text).map_err(|e| e.to_string())?;

    let startup = Duration::from_secs(30);
    let port = |p: u16| p.to_string();
    // oidc-provider supports the maintained LTS lines: Node 22 from .tools/ when present.
    let mut command = Command::new(node_22().unwrap_or_else(|| PathBuf::from("node")));
    command.arg(root.join("examples/idp/idp.mjs")).args([
        "--port".into(),
        port(options.idp_port),
        "--audience".into(),
        options.gateway(),
        "--spa".into(),
        options.spa(),
        "--mcp-resource".into(),
        format!("{}/mcp", options.gateway()),
    ]);
    let idp = NodeProcess::spawn("the IdP", command, Some(" ready "), startup, true)?;
    let api = example_api(options.api_port)?;
    let mcp = mcp_server(options.mcp_port, startup)?;
    let config_path = out_dir.join("envoy.yaml");
    fs::write(&config_path, envoy_yaml(&options, &policy_text)?).map_err(|e| e.to_string())?;
    let envoy = Envoy::start_file(&config_path, options.port, TempDir::new("demo"))
        .map_err(|failed| format!("Envoy did not start:\n{}", failed.log))?;
    // Envoy answers 401 for the IdP's tokens until the filter has the IdP's keys.
    if !eventually(Duration::from_secs(15), || {
        envoy.counter("wasmcustom.scopegate.jwks.fetch_ok") >= 1
    }) {
        return Err(format!(
            "the filter did not get the IdP's keys from {}/jwks:\n{}",
            options.idp(),
            envoy.log()
        ));
    }
    let spa = NodeProcess::start(
        "the SPA server",
        &root.join("examples/spa/serve.mjs"),
        &[
            "--port".into(),
            port(options.spa_port),
            "--package".into(),
            package.display().to_string(),
            "--policy".into(),
            demo_policy_path.display().to_string(),
            "--issuer".into(),
            options.idp(),
            "--api".into(),
            options.gateway(),
        ],
        Some(" ready "),
        startup,
        true,
    )?;

    let base = options.gateway();
    println!(
        "\nscopegate demo: Envoy (pid {}) on {base} with the filter {}",
        envoy.pid(),
        filter_wasm().display()
    );
    println!("  policy: target/demo/policy.json (examples/policy.json with these ports); Envoy config: target/demo/envoy.yaml");
    println!(
        "  IdP (pid {}) on {}, its keys fetched by the filter over the `idp` cluster",
        idp.pid(),
        options.idp()
    );
    println!(
        "  SPA (pid {}) on {}/, example API on 127.0.0.1:{}, Envoy admin on 127.0.0.1:{}",
        spa.pid(),
        options.spa(),
        api.port,
        envoy.admin
    );
    println!(
        "  MCP server (pid {}, @modelcontextprotocol/server-everything) on 127.0.0.1:{}, behind Envoy at {base}/mcp\n",
        mcp.pid(),
        options.mcp_port
    );

    let read_token = alice_token(
        &TestKeys::from_seed(1),
        &policy,
        "ES256",
        3600,
        &json!({"scope": "openid resource:read"}),
    )
    .ok_or("examples/policy.json has no issuer with inline keys")?;
    let auth = format!("Bearer {read_token}");
    let shown = [
        (
            "GET",
            "/api/resources",
            Some(&auth),
            200,
            "a read token reads",
        ),
        ("GET", "/api/resources", None, 401, "no token"),
        (
            "POST",
            "/api/resources",
            Some(&auth),
            403,
            "a read token cannot write",
        ),
    ];
    let mut all_expected = true;
    for (method, path, auth, expected, what) in shown {
        let headers: Vec<(&str, &str)> = auth
            .map(|a| ("authorization", a.as_str()))
            .into_iter()
            .collect();
        let response = request(options.port, method, path, &headers).map_err(|e| e.to_string())?;
        all_expected &= show(what, method, path, expected, &response);
    }
    // The MCP server: a tools/call with the API's token, then with one for the MCP resource
    // that lacks mcp:admin.
    let mcp_token = alice_token(
        &TestKeys::from_seed(1),
        &policy,
        "ES256",
        3600,
        &json!({"scope": "mcp:tools", "aud": format!("{base}/mcp")}),
    )
    .ok_or("examples/policy.json has no issuer with inline keys")?;
    let mcp_auth = format!("Bearer {mcp_token}");
    for (auth, tool, expected, what) in [
        (
            &auth,
            "echo",
            401,
            "the API's token is not the MCP server's",
        ),
        (
            &mcp_auth,
            "get-env",
            403,
            "an MCP token without mcp:admin cannot call get-env",
        ),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": tool, "arguments": {}}})
        .to_string();
        let response = post_json(options.port, "/mcp", auth, &body)?;
        all_expected &= show(
            what,
            "POST",
            &format!("/mcp (tools/call {tool})"),
            expected,
            &response,
        );
    }

    if options.check {
        println!("# the browser story (tests/e2e/story.mjs, Playwright + Chromium)");
        let mut story = NodeProcess::start(
            "the e2e story",
            &root.join("tests/e2e/story.mjs"),
            &[
                "--spa".into(),
                options.spa(),
                "--screenshots".into(),
                options.screenshots.display().to_string(),
            ],
            None,
            startup,
            true,
        )?;
        // The story stops itself after 150 s; this is the backstop.
        let status = story.wait(Duration::from_secs(180))?;
        all_expected &= status.success();
        all_expected &= explain_bob(&options, &demo_policy_path, &base);
    } else {
        println!("Open {}/ in a browser and sign in as alice (password alice), who may get resource:write,", options.spa());
        println!("or bob (password bob), who may not. Or try the gateway with curl (the token is an ES256");
        println!("access token of the test issuer for alice, scope \"openid resource:read\", valid one hour):\n");
        println!("  export TOKEN='{read_token}'");
        let admin = envoy.admin;
        println!(
            "  curl -i {base}/api/resources -H \"Authorization: Bearer $TOKEN\"          # 200"
        );
        println!(
            "  curl -i {base}/api/resources                                              # 401"
        );
        println!(
            "  curl -i -X POST {base}/api/resources -H \"Authorization: Bearer $TOKEN\"  # 403"
        );
        println!("  curl -i --path-as-is {base}/api/public/../resources                       # 401, not public");
        println!(
            "  curl -s {base}/.well-known/oauth-protected-resource                       # RFC 9728"
        );
        println!(
            "  curl -s 'http://127.0.0.1:{admin}/stats?filter=scopegate'                                # counters"
        );
        println!("\nAn MCP client (the official SDK's, or `npx @modelcontextprotocol/inspector`) pointed at");
        println!("{base}/mcp discovers the IdP from the 401, signs alice in (client scopegate-mcp-sdk, redirect");
        println!("http://127.0.0.1:<any port>/callback), and steps up to mcp:admin for get-env: docs/mcp.md.");
        println!("\nPress Enter (or Ctrl-C) to stop the IdP, Envoy, the API, the MCP server and the SPA.");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
    drop(spa);
    drop(envoy);
    drop(mcp);
    drop(api);
    drop(idp);
    Ok(all_expected)
}

/// `scopegate explain` on bob's refused write (the story saved his token), while the IdP
/// still serves its keys: the README's session. Did it explain a 403?
fn explain_bob(options: &Options, policy: &std::path::Path, base: &str) -> bool {
    let Ok(authorization) = fs::read_to_string(options.screenshots.join("bob-authorization.txt"))
    else {
        println!("explain: the story saved no token of bob's");
        return false;
    };
    let url = format!("{base}/api/resources");
    let output = Command::new(scopegate_tests::scopegate_binary())
        .arg("explain")
        .arg(policy)
        .args(["POST", &url, "--token", authorization.trim()])
        .output();
    let Ok(output) = output else {
        println!("explain: cannot run scopegate");
        return false;
    };
    println!("# scopegate explain target/demo/policy.json POST {url} --token \"$BOB\"");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("explain: {line}");
    }
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    output.status.code() == Some(1)
}

/// Prints one answer of the gateway; is it the expected one?
fn show(what: &str, method: &str, path: &str, expected: u16, response: &Response) -> bool {
    println!("# {what}: {method} {path} -> {}", response.status);
    if let Some(challenge) = response.header("www-authenticate") {
        println!("  WWW-Authenticate: {challenge}");
    }
    println!("  {}\n", response.body);
    response.status == expected
}

/// `POST path` with a JSON-RPC body, as an MCP client sends it.
fn post_json(port: u16, path: &str, auth: &str, body: &str) -> Result<Response, String> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: {auth}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    send_raw(port, head.as_bytes()).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("demo: an answer was not the expected one");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("demo: {message}");
            ExitCode::from(2)
        }
    }
}
