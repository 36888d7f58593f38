//! A proxy-wasm HTTP filter that lets requests through, except one with the header
//! `x-trap`, on which its VM traps (a Rust panic, built with `panic = "abort"`: a Wasm
//! `unreachable`, as the scopegate filter did on a Latin-1 header byte before it read
//! header bytes itself). `tests/tests/envoy_failure_policy.rs` uses it to show what Envoy's
//! `failure_policy` does after a trap, which is what `examples/envoy.yaml` relies on.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Trap))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Trap;

impl Context for Trap {}

impl HttpContext for Trap {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.get_http_request_header_bytes("x-trap").is_some() {
            panic!("trapping on purpose: the request has x-trap");
        }
        Action::Continue
    }
}
