//! `scopegate import openapi SPEC`: a policy from an OpenAPI 3.0 or 3.1 document.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use scopegate_core::Policy;
use serde_json::Value;

use crate::error::Error;
use crate::openapi::{self, Notes, Options};

/// Write a policy from another description of the API
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

#[derive(Debug, clap::Subcommand)]
enum Source {
    Openapi(OpenApi),
}

/// A policy from an OpenAPI 3.0 or 3.1 document (JSON or YAML)
///
/// A route per path and method; each requires the OAuth 2 / OpenID Connect scopes of its
/// operation's `security` (or the document's), several requirement objects as
/// alternatives. Paths are prefixed with the first server's path. Notes on stderr say what
/// could not be carried over as is (API keys, scope-less requirements, partial path
/// segments). The policy is compiled before it is written.
#[derive(Debug, clap::Args)]
struct OpenApi {
    /// The OpenAPI document; JSON or YAML, told apart by content
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The token issuer (default: from the document's openIdConnect scheme)
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// An audience the API's tokens carry; repeat for several (default: the --resource URL)
    #[arg(long = "audience", value_name = "AUD")]
    audiences: Vec<String>,
    /// The algorithms the issuer signs with, comma-separated [default: RS256,ES256]
    #[arg(long, value_name = "ALGS", value_delimiter = ',')]
    algorithms: Vec<String>,
    /// The issuer's JWKS URL (default: ISSUER/.well-known/jwks.json)
    #[arg(long, value_name = "URL", conflicts_with = "jwks")]
    jwks_uri: Option<String>,
    /// The Envoy cluster that reaches the JWKS URL (default: its host)
    #[arg(long, value_name = "NAME", conflicts_with = "jwks")]
    jwks_cluster: Option<String>,
    /// The issuer's public keys inline, from this JWKS file, instead of --jwks-uri
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// The realm of challenges (default: the document's info.title)
    #[arg(long, value_name = "REALM")]
    realm: Option<String>,
    /// The protected resource's URL (RFC 9728): serves its metadata, with the document's
    /// scopes as scopes_supported
    #[arg(long, value_name = "URL")]
    resource: Option<String>,
    /// Write the policy to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Imports, compiles the result, prints notes on stderr and the policy on `out` (or -o).
pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let Source::Openapi(args) = &args.source;
    let jwks = match &args.jwks {
        Some(path) => {
            let text = fs::read_to_string(path).map_err(|err| Error::file(path, err))?;
            let set: Value = serde_json::from_str(&text).map_err(|err| Error::file(path, err))?;
            Some(set)
        }
        None => None,
    };
    let options = Options {
        issuer: args.issuer.clone(),
        audiences: args.audiences.clone(),
        algorithms: args.algorithms.clone(),
        jwks_uri: args.jwks_uri.clone(),
        jwks_cluster: args.jwks_cluster.clone(),
        jwks,
        realm: args.realm.clone(),
        resource: args.resource.clone(),
    };
    let doc = openapi::read(&args.spec).map_err(|err| Error::file(&args.spec, err))?;
    let mut notes = Notes::default();
    let text =
        openapi::import(&doc, &options, &mut notes).map_err(|err| Error::file(&args.spec, err))?;
    drop(doc);
    Policy::from_json(&text).map_err(|err| {
        Error::file(
            &args.spec,
            format!("the imported policy does not compile: {err}"),
        )
    })?;
    for line in notes.lines() {
        eprintln!("note: {}: {line}", args.spec.display());
    }
    match &args.output {
        Some(path) => fs::write(path, &text).map_err(|err| Error::file(path, err))?,
        None => out.write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
