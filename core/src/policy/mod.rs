//! The policy: loaded once from JSON, compiled into a form that cannot hold an invalid
//! state, then asked for decisions.

mod compile;
pub mod document;
mod named;
mod read;
pub(crate) mod requirement;
pub(crate) mod url;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use document::{PolicyDocument, DEFAULT_SCOPE_CLAIMS, DEFAULT_SEPARATOR, DEFAULT_WRITE_SUFFIX};
pub(crate) use requirement::{Evaluation, Requirement, ScopeTemplate};

use crate::jwks::{Algorithm, KeySet};
use crate::route::RouteTable;
use crate::scope::ScopeRules;

/// Why a policy document was refused. `path` names the offending JSON value the way a
/// reader finds it (`routes[3].path`, `issuers[0].algorithms[1]`).
///
/// ```
/// let err = scopegate_core::Policy::from_json(r#"{"version": 1, "realm": "api",
///     "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
///                  "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///     "routes": [{"path": "/a/**/b", "public": true}]}"#).unwrap_err();
/// assert_eq!(err.path, "routes[0].path");
/// assert!(err.to_string().starts_with("routes[0].path: "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// JSON path of the offending value (`.` for the document itself).
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl PolicyError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

/// A claim name from the policy: a top-level claim, or a JSON pointer when it starts with
/// `/` (`/realm_access/roles`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimName {
    /// A top-level claim such as `scope` or `https://example.com/roles`.
    Top(Box<str>),
    /// A JSON pointer into the claims.
    Pointer(Box<str>),
}

impl ClaimName {
    pub(crate) fn parse(name: &str) -> Self {
        if name.starts_with('/') {
            Self::Pointer(name.into())
        } else {
            Self::Top(name.into())
        }
    }

    /// The name as written in the policy.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Top(name) | Self::Pointer(name) => name,
        }
    }
}

/// Where an issuer's keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Keys written into the policy.
    Inline(KeySet),
    /// Keys the host fetches and hands over in a [`KeyStore`].
    Remote(RemoteJwks),
    /// Only a shared HMAC secret.
    SecretOnly,
    /// Envoy's `jwt_authn` verifies the tokens (its provider holds the keys) and puts their
    /// payload in the request's metadata under this key (`payload_in_metadata`).
    JwtAuthn(Box<str>),
    /// Not read: the core is built without the `server-sections` feature (the browser
    /// package, whose pre-check verifies no signature), which skips keys and secrets.
    #[cfg(not(feature = "server-sections"))]
    Unread,
}

/// A JWKS the host fetches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteJwks {
    /// The URL.
    pub uri: String,
    /// `http` or `https`, the `:scheme` of a fetch.
    pub scheme: &'static str,
    /// Its authority (`host:port`), the `:authority` of a fetch.
    pub authority: Box<str>,
    /// Its path and query, the `:path` of a fetch.
    pub path: Box<str>,
    /// The Envoy cluster that reaches it.
    pub cluster: String,
    /// Seconds between refreshes.
    pub refresh_seconds: u64,
    /// Minimum seconds between re-fetches caused by an unknown `kid`.
    pub refetch_seconds: u64,
}

/// A trusted issuer, compiled.
#[derive(Clone, Debug)]
pub struct Issuer {
    pub(crate) issuer: Box<str>,
    pub(crate) audiences: Vec<Box<str>>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) keys: KeySource,
    pub(crate) hmac_secret: Option<Vec<u8>>,
    pub(crate) leeway: u64,
    pub(crate) token_type: Option<Box<str>>,
    pub(crate) introspection: Option<crate::introspection::rules::IntrospectionRules>,
}

impl Issuer {
    /// Its introspection endpoint, if its tokens are introspected.
    pub fn introspection(&self) -> Option<&crate::introspection::rules::IntrospectionRules> {
        self.introspection.as_ref()
    }

    /// The `iss` value.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where its keys come from.
    pub fn keys(&self) -> &KeySource {
        &self.keys
    }

    /// Accepted algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }
}

/// Whether a route needs a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Public,
    Protected(Requirement),
    /// An MCP endpoint: the body's JSON-RPC messages are held to these rules.
    Mcp(crate::mcp::McpRoute),
}

#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) path: Box<str>,
    /// Kept beside the route table for explanations and lint.
    pub(crate) methods: crate::route::Methods,
    pub(crate) access: Access,
    /// The `acr` values one of which every request needs; empty for none.
    pub(crate) acr_values: Vec<Box<str>>,
}

/// A forwarded header and the claim it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ForwardClaim {
    pub(crate) header: Box<str>,
    pub(crate) claim: ClaimName,
}

/// The RFC 9728 identity of a protected resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    /// The path the resource's requests are under (`/mcp`), without a trailing `/`; empty
    /// for a resource that governs every request (the single `resource` form, or a URL
    /// without a path).
    pub(crate) prefix: Box<str>,
    /// The audiences its tokens carry on the requests it governs; `None`: the issuers'.
    pub(crate) audiences: Option<Vec<Box<str>>>,
    /// Absolute URL of the metadata document, for `resource_metadata`.
    pub(crate) metadata_url: Box<str>,
    /// Path on which the metadata document is served.
    pub(crate) metadata_path: Box<str>,
    /// The document itself, rendered once.
    pub(crate) metadata_document: Box<str>,
}

/// A compiled policy. Build it with [`Policy::from_json`]; ask it with
/// [`Policy::decide`](crate::Policy::decide) or [`Policy::precheck`](crate::Policy::precheck).
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) realm: Box<str>,
    /// At most [`MAX_RESOURCES`]; the order is the document's.
    pub(crate) resources: Vec<Resource>,
    pub(crate) issuers: Vec<Issuer>,
    pub(crate) scope_claims: Vec<ClaimName>,
    pub(crate) role_claims: Vec<ClaimName>,
    /// Role name to the scopes it grants, sorted by role (a vector, not a map: one map
    /// type less compiled into the filter and the browser package).
    pub(crate) role_map: Vec<(Box<str>, Vec<Box<str>>)>,
    pub(crate) rules: ScopeRules,
    pub(crate) max_age: Vec<(Box<str>, u64)>,
    /// Per scope, the `acr` values one of which it needs.
    pub(crate) acr_values: Vec<(Box<str>, Vec<Box<str>>)>,
    pub(crate) routes: Vec<Route>,
    pub(crate) table: RouteTable,
    pub(crate) allow_unmatched: bool,
    pub(crate) forward: Vec<ForwardClaim>,
    pub(crate) forward_scopes: Option<Box<str>>,
    pub(crate) cors_origins: Vec<Box<str>>,
    pub(crate) dry_run: bool,
    pub(crate) token_cache_entries: usize,
    pub(crate) dpop: Option<crate::dpop::DpopRules>,
}

impl Policy {
    /// Parses and compiles a policy document.
    ///
    /// ```
    /// let text = r#"{
    ///   "version": 1,
    ///   "realm": "orders",
    ///   "issuers": [{"issuer": "https://idp.example", "audiences": ["orders"],
    ///                "algorithms": ["HS256"], "hmac_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],
    ///   "routes": [{"path": "/orders/{id}", "methods": ["GET"], "require": "order:item"}]
    /// }"#;
    /// let policy = scopegate_core::Policy::from_json(text).unwrap();
    /// assert_eq!(policy.realm(), "orders");
    /// // Anything after the document is refused.
    /// let err = scopegate_core::Policy::from_json(&format!("{text} {text}")).unwrap_err();
    /// assert_eq!(err.to_string(), ".: after the document: trailing characters at line 7 column 3");
    /// ```
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        Self::compile(&PolicyDocument::from_json(text)?)
    }

    /// Compiles an already parsed document.
    pub fn compile(document: &PolicyDocument) -> Result<Self, PolicyError> {
        compile::compile(document)
    }

    /// As [`Policy::from_json`], with every secret written `{"env": "NAME"}` read from
    /// `env` (the Wasm VM's environment, for a gateway): a variable that is not there is a
    /// load error that names it. Secrets are never part of an error message.
    ///
    /// ```
    /// use scopegate_core::Policy;
    /// let text = r#"{"version": 1, "realm": "orders",
    ///   "issuers": [{"issuer": "https://idp.example", "audiences": ["orders"],
    ///                "algorithms": ["HS256"], "hmac_secret": {"env": "ORDERS_HMAC"}}],
    ///   "routes": [{"path": "/orders", "require": "orders"}]}"#;
    /// let env = |name: &str| {
    ///     (name == "ORDERS_HMAC").then(|| "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA".to_owned())
    /// };
    /// assert!(Policy::from_json_with_env(text, &env).is_ok());
    /// let err = Policy::from_json_with_env(text, &|_: &str| None).unwrap_err();
    /// assert_eq!(err.path, "issuers[0].hmac_secret.env");
    /// assert!(err.message.contains("`ORDERS_HMAC`"), "{err}");
    /// // Without an environment (the browser package) the policy loads, the secret unread.
    /// assert!(Policy::from_json(text).is_ok());
    /// ```
    pub fn from_json_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, PolicyError> {
        let mut document = PolicyDocument::from_json(text)?;
        document.read_secrets(env)?;
        Self::compile(&document)
    }

    /// The realm of every challenge.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The trusted issuers, in policy order.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The scope rules (separator, write suffix, prefixes).
    pub fn scope_rules(&self) -> &ScopeRules {
        &self.rules
    }

    /// Is dry-run mode on (decide and log, but let everything through)?
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// How many verified tokens a gateway keeps (`token_cache.max_entries`, default 1024;
    /// 0 means no cache).
    pub fn token_cache_entries(&self) -> usize {
        self.token_cache_entries
    }

    /// Header names the host must remove from every incoming request before forwarding,
    /// so that a client cannot forge what scopegate forwards.
    pub fn forwarded_headers(&self) -> impl Iterator<Item = &str> {
        self.forward
            .iter()
            .map(|f| &*f.header)
            .chain(self.forward_scopes.as_deref())
    }

    /// The `dpop` section, if DPoP-bound tokens are accepted.
    pub fn dpop(&self) -> Option<&crate::dpop::DpopRules> {
        self.dpop.as_ref()
    }

    /// The path template of the route at `index`, for logs and stats.
    pub fn route_path(&self, index: usize) -> Option<&str> {
        self.routes.get(index).map(|r| &*r.path)
    }

    /// The RFC 9728 protected resource metadata document, if `resource` is set; with
    /// `resources`, the first one's (see [`Policy::resource_metadata_for`]).
    pub fn resource_metadata(&self) -> Option<&str> {
        self.resources.first().map(|r| &*r.metadata_document)
    }

    /// The metadata document of the resource that governs requests to `path` (a request
    /// target; its query is ignored), if any.
    ///
    /// ```
    /// let policy = scopegate_core::Policy::from_json(r#"{
    ///   "version": 1, "realm": "gw",
    ///   "resources": [{"resource": "https://gw.example/mcp"}, {"resource": "https://gw.example/api"}],
    ///   "issuers": [{"issuer": "https://idp.example", "audiences": ["gw"],
    ///                "algorithms": ["HS256"], "hmac_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],
    ///   "routes": [{"path": "/mcp", "require": "mcp"}, {"path": "/api/**", "require": "api"}]
    /// }"#).unwrap();
    /// let mcp = policy.resource_metadata_for("/mcp").unwrap();
    /// assert!(mcp.contains(r#""resource":"https://gw.example/mcp""#));
    /// assert!(mcp.contains(r#""scopes_supported":["mcp"]"#));
    /// assert!(policy.resource_metadata_for("/health").is_none());
    /// ```
    pub fn resource_metadata_for(&self, path: &str) -> Option<&str> {
        let path = crate::path::normalize(path).ok()?;
        self.resource_for(&path)
            .map(|index| &*self.resources[index].metadata_document)
    }

    /// The position of the resource that governs requests to the normalized `path`: the
    /// one with the longest prefix that `path` is, or is under.
    pub(crate) fn resource_for(&self, path: &str) -> Option<usize> {
        self.resources
            .iter()
            .enumerate()
            .filter(|(_, resource)| is_under(path, &resource.prefix))
            .max_by_key(|(_, resource)| resource.prefix.len())
            .map(|(index, _)| index)
    }

    /// The issuer whose introspection endpoint judges `token`, if any: the one issuer
    /// that introspects, for an opaque token, or for a JWT of its own when it introspects
    /// `all` its tokens.
    pub fn introspecting(&self, token: &str) -> Option<usize> {
        use crate::introspection::rules::IntrospectedTokens;
        use crate::token::decode::looks_like_jws;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, issuer)| issuer.introspection.is_some())?;
        if !looks_like_jws(token) {
            return Some(index);
        }
        let all = issuer
            .introspection
            .as_ref()
            .is_some_and(|i| i.tokens() == IntrospectedTokens::All);
        let decoded = if all {
            crate::token::decode::decode(token).ok()?
        } else {
            return None;
        };
        let iss = decoded
            .claims()
            .get("iss")
            .and_then(serde_json::Value::as_str)?;
        (iss == &*issuer.issuer).then_some(index)
    }

    pub(crate) fn issuer_by_name(&self, iss: &str) -> Option<(usize, &Issuer)> {
        self.issuers
            .iter()
            .enumerate()
            .find(|(_, issuer)| *issuer.issuer == *iss)
    }

    pub(crate) fn role_claims(&self) -> impl Iterator<Item = &ClaimName> {
        self.role_claims.iter()
    }

    pub(crate) fn scopes_of_role(&self, role: &str) -> impl Iterator<Item = &str> {
        self.granted_by(role)
            .into_iter()
            .flat_map(|scopes| scopes.iter().map(|s| &**s))
    }

    /// The scopes `role` grants, if the policy maps it.
    pub(crate) fn granted_by(&self, role: &str) -> Option<&[Box<str>]> {
        let at = self
            .role_map
            .binary_search_by(|(r, _)| (**r).cmp(role))
            .ok()?;
        Some(&self.role_map[at].1)
    }

    pub(crate) fn forward_claims(&self) -> impl Iterator<Item = (&str, &ClaimName)> {
        self.forward.iter().map(|f| (&*f.header, &f.claim))
    }
}

/// How many resources one policy may protect: a verified token records which of them its
/// `aud` fits in a bit set.
pub const MAX_RESOURCES: usize = 32;

/// Is `path` the `prefix` itself or below it, segment-wise (`/mcp` is under `/mcp` but
/// `/mcpx` is not)? Every path is under the empty prefix.
pub(crate) fn is_under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.is_empty() || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Keys fetched by the host for issuers with a remote JWKS. Inline keys live in the policy.
///
/// ```
/// use scopegate_core::{KeySet, KeyStore};
/// let mut store = KeyStore::default();
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// store.install(0, KeySet::from_json(jwks).unwrap());
/// assert!(store.get(0).is_some());
/// assert!(store.get(1).is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeyStore {
    sets: Vec<Option<KeySet>>,
}

impl KeyStore {
    /// Installs (or replaces) the keys of the issuer at position `issuer`.
    pub fn install(&mut self, issuer: usize, keys: KeySet) {
        if self.sets.len() <= issuer {
            self.sets.resize(issuer + 1, None);
        }
        self.sets[issuer] = Some(keys);
    }

    /// The fetched keys of the issuer at position `issuer`.
    pub fn get(&self, issuer: usize) -> Option<&KeySet> {
        self.sets.get(issuer).and_then(Option::as_ref)
    }

    /// The keys to verify with for `issuer` of `policy`: inline ones, else fetched ones.
    pub(crate) fn keys_for<'k>(&'k self, policy: &'k Policy, issuer: usize) -> Option<&'k KeySet> {
        match policy.issuers.get(issuer).map(|i| &i.keys) {
            Some(KeySource::Inline(keys)) => Some(keys),
            _ => self.get(issuer),
        }
    }
}
