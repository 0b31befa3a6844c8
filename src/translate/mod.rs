//! Body translation between endpoints that speak different shapes.
//!
//! Routing decides *where* a request goes ([`crate::route`]); when the target
//! endpoint takes another body shape than the one the client sent, a
//! translator rewrites the request body and, for a successful answer, the
//! response body back into the shape the client expects. A translation is a
//! [`Pair`] of codecs, the client's shape and the upstream's, over neutral
//! types (`codec`); the pairs that exist, and the model families each is
//! right for, are the table in `translator_for` and [`Pair::handles`].
//! Translators are pure (bytes in, bytes out) and created per request.
//!
//! Error responses are not translated here: the filter turns a non-2xx answer
//! into the client's error shape with [`crate::diagnose`]. A 2xx answer
//! without an image becomes an assistant message saying why for chat
//! clients, and [`TranslateError::NoImage`] for everyone else.
//!
//! ## Layout
//!
//! - `codec`: the neutral ask (`ImageAsk`, `EmbedAsk`) and the two
//!   translators that run every pair: each reads the client's shape into
//!   the ask, writes it in the upstream's shape, and back for the answer.
//!
//! The shapes the codecs read and write (parsing borrows strings from the
//! body, so base64 image data is copied once, into the output):
//! - `openai`: chat completion requests (the last prompt, or the whole
//!   conversation with the images in it) and `images/generations` requests;
//!   chat answers (JSON or `chat.completion.chunk` SSE) and images answers.
//! - `gemini`: `generateContent` image requests (`contents` turns);
//!   `GenerateContentResponse` read from one object, a JSON array or SSE, and
//!   written in each framing.
//! - `imagen`: `:predict` requests and predictions.
//! - `embedding`: compat `embeddings` and native `embedContent` /
//!   `batchEmbedContents` requests and answers.
//! - `answer`: the text and images of an answer, and why there is no image.
//! - `aspect`: aspect ratio snapping.
//!
//! Bodies are read with `crate::reader` and written with `crate::json`;
//! streams are split into events with `crate::sse`.

use crate::endpoint::{Endpoint, Family};
use std::fmt;
use std::ops::Range;

mod answer;
mod aspect;
mod codec;
mod embedding;
mod gemini;
mod imagen;
mod openai;

#[cfg(test)]
mod testutil;

/// How an image is put into an OpenAI chat assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageMessageFormat {
    /// `content` is a string with one `![image](data:image/png;base64,...)` per image.
    #[default]
    Markdown,
    /// `content` is a list of parts: `{"type":"image_url","image_url":{"url":"data:..."}}`.
    ImageUrlParts,
}

impl ImageMessageFormat {
    /// Every format, in declaration order.
    pub const ALL: [ImageMessageFormat; 2] = [
        ImageMessageFormat::Markdown,
        ImageMessageFormat::ImageUrlParts,
    ];
    /// Their names in configuration, in the same order.
    pub const NAMES: [&'static str; 2] = ["markdown", "image_url_parts"];
}

impl ImageMessageFormat {
    /// A format's name in configuration.
    pub(crate) fn read(
        r: &mut crate::reader::Reader<'_, '_>,
    ) -> Result<ImageMessageFormat, crate::config::FieldError> {
        crate::config::read_unit_enum(r, &ImageMessageFormat::NAMES)
            .map(|i| ImageMessageFormat::ALL[i])
    }
}

/// Translation choices from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TranslateOptions {
    /// How chat answers carry images.
    pub image_format: ImageMessageFormat,
}

/// What a translator knows of the exchange besides the bodies.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The bare model id (without a `models/` prefix), already validated.
    pub model: &'a str,
    /// The endpoint the client called (the shape of the request body).
    pub from: Endpoint,
    /// The endpoint the request is sent to (the shape of the upstream's answer).
    pub to: Endpoint,
    /// The client called `:streamGenerateContent` with `alt=sse` and expects SSE.
    pub client_sse: bool,
    /// Unix time in seconds, for OpenAI `created` fields.
    pub created: u64,
    /// Choices from configuration.
    pub options: TranslateOptions,
}

/// A translated response body and the content type that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// The new body.
    pub body: Vec<u8>,
    /// The `content-type` to set with it.
    pub content_type: &'static str,
}

impl Translated {
    /// A JSON body, as `out` wrote it.
    pub(crate) fn json(out: crate::json::Out) -> Translated {
        Translated {
            body: out.into_bytes(),
            content_type: crate::headers::JSON,
        }
    }
}

/// One translation pair: request body to the target's shape, and the
/// target's successful answer back to the client's shape.
pub trait Translator {
    /// Rewrites the client's request body into the target endpoint's shape.
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError>;
    /// [`Translator::translate_request`] for a body whose long strings a
    /// scan has found ([`crate::scan::Scanned::long_strings`]): a translator
    /// that reads the body with [`reader::Reader`] passes over them.
    fn translate_scanned_request(
        &mut self,
        body: &[u8],
        long_strings: &[Range<usize>],
    ) -> Result<Vec<u8>, TranslateError> {
        let _ = long_strings;
        self.translate_request(body)
    }
    /// Rewrites a successful (2xx) upstream answer into the client's shape.
    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError>;
    /// Whether the answer is translated event by event as it streams (an
    /// SSE answer to a client that streams): then [`Translator::translate_event`]
    /// and [`Translator::end_stream`] are used instead of
    /// [`Translator::translate_response`].
    fn streams(&self) -> bool {
        false
    }
    /// The client's events for one upstream event's `data`, and whether
    /// the answer is complete with it (the closing events were written).
    fn translate_event(&mut self, _data: &[u8]) -> Result<(Vec<u8>, bool), TranslateError> {
        Err(does_not_stream())
    }
    /// The client's closing events when the upstream stream ended (or
    /// failed: `note` says why), unless an event already completed it.
    fn end_stream(&mut self, _note: Option<&str>) -> Vec<u8> {
        Vec::new()
    }
}

/// The error of a translator without streaming given an event (one copy
/// for every translator that takes the default [`Translator::translate_event`]).
#[inline(never)]
pub(crate) fn does_not_stream() -> TranslateError {
    TranslateError::invalid_response("this translation does not stream")
}

/// One upstream event's `data` translated within the bounds: at most
/// [`value_limit`] values read, at most `max_out` bytes written.
pub fn event(
    translator: &mut dyn Translator,
    data: &[u8],
    max_out: usize,
) -> Result<(Vec<u8>, bool), TranslateError> {
    check_values(data, None, Side::Response)?;
    let (out, done) = translator.translate_event(data)?;
    fits(out.len(), max_out, Side::Response)?;
    Ok((out, done))
}

/// Why a body could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranslateError {
    /// The client's request body is not the JSON its endpoint takes.
    InvalidRequest(String),
    /// The client's request has no prompt text to send.
    NoPrompt,
    /// The upstream answered 2xx with a body that is not the expected shape.
    InvalidResponse(String),
    /// The upstream answered 2xx without any image (safety filter, empty predictions).
    NoImage(NoImage),
    /// The body holds more objects, arrays and strings than a translation
    /// reads ([`value_limit`]): a bound on the memory one request can take.
    TooManyValues { side: Side, limit: usize },
    /// The body (or what it translates to) is larger than `max_body_bytes`.
    TooLarge {
        side: Side,
        size: usize,
        limit: usize,
    },
}

/// Why an answer brought no image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoImage {
    /// The upstream's own words (block and finish reasons), as given.
    Said(String),
    /// Text only: the model's text, whole, quoted to 300 characters only when
    /// shown (a credential taken out of it first is never cut in two).
    Text(String),
    /// Neither text nor an image.
    Nothing,
}

impl fmt::Display for NoImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoImage::Said(why) => f.write_str(why),
            NoImage::Text(text) => {
                let (quoted, more) = match text.char_indices().nth(300) {
                    Some((at, _)) => (text.get(..at).unwrap_or(text), "..."),
                    None => (text.as_str(), ""),
                };
                write!(f, "the model answered with text only: \"{quoted}{more}\"")
            }
            NoImage::Nothing => f.write_str("the answer contained no image"),
        }
    }
}

/// Which side of an exchange a translation bound refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client's request.
    Request,
    /// The upstream's answer.
    Response,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Request => "request",
            Side::Response => "upstream answer",
        }
    }
}

/// The most objects, arrays and strings a body of `len` bytes may hold to
/// be translated: 65,536, plus one per 64 bytes. Every value a translator
/// builds is at most about 128 bytes, so parsing takes at most about
/// 8 MiB + 2 x `len` of memory, whatever the body holds.
pub fn value_limit(len: usize) -> usize {
    65_536 + len / 64
}

/// What the scan that found a request's model learned of its body.
#[derive(Debug, Clone, Copy)]
pub struct Scanned<'a> {
    /// Its objects, arrays and strings ([`crate::scan::count_values`]).
    pub values: usize,
    /// Where its long strings without escapes are.
    pub long_strings: &'a [Range<usize>],
}

/// Refuses a body of more than [`value_limit`] values; `counted` is their
/// count when a scan of the body already knows it.
fn check_values(body: &[u8], counted: Option<usize>, side: Side) -> Result<(), TranslateError> {
    let limit = value_limit(body.len());
    let within = match counted {
        Some(count) => count <= limit,
        None => crate::scan::count_values(body, limit).is_ok(),
    };
    if within {
        Ok(())
    } else {
        Err(TranslateError::TooManyValues { side, limit })
    }
}

/// Translates a request body within the bounds: at most [`value_limit`]
/// values read, and at most `max_out` bytes written. `scanned`: what a scan
/// of the body learned (its count of values, its long strings), if any.
pub fn request(
    translator: &mut dyn Translator,
    body: &[u8],
    scanned: Option<Scanned<'_>>,
    max_out: usize,
) -> Result<Vec<u8>, TranslateError> {
    check_values(body, scanned.map(|s| s.values), Side::Request)?;
    let out = match scanned {
        Some(scanned) => translator.translate_scanned_request(body, scanned.long_strings)?,
        None => translator.translate_request(body)?,
    };
    fits(out.len(), max_out, Side::Request)?;
    Ok(out)
}

/// Translates a 2xx answer within the bounds: at most [`value_limit`]
/// values read, and at most `max_out` bytes written.
pub fn response(
    translator: &mut dyn Translator,
    body: &[u8],
    max_out: usize,
) -> Result<Translated, TranslateError> {
    check_values(body, None, Side::Response)?;
    let out = translator.translate_response(body)?;
    fits(out.body.len(), max_out, Side::Response)?;
    Ok(out)
}

/// Refuses a translation of `size` bytes when `max_out` is smaller.
fn fits(size: usize, max_out: usize, side: Side) -> Result<(), TranslateError> {
    if size > max_out {
        return Err(TranslateError::TooLarge {
            side,
            size,
            limit: max_out,
        });
    }
    Ok(())
}

impl TranslateError {
    /// [`TranslateError::InvalidRequest`] with a fixed message (out of line:
    /// one copy of the construction for every site).
    #[inline(never)]
    pub(crate) fn invalid_request(why: &str) -> TranslateError {
        TranslateError::InvalidRequest(why.to_owned())
    }

    /// [`TranslateError::InvalidResponse`] with a fixed message.
    #[inline(never)]
    pub(crate) fn invalid_response(why: &str) -> TranslateError {
        TranslateError::InvalidResponse(why.to_owned())
    }

    /// A request body the reader refused.
    #[inline(never)]
    pub(crate) fn unread_request(e: crate::reader::ReadError) -> TranslateError {
        TranslateError::InvalidRequest(e.to_string())
    }

    /// An upstream answer the reader refused.
    #[inline(never)]
    pub(crate) fn unread_response(e: crate::reader::ReadError) -> TranslateError {
        TranslateError::InvalidResponse(e.to_string())
    }

    /// The HTTP status the client gets for this error.
    pub fn status(&self) -> u16 {
        match self {
            TranslateError::InvalidRequest(_) | TranslateError::NoPrompt => 400,
            TranslateError::InvalidResponse(_) => 502,
            TranslateError::NoImage(_) => 422,
            TranslateError::TooManyValues { side, .. } | TranslateError::TooLarge { side, .. } => {
                match side {
                    Side::Request => 413,
                    Side::Response => 502,
                }
            }
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranslateError::InvalidRequest(why) => write!(f, "invalid request body: {why}"),
            TranslateError::NoPrompt => f.write_str("the request has no prompt text"),
            TranslateError::InvalidResponse(why) => {
                write!(f, "the upstream answer could not be translated: {why}")
            }
            TranslateError::NoImage(why) => write!(f, "the upstream returned no image: {why}"),
            TranslateError::TooManyValues { side, limit } => write!(
                f,
                "the {} holds more than {limit} JSON objects, arrays and strings, more than gemini-router translates",
                side.as_str()
            ),
            TranslateError::TooLarge { side, size, limit } => write!(
                f,
                "the translated {} would be {size} bytes (or more), above max_body_bytes ({limit})",
                side.as_str()
            ),
        }
    }
}

impl std::error::Error for TranslateError {}

/// The last user message's text of a chat completion request, if the body
/// is one (for recognising background-task prompts).
pub fn chat_prompt(body: &[u8]) -> Option<String> {
    openai::parse_chat(body, &[]).ok().map(|r| r.prompt)
}

/// An empty chat completion for `model` in the framing the request asked
/// for (`stream`, `stream_options.include_usage`): what a chat UI's
/// background task gets when the filter answers it itself.
pub fn empty_chat_answer(body: &[u8], exchange: &Exchange<'_>) -> Translated {
    let mut reply = openai::ChatReply::new(exchange);
    if let Ok(request) = openai::parse_chat(body, &[]) {
        reply.for_request(&request);
    }
    reply.write_empty()
}

/// Whether a `from` request for a model of `family` can be sent to `to`:
/// the shapes are the same, or a translator exists for that family.
pub fn supports_for(family: Family, from: Endpoint, to: Endpoint) -> bool {
    from == to || pair_for(family, from, to).is_some()
}

/// The translation pair that sends a `from` request for a model of
/// `family` to `to`; `None` when the shapes are the same or no translator
/// fits. Routing keeps it in the plan ([`crate::route::Plan::pair`]).
pub fn pair_for(family: Family, from: Endpoint, to: Endpoint) -> Option<Pair> {
    translator_for(from, to).filter(|pair| pair.handles(family))
}

/// The translator for this exchange, or `None` when no pair is implemented
/// (or none is needed because `from == to`). Routing decides whether the
/// pair fits the model's family ([`supports_for`]).
pub fn select(exchange: &Exchange<'_>) -> Option<Box<dyn Translator>> {
    Some(translator(
        translator_for(exchange.from, exchange.to)?,
        exchange,
    ))
}

/// The translator of `pair` for this exchange.
pub fn translator(pair: Pair, exchange: &Exchange<'_>) -> Box<dyn Translator> {
    match pair {
        Pair::Image(client, upstream) => {
            Box::new(codec::ImageTranslation::new(client, upstream, exchange))
        }
        Pair::Embed(client, upstream) => {
            Box::new(codec::EmbedTranslation::new(client, upstream, exchange))
        }
    }
}

/// A translation: the codec of the client's shape and the codec of the
/// upstream's ([`codec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// Between image request shapes.
    Image(ImageClient, ImageUpstream),
    /// Between embedding request shapes.
    Embed(EmbedClient, EmbedUpstream),
}

/// An image request shape a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageClient {
    /// `chat/completions`.
    Chat,
    /// `images/generations`.
    Images,
    /// `:generateContent` and `:streamGenerateContent`.
    GenerateContent,
    /// `:predict`.
    Predict,
}

/// An image request shape an upstream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageUpstream {
    /// Imagen `:predict`.
    Predict,
    /// The compat `images/generations`.
    Images,
    /// `:generateContent` and `:streamGenerateContent` of Gemini image models.
    GenerateContent,
}

/// An embedding request shape a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedClient {
    /// The compat `embeddings`.
    Embeddings,
    /// `:embedContent`.
    EmbedContent,
    /// `:batchEmbedContents`.
    BatchEmbed,
}

/// An embedding request shape an upstream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedUpstream {
    /// `:batchEmbedContents`.
    BatchEmbed,
    /// The compat `embeddings`.
    Embeddings,
}

impl Pair {
    /// Whether the translation is right for models of `family`: the
    /// upstream's shape decides.
    #[inline(never)]
    fn handles(self, family: Family) -> bool {
        match self {
            Pair::Image(_, ImageUpstream::Predict) => family == Family::Imagen,
            Pair::Image(_, ImageUpstream::GenerateContent) => family == Family::GeminiImage,
            Pair::Image(_, ImageUpstream::Images) => {
                matches!(family, Family::Imagen | Family::GeminiImage)
            }
            Pair::Embed(..) => family == Family::Embedding,
        }
    }
}

/// The translations there are: one arm per (client shape, upstream shape).
fn translator_for(from: Endpoint, to: Endpoint) -> Option<Pair> {
    use Endpoint as E;
    use ImageClient as C;
    use ImageUpstream as U;
    let gemini = |to| matches!(to, E::GenerateContent | E::StreamGenerateContent);
    Some(match (from, to) {
        (E::ChatCompletions, E::Predict) => Pair::Image(C::Chat, U::Predict),
        (E::ChatCompletions, E::ImagesGenerations) => Pair::Image(C::Chat, U::Images),
        (E::ChatCompletions, to) if gemini(to) => Pair::Image(C::Chat, U::GenerateContent),
        (E::ImagesGenerations, E::Predict) => Pair::Image(C::Images, U::Predict),
        (E::ImagesGenerations, to) if gemini(to) => Pair::Image(C::Images, U::GenerateContent),
        (from, E::Predict) if gemini(from) => Pair::Image(C::GenerateContent, U::Predict),
        (E::Predict, to) if gemini(to) => Pair::Image(C::Predict, U::GenerateContent),
        (E::Embeddings, E::BatchEmbedContents) => {
            Pair::Embed(EmbedClient::Embeddings, EmbedUpstream::BatchEmbed)
        }
        (E::EmbedContent, E::Embeddings) => {
            Pair::Embed(EmbedClient::EmbedContent, EmbedUpstream::Embeddings)
        }
        (E::BatchEmbedContents, E::Embeddings) => {
            Pair::Embed(EmbedClient::BatchEmbed, EmbedUpstream::Embeddings)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint as E;

    use crate::endpoint::Family as F;

    /// Every implemented pair and the families it is right for.
    const PAIRS: [(E, E, &[F]); 14] = [
        (E::ChatCompletions, E::Predict, &[F::Imagen]),
        (
            E::ChatCompletions,
            E::ImagesGenerations,
            &[F::Imagen, F::GeminiImage],
        ),
        (E::ChatCompletions, E::GenerateContent, &[F::GeminiImage]),
        (
            E::ChatCompletions,
            E::StreamGenerateContent,
            &[F::GeminiImage],
        ),
        (E::ImagesGenerations, E::Predict, &[F::Imagen]),
        (E::ImagesGenerations, E::GenerateContent, &[F::GeminiImage]),
        (
            E::ImagesGenerations,
            E::StreamGenerateContent,
            &[F::GeminiImage],
        ),
        (E::GenerateContent, E::Predict, &[F::Imagen]),
        (E::StreamGenerateContent, E::Predict, &[F::Imagen]),
        (E::Predict, E::GenerateContent, &[F::GeminiImage]),
        (E::Predict, E::StreamGenerateContent, &[F::GeminiImage]),
        (E::Embeddings, E::BatchEmbedContents, &[F::Embedding]),
        (E::EmbedContent, E::Embeddings, &[F::Embedding]),
        (E::BatchEmbedContents, E::Embeddings, &[F::Embedding]),
    ];

    fn families(from: E, to: E) -> Option<&'static [F]> {
        PAIRS
            .iter()
            .find(|(f, t, _)| (*f, *t) == (from, to))
            .map(|(_, _, families)| *families)
    }

    #[test]
    fn supports_for_exactly_the_implemented_pairs_and_families() {
        for from in E::ALL {
            for to in E::ALL {
                for family in F::ALL {
                    let want =
                        from == to || families(from, to).is_some_and(|fs| fs.contains(&family));
                    assert_eq!(
                        supports_for(family, from, to),
                        want,
                        "{family}: {from} -> {to}"
                    );
                }
                let exchange = testutil::exchange("m", from, to);
                let selected = select(&exchange).is_some();
                assert_eq!(
                    selected,
                    families(from, to).is_some(),
                    "select {from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn errors_have_statuses_and_messages() {
        let cases = [
            (
                TranslateError::InvalidRequest("x".into()),
                400,
                "invalid request body: x",
            ),
            (
                TranslateError::NoPrompt,
                400,
                "the request has no prompt text",
            ),
            (
                TranslateError::InvalidResponse("y".into()),
                502,
                "the upstream answer could not be translated: y",
            ),
            (
                TranslateError::NoImage(NoImage::Said("z".into())),
                422,
                "the upstream returned no image: z",
            ),
        ];
        for (error, status, message) in cases {
            assert_eq!(error.status(), status, "{message}");
            assert_eq!(error.to_string(), message);
        }
    }
}
