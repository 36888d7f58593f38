//! [`Named`]: the objects of a policy whose member names are the user's.

use alloc::string::String;
use alloc::vec::Vec;
use core::slice;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// An object whose member names are the user's (`roles.map`, `scopes.max_age`,
/// `scopes.acr_values`): its members sorted by name, each name once.
///
/// A sorted vector rather than a `BTreeMap`: these are read once and looked up rarely, and
/// every map type costs the filter and the browser package a copy of the B-tree code.
///
/// ```
/// use scopegate_core::document::Named;
/// let roles: Named<u64> = [("b".to_string(), 2), ("a".to_string(), 1)].into_iter().collect();
/// assert_eq!(roles.get("b"), Some(&2));
/// assert_eq!(roles.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(serde_json::to_string(&roles).unwrap(), r#"{"a":1,"b":2}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named<T>(Vec<(String, T)>);

impl<T> Default for Named<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> Named<T> {
    /// No members.
    pub fn new() -> Self {
        Self::default()
    }

    /// The member `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        let at = self
            .0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        Some(&self.0[at].1)
    }

    /// The members in name order.
    pub fn iter(&self) -> Iter<'_, T> {
        self.0.iter().map(|(name, value)| (name, value))
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No members?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a member from a source already sorted by name (a `serde_json` object), or
    /// replaces one; out of order, the member is put in its place.
    pub(crate) fn push(&mut self, name: String, value: T) {
        match self.0.last() {
            Some((last, _)) if *last >= name => {
                match self.0.binary_search_by(|(n, _)| n.cmp(&name)) {
                    Ok(at) => self.0[at].1 = value,
                    Err(at) => self.0.insert(at, (name, value)),
                }
            }
            _ => self.0.push((name, value)),
        }
    }
}

/// The members of a [`Named`], in name order.
pub type Iter<'a, T> =
    core::iter::Map<slice::Iter<'a, (String, T)>, fn(&(String, T)) -> (&String, &T)>;

impl<'a, T> IntoIterator for &'a Named<T> {
    type Item = (&'a String, &'a T);
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> FromIterator<(String, T)> for Named<T> {
    fn from_iter<I: IntoIterator<Item = (String, T)>>(members: I) -> Self {
        let mut named = Self::new();
        for (name, value) in members {
            named.push(name, value);
        }
        named
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_stay_sorted_and_unique_whatever_the_order() {
        let named: Named<u8> = [("c", 3), ("a", 1), ("b", 2), ("a", 9)]
            .into_iter()
            .map(|(n, v)| (String::from(n), v))
            .collect();
        let members: Vec<(&str, u8)> = named.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(members, [("a", 9), ("b", 2), ("c", 3)]);
        assert_eq!(named.get("c"), Some(&3));
        assert_eq!(named.get("d"), None);
    }
}
