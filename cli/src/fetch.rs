//! Remote key sets over HTTP(S), for the commands that verify a token of an issuer with a
//! `jwks_uri` (`explain`, `scopes`). `decide` stays offline: it hosts the gateway, whose
//! fetches go through Envoy clusters.

use std::time::Duration;

use scopegate_core::KeySource;
use scopegate_core::{KeySet, KeyStore, Policy};

use crate::error::Error;

/// A key set larger than this is refused (the filter's limit is the same order).
const MAX_JWKS_BYTES: u64 = 1024 * 1024;
/// Connect, send and receive, in all.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches the JWKS of issuers[`issuer`] from its `jwks_uri` into `keys`.
pub fn install_remote(policy: &Policy, issuer: usize, keys: &mut KeyStore) -> Result<(), Error> {
    let Some(entry) = policy.issuers().get(issuer) else {
        return Ok(());
    };
    let KeySource::Remote(remote) = entry.keys() else {
        return Ok(());
    };
    let fail = |why: String| {
        Error::new(format!(
            "cannot fetch the keys of issuers[{issuer}] `{}` from {}: {why}; give them with \
             --jwks {issuer}=FILE, or explain without a signature check with --no-verify",
            entry.issuer(),
            remote.uri
        ))
    };
    let body = get(&remote.uri).map_err(fail)?;
    let text = std::str::from_utf8(&body).map_err(|_| fail("the answer is not UTF-8".into()))?;
    let set = KeySet::from_json(text).map_err(|err| fail(format!("not a usable JWKS: {err}")))?;
    keys.install(issuer, set);
    Ok(())
}

/// GET `uri`; the body of a 200 answer, at most [`MAX_JWKS_BYTES`].
fn get(uri: &str) -> Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(uri)
        .header("accept", "application/jwk-set+json, application/json")
        .call()
        .map_err(|err| err.to_string())?;
    let status = response.status();
    if status.as_u16() != 200 {
        return Err(format!("the server answered {status}"));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_vec()
        .map_err(|err| err.to_string())
}
