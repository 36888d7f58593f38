//! Reading an MCP request body: one JSON-RPC 2.0 message or a batch of them, and what the
//! gateway needs of each (its method and the tool, prompt or resource it names), and the
//! SEP-2243 `Mcp-Method` / `Mcp-Name` headers that must agree with it.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64, Encoding};
use serde_json::Value;

use super::McpError;
use crate::json::depth_within;
use crate::json::strict::{self, StrictError};

/// Where a 2026-07-28 request names its protocol revision in the body.
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// Deepest nesting accepted in an MCP body: tool arguments are nested deeper than tokens.
pub(crate) const MAX_BODY_DEPTH: usize = 64;

/// What a rule is chosen by, for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// A request or notification: its method and, for the methods that name one, the
    /// tool or prompt name or the resource URI.
    Call {
        method: String,
        target: Option<String>,
        /// For a resource URI, its normalized form (RFC 3986), which the rules match: the
        /// `target` itself is what `Mcp-Name` must repeat.
        uri: Option<String>,
        /// `params._meta["io.modelcontextprotocol/protocolVersion"]`: the revision a
        /// 2026-07-28 client says it speaks, which `MCP-Protocol-Version` must repeat.
        version: Option<String>,
    },
    /// A response or error the client sends back to the server (to a sampling or
    /// elicitation request).
    Response,
}

/// How a method names what it acts on.
pub(crate) enum TargetKind {
    Name,
    Uri,
}

/// The `params` member that names the target of `method`, if it has one.
pub(crate) fn target_kind(method: &str) -> Option<TargetKind> {
    match method {
        "tools/call" | "prompts/get" => Some(TargetKind::Name),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some(TargetKind::Uri),
        _ => None,
    }
}

/// The messages of a body, never failing on any byte sequence.
pub(crate) fn read_body(body: &[u8]) -> Result<Vec<Message>, McpError> {
    if !depth_within(body, MAX_BODY_DEPTH) {
        return Err(McpError::TooDeep);
    }
    let value = strict::parse(body).map_err(|err| match err {
        StrictError::RepeatedKey { .. } => McpError::RepeatedKey,
        StrictError::Syntax(_) | StrictError::Trailing(_) => McpError::NotJson,
    })?;
    match value {
        Value::Array(items) if items.is_empty() => Err(McpError::EmptyBatch),
        Value::Array(items) => items.iter().map(read_message).collect(),
        value => Ok(alloc::vec![read_message(&value)?]),
    }
}

fn read_message(value: &Value) -> Result<Message, McpError> {
    let Value::Object(message) = value else {
        return Err(McpError::NotJsonRpc);
    };
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(McpError::NotJsonRpc);
    }
    let Some(method) = message.get("method") else {
        return if message.contains_key("result") || message.contains_key("error") {
            Ok(Message::Response)
        } else {
            Err(McpError::NotJsonRpc)
        };
    };
    let method = method.as_str().ok_or(McpError::NotJsonRpc)?;
    let params = message.get("params");
    if params.is_some_and(|p| !p.is_object() && !p.is_array()) {
        return Err(McpError::NotJsonRpc);
    }
    let target = match target_kind(method) {
        None => None,
        Some(kind) => {
            let (member, error) = match kind {
                TargetKind::Name => ("name", McpError::NoName),
                TargetKind::Uri => ("uri", McpError::NoUri),
            };
            let value = params.and_then(|p| p.get(member)).and_then(Value::as_str);
            Some(String::from(value.ok_or(error)?))
        }
    };
    let uri = match (target_kind(method), &target) {
        (Some(TargetKind::Uri), Some(uri)) => Some(super::uri::normalize_uri(uri)?),
        _ => None,
    };
    let version = params
        .and_then(|p| p.get("_meta"))
        .and_then(|meta| meta.get(PROTOCOL_VERSION_META))
        .and_then(Value::as_str)
        .map(String::from);
    Ok(Message::Call {
        method: String::from(method),
        target,
        uri,
        version,
    })
}

/// SEP-2243: when the client mirrored the method and name into headers, they must say what
/// the body says, or a proxy routing on the headers and the server executing the body
/// would see two different calls.
pub(crate) fn check_headers(
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
    messages: &[Message],
) -> Result<(), McpError> {
    if mcp_method.is_none() && mcp_name.is_none() {
        return Ok(());
    }
    let [Message::Call { method, target, .. }] = messages else {
        return Err(McpError::HeaderMismatch);
    };
    if let Some(header) = mcp_method {
        if decode_header(header)? != *method {
            return Err(McpError::HeaderMismatch);
        }
    }
    if let Some(header) = mcp_name {
        let name = decode_header(header)?;
        if target.as_deref() != Some(name.as_str()) {
            return Err(McpError::HeaderMismatch);
        }
    }
    Ok(())
}

/// A header value as SEP-2243 encodes it: surrounding whitespace trimmed, and
/// `=?base64?…?=` holding the Base64 of the UTF-8 value.
pub(crate) fn decode_header(value: &str) -> Result<String, McpError> {
    let value = value.trim_matches([' ', '\t']);
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Ok(String::from(value));
    };
    let bytes = Base64::decode_vec(encoded).map_err(|_| McpError::BadHeaderEncoding)?;
    String::from_utf8(bytes).map_err(|_| McpError::BadHeaderEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, target: Option<&str>) -> Message {
        let uri = match target_kind(method) {
            Some(TargetKind::Uri) => target.map(|t| super::super::uri::normalize_uri(t).unwrap()),
            _ => None,
        };
        Message::Call {
            method: String::from(method),
            target: target.map(String::from),
            uri,
            version: None,
        }
    }

    #[test]
    fn messages_and_batches() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        assert_eq!(
            read_body(body),
            Ok(alloc::vec![call("tools/call", Some("echo"))])
        );
        let batch = br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},
                        {"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"a://b"}},
                        {"jsonrpc":"2.0","id":9,"result":{}}]"#;
        assert_eq!(
            read_body(batch),
            Ok(alloc::vec![
                call("notifications/initialized", None),
                call("resources/read", Some("a://b")),
                Message::Response
            ])
        );
    }

    #[test]
    fn malformed_bodies_are_refused_with_their_reason() {
        for (body, err) in [
            (&b""[..], McpError::NotJson),
            (b"{\"jsonrpc\":\"2.0\"", McpError::NotJson),
            (b"\xff\xfe", McpError::NotJson),
            (b"[]", McpError::EmptyBatch),
            (b"[1]", McpError::NotJsonRpc),
            (b"{\"method\":\"ping\"}", McpError::NotJsonRpc),
            (
                b"{\"jsonrpc\":\"1.0\",\"method\":\"ping\"}",
                McpError::NotJsonRpc,
            ),
            (b"{\"jsonrpc\":\"2.0\",\"method\":7}", McpError::NotJsonRpc),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1}", McpError::NotJsonRpc),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":3}",
                McpError::NotJsonRpc,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{}}",
                McpError::NoName,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\"}",
                McpError::NoName,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"resources/read\",\"params\":{\"uri\":1}}",
                McpError::NoUri,
            ),
        ] {
            assert_eq!(
                read_body(body),
                Err(err),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Two readings of one body: refused, at any depth.
        for body in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            br#"[{"jsonrpc":"2.0","method":"ping","params":{"x":{"k":1,"k":2}}}]"#,
        ] {
            assert_eq!(read_body(body), Err(McpError::RepeatedKey));
        }
        let deep = [b'['; 100];
        assert_eq!(read_body(&deep), Err(McpError::TooDeep));
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let one = [call("tools/call", Some("get-env"))];
        assert_eq!(check_headers(None, None, &one), Ok(()));
        assert_eq!(
            check_headers(Some(" tools/call "), Some("get-env"), &one),
            Ok(())
        );
        assert_eq!(
            check_headers(Some("tools/call"), Some("echo"), &one),
            Err(McpError::HeaderMismatch)
        );
        assert_eq!(
            check_headers(Some("prompts/get"), None, &one),
            Err(McpError::HeaderMismatch)
        );
        // "get-env" in Base64.
        assert_eq!(
            check_headers(None, Some("=?base64?Z2V0LWVudg==?="), &one),
            Ok(())
        );
        assert_eq!(
            check_headers(None, Some("=?base64?!!?="), &one),
            Err(McpError::BadHeaderEncoding)
        );
        let two = [call("ping", None), call("ping", None)];
        assert_eq!(
            check_headers(Some("ping"), None, &two),
            Err(McpError::HeaderMismatch)
        );
        assert_eq!(
            check_headers(Some("ping"), Some("x"), &two[..1]),
            Err(McpError::HeaderMismatch)
        );
        assert_eq!(
            decode_header("=?base64?SGVsbG8sIOS4lueVjA==?="),
            Ok(String::from("Hello, 世界"))
        );
    }
}
