//! Reading a [`PolicyDocument`] out of a JSON value by hand, every error naming the JSON
//! path of the offending value.
//!
//! serde's derived deserializers would do the same in a few attributes, but with
//! serde_path_to_error they were a third of the browser package's wasm: one copy of the
//! generated code per type and per deserializer. This is one function per type, over
//! serde_json's [`Value`].

mod sections;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::document::Named;
use super::{PolicyDocument, PolicyError};
use crate::json::path::At;
use crate::json::strict::{self, StrictError};

/// Reads the whole document.
pub(crate) fn document(value: &Value) -> Result<PolicyDocument, PolicyError> {
    PolicyDocument::read(value, &At::ROOT)
}

impl PolicyDocument {
    /// Reads a document from its JSON text: one JSON value, no object repeating a key, no
    /// member the format does not have. Errors name the JSON path of the offending value.
    ///
    /// ```
    /// use scopegate_core::PolicyDocument;
    /// let err = PolicyDocument::from_json(r#"{"version": 1, "realm": "api", "issuers": [],
    ///     "routes": [{"path": "/a", "public": "yes"}]}"#).unwrap_err();
    /// assert_eq!(err.to_string(), r#"routes[0].public: invalid type: string "yes", expected a boolean"#);
    /// let err = PolicyDocument::from_json(r#"{"version": 1, "version": 1}"#).unwrap_err();
    /// assert_eq!(err.to_string(), ".: duplicate field `version`");
    /// ```
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        Self::from_value(&Self::parse_strict(text)?)
    }

    /// The JSON value of a document's text, refused if it is not one value or if an object
    /// repeats a key.
    pub(crate) fn parse_strict(text: &str) -> Result<Value, PolicyError> {
        strict::parse(text.as_bytes()).map_err(|err| match err {
            StrictError::RepeatedKey { at, key } => {
                PolicyError::new(at, format!("duplicate field `{key}`"))
            }
            StrictError::Syntax(err) => PolicyError::new(".", format!("not JSON: {err}")),
            // Two documents pasted together, a truncated edit: an error, not ignored.
            StrictError::Trailing(err) => {
                PolicyError::new(".", format!("after the document: {err}"))
            }
        })
    }

    /// Reads a document from a parsed JSON value.
    ///
    /// ```
    /// use scopegate_core::PolicyDocument;
    /// let value = serde_json::json!({"version": 1, "realm": "api", "issuers": [], "routes": []});
    /// let document = PolicyDocument::from_value(&value).unwrap();
    /// assert_eq!(document.scopes.separator, ":");
    /// let err = PolicyDocument::from_value(&serde_json::json!({"version": 1})).unwrap_err();
    /// assert_eq!(err.to_string(), ".: missing field `realm`");
    /// ```
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        document(value)
    }
}

/// A value of the document that can be read at a path.
pub(crate) trait Read: Sized {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError>;
}

/// `invalid type: string "yes", expected a boolean`, the way serde says it.
pub(crate) fn invalid_type(value: &Value, expected: &str, at: &At<'_>) -> PolicyError {
    let found = match value {
        Value::Null => String::from("null"),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        // JSON quoting (serde_json's, already built) rather than Rust's `{:?}`.
        Value::String(_) => format!("string {value}"),
        Value::Array(_) => String::from("an array"),
        Value::Object(_) => String::from("an object"),
    };
    PolicyError::new(
        format!("{at}"),
        format!("invalid type: {found}, expected {expected}"),
    )
}

/// `expected one of `a`, `b`` for an unknown name.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::from("there are none"),
        [only] => format!("expected `{only}`"),
        [first, second] => format!("expected `{first}` or `{second}`"),
        _ => {
            let mut out = String::from("expected one of ");
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push('`');
                out.push_str(name);
                out.push('`');
            }
            out
        }
    }
}

/// A JSON object of the format, with a fixed set of member names.
pub(crate) struct Object<'v, 'a> {
    members: &'v Map<String, Value>,
    at: &'a At<'a>,
}

impl<'v, 'a> Object<'v, 'a> {
    /// `value` as an object with no member outside `fields`.
    pub(crate) fn new(
        value: &'v Value,
        at: &'a At<'a>,
        fields: &[&str],
    ) -> Result<Self, PolicyError> {
        let Value::Object(members) = value else {
            return Err(invalid_type(value, "an object", at));
        };
        if let Some(unknown) = members.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(PolicyError::new(
                format!("{}", at.field(unknown)),
                format!("unknown field `{unknown}`, {}", one_of(fields)),
            ));
        }
        Ok(Self { members, at })
    }

    /// The member `name`, which must be there.
    pub(crate) fn required<T: Read>(&self, name: &str) -> Result<T, PolicyError> {
        match self.members.get(name) {
            Some(value) => T::read(value, &self.at.field(name)),
            None => Err(PolicyError::new(
                format!("{}", self.at),
                format!("missing field `{name}`"),
            )),
        }
    }

    /// The member `name`; absent or `null` is `None`.
    pub(crate) fn optional<T: Read>(&self, name: &str) -> Result<Option<T>, PolicyError> {
        match self.members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::read(value, &self.at.field(name)).map(Some),
        }
    }

    /// The member `name`, or `default` when it is absent (not when it is `null`).
    pub(crate) fn or<T: Read>(&self, name: &str, default: T) -> Result<T, PolicyError> {
        match self.members.get(name) {
            None => Ok(default),
            Some(value) => T::read(value, &self.at.field(name)),
        }
    }

    /// The member `name` as it is, if present and not `null`.
    pub(crate) fn raw(&self, name: &str) -> Option<&'v Value> {
        self.members.get(name).filter(|v| !v.is_null())
    }

    /// The member `name` as it is, if present, `null` included.
    pub(crate) fn get(&self, name: &str) -> Option<&'v Value> {
        self.members.get(name)
    }
}

impl Read for String {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid_type(value, "a string", at)),
        }
    }
}

impl Read for super::document::Secret {
    /// A string, or `{"env": "NAME"}` with a POSIX name (letters, digits, `_`, not starting
    /// with a digit).
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        if let Value::String(secret) = value {
            return Ok(Self::Inline(secret.clone()));
        }
        if !value.is_object() {
            return Err(invalid_type(value, "a string, or {\"env\": \"NAME\"}", at));
        }
        let name: String = Object::new(value, at, &["env"])?.required("env")?;
        let posix = name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !posix {
            return Err(PolicyError::new(
                format!("{}", at.field("env")),
                "must name an environment variable: letters, digits and `_`, not starting with a digit",
            ));
        }
        Ok(Self::Env(name))
    }
}

impl Read for bool {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        value
            .as_bool()
            .ok_or_else(|| invalid_type(value, "a boolean", at))
    }
}

impl Read for u64 {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        match value {
            Value::Number(n) => match n.as_u64() {
                Some(wide) => Ok(wide),
                None if n.is_i64() => Err(PolicyError::new(
                    format!("{at}"),
                    format!("invalid value: integer `{n}`, expected a non-negative integer"),
                )),
                None => Err(invalid_type(value, "a non-negative integer", at)),
            },
            _ => Err(invalid_type(value, "a non-negative integer", at)),
        }
    }
}

/// An integer narrower than `u64`, with `max` its largest value.
fn narrow<T: TryFrom<u64>>(value: &Value, at: &At<'_>, max: u64) -> Result<T, PolicyError> {
    let wide = u64::read(value, at)?;
    T::try_from(wide).map_err(|_| {
        PolicyError::new(
            format!("{at}"),
            format!("invalid value: integer `{wide}`, expected an integer from 0 to {max}"),
        )
    })
}

impl Read for u32 {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        narrow(value, at, u64::from(u32::MAX))
    }
}

impl Read for usize {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        narrow(value, at, usize::MAX as u64)
    }
}

impl<T: Read> Read for Vec<T> {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let Value::Array(items) = value else {
            return Err(invalid_type(value, "an array", at));
        };
        let mut read = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            read.push(T::read(item, &at.index(index))?);
        }
        Ok(read)
    }
}

/// An object whose member names are the user's (`roles.map`, `scopes.max_age`).
impl<T: Read> Read for Named<T> {
    fn read(value: &Value, at: &At<'_>) -> Result<Self, PolicyError> {
        let Value::Object(members) = value else {
            return Err(invalid_type(value, "an object", at));
        };
        // serde_json's objects iterate in name order: every member is pushed at the end.
        let mut named = Named::new();
        for (key, item) in members {
            named.push(key.clone(), T::read(item, &at.key(key))?);
        }
        Ok(named)
    }
}

#[cfg(test)]
mod tests;
