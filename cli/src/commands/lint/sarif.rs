//! SARIF 2.1.0 (OASIS), as code-scanning UIs read it: one run, the rules, one result per
//! finding with the file, line and column, and the JSON path as a logical location.

use scopegate_core::lint::{Rule, Severity};
use serde_json::{json, Value};

use super::Located;

/// The SARIF log for the findings of `file`.
pub fn report(file: &str, located: &[Located<'_>]) -> Value {
    let mut rules = vec![json!({
        "id": "error",
        "shortDescription": {"text": "the policy does not compile"},
        "defaultConfiguration": {"level": "error"},
    })];
    rules.extend(Rule::ALL.iter().map(|rule| {
        json!({
            "id": rule.id(),
            "shortDescription": {"text": rule.summary()},
            "helpUri": format!("https://github.com/scopegate/scopegate/blob/main/docs/cli.md#{}", rule.id()),
            "defaultConfiguration": {"level": "warning"},
        })
    }));
    let results: Vec<Value> = located
        .iter()
        .map(|l| {
            let level = match l.finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let rule_index = std::iter::once("error")
                .chain(Rule::ALL.iter().map(|r| r.id()))
                .position(|id| id == l.finding.rule)
                .unwrap_or(0);
            json!({
                "ruleId": l.finding.rule,
                "ruleIndex": rule_index,
                "level": level,
                "message": {"text": format!("{}: {}", l.finding.path, l.finding.message)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": file},
                        "region": {"startLine": l.line, "startColumn": l.column},
                    },
                    "logicalLocations": [{"fullyQualifiedName": l.finding.path, "kind": "member"}],
                }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "scopegate",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/scopegate/scopegate",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
