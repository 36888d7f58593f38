//! Security schemes and requirements: OAuth 2 and OpenID Connect scopes become scopegate
//! requirements; other schemes (API keys, HTTP Basic, mutual TLS) scopegate cannot check.

use std::collections::BTreeMap;

use serde_json::Value;

use super::refs::resolve;

/// A security scheme, as far as scopegate cares.
pub enum Scheme {
    /// `oauth2`: the scopes its flows declare.
    OAuth2 { scopes: Vec<String> },
    /// `openIdConnect`, with its discovery URL.
    OpenIdConnect { url: String },
    /// Anything else: its `type`.
    Other { kind: String },
}

/// `components.securitySchemes`, by name.
pub fn schemes(doc: &Value) -> Result<BTreeMap<String, Scheme>, String> {
    let mut out = BTreeMap::new();
    let Some(map) = doc.pointer("/components/securitySchemes") else {
        return Ok(out);
    };
    let Some(map) = map.as_object() else {
        return Err("components.securitySchemes: expected an object".into());
    };
    for (name, scheme) in map {
        let (scheme, at) = resolve(doc, scheme, &format!("components.securitySchemes.{name}"))?;
        let kind = scheme
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.type: expected a string"))?;
        let parsed = match kind {
            "oauth2" => {
                let mut scopes = Vec::new();
                if let Some(flows) = scheme.get("flows").and_then(Value::as_object) {
                    for (flow_name, flow) in flows {
                        let Some(flow_scopes) = flow.get("scopes") else {
                            continue;
                        };
                        let flow_scopes = flow_scopes.as_object().ok_or_else(|| {
                            format!("{at}.flows.{flow_name}.scopes: expected an object")
                        })?;
                        for scope in flow_scopes.keys() {
                            if !scopes.contains(scope) {
                                scopes.push(scope.clone());
                            }
                        }
                    }
                }
                Scheme::OAuth2 { scopes }
            }
            "openIdConnect" => Scheme::OpenIdConnect {
                url: scheme
                    .get("openIdConnectUrl")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{at}.openIdConnectUrl: expected a string"))?
                    .to_owned(),
            },
            other => Scheme::Other {
                kind: other.to_owned(),
            },
        };
        out.insert(name.clone(), parsed);
    }
    Ok(out)
}

/// What an operation needs from scopegate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token.
    Public,
    /// Any of these lists of scopes, all of one list.
    Require(Vec<Vec<String>>),
}

/// Why an operation came out as it did, when a user may not expect it.
#[derive(Debug)]
pub enum Why {
    /// No `security` on the operation nor the document.
    NoSecurity,
    /// Only schemes scopegate cannot check (`apiKey`, `http`, ...).
    OtherOnly(Vec<String>),
    /// Alternatives with such schemes were dropped.
    Dropped(Vec<String>),
}

/// The access of one `security` list (the operation's, or the document's default).
pub fn access(
    security: Option<(&Value, String)>,
    schemes: &BTreeMap<String, Scheme>,
) -> Result<(Access, Option<Why>), String> {
    let Some((security, at)) = security else {
        return Ok((Access::Public, Some(Why::NoSecurity)));
    };
    let list = security
        .as_array()
        .ok_or_else(|| format!("{at}: expected a list of security requirement objects"))?;
    let mut anonymous = list.is_empty();
    let mut token_only = false;
    let mut alternatives: Vec<Vec<String>> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for (index, requirement) in list.iter().enumerate() {
        let at = format!("{at}[{index}]");
        let requirement = requirement
            .as_object()
            .ok_or_else(|| format!("{at}: expected a security requirement object"))?;
        if requirement.is_empty() {
            anonymous = true;
        }
        let mut scopes: Vec<String> = Vec::new();
        let mut oauth = false;
        for (name, names) in requirement {
            let scheme = schemes.get(name).ok_or_else(|| {
                format!("{at}.{name}: no security scheme `{name}` in components.securitySchemes")
            })?;
            let names = names
                .as_array()
                .ok_or_else(|| format!("{at}.{name}: expected a list of scopes"))?;
            match scheme {
                Scheme::Other { kind } => {
                    let label = format!("{name} ({kind})");
                    if !others.contains(&label) {
                        others.push(label);
                    }
                }
                Scheme::OAuth2 { .. } | Scheme::OpenIdConnect { .. } => {
                    oauth = true;
                    for (position, scope) in names.iter().enumerate() {
                        let scope = scope
                            .as_str()
                            .ok_or_else(|| format!("{at}.{name}[{position}]: expected a string"))?;
                        if !is_scope(scope) {
                            return Err(format!(
                                "{at}.{name}[{position}]: `{scope}` is not an OAuth scope \
                                 (RFC 6749 section 3.3: printable ASCII, no space, `\"` or `\\`)"
                            ));
                        }
                        if !scopes.iter().any(|s| s == scope) {
                            scopes.push(scope.to_owned());
                        }
                    }
                }
            }
        }
        if oauth && scopes.is_empty() {
            token_only = true;
        } else if oauth && !alternatives.contains(&scopes) {
            alternatives.push(scopes);
        }
    }
    if anonymous {
        return Ok((Access::Public, None));
    }
    if token_only {
        // One alternative of no scopes: any valid token (the policy's `authenticated`).
        return Ok((Access::Require(vec![Vec::new()]), None));
    }
    if alternatives.is_empty() {
        return Ok((Access::Public, Some(Why::OtherOnly(others))));
    }
    let why = (!others.is_empty()).then_some(Why::Dropped(others));
    Ok((Access::Require(alternatives), why))
}

/// RFC 6749 section 3.3 `scope-token`.
pub fn is_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// The issuer an `openIdConnect` scheme names: its discovery URL without
/// `/.well-known/openid-configuration`. `Err` lists several when they differ.
pub fn oidc_issuer(schemes: &BTreeMap<String, Scheme>) -> Result<Option<String>, Vec<String>> {
    let mut issuers: Vec<String> = Vec::new();
    for scheme in schemes.values() {
        if let Scheme::OpenIdConnect { url } = scheme {
            let issuer = url
                .strip_suffix("/.well-known/openid-configuration")
                .unwrap_or(url)
                .trim_end_matches('/')
                .to_owned();
            if !issuers.contains(&issuer) {
                issuers.push(issuer);
            }
        }
    }
    match issuers.len() {
        0 => Ok(None),
        1 => Ok(issuers.pop()),
        _ => Err(issuers),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn fixture() -> BTreeMap<String, Scheme> {
        schemes(&json!({"components": {"securitySchemes": {
            "oauth": {"type": "oauth2", "flows": {"implicit": {"authorizationUrl": "https://a",
                      "scopes": {"read:pets": "", "write:pets": ""}}}},
            "oidc": {"type": "openIdConnect",
                     "openIdConnectUrl": "https://idp.test/.well-known/openid-configuration"},
            "key": {"type": "apiKey", "name": "k", "in": "header"}}}}))
        .unwrap()
    }

    fn of(security: Value) -> (Access, Option<Why>) {
        access(Some((&security, "security".into())), &fixture()).unwrap()
    }

    #[test]
    fn requirements_become_alternatives() {
        let (got, why) = of(json!([{"oauth": ["write:pets", "read:pets"]}, {"oidc": ["x"]}]));
        assert_eq!(
            got,
            Access::Require(vec![
                vec!["write:pets".into(), "read:pets".into()],
                vec!["x".into()]
            ])
        );
        assert!(why.is_none());
        assert_eq!(of(json!([])).0, Access::Public);
        assert_eq!(of(json!([{"oauth": ["a"]}, {}])).0, Access::Public);
        assert!(matches!(
            of(json!([{"key": []}])).1,
            Some(Why::OtherOnly(_))
        ));
        assert_eq!(of(json!([{"oidc": []}])).0, Access::Require(vec![vec![]]));
        assert_eq!(
            of(json!([{"oidc": []}, {"oauth": ["a"]}])).0,
            Access::Require(vec![vec![]])
        );
        assert!(matches!(
            of(json!([{"key": []}, {"oauth": ["a"]}])).1,
            Some(Why::Dropped(_))
        ));
        let err = access(Some((&json!([{"oauth": "a"}]), "s".into())), &fixture()).unwrap_err();
        assert_eq!(err, "s[0].oauth: expected a list of scopes");
        assert_eq!(
            oidc_issuer(&fixture()).unwrap().unwrap(),
            "https://idp.test"
        );
    }
}
