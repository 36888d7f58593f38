//! The keys a token is verified with: `--jwks` files first, then the issuer's `jwks_uri`.

use std::path::Path;

use scopegate_core::KeySource;
use scopegate_core::{KeySet, KeyStore, Policy};

use crate::error::Error;
use crate::fetch;
use crate::jwks::JwksArgs;

/// Where the keys of the token's issuer came from, for the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// In the policy (inline keys or a shared secret).
    Policy,
    /// A `--jwks` file.
    File(String),
    /// Fetched from the issuer's `jwks_uri`.
    Fetched(String),
    /// The token names no issuer of the policy (its refusal says why).
    None,
}

/// The issuer of the policy that `token` names in its `iss`, if any.
pub fn token_issuer(policy: &Policy, token: &str) -> Option<usize> {
    scopegate_core::client::issuer_of(policy, token)
}

/// The key store for verifying `token`: every `--jwks` file, and, when `fetch` is set and no
/// file gave them, the keys of the token's issuer from its `jwks_uri`.
pub fn keys_for(
    policy: &Policy,
    policy_path: &Path,
    jwks: &JwksArgs,
    token: Option<&str>,
    fetch: bool,
) -> Result<(KeyStore, KeyOrigin), Error> {
    let issuer = token.and_then(|token| token_issuer(policy, token));
    let mut keys = KeyStore::default();
    let mut origin = KeyOrigin::None;
    for given in jwks.load_for(policy, policy_path, issuer)? {
        let set = std::str::from_utf8(&given.body)
            .map_err(|_| Error::file(&given.file, "not UTF-8 text"))
            .and_then(|text| {
                KeySet::from_json(text).map_err(|err| Error::file(&given.file, err))
            })?;
        if Some(given.issuer) == issuer {
            origin = KeyOrigin::File(given.file.display().to_string());
        }
        keys.install(given.issuer, set);
    }
    let Some(issuer) = issuer else {
        return Ok((keys, origin));
    };
    match policy.issuers()[issuer].keys() {
        KeySource::Inline(_) | KeySource::SecretOnly | KeySource::JwtAuthn(_) => {
            origin = KeyOrigin::Policy
        }
        KeySource::Remote(remote) if fetch && keys.get(issuer).is_none() => {
            fetch::install_remote(policy, issuer, &mut keys)?;
            origin = KeyOrigin::Fetched(remote.uri.clone());
        }
        KeySource::Remote(_) => {}
    }
    Ok((keys, origin))
}
