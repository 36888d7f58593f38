//! A proxy-wasm HTTP filter that lets every request through untouched. `./scripts/bench`
//! runs it in Envoy beside the scopegate filter: what it costs is what any Wasm filter
//! costs in Envoy's V8 (a context per request, calls across the VM boundary), which bounds
//! how close to "no filter at all" the scopegate filter can come.
//!
//! With the plugin configuration `calls: headers metadata` (either word, or both) it makes
//! those host calls of the scopegate filter and nothing else for each request: the
//! request's header map (`proxy_get_header_map_pairs`) and its dynamic metadata
//! (`get_property(["metadata"])`, which jwt_authn's payload makes Envoy serialize). The
//! benchmark's setups 5e and 5h use it to take apart what the jwt_authn mode costs.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root(Calls::default())) });
}}

/// The host calls each request makes.
#[derive(Clone, Copy, Default)]
struct Calls {
    headers: bool,
    metadata: bool,
}

struct Root(Calls);

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let configuration = self.get_plugin_configuration().unwrap_or_default();
        let text = String::from_utf8_lossy(&configuration);
        if let Some(words) = text.strip_prefix("calls:") {
            for word in words.split_whitespace() {
                match word {
                    "headers" => self.0.headers = true,
                    "metadata" => self.0.metadata = true,
                    _ => return false,
                }
            }
        }
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass(self.0)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass(Calls);

impl Context for Pass {}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.0.headers {
            core::hint::black_box(self.get_http_request_headers_bytes());
        }
        if self.0.metadata {
            core::hint::black_box(self.get_property(vec!["metadata"]));
        }
        Action::Continue
    }
}
