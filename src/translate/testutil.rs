//! Helpers for the translator tests.

use super::{
    Exchange, ImageMessageFormat, TranslateError, TranslateOptions, Translated, Translator,
};
use crate::endpoint::Endpoint;
use serde_json::Value;

/// `created` in every test exchange.
pub(crate) const CREATED: u64 = 1_764_000_000;

/// An exchange for `model` from `from` to `to`.
pub(crate) fn exchange(model: &'static str, from: Endpoint, to: Endpoint) -> Exchange<'static> {
    Exchange {
        model,
        from,
        to,
        client_sse: false,
        created: CREATED,
        options: TranslateOptions::default(),
    }
}

/// The same exchange with image_url parts for chat answers.
pub(crate) fn with_parts(mut exchange: Exchange<'static>) -> Exchange<'static> {
    exchange.options.image_format = ImageMessageFormat::ImageUrlParts;
    exchange
}

/// Parses JSON bytes.
pub(crate) fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// A request case: the client's body and the JSON the translator must send
/// for it, or its error. The body sent must be `want` written by
/// `serde_json`, byte for byte: compact, fields in the order `want` gives
/// them (`preserve_order`), strings escaped as serde escapes them.
pub(crate) struct RequestCase {
    pub(crate) name: &'static str,
    pub(crate) body: &'static str,
    pub(crate) want: Result<Value, TranslateError>,
}

/// Translates each case's body with a fresh translator from `new`.
pub(crate) fn check_requests(
    new: impl Fn() -> Box<dyn Translator>,
    cases: impl IntoIterator<Item = RequestCase>,
) {
    for case in cases {
        let got = new()
            .translate_request(case.body.as_bytes())
            .map(|b| String::from_utf8(b).unwrap());
        let want = case.want.map(|v| v.to_string());
        assert_eq!(got, want, "{}", case.name);
    }
}

/// A response case: the upstream answer and the JSON the client must get
/// for it, or the error.
pub(crate) struct ResponseCase {
    pub(crate) name: &'static str,
    pub(crate) upstream: &'static str,
    pub(crate) want: Result<Value, TranslateError>,
}

/// Translates each case's upstream answer with a fresh translator from
/// `new`; an answer must be `application/json`.
pub(crate) fn check_responses(
    new: impl Fn() -> Box<dyn Translator>,
    cases: impl IntoIterator<Item = ResponseCase>,
) {
    for case in cases {
        let got = new().translate_response(case.upstream.as_bytes()).map(|t| {
            assert_eq!(t.content_type, "application/json", "{}", case.name);
            String::from_utf8(t.body).unwrap()
        });
        let want = case.want.map(|v| v.to_string());
        assert_eq!(got, want, "{}", case.name);
    }
}

/// Translators from `new` that have translated `request` already, as before
/// any answer.
pub(crate) fn after_request(
    new: impl Fn() -> Box<dyn Translator>,
    request: &'static str,
) -> impl Fn() -> Box<dyn Translator> {
    move || {
        let mut translator = new();
        translator.translate_request(request.as_bytes()).unwrap();
        translator
    }
}

/// Runs a translator over a request and an upstream answer.
pub(crate) fn run(
    translator: &mut dyn Translator,
    request: &str,
    upstream: &str,
) -> (Value, Translated) {
    let sent = translator.translate_request(request.as_bytes()).unwrap();
    let got = translator.translate_response(upstream.as_bytes()).unwrap();
    (json(&sent), got)
}

/// A chat completion with its `id` checked and removed.
pub(crate) fn chat_completion(translated: &Translated) -> Value {
    assert_eq!(translated.content_type, "application/json");
    let mut value = json(&translated.body);
    let id = value
        .as_object_mut()
        .and_then(|o| o.remove("id"))
        .and_then(|id| id.as_str().map(str::to_owned))
        .unwrap();
    assert!(id.starts_with("chatcmpl-"), "{id}");
    value
}

/// An OpenAI SSE body checked frame by frame: every event is one `data:`
/// line followed by a blank line, `[DONE]` is last and only last, all chunks
/// share one id. Returns the chunks with `id` removed.
pub(crate) fn chat_chunks(translated: &Translated) -> Vec<Value> {
    assert_eq!(translated.content_type, "text/event-stream");
    let body = std::str::from_utf8(&translated.body).unwrap();
    assert!(body.ends_with("\n\n"), "body must end with a blank line");
    let events: Vec<&str> = body.trim_end_matches('\n').split("\n\n").collect();
    assert_eq!(events.last().copied(), Some("data: [DONE]"));
    let mut ids = Vec::new();
    let chunks = events[..events.len() - 1]
        .iter()
        .map(|event| {
            assert!(!event.contains('\n'), "one line per event: {event:.80}");
            let data = event.strip_prefix("data: ").unwrap();
            let mut chunk = json(data.as_bytes());
            let id = chunk.as_object_mut().and_then(|o| o.remove("id")).unwrap();
            ids.push(id);
            chunk
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one id for all chunks");
    chunks
}

/// Base64-looking data of `len` bytes, distinct per `seed`.
pub(crate) fn fake_b64(seed: char, len: usize) -> String {
    let mut data: String = std::iter::repeat(seed).take(len).collect();
    data.replace_range(..1, "i");
    data
}
