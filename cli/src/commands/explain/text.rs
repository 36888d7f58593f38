//! The human rendering of an explanation: sections a reader scans top to bottom.

use std::io::Write;

use scopegate_core::explain::{Remedy, Required, RouteOutcome, ScopeOrigin, TokenReport};
use scopegate_core::Decision;

use crate::error::Error;
use crate::keys::KeyOrigin;
use crate::time::{ago, utc};

use super::Report;

struct Style {
    colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn heading(&self, text: &str) -> String {
        self.paint("1", text)
    }
    fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }
    fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }
}

/// Writes the explanation as text; ANSI colour when `colour`.
pub fn render(report: &Report<'_>, colour: bool, out: &mut dyn Write) -> Result<(), Error> {
    let style = Style { colour };
    let why = report.explanation;
    let verdict = match &why.decision {
        Decision::Allow(allow) => style.good(&format!("pass ({})", allow.reason.code())),
        Decision::Serve(_) => style.good("200, the protected resource metadata document"),
        Decision::NeedBody(_) => {
            "an MCP route: give the JSON-RPC body with --body FILE to decide".to_owned()
        }
        Decision::Deny(denial) => {
            let error = denial.error.map_or("no error code", |e| e.as_str());
            style.bad(&format!("{} {error} ({})", denial.status, denial.reason))
        }
    };
    writeln!(out, "{} {} -> {verdict}", report.method, report.target)?;
    if !why.signature_checked {
        writeln!(
            out,
            "  (signature NOT checked: --no-verify; a forged token would read the same)"
        )?;
    } else {
        match report.keys {
            KeyOrigin::Fetched(uri) => {
                writeln!(out, "  (signature checked with keys fetched from {uri})")?
            }
            KeyOrigin::File(file) => {
                writeln!(out, "  (signature checked with the keys in {file})")?
            }
            KeyOrigin::Policy | KeyOrigin::None => {}
        }
    }

    if let Some(answer) = report.answer {
        writeln!(out, "\n{}", style.heading("answer"))?;
        if let Some(status) = answer.status {
            writeln!(out, "  status {status}")?;
        }
        for name in [
            "error",
            "error_description",
            "scope",
            "missing",
            "max_age",
            "acr_values",
            "resource_metadata",
        ] {
            if let Some(value) = answer.param(name) {
                writeln!(out, "  {name}: {value}")?;
            }
        }
    }

    writeln!(out, "\n{}", style.heading("route"))?;
    match &why.path {
        Err(err) => writeln!(out, "  the path cannot be normalized: {err}")?,
        Ok(_) if why.routes.is_empty() => writeln!(out, "  no route's path fits")?,
        Ok(_) => {}
    }
    for route in &why.routes {
        let methods = route
            .methods
            .as_ref()
            .map_or_else(|| "any method".to_owned(), |m| m.join(", "));
        let outcome = match route.outcome {
            RouteOutcome::Chosen => style.good("chosen"),
            RouteOutcome::MethodNotListed => format!("not for {}", report.method),
            RouteOutcome::LessSpecificThan(chosen) => {
                format!("fits, but routes[{chosen}] is more specific")
            }
        };
        writeln!(
            out,
            "  routes[{}] {} [{methods}]: {outcome}",
            route.index, route.path
        )?;
    }

    if let Some(required) = &why.required {
        writeln!(out, "\n{}", style.heading("requires"))?;
        match required {
            Required::Public => writeln!(out, "  nothing: the route is public")?,
            Required::AnyOf(alternatives) => write_alternatives(alternatives, out)?,
            Required::Mcp(alternatives) => {
                writeln!(
                    out,
                    "  an MCP route: each JSON-RPC message its rule's scopes"
                )?;
                write_alternatives(alternatives, out)?;
            }
        }
    }

    if let Some(token) = &why.token {
        write_token(report, token, &style, out)?;
    }

    if let Decision::Deny(denial) = &why.decision {
        if !denial.missing.is_empty() {
            writeln!(out, "\n{}", style.heading("missing"))?;
            for scope in &denial.missing {
                writeln!(out, "  {}", style.bad(scope))?;
            }
        }
    }

    let remedies: Vec<_> = why.remedies.iter().chain(&report.answer_remedies).collect();
    if !remedies.is_empty() {
        writeln!(out, "\n{}", style.heading("to fix"))?;
        for remedy in remedies {
            match remedy {
                Remedy::IssuedBeforePolicy {
                    issued_at,
                    policy_changed_at,
                } => writeln!(
                    out,
                    "  - the token was issued at {} ({}), before the policy changed at {}: a \
                     token cached from before a role or scope change keeps the old scopes; get \
                     a new one",
                    utc(*issued_at),
                    ago(*issued_at, report.now.0),
                    utc(*policy_changed_at)
                )?,
                remedy => writeln!(out, "  - {remedy}")?,
            }
        }
    }
    Ok(())
}

fn write_alternatives(alternatives: &[Vec<String>], out: &mut dyn Write) -> Result<(), Error> {
    // No alternative (an MCP route without `require`) or an empty one (`authenticated`).
    if alternatives.is_empty() || alternatives.iter().any(Vec::is_empty) {
        writeln!(out, "  a valid token, no scope")?;
        return Ok(());
    }
    for (index, alternative) in alternatives.iter().enumerate() {
        let lead = if index == 0 { "  " } else { "  or " };
        writeln!(out, "{lead}{}", alternative.join(" + "))?;
    }
    Ok(())
}

fn write_token(
    report: &Report<'_>,
    token: &TokenReport,
    style: &Style,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let now = report.now.0;
    writeln!(out, "\n{}", style.heading("token"))?;
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let issuer = match token.policy_issuer {
        Some(index) => format!("{} (issuers[{index}])", show(&token.issuer)),
        None => format!("{} (no issuer of the policy)", show(&token.issuer)),
    };
    writeln!(out, "  iss {issuer}")?;
    writeln!(out, "  sub {}", show(&token.subject))?;
    writeln!(
        out,
        "  aud {}",
        if token.audiences.is_empty() {
            "-".to_owned()
        } else {
            token.audiences.join(", ")
        }
    )?;
    writeln!(
        out,
        "  alg {}, kid {}, typ {}",
        show(&token.algorithm),
        show(&token.key_id),
        show(&token.token_type)
    )?;
    for (name, value) in [
        ("iat", token.issued_at),
        ("auth_time", token.auth_time),
        ("nbf", token.not_before),
        ("exp", token.expires),
    ] {
        if let Some(value) = value {
            writeln!(
                out,
                "  {name} {value} = {} ({})",
                utc(value),
                ago(value, now)
            )?;
        }
    }
    if let Some(acr) = &token.acr {
        writeln!(out, "  acr {acr}")?;
    }
    if let Some(err) = &token.error {
        writeln!(out, "  {}", style.bad(&format!("refused: {err}")))?;
    }
    if let Some(fault) = &token.fault {
        writeln!(
            out,
            "  at fault: `{}` is {}, wanted {}",
            fault.name,
            fault.got.as_deref().unwrap_or("absent"),
            fault.wanted
        )?;
    }
    writeln!(out, "\n{}", style.heading("scopes held"))?;
    if token.scopes.is_empty() {
        writeln!(out, "  none")?;
    }
    let width = token
        .scopes
        .iter()
        .map(|s| s.scope.len())
        .max()
        .unwrap_or(0);
    for source in &token.scopes {
        let origin = match &source.origin {
            ScopeOrigin::Claim(claim) => format!("claim `{claim}`"),
            ScopeOrigin::Role { claim, role } => {
                format!("role `{role}` (claim `{claim}`) through roles.map")
            }
        };
        writeln!(out, "  {:width$}  from {origin}", source.scope)?;
    }
    for role in &token.unmapped_roles {
        writeln!(
            out,
            "  (role `{}` in claim `{}` maps to nothing)",
            role.value, role.claim
        )?;
    }
    Ok(())
}
