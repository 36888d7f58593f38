//! The demo behind `./scripts/demo`: Envoy with the scopegate filter in front of an
//! example API, on 127.0.0.1, enforcing `examples/policy.json`.
//!
//! It starts an echo API, fills in `examples/envoy.yaml`, starts Envoy from the project's
//! venv, mints tokens with the example issuer's (test) keys, sends three requests to show
//! a 200, a 401 and a 403 with its challenge, and prints the curl commands to try more.
//! Then it keeps running until Enter (or Ctrl-C); `--check` exits after the three requests,
//! with status 1 if any answer was not the expected one.
//!
//! Options: `--port 8080` (Envoy), `--admin-port 9901`, `--api-port 9080`, `--check`.

use std::fs;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use scopegate_tests::harness::{filter_wasm, request, Envoy, HttpServer, TempDir};
use scopegate_tests::{mint, repo_root, TestKeys};
use serde_json::{json, Map, Value};

struct Options {
    port: u16,
    admin_port: u16,
    api_port: u16,
    check: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 8080,
        admin_port: 9901,
        api_port: 9080,
        check: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut port = || -> Result<u16, String> {
            args.next()
                .and_then(|p| p.parse().ok())
                .ok_or(format!("{arg} needs a port number"))
        };
        match arg.as_str() {
            "--port" => options.port = port()?,
            "--admin-port" => options.admin_port = port()?,
            "--api-port" => options.api_port = port()?,
            "--check" => options.check = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
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
        .replace("${FILTER_WASM}", &filter_wasm().display().to_string()))
}

fn run() -> Result<bool, String> {
    let options = options()?;
    let policy_path = repo_root().join("examples/policy.json");
    let policy_text =
        fs::read_to_string(&policy_path).map_err(|e| format!("{}: {e}", policy_path.display()))?;
    let policy: Value = serde_json::from_str(&policy_text).map_err(|e| e.to_string())?;

    let api = HttpServer::start_on(options.api_port, |request| {
        scopegate_tests::harness::ServerResponse {
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
        }
    })
    .map_err(|e| format!("example API on 127.0.0.1:{}: {e}", options.api_port))?;

    let out_dir = repo_root().join("target/demo");
    fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let config_path = out_dir.join("envoy.yaml");
    fs::write(&config_path, envoy_yaml(&options, &policy_text)?).map_err(|e| e.to_string())?;
    let envoy = Envoy::start_file(&config_path, options.port, TempDir::new("demo"))
        .map_err(|failed| format!("Envoy did not start:\n{}", failed.log))?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let issuer = &policy["issuers"][0];
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer["issuer"].clone());
    claims.insert("aud".into(), issuer["audiences"][0].clone());
    claims.insert("sub".into(), json!("alice"));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + 3600));
    claims.insert("scope".into(), json!("openid resource:read"));
    let keys = TestKeys::from_seed(1);
    let read_token = mint(&keys, &json!({"alg": "ES256"}), &claims);

    let base = format!("http://127.0.0.1:{}", options.port);
    println!(
        "scopegate demo: Envoy (pid {}) on {base} with the filter {}",
        envoy.pid(),
        filter_wasm().display()
    );
    println!("  policy: examples/policy.json; Envoy config: target/demo/envoy.yaml");
    println!(
        "  example API on 127.0.0.1:{}, Envoy admin on 127.0.0.1:{}\n",
        api.port, envoy.admin
    );

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
        all_expected &= response.status == expected;
        println!("# {what}: {method} {path} -> {}", response.status);
        if let Some(challenge) = response.header("www-authenticate") {
            println!("  WWW-Authenticate: {challenge}");
        }
        println!("  {}\n", response.body);
    }

    println!("Try it (the token is an ES256 access token for alice, scope \"openid resource:read\", valid one hour):\n");
    println!("  export TOKEN='{read_token}'");
    let admin = envoy.admin;
    println!("  curl -i {base}/api/resources -H \"Authorization: Bearer $TOKEN\"          # 200");
    println!("  curl -i {base}/api/resources                                              # 401");
    println!("  curl -i -X POST {base}/api/resources -H \"Authorization: Bearer $TOKEN\"  # 403");
    println!("  curl -i --path-as-is {base}/api/public/../resources                       # 401, not public");
    println!(
        "  curl -s {base}/.well-known/oauth-protected-resource                       # RFC 9728"
    );
    println!(
        "  curl -s 'http://127.0.0.1:{admin}/stats?filter=scopegate'                    # counters"
    );

    if !options.check {
        println!("\nPress Enter (or Ctrl-C) to stop Envoy and the API.");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
    drop(envoy);
    drop(api);
    Ok(all_expected)
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
