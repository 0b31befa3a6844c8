//! gemini-router: a proxy-wasm HTTP filter for Envoy that routes Gemini API
//! requests to the endpoint that serves the requested model's family, and
//! turns the 404s it cannot prevent into errors a client can parse and a
//! person can act on.
//!
//! ## Layout
//!
//! Pure, host-testable modules (no `proxy_wasm` in them):
//! - [`catalogue`]: the live model catalogue read after a 404 (pages,
//!   per-credential cache, the hint's sentence).
//! - [`config`]: the plugin configuration, parsed and validated once.
//! - [`endpoint`]: model families, API methods and styles, and which method serves which family.
//! - [`classify`]: model id -> family by ordered glob rules (built-in defaults, user rules first).
//! - [`model`]: model name validation (a model goes into a URL path).
//! - [`scan`]: finds top-level JSON fields without building a tree of a large body.
//! - [`request`]: recognises OpenAI-style, native and Vertex requests from method and path.
//! - [`route`]: the routing plan: target endpoint, new path, auth header moves.
//! - [`translate`]: body translation, a pair of codecs (the client's shape,
//!   the upstream's) over neutral types.
//! - [`diagnose`]: hints, diagnostic headers, and error bodies in the client's shape.
//! - `reader`, `json`: the JSON reader (a pull parser that keeps strings
//!   borrowed) and writer (one buffer, each string copied once).
//! - `sse`: server-sent events split from a stream, and their framing.
//! - `tree`: a JSON document read whole (the upstream's error bodies),
//!   numbers kept as their text.
//! - [`lifecycle`]: which models are shut down or will be, and their
//!   replacements (data: `data/lifecycle.json`).
//! - [`signatures`]: Gemini 3 thought signatures remembered from answers
//!   and put back into tool-call histories that lack them.
//! - [`tool_stream`]: the compatibility layer's tool-call streams, repaired
//!   event by event (`index`, `finish_reason`).
//! - [`flow`]: the request-side decisions the glue asks for: on the headers
//!   ([`flow::head`]), and on the body, going on from what the headers step
//!   decided ([`flow::buffered`]).
//! - [`response`]: the response-side state machine (rewrite, translate
//!   whole or event by event, repair tool-call streams, drop, bounds).
//! - [`headers`]: header and metric names.
//!
//! Host glue (the only code that speaks the proxy-wasm ABI):
//! - [`filter`]: the ABI (`abi`: host functions; `entry`: the callbacks and
//!   the contexts they reach; `pools`: the module's allocator, free lists
//!   of small blocks), `RouterRoot` (configuration, metrics) and
//!   `Router` (per request), which reaches Envoy only through the `Host`
//!   trait (`Proxy` in the module, a fake in its tests).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod catalogue;
pub mod classify;
pub mod config;
pub mod diagnose;
pub mod endpoint;
pub mod filter;
pub mod flow;
pub mod headers;
pub(crate) mod json;
pub mod lifecycle;
pub mod model;
pub(crate) mod reader;
pub mod request;
pub mod response;
pub mod route;
pub mod scan;
pub mod signatures;
pub(crate) mod sse;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tool_stream;
pub mod translate;
pub(crate) mod tree;
