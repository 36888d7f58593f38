//! The client credentials of an introspection call, form-encoded as RFC 6749 asks.

use alloc::string::String;

use base64ct::{Base64, Encoding};

/// `application/x-www-form-urlencoded` (the WHATWG URL standard's byte serializer).
pub(crate) fn form_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            }
        }
    }
}

/// The `authorization` value of `client_secret_basic` (RFC 6749 §2.3.1: both parts are
/// form-encoded before they are joined and base64-encoded).
pub(crate) fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let mut credentials = String::new();
    form_encode(client_id, &mut credentials);
    credentials.push(':');
    form_encode(client_secret, &mut credentials);
    let mut value = String::from("Basic ");
    value.push_str(&Base64::encode_string(credentials.as_bytes()));
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_form_encoded_before_base64() {
        // RFC 6749 §2.3.1: "a:b" as a client id is sent as "a%3Ab".
        let value = basic_authorization("a:b", "p w+");
        let decoded = Base64::decode_vec(&value["Basic ".len()..]).unwrap();
        assert_eq!(decoded, b"a%3Ab:p+w%2B");
    }
}
