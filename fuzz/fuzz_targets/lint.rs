//! `lint` and `explain` on arbitrary policy text.
//!
//! Invariants, besides not panicking:
//! - lint's first error is the one `Policy::from_json` reports, and a policy that loads has
//!   no lint errors (`scopegate lint` never disagrees with the gateway about loading);
//! - every finding names a JSON path and a message;
//! - for a policy that loads, `explain` of `GET /` and of each route's path template, with
//!   no token and with a malformed one, decides as `precheck` does, and names the chosen
//!   route among the candidates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::explain::{ExplainOptions, RouteOutcome};
use scopegate_core::lint::{lint, Severity};
use scopegate_core::{Policy, Request};
use scopegate_fuzz::NOW;

/// Routes tried per policy, at most.
const ROUTES: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let findings = lint(text, &[]);
    for finding in &findings {
        assert!(!finding.path.is_empty() && !finding.message.is_empty(), "{finding:?}");
    }
    let first = findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.path, f.message));
    let policy = match Policy::from_json(text) {
        Ok(policy) => {
            assert_eq!(first, None, "lint reports an error for a policy that loads");
            policy
        }
        Err(err) => {
            // A syntax error: lint says `not JSON` at `.` while loading says where.
            if !first.as_deref().is_some_and(|f| f.starts_with(".: not JSON")) {
                assert_eq!(first, Some(err.to_string()));
            }
            return;
        }
    };
    let mut paths = vec![String::from("/")];
    paths.extend((0..ROUTES).filter_map(|i| policy.route_path(i)).map(String::from));
    let options = ExplainOptions {
        keys: None,
        now: NOW,
        policy_changed_at: Some(NOW),
    };
    for path in &paths {
        for authorization in [&[][..], &["Bearer a.b.c"][..]] {
            let mut request = Request::new("GET", path);
            request.authorization = authorization;
            let why = policy.explain(&request, &options);
            assert_eq!(why.decision, policy.precheck(&request, NOW), "{path}");
            let chosen = why
                .routes
                .iter()
                .filter(|r| r.outcome == RouteOutcome::Chosen)
                .count();
            assert!(chosen <= 1, "{path}: {:?}", why.routes);
            for remedy in &why.remedies {
                assert!(!remedy.to_string().is_empty());
            }
        }
    }
});
