//! ref-noop: the floor for any proxy-wasm HTTP filter, for `bench/run.py`.
//!
//! Every callback is the SDK's default, which returns `Continue`: no header
//! reads, no body reads, no logging, no metrics. What an Envoy running this
//! module costs over plain Envoy is the price of the Wasm VM and of crossing
//! into it on each callback, before a filter does anything at all.
//!
//! The plugin configuration is ignored (`on_configure` accepts anything), so
//! the module loads with the bench's filter entry unchanged.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

/// Root context: hands each request a [`Noop`].
struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop))
    }
}

/// Per-request context: the SDK's defaults (`Action::Continue`) for every callback.
struct Noop;

impl Context for Noop {}

impl HttpContext for Noop {}
