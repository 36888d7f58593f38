//! The command line as a host of the core's sans-IO gateway, in the way the proxy-wasm
//! filter hosts it: header bytes in; forward, respond or wait out. Where the filter sends a
//! key fetch over an Envoy cluster, the command line answers it with the `--jwks` file of
//! that issuer, or as a fetch that could not be sent: it never uses the network.

use scopegate_core::gateway::{Exchange, Gateway, HeaderPair, Reply, Step};
use scopegate_core::{AllowReason, Denial, Policy, UnixTime};

use crate::error::Error;
use crate::jwks::IssuerJwks;

/// A gateway with its given key sets.
pub struct Host {
    gateway: Gateway,
    jwks: Vec<IssuerJwks>,
    /// Issuers whose keys a request waited for and that had no `--jwks`.
    keys_missing: Vec<usize>,
}

/// What the gateway did with a request.
#[derive(Debug)]
pub enum Outcome {
    /// The request goes to the upstream with these headers set (verified claims). With
    /// `dry_run: true` in the policy, `would_deny` is the denial it lets through.
    Forward {
        /// Headers set on the upstream request.
        set: Vec<(String, String)>,
        /// Why it passes and the route it matched; `None` for a denial a dry run lets
        /// through.
        allowed: Option<(AllowReason, Option<usize>)>,
        /// The denial a dry run lets through.
        would_deny: Option<Denial>,
    },
    /// Answered locally with a 400, 401 or 403.
    Deny(Denial),
    /// Answered locally with the RFC 9728 metadata document.
    Serve {
        /// Its media type.
        content_type: &'static str,
        /// The document.
        body: String,
    },
}

impl Host {
    /// A gateway for `policy` started as a host starts it at `now`: the key fetches due at
    /// start are answered with the `--jwks` files, the others as fetches that failed. A file
    /// the core cannot use as a JWKS is an error.
    pub fn start(policy: Policy, jwks: Vec<IssuerJwks>, now: UnixTime) -> Result<Self, Error> {
        let mut gateway = Gateway::new(policy);
        let due: Vec<usize> = gateway.on_tick(now).iter().map(|f| f.issuer).collect();
        for issuer in due {
            let given = jwks.iter().find(|j| j.issuer == issuer);
            let answer = given.map(|j| (200, j.body.as_slice())).ok_or(());
            let outcome = gateway.on_fetch_answer(issuer, answer, now);
            if let (Some(given), Err(err)) = (given, &outcome.result) {
                return Err(Error::file(
                    &given.file,
                    format!(
                        "not a usable JWKS for issuers[{issuer}] `{}`: {err}",
                        outcome.issuer
                    ),
                ));
            }
        }
        // Start-up counters are of no interest here.
        gateway.drain_counts().for_each(drop);
        Ok(Self {
            gateway,
            jwks,
            keys_missing: Vec::new(),
        })
    }

    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        self.gateway.policy()
    }

    /// Issuers whose keys a request needed and no `--jwks` gave.
    pub fn keys_missing(&self) -> &[usize] {
        &self.keys_missing
    }

    /// Runs one request's headers through the gateway, as the filter does: a key fetch it
    /// asks for is answered at once with the issuer's `--jwks` file (what its server would
    /// answer), or fails as unsent, and the headers are fed again. The gateway lets a
    /// request wait for one fetch, and no fetch stays in flight here, so nothing is held.
    /// An MCP route reads `body` (empty when `None`) as the filter would.
    pub fn request(
        &mut self,
        headers: &[HeaderPair<'_>],
        body: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<Outcome, Error> {
        let mut exchange = Exchange::default();
        // Counters are the filter's stats; the command line has none.
        self.gateway.drain_counts().for_each(drop);
        loop {
            let mut step = self.gateway.on_request_headers(&mut exchange, headers, now);
            if let Step::ReadBody { .. } = step {
                step =
                    self.gateway
                        .on_request_body(&mut exchange, headers, body.unwrap_or(b""), now);
            }
            let issuer = match step {
                Step::Forward(forward) => {
                    return Ok(Outcome::Forward {
                        set: forward
                            .set
                            .into_iter()
                            .map(|(name, value)| (name.to_owned(), value))
                            .collect(),
                        allowed: forward.allowed,
                        would_deny: forward.would_deny,
                    })
                }
                Step::Respond(Reply::Deny(denial)) => return Ok(Outcome::Deny(denial)),
                Step::Respond(Reply::Serve(served)) => {
                    return Ok(Outcome::Serve {
                        content_type: served.content_type,
                        body: served.body.to_owned(),
                    })
                }
                Step::Wait(fetch) => fetch.issuer,
                Step::Introspect(_) | Step::Park(_) | Step::Defer => {
                    return Err(Error::new(
                        "the policy sends this token to its issuer's introspection endpoint, \
                         which the command line does not call; ask the endpoint yourself",
                    ))
                }
                Step::Hold(_) | Step::ReadBody { .. } => {
                    return Err(Error::new(
                        "the gateway held the request for a fetch nobody sent, or asked for \
                         the body twice: this is a bug, please report it",
                    ))
                }
            };
            let given = self.jwks.iter().find(|j| j.issuer == issuer);
            if given.is_none() && !self.keys_missing.contains(&issuer) {
                self.keys_missing.push(issuer);
            }
            let answer = given.map(|j| (200, j.body.as_slice())).ok_or(());
            let _ = self.gateway.on_fetch_answer(issuer, answer, now);
        }
    }
}

/// Header pairs as a host hands them to the gateway, from text.
pub fn header_pairs<'a>(headers: &'a [(&'a str, &'a str)]) -> Vec<HeaderPair<'a>> {
    headers
        .iter()
        .map(|(name, value)| (name.as_bytes(), value.as_bytes()))
        .collect()
}
