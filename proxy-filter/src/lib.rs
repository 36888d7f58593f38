//! The scopegate proxy-wasm filter.
//!
//! This crate is a placeholder until the gateway filter lands: it will translate proxy-wasm
//! callbacks into [`scopegate_core`] calls and nothing more.
#![no_std]

pub use scopegate_core as core_crate;
