//! `--jwks ISSUER=FILE`: the keys of an issuer whose policy entry has a `jwks_uri`. The
//! command line fetches nothing; it hands the file to the core as the fetch's answer.

use std::fs;
use std::path::{Path, PathBuf};

use scopegate_core::KeySource;
use scopegate_core::Policy;

use crate::error::Error;

/// One `--jwks ISSUER=FILE`, as written.
#[derive(Clone, Debug)]
pub struct JwksArg {
    /// `ISSUER=FILE` as given, for messages.
    given: String,
    issuer: IssuerName,
    file: PathBuf,
}

/// An issuer by position in the policy's `issuers` or by its `issuer` value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum IssuerName {
    Index(usize),
    Iss(String),
    /// `--jwks FILE`: the issuer of the token, or the policy's one remote issuer.
    OfToken,
}

/// The `--jwks` option, shared by the commands that verify tokens.
#[derive(Clone, Debug, clap::Args)]
pub struct JwksArgs {
    /// The JWKS of an issuer whose keys come from a `jwks_uri`: ISSUER is its position in
    /// the policy's `issuers` (0, 1, ...) or its `issuer` value; FILE is the JWKS as its
    /// server answers it. A FILE alone is for the token's issuer. Repeat for several issuers.
    #[arg(long = "jwks", value_name = "[ISSUER=]FILE", value_parser = JwksArg::parse)]
    jwks: Vec<JwksArg>,
}

/// The JWKS file of an issuer, read.
#[derive(Clone, Debug)]
pub struct IssuerJwks {
    /// Position of the issuer in the policy.
    pub issuer: usize,
    /// The file, for messages.
    pub file: PathBuf,
    /// Its bytes.
    pub body: Vec<u8>,
}

impl JwksArg {
    /// Parses `ISSUER=FILE`. An `issuer` value has no `=` (OpenID Connect issuers are URLs
    /// without a query), so the first `=` separates.
    pub fn parse(value: &str) -> Result<Self, String> {
        let Some((issuer, file)) = value.split_once('=') else {
            if value.is_empty() {
                return Err("expected [ISSUER=]FILE".to_owned());
            }
            return Ok(Self {
                given: value.to_owned(),
                issuer: IssuerName::OfToken,
                file: PathBuf::from(value),
            });
        };
        if issuer.is_empty() || file.is_empty() {
            return Err("expected ISSUER=FILE with neither part empty".to_owned());
        }
        let issuer = match issuer.parse() {
            Ok(index) => IssuerName::Index(index),
            Err(_) => IssuerName::Iss(issuer.to_owned()),
        };
        Ok(Self {
            given: value.to_owned(),
            issuer,
            file: PathBuf::from(file),
        })
    }

    /// The position of the issuer this names in `policy`, which must fetch its keys.
    fn resolve(
        &self,
        policy: &Policy,
        policy_path: &Path,
        token_issuer: Option<usize>,
    ) -> Result<usize, Error> {
        let issuers = policy.issuers();
        let found = match &self.issuer {
            IssuerName::Index(index) => issuers.get(*index).map(|issuer| (*index, issuer)),
            IssuerName::Iss(iss) => issuers.iter().enumerate().find(|(_, i)| i.issuer() == iss),
            IssuerName::OfToken => {
                let mut remote = issuers
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| matches!(i.keys(), KeySource::Remote(_)));
                let only = match (remote.next(), remote.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                };
                let of_token = token_issuer.and_then(|index| Some((index, issuers.get(index)?)));
                let Some(found) = of_token.or(only) else {
                    return Err(Error::new(format!(
                        "--jwks {}: the policy has several issuers with a `jwks_uri` and the \
                         token names none of them: write --jwks ISSUER=FILE",
                        self.given
                    )));
                };
                Some(found)
            }
        };
        let Some((index, issuer)) = found else {
            let named = match &self.issuer {
                IssuerName::Index(index) => format!("issuers[{index}]"),
                IssuerName::Iss(iss) => format!("issuer `{iss}`"),
                IssuerName::OfToken => "issuer for this token".to_owned(),
            };
            let known: Vec<String> = issuers
                .iter()
                .enumerate()
                .map(|(index, issuer)| format!("{index} = {}", issuer.issuer()))
                .collect();
            return Err(Error::new(format!(
                "--jwks {}: {} has no {named}; its issuers are {}",
                self.given,
                policy_path.display(),
                known.join(", ")
            )));
        };
        match issuer.keys() {
            KeySource::Remote(_) => Ok(index),
            KeySource::JwtAuthn(_) => Err(Error::new(format!(
                "--jwks {}: issuers[{index}] `{}` is verified by Envoy's jwt_authn, which holds \
                 its keys",
                self.given,
                issuer.issuer()
            ))),
            KeySource::Inline(_) | KeySource::SecretOnly => Err(Error::new(format!(
                "--jwks {}: issuers[{index}] `{}` has its keys in the policy; --jwks is for \
                 issuers with a `jwks_uri`",
                self.given,
                issuer.issuer()
            ))),
        }
    }
}

impl JwksArgs {
    /// Every `--jwks`, resolved against `policy` and read. Each issuer at most once.
    pub fn load(&self, policy: &Policy, policy_path: &Path) -> Result<Vec<IssuerJwks>, Error> {
        self.load_for(policy, policy_path, None)
    }

    /// [`JwksArgs::load`], where a FILE alone is for `token_issuer`.
    pub fn load_for(
        &self,
        policy: &Policy,
        policy_path: &Path,
        token_issuer: Option<usize>,
    ) -> Result<Vec<IssuerJwks>, Error> {
        let mut loaded: Vec<IssuerJwks> = Vec::new();
        for arg in &self.jwks {
            let issuer = arg.resolve(policy, policy_path, token_issuer)?;
            if let Some(earlier) = loaded.iter().find(|l| l.issuer == issuer) {
                return Err(Error::new(format!(
                    "--jwks gives issuers[{issuer}] twice ({} and {}): give one file",
                    earlier.file.display(),
                    arg.file.display()
                )));
            }
            let body = fs::read(&arg.file).map_err(|err| Error::file(&arg.file, err))?;
            loaded.push(IssuerJwks {
                issuer,
                file: arg.file.clone(),
                body,
            });
        }
        Ok(loaded)
    }
}

/// A note for a token whose issuer's keys were not given: how to give them.
pub fn missing_keys_hint(policy: &Policy, issuer: usize) -> Option<String> {
    let entry = policy.issuers().get(issuer)?;
    let KeySource::Remote(remote) = entry.keys() else {
        return None;
    };
    Some(format!(
        "the keys of issuers[{issuer}] `{}` come from {}, which this command does not fetch: \
         save them to a file and give it with --jwks {issuer}=FILE",
        entry.issuer(),
        remote.uri
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_by_index_or_by_value() {
        let arg = JwksArg::parse("1=keys.json").unwrap();
        assert_eq!(arg.issuer, IssuerName::Index(1));
        assert_eq!(arg.file, PathBuf::from("keys.json"));
        let arg = JwksArg::parse("https://idp.example=dir/a=b.json").unwrap();
        assert_eq!(arg.issuer, IssuerName::Iss("https://idp.example".into()));
        assert_eq!(arg.file, PathBuf::from("dir/a=b.json"));
        assert_eq!(
            JwksArg::parse("keys.json").unwrap().issuer,
            IssuerName::OfToken
        );
        assert!(JwksArg::parse("=keys.json").is_err());
        assert!(JwksArg::parse("0=").is_err());
    }
}
