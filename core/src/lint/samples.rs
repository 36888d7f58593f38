//! Probing the route table with sample requests: which route a request a template fits
//! goes to, and whether two templates fit a common request.

use alloc::vec::Vec;

use crate::policy::Policy;
use crate::route::{Methods, RouteTable, RouteTemplate};

/// A placeholder value no literal segment is likely to equal.
const VALUE: &str = "scopegate-lint-sample";
/// Methods probed for a route of every method; the last one is no standard method.
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "LINTPROBE"];

/// The methods a route's requests may have, as probes.
pub(super) fn methods(methods: &Methods) -> Vec<&str> {
    match methods {
        Methods::Any => METHODS.to_vec(),
        Methods::Only(list) => list.iter().map(|m| &**m).collect(),
    }
}

/// The template of the route at `index`.
pub(super) fn template(policy: &Policy, index: usize) -> Option<RouteTemplate> {
    RouteTemplate::parse(&policy.routes.get(index)?.path).ok()
}

/// For the route at `index`: the routes that take each of its sample requests instead of
/// it, or `None` when it takes at least one.
pub(super) fn shadowed_by(policy: &Policy, index: usize) -> Option<Vec<usize>> {
    let template = template(policy, index)?;
    let mut others = Vec::new();
    for method in methods(&policy.routes[index].methods) {
        for path in template.sample_paths(VALUE) {
            let found = policy.table.find(method, &path)?.index;
            if found == index {
                return None;
            }
            if !others.contains(&found) {
                others.push(found);
            }
        }
    }
    Some(others)
}

/// Do the routes at `a` and `b` fit a common request (path and method)?
pub(super) fn overlap(policy: &Policy, a: usize, b: usize) -> bool {
    let (Some(ta), Some(tb)) = (template(policy, a), template(policy, b)) else {
        return false;
    };
    let shared_method = methods(&policy.routes[a].methods)
        .into_iter()
        .any(|m| policy.routes[b].methods.contains(m));
    if !shared_method {
        return false;
    }
    let fits = |template: &RouteTemplate, paths: Vec<alloc::string::String>| {
        let mut table = RouteTable::default();
        table.insert(template, Methods::Any).is_ok()
            && paths.iter().any(|p| table.find("GET", p).is_some())
    };
    fits(&ta, tb.sample_paths(VALUE)) || fits(&tb, ta.sample_paths(VALUE))
}
