//! The routes being built: one per path and method, with operations that scopegate cannot
//! tell apart (the same template shape and method) merged into one.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::notes::Notes;
use super::security::Access;

/// How many alternatives a merged requirement may have.
const MAX_ALTERNATIVES: usize = 64;

/// One policy route.
struct Route {
    path: String,
    method: String,
    access: Access,
}

/// A route as written into the policy.
#[derive(Serialize)]
pub struct RouteOut {
    path: String,
    methods: [String; 1],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    public: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    authenticated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    require: Option<Value>,
}

/// The routes, in the order operations were found.
#[derive(Default)]
pub struct Routes {
    list: Vec<Route>,
    by_shape: HashMap<(String, String), usize>,
}

impl Routes {
    /// Adds the route of the operation at `at`, merging it with an earlier one scopegate
    /// would not tell apart: both alternatives' requirements must then hold.
    pub fn add(
        &mut self,
        path: String,
        method: String,
        access: Access,
        at: &str,
        notes: &mut Notes,
    ) -> Result<(), String> {
        let key = (shape(&path), method.clone());
        let Some(&index) = self.by_shape.get(&key) else {
            self.by_shape.insert(key, self.list.len());
            self.list.push(Route {
                path,
                method,
                access,
            });
            return Ok(());
        };
        let earlier = &mut self.list[index];
        let merged = match (&earlier.access, &access) {
            (a, b) if a == b => a.clone(),
            (Access::Public, other) | (other, Access::Public) => other.clone(),
            (Access::Require(a), Access::Require(b)) => {
                let mut alternatives: Vec<Vec<String>> = Vec::new();
                for x in a {
                    for y in b {
                        let mut both = x.clone();
                        both.extend(y.iter().filter(|s| !x.contains(s)).cloned());
                        if !alternatives.contains(&both) {
                            alternatives.push(both);
                        }
                    }
                }
                if alternatives.len() > MAX_ALTERNATIVES {
                    return Err(format!(
                        "{at}: merged with the operation of route {} {}, the requirement has \
                         more than {MAX_ALTERNATIVES} alternatives",
                        earlier.method, earlier.path
                    ));
                }
                Access::Require(alternatives)
            }
        };
        notes.add(
            "operations merged with another",
            format!(
                "{at}: scopegate matches it as the route {} {} of an earlier operation; the \
                 route requires what both require",
                earlier.method, earlier.path
            ),
        );
        earlier.access = merged;
        Ok(())
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Every scope some route requires, in order of first use.
    pub fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for route in &self.list {
            if let Access::Require(alternatives) = &route.access {
                for scope in alternatives.iter().flatten() {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
        }
        scopes
    }

    /// The routes as the policy writes them.
    pub fn into_policy(self) -> Vec<RouteOut> {
        self.list
            .into_iter()
            .map(|route| {
                let (public, authenticated, require) = match route.access {
                    Access::Public => (true, false, None),
                    // An alternative of no scopes: any valid token will do.
                    Access::Require(alternatives) if alternatives.iter().any(Vec::is_empty) => {
                        (false, true, None)
                    }
                    Access::Require(alternatives) => {
                        (false, false, Some(requirement(alternatives)))
                    }
                };
                RouteOut {
                    path: route.path,
                    methods: [route.method],
                    public,
                    authenticated,
                    require,
                }
            })
            .collect()
    }
}

/// The policy's shortest form: `"a"`, `["a", "b"]`, or `{"any_of": [...]}`.
fn requirement(mut alternatives: Vec<Vec<String>>) -> Value {
    if alternatives.len() > 1 {
        return serde_json::json!({ "any_of": alternatives });
    }
    let mut scopes = alternatives.pop().unwrap_or_default();
    if scopes.len() == 1 {
        return Value::String(scopes.remove(0));
    }
    Value::from(scopes)
}

/// `/a/{x}/b` as `/a/{}/b`: placeholder names do not change what a route matches.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
