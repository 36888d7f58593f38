//! The gateway's own signatures: RFC 7523 client assertions for the introspection endpoint
//! (`introspection/assertion.rs`). ES256 and RS256 here, each behind the cargo feature of
//! its verifier and built on its arithmetic; Ed25519 is ed25519-dalek's.
//!
//! Both are deterministic (RFC 6979 nonces for ECDSA; PKCS #1 v1.5 has no randomness):
//! the proxy-wasm host may have no random source.

#[cfg(feature = "ecdsa")]
pub(crate) mod es256;
#[cfg(feature = "rsa")]
pub(crate) mod rs256;
