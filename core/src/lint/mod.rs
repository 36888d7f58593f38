//! Every error of a policy at once, then the warnings a reviewer needs.
//!
//! [`Policy::from_json`] stops at the first error. [`lint`] reports it, sets the
//! offending issuer, resource or route aside and compiles the rest again, so that one run
//! names every broken entry with its JSON path (indices as in the file). Then it reads
//! the compiled policy for what compiles but is probably wrong: see [`Rule`].

mod samples;
mod warnings;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use crate::policy::{Policy, PolicyDocument, PolicyError};

pub use warnings::Rule;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The policy does not compile: no gateway loads it.
    Error,
    /// It compiles, but a human should look.
    Warning,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// `error` for errors; the warning's rule.
    pub rule: &'static str,
    /// JSON path of the value (`routes[3].require`, `.` for the document).
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// At most this many errors are collected: each one costs a compile.
const MAX_ERRORS: usize = 64;
/// The arrays whose entries are set aside after an error, so that the others are checked.
const ENTRIES: [&str; 3] = ["issuers", "resources", "routes"];

/// Lints a policy document. `tokens` are sample access tokens of its issuers (decoded,
/// not verified) for the rules that depend on what tokens carry.
///
/// ```
/// use scopegate_core::lint::{lint, Severity};
/// let findings = lint(r#"{"version": 1, "realm": "api",
///   "issuers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256", "none"],
///                "jwks_uri": "https://idp/jwks", "jwks_cluster": "idp"}],
///   "routes": [{"path": "/a", "require": "a b"}, {"path": "/b", "public": true},
///              {"path": "c", "public": true}]}"#, &[]);
/// let errors: Vec<&str> = findings.iter()
///     .filter(|f| f.severity == Severity::Error).map(|f| f.path.as_str()).collect();
/// assert_eq!(errors, ["issuers[0].algorithms[1]", "routes[0].require", "routes[2].path"]);
/// ```
pub fn lint(text: &str, tokens: &[&str]) -> Vec<Finding> {
    let mut value: Value = match PolicyDocument::parse_strict(text) {
        Ok(value) => value,
        Err(err) => {
            return alloc::vec![Finding {
                severity: Severity::Error,
                rule: "error",
                path: err.path,
                message: err.message,
            }]
        }
    };
    // For each array of ENTRIES, the original index of each entry still in `value`.
    let mut kept: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for name in ENTRIES {
        let len = value
            .get(name)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        kept.insert(name, (0..len).collect());
    }
    let mut findings = Vec::new();
    let mut placeholders = false;
    // The first error as the gateway reports it: from the text, whose member order a
    // `Value` (sorted by name) does not keep.
    let mut pending = Policy::from_json(text).err();
    let compiled = loop {
        let err = match pending.take().map_or_else(|| compile(&value), Err) {
            Ok(compiled) => break Some(compiled),
            Err(err) => err,
        };
        let (entry, rest) = entry_of(&err.path);
        let original = entry.and_then(|(name, index)| Some((name, *kept.get(name)?.get(index)?)));
        let path = match original {
            Some((name, index)) => format!("{name}[{index}]{rest}"),
            None => err.path.clone(),
        };
        findings.push(Finding {
            severity: Severity::Error,
            rule: "error",
            path,
            message: err.message,
        });
        let set_aside = entry
            .filter(|_| findings.len() < MAX_ERRORS)
            .and_then(|(name, index)| {
                let list = value.get_mut(name)?.as_array_mut()?;
                if index >= list.len() {
                    return None;
                }
                if list.len() > 1 {
                    list.remove(index);
                    kept.get_mut(name)?.remove(index);
                } else {
                    // An empty list is an error of its own: the only entry makes way for one
                    // that compiles, and the warnings, which would speak of it, are left out.
                    list[index] = placeholder(name)?;
                    placeholders = true;
                }
                Some(())
            });
        if set_aside.is_none() {
            break None;
        }
    };
    if let (Some((policy, document)), false) = (compiled, placeholders) {
        let original = |name: &str, index: usize| {
            kept.get(name)
                .and_then(|k| k.get(index))
                .copied()
                .unwrap_or(index)
        };
        findings.extend(warnings::warnings(&policy, &document, tokens, &original));
    }
    findings
}

/// An entry that compiles, standing in for the only one of its list.
fn placeholder(name: &str) -> Option<Value> {
    let text = match name {
        "issuers" => {
            r#"{"issuer": "https://lint.invalid", "audiences": ["lint"], "algorithms": ["ES256"],
                "jwks_uri": "https://lint.invalid/jwks", "jwks_cluster": "lint"}"#
        }
        "routes" => r#"{"path": "/scopegate-lint-placeholder", "public": true}"#,
        "resources" => r#"{"resource": "https://lint.invalid"}"#,
        _ => return None,
    };
    serde_json::from_str(text).ok()
}

fn compile(value: &Value) -> Result<(Policy, PolicyDocument), PolicyError> {
    let document = PolicyDocument::from_value(value)?;
    let policy = Policy::compile(&document)?;
    Ok((policy, document))
}

/// `routes[3].require` → (`routes`, 3) and `.require`, for the arrays of [`ENTRIES`].
fn entry_of(path: &str) -> (Option<(&'static str, usize)>, &str) {
    for name in ENTRIES {
        let Some(rest) = path.strip_prefix(name).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        let Some(close) = rest.find(']') else {
            continue;
        };
        if let Ok(index) = rest[..close].parse() {
            return (Some((name, index)), &rest[close + 1..]);
        }
    }
    (None, path)
}
