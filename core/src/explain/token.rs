//! What a token says, where each of its scopes comes from, and the claim at fault when it
//! is refused.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use crate::policy::{ClaimName, Issuer, KeySource, KeyStore, Policy};
use crate::time::UnixTime;
use crate::token::{claim_value, decode, TokenError};

/// The token of an explained request, read without trusting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenReport {
    /// The header's `alg`, `kid` and `typ`.
    pub algorithm: Option<String>,
    /// The header's `kid`.
    pub key_id: Option<String>,
    /// The header's `typ`.
    pub token_type: Option<String>,
    /// The `iss` claim.
    pub issuer: Option<String>,
    /// The policy's issuer of that name, by position.
    pub policy_issuer: Option<usize>,
    /// The `sub` claim.
    pub subject: Option<String>,
    /// The `aud` claim, as a list.
    pub audiences: Vec<String>,
    /// `exp`, `iat`, `nbf`, `auth_time` (seconds since 1970).
    pub expires: Option<u64>,
    /// `iat`.
    pub issued_at: Option<u64>,
    /// `nbf`.
    pub not_before: Option<u64>,
    /// `auth_time`.
    pub auth_time: Option<u64>,
    /// `acr`.
    pub acr: Option<String>,
    /// Why the gateway refuses it, if it does.
    pub error: Option<TokenError>,
    /// The claim or header parameter at fault, with the value got and the one wanted.
    pub fault: Option<Fault>,
    /// Each effective scope with where it came from, in claim order.
    pub scopes: Vec<ScopeSource>,
    /// Roles the token carries in a role claim that `roles.map` does not map.
    pub unmapped_roles: Vec<ClaimValue>,
    /// Values in claims the policy does not read that look like what it looks for: a
    /// required scope, or a role `roles.map` maps. The IdP may put permissions there.
    pub unread: Vec<ClaimValue>,
}

/// A value found in a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimValue {
    /// The claim (a top-level name, or a JSON pointer such as `/realm_access/roles`).
    pub claim: String,
    /// The value.
    pub value: String,
}

/// One effective scope and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSource {
    /// The scope.
    pub scope: String,
    /// Where it came from.
    pub origin: ScopeOrigin,
}

/// Where an effective scope came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeOrigin {
    /// A scope claim (`scopes.claims`).
    Claim(String),
    /// A role in a role claim, through `roles.map`.
    Role {
        /// The role claim.
        claim: String,
        /// The role.
        role: String,
    },
}

/// The part of a refused token at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The claim (`exp`, `aud`, ...) or header parameter (`alg`, `kid`, `typ`).
    pub name: String,
    /// Its value in the token, as JSON; `None` when absent.
    pub got: Option<String>,
    /// What the policy wants.
    pub wanted: String,
}

/// Claims that name a token rather than grant anything: never reported as unread.
const REGISTERED: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "acr",
    "cnf",
    "azp",
    "sid",
];

impl TokenReport {
    /// Reads `token` under `policy`. `error` is the gateway's verdict (with the signature
    /// checked or not, as the caller chose); `required` the scopes the request needs, for
    /// finding them in claims the policy does not read; `path` the normalized request path,
    /// whose resource says which audiences are wanted.
    pub(super) fn read(
        policy: &Policy,
        token: &str,
        error: Option<TokenError>,
        required: &[String],
        keys: Option<&KeyStore>,
        now: UnixTime,
        path: Option<&str>,
    ) -> Self {
        let mut report = Self {
            algorithm: None,
            key_id: None,
            token_type: None,
            issuer: None,
            policy_issuer: None,
            subject: None,
            audiences: Vec::new(),
            expires: None,
            issued_at: None,
            not_before: None,
            auth_time: None,
            acr: None,
            error,
            fault: None,
            scopes: Vec::new(),
            unmapped_roles: Vec::new(),
            unread: Vec::new(),
        };
        let Ok(decoded) = decode(token) else {
            return report;
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
        let header = decoded.header();
        report.algorithm = text(header.get("alg"));
        report.key_id = text(header.get("kid"));
        report.token_type = text(header.get("typ"));
        let claims = decoded.claims();
        report.issuer = text(claims.get("iss"));
        report.policy_issuer = report
            .issuer
            .as_deref()
            .and_then(|iss| policy.issuer_by_name(iss))
            .map(|(index, _)| index);
        report.subject = text(claims.get("sub"));
        report.audiences = match claims.get("aud") {
            Some(Value::String(aud)) => alloc::vec![aud.clone()],
            Some(Value::Array(list)) => list.iter().filter_map(|v| text(Some(v))).collect(),
            _ => Vec::new(),
        };
        let seconds = |name: &str| claims.get(name).and_then(Value::as_u64);
        report.expires = seconds("exp");
        report.issued_at = seconds("iat");
        report.not_before = seconds("nbf");
        report.auth_time = seconds("auth_time");
        report.acr = text(claims.get("acr"));
        report.read_scopes(policy, claims);
        report.find_unread(policy, claims, required);
        report.fault = report.fault(policy, claims, keys, now, path);
        report
    }

    fn read_scopes(&mut self, policy: &Policy, claims: &Value) {
        for claim in &policy.scope_claims {
            for scope in strings(claim_value(claims, claim), true) {
                self.push_scope(scope, ScopeOrigin::Claim(claim.as_str().to_string()));
            }
        }
        for claim in policy.role_claims() {
            for role in strings(claim_value(claims, claim), false) {
                let mut granted = policy.scopes_of_role(role).peekable();
                if granted.peek().is_none() {
                    self.unmapped_roles.push(ClaimValue {
                        claim: claim.as_str().to_string(),
                        value: role.to_string(),
                    });
                }
                for scope in granted {
                    let origin = ScopeOrigin::Role {
                        claim: claim.as_str().to_string(),
                        role: role.to_string(),
                    };
                    self.push_scope(scope, origin);
                }
            }
        }
    }

    fn push_scope(&mut self, scope: &str, origin: ScopeOrigin) {
        let known = self
            .scopes
            .iter()
            .any(|s| s.scope == scope && s.origin == origin);
        if !known {
            self.scopes.push(ScopeSource {
                scope: scope.to_string(),
                origin,
            });
        }
    }

    /// Claims at the top and one object down (`realm_access.roles`, Keycloak's
    /// `resource_access.<client>.roles` two down) that hold a required scope or a mapped
    /// role while the policy reads neither scopes nor roles from them.
    fn find_unread(&mut self, policy: &Policy, claims: &Value, required: &[String]) {
        let Value::Object(top) = claims else {
            return;
        };
        let read: Vec<&str> = policy
            .scope_claims
            .iter()
            .chain(policy.role_claims())
            .map(ClaimName::as_str)
            .collect();
        let visit = |pointer: String, value: &Value, unread: &mut Vec<ClaimValue>| {
            let top_name = pointer.trim_start_matches('/');
            if read.iter().any(|r| *r == pointer || *r == top_name) {
                return;
            }
            for item in strings(Some(value), true) {
                let wanted = required.iter().any(|r| policy.rules.covers(item, r))
                    || policy.granted_by(item).is_some();
                if wanted {
                    unread.push(ClaimValue {
                        claim: if pointer.matches('/').count() == 1 {
                            String::from(top_name)
                        } else {
                            pointer.clone()
                        },
                        value: item.to_string(),
                    });
                }
            }
        };
        let mut unread = Vec::new();
        for (name, value) in top {
            if REGISTERED.contains(&name.as_str()) {
                continue;
            }
            let pointer = format!("/{}", escape_pointer(name));
            visit(pointer.clone(), value, &mut unread);
            let Value::Object(inner) = value else {
                continue;
            };
            for (name, value) in inner {
                let pointer = format!("{pointer}/{}", escape_pointer(name));
                visit(pointer.clone(), value, &mut unread);
                if let Value::Object(deeper) = value {
                    for (name, value) in deeper {
                        visit(
                            format!("{pointer}/{}", escape_pointer(name)),
                            value,
                            &mut unread,
                        );
                    }
                }
            }
        }
        self.unread = unread;
    }

    fn algorithm_fault(&self, issuer: Option<&Issuer>) -> Fault {
        Fault {
            name: String::from("alg"),
            got: self.algorithm.as_ref().map(|a| format!("\"{a}\"")),
            wanted: match issuer {
                Some(issuer) => {
                    let names: Vec<&str> = issuer.algorithms.iter().map(|a| a.name()).collect();
                    format!("one of: {}", names.join(", "))
                }
                None => String::from("an asymmetric algorithm the issuer allows"),
            },
        }
    }

    fn fault(
        &self,
        policy: &Policy,
        claims: &Value,
        keys: Option<&KeyStore>,
        now: UnixTime,
        path: Option<&str>,
    ) -> Option<Fault> {
        let issuer = self.policy_issuer.map(|index| &policy.issuers[index]);
        let json = |name: &str| claims.get(name).map(|v| v.to_string());
        let list = |items: &mut dyn Iterator<Item = &str>| {
            let items: Vec<&str> = items.collect();
            items.join(", ")
        };
        let fault = match self.error.as_ref()? {
            TokenError::Expired { exp, now } => Fault {
                name: String::from("exp"),
                got: Some(exp.to_string()),
                wanted: format!(
                    "a time after {now} (expired {} s before, leeway included)",
                    now.saturating_sub(*exp)
                ),
            },
            TokenError::NotYetValid { nbf } => Fault {
                name: String::from("nbf"),
                got: Some(nbf.to_string()),
                wanted: format!("a time before {} (leeway included)", now.0),
            },
            TokenError::IssuedInFuture { iat } => Fault {
                name: String::from("iat"),
                got: Some(iat.to_string()),
                wanted: format!("a time before {} (leeway included)", now.0),
            },
            TokenError::WrongAudience => audience_fault(policy, issuer, path, json("aud")),
            TokenError::MissingIssuer | TokenError::UntrustedIssuer(_) => Fault {
                name: String::from("iss"),
                got: json("iss"),
                wanted: format!(
                    "one of: {}",
                    list(&mut policy.issuers.iter().map(|i| &*i.issuer))
                ),
            },
            TokenError::UnknownKid { kid, issuer } => Fault {
                name: String::from("kid"),
                got: Some(format!("\"{kid}\"")),
                wanted: match known_kids(policy, *issuer, keys) {
                    Some(kids) if !kids.is_empty() => format!("one of: {}", kids.join(", ")),
                    Some(_) => String::from("a key of the issuer (its keys have no `kid`)"),
                    None => String::from("a key of the issuer, whose key set was not given"),
                },
            },
            TokenError::AlgNone
            | TokenError::UnsupportedAlgorithm(_)
            | TokenError::AlgorithmNotAllowed { .. }
            | TokenError::KeyMismatch { .. } => self.algorithm_fault(issuer),
            TokenError::WrongType => Fault {
                name: String::from("typ"),
                got: self.token_type.as_ref().map(|t| format!("\"{t}\"")),
                wanted: issuer
                    .and_then(|i| i.token_type.as_deref())
                    .map_or_else(|| String::from("an access token type"), String::from),
            },
            TokenError::MissingClaim(name) => Fault {
                name: String::from(*name),
                got: None,
                wanted: String::from("the claim"),
            },
            TokenError::InvalidClaim { claim, expected } => Fault {
                name: claim.clone(),
                got: json(claim),
                wanted: String::from(*expected),
            },
            _ => return None,
        };
        Some(fault)
    }
}

/// The `kid`s of an issuer's keys: inline, or given by the caller; `None` when unknown.
fn known_kids(policy: &Policy, issuer: usize, keys: Option<&KeyStore>) -> Option<Vec<String>> {
    let set = match &policy.issuers.get(issuer)?.keys {
        KeySource::Inline(set) => set,
        KeySource::Remote(_) => keys?.get(issuer)?,
        KeySource::SecretOnly => return Some(Vec::new()),
        // jwt_authn's provider holds them.
        KeySource::JwtAuthn(_) => return None,
        #[cfg(not(feature = "server-sections"))]
        KeySource::Unread => return None,
    };
    Some(
        set.keys()
            .filter_map(|key| key.kid())
            .map(|kid| format!("\"{kid}\""))
            .collect(),
    )
}

/// The strings of a claim value: a string (split at spaces when `split`) or the strings
/// of an array.
fn strings(value: Option<&Value>, split: bool) -> Vec<&str> {
    match value {
        Some(Value::String(text)) if split => text.split(' ').filter(|s| !s.is_empty()).collect(),
        Some(Value::String(text)) => alloc::vec![text.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// RFC 6901: `~` and `/` in a name.
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The audiences of the resource that governs the path, else the issuer's.
fn audience_fault(
    policy: &Policy,
    issuer: Option<&Issuer>,
    path: Option<&str>,
    got: Option<String>,
) -> Fault {
    let resource = path
        .and_then(|path| policy.resource_for(path))
        .and_then(|index| policy.resources[index].audiences.as_ref());
    let wanted: Vec<&str> = match resource {
        Some(audiences) => audiences.iter().map(|a| &**a).collect(),
        None => issuer
            .into_iter()
            .flat_map(|i| i.audiences.iter().map(|a| &**a))
            .collect(),
    };
    Fault {
        name: String::from("aud"),
        got,
        wanted: format!("one of: {}", wanted.join(", ")),
    }
}
