//! ref-minimal: the least a filter that routes on the body's `model` does,
//! for `bench/run.py`.
//!
//! - GET (any method but POST): `Continue`, nothing read but `:method`.
//! - POST: the request headers are paused (`StopIteration`, so Envoy needs
//!   `allow_on_headers_stop_iteration: true`, as for gemini-router), the body
//!   is buffered until `end_of_stream`, read once, and the value of `"model"`
//!   is found with a plain byte search: the first `"model"`, the next quote,
//!   up to the closing quote. No JSON parsing, no escapes, no nesting: it
//!   may find a `"model"` inside a message. Then the request continues
//!   unchanged.
//!
//! - With the cargo feature `status` (bench/run.py's *minimal module that
//!   reads `:status`*), the response's `:status` is read too, and parsed:
//!   the least a filter that also turns upstream errors into answers does
//!   (it cannot tell an error without it). Nothing else changes.
//!
//! The plugin configuration is ignored. Host errors are not unwrapped (the
//! SDK's convenience getters would panic): a failed host call just lets the
//! request continue.

use std::hint::black_box;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(MinimalRoot) });
}}

/// Root context: hands each request a [`Minimal`].
struct MinimalRoot;

impl Context for MinimalRoot {}

impl RootContext for MinimalRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Minimal { buffering: false }))
    }
}

/// Per-request context: whether the body is being buffered for its model.
struct Minimal {
    buffering: bool,
}

impl Context for Minimal {}

impl HttpContext for Minimal {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let method = hostcalls::get_map_value(MapType::HttpRequestHeaders, ":method");
        if end_of_stream || !matches!(method, Ok(Some(m)) if m == "POST") {
            return Action::Continue;
        }
        self.buffering = true;
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.buffering {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause; // StopIterationAndBuffer: Envoy keeps the chunks
        }
        self.buffering = false;
        if let Ok(Some(body)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            // Used only so the search is not optimised away.
            black_box(model(&body));
        }
        Action::Continue
    }

    #[cfg(feature = "status")]
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Ok(Some(status)) = hostcalls::get_map_value(MapType::HttpResponseHeaders, ":status")
        {
            // Used only so the read is not optimised away.
            black_box(status.parse::<u16>().ok());
        }
        Action::Continue
    }
}

/// The value of the first `"model"` in `body`: after the key, skip to the
/// next quote and take everything up to the following one.
fn model(body: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"model\"";
    let mut from = 0;
    let after_key = loop {
        let quote = from + body.get(from..)?.iter().position(|&b| b == b'"')?;
        if body[quote..].starts_with(KEY) {
            break quote + KEY.len();
        }
        from = quote + 1;
    };
    let rest = body.get(after_key..)?;
    let open = rest.iter().position(|&b| b == b'"')?;
    let value = &rest[open + 1..];
    let close = value.iter().position(|&b| b == b'"')?;
    Some(&value[..close])
}

#[cfg(test)]
mod tests {
    use super::model;

    #[test]
    fn finds_the_model() {
        struct Case {
            name: &'static str,
            body: &'static [u8],
            want: Option<&'static [u8]>,
        }
        let cases = [
            Case {
                name: "model last",
                body: br#"{"messages":[],"model":"gemini-3.5-flash"}"#,
                want: Some(b"gemini-3.5-flash"),
            },
            Case {
                name: "spaces",
                body: br#"{ "model" : "m" }"#,
                want: Some(b"m"),
            },
            Case {
                name: "no model",
                body: br#"{"messages":[]}"#,
                want: None,
            },
            Case {
                name: "unterminated",
                body: br#"{"model":"gem"#,
                want: None,
            },
            Case {
                name: "empty",
                body: b"",
                want: None,
            },
        ];
        for case in cases {
            assert_eq!(model(case.body), case.want, "{}", case.name);
        }
    }
}
