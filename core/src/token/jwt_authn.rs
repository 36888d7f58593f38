//! Tokens Envoy's `jwt_authn` filter verified: their payload, which `jwt_authn` puts in the
//! request's dynamic metadata (`payload_in_metadata`), stands in for a signature check.
//!
//! The host hands over the request's whole metadata as Envoy serializes it for
//! `get_property(["metadata"])`: an `envoy.config.core.v3.Metadata` protobuf, a map of filter
//! name to `google.protobuf.Struct`. Read as a whole it keeps every type and survives a
//! `null` claim (a leaf read of the payload does neither). This module reads just enough
//! protobuf for those messages, and compares the payload with the presented token's claims
//! as it reads (nothing is built); anything malformed is no payload, never a pass.

use alloc::vec::Vec;

use serde_json::Value;

/// The filter whose metadata holds the payloads.
pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

/// Deepest nesting of claims read (as the JWT decoder's limit).
const MAX_DEPTH: usize = 16;

/// Whether `metadata` (a serialized `envoy.config.core.v3.Metadata`) holds, under `key` of
/// `jwt_authn`'s metadata, a payload that is exactly `claims`, the presented token's: every
/// claim the same (numbers compared as the doubles protobuf holds them as), none missing,
/// none more. Malformed bytes, no payload or another token's are `false`.
pub fn verified(metadata: &[u8], key: &str, claims: &Value) -> bool {
    // Metadata: field 1, map<string, Struct> filter_metadata.
    let payload = entry_of(metadata, JWT_AUTHN).and_then(|filter| entry_of(filter, key));
    // The payload is a Value holding a Struct (field 5).
    let payload = payload.and_then(|payload| field_of(payload, 5));
    payload.is_some_and(|payload| same_struct(payload, claims, 0))
}

/// The value of the map entry `name` of a Struct's (or Metadata's) field 1.
fn entry_of<'b>(message: &'b [u8], name: &str) -> Option<&'b [u8]> {
    let mut reader = Reader(message);
    while !reader.0.is_empty() {
        match reader.key()? {
            (1, 2) => {
                let (key, value) = map_entry(reader.bytes()?)?;
                if key == name {
                    return Some(value);
                }
            }
            (_, wire) => reader.skip(wire)?,
        }
    }
    None
}

/// The last length-delimited field `wanted` of a message.
fn field_of(message: &[u8], wanted: u64) -> Option<&[u8]> {
    let mut reader = Reader(message);
    let mut found = None;
    while !reader.0.is_empty() {
        match reader.key()? {
            (field, 2) if field == wanted => found = Some(reader.bytes()?),
            (_, wire) => reader.skip(wire)?,
        }
    }
    found
}

/// A Struct (map<string, Value> at field 1) that is exactly `claims`, an object.
fn same_struct(bytes: &[u8], claims: &Value, depth: usize) -> bool {
    let Value::Object(claims) = claims else {
        return false;
    };
    let mut reader = Reader(bytes);
    // Each claim once: a repeated key must not stand in for a missing one.
    let mut seen: Vec<&str> = Vec::with_capacity(claims.len());
    while !reader.0.is_empty() {
        let same = match reader.key() {
            Some((1, 2)) => reader
                .bytes()
                .and_then(map_entry)
                .is_some_and(|(key, value)| {
                    let first = !seen.contains(&key);
                    seen.push(key);
                    first
                        && claims
                            .get(key)
                            .is_some_and(|claim| same_value(value, claim, depth + 1))
                }),
            Some((_, wire)) => reader.skip(wire).is_some(),
            None => false,
        };
        if !same {
            return false;
        }
    }
    seen.len() == claims.len()
}

/// A `google.protobuf.Value` that is `claim`: null (1), number (2, a double), string (3),
/// bool (4), struct (5), list (6, a ListValue of Values at field 1).
fn same_value(bytes: &[u8], claim: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let mut reader = Reader(bytes);
    let Some(kind) = reader.key() else {
        return false;
    };
    let same = match (kind, claim) {
        ((1, 0), Value::Null) => reader.varint().is_some(),
        ((2, 1), Value::Number(n)) => reader
            .fixed64()
            .is_some_and(|b| n.as_f64() == Some(f64::from_le_bytes(b))),
        ((3, 2), Value::String(text)) => reader.bytes() == Some(text.as_bytes()),
        ((4, 0), Value::Bool(b)) => reader.varint().map(|v| v != 0) == Some(*b),
        ((5, 2), Value::Object(_)) => reader
            .bytes()
            .is_some_and(|inner| same_struct(inner, claim, depth)),
        ((6, 2), Value::Array(items)) => reader.bytes().is_some_and(|list| {
            let mut list = Reader(list);
            let mut items = items.iter();
            while !list.0.is_empty() {
                let item = match list.key() {
                    Some((1, 2)) => list.bytes(),
                    _ => None,
                };
                let same = item
                    .zip(items.next())
                    .is_some_and(|(item, claim)| same_value(item, claim, depth + 1));
                if !same {
                    return false;
                }
            }
            items.next().is_none()
        }),
        _ => false,
    };
    // One kind per Value: anything after it is not a Value protobuf writes.
    same && reader.0.is_empty()
}

/// A map entry message: key (1, string) and value (2, bytes).
fn map_entry(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (mut key, mut value) = ("", &[][..]);
    let mut reader = Reader(bytes);
    while !reader.0.is_empty() {
        match reader.key()? {
            (1, 2) => key = core::str::from_utf8(reader.bytes()?).ok()?,
            (2, 2) => value = reader.bytes()?,
            (_, wire) => reader.skip(wire)?,
        }
    }
    Some((key, value))
}

/// Protobuf's wire format, as far as these messages need it.
struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn key(&mut self) -> Option<(u64, u64)> {
        let key = self.varint()?;
        Some((key >> 3, key & 7))
    }

    fn bytes(&mut self) -> Option<&'b [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(bytes)
    }

    fn fixed64(&mut self) -> Option<[u8; 8]> {
        let (bytes, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(*bytes)
    }

    fn skip(&mut self, wire: u64) -> Option<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.fixed64().map(drop),
            2 => self.bytes().map(drop),
            5 => {
                self.0 = self.0.get(4..)?;
                Some(())
            }
            _ => None,
        }
    }
}

/// The metadata Envoy hands over, written from JSON payloads: for the tests and the
/// benchmark of this mode in V8 (`bench/`), never for a request.
#[cfg(any(test, feature = "fuzzing"))]
pub mod encode {
    use alloc::vec::Vec;

    use serde_json::Value;

    fn field(number: u64, wire: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = varint((number << 3) | wire);
        if wire == 2 {
            out.extend(varint(payload.len() as u64));
        }
        out.extend_from_slice(payload);
        out
    }

    fn varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// A map entry (key at field 1, value at field 2).
    pub fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = field(1, 2, key.as_bytes());
        out.extend(field(2, 2, value));
        out
    }

    /// A length-delimited field of a message.
    pub fn message_field(number: u64, payload: &[u8]) -> Vec<u8> {
        field(number, 2, payload)
    }

    /// A `google.protobuf.Value`.
    pub fn value(json: &Value) -> Vec<u8> {
        match json {
            Value::Null => field(1, 0, &[0]),
            Value::Bool(b) => field(4, 0, &[u8::from(*b)]),
            Value::Number(n) => field(2, 1, &n.as_f64().unwrap_or(f64::NAN).to_le_bytes()),
            Value::String(s) => field(3, 2, s.as_bytes()),
            Value::Array(items) => {
                let list: Vec<u8> = items.iter().flat_map(|i| field(1, 2, &value(i))).collect();
                field(6, 2, &list)
            }
            Value::Object(_) => field(5, 2, &structure(json)),
        }
    }

    /// A `google.protobuf.Struct` of an object's members (nothing of anything else).
    pub fn structure(json: &Value) -> Vec<u8> {
        let Value::Object(members) = json else {
            return Vec::new();
        };
        members
            .iter()
            .flat_map(|(k, v)| field(1, 2, &entry(k, &value(v))))
            .collect()
    }

    /// An `envoy.config.core.v3.Metadata` whose `filter` holds `payloads` (an object of
    /// metadata keys to payloads), as Envoy serializes it for `get_property(["metadata"])`.
    pub fn metadata(filter: &str, payloads: &Value) -> Vec<u8> {
        field(1, 2, &entry(filter, &structure(payloads)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::encode::*;
    use super::*;

    #[test]
    fn a_payload_is_verified_with_every_type() {
        let claims = serde_json::json!({"iss": "https://idp", "exp": 1767225600, "scope": "a b",
            "roles": ["x", "y"], "cnf": {"jkt": "abc"}, "admin": true, "nothing": null,
            "ratio": 0.5});
        let bytes = metadata(JWT_AUTHN, &serde_json::json!({"payload": claims}));
        assert!(verified(&bytes, "payload", &claims));
        assert!(!verified(&bytes, "other", &claims));
        let elsewhere = metadata(
            "envoy.filters.http.lua",
            &serde_json::json!({"payload": claims}),
        );
        assert!(!verified(&elsewhere, "payload", &claims));
    }

    #[test]
    fn another_tokens_claims_are_not_verified() {
        let token = serde_json::json!({"sub": "alice", "exp": 5, "roles": ["a"]});
        let others = [
            serde_json::json!({"sub": "bob", "exp": 5, "roles": ["a"]}),
            serde_json::json!({"sub": "alice", "roles": ["a"]}),
            serde_json::json!({"sub": "alice", "exp": 5, "roles": ["a"], "x": 1}),
            serde_json::json!({"sub": "alice", "exp": 5, "roles": ["a", "b"]}),
            serde_json::json!({"sub": "alice", "exp": 5, "roles": []}),
            serde_json::json!({"sub": "alice", "exp": "5", "roles": ["a"]}),
        ];
        for other in others {
            let bytes = metadata(JWT_AUTHN, &serde_json::json!({ "payload": other }));
            assert!(!verified(&bytes, "payload", &token), "{other}");
        }
        let same = metadata(
            JWT_AUTHN,
            &serde_json::json!({"payload": {"exp": 5.0, "sub": "alice", "roles": ["a"]}}),
        );
        assert!(verified(&same, "payload", &token));
    }

    #[test]
    fn a_key_twice_does_not_stand_in_for_a_missing_one() {
        let sub = entry("sub", &value(&serde_json::json!("alice")));
        let twice: Vec<u8> = [message_field(1, &sub), message_field(1, &sub)].concat();
        let payload = entry("payload", &message_field(5, &twice));
        let bytes = message_field(1, &entry(JWT_AUTHN, &message_field(1, &payload)));
        let claims = serde_json::json!({"sub": "alice", "exp": 5});
        assert!(!verified(&bytes, "payload", &claims));
    }

    #[test]
    fn truncated_or_deep_bytes_are_not_verified() {
        let claims = serde_json::json!({"a": {"b": 1}});
        let bytes = metadata(JWT_AUTHN, &serde_json::json!({"payload": claims}));
        for cut in 0..bytes.len() {
            assert!(!verified(&bytes[..cut], "payload", &claims), "cut at {cut}");
        }
        let mut deep = serde_json::json!(1);
        for _ in 0..40 {
            deep = serde_json::json!({ "d": deep });
        }
        let bytes = metadata(JWT_AUTHN, &serde_json::json!({ "payload": deep }));
        assert!(!verified(&bytes, "payload", &deep));
        assert!(!verified(
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
            "payload",
            &claims
        ));
    }

    #[test]
    fn no_metadata_is_not_verified() {
        use crate::token::jwt_authn::verified;
        let claims = serde_json::json!({"sub": "alice"});
        // No metadata, or bytes that are not a message: not verified.
        assert!(!verified(&[], "payload", &claims));
        assert!(!verified(&[0xff, 0xff], "payload", &claims));
    }
}
