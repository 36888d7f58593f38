//! The scopegate browser package.
//!
//! This crate is a placeholder until the browser package lands: it will convert between
//! JavaScript values and [`scopegate_core`] calls and nothing more.
#![no_std]

pub use scopegate_core as core_crate;
