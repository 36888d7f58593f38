//! MCP (Model Context Protocol) endpoints: scopes per JSON-RPC method, tool, prompt and
//! resource.
//!
//! An MCP server is an OAuth resource server whose operations all arrive as JSON-RPC
//! messages `POST`ed to one path, so a route alone cannot tell `echo` from `get-env`. A
//! route with `mcp` rules has its request bodies read by the gateway (within
//! `max_body_bytes`), and each message is held to the most specific rule for it:
//!
//! 1. a rule for its method and its `params.name` (`tools/call`, `prompts/get`), or one
//!    whose URI template matches its `params.uri` (`resources/read`, `resources/subscribe`,
//!    `resources/unsubscribe`; the template with the most literal text wins);
//! 2. else a rule for its method alone;
//! 3. else the route's own `require`, or, without one, a valid token and no scope.
//!
//! Responses the client sends back to the server, and `GET`, `HEAD` and `DELETE` (the event
//! stream, ending a session: no JSON-RPC body) are held to the route's own `require` too;
//! every other method's body is read, whatever the method. An object that repeats a key is
//! refused: parsers differ on which one counts.
//! A batch needs what each of its messages needs. Anything that is not JSON-RPC 2.0, a
//! body over the limit, or `Mcp-Method` / `Mcp-Name` headers (SEP-2243) that disagree with
//! the body gets a 4xx before any rule is looked at: the gateway fails closed.

mod message;
mod revision;
mod uri;

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

pub(crate) use message::{check_headers, read_body, target_kind, Message, TargetKind};
pub(crate) use revision::{call_from_headers, check_revision, jsonrpc_error, Revision};
pub use revision::{HEADER_MISMATCH, UNSUPPORTED_VERSION};
#[cfg(feature = "fuzzing")]
pub use uri::normalize_uri;
pub(crate) use uri::UriTemplate;

use crate::policy::requirement::{Evaluation, Requirement};
use crate::scope::{ScopeRules, ScopeSet};

/// Why an MCP request body was refused (400, or 413 for [`McpError::TooLarge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McpError {
    /// The body is over the route's `max_body_bytes`.
    TooLarge,
    /// Arrays and objects nest deeper than the gateway reads.
    TooDeep,
    /// The body is not JSON (or is empty).
    NotJson,
    /// An object of the body repeats a key.
    RepeatedKey,
    /// A message is not a JSON-RPC 2.0 request, notification or response.
    NotJsonRpc,
    /// A batch without messages.
    EmptyBatch,
    /// `tools/call` or `prompts/get` without a string `params.name`.
    NoName,
    /// A `resources/…` call without a string `params.uri`.
    NoUri,
    /// `Mcp-Method` or `Mcp-Name` says something else than the body.
    HeaderMismatch,
    /// An `=?base64?…?=` header value that does not decode to UTF-8 text.
    BadHeaderEncoding,
    /// A `params.uri` that takes more than 10,000 steps to match a URI template.
    UriTooComplex,
    /// The same header (`Mcp-Method` or `Mcp-Name`) more than once.
    RepeatedHeader,
    /// A `params.uri` that cannot be normalized (RFC 3986), so no rule could be matched
    /// against what a server reads: no scheme, an encoded `/` or `\`, a `..` above the
    /// root, a malformed escape, or a character a URI cannot hold unencoded.
    MalformedUri,
    /// A 2026-07-28 call without `Mcp-Method`, or without the `Mcp-Name` its method needs.
    MissingHeader,
    /// The body's `params._meta` revision is not the `MCP-Protocol-Version` header's.
    VersionMismatch,
    /// An `MCP-Protocol-Version` that the gateway does not support.
    UnsupportedVersion,
}

impl McpError {
    /// The HTTP status: 413 for a body over the limit, else 400.
    pub const fn status(self) -> u16 {
        match self {
            Self::TooLarge => 413,
            _ => 400,
        }
    }

    /// A fixed description, safe for a `WWW-Authenticate` header.
    pub const fn description(self) -> &'static str {
        match self {
            Self::TooLarge => "The request body is over the limit of this MCP endpoint",
            Self::TooDeep => "The request body nests arrays and objects too deeply",
            Self::NotJson => "The request body is not JSON",
            Self::RepeatedKey => "The request body repeats a key in a JSON object",
            Self::NotJsonRpc => {
                "The request body is not a JSON-RPC 2.0 message or batch of messages"
            }
            Self::EmptyBatch => "The request body is an empty JSON-RPC batch",
            Self::NoName => "The call has no string params.name",
            Self::NoUri => "The call has no string params.uri",
            Self::HeaderMismatch => {
                "The Mcp-Method or Mcp-Name header does not match the request body"
            }
            Self::BadHeaderEncoding => {
                "The Mcp-Method or Mcp-Name header is not valid =?base64?...?= text"
            }
            Self::UriTooComplex => "The call's params.uri is too costly to match",
            Self::RepeatedHeader => "The Mcp-Method or Mcp-Name header is sent more than once",
            Self::MalformedUri => "The call's params.uri cannot be normalized",
            Self::MissingHeader => "The Mcp-Method or Mcp-Name header is missing",
            Self::VersionMismatch => {
                "The MCP-Protocol-Version header does not match the request body"
            }
            Self::UnsupportedVersion => "The MCP-Protocol-Version is not supported",
        }
    }

    /// The JSON-RPC error code a 2026-07-28 client gets: -32020 for mirrored headers,
    /// -32022 for an unsupported version, else the JSON-RPC 2.0 code for the fault (parse
    /// error, invalid request, invalid params).
    pub const fn jsonrpc_code(self) -> i32 {
        match self {
            Self::HeaderMismatch
            | Self::BadHeaderEncoding
            | Self::RepeatedHeader
            | Self::MissingHeader
            | Self::VersionMismatch => HEADER_MISMATCH,
            Self::UnsupportedVersion => UNSUPPORTED_VERSION,
            Self::NotJson | Self::TooDeep | Self::RepeatedKey => -32700,
            Self::TooLarge | Self::NotJsonRpc | Self::EmptyBatch => -32600,
            Self::NoName | Self::NoUri | Self::UriTooComplex | Self::MalformedUri => -32602,
        }
    }
}

impl fmt::Display for McpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// The compiled rules of an MCP route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct McpRoute {
    pub(crate) max_body: usize,
    /// Authorize 2026-07-28 requests from their `Mcp-Method` / `Mcp-Name` headers, which
    /// the upstream checks against the body.
    pub(crate) trust_mirrored_headers: bool,
    /// The route's own `require`; `None`: a valid token is enough.
    pub(crate) default: Option<Requirement>,
    pub(crate) rules: Vec<McpRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct McpRule {
    pub(crate) method: Box<str>,
    pub(crate) target: RuleTarget,
    pub(crate) requirement: Requirement,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RuleTarget {
    Method,
    Name(Box<str>),
    Uri(UriTemplate),
}

/// How a token fares against every message of a body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum McpEvaluation<'r> {
    /// Every message is allowed; the scopes of the alternatives that allowed them.
    Satisfied(Vec<Cow<'r, str>>),
    /// Some message is not: every scope the body needs (the chosen alternative of each
    /// message), and those the token lacks.
    Missing {
        required: Vec<Cow<'r, str>>,
        missing: Vec<Cow<'r, str>>,
    },
    /// A captured value cannot form a bound scope.
    BadParameter,
    /// The body cannot be judged within bounds.
    Refused(McpError),
}

impl McpRoute {
    /// The requirement of one message and, for a URI rule, the values of its captures
    /// (else the route's placeholders apply). `None`: a valid token is enough.
    #[allow(clippy::type_complexity)]
    fn requirement_for<'m>(
        &self,
        message: &'m Message,
    ) -> Result<(Option<&Requirement>, Option<Vec<&'m str>>), McpError> {
        let Message::Call {
            method,
            target,
            uri,
            ..
        } = message
        else {
            return Ok((self.default.as_ref(), None));
        };
        let rules = self.rules.iter().filter(|rule| *rule.method == **method);
        let mut by_method = None;
        let mut by_uri: Option<(&McpRule, &UriTemplate, Vec<&'m str>)> = None;
        for rule in rules {
            match (&rule.target, target.as_deref()) {
                (RuleTarget::Method, _) => by_method = Some(rule),
                (RuleTarget::Name(name), Some(wanted)) if **name == *wanted => {
                    return Ok((Some(&rule.requirement), None))
                }
                (RuleTarget::Uri(template), _) => {
                    let Some(uri) = uri.as_deref() else {
                        continue;
                    };
                    let better = by_uri
                        .as_ref()
                        .is_none_or(|(_, best, _)| template.beats(best));
                    if better {
                        let found = template.matches(uri).map_err(|_| McpError::UriTooComplex)?;
                        if let Some(values) = found {
                            by_uri = Some((rule, template, values));
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some((rule, _, values)) = by_uri {
            return Ok((Some(&rule.requirement), Some(values)));
        }
        Ok(match by_method {
            Some(rule) => (Some(&rule.requirement), None),
            None => (self.default.as_ref(), None),
        })
    }

    /// Holds each message to its rule; `route_params` are the route's placeholder values.
    pub(crate) fn evaluate<'r>(
        &'r self,
        rules: &ScopeRules,
        granted: &ScopeSet,
        messages: &[Message],
        route_params: &[&str],
    ) -> McpEvaluation<'r> {
        let mut required: Vec<Cow<'r, str>> = Vec::new();
        let mut missing: Vec<Cow<'r, str>> = Vec::new();
        for message in messages {
            let (requirement, captures) = match self.requirement_for(message) {
                Ok(found) => found,
                Err(err) => return McpEvaluation::Refused(err),
            };
            let Some(requirement) = requirement else {
                continue;
            };
            let params = captures.as_deref().unwrap_or(route_params);
            match requirement.evaluate(rules, granted, params) {
                Evaluation::BadParameter => return McpEvaluation::BadParameter,
                Evaluation::Satisfied(index) => {
                    extend_unique(&mut required, requirement.rendered(index, rules, params));
                }
                Evaluation::Missing {
                    required: needed,
                    missing: lacking,
                } => {
                    extend_unique(&mut required, needed);
                    extend_unique(&mut missing, lacking);
                }
            }
        }
        if missing.is_empty() {
            McpEvaluation::Satisfied(required)
        } else {
            McpEvaluation::Missing { required, missing }
        }
    }

    /// Every requirement of the route (its own, then each rule's), for `scopes_supported`.
    pub(crate) fn requirements(&self) -> impl Iterator<Item = &Requirement> {
        self.default
            .iter()
            .chain(self.rules.iter().map(|rule| &rule.requirement))
    }
}

fn extend_unique<'r>(into: &mut Vec<Cow<'r, str>>, scopes: Vec<Cow<'r, str>>) {
    for scope in scopes {
        if !into.contains(&scope) {
            into.push(scope);
        }
    }
}
