//! A proxy-wasm HTTP filter that lets every request through untouched. `./scripts/bench`
//! runs it in Envoy beside the scopegate filter: what it costs is what any Wasm filter
//! costs in Envoy's V8 (a context per request, calls across the VM boundary), which bounds
//! how close to "no filter at all" the scopegate filter can come.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass;

impl Context for Pass {}

impl HttpContext for Pass {}
