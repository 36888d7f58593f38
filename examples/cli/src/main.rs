//! `scopegate`: the core on the command line.
//!
//! ```text
//! scopegate check POLICY.json
//! scopegate decide POLICY.json METHOD PATH [--token JWT] [--now SECS] [--origin ORIGIN]
//!                  [--jwks ISSUER_INDEX=JWKS.json]...
//! scopegate scopes POLICY.json JWT [--now SECS]
//! scopegate next POLICY.json --held "a b" --missing "c d"
//! scopegate challenge 'Bearer realm="api", error="insufficient_scope", scope="a"'
//! scopegate demo
//! ```
//!
//! `decide` prints the decision as JSON and exits 0 for a pass, 1 for a denial.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};
use std::{env, fs};

use scopegate_core::policy::KeySource;
use scopegate_core::{parse_challenges, Decision, KeySet, KeyStore, Policy, Request, UnixTime};
use serde_json::{json, Value};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check") => check(&args[1..]),
        Some("decide") => decide(&args[1..]),
        Some("scopes") => scopes(&args[1..]),
        Some("next") => next(&args[1..]),
        Some("challenge") => challenge(&args[1..]),
        Some("demo") => demo(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage:
  scopegate check POLICY.json
  scopegate decide POLICY.json METHOD PATH [--token JWT] [--now SECS] [--origin ORIGIN] [--jwks N=JWKS.json]
  scopegate scopes POLICY.json JWT [--now SECS]
  scopegate next POLICY.json --held \"a b\" --missing \"c d\"
  scopegate challenge WWW-AUTHENTICATE
  scopegate demo";

/// Positional arguments and `--name value` options.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, String)>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut positional = Vec::new();
        let mut options = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                let value = iter.next().ok_or(format!("--{name} needs a value"))?;
                options.push((name.to_owned(), value.clone()));
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Self {
            positional,
            options,
        })
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn now(&self) -> Result<UnixTime, String> {
        match self.option("now") {
            Some(secs) => secs
                .parse()
                .map(UnixTime)
                .map_err(|_| format!("--now {secs}: not a number of seconds")),
            None => Ok(UnixTime(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_err(|e| format!("clock: {e}"))?
                    .as_secs(),
            )),
        }
    }
}

fn load_policy(path: &str) -> Result<Policy, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Policy::from_json(&text).map_err(|e| format!("{path}: {e}"))
}

fn check(args: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(args)?;
    let [path] = args.positional.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let policy = load_policy(path)?;
    println!("{path}: ok, realm `{}`", policy.realm());
    for (index, issuer) in policy.issuers().iter().enumerate() {
        let algorithms: Vec<&str> = issuer.algorithms().iter().map(|a| a.name()).collect();
        let keys = match issuer.keys() {
            KeySource::Inline(set) => {
                for skipped in set.skipped() {
                    println!("  warning: issuers[{index}].jwks.{skipped}");
                }
                format!("{} inline keys", set.keys().count())
            }
            KeySource::Remote(remote) => {
                format!("keys from {} via cluster `{}`", remote.uri, remote.cluster)
            }
            KeySource::SecretOnly => "shared secret".to_owned(),
        };
        println!(
            "  issuers[{index}] {} ({}; {keys})",
            issuer.issuer(),
            algorithms.join(", ")
        );
    }
    let mut index = 0;
    while let Some(path) = policy.route_path(index) {
        println!("  routes[{index}] {path}");
        index += 1;
    }
    Ok(ExitCode::SUCCESS)
}

fn decision_json(decision: &Decision<'_>) -> Value {
    match decision {
        Decision::Allow(allow) => json!({
            "decision": "allow",
            "code": decision.code(),
            "route": allow.route,
            "forward_headers": allow.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
        }),
        Decision::Deny(denial) => json!({
            "decision": "deny",
            "code": decision.code(),
            "reason": denial.reason.to_string(),
            "status": denial.status,
            "route": denial.route,
            "missing": denial.missing,
            "headers": denial.headers().iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "body": denial.body,
        }),
        Decision::Serve(served) => json!({
            "decision": "serve",
            "code": decision.code(),
            "content_type": served.content_type,
            "body": served.body,
        }),
    }
}

fn decide(args: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(args)?;
    let [path, method, target] = args.positional.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let policy = load_policy(path)?;
    let mut keys = KeyStore::default();
    for (name, value) in &args.options {
        if name == "jwks" {
            let (index, file) = value
                .split_once('=')
                .ok_or("--jwks takes ISSUER_INDEX=FILE")?;
            let index: usize = index.parse().map_err(|_| "--jwks: bad issuer index")?;
            let text = fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            keys.install(
                index,
                KeySet::from_json(&text).map_err(|e| format!("{file}: {e}"))?,
            );
        }
    }
    let authorization = args.option("token").map(|t| format!("Bearer {t}"));
    let auth: Vec<&str> = authorization.iter().map(String::as_str).collect();
    let mut request = Request::new(method, target).with_authorization(&auth);
    request.origin = args.option("origin");
    let decision = policy.decide(&request, &keys, args.now()?);
    println!("{:#}", decision_json(&decision));
    Ok(if matches!(decision, Decision::Deny(_)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn scopes(args: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(args)?;
    let [path, token] = args.positional.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let policy = load_policy(path)?;
    match policy.authenticate(token, &KeyStore::default(), args.now()?) {
        Ok(principal) => {
            for scope in principal.scopes.iter() {
                println!("{scope}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Err(format!("token refused: {err}")),
    }
}

fn next(args: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(args)?;
    let [path] = args.positional.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let policy = load_policy(path)?;
    let split = |name: &str| -> Vec<&str> {
        args.option(name)
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect()
    };
    let request = policy
        .scope_rules()
        .next_request(&split("held"), &split("missing"))
        .map_err(|e| e.to_string())?;
    println!("{:#}", json!({"add": request.add, "scope": request.scope}));
    Ok(ExitCode::SUCCESS)
}

fn challenge(args: &[String]) -> Result<ExitCode, String> {
    let [header] = args else {
        return Err(USAGE.to_owned());
    };
    let challenges = parse_challenges(header).map_err(|e| e.to_string())?;
    println!("{:#}", json!(challenges));
    Ok(ExitCode::SUCCESS)
}

/// The requests the demo shows, by vector case name: the story of the seed documents.
const DEMO_CASES: [&str; 14] = [
    "public route needs no token",
    "no token on a protected route",
    "read token reads, claims forwarded",
    "read token cannot write",
    "role mapped to a scope",
    "order covers order:item",
    "orders does not cover order:item",
    "price.write does not cover inventory.write",
    "prefix scope for another id",
    "expired one second past the leeway",
    "alg none",
    "encoded dot-dot out of a public prefix",
    "two Authorization headers",
    "step-up: authentication older than max_age",
];

fn demo(args: &[String]) -> Result<ExitCode, String> {
    let root = env!("CARGO_MANIFEST_DIR").to_owned() + "/../..";
    let root = args.first().cloned().unwrap_or(root);
    let vectors_path = format!("{root}/tests/vectors/decisions.json");
    let text = fs::read_to_string(&vectors_path).map_err(|e| format!("{vectors_path}: {e}"))?;
    let vectors: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let suite = vectors["suites"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "example"))
        .ok_or("no example suite in the vectors")?;
    let policy = load_policy(&format!("{root}/examples/policy.json"))?;
    let now = UnixTime(suite["now"].as_u64().ok_or("suite has no now")?);
    let keys = KeyStore::default();
    println!(
        "scopegate demo: examples/policy.json, tokens signed by the example issuer's keys, now = {}\n",
        now.0
    );
    for name in DEMO_CASES {
        let case = suite["cases"]
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["name"] == name))
            .ok_or(format!("no vector named `{name}`"))?;
        let request = &case["request"];
        let method = request["method"].as_str().unwrap_or("GET");
        let path = request["path"].as_str().unwrap_or("/");
        let authorization: Vec<&str> = request["authorization"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let token_note = describe_token(&authorization);
        println!("# {name}");
        println!("{method} {path}  {token_note}");
        let decision = policy.decide(
            &Request::new(method, path).with_authorization(&authorization),
            &keys,
            now,
        );
        match &decision {
            Decision::Allow(allow) => {
                let headers: Vec<String> = allow
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect();
                if headers.is_empty() {
                    println!("  -> pass to the API");
                } else {
                    println!("  -> pass to the API with {}", headers.join("; "));
                }
            }
            Decision::Deny(denial) => {
                println!(
                    "  -> {}  WWW-Authenticate: {}",
                    denial.status, denial.www_authenticate
                );
                println!("         {}", denial.body);
            }
            Decision::Serve(served) => println!("  -> 200 {}", served.body),
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// A short description of the credentials: the token's scope-bearing claims, decoded
/// without verification just for display.
fn describe_token(authorization: &[&str]) -> String {
    match authorization {
        [] => "(no token)".to_owned(),
        [_, _, ..] => format!("({} Authorization headers)", authorization.len()),
        [value] => {
            let token = value.strip_prefix("Bearer ").unwrap_or(value);
            match scopegate_core::token::decode(token) {
                Ok(decoded) => {
                    let claims = decoded.claims();
                    let mut parts = vec![format!("alg={}", decoded.algorithm())];
                    for claim in ["scope", "roles", "exp", "auth_time"] {
                        if let Some(value) = claims.get(claim) {
                            parts.push(format!("{claim}={value}"));
                        }
                    }
                    format!("(token: {})", parts.join(" "))
                }
                Err(err) => format!("(token: {err})"),
            }
        }
    }
}
