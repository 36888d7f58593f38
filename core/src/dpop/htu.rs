//! The URI a DPoP proof is for (`htu`) and the URI of the request, compared after
//! RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalization (RFC 9449 §4.3):
//! scheme and host in lower case, no default port, percent-encodings in upper case and
//! unreserved characters decoded, dot segments removed, an empty path as `/`. The query
//! and fragment are not part of the comparison.

use alloc::string::String;

/// `uri` normalized, without its query and fragment; `None` when it is not an absolute
/// `http` or `https` URI with a host.
pub(crate) fn normalize_uri(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = split_port(authority)?;
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host.to_ascii_lowercase());
    match port {
        Some(port) if port != default_port && !port.is_empty() => {
            out.push(':');
            out.push_str(port);
        }
        _ => {}
    }
    let path = normalize_percent(path)?;
    let path = remove_dot_segments(&path);
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&path);
    }
    Some(out)
}

/// The URI of a request: `origin` (`scheme://authority`) and the path of `target` (the
/// origin-form request target, `:path`), normalized.
pub(crate) fn request_uri(origin: &str, target: &str) -> Option<String> {
    if !target.starts_with('/') {
        return None;
    }
    let mut uri = String::with_capacity(origin.len() + target.len());
    uri.push_str(origin);
    uri.push_str(target);
    normalize_uri(&uri)
}

/// `host:port` into the host and the port, which must be digits; IPv6 literals in
/// brackets keep their colons.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    Some((host, port))
}

/// Percent-encodings with upper-case hex digits, those of unreserved characters decoded;
/// `None` for a `%` not followed by two hex digits or a byte that is not visible ASCII.
fn normalize_percent(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b == b'%' {
            let hex = bytes.get(at + 1..at + 3)?;
            let value = hex_value(hex[0])? << 4 | hex_value(hex[1])?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push(char::from(hex[0].to_ascii_uppercase()));
                out.push(char::from(hex[1].to_ascii_uppercase()));
            }
            at += 3;
        } else if b.is_ascii_graphic() {
            out.push(char::from(b));
            at += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            let cut = output.rfind('/').unwrap_or(0);
            output.truncate(cut);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..]
                .find('/')
                .map_or(input.len(), |at| at + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_compared_normalized() {
        let cases = [
            ("https://API.Example.com/a/b", "https://api.example.com/a/b"),
            ("HTTPS://api.example.com:443/a", "https://api.example.com/a"),
            ("http://h:80", "http://h/"),
            ("http://h:8080/", "http://h:8080/"),
            ("https://h/a/./b/../c", "https://h/a/c"),
            ("https://h/%7euser/%2fx", "https://h/~user/%2Fx"),
            ("https://h/a%2e%2E/b", "https://h/a../b"),
            ("https://h/%2E%2E/b", "https://h/b"),
            ("https://h/p?q=1#f", "https://h/p"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x"),
            ("https://[::1]:443/x", "https://[::1]/x"),
        ];
        for (uri, normal) in cases {
            assert_eq!(normalize_uri(uri).as_deref(), Some(normal), "{uri}");
        }
        for bad in [
            "ftp://h/x",
            "/relative",
            "https:///x",
            "https://user@h/x",
            "https://h:port/x",
            "https://h/%zz",
            "https://h/%4",
            "https://h/a b",
            "https://[::1/x",
        ] {
            assert_eq!(normalize_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_request_uri_is_its_origin_and_path() {
        assert_eq!(
            request_uri("http://127.0.0.1:8080", "/api/x?page=2").as_deref(),
            Some("http://127.0.0.1:8080/api/x")
        );
        assert_eq!(request_uri("https://h", "*"), None);
    }
}
