//! JSON read with one rule more than serde_json's: an object may not repeat a key.
//!
//! Parsers differ on which of two equal keys counts (serde_json keeps the last, others the
//! first), so a document that two readers could understand differently is refused: an MCP
//! body with two `"method"`s, a policy with two `"require"`s.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::path::At;

/// Why a text is not strict JSON.
#[derive(Debug)]
pub(crate) enum StrictError {
    /// Not JSON at all; serde_json's message says where.
    Syntax(serde_json::Error),
    /// Something after the document.
    Trailing(serde_json::Error),
    /// `key` appears twice in the object at `at` (a JSON path).
    RepeatedKey { at: String, key: String },
}

/// Parses `bytes` as one JSON value with no repeated object key.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    let repeated = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let seed = Seed {
        at: At::ROOT,
        repeated: &repeated,
    };
    let value = match seed.deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(err) => {
            return Err(match repeated.into_inner() {
                Some((at, key)) => StrictError::RepeatedKey { at, key },
                None => StrictError::Syntax(err),
            })
        }
    };
    deserializer.end().map_err(StrictError::Trailing)?;
    Ok(value)
}

/// Reads one value at `at`; the first repeated key found is recorded in `repeated`.
struct Seed<'a> {
    at: At<'a>,
    repeated: &'a RefCell<Option<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without repeated object keys")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(String::from(v)))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let at = self.at.index(items.len());
            let seed = Seed {
                at,
                repeated: self.repeated,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = self.at.field(&key);
            let value = map.next_value_seed(Seed {
                at,
                repeated: self.repeated,
            })?;
            if object.contains_key(&key) {
                let at = self.at.to_string();
                self.repeated.replace(Some((at, key)));
                return Err(A::Error::custom("repeated key"));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_with_the_path_of_its_object() {
        let Err(StrictError::RepeatedKey { at, key }) =
            parse(br#"{"routes": [{"path": "/a"}, {"path": "/b", "path": "/c"}]}"#)
        else {
            panic!("a repeated key passed")
        };
        assert_eq!((at.as_str(), key.as_str()), ("routes[1]", "path"));
        assert!(matches!(
            parse(br#"{"a": 1, "a": 1}"#),
            Err(StrictError::RepeatedKey { at, .. }) if at == "."
        ));
    }

    #[test]
    fn the_same_key_in_different_objects_is_fine() {
        let value = parse(br#"{"a": {"x": 1}, "b": [{"x": 2}, {"x": 3}]}"#).unwrap();
        assert_eq!(value["b"][1]["x"], 3);
    }

    #[test]
    fn syntax_and_trailing_text_are_told_apart() {
        assert!(matches!(parse(b"{\"a\": "), Err(StrictError::Syntax(_))));
        assert!(matches!(parse(b"{} {}"), Err(StrictError::Trailing(_))));
        assert!(matches!(parse(b"\xff"), Err(StrictError::Syntax(_))));
    }
}
