//! What to do about a denial, in the terms of the RBAC troubleshooting guide: the role
//! that was never assigned or never mapped, the scope never requested, the claim the IdP
//! used instead, the token issued before a change.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::decision::{Denial, DenyReason};
use crate::policy::Policy;
use crate::scope::ScopeRequest;
use crate::time::UnixTime;
use crate::token::TokenError;

use super::token::{ScopeOrigin, TokenReport};

/// One thing that would change the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// Send the access token (`Authorization: Bearer …`).
    SendToken,
    /// The token is past repair (expired, for another audience, from another issuer, not
    /// yet valid …): get a new one.
    NewToken {
        /// Why, in a few words.
        why: &'static str,
    },
    /// The issuer's key set has no key with the token's `kid`: the token comes from another
    /// environment, or the keys given are stale.
    FetchKeys,
    /// The token holds missing scopes in a claim the policy does not read: add the claim to
    /// `scopes.claims` (or `roles.claims`), or make the IdP put them in a read claim.
    ReadClaim {
        /// The claim.
        claim: String,
        /// The values found there.
        values: Vec<String>,
    },
    /// `roles.map` grants this missing scope to these roles: assign the user one of them.
    AssignRole {
        /// The missing scope.
        scope: String,
        /// Roles whose mapped scopes cover it.
        roles: Vec<String>,
    },
    /// No role grants this missing scope: the client must ask for it in its authorization
    /// request, and the IdP must let the client have it.
    NoRoleGrants {
        /// The missing scope.
        scope: String,
    },
    /// The token's roles that `roles.map` does not map: the role was never mapped.
    MapRole {
        /// The role claim.
        claim: String,
        /// The role.
        role: String,
    },
    /// The next authorization request's `scope`: every scope held plus the missing ones.
    RequestScopes(ScopeRequest),
    /// The token was issued before the policy last changed: a token minted before a role
    /// or scope change carries the old scopes until it is renewed.
    IssuedBeforePolicy {
        /// The token's `iat`.
        issued_at: u64,
        /// When the policy changed.
        policy_changed_at: u64,
    },
    /// Authenticate again (RFC 9470): with `max_age` and, if any, one of the `acr_values`.
    Reauthenticate {
        /// The `max_age` to send.
        max_age: Option<u64>,
        /// The `acr_values` to send, one of which must be met.
        acr_values: Vec<String>,
    },
    /// No route matches and the policy denies unmatched requests: add a route.
    AddRoute,
}

impl Remedy {
    /// A stable name for tools: `assign_role`, `request_scopes`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Self::SendToken => "send_token",
            Self::NewToken { .. } => "new_token",
            Self::FetchKeys => "fetch_keys",
            Self::ReadClaim { .. } => "read_claim",
            Self::AssignRole { .. } => "assign_role",
            Self::NoRoleGrants { .. } => "no_role_grants",
            Self::MapRole { .. } => "map_role",
            Self::RequestScopes(_) => "request_scopes",
            Self::IssuedBeforePolicy { .. } => "issued_before_policy",
            Self::Reauthenticate { .. } => "reauthenticate",
            Self::AddRoute => "add_route",
        }
    }
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SendToken => f.write_str("send an access token: `Authorization: Bearer <token>`"),
            Self::NewToken { why } => write!(f, "get a new token: {why}"),
            Self::FetchKeys => f.write_str(
                "the issuer's keys have no key with the token's `kid`: the token comes from \
                 another environment, or the issuer rotated its keys (give the current JWKS)",
            ),
            Self::ReadClaim { claim, values } => write!(
                f,
                "the token carries {} in claim `{claim}`, which the policy does not read: add \
                 `{claim}` to `scopes.claims` (or `roles.claims`), or have the IdP put them in \
                 a claim it reads",
                quoted(values)
            ),
            Self::AssignRole { scope, roles } => write!(
                f,
                "`{scope}` is granted by role {} (roles.map): assign the user one of them, then \
                 get a new token",
                quoted(roles)
            ),
            Self::NoRoleGrants { scope } => write!(
                f,
                "no role in roles.map grants `{scope}`: the client must request it in its \
                 authorization request's `scope`, and the IdP must allow the client that scope"
            ),
            Self::MapRole { claim, role } => write!(
                f,
                "role `{role}` (claim `{claim}`) maps to no scope: if it should grant the missing \
                 scope, add it to roles.map"
            ),
            Self::RequestScopes(next) => write!(
                f,
                "request scope=\"{}\" next (adds {})",
                next.scope,
                quoted(&next.add)
            ),
            Self::IssuedBeforePolicy {
                issued_at,
                policy_changed_at,
            } => write!(
                f,
                "the token was issued at {issued_at}, before the policy changed at \
                 {policy_changed_at} ({} s earlier): a token cached from before a role or scope \
                 change keeps the old scopes; get a new one",
                policy_changed_at - issued_at
            ),
            Self::Reauthenticate {
                max_age,
                acr_values,
            } => {
                f.write_str("authenticate again")?;
                if let Some(max_age) = max_age {
                    write!(f, " with max_age={max_age}")?;
                }
                if !acr_values.is_empty() {
                    write!(f, " with acr_values=\"{}\"", acr_values.join(" "))?;
                }
                Ok(())
            }
            Self::AddRoute => f.write_str(
                "no route matches and `unmatched` is `deny`: add a route for this request",
            ),
        }
    }
}

fn quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| alloc::format!("`{i}`")).collect();
    quoted.join(", ")
}

/// The remedies for `denial`, given what the token says.
pub(super) fn remedies(
    policy: &Policy,
    denial: &Denial,
    token: Option<&TokenReport>,
    policy_changed_at: Option<UnixTime>,
) -> Vec<Remedy> {
    let mut out = Vec::new();
    match &denial.reason {
        DenyReason::NoToken => out.push(Remedy::SendToken),
        DenyReason::NoRoute => out.push(Remedy::AddRoute),
        DenyReason::InvalidToken(err) => {
            let why = match err {
                TokenError::Expired { .. } => Some("it expired"),
                TokenError::NotYetValid { .. } | TokenError::IssuedInFuture { .. } => {
                    Some("it is not valid yet (or the clocks disagree)")
                }
                TokenError::WrongAudience => {
                    Some("it is meant for another audience: ask for this resource's audience")
                }
                TokenError::MissingIssuer | TokenError::UntrustedIssuer(_) => {
                    Some("its issuer is not one the policy trusts")
                }
                TokenError::Inactive => Some("the issuer says it is no longer active"),
                _ => None,
            };
            if let Some(why) = why {
                out.push(Remedy::NewToken { why });
            }
            if matches!(err, TokenError::UnknownKid { .. }) {
                out.push(Remedy::FetchKeys);
            }
        }
        DenyReason::InsufficientScope => scope_remedies(policy, denial, token, &mut out),
        DenyReason::StepUpRequired => out.push(Remedy::Reauthenticate {
            max_age: denial.max_age,
            acr_values: denial.acr_values.clone(),
        }),
        _ => {}
    }
    let stale = matches!(
        denial.reason,
        DenyReason::InsufficientScope | DenyReason::StepUpRequired
    );
    if let (true, Some(issued_at), Some(changed)) =
        (stale, token.and_then(|t| t.issued_at), policy_changed_at)
    {
        if issued_at < changed.0 {
            out.push(Remedy::IssuedBeforePolicy {
                issued_at,
                policy_changed_at: changed.0,
            });
        }
    }
    out
}

fn scope_remedies(
    policy: &Policy,
    denial: &Denial,
    token: Option<&TokenReport>,
    out: &mut Vec<Remedy>,
) {
    if let Some(token) = token {
        let mut claims: Vec<&str> = token.unread.iter().map(|u| &*u.claim).collect();
        claims.dedup();
        for claim in claims {
            let values = token
                .unread
                .iter()
                .filter(|u| u.claim == claim)
                .map(|u| u.value.clone())
                .collect();
            out.push(Remedy::ReadClaim {
                claim: String::from(claim),
                values,
            });
        }
    }
    role_remedies(policy, &denial.missing, out);
    if let Some(token) = token {
        for unmapped in &token.unmapped_roles {
            out.push(Remedy::MapRole {
                claim: unmapped.claim.clone(),
                role: unmapped.value.clone(),
            });
        }
    }
    // What the client asked for and got: the scopes of scope claims, not those of roles.
    let held: Vec<&str> = token
        .into_iter()
        .flat_map(|t| &t.scopes)
        .filter(|s| matches!(s.origin, ScopeOrigin::Claim(_)))
        .map(|s| &*s.scope)
        .collect();
    request_remedy(policy, &held, &denial.missing, out);
}

/// For each missing scope, the roles that grant it, or that none does.
pub(super) fn role_remedies(policy: &Policy, missing: &[String], out: &mut Vec<Remedy>) {
    for scope in missing {
        let roles: Vec<String> = policy
            .role_map
            .iter()
            .filter(|(_, granted)| granted.iter().any(|g| policy.rules.covers(g, scope)))
            .map(|(role, _)| String::from(&**role))
            .collect();
        if roles.is_empty() {
            out.push(Remedy::NoRoleGrants {
                scope: scope.clone(),
            });
        } else {
            out.push(Remedy::AssignRole {
                scope: scope.clone(),
                roles,
            });
        }
    }
}

/// The next scope request: `held` plus `missing`, minimised.
pub(super) fn request_remedy(
    policy: &Policy,
    held: &[&str],
    missing: &[String],
    out: &mut Vec<Remedy>,
) {
    let missing: Vec<&str> = missing.iter().map(|m| &**m).collect();
    if let Ok(next) = policy.rules.next_request(held, &missing) {
        if !next.add.is_empty() {
            out.push(Remedy::RequestScopes(next));
        }
    }
}
