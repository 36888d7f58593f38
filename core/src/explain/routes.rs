//! Which routes a request's path fits, and why all but one of them were passed over.

use alloc::string::String;
use alloc::vec::Vec;

use crate::policy::Policy;
use crate::route::{Methods, RouteTable, RouteTemplate};

/// A route whose path template fits the request's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteCandidate<'p> {
    /// Its position in the policy's `routes`.
    pub index: usize,
    /// Its path template.
    pub path: &'p str,
    /// Its methods; `None` for every method.
    pub methods: Option<Vec<&'p str>>,
    /// Whether it decided the request, and if not, why.
    pub outcome: RouteOutcome,
}

/// What became of a route that fits the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteOutcome {
    /// It decides the request.
    Chosen,
    /// Its `methods` do not list the request's method.
    MethodNotListed,
    /// It fits, but the route at this position is more specific: literal segments beat
    /// placeholders, placeholders beat `**`, a listed method beats a route for every method.
    LessSpecificThan(usize),
}

/// Every route whose template fits the normalized `path`, in policy order, with the one
/// the route table picks for `method`.
pub(super) fn candidates<'p>(
    policy: &'p Policy,
    method: &str,
    path: &str,
    chosen: Option<usize>,
) -> Vec<RouteCandidate<'p>> {
    let mut found = Vec::new();
    for (index, route) in policy.routes.iter().enumerate() {
        // The template compiled once already; a one-route table answers "does it fit?".
        let Ok(template) = RouteTemplate::parse(&route.path) else {
            continue;
        };
        let mut table = RouteTable::default();
        if table.insert(&template, Methods::Any).is_err() || table.find(method, path).is_none() {
            continue;
        }
        let outcome = match chosen {
            Some(chosen) if chosen == index => RouteOutcome::Chosen,
            _ if !route.methods.contains(method) => RouteOutcome::MethodNotListed,
            Some(chosen) => RouteOutcome::LessSpecificThan(chosen),
            // Fits the path and the method, yet not chosen: cannot happen with one table.
            None => continue,
        };
        let methods = match &route.methods {
            Methods::Any => None,
            Methods::Only(list) => Some(list.iter().map(|m| &**m).collect()),
        };
        found.push(RouteCandidate {
            index,
            path: &route.path,
            methods,
            outcome,
        });
    }
    found
}

/// The alternatives of a route's own requirement for these placeholder values.
pub(super) fn rendered_alternatives(
    policy: &Policy,
    requirement: &crate::policy::Requirement,
    params: &[&str],
) -> Vec<Vec<String>> {
    requirement
        .alternatives
        .iter()
        .map(|alternative| {
            alternative
                .iter()
                .map(|template| template.shown(&policy.rules, params))
                .collect()
        })
        .collect()
}
