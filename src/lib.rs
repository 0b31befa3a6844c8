//! gemini-router: a proxy-wasm HTTP filter for Envoy that routes Gemini API
//! requests to the endpoint that serves the requested model's family.
//!
//! ## Layout
//!
//! - [`endpoint`]: model families, API methods and styles, and which method serves which family.
//! - [`translate`]: one translator per (client endpoint, target endpoint) pair.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod endpoint;
pub mod translate;
