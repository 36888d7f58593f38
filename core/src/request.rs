//! What the gateway reads of a request: its method, target and the few headers a decision
//! depends on, either as text (the browser package, the CLI, the tests) or from the raw
//! header bytes a proxy host hands over ([`RequestReader`]).
//!
//! Header values are bytes on the wire: Envoy accepts any byte from 0x80 to 0xFF in a
//! value (a Latin-1 `User-Agent: Müller`, say). A header the decision needs whose value is
//! not UTF-8 text is recorded as [`Request::unreadable`] and answered with 400
//! `invalid_request`; every other header is never looked at.

use alloc::vec::Vec;
use core::fmt;

/// What the host knows about a request, borrowed from its headers.
///
/// ```
/// use scopegate_core::Request;
/// let auth = ["Bearer eyJ..."];
/// let request = Request::new("GET", "/api/resources?page=2").with_authorization(&auth);
/// assert_eq!(request.method, "GET");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a str,
    /// The request target as received (`:path`), query included.
    pub path: &'a str,
    /// Every `Authorization` header value, in order. Repeated headers and one header whose
    /// values a proxy folded with commas get the same answer.
    pub authorization: &'a [&'a str],
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Access-Control-Request-Method` header (CORS preflight).
    pub access_control_request_method: Option<&'a str>,
    /// The `Mcp-Method` header (SEP-2243), checked against the body on MCP routes.
    pub mcp_method: Option<&'a str>,
    /// The `Mcp-Name` header (SEP-2243), checked against the body on MCP routes.
    pub mcp_name: Option<&'a str>,
    /// The `MCP-Protocol-Version` header: which revision of MCP the request follows, and so
    /// which of its rules hold (2026-07-28: mirrored headers required, JSON-RPC errors).
    pub mcp_protocol_version: Option<&'a str>,
    /// `Mcp-Method`, `Mcp-Name` or `MCP-Protocol-Version` came more than once (an MCP route refuses the request:
    /// which one a server reads is anyone's guess).
    pub mcp_headers_repeated: bool,
    /// Every `DPoP` header value (RFC 9449 proofs), in order.
    pub dpop: &'a [&'a str],
    /// `:scheme`, for the URI a DPoP proof must name.
    pub scheme: Option<&'a str>,
    /// `:authority` (`Host`), for the URI a DPoP proof must name.
    pub authority: Option<&'a str>,
    /// The request body, once the host has read it (only MCP routes ask for it).
    pub body: Option<&'a [u8]>,
    /// The body grew past the route's limit before it was read: the host need not (and a
    /// host that spooled it to a file cannot) hand it over to have it refused with 413.
    pub body_over_limit: bool,
    /// The SHA-256 of the DER client certificate of a mutual-TLS connection, when the host
    /// knows it: what a certificate-bound token (RFC 8705 `cnf.x5t#S256`) is compared with.
    pub client_certificate_sha256: Option<[u8; 32]>,
    /// The first header the decision needs whose value is not UTF-8 text; the request is
    /// then answered with 400 `invalid_request` whatever its route.
    pub unreadable: Option<RequestHeader>,
}

impl<'a> Request<'a> {
    /// A request without credentials.
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            ..Self::default()
        }
    }

    /// Sets the `Authorization` header values.
    #[must_use]
    pub fn with_authorization(mut self, values: &'a [&'a str]) -> Self {
        self.authorization = values;
        self
    }

    /// Sets the `Origin` header.
    #[must_use]
    pub fn with_origin(mut self, origin: &'a str) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Sets the `Access-Control-Request-Method` header.
    #[must_use]
    pub fn with_preflight(mut self, requested_method: &'a str) -> Self {
        self.access_control_request_method = Some(requested_method);
        self
    }

    /// Sets the `DPoP` header values (RFC 9449 proofs).
    #[must_use]
    pub fn with_dpop(mut self, proofs: &'a [&'a str]) -> Self {
        self.dpop = proofs;
        self
    }

    /// Sets `:scheme` and `:authority`, which with the path make the URI a DPoP proof
    /// must name.
    #[must_use]
    pub fn with_scheme_and_authority(mut self, scheme: &'a str, authority: &'a str) -> Self {
        self.scheme = Some(scheme);
        self.authority = Some(authority);
        self
    }

    /// Sets the SHA-256 of the client certificate the connection presented (mutual TLS).
    #[must_use]
    pub fn with_client_certificate_sha256(mut self, digest: [u8; 32]) -> Self {
        self.client_certificate_sha256 = Some(digest);
        self
    }

    /// Sets the request body, which an MCP route's decision reads.
    #[must_use]
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }
}

/// A SHA-256 digest written as 64 hex digits, as Envoy's
/// `connection.sha256_peer_certificate_digest` gives the client certificate's; `None` for
/// anything else.
#[cfg(feature = "gateway")]
pub(crate) fn sha256_from_hex(hex: &[u8]) -> Option<[u8; 32]> {
    fn digit(byte: u8) -> Option<u8> {
        (byte as char)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (out, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        *out = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(digest)
}

/// A request header the gateway reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestHeader {
    /// `:method`.
    Method,
    /// `:path`, the request target.
    Path,
    /// `Authorization`.
    Authorization,
    /// `Origin`.
    Origin,
    /// `Access-Control-Request-Method`.
    AccessControlRequestMethod,
    /// `Mcp-Method`.
    McpMethod,
    /// `Mcp-Name`.
    McpName,
    /// `MCP-Protocol-Version`.
    McpProtocolVersion,
    /// `:scheme`.
    Scheme,
    /// `:authority`.
    Authority,
    /// `DPoP`.
    Dpop,
}

impl RequestHeader {
    /// The header's name as HTTP/2 spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Method => ":method",
            Self::Path => ":path",
            Self::Authorization => "authorization",
            Self::Origin => "origin",
            Self::AccessControlRequestMethod => "access-control-request-method",
            Self::McpMethod => "mcp-method",
            Self::McpName => "mcp-name",
            Self::McpProtocolVersion => "mcp-protocol-version",
            Self::Scheme => ":scheme",
            Self::Authority => ":authority",
            Self::Dpop => "dpop",
        }
    }

    /// A fixed description of a value that is not UTF-8 text, safe for a
    /// `WWW-Authenticate` header.
    pub const fn not_text(self) -> &'static str {
        match self {
            Self::Method => "The request method is not valid UTF-8 text",
            Self::Path => "The request path is not valid UTF-8 text",
            Self::Authorization => "The Authorization header is not valid UTF-8 text",
            Self::Origin => "The Origin header is not valid UTF-8 text",
            Self::AccessControlRequestMethod => {
                "The Access-Control-Request-Method header is not valid UTF-8 text"
            }
            Self::McpMethod => "The Mcp-Method header is not valid UTF-8 text",
            Self::McpName => "The Mcp-Name header is not valid UTF-8 text",
            Self::McpProtocolVersion => "The MCP-Protocol-Version header is not valid UTF-8 text",
            Self::Scheme => "The request scheme is not valid UTF-8 text",
            Self::Authority => "The request authority is not valid UTF-8 text",
            Self::Dpop => "The DPoP header is not valid UTF-8 text",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        // Hosts hand header names in lower case (HTTP/2 and proxy-wasm); the comparison
        // ignores case anyway so that a host that does not cannot slip a header past.
        [
            Self::Method,
            Self::Path,
            Self::Authorization,
            Self::Origin,
            Self::AccessControlRequestMethod,
            Self::McpMethod,
            Self::McpName,
            Self::McpProtocolVersion,
            Self::Scheme,
            Self::Authority,
            Self::Dpop,
        ]
        .into_iter()
        .find(|header| header.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for RequestHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds a [`Request`] from the raw header pairs of a proxy host, never failing on any
/// byte sequence.
///
/// ```
/// use scopegate_core::{RequestHeader, RequestReader};
/// let pairs: [(&[u8], &[u8]); 4] = [
///     (b":method", b"GET"),
///     (b":path", b"/api/public/docs"),
///     (b"user-agent", b"M\xfcller"),       // Latin-1: never read, never a problem
///     (b"authorization", b"Bearer \xff"),  // read, and not text
/// ];
/// let reader = RequestReader::from_pairs(pairs);
/// let request = reader.request();
/// assert_eq!(request.path, "/api/public/docs");
/// assert_eq!(request.unreadable, Some(RequestHeader::Authorization));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequestReader<'a> {
    method: &'a str,
    path: &'a str,
    authorization: Vec<&'a str>,
    origin: Option<&'a str>,
    access_control_request_method: Option<&'a str>,
    mcp_method: Option<&'a str>,
    mcp_name: Option<&'a str>,
    mcp_protocol_version: Option<&'a str>,
    mcp_headers_repeated: bool,
    dpop: Vec<&'a str>,
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    unreadable: Option<RequestHeader>,
}

impl<'a> RequestReader<'a> {
    /// Reads every pair; names are compared without regard to case.
    pub fn from_pairs<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut reader = Self::default();
        for (name, value) in pairs {
            reader.header(name, value);
        }
        reader
    }

    /// Takes one header; headers the decision does not need are ignored.
    pub fn header(&mut self, name: &[u8], value: &'a [u8]) {
        let Some(header) = RequestHeader::from_name(name) else {
            return;
        };
        let Ok(value) = core::str::from_utf8(value) else {
            self.unreadable.get_or_insert(header);
            return;
        };
        match header {
            RequestHeader::Method => self.method = value,
            RequestHeader::Path => self.path = value,
            RequestHeader::Authorization => self.authorization.push(value),
            RequestHeader::Origin => self.origin = Some(value),
            RequestHeader::AccessControlRequestMethod => {
                self.access_control_request_method = Some(value);
            }
            RequestHeader::McpMethod => {
                self.mcp_headers_repeated |= self.mcp_method.replace(value).is_some();
            }
            RequestHeader::McpName => {
                self.mcp_headers_repeated |= self.mcp_name.replace(value).is_some();
            }
            RequestHeader::McpProtocolVersion => {
                let repeated = self.mcp_protocol_version.replace(value).is_some();
                self.mcp_headers_repeated |= repeated;
            }
            RequestHeader::Scheme => self.scheme = Some(value),
            RequestHeader::Authority => self.authority = Some(value),
            RequestHeader::Dpop => self.dpop.push(value),
        }
    }

    /// The request as read so far.
    pub fn request(&self) -> Request<'_> {
        Request {
            method: self.method,
            path: self.path,
            authorization: &self.authorization,
            origin: self.origin,
            access_control_request_method: self.access_control_request_method,
            mcp_method: self.mcp_method,
            mcp_name: self.mcp_name,
            mcp_protocol_version: self.mcp_protocol_version,
            mcp_headers_repeated: self.mcp_headers_repeated,
            dpop: &self.dpop,
            scheme: self.scheme,
            authority: self.authority,
            body: None,
            body_over_limit: false,
            client_certificate_sha256: None,
            unreadable: self.unreadable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "gateway")]
    fn a_certificate_digest_is_64_hex_digits() {
        assert_eq!(sha256_from_hex(&[b'a'; 64]), Some([0xaa; 32]));
        assert_eq!(sha256_from_hex(b"aa"), None);
    }

    #[test]
    fn every_byte_in_every_header_is_read_or_refused() {
        for byte in 0..=255u8 {
            let value = [b'a', byte, b'z'];
            for name in [
                &b":method"[..],
                b":path",
                b"Authorization",
                b"origin",
                b"access-control-request-method",
                b"Mcp-Method",
                b"mcp-name",
                b":scheme",
                b":authority",
                b"DPoP",
                b"user-agent",
            ] {
                let reader = RequestReader::from_pairs([(name, &value[..])]);
                let request = reader.request();
                let needed = RequestHeader::from_name(name).is_some();
                if byte < 0x80 || !needed {
                    assert_eq!(request.unreadable, None, "{name:?} {byte:#x}");
                } else {
                    assert!(request.unreadable.is_some(), "{name:?} {byte:#x}");
                }
            }
        }
    }

    #[test]
    fn the_first_unreadable_header_is_reported_and_repeats_are_kept() {
        let pairs: [(&[u8], &[u8]); 4] = [
            (b"origin", b"\xe9"),
            (b"authorization", b"Bearer a"),
            (b"authorization", b"\xff"),
            (b"authorization", b"Bearer b"),
        ];
        let reader = RequestReader::from_pairs(pairs);
        let request = reader.request();
        assert_eq!(request.unreadable, Some(RequestHeader::Origin));
        assert_eq!(request.authorization, ["Bearer a", "Bearer b"]);
        assert_eq!(request.origin, None);
    }
}
