//! Re-exports every `extern "C"` function of `wasmtime-c-api-impl`, so that the static
//! library carries Wasmtime's whole C API under the name `libwasmtime.a`.
pub use wasmtime_c_api::*;
