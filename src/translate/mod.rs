//! Body translation between endpoints that speak different shapes.
//!
//! Routing decides *where* a request goes ([`crate::route`]); when the target
//! endpoint takes another body shape than the one the client sent, one
//! translator per (client endpoint, target endpoint) pair rewrites the request
//! body and, for a successful answer, the response body back into the shape
//! the client expects. Translators are pure (bytes in, bytes out), created per
//! request, and chosen by the single `match` in [`select`].
//!
//! Error responses are not translated here: the filter turns a non-2xx answer
//! into the client's error shape with [`crate::diagnose`].

use crate::endpoint::Endpoint;
use serde::Deserialize;
use std::fmt;

/// How an image is put into an OpenAI chat assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageMessageFormat {
    /// `content` is a string with one `![image](data:image/png;base64,...)` per image.
    #[default]
    Markdown,
    /// `content` is a list of parts: `{"type":"image_url","image_url":{"url":"data:..."}}`.
    ImageUrlParts,
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

/// One translation pair: request body to the target's shape, and the
/// target's successful answer back to the client's shape.
pub trait Translator {
    /// Rewrites the client's request body into the target endpoint's shape.
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError>;
    /// Rewrites a successful (2xx) upstream answer into the client's shape.
    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError>;
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
    NoImage(String),
}

impl TranslateError {
    /// The HTTP status the client gets for this error.
    pub fn status(&self) -> u16 {
        match self {
            TranslateError::InvalidRequest(_) | TranslateError::NoPrompt => 400,
            TranslateError::InvalidResponse(_) => 502,
            TranslateError::NoImage(_) => 422,
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
        }
    }
}

impl std::error::Error for TranslateError {}

/// Whether a translator exists for sending a `from` request to `to`.
pub fn supports(from: Endpoint, to: Endpoint) -> bool {
    from == to || translator_for(from, to).is_some()
}

/// The translator for this exchange, or `None` when no pair is implemented
/// (routing then leaves the request where it is).
pub fn select(exchange: &Exchange<'_>) -> Option<Box<dyn Translator>> {
    let kind = translator_for(exchange.from, exchange.to)?;
    let _ = kind;
    None
}

/// The translation pairs that exist. One arm per pair.
fn translator_for(from: Endpoint, to: Endpoint) -> Option<()> {
    let _ = (from, to);
    None
}
