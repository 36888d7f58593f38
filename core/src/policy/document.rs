//! The policy document as JSON: types that mirror `policy.schema.json` one to one, read by
//! `policy::read` (by hand, with the JSON path of every error) and written by serde.
//!
//! These types only describe shape; [`crate::Policy::from_json`] compiles them into the form
//! requests are decided on, and refuses what is well-formed JSON but cannot work.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use alloc::format;

use serde::Serialize;
use serde_json::Value;

pub use super::named::Named;
use super::PolicyError;

/// The claims that hold scopes when the document does not say (`scopes.claims`).
pub const DEFAULT_SCOPE_CLAIMS: [&str; 3] = ["scope", "scp", "permissions"];
/// The claims that hold roles when the document does not say (`roles.claims`).
pub const DEFAULT_ROLE_CLAIMS: [&str; 1] = ["roles"];
/// The scope hierarchy separator (`scopes.separator`).
pub const DEFAULT_SEPARATOR: &str = ":";
/// The write suffix (`scopes.write_suffix`).
pub const DEFAULT_WRITE_SUFFIX: &str = ".write";
/// Clock leeway for `exp`, `nbf` and `iat` (`issuers[].leeway_seconds`).
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;
/// Seconds between JWKS refreshes (`issuers[].jwks_refresh_seconds`).
pub const DEFAULT_JWKS_REFRESH_SECONDS: u64 = 300;
/// Minimum seconds between early JWKS re-fetches (`issuers[].jwks_refetch_seconds`).
pub const DEFAULT_JWKS_REFETCH_SECONDS: u64 = 30;

/// The whole policy document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDocument {
    /// Editor hint pointing at the JSON Schema; ignored.
    #[serde(rename = "$schema", skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Format version; must be 1.
    pub version: u32,
    /// The `realm` of every challenge.
    pub realm: String,
    /// The protected resource identifier (RFC 9728), e.g. `https://api.example.com`. When
    /// set, the metadata document is served and challenges carry `resource_metadata`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Several protected resources behind one gateway (RFC 9728), instead of `resource`:
    /// each governs the requests under its URL's path, with its own metadata document and
    /// audiences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<ResourceDocument>>,
    /// Trusted token issuers.
    pub issuers: Vec<IssuerDocument>,
    /// How scopes are read and compared.
    pub scopes: ScopesDocument,
    /// Role claims mapped to scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<RolesDocument>,
    /// The routes.
    pub routes: Vec<RouteDocument>,
    /// What happens to a request no route matches.
    pub unmatched: Unmatched,
    /// Claims forwarded to the upstream as request headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<ForwardDocument>,
    /// Cross-origin settings for denials read by browsers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsDocument>,
    /// Log decisions but let every request through.
    pub dry_run: bool,
    /// The gateway's cache of verified tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_cache: Option<TokenCacheDocument>,
    /// DPoP (RFC 9449): tokens bound to a key, sent with a proof per request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop: Option<DpopDocument>,
}

/// DPoP-bound access tokens and their proofs (`dpop`).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
pub struct DpopDocument {
    /// Proof algorithms accepted, asymmetric only; default ES256, EdDSA, PS256, RS256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    /// How old a proof's `iat` may be, in seconds (default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_max_age_seconds: Option<u64>,
    /// How far in the future a proof's `iat` may be, in seconds (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_leeway_seconds: Option<u64>,
    /// The `scheme://host[:port]` clients send requests to, when the gateway sees another
    /// (TLS ended in front of it): what a proof's `htu` is compared with. Default: the
    /// request's own `:scheme` and `:authority`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Accepted proofs each gateway worker remembers against replay (default 16384).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_cache_entries: Option<usize>,
    /// Refuse bearer tokens on protected routes: only DPoP-bound ones are accepted.
    pub required: bool,
    /// Server-provided nonces (RFC 9449 §9): proofs must carry one the gateway issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<DpopNonceDocument>,
}

/// A secret of the policy: written inline, or named as an environment variable of the Wasm
/// VM (`{"env": "NAME"}`) so that the document itself holds none and can be committed, put
/// in a resource many can read, or handed to the browser package.
///
/// [`crate::Policy::from_json_with_env`] reads the variables; [`crate::Policy::from_json`]
/// leaves them unread, and what needs the secret then fails closed (an introspection call is
/// not made, no DPoP nonce is accepted, an HS256 token is not verified).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The secret itself.
    Inline(String),
    /// The name of the environment variable that holds it.
    Env(String),
}

impl Secret {
    /// The secret, when it is written inline (or was read from the environment).
    pub fn inline(&self) -> Option<&str> {
        match self {
            Self::Inline(secret) => Some(secret),
            Self::Env(_) => None,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(\"(redacted)\")"),
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Inline(secret) => serializer.serialize_str(secret),
            Self::Env(name) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("env", name)?;
                map.end()
            }
        }
    }
}

impl PolicyDocument {
    /// Replaces every `{"env": "NAME"}` secret with the value of `NAME` in `env` (for
    /// `private_key`, the JWK its JSON text holds): an error naming the variable when it is
    /// not there, or the key when it is not a JSON object.
    pub fn read_secrets(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), PolicyError> {
        let read = |secret: &mut Secret, path: &str| match secret {
            Secret::Inline(_) => Ok(()),
            Secret::Env(name) => {
                let value = env(name).ok_or_else(|| missing(path, name))?;
                *secret = Secret::Inline(value);
                Ok(())
            }
        };
        for (i, issuer) in self.issuers.iter_mut().enumerate() {
            if let Some(secret) = &mut issuer.hmac_secret {
                read(secret, &format!("issuers[{i}].hmac_secret"))?;
            }
            let Some(introspection) = &mut issuer.introspection else {
                continue;
            };
            if let Some(secret) = &mut introspection.client_secret {
                read(secret, &format!("issuers[{i}].introspection.client_secret"))?;
            }
            if let Some(name) = introspection.private_key.as_ref().and_then(env_name) {
                let path = format!("issuers[{i}].introspection.private_key");
                let text = env(&name).ok_or_else(|| missing(&path, &name))?;
                let jwk: Value = serde_json::from_str(&text)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| {
                        PolicyError::new(
                            format!("{path}.env"),
                            format!("`{name}` must hold a private JWK, a JSON object"),
                        )
                    })?;
                introspection.private_key = Some(jwk);
            }
        }
        if let Some(nonce) = self.dpop.as_mut().and_then(|dpop| dpop.nonce.as_mut()) {
            read(&mut nonce.secret, "dpop.nonce.secret")?;
        }
        Ok(())
    }
}

/// The variable a `{"env": "NAME"}` value names.
pub(crate) fn env_name(value: &Value) -> Option<String> {
    let members = value.as_object().filter(|m| m.len() == 1)?;
    members.get("env")?.as_str().map(String::from)
}

fn missing(path: &str, name: &str) -> PolicyError {
    PolicyError::new(
        format!("{path}.env"),
        format!(
            "names the environment variable `{name}`, which the Wasm VM does not have (Envoy: \
             `vm_config.environment_variables`; Istio: `vmConfig.env`; Envoy Gateway: the \
             wasm `env`; nginx: `env {name};` in the main context)"
        ),
    )
}

/// Server-provided DPoP nonces (`dpop.nonce`).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct DpopNonceDocument {
    /// The key nonces are made with: 32 to 64 random bytes, unpadded base64url, the same for
    /// every gateway of the API. Never logged or printed.
    pub secret: Secret,
    /// How long a nonce is current, in seconds (default 60); it is accepted for one more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_seconds: Option<u64>,
}

impl fmt::Debug for DpopNonceDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonceDocument")
            .field("secret", &"(redacted)")
            .field("lifetime_seconds", &self.lifetime_seconds)
            .finish()
    }
}

/// One of several protected resources (`resources[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceDocument {
    /// The resource identifier, exactly the URL clients use, e.g. `https://gw.example/mcp`.
    /// Its path decides which requests the resource governs.
    pub resource: String,
    /// The `aud` values its tokens carry (one of them); default: the `resource` URL
    /// (RFC 8707). On the requests it governs they replace the issuers' `audiences`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    /// `scopes_supported` of its metadata document; default: every literal scope of the
    /// routes it governs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
}

/// The gateway's cache of verified tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenCacheDocument {
    /// How many verified tokens to keep until their `exp`; 0 turns the cache off.
    pub max_entries: usize,
}

/// One trusted issuer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IssuerDocument {
    /// Exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one.
    pub audiences: Vec<String>,
    /// Accepted JWS algorithms; may be empty for an issuer whose tokens are all
    /// introspected.
    pub algorithms: Vec<String>,
    /// Inline JWKS (`{"keys": [...]}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Remote JWKS URL, fetched by the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Envoy cluster that reaches `jwks_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_cluster: Option<String>,
    /// Seconds between JWKS refreshes (default 300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_refresh_seconds: Option<u64>,
    /// Minimum seconds between re-fetches caused by an unknown `kid` (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_refetch_seconds: Option<u64>,
    /// Shared secret for HS256, base64url; at least 32 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<Secret>,
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leeway_seconds: Option<u64>,
    /// Required `typ` header, e.g. `at+jwt` (RFC 9068).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Token introspection (RFC 7662) for tokens the gateway cannot verify alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection: Option<IntrospectionDocument>,
    /// Envoy's `jwt_authn` verifies this issuer's tokens instead of the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_authn: Option<JwtAuthnDocument>,
}

/// Verification by Envoy's `jwt_authn` (`issuers[].jwt_authn`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JwtAuthnDocument {
    /// The `payload_in_metadata` of the `jwt_authn` provider that verifies the issuer's
    /// tokens: the key of their payload in the filter's metadata.
    pub payload_in_metadata: String,
}

/// An issuer's introspection endpoint (`issuers[].introspection`).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct IntrospectionDocument {
    /// The endpoint's URL, e.g. `https://idp.example/token/introspection`.
    pub endpoint: String,
    /// The Envoy cluster that reaches it.
    pub cluster: String,
    /// How the gateway authenticates to it: `client_secret_basic` (default) or
    /// `private_key_jwt` (RFC 7523, an Ed25519, P-256 or RSA key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// The gateway's client id at the issuer.
    pub client_id: String,
    /// The gateway's client secret at the issuer (`client_secret_basic`). Never logged,
    /// echoed or printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// The gateway's private key (`private_key_jwt`): an Ed25519, P-256 or RSA private JWK
    /// (RSA with its CRT members), which signs `EdDSA`, `ES256` or `RS256`. Never logged,
    /// echoed or printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Value>,
    /// Which tokens are introspected: `opaque` (default: those that are not a JWS) or
    /// `all` of this issuer's, JWTs too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<String>,
    /// Longest time an active answer is kept, in seconds (default 300; never past `exp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_seconds: Option<u64>,
    /// How long an inactive answer is kept, in seconds (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_cache_seconds: Option<u64>,
    /// How long the gateway waits for the endpoint, in milliseconds (default 2000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Ask for JWT answers (RFC 9701), signed by the issuer with its keys.
    pub jwt_response: bool,
    /// Calls the gateway starts per second, for the whole host where it shares memory
    /// between workers (default 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls_per_second: Option<u64>,
    /// Calls each worker has in flight at once (default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls_in_flight: Option<u64>,
}

impl fmt::Debug for IntrospectionDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionDocument")
            .field("endpoint", &self.endpoint)
            .field("cluster", &self.cluster)
            .field("client_id", &self.client_id)
            .field("client_secret", &"(redacted)")
            .field("private_key", &"(redacted)")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// How scopes are read from tokens and compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScopesDocument {
    /// Claims holding scopes, in order (default `scope`, `scp`, `permissions`).
    pub claims: Vec<String>,
    /// Hierarchy separator (default `:`).
    pub separator: String,
    /// Write suffix (default `.write`); `null` turns write semantics off.
    pub write_suffix: Option<String>,
    /// Prefix scopes such as `transaction-`.
    pub prefixes: Vec<String>,
    /// Step-up: seconds since `auth_time` after which a scope needs a fresh login.
    pub max_age: Named<u64>,
    /// Step-up: the authentication context classes (`acr`) a scope needs, one of them
    /// (RFC 9470).
    #[serde(skip_serializing_if = "Named::is_empty")]
    pub acr_values: Named<Vec<String>>,
}

impl Default for ScopesDocument {
    fn default() -> Self {
        Self {
            claims: default_scope_claims(),
            separator: default_separator(),
            write_suffix: default_write_suffix(),
            prefixes: Vec::new(),
            max_age: Named::new(),
            acr_values: Named::new(),
        }
    }
}

fn default_scope_claims() -> Vec<String> {
    DEFAULT_SCOPE_CLAIMS.into_iter().map(String::from).collect()
}

fn default_separator() -> String {
    String::from(DEFAULT_SEPARATOR)
}

#[allow(clippy::unnecessary_wraps)]
fn default_write_suffix() -> Option<String> {
    Some(String::from(DEFAULT_WRITE_SUFFIX))
}

/// Role claims and the scopes each role grants.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RolesDocument {
    /// Claims holding roles (default `roles`); a name starting with `/` is a JSON pointer.
    pub claims: Vec<String>,
    /// Role name to the scopes it grants.
    pub map: Named<Vec<String>>,
}

/// One route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteDocument {
    /// Path template: `/api/orders/{id}`, `/api/public/**`.
    pub path: String,
    /// Methods (upper case); absent means every method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// No token needed.
    pub public: bool,
    /// Any valid token, no particular scope (OpenAPI's OAuth requirement with an empty
    /// scope list).
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub authenticated: bool,
    /// The scopes needed. On an MCP route: what a message no rule names needs (absent: a
    /// valid token, no particular scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require: Option<RequirementDocument>,
    /// The route is an MCP (Model Context Protocol) endpoint: its JSON-RPC request bodies
    /// are read and each message is held to the rule for its method and name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpDocument>,
    /// Step-up: the authentication context classes (`acr`) every request of the route
    /// needs, one of them (RFC 9470).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<Vec<String>>,
}

/// The JSON-RPC rules of an MCP endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct McpDocument {
    /// The largest request body read, in bytes (default 1 MiB); a larger one gets 413.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// The upstream checks that the `Mcp-Method` / `Mcp-Name` headers of a 2026-07-28
    /// request say what its body says (every server of that revision must): such requests
    /// are then authorized from the headers, without their bodies being read.
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub trust_mirrored_headers: bool,
    /// The rules, most specific first or in any order: a rule with a `name` or `uri` wins
    /// over one with the method alone.
    pub rules: Vec<McpRuleDocument>,
}

/// One JSON-RPC rule: a method (`tools/call`), optionally a tool or prompt `name` or a
/// resource `uri` template, and the scopes it needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct McpRuleDocument {
    /// The JSON-RPC `method`, e.g. `tools/call`, `prompts/get`, `resources/read`.
    pub method: String,
    /// `params.name` of `tools/call` and `prompts/get`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URI template matched against `params.uri` of `resources/read`,
    /// `resources/subscribe` and `resources/unsubscribe`: `{id}` captures a non-empty run
    /// without `/`, `?` or `#`, usable in bound prefix scopes (`doc-{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The scopes needed.
    pub require: RequirementDocument,
}

/// The body limit of an MCP route when the policy does not say (`mcp.max_body_bytes`).
pub const DEFAULT_MCP_MAX_BODY_BYTES: usize = 1 << 20;

/// A route's scope requirement: `"a"`, `["a", "b"]` (all of), `{"all_of": [...]}` or
/// `{"any_of": [["a"], ["b", "c"]]}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequirementDocument {
    /// Every scope of the list.
    AllOf(Vec<String>),
    /// Every scope of at least one of the lists.
    AnyOf(Vec<Vec<String>>),
}

impl Serialize for RequirementDocument {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::AllOf(list) if list.len() == 1 => serializer.serialize_str(&list[0]),
            Self::AllOf(list) => list.serialize(serializer),
            Self::AnyOf(lists) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("any_of", lists)?;
                map.end()
            }
        }
    }
}

/// What happens to a request no route matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// 403 `insufficient_scope` (the default: fail closed).
    #[default]
    Deny,
    /// Let it through unchecked.
    Allow,
}

/// Claims forwarded to the upstream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForwardDocument {
    /// One request header per claim.
    pub claims: Vec<ForwardClaimDocument>,
    /// A header that receives the effective scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_header: Option<String>,
}

/// One forwarded claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForwardClaimDocument {
    /// Claim name, or a JSON pointer starting with `/`.
    pub claim: String,
    /// Request header name (lower case).
    pub header: String,
}

/// Cross-origin settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorsDocument {
    /// Origins (`scheme://host[:port]`) whose scripts may read denials; `*` for any.
    pub allowed_origins: Vec<String>,
}
