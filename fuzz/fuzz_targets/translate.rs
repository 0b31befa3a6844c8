//! Every translator `translate::select` returns, on arbitrary bodies.
//!
//! For each (client endpoint, target endpoint) pair `translate::select` has a
//! translator for (whatever model family routing would send through it): the
//! request body is translated, and, when that succeeds, an arbitrary upstream
//! answer is translated back (the order the filter uses). Checked: nothing
//! panics; a translated request is JSON; a translated answer is JSON, or SSE
//! whose `data:` lines are JSON or `[DONE]`, matching its content type; an
//! error's status is 4xx or 5xx.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use gemini_router::endpoint::Endpoint;
use gemini_router::headers::{EVENT_STREAM, JSON};
use gemini_router::translate::{
    self, Exchange, ImageMessageFormat, TranslateError, TranslateOptions,
};
use gemini_router_fuzz::{Json, JsonObject};
use libfuzzer_sys::fuzz_target;

const MODELS: &[&str] = &[
    "gemini-2.5-flash",
    "gemini-2.5-flash-image",
    "imagen-4.0-generate-001",
    "text-embedding-004",
    "x",
];

/// A body: in the endpoint's shape (most often), generated JSON, or raw bytes.
fn body(
    u: &mut Unstructured<'_>,
    endpoint: Endpoint,
    response: bool,
) -> arbitrary::Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=5)? {
        0 => u.arbitrary::<&[u8]>()?.to_vec(),
        1 => serde_json::Value::Object(u.arbitrary::<JsonObject>()?.0)
            .to_string()
            .into_bytes(),
        2 => u.arbitrary::<Json>()?.to_bytes(),
        _ if response => gemini_router_fuzz::response(u, endpoint)?,
        _ => gemini_router_fuzz::request(u, endpoint)?
            .to_string()
            .into_bytes(),
    })
}

#[derive(Debug)]
struct Input {
    from: Endpoint,
    to: Endpoint,
    model: &'static str,
    client_sse: bool,
    image_url_parts: bool,
    created: u64,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pairs = pairs();
        let (from, to) = if pairs.is_empty() {
            (Endpoint::ChatCompletions, Endpoint::ChatCompletions)
        } else {
            *u.choose(pairs)?
        };
        Ok(Input {
            from,
            to,
            model: u.choose(MODELS)?,
            client_sse: u.arbitrary()?,
            image_url_parts: u.arbitrary()?,
            created: u.arbitrary()?,
            request: body(u, from, false)?,
            response: body(u, to, true)?,
        })
    }
}

/// The pairs `translate::select` has a translator for, in a fixed order.
fn pairs() -> &'static [(Endpoint, Endpoint)] {
    static PAIRS: std::sync::OnceLock<Vec<(Endpoint, Endpoint)>> = std::sync::OnceLock::new();
    PAIRS.get_or_init(|| {
        let mut pairs = Vec::new();
        for from in Endpoint::ALL {
            for to in Endpoint::ALL {
                let exchange = Exchange {
                    model: MODELS[0],
                    from,
                    to,
                    client_sse: false,
                    created: 0,
                    options: TranslateOptions::default(),
                };
                if from != to && translate::select(&exchange).is_some() {
                    pairs.push((from, to));
                }
            }
        }
        pairs
    })
}

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

fn error_status(e: &TranslateError) {
    assert!(
        (400..=599).contains(&e.status()),
        "{e}: status {}",
        e.status()
    );
}

fuzz_target!(|input: Input| {
    let Input { from, to, .. } = input;
    if from == to {
        return; // no translators at all
    }
    let exchange = Exchange {
        model: input.model,
        from,
        to,
        client_sse: input.client_sse,
        created: input.created,
        options: TranslateOptions {
            image_format: if input.image_url_parts {
                ImageMessageFormat::ImageUrlParts
            } else {
                ImageMessageFormat::Markdown
            },
        },
    };
    let Some(mut translator) = translate::select(&exchange) else {
        panic!("select gave a translator for {from:?} -> {to:?} once, and then none");
    };
    let translated = match translator.translate_request(&input.request) {
        Ok(body) => body,
        Err(e) => return error_status(&e),
    };
    assert!(
        is_json(&translated),
        "{from:?} -> {to:?}: translated request is not JSON: {:?}",
        String::from_utf8_lossy(&translated)
    );
    match translator.translate_response(&input.response) {
        Ok(answer) => {
            if answer.content_type == EVENT_STREAM {
                let text = String::from_utf8_lossy(&answer.body);
                for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
                    let data = data.trim();
                    assert!(
                        data == "[DONE]" || is_json(data.as_bytes()),
                        "{from:?} -> {to:?}: SSE event is not JSON: {data:?}"
                    );
                }
            } else {
                assert_eq!(answer.content_type, JSON, "{from:?} -> {to:?}");
                assert!(
                    is_json(&answer.body),
                    "{from:?} -> {to:?}: translated answer is not JSON: {:?}",
                    String::from_utf8_lossy(&answer.body)
                );
            }
        }
        Err(e) => error_status(&e),
    }
});
