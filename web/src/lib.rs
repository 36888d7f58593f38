//! wasm-bindgen bindings of [`scopegate_core`] for the npm package `scopegate`.
//!
//! Nothing but translation: JS values into core calls, and core answers back into JS
//! values. Structured answers cross the boundary as JSON text, which the hand-written layer
//! in `web/js/` parses; errors cross as a JSON text `{"code", "message", ...}` that the layer
//! turns into `ScopegateError` objects with a stable `code`. That layer is the public API;
//! these `raw` exports are not.
//!
//! The core is built without signature verifiers (`default-features = false`): the browser
//! package decodes and pre-checks tokens, and never verifies a signature. The gateway does.
//! Nor with `server-sections`: the policy's keys, secrets, introspection credentials and
//! DPoP nonces are skipped unread.
//!
//! The exports are described by `//` comments, not `///` doc comments: wasm-bindgen copies
//! doc comments into the generated JS glue, which every browser downloads (they were about
//! 1.1 KB of its 6.4 KB gzipped). The examples live here (success paths only: an error is a
//! `JsValue`, which exists only on wasm32):
//!
//! ```
//! use scopegate_web::{decode_token, default_scopes_of, normalize_path, parse_www_authenticate, RawPolicy, RawScopeRules};
//! let policy = RawPolicy::from_json(r#"{"version": 1, "realm": "api",
//!   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
//!                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
//!   "roles": {"map": {"admin": ["order.write"]}},
//!   "routes": [{"path": "/orders/{id}", "methods": ["PUT"], "require": "order.write"}]}"#)
//!     .unwrap_or_else(|_| unreachable!());
//! // {"alg":"ES256"} . {"iss":"https://idp","aud":"api","exp":2000000000,"scope":"order"} . "sig"
//! let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsImF1ZCI6ImFwaSIsImV4cCI6MjAwMDAwMDAwMCwic2NvcGUiOiJvcmRlciJ9.c2ln";
//! let answer = policy
//!     .check("PUT", "https://api.example/orders/7", vec![format!("Bearer {jwt}")], None, None, None, None, None, None, 1.9e9)
//!     .unwrap_or_else(|_| unreachable!());
//! assert!(answer.contains(r#""missing":["order.write"]"#));
//! assert_eq!(policy.scopes_of(jwt).unwrap_or_default(), ["order"]);
//! assert_eq!(default_scopes_of(jwt).unwrap_or_default(), ["order"]);
//! assert!(decode_token(jwt).unwrap_or_default().contains(r#""alg":"ES256""#));
//! let rules = RawScopeRules::new(None, None, false, vec![]).unwrap_or_else(|_| unreachable!());
//! assert!(rules.covers("order.write", "order:item"));
//! assert_eq!(
//!     rules.next_request(vec!["order".into()], vec!["order.write".into()]).unwrap_or_default(),
//!     r#"{"add":["order.write"],"scope":"order.write"}"#
//! );
//! assert_eq!(normalize_path("/a/./b/../c").unwrap_or_default(), "/a/c");
//! assert!(parse_www_authenticate(r#"Bearer scope="a b""#).unwrap_or_default().contains(r#"["scope","a b"]"#));
//! ```

use scopegate_core::client;
use scopegate_core::{
    decode_token as decode, is_valid_scope, normalize_path as normalize, parse_challenges,
    request_target, scopes_of, Policy, Request, ScopeError, ScopeRequest, ScopeRules, UnixTime,
    DEFAULT_SEPARATOR, DEFAULT_WRITE_SUFFIX,
};
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

/// An error for the JS layer: `{"code": ..., "message": ..., ...details}` as a JS string.
/// (`message` as `&dyn Display`: one copy of this function, not one per message type.)
fn error(code: &str, message: &dyn core::fmt::Display, details: Value) -> JsValue {
    let mut body = json!({"code": code, "message": message.to_string()});
    if let (Some(body), Value::Object(details)) = (body.as_object_mut(), details) {
        body.extend(details);
    }
    JsValue::from_str(&body.to_string())
}

fn to_json(value: &impl Serialize) -> Result<String, JsValue> {
    serde_json::to_string(value).map_err(|e| error("internal", &e, Value::Null))
}

fn strs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

fn scope_request(result: Result<ScopeRequest, ScopeError>) -> Result<String, JsValue> {
    match result {
        Ok(next) => to_json(&json!({"add": next.add, "scope": next.scope})),
        Err(err) => Err(error("invalid_scope", &err, json!({"reason": err.code()}))),
    }
}

/// The request target of `url` and the time `now` (seconds), or an `invalid_argument`.
fn target_and_time(url: &str, now: f64) -> Result<(std::borrow::Cow<'_, str>, UnixTime), JsValue> {
    let Some(target) = request_target(url) else {
        return Err(error(
            "invalid_argument",
            &format_args!("`{url}` is neither a path starting with / nor an absolute URL"),
            Value::Null,
        ));
    };
    if !(now.is_finite() && now >= 0.0) {
        return Err(error(
            "invalid_argument",
            &"`now` must be a non-negative number of seconds since 1970",
            Value::Null,
        ));
    }
    Ok((target, UnixTime(now as u64)))
}

fn token_error(err: &scopegate_core::TokenError) -> JsValue {
    error("invalid_token", err, json!({"reason": err.code()}))
}

// A compiled policy document.
#[wasm_bindgen]
pub struct RawPolicy {
    inner: Policy,
}

#[wasm_bindgen]
impl RawPolicy {
    // Compiles a policy document; errors carry the JSON path (`routes[3].path`).
    #[wasm_bindgen(js_name = fromJson, skip_jsdoc)]
    pub fn from_json(text: &str) -> Result<RawPolicy, JsValue> {
        Policy::from_json(text)
            .map(|inner| RawPolicy { inner })
            .map_err(|err| error("invalid_policy", &err, json!({"path": err.path})))
    }

    // The gateway's decision for a request, its signature taken as valid. `url` is a
    // request target or an absolute URL; `body` is read on MCP routes (with the
    // `Mcp-Method` / `Mcp-Name` headers); `now` is in seconds since the epoch. Answers
    // `{allowed, status, code, error, missing, challenge, maxAge, body, tokenError, route}`.
    // The raw export takes each header positionally; `checkRequest` in js/api.js is the
    // one-object API over it.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(skip_jsdoc)]
    pub fn check(
        &self,
        method: &str,
        url: &str,
        authorization: Vec<String>,
        origin: Option<String>,
        preflight: Option<String>,
        body: Option<String>,
        mcp_method: Option<String>,
        mcp_name: Option<String>,
        mcp_protocol_version: Option<String>,
        now: f64,
    ) -> Result<String, JsValue> {
        let (target, now) = target_and_time(url, now)?;
        let authorization = strs(&authorization);
        let mut request = Request::new(method, &target).with_authorization(&authorization);
        request.origin = origin.as_deref();
        request.access_control_request_method = preflight.as_deref();
        request.body = body.as_deref().map(str::as_bytes);
        request.mcp_method = mcp_method.as_deref();
        request.mcp_name = mcp_name.as_deref();
        request.mcp_protocol_version = mcp_protocol_version.as_deref();
        let decision = self.inner.precheck(&request, now);
        Ok(decision.answer(&self.inner).to_json())
    }

    // The token's effective scopes under this policy (claims and mapped roles).
    #[wasm_bindgen(js_name = scopesOf, skip_jsdoc)]
    pub fn scopes_of(&self, jwt: &str) -> Result<Vec<String>, JsValue> {
        scopes_of(jwt, Some(&self.inner))
            .map(|set| set.iter().map(String::from).collect())
            .map_err(|err| token_error(&err))
    }

    // The scopes held ([`client::held_scopes`]), or at `url` ([`client::held_at`]).
    #[wasm_bindgen(js_name = heldScopes, skip_jsdoc)]
    pub fn held_scopes(
        &self,
        granted: Vec<String>,
        access: Option<String>,
        url: Option<String>,
        now: f64,
    ) -> Result<Vec<String>, JsValue> {
        let granted = strs(&granted);
        Ok(match url {
            Some(url) => {
                let (target, now) = target_and_time(&url, now)?;
                client::held_at(&self.inner, &target, &granted, access.as_deref(), now)
            }
            None => client::held_scopes(Some(&self.inner), &granted, access.as_deref()),
        })
    }

    // One JSON-RPC call POSTed to `url` ([`client::call_access`]), as JSON.
    #[wasm_bindgen(js_name = mcpCall, skip_jsdoc)]
    // The call's parts positionally; `mcpScopeRequest` in js/api.js is the object API.
    #[allow(clippy::too_many_arguments)]
    pub fn mcp_call(
        &self,
        url: &str,
        granted: Vec<String>,
        access: Option<String>,
        method: &str,
        name: Option<String>,
        uri: Option<String>,
        now: f64,
    ) -> Result<String, JsValue> {
        let (target, now) = target_and_time(url, now)?;
        let granted = strs(&granted);
        let access = client::call_access(
            &self.inner,
            &target,
            &granted,
            access.as_deref(),
            method,
            name.as_deref(),
            uri.as_deref(),
            now,
        )
        .map_err(|err| error("invalid_scope", &err, json!({"reason": err.code()})))?;
        to_json(&access)
    }

    // The policy's scope rules.
    #[wasm_bindgen(js_name = scopeRules, skip_jsdoc)]
    pub fn scope_rules(&self) -> RawScopeRules {
        RawScopeRules {
            inner: self.inner.scope_rules().clone(),
        }
    }

    // The realm of its challenges.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn realm(&self) -> String {
        self.inner.realm().into()
    }

    // The RFC 9728 metadata document, if the policy names a `resource`.
    #[wasm_bindgen(js_name = resourceMetadata, skip_jsdoc)]
    pub fn resource_metadata(&self) -> Option<String> {
        self.inner.resource_metadata().map(String::from)
    }
}

// Scope coverage rules: separator, write suffix, prefix scopes.
#[wasm_bindgen]
pub struct RawScopeRules {
    inner: ScopeRules,
}

#[wasm_bindgen]
impl RawScopeRules {
    // Rules from a policy's `scopes` settings; `None` arguments take the defaults.
    #[wasm_bindgen(constructor, skip_jsdoc)]
    pub fn new(
        separator: Option<String>,
        write_suffix: Option<String>,
        no_write_suffix: bool,
        prefixes: Vec<String>,
    ) -> Result<RawScopeRules, JsValue> {
        let suffix = if no_write_suffix {
            None
        } else {
            Some(write_suffix.as_deref().unwrap_or(DEFAULT_WRITE_SUFFIX))
        };
        ScopeRules::new(
            separator.as_deref().unwrap_or(DEFAULT_SEPARATOR),
            suffix,
            &strs(&prefixes),
        )
        .map(|inner| RawScopeRules { inner })
        .map_err(|err| error("invalid_scope", &err, json!({"reason": err.code()})))
    }

    // Does `granted` cover `required`?
    #[wasm_bindgen(skip_jsdoc)]
    pub fn covers(&self, granted: &str, required: &str) -> bool {
        self.inner.covers(granted, required)
    }

    // The authorization request that keeps what is held ([`client::widen`]):
    // `{scope, prompt}` as JSON, or `undefined` when it stays as it is.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn widen(
        &self,
        held: Vec<String>,
        requested: Vec<String>,
        prompt: &str,
    ) -> Result<Option<String>, JsValue> {
        // No `prompt` and an empty one are the same to `widen`.
        match client::widen(&self.inner, &strs(&held), &strs(&requested), Some(prompt)) {
            Ok(widened) => widened.map(|w| to_json(&w)).transpose(),
            Err(err) => Err(error("invalid_scope", &err, json!({"reason": err.code()}))),
        }
    }

    // What a 403 `insufficient_scope` naming `required` asks of a client holding `held`
    // ([`client::needed`]): `{scopeRequest: {add, scope} | null, missing}` as JSON;
    // `missing` is what the denial says, when `missing_known`.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn needed(
        &self,
        held: Vec<String>,
        required: Vec<String>,
        missing: Vec<String>,
        missing_known: bool,
    ) -> Result<String, JsValue> {
        let missing = strs(&missing);
        let said = missing_known.then_some(missing.as_slice());
        match client::needed(&self.inner, &strs(&held), &strs(&required), said) {
            Ok(needed) => to_json(&json!({
                "scopeRequest": needed.request.map(|r| json!({"add": r.add, "scope": r.scope})),
                "missing": needed.missing,
            })),
            Err(err) => Err(error("invalid_scope", &err, json!({"reason": err.code()}))),
        }
    }

    // The next progressive request: `{add, scope}`.
    #[wasm_bindgen(js_name = nextRequest, skip_jsdoc)]
    pub fn next_request(&self, held: Vec<String>, missing: Vec<String>) -> Result<String, JsValue> {
        scope_request(self.inner.next_request(&strs(&held), &strs(&missing)))
    }
}

// `{header, claims}` of a JWS, without checking anything but its shape.
#[wasm_bindgen(js_name = decodeToken, skip_jsdoc)]
pub fn decode_token(jwt: &str) -> Result<String, JsValue> {
    let decoded = decode(jwt).map_err(|err| token_error(&err))?;
    to_json(&json!({"header": decoded.header(), "claims": decoded.claims()}))
}

// The scopes of a token's default scope claims (`scope`, `scp`, `permissions`).
#[wasm_bindgen(js_name = scopesOf, skip_jsdoc)]
pub fn default_scopes_of(jwt: &str) -> Result<Vec<String>, JsValue> {
    scopes_of(jwt, None)
        .map(|set| set.iter().map(String::from).collect())
        .map_err(|err| token_error(&err))
}

// Every challenge of a `WWW-Authenticate` value: `[{scheme, token68, params: [[n, v]]}]`.
#[wasm_bindgen(js_name = parseChallenges, skip_jsdoc)]
pub fn parse_www_authenticate(value: &str) -> Result<String, JsValue> {
    let challenges = parse_challenges(value)
        .map_err(|err| error("invalid_challenge", &err, json!({"at": err.at})))?;
    to_json(&challenges)
}

// What a gateway's denial says, read back from a response's status, `WWW-Authenticate`
// and body: `{status, error, insufficientScope, missing, maxAge, acrValues, source, fix}`
// as JSON (`fix`: `scopes`, `sign_in` or `none`, [`client::fix_of`]), or `undefined`
// when the response is not a gateway denial.
#[wasm_bindgen(js_name = readDenial, skip_jsdoc)]
pub fn read_denial(
    status: u16,
    www_authenticate: Option<String>,
    body: Option<String>,
) -> Result<Option<String>, JsValue> {
    let Some(denial) =
        scopegate_core::read_denial(status, www_authenticate.as_deref(), body.as_deref())
    else {
        return Ok(None);
    };
    // `{...denial, "fix": ...}`: the object's text with one more member (its last byte is `}`).
    let mut text = to_json(&denial)?;
    text.pop();
    text.push_str(&format!(
        r#","fix":"{}"}}"#,
        client::fix_of(&denial).as_str()
    ));
    Ok(Some(text))
}

// The path routes match on for a request target.
#[wasm_bindgen(js_name = normalizePath, skip_jsdoc)]
pub fn normalize_path(target: &str) -> Result<String, JsValue> {
    normalize(target)
        .map(|path| path.into_owned())
        .map_err(|err| error("invalid_path", &err, json!({"reason": err.code()})))
}

// Is `scope` a valid scope token (RFC 6749 §3.3)?
#[wasm_bindgen(js_name = isValidScope, skip_jsdoc)]
pub fn valid_scope(scope: &str) -> bool {
    is_valid_scope(scope)
}

// The scopes of a space-separated list ([`client::split_scopes`]).
#[wasm_bindgen(js_name = splitScopes, skip_jsdoc)]
pub fn split_scopes(text: &str) -> Vec<String> {
    client::split_scopes(text).map(String::from).collect()
}

// An authorization request's query parameters ([`client::authorization_params`]), as
// JSON `[name, value, …]`.
// `request` is JSON: `{client_id, redirect_uri, code_challenge}`, and when given
// `authorization_endpoint`, `response_type`, `state`, `code_challenge_method` (strings), `scopes`, `resources`,
// `acr_values`, `extra` (arrays of strings; `extra` is `[name, value, …]`); `max_age` apart, as
// JSON has no NaN. (`///` lines are copied into the JS glue, which the browser downloads.)
#[wasm_bindgen(js_name = authorizationParams, skip_jsdoc)]
pub fn authorization_params(request: &str, max_age: Option<f64>) -> Result<Vec<String>, JsValue> {
    // from_slice: the instantiation read_denial and the token decoder use.
    let json: Value = serde_json::from_slice(request.as_bytes()).unwrap_or_default();
    let text = |name: &str| json.get(name).and_then(Value::as_str);
    // Plain loops over `Vec::push`: no iterator instantiations in the browser build.
    let list = |name: &str| -> Option<Vec<&str>> {
        let mut items = Vec::new();
        for item in json.get(name)?.as_array()? {
            items.push(item.as_str().unwrap_or_default());
        }
        Some(items)
    };
    let (scopes, resources, acr_values) = (list("scopes"), list("resources"), list("acr_values"));
    let mut extra = Vec::new();
    for pair in list("extra").unwrap_or_default().chunks_exact(2) {
        extra.push((pair[0], pair[1]));
    }
    let request = client::AuthorizationRequest {
        authorization_endpoint: text("authorization_endpoint"),
        response_type: text("response_type"),
        client_id: text("client_id").unwrap_or_default(),
        redirect_uri: text("redirect_uri").unwrap_or_default(),
        scopes: scopes.as_deref().unwrap_or_default(),
        state: text("state"),
        code_challenge: text("code_challenge").unwrap_or_default(),
        code_challenge_method: text("code_challenge_method"),
        resources: resources.as_deref().unwrap_or_default(),
        acr_values: acr_values.as_deref(),
        max_age,
        extra: &extra,
    };
    let params = client::authorization_params(&request)
        .map_err(|err| error("invalid_argument", &err, Value::Null))?;
    let mut flat = Vec::new();
    for (name, value) in params {
        flat.push(String::from(name));
        flat.push(value);
    }
    Ok(flat)
}

// The `Authorization` header for an access token ([`client::authorization_header`]).
#[wasm_bindgen(js_name = authorizationHeader, skip_jsdoc)]
pub fn authorization_header(access: &str) -> Option<String> {
    client::authorization_header(Some(access))
}

// Does a denial's body need reading ([`client::wants_denial_body`])?
#[wasm_bindgen(js_name = wantsDenialBody, skip_jsdoc)]
pub fn wants_denial_body(status: u16, content_type: &str) -> bool {
    client::wants_denial_body(status, Some(content_type))
}

// The scopes held, the access token read by its default scope claims
// ([`client::held_scopes`]).
#[wasm_bindgen(js_name = heldScopes, skip_jsdoc)]
pub fn held_scopes(granted: Vec<String>, access: Option<String>) -> Vec<String> {
    client::held_scopes(None, &strs(&granted), access.as_deref())
}
