//! Which MCP revision a request follows, what the 2026-07-28 revision adds to the checks,
//! and the JSON-RPC error its clients read when the gateway refuses their traffic.
//!
//! Before 2026-07-28 the `Mcp-Method` / `Mcp-Name` headers are optional mirrors (SEP-2243)
//! and a refusal is an RFC 6750 error body. From 2026-07-28 a request must carry them
//! (`Mcp-Name` for the methods that name a tool, prompt or resource), its body names the
//! revision in `params._meta`, which `MCP-Protocol-Version` must repeat, and a server
//! refuses a mismatch with HTTP 400 and JSON-RPC error `-32020` (`-32022` for a revision it
//! does not support): the gateway answers the same way, so the client's SDK surfaces the
//! gateway's refusal as it would the server's.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use super::message::{decode_header, target_kind, Message, TargetKind};
use super::McpError;
use crate::json::strict;

/// The `MCP-Protocol-Version` values whose rules the gateway knows, oldest first. A
/// request naming another is refused: the gateway cannot tell which of its headers to
/// trust.
pub const SUPPORTED_VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    STATELESS_VERSION,
];

/// [`SUPPORTED_VERSIONS`] as a JSON array.
const SUPPORTED_JSON: &str =
    r#"["2024-11-05","2025-03-26","2025-06-18","2025-11-25","2026-07-28"]"#;

/// The stateless revision: mirrored headers required, refusals as JSON-RPC errors.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// JSON-RPC error code of a header that is missing or disagrees with the body.
pub const HEADER_MISMATCH: i32 = -32020;
/// JSON-RPC error code of an `MCP-Protocol-Version` the receiver does not support.
pub const UNSUPPORTED_VERSION: i32 = -32022;

/// The generation of MCP a request follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Revision {
    /// 2024-11-05 to 2025-11-25 (or no `MCP-Protocol-Version`): sessions, optional mirrors.
    Sessions,
    /// 2026-07-28: stateless, mirrored headers required.
    Stateless,
}

impl Revision {
    /// The revision `MCP-Protocol-Version` names.
    pub(crate) fn of_header(version: Option<&str>) -> Result<Self, McpError> {
        match version.map(trim) {
            None => Ok(Self::Sessions),
            Some(STATELESS_VERSION) => Ok(Self::Stateless),
            Some(known) if SUPPORTED_VERSIONS.contains(&known) => Ok(Self::Sessions),
            Some(_) => Err(McpError::UnsupportedVersion),
        }
    }
}

fn trim(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// What 2026-07-28 asks beyond SEP-2243: a call's body revision is the header's, and a
/// stateless call carries `Mcp-Method` and, when its method names a target, `Mcp-Name`.
pub(crate) fn check_revision(
    revision: Revision,
    header_version: Option<&str>,
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
    messages: &[Message],
) -> Result<(), McpError> {
    for message in messages {
        let Message::Call {
            method, version, ..
        } = message
        else {
            continue;
        };
        if version
            .as_deref()
            .is_some_and(|v| Some(v) != header_version.map(trim))
        {
            return Err(McpError::VersionMismatch);
        }
        if revision == Revision::Stateless
            && (mcp_method.is_none() || (target_kind(method).is_some() && mcp_name.is_none()))
        {
            return Err(McpError::MissingHeader);
        }
    }
    Ok(())
}

/// The one call a 2026-07-28 request makes, as its headers name it: what the gateway
/// authorizes when the upstream checks those headers against the body.
pub(crate) fn call_from_headers(
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
) -> Result<Vec<Message>, McpError> {
    let method = decode_header(mcp_method.ok_or(McpError::MissingHeader)?)?;
    let kind = target_kind(&method);
    let target = match kind {
        None => None,
        Some(_) => Some(decode_header(mcp_name.ok_or(McpError::MissingHeader)?)?),
    };
    let uri = match (kind, &target) {
        (Some(TargetKind::Uri), Some(uri)) => Some(super::uri::normalize_uri(uri)?),
        _ => None,
    };
    Ok(alloc::vec![Message::Call {
        method,
        target,
        uri,
        version: None,
    }])
}

/// The body of a refusal as a 2026-07-28 client reads it: a JSON-RPC error for the
/// request's `id` (`null` when the body was not read, is not one message, or has none).
/// The id is read again here rather than kept from the first reading: refusals are rare,
/// and every message the gateway reads would otherwise carry it.
pub(crate) fn jsonrpc_error(err: McpError, body: Option<&[u8]>, requested: Option<&str>) -> String {
    let id = body
        .and_then(|body| strict::parse(body).ok())
        .and_then(|message| message.get("id").and_then(id_text));
    let id = id.as_deref().unwrap_or("null");
    // Written by hand: the filter links no serializer for `Value`. Descriptions are fixed
    // ASCII text without quotes or backslashes; the codes are negative, their magnitude is
    // written (u64's formatting is linked anyway).
    let mut body = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{{\"code\":-{},\"message\":\"{}\"",
        u64::from(err.jsonrpc_code().unsigned_abs()),
        err.description()
    );
    if err == McpError::UnsupportedVersion {
        body.push_str(",\"data\":{\"supported\":");
        body.push_str(SUPPORTED_JSON);
        body.push_str(",\"requested\":\"");
        // What the client sent, as far as a version can hold: at most 32 printable ASCII
        // characters, quotes and backslashes dropped.
        let requested = requested.map(trim).unwrap_or_default().as_bytes();
        for &byte in requested.iter().take(32) {
            if byte.is_ascii_graphic() && byte != b'"' && byte != b'\\' {
                body.push(char::from(byte));
            }
        }
        body.push_str("\"}");
    }
    body.push_str("}}");
    body
}

/// A JSON-RPC `id` as JSON text, to be echoed in an error: an integer, or a string that
/// needs no escaping (every id an SDK makes). Any other id is not echoed (the error's id is
/// `null`, as for a request whose id cannot be read).
fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::Number(number) => {
            let (sign, magnitude) = match (number.as_u64(), number.as_i64()) {
                (Some(unsigned), _) => ("", unsigned),
                (None, Some(signed)) => ("-", signed.unsigned_abs()),
                (None, None) => return None,
            };
            Some(alloc::format!("{sign}{magnitude}"))
        }
        Value::String(text)
            if !text.contains(|c: char| c.is_control() || c == '"' || c == '\\') =>
        {
            Some(alloc::format!("\"{text}\""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::read_body;

    #[test]
    fn the_supported_versions_in_json_are_the_supported_versions() {
        let listed: Vec<String> = serde_json::from_str(SUPPORTED_JSON).unwrap();
        assert_eq!(listed, SUPPORTED_VERSIONS);
    }

    #[test]
    fn revisions_by_header() {
        assert_eq!(Revision::of_header(None), Ok(Revision::Sessions));
        assert_eq!(
            Revision::of_header(Some("2025-06-18")),
            Ok(Revision::Sessions)
        );
        assert_eq!(
            Revision::of_header(Some(" 2026-07-28")),
            Ok(Revision::Stateless)
        );
        assert_eq!(
            Revision::of_header(Some("2027-01-01")),
            Err(McpError::UnsupportedVersion)
        );
    }

    #[test]
    fn stateless_calls_carry_their_headers_and_revision() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo",
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let messages = read_body(body).unwrap();
        let version = Some("2026-07-28");
        let check = |method, name, version| {
            check_revision(Revision::Stateless, version, method, name, &messages)
        };
        assert_eq!(check(Some("tools/call"), Some("echo"), version), Ok(()));
        assert_eq!(
            check(Some("tools/call"), None, version),
            Err(McpError::MissingHeader)
        );
        assert_eq!(
            check(None, Some("echo"), version),
            Err(McpError::MissingHeader)
        );
        assert_eq!(
            check_revision(
                Revision::Sessions,
                Some("2025-11-25"),
                None,
                None,
                &messages
            ),
            Err(McpError::VersionMismatch)
        );
        assert_eq!(
            jsonrpc_error(McpError::MissingHeader, Some(body), version),
            format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{{\"code\":-32020,\"message\":\"{}\"}}}}",
                McpError::MissingHeader.description()
            )
        );
    }

    #[test]
    fn every_refusal_is_a_json_rpc_error_with_its_description() {
        use McpError::*;
        let all = [
            TooLarge,
            TooDeep,
            NotJson,
            RepeatedKey,
            NotJsonRpc,
            EmptyBatch,
            NoName,
            NoUri,
            HeaderMismatch,
            BadHeaderEncoding,
            UriTooComplex,
            RepeatedHeader,
            MalformedUri,
            MissingHeader,
            VersionMismatch,
            UnsupportedVersion,
        ];
        let body = br#"{"jsonrpc":"2.0","id":"req-\u00e9","method":"ping"}"#;
        for err in all {
            let text = jsonrpc_error(err, Some(body), Some("a\"b\\c"));
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["id"], "req-é");
            assert_eq!(value["error"]["message"], err.description());
            assert_eq!(value["error"]["code"], err.jsonrpc_code());
        }
    }

    #[test]
    fn ids_that_would_need_escaping_are_not_echoed() {
        for (body, id) in [
            (
                &br#"{"jsonrpc":"2.0","id":"a\"b","method":"ping"}"#[..],
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":"a\nb","method":"ping"}"#,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":-9,"method":"ping"}"#,
                Value::from(-9),
            ),
            (
                br#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#,
                Value::from(u64::MAX),
            ),
        ] {
            let text = jsonrpc_error(McpError::NoName, Some(body), None);
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["id"], id, "{text}");
        }
        // A batch, or a body that does not parse, has no one id to echo.
        for body in [
            &br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#[..],
            b"{\"id\":1,",
        ] {
            let text = jsonrpc_error(McpError::NotJson, Some(body), None);
            assert!(text.contains("\"id\":null"), "{text}");
        }
    }

    #[test]
    fn an_unsupported_version_names_the_supported_ones() {
        let body = jsonrpc_error(McpError::UnsupportedVersion, None, Some("2099-01-01"));
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["id"], Value::Null);
        assert_eq!(value["error"]["code"], -32022);
        assert_eq!(value["error"]["data"]["requested"], "2099-01-01");
        assert_eq!(value["error"]["data"]["supported"][4], "2026-07-28");
    }

    #[test]
    fn calls_from_headers() {
        let calls = call_from_headers(Some("tools/call"), Some("=?base64?Z2V0LWVudg==?=")).unwrap();
        assert!(matches!(&calls[..], [Message::Call { target: Some(t), .. }] if t == "get-env"));
        assert_eq!(
            call_from_headers(Some("resources/read"), None),
            Err(McpError::MissingHeader)
        );
        assert_eq!(call_from_headers(None, None), Err(McpError::MissingHeader));
        let read = call_from_headers(Some("resources/read"), Some("file:///a/../b")).unwrap();
        assert!(matches!(&read[..], [Message::Call { uri: Some(u), .. }] if u == "file:///b"));
    }
}
