//! Translation as two codecs over neutral types.
//!
//! The client's codec reads its request into an [`ImageAsk`] or an
//! [`EmbedAsk`] and writes the neutral answer ([`Answer`], or vectors) back
//! in its own shape; the upstream's codec writes the ask in the upstream's
//! shape and reads its answer. A pair ([`super::Pair`]) names the two
//! codecs, and one translator here runs every pair of its kind:
//! [`ImageTranslation`] for image models, [`EmbedTranslation`] for
//! embedding models.
//!
//! Shape by shape, what is carried over:
//! - chat `messages`: the last user message's text, or, for Gemini, the
//!   whole conversation with its images (see `openai::parse_chat_conversation`);
//!   system and developer messages; `n`; `aspect_ratio` or `size`.
//! - `images/generations`: `prompt`, `n`, `aspect_ratio` or `size`.
//! - `:generateContent`: the last user content's text, `candidateCount`,
//!   `imageConfig.aspectRatio`.
//! - `:predict`: `instances[0].prompt`, `sampleCount`, `aspectRatio`.
//! - Upstreams take at most four images per call (`n` is clamped), and an
//!   aspect ratio snapped to the nearest one they accept.
//!
//! A chat client gets an answer without an image as an assistant message
//! saying why; every other client gets [`TranslateError::NoImage`].

use super::answer::Answer;
use super::aspect;
use super::embedding;
use super::gemini::{self, Contents, Framing, ResponseBody};
use super::imagen;
use super::openai::{self, ChatReply, StreamState};
use super::{
    EmbedClient, EmbedUpstream, Exchange, ImageClient, ImageUpstream, TranslateError, Translated,
    Translator,
};
use crate::endpoint::Endpoint;
use crate::reader::JStr;
use std::ops::Range;

/// What a client asked an image model for, in no API's shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ImageAsk<'a> {
    /// The text to answer (the last user turn's).
    pub(crate) prompt: String,
    /// The whole conversation, read only for an upstream that takes one.
    pub(crate) contents: Option<Contents<'a>>,
    /// System instructions, joined by blank lines.
    pub(crate) system: Option<String>,
    /// How many images.
    pub(crate) n: Option<i64>,
    /// Width over height.
    pub(crate) aspect: Option<f64>,
    /// An OpenAI `size`, as the client gave it.
    pub(crate) size: Option<String>,
}

/// What a client asked an embedding model for.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct EmbedAsk<'a> {
    /// One text per vector.
    pub(crate) texts: Vec<JStr<'a>>,
    pub(crate) dimensions: Option<i64>,
    /// `encoding_format: "base64"`: vectors go back as base64 of little-endian f32.
    pub(crate) base64: bool,
}

/// The client's side of an image translation, with what its answer needs.
enum Client {
    Chat(Box<Chat>),
    Images,
    GenerateContent(Framing),
    Predict,
}

/// A chat client's answer writer, and its stream as written so far.
struct Chat {
    reply: ChatReply,
    /// Candidates asked for (`n`): a stream closes when all have finished.
    candidates: usize,
    stream: StreamState,
    /// Candidates that finished in the stream so far.
    finished: Vec<u32>,
    /// The closing events were written.
    closed: bool,
}

/// Any image client to any image upstream.
pub(crate) struct ImageTranslation {
    client: Client,
    upstream: ImageUpstream,
    model: String,
    created: u64,
    /// The upstream answers with SSE events (`:streamGenerateContent`).
    upstream_sse: bool,
}

impl ImageTranslation {
    pub(crate) fn new(
        client: ImageClient,
        upstream: ImageUpstream,
        exchange: &Exchange<'_>,
    ) -> ImageTranslation {
        let client = match client {
            ImageClient::Chat => Client::Chat(Box::new(Chat {
                reply: ChatReply::new(exchange),
                candidates: 1,
                stream: StreamState::default(),
                finished: Vec::new(),
                closed: false,
            })),
            ImageClient::Images => Client::Images,
            ImageClient::GenerateContent => {
                Client::GenerateContent(match (exchange.from, exchange.client_sse) {
                    (Endpoint::StreamGenerateContent, true) => Framing::Sse,
                    (Endpoint::StreamGenerateContent, false) => Framing::Array,
                    _ => Framing::Object,
                })
            }
            ImageClient::Predict => Client::Predict,
        };
        ImageTranslation {
            client,
            upstream,
            model: exchange.model.to_owned(),
            created: exchange.created,
            upstream_sse: exchange.to == Endpoint::StreamGenerateContent,
        }
    }

    /// The client's request, read.
    fn read<'a>(
        &mut self,
        body: &'a [u8],
        long_strings: &[Range<usize>],
    ) -> Result<ImageAsk<'a>, TranslateError> {
        match &mut self.client {
            Client::Chat(chat) => {
                // Only Gemini takes a conversation; the others one prompt.
                let conversation = self.upstream == ImageUpstream::GenerateContent;
                let request = if conversation {
                    openai::parse_chat_conversation(body, long_strings)?
                } else {
                    openai::parse_chat(body, long_strings)?
                };
                chat.reply.for_request(&request);
                chat.candidates = request
                    .n
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(1);
                if request.prompt.is_empty() || (conversation && !request.contents.ends_with_user())
                {
                    return Err(TranslateError::NoPrompt);
                }
                Ok(ImageAsk {
                    prompt: request.prompt,
                    contents: conversation.then_some(request.contents),
                    system: request.system,
                    n: request.n,
                    aspect: request.aspect,
                    size: request.size,
                })
            }
            Client::Images => openai::parse_images(body),
            Client::GenerateContent(_) => gemini::parse_request(body),
            Client::Predict => imagen::parse_request(body),
        }
    }

    /// The ask in the upstream's shape.
    fn write(&self, ask: &ImageAsk<'_>) -> Result<Vec<u8>, TranslateError> {
        match self.upstream {
            ImageUpstream::Predict => imagen::PredictRequest {
                prompt: &ask.prompt,
                sample_count: ask.n.unwrap_or(1),
                aspect_ratio: ask.aspect.map(|r| aspect::nearest(r, aspect::IMAGEN)),
            }
            .to_body(),
            ImageUpstream::Images => openai::images_request_body(
                &self.model,
                &ask.prompt,
                ask.n.unwrap_or(1).clamp(1, imagen::MAX_SAMPLES),
                ask.size.as_deref(),
            ),
            ImageUpstream::GenerateContent => {
                let prompt;
                let contents = match &ask.contents {
                    Some(contents) => contents,
                    None => {
                        prompt = Contents::prompt(&ask.prompt);
                        &prompt
                    }
                };
                Ok(gemini::ImageRequest {
                    contents,
                    system: ask.system.as_deref(),
                    candidate_count: ask.n,
                    aspect_ratio: ask.aspect.map(|r| aspect::nearest(r, aspect::GEMINI)),
                }
                .to_body())
            }
        }
    }

    /// The answer in the client's shape.
    fn answer(&self, answer: &Answer<'_>) -> Result<Translated, TranslateError> {
        if !matches!(self.client, Client::Chat(_)) {
            answer.require_image()?;
        }
        Ok(match &self.client {
            Client::Chat(chat) => chat.reply.write(answer),
            Client::Images => openai::write_images_answer(answer, self.created),
            Client::GenerateContent(framing) => gemini::write_answer(answer, &self.model, *framing),
            Client::Predict => imagen::write_answer(answer),
        })
    }
}

impl Translator for ImageTranslation {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        self.translate_scanned_request(body, &[])
    }

    fn translate_scanned_request(
        &mut self,
        body: &[u8],
        long_strings: &[Range<usize>],
    ) -> Result<Vec<u8>, TranslateError> {
        let ask = self.read(body, long_strings)?;
        self.write(&ask)
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let split;
        let answer = match self.upstream {
            ImageUpstream::Predict => imagen::parse_answer(body)?,
            ImageUpstream::Images => openai::parse_images_answer(body)?,
            ImageUpstream::GenerateContent => {
                split = ResponseBody::split(body);
                split.answer()?
            }
        };
        self.answer(&answer)
    }

    /// A streaming chat answered by `:streamGenerateContent` events: each
    /// event's text goes out as it arrives, an image once its event is
    /// complete, and the stream closes after the event in which every
    /// candidate finished (or when the upstream ends).
    fn streams(&self) -> bool {
        self.upstream_sse && matches!(&self.client, Client::Chat(chat) if chat.reply.streams())
    }

    fn translate_event(&mut self, data: &[u8]) -> Result<(Vec<u8>, bool), TranslateError> {
        let Client::Chat(chat) = &mut self.client else {
            return Err(super::does_not_stream());
        };
        if chat.closed || data.trim_ascii() == b"[DONE]" {
            return Ok((Vec::new(), chat.closed));
        }
        let (answer, finished) = gemini::frame_answer(data)?;
        let mut out = chat.reply.write_stream_part(&mut chat.stream, &answer);
        for index in finished {
            if !chat.finished.contains(&index) {
                chat.finished.push(index);
            }
        }
        if chat.finished.len() >= chat.candidates {
            out.extend(self.end_stream(None));
        }
        let closed = matches!(&self.client, Client::Chat(chat) if chat.closed);
        Ok((out, closed))
    }

    fn end_stream(&mut self, note: Option<&str>) -> Vec<u8> {
        match &mut self.client {
            Client::Chat(chat) if !chat.closed => {
                chat.closed = true;
                chat.reply.write_stream_end(&mut chat.stream, note)
            }
            _ => Vec::new(),
        }
    }
}

/// Any embedding client to any embedding upstream. Google reports no token
/// counts for embeddings, so an OpenAI list answer's `usage` is zero.
pub(crate) struct EmbedTranslation {
    client: EmbedClient,
    upstream: EmbedUpstream,
    model: String,
    /// Texts sent (0 until the request is read).
    inputs: usize,
    base64: bool,
}

impl EmbedTranslation {
    pub(crate) fn new(
        client: EmbedClient,
        upstream: EmbedUpstream,
        exchange: &Exchange<'_>,
    ) -> EmbedTranslation {
        EmbedTranslation {
            client,
            upstream,
            model: exchange.model.to_owned(),
            inputs: 0,
            base64: false,
        }
    }
}

impl Translator for EmbedTranslation {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let ask = match self.client {
            EmbedClient::Embeddings => embedding::parse_embeddings_request(body)?,
            EmbedClient::EmbedContent => embedding::parse_embed_request(body)?,
            EmbedClient::BatchEmbed => embedding::parse_batch_request(body)?,
        };
        self.inputs = ask.texts.len();
        self.base64 = ask.base64;
        let write = match self.upstream {
            EmbedUpstream::BatchEmbed => embedding::batch_request_body,
            EmbedUpstream::Embeddings => embedding::embeddings_request_body,
        };
        write(&self.model, &ask.texts, ask.dimensions)
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let vectors = match self.upstream {
            EmbedUpstream::BatchEmbed => embedding::parse_batch_answer(body)?,
            EmbedUpstream::Embeddings => embedding::parse_list_answer(body)?,
        };
        match self.client {
            EmbedClient::Embeddings => {
                embedding::check_count(&vectors, self.inputs)?;
                embedding::write_list(&vectors, &self.model, self.base64)
            }
            EmbedClient::EmbedContent => match vectors.as_slice() {
                [values] => embedding::write_embed_answer(values),
                other => Err(TranslateError::InvalidResponse(format!(
                    "{} embeddings for one input",
                    other.len()
                ))),
            },
            EmbedClient::BatchEmbed => {
                embedding::check_count(&vectors, self.inputs)?;
                embedding::write_batch_answer(&vectors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::answer::Piece;
    use super::super::testutil::*;
    use super::super::{openai, select, NoImage, TranslateError, Translator};
    use crate::endpoint::Endpoint;
    use crate::endpoint::Endpoint as E;
    use crate::sse;
    use serde_json::{json, Value};
    use std::borrow::Cow;

    const IMAGEN: &str = "imagen-4.0-generate-001";
    const GEMINI: &str = "gemini-2.5-flash-image";
    const EMBEDDING: &str = "gemini-embedding-001";

    /// Fresh translators for `model` from `from` to `to`.
    fn pair(model: &'static str, from: Endpoint, to: Endpoint) -> impl Fn() -> Box<dyn Translator> {
        move || select(&exchange(model, from, to)).unwrap()
    }

    /// A chat client's translator to `to`; `parts`: images as `image_url` parts.
    fn chat(model: &'static str, to: Endpoint, parts: bool) -> Box<dyn Translator> {
        let exchange = exchange(model, Endpoint::ChatCompletions, to);
        select(&if parts {
            with_parts(exchange)
        } else {
            exchange
        })
        .unwrap()
    }

    /// Every pair's requests: the client's body, and what the upstream is
    /// sent for it (or the error).
    #[test]
    fn requests() {
        let config = json!({"responseModalities":["TEXT","IMAGE"]});
        let request = |text: &str| json!({"model":"models/gemini-embedding-001","content":{"parts":[{"text":text}]}});
        let matrix = [
            (IMAGEN, E::ChatCompletions, E::Predict, vec![
                RequestCase {
                    name: "string content",
                    body: r#"{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"a cat"}]}"#,
                    want: Ok(json!({"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "last user message, text parts joined, image part and history skipped",
                    body: r#"{"model":"imagen-4.0-generate-001","n":2,"size":"1792x1024","messages":[
                        {"role":"system","content":"You are helpful"},
                        {"role":"user","content":"a dog"},
                        {"role":"assistant","content":"![image](data:image/png;base64,AAAA)\n"},
                        {"role":"user","content":[{"type":"text","text":"日本の猫"},{"type":"image_url","image_url":{"url":"data:image/png;base64,BBBB"}},{"type":"text","text":"🐱"}]}]}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"日本の猫\n🐱"}],"parameters":{"sampleCount":2,"aspectRatio":"16:9"}}),
                    ),
                },
                RequestCase {
                    name: "aspect_ratio wins over size, n clamped",
                    body: r#"{"messages":[{"role":"user","content":"x"}],"n":12,"size":"1024x1024","aspect_ratio":"9:16"}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":4,"aspectRatio":"9:16"}}),
                    ),
                },
                RequestCase {
                    name: "n below one asks for one",
                    body: r#"{"messages":[{"role":"user","content":"x"}],"n":-3}"#,
                    want: Ok(json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "content before role",
                    body: r#"{"messages":[{"content":"x y","role":"user"},{"content":"ignored","role":"assistant"}]}"#,
                    want: Ok(json!({"instances":[{"prompt":"x y"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "open webui streaming request",
                    body: r#"{"model":"imagen-3.0-generate-002","messages":[{"role":"user","content":"a cat"}],"stream":true,"stream_options":{"include_usage":true}}"#,
                    want: Ok(json!({"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "assistant and tool content skipped unread when role comes first",
                    body: r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":{"not":"a string"}},{"role":"tool","content":7},{"role":"user","content":"b"}]}"#,
                    want: Ok(json!({"instances":[{"prompt":"b"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "assistant content skipped unread (Gemini reads it, and refuses this)",
                    body: r#"{"messages":[{"role":"assistant","content":{"not":"a string"}},{"role":"user","content":"b"}]}"#,
                    want: Ok(json!({"instances":[{"prompt":"b"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "parts without type, other parts skipped, ratio from size",
                    body: r#"{"messages":[{"role":"user","content":[{"text":"x"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},
                        {"type":"input_audio","input_audio":{"data":"zzz","format":"wav"}},{"type":"refusal","text":"no"}]}],"stream":false,"size":"1024x1024"}"#,
                    want: Ok(json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":1,"aspectRatio":"1:1"}})),
                },
                RequestCase {
                    name: "escaped prompt",
                    body: r#"{"messages":[{"role":"user","content":"line one\nline \"two\" \u65e5"}],"aspect_ratio":"16:9"}"#,
                    want: Ok(json!({"instances":[{"prompt":"line one\nline \"two\" 日"}],"parameters":{"sampleCount":1,"aspectRatio":"16:9"}})),
                },
                RequestCase {
                    name: "the last user message counts, even when not last",
                    body: r#"{"stream_options":null,"messages":[{"content":"first","role":"user"},{"role":"user","content":"second"},{"role":"assistant","content":"ok"}],"unknown":[1,{"a":2}]}"#,
                    want: Ok(json!({"instances":[{"prompt":"second"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "no user message",
                    body: r#"{"messages":[{"role":"system","content":"x"}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "image only",
                    body: r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "null content",
                    body: r#"{"messages":[{"role":"user","content":null}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (GEMINI, E::ChatCompletions, E::ImagesGenerations, vec![
                RequestCase {
                    name: "minimal",
                    body: r#"{"model":"gemini-2.5-flash-image","messages":[{"role":"user","content":"a cat"}]}"#,
                    want: Ok(
                        json!({"model":GEMINI,"prompt":"a cat","n":1,"response_format":"b64_json"}),
                    ),
                },
                RequestCase {
                    name: "size passed, n clamped, unicode",
                    body: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"日本の猫 🐱"}]}],"n":7,"size":"1024x1792"}"#,
                    want: Ok(
                        json!({"model":GEMINI,"prompt":"日本の猫 🐱","n":4,"size":"1024x1792","response_format":"b64_json"}),
                    ),
                },
                RequestCase {
                    name: "n below one asks for one, size with a quote",
                    body: r#"{"messages":[{"role":"user","content":"x"}],"n":0,"size":"\"x\""}"#,
                    want: Ok(
                        json!({"model":GEMINI,"prompt":"x","n":1,"size":"\"x\"","response_format":"b64_json"}),
                    ),
                },
                RequestCase {
                    name: "blank prompt",
                    body: r#"{"messages":[{"role":"user","content":"   "}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (GEMINI, E::ChatCompletions, E::GenerateContent, vec![
                RequestCase {
                    name: "minimal",
                    body: r#"{"model":"gemini-2.5-flash-image","messages":[{"role":"user","content":"a cat"}],"stream":true}"#,
                    want: Ok(
                        json!({"contents":[{"role":"user","parts":[{"text":"a cat"}]}],"generationConfig":config}),
                    ),
                },
                RequestCase {
                    name: "system, n, aspect ratio from size",
                    body: r#"{"messages":[{"role":"system","content":"Draw in watercolour."},{"role":"developer","content":[{"type":"text","text":"No text in images."}]},
                        {"role":"user","content":"日本の猫 🐱"}],"n":2,"size":"1536x1024"}"#,
                    want: Ok(
                        json!({"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],
                        "systemInstruction":{"parts":[{"text":"Draw in watercolour.\n\nNo text in images."}]},
                        "generationConfig":{"responseModalities":["TEXT","IMAGE"],"candidateCount":2,"imageConfig":{"aspectRatio":"3:2"}}}),
                    ),
                },
                RequestCase {
                    name: "n of one is not sent",
                    body: r#"{"messages":[{"role":"user","content":"x"}],"n":1}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "n below one is not sent",
                    body: r#"{"messages":[{"role":"user","content":"x"}],"n":-3}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "the conversation is sent: earlier user images and the model's image too",
                    body: r#"{"messages":[
                        {"role":"user","content":[{"type":"text","text":"a cat"},{"type":"image_url","image_url":{"url":"data:image/png;base64,OLD"}}]},
                        {"role":"assistant","content":"![image](data:image/png;base64,GEN)"},
                        {"role":"user","content":[{"type":"text","text":"make it blue"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/NEW","detail":"high"}},
                            {"type":"image_url","image_url":{"url":"https://example.com/x.png"}},{"type":"image_url","image_url":"data:image/webp;base64,UklGR"}]}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"a cat"},{"inlineData":{"mimeType":"image/png","data":"OLD"}}]},
                        {"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"GEN"}}]},
                        {"role":"user","parts":[{"text":"make it blue"},
                            {"inlineData":{"mimeType":"image/jpeg","data":"/9j/NEW"}},
                            {"inlineData":{"mimeType":"image/webp","data":"UklGR"}}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "two-turn edit: our own markdown answer becomes a model turn with inline data",
                    body: r#"{"model":"gemini-2.5-flash-image","stream":true,"messages":[
                        {"role":"system","content":"Photorealistic."},
                        {"role":"user","content":"a house by a lake"},
                        {"role":"assistant","content":"Here is your house:\n\n![image](data:image/png;base64,iVBORw0KGgo)"},
                        {"role":"user","content":"now make the sky purple"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"a house by a lake"}]},
                        {"role":"model","parts":[{"text":"Here is your house:"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo"}}]},
                        {"role":"user","parts":[{"text":"now make the sky purple"}]}],
                        "systemInstruction":{"parts":[{"text":"Photorealistic."}]},"generationConfig":config})),
                },
                RequestCase {
                    name: "image_url parts in the assistant's history (image_url_parts answers)",
                    body: r#"{"messages":[
                        {"role":"user","content":"a fox"},
                        {"role":"assistant","content":[{"type":"text","text":"A fox:"},{"type":"image_url","image_url":{"url":"data:image/png;base64,FOX1"}}]},
                        {"role":"user","content":"in the snow"},
                        {"role":"assistant","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,FOX2"}},{"type":"image_url","image_url":{"url":"https://cdn.example.com/fox.png"}}]},
                        {"role":"user","content":"at night"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"a fox"}]},
                        {"role":"model","parts":[{"text":"A fox:"},{"inlineData":{"mimeType":"image/png","data":"FOX1"}}]},
                        {"role":"user","parts":[{"text":"in the snow"}]},
                        {"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"FOX2"}}]},
                        {"role":"user","parts":[{"text":"at night"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "consecutive user messages are one turn; a trailing empty assistant message is not a turn",
                    body: r#"{"messages":[{"role":"user","content":"old prompt"},{"role":"user","content":"new prompt"},{"role":"assistant","content":""}]}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"old prompt"},{"text":"new prompt"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "unicode conversation",
                    body: r#"{"messages":[{"role":"user","content":"日本の猫 🐱"},
                        {"role":"assistant","content":"どうぞ 🐈\n\n![image](data:image/png;base64,NEKO)"},
                        {"role":"user","content":"空を紫に \u2014 🟣"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"日本の猫 🐱"}]},
                        {"role":"model","parts":[{"text":"どうぞ 🐈"},{"inlineData":{"mimeType":"image/png","data":"NEKO"}}]},
                        {"role":"user","parts":[{"text":"空を紫に — 🟣"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "system and developer messages, stream null",
                    body: r#"{"messages":[{"role":"system","content":"s1"},{"role":"developer","content":[{"type":"text","text":"s2"}]},{"role":"user","content":"u"}],"stream":null}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"u"}]}],
                        "systemInstruction":{"parts":[{"text":"s1\n\ns2"}]},"generationConfig":config})),
                },
                RequestCase {
                    name: "single turn",
                    body: r#"{"messages":[{"role":"user","content":"a cat"}]}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"a cat"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "edit: the assistant's markdown image becomes inline data between its texts",
                    body: r#"{"messages":[{"role":"user","content":"a cat"},
                        {"role":"assistant","content":"Here is your cat:\n\n![image](data:image/png;base64,iVBORw0KGgo)\n\nEnjoy!"},
                        {"role":"user","content":"now make the sky purple"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"a cat"}]},
                        {"role":"model","parts":[{"text":"Here is your cat:"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo"}},{"text":"Enjoy!"}]},
                        {"role":"user","parts":[{"text":"now make the sky purple"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "markdown images alone, without escapes",
                    body: r#"{"messages":[{"role":"user","content":"cats"},
                        {"role":"assistant","content":"![image](data:image/png;base64,AAAA)![second](data:image/jpeg;base64,/9j/BBBB)"},
                        {"role":"user","content":"the second"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"cats"}]},
                        {"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}},{"inlineData":{"mimeType":"image/jpeg","data":"/9j/BBBB"}}]},
                        {"role":"user","parts":[{"text":"the second"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "assistant parts: text and data images kept, http image and refusal skipped",
                    body: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a cat"}]},
                        {"role":"assistant","content":[{"type":"text","text":"Here:"},{"type":"image_url","image_url":{"url":"data:image/webp;base64,UklGR"}},
                            {"type":"image_url","image_url":{"url":"https://example.com/cat.png"}},{"type":"refusal","refusal":"x"},{"type":"text","text":"Done."}]},
                        {"role":"user","content":"bigger"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"a cat"}]},
                        {"role":"model","parts":[{"text":"Here:"},{"inlineData":{"mimeType":"image/webp","data":"UklGR"}},{"text":"Done."}]},
                        {"role":"user","parts":[{"text":"bigger"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "user images: data urls sent; http, non-image and empty data skipped",
                    body: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"make it blue"},
                        {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/NEW","detail":"high"}},
                        {"type":"image_url","image_url":{"url":"https://example.com/x.png"}},
                        {"type":"image_url","image_url":{"url":"data:text/plain;base64,AAAA"}},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,"}},
                        {"type":"image_url","image_url":"data:image/webp;base64,UklGR"}]}]}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"make it blue"},
                        {"inlineData":{"mimeType":"image/jpeg","data":"/9j/NEW"}},{"inlineData":{"mimeType":"image/webp","data":"UklGR"}}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "markdown http image and broken links stay text",
                    body: r#"{"messages":[{"role":"user","content":"x"},
                        {"role":"assistant","content":"see ![a](https://e.com/a.png) and ![b](data:image/png;base64,AAAA) and ![c] (data:image/png;base64,BBBB) ![d](data:text/plain;base64,CCCC) ![e](data:image/png;base64,DDDD"},
                        {"role":"user","content":"y"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"x"}]},
                        {"role":"model","parts":[{"text":"see ![a](https://e.com/a.png) and"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}},
                            {"text":"and ![c] (data:image/png;base64,BBBB) ![d](data:text/plain;base64,CCCC) ![e](data:image/png;base64,DDDD"}]},
                        {"role":"user","parts":[{"text":"y"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "system, tool and unknown roles are not turns; same roles merge",
                    body: r#"{"messages":[{"role":"system","content":"be nice"},{"role":"user","content":"a"},{"role":"user","content":"b"},
                        {"role":"assistant","content":null,"tool_calls":[{"id":"1"}]},{"role":"tool","content":"{\"x\":1}"},{"role":"function","content":"f"},
                        {"role":"assistant","content":"first"},{"role":"assistant","content":"  "},{"role":"assistant","content":"second"},{"content":"no role"},
                        {"role":"developer","content":"d"},{"role":"user","content":"c"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"a"},{"text":"b"}]},
                        {"role":"model","parts":[{"text":"first"},{"text":"second"}]},
                        {"role":"user","parts":[{"text":"c"}]}],
                        "systemInstruction":{"parts":[{"text":"be nice\n\nd"}]},"generationConfig":config})),
                },
                RequestCase {
                    name: "content before role",
                    body: r#"{"messages":[{"content":"a","role":"user"},{"content":"x\n![image](data:image/png;base64,AAAA)","role":"assistant"},
                        {"content":"ignored","role":"tool"},{"content":"b","role":"user"}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"a"}]},
                        {"role":"model","parts":[{"text":"x"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]},
                        {"role":"user","parts":[{"text":"b"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "unicode and escapes",
                    body: r#"{"messages":[{"role":"user","content":"日本の猫 🐱 \u00e9"},
                        {"role":"assistant","content":"ねこ 🐈:\n![画像](data:image/png;base64,AAAA)\n\u30cd\u30b3"},
                        {"role":"user","content":[{"type":"text","text":"空を紫に 🟣"}]}]}"#,
                    want: Ok(json!({"contents":[
                        {"role":"user","parts":[{"text":"日本の猫 🐱 é"}]},
                        {"role":"model","parts":[{"text":"ねこ 🐈:"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}},{"text":"ネコ"}]},
                        {"role":"user","parts":[{"text":"空を紫に 🟣"}]}],"generationConfig":config})),
                },
                RequestCase {
                    name: "last message is the assistant's: nothing to answer",
                    body: r#"{"messages":[{"role":"user","content":"a cat"},{"role":"assistant","content":"![image](data:image/png;base64,GEN)"}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "last user message has no text",
                    body: r#"{"messages":[{"role":"user","content":"a cat"},{"role":"assistant","content":"ok"},
                        {"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "aspect_ratio field",
                    body: r#"{"messages":[{"role":"user","content":"x"}],"aspect_ratio":"21:9"}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                        "generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"21:9"}}})),
                },
                RequestCase {
                    name: "no prompt",
                    body: r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (IMAGEN, E::ImagesGenerations, E::Predict, vec![
                RequestCase {
                    name: "open webui openai engine",
                    body: r#"{"model":"imagen-4.0-generate-001","prompt":"a cat","n":1,"size":"1024x1024","response_format":"b64_json"}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":1,"aspectRatio":"1:1"}}),
                    ),
                },
                RequestCase {
                    name: "defaults, unicode",
                    body: r#"{"model":"imagen-4.0-generate-001","prompt":"日本の猫 🐱"}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"日本の猫 🐱"}],"parameters":{"sampleCount":1}}),
                    ),
                },
                RequestCase {
                    name: "n clamped, aspect_ratio extra",
                    body: r#"{"prompt":"x","n":10,"size":"auto","aspect_ratio":"4:3"}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":4,"aspectRatio":"4:3"}}),
                    ),
                },
                RequestCase {
                    name: "no prompt",
                    body: r#"{"model":"m"}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (GEMINI, E::ImagesGenerations, E::GenerateContent, vec![
                RequestCase {
                    name: "openai sdk images.generate",
                    body: r#"{"model":"gemini-2.5-flash-image","prompt":"日本の猫 🐱","n":1,"size":"1024x1024","response_format":"b64_json"}"#,
                    want: Ok(
                        json!({"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],
                        "generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"1:1"}}}),
                    ),
                },
                RequestCase {
                    name: "several images",
                    body: r#"{"prompt":"x","n":2}"#,
                    want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                        "generationConfig":{"responseModalities":["TEXT","IMAGE"],"candidateCount":2}})),
                },
                RequestCase {
                    name: "empty prompt",
                    body: r#"{"prompt":""}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (IMAGEN, E::GenerateContent, E::Predict, vec![
                RequestCase {
                    name: "google-genai generate_content",
                    body: r#"{"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],"generationConfig":{"responseModalities":["IMAGE"]}}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"日本の猫 🐱"}],"parameters":{"sampleCount":1}}),
                    ),
                },
                RequestCase {
                    name: "candidates and aspect ratio",
                    body: r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":3,"imageConfig":{"aspectRatio":"3:2"}}}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":3,"aspectRatio":"4:3"}}),
                    ),
                },
                RequestCase {
                    name: "too many candidates",
                    body: r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":8}}"#,
                    want: Ok(json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":4}})),
                },
                RequestCase {
                    name: "no text",
                    body: r#"{"contents":[]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "open webui generateContent",
                    body: r#"{"contents":[{"parts":[{"text":"a cat"}]}]}"#,
                    want: Ok(json!({"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "last user turn, text parts joined, image skipped",
                    body: r#"{"contents":[{"role":"user","parts":[{"text":"old"}]},{"role":"model","parts":[{"text":"ok"}]},
                        {"role":"user","parts":[{"text":"日本の猫"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}},{"text":"🐱"}]}],
                        "generationConfig":{"candidateCount":3,"imageConfig":{"aspectRatio":"9:16"}}}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"日本の猫\n🐱"}],"parameters":{"sampleCount":3,"aspectRatio":"9:16"}}),
                    ),
                },
                RequestCase {
                    name: "snake_case and object contents",
                    body: r#"{"contents":{"role":"user","parts":{"text":"x"}},"generation_config":{"candidate_count":2,"image_config":{"aspect_ratio":"1:1"}}}"#,
                    want: Ok(
                        json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":2,"aspectRatio":"1:1"}}),
                    ),
                },
                RequestCase {
                    name: "trailing model turn ignored",
                    body: r#"{"contents":[{"role":"user","parts":[{"text":"q"}]},{"role":"model","parts":[{"text":"a"}]}]}"#,
                    want: Ok(json!({"instances":[{"prompt":"q"}],"parameters":{"sampleCount":1}})),
                },
                RequestCase {
                    name: "image only",
                    body: r#"{"contents":[{"parts":[{"inlineData":{"data":"AAAA"}}]}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "no contents",
                    body: r#"{}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (GEMINI, E::Predict, E::GenerateContent, vec![
                RequestCase {
                    name: "instances object (older Open WebUI)",
                    body: r#"{"instances":{"prompt":"日本の猫 🐱"},"parameters":{"sampleCount":1,"outputOptions":{"mimeType":"image/png"}}}"#,
                    want: Ok(
                        json!({"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}}),
                    ),
                },
                RequestCase {
                    name: "instances list with ratio and samples",
                    body: r#"{"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":2,"aspectRatio":"9:16"}}"#,
                    want: Ok(
                        json!({"contents":[{"role":"user","parts":[{"text":"a cat"}]}],
                        "generationConfig":{"responseModalities":["TEXT","IMAGE"],"candidateCount":2,"imageConfig":{"aspectRatio":"9:16"}}}),
                    ),
                },
                RequestCase {
                    name: "unknown ratio dropped",
                    body: r#"{"instances":[{"prompt":"a cat"}],"parameters":{"aspectRatio":"wide"}}"#,
                    want: Ok(
                        json!({"contents":[{"role":"user","parts":[{"text":"a cat"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}}),
                    ),
                },
                RequestCase {
                    name: "no prompt",
                    body: r#"{"instances":[{}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "no parameters",
                    body: r#"{"instances":[{"prompt":"x"}]}"#,
                    want: Ok(
                        json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}}),
                    ),
                },
                RequestCase {
                    name: "blank prompt",
                    body: r#"{"instances":[{"prompt":"  "}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "no instances",
                    body: r#"{}"#,
                    want: Err(TranslateError::NoPrompt),
                },
                RequestCase {
                    name: "empty instances",
                    body: r#"{"instances":[]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (EMBEDDING, E::Embeddings, E::BatchEmbedContents, vec![
                RequestCase {
                    name: "one string",
                    body: r#"{"model":"gemini-embedding-001","input":"日本の猫 🐱"}"#,
                    want: Ok(json!({"requests":[request("日本の猫 🐱")]})),
                },
                RequestCase {
                    name: "list with dimensions",
                    body: r#"{"model":"models/gemini-embedding-001","input":["a","b"],"dimensions":768,"encoding_format":"float"}"#,
                    want: Ok(json!({"requests":[
                        {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":768},
                        {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]},"outputDimensionality":768}]})),
                },
                RequestCase {
                    name: "empty list",
                    body: r#"{"input":[]}"#,
                    want: Err(TranslateError::InvalidRequest(
                        "`input` is missing or empty".into(),
                    )),
                },
                RequestCase {
                    name: "missing input",
                    body: r#"{"model":"x"}"#,
                    want: Err(TranslateError::InvalidRequest(
                        "`input` is missing or empty".into(),
                    )),
                },
            ]),
            (EMBEDDING, E::EmbedContent, E::Embeddings, vec![
                RequestCase {
                    name: "google-genai embed_content",
                    body: r#"{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"日本の猫 🐱"}]},"taskType":"RETRIEVAL_QUERY","outputDimensionality":256}"#,
                    want: Ok(
                        json!({"model":"gemini-embedding-001","input":"日本の猫 🐱","dimensions":256,"encoding_format":"float"}),
                    ),
                },
                RequestCase {
                    name: "parts joined, snake_case",
                    body: r#"{"content":{"parts":[{"text":"a"},{"text":"b"}]},"output_dimensionality":8}"#,
                    want: Ok(
                        json!({"model":"gemini-embedding-001","input":"a\nb","dimensions":8,"encoding_format":"float"}),
                    ),
                },
                RequestCase {
                    name: "no text",
                    body: r#"{"content":{"parts":[]}}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
            (EMBEDDING, E::BatchEmbedContents, E::Embeddings, vec![
                RequestCase {
                    name: "two requests",
                    body: r#"{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":3},
                        {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"日本の猫 🐱"}]},"outputDimensionality":3}]}"#,
                    want: Ok(json!({"model":"gemini-embedding-001","input":["a","日本の猫 🐱"],"dimensions":3,"encoding_format":"float"})),
                },
                RequestCase {
                    name: "one request",
                    body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]}}]}"#,
                    want: Ok(json!({"model":"gemini-embedding-001","input":"a","encoding_format":"float"})),
                },
                RequestCase {
                    name: "different dimensions",
                    body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]},"outputDimensionality":3},{"content":{"parts":[{"text":"b"}]}}]}"#,
                    want: Err(TranslateError::InvalidRequest(
                        "requests with different outputDimensionality cannot be sent as one embeddings call".into(),
                    )),
                },
                RequestCase {
                    name: "empty",
                    body: r#"{"requests":[]}"#,
                    want: Err(TranslateError::InvalidRequest("`requests` is missing or empty".into())),
                },
                RequestCase {
                    name: "a request without text",
                    body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{}}]}"#,
                    want: Err(TranslateError::NoPrompt),
                },
            ]),
        ];
        for (model, from, to, cases) in matrix {
            check_requests(pair(model, from, to), cases);
        }
        // Chat bodies that are not chat requests, refused both where only the
        // last prompt is read (Imagen) and where the history is (Gemini), with
        // our reason where we give one.
        for (name, body, why) in [
            ("not json", "{", None),
            ("not json, a word", "{oops", None),
            ("not an object", "[1]", None),
            (
                "no messages",
                r#"{"model":"x"}"#,
                Some("`messages` is missing"),
            ),
            (
                "messages null",
                r#"{"messages":null}"#,
                Some("`messages` is missing"),
            ),
            ("messages a string", r#"{"messages":"hi"}"#, None),
            ("messages an object", r#"{"messages":{}}"#, None),
            (
                "content a number",
                r#"{"messages":[{"role":"user","content":3}]}"#,
                None,
            ),
            ("trailing bytes", r#"{"messages":[]} x"#, None),
        ] {
            for to in [E::Predict, E::GenerateContent] {
                let got = pair("m", E::ChatCompletions, to)().translate_request(body.as_bytes());
                let Err(TranslateError::InvalidRequest(message)) = got else {
                    panic!("{name} ({to}): {got:?}");
                };
                if let Some(why) = why {
                    assert_eq!(message, why, "{name} ({to})");
                }
            }
        }
        // Other bodies that are not the client's shape at all.
        for (from, to, name, body) in [
            (
                E::ChatCompletions,
                E::GenerateContent,
                "assistant content an object, read for the history",
                r#"{"messages":[{"role":"assistant","content":{"not":"a string"}},{"role":"user","content":"b"}]}"#,
            ),
            (E::GenerateContent, E::Predict, "a list", "[1]"),
            (E::Predict, E::GenerateContent, "not json", "{"),
            (
                E::Predict,
                E::GenerateContent,
                "instances a string",
                r#"{"instances":"a cat"}"#,
            ),
            (
                E::ImagesGenerations,
                E::GenerateContent,
                "prompt a number",
                r#"{"prompt":3}"#,
            ),
            (
                E::Embeddings,
                E::BatchEmbedContents,
                "token array",
                r#"{"input":[[1,2,3]]}"#,
            ),
            (
                E::Embeddings,
                E::BatchEmbedContents,
                "number",
                r#"{"input":5}"#,
            ),
        ] {
            let got = pair("m", from, to)().translate_request(body.as_bytes());
            assert!(
                matches!(got, Err(TranslateError::InvalidRequest(_))),
                "{name}: {got:?}"
            );
        }
    }

    /// Every pair's answers that are not chat completions: the upstream's
    /// answer (after the request, when one is given), and what the client
    /// gets for it (or the error).
    #[test]
    fn responses() {
        let usage = json!({"prompt_tokens":0,"total_tokens":0});
        let matrix = [
            (IMAGEN, E::ImagesGenerations, E::Predict, None, vec![
                ResponseCase {
                    name: "two images, one with a rewritten prompt",
                    upstream: r#"{"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png","prompt":"a fluffy cat"},{"bytesBase64Encoded":"iBBB","mimeType":"image/png"}]}"#,
                    want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA","revised_prompt":"a fluffy cat"},{"b64_json":"iBBB"}]})),
                },
                ResponseCase {
                    name: "filtered",
                    upstream: r#"{"predictions":[{"raiFilteredReason":"prohibited"}]}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said("prohibited".into()))),
                },
                ResponseCase {
                    name: "empty",
                    upstream: r#"{}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said(
                        "the answer has no predictions (Imagen leaves out images its safety filter blocks)".into(),
                    ))),
                },
                ResponseCase {
                    name: "a prediction without data or reason",
                    upstream: r#"{"predictions":[{"mimeType":"image/png"}]}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said("the predictions carry no image data".into()))),
                },
            ]),
            (GEMINI, E::ImagesGenerations, E::GenerateContent, None, vec![
                ResponseCase {
                    name: "text becomes revised_prompt",
                    upstream: r#"{"candidates":[{"content":{"parts":[{"text":"A calico cat."},{"inlineData":{"mimeType":"image/png","data":"iAAA"}}]},"finishReason":"STOP"}]}"#,
                    want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA","revised_prompt":"A calico cat."}]})),
                },
                ResponseCase {
                    name: "two candidates, no text",
                    upstream: r#"{"candidates":[{"content":{"parts":[{"inlineData":{"data":"iAAA"}}]},"index":0},{"content":{"parts":[{"inlineData":{"data":"iBBB"}}]},"index":1}]}"#,
                    want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA"},{"b64_json":"iBBB"}]})),
                },
                ResponseCase {
                    name: "sse",
                    upstream: "data: {\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"data\":\"iAAA\"}}]}}]}\n\ndata: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n",
                    want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA"}]})),
                },
                ResponseCase {
                    name: "image safety",
                    upstream: r#"{"candidates":[{"finishReason":"IMAGE_SAFETY"}]}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said("finishReason IMAGE_SAFETY".into()))),
                },
                ResponseCase {
                    name: "text only",
                    upstream: r#"{"candidates":[{"content":{"parts":[{"text":"Sorry, I can't."}]},"finishReason":"STOP"}]}"#,
                    want: Err(TranslateError::NoImage(NoImage::Text("Sorry, I can't.".into()))),
                },
            ]),
            (GEMINI, E::Predict, E::GenerateContent, None, vec![
                ResponseCase {
                    name: "text dropped, image kept",
                    upstream: r#"{"candidates":[{"content":{"parts":[{"text":"Here you go"},{"inlineData":{"mimeType":"image/png","data":"iAAA"}}]},"finishReason":"STOP"}]}"#,
                    want: Ok(
                        json!({"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"}]}),
                    ),
                },
                ResponseCase {
                    name: "two images",
                    upstream: r#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"iAAA"}},{"inlineData":{"mimeType":"image/jpeg","data":"/9j/"}}]}}]}"#,
                    want: Ok(
                        json!({"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"},{"bytesBase64Encoded":"/9j/","mimeType":"image/jpeg"}]}),
                    ),
                },
                ResponseCase {
                    name: "image safety",
                    upstream: r#"{"candidates":[{"finishReason":"IMAGE_SAFETY","finishMessage":"Unable to show the generated image."}]}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said(
                        "finishReason IMAGE_SAFETY: Unable to show the generated image.".into(),
                    ))),
                },
                ResponseCase {
                    name: "no candidates",
                    upstream: r#"{"promptFeedback":{"blockReason":"OTHER"}}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said(
                        "the prompt was blocked (OTHER)".into(),
                    ))),
                },
            ]),
            (EMBEDDING, E::EmbedContent, E::Embeddings, None, vec![
                ResponseCase {
                    name: "one vector",
                    upstream: r#"{"object":"list","data":[{"object":"embedding","embedding":[0.25,-0.5],"index":0}],"model":"gemini-embedding-001"}"#,
                    want: Ok(json!({"embedding":{"values":[0.25,-0.5]}})),
                },
                ResponseCase {
                    name: "none",
                    upstream: r#"{"object":"list","data":[]}"#,
                    want: Err(TranslateError::InvalidResponse(
                        "0 embeddings for one input".into(),
                    )),
                },
            ]),
            (EMBEDDING, E::BatchEmbedContents, E::Embeddings, Some(r#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}"#), vec![
                ResponseCase {
                    name: "out of order data sorted by index",
                    upstream: r#"{"data":[{"embedding":[2.0],"index":1},{"embedding":[1.0],"index":0}]}"#,
                    want: Ok(json!({"embeddings":[{"values":[1.0]},{"values":[2.0]}]})),
                },
                ResponseCase {
                    name: "count mismatch",
                    upstream: r#"{"data":[{"embedding":[1.0],"index":0}]}"#,
                    want: Err(TranslateError::InvalidResponse(
                        "1 embeddings for 2 inputs".into(),
                    )),
                },
                ResponseCase {
                    name: "no data",
                    upstream: r#"{"error":"x"}"#,
                    want: Err(TranslateError::InvalidResponse(
                        "the answer has no `data`".into(),
                    )),
                },
            ]),
            (EMBEDDING, E::Embeddings, E::BatchEmbedContents, Some(r#"{"input":["a","b"]}"#), vec![
                ResponseCase {
                    name: "two vectors",
                    upstream: r#"{"embeddings":[{"values":[0.1,-0.2]},{"values":[0.3,1e-7]}]}"#,
                    want: Ok(json!({"object":"list","data":[
                        {"object":"embedding","index":0,"embedding":[0.1,-0.2]},
                        {"object":"embedding","index":1,"embedding":[0.3,1e-7]}],"model":EMBEDDING,"usage":usage})),
                },
                ResponseCase {
                    name: "count mismatch",
                    upstream: r#"{"embeddings":[{"values":[0.1]}]}"#,
                    want: Err(TranslateError::InvalidResponse(
                        "1 embeddings for 2 inputs".into(),
                    )),
                },
            ]),
            (EMBEDDING, E::Embeddings, E::BatchEmbedContents, Some(r#"{"input":"a","encoding_format":"base64"}"#), vec![
                ResponseCase {
                    name: "base64",
                    upstream: r#"{"embeddings":[{"values":[1.0,-2.0]}]}"#,
                    // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0
                    want: Ok(
                        json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPwAAAMA="}],"model":EMBEDDING,"usage":usage}),
                    ),
                },
            ]),
            (EMBEDDING, E::Embeddings, E::BatchEmbedContents, Some(r#"{"input":"a"}"#), vec![
                ResponseCase {
                    name: "wrong shape",
                    upstream: r#"{"embedding":{"values":[0.1]}}"#,
                    want: Err(TranslateError::InvalidResponse(
                        "the answer has no `embeddings`".into(),
                    )),
                },
            ]),
        ];
        for (model, from, to, request, cases) in matrix {
            match request {
                Some(request) => {
                    check_responses(after_request(pair(model, from, to), request), cases)
                }
                None => check_responses(pair(model, from, to), cases),
            }
        }
        // Answers that are not the upstream's shape at all.
        for (model, from, to, body) in [
            (IMAGEN, E::ImagesGenerations, E::Predict, "[]"),
            (IMAGEN, E::ChatCompletions, E::Predict, "<html>"),
            (GEMINI, E::ImagesGenerations, E::GenerateContent, "{oops"),
            (GEMINI, E::ImagesGenerations, E::StreamGenerateContent, ""),
            (
                GEMINI,
                E::ImagesGenerations,
                E::StreamGenerateContent,
                "data: {\"candidates\":3}\n\n",
            ),
            (
                GEMINI,
                E::ImagesGenerations,
                E::StreamGenerateContent,
                "data: {\"error\":{\"code\":500,\"message\":\"boom\",\"status\":\"INTERNAL\"}}\n\n",
            ),
            (
                EMBEDDING,
                E::EmbedContent,
                E::Embeddings,
                r#"{"data":[{"embedding":"AACAPw=="}]}"#,
            ),
        ] {
            let got = pair(model, from, to)().translate_response(body.as_bytes());
            assert!(
                matches!(got, Err(TranslateError::InvalidResponse(_))),
                "{body}: {got:?}"
            );
        }
    }

    /// Every chat pair's answers: what the upstream answers a chat request,
    /// and the chat completion, or the chunk events of a stream, the client
    /// gets for it.
    #[test]
    fn chat_answers() {
        struct Case {
            name: &'static str,
            model: &'static str,
            to: Endpoint,
            /// Images as `image_url` parts.
            parts: bool,
            request: String,
            upstream: String,
            content: Value,
            finish_reason: &'static str,
            usage: Value,
        }
        let ask =
            |rest: &str| format!(r#"{{"messages":[{{"role":"user","content":"a cat"}}]{rest}}}"#);
        let whole = ask(r#","stream":false,"stream_options":{"include_usage":true}"#);
        let streamed = ask(r#","stream":true,"stream_options":{"include_usage":true}"#);
        let no_image =
            |model: &str, why: &str| format!("No image was returned by {model}. Reason: \"{why}\"");
        let no_predictions =
            "the answer has no predictions (Imagen leaves out images its safety filter blocks)";

        let (a, b) = (fake_b64('A', 4000), fake_b64('B', 3000));
        let two = format!(
            r#"{{"predictions":[{{"bytesBase64Encoded":"{a}","mimeType":"image/png"}},{{"mimeType":"image/jpeg","bytesBase64Encoded":"{b}"}}]}}"#
        );
        let frame = |parts: Value, extra: Value| {
            let mut response =
                json!({"candidates":[{"content":{"role":"model","parts":parts},"index":0}]});
            if let (Some(r), Some(extra)) = (response.as_object_mut(), extra.as_object()) {
                r.extend(extra.clone());
            }
            format!("data: {response}\r\n\r\n")
        };
        let img = fake_b64('Q', 5000);
        let usage_meta = json!({"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1290,"totalTokenCount":1297}});
        let usage = json!({"prompt_tokens":7,"completion_tokens":1290,"total_tokens":1297});
        let sse = [
            frame(json!([{"text":"Here is "}]), json!({})),
            frame(json!([{"text":"your cat:"}]), json!({})),
            frame(
                json!([{"inlineData":{"mimeType":"image/png","data":img}}]),
                json!({}),
            ),
            frame(json!([{"text":"Enjoy!"}]), usage_meta.clone()),
        ]
        .concat();
        let unary = json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Here is your cat:"},{"inlineData":{"mimeType":"image/png","data":img}}]},"finishReason":"STOP","index":0}],
            "usageMetadata":usage_meta["usageMetadata"]}).to_string();
        let markdown = json!(format!(
            "Here is your cat:\n\n![image](data:image/png;base64,{img})\n\nEnjoy!"
        ));
        // The usual case: a Gemini image model by `:generateContent`, images
        // as markdown, no stream, a `stop` and no usage; each case says how
        // it differs.
        let base = || Case {
            name: "",
            model: GEMINI,
            to: E::GenerateContent,
            parts: false,
            request: whole.clone(),
            upstream: String::new(),
            content: Value::Null,
            finish_reason: "stop",
            usage: json!({"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}),
        };
        let imagen = || Case {
            model: IMAGEN,
            to: E::Predict,
            request: ask(""),
            ..base()
        };
        // Imagen answering one PNG, without its MIME type.
        let one_png = || Case {
            upstream: r#"{"predictions":[{"bytesBase64Encoded":"iAAA"}]}"#.into(),
            content: json!("![image](data:image/png;base64,iAAA)"),
            ..imagen()
        };
        let images = || Case {
            to: E::ImagesGenerations,
            request: ask(r#","stream":false"#),
            ..base()
        };
        let cases = [
            Case {
                name: "imagen: two images as markdown",
                upstream: two.clone(),
                content: json!(format!("![image](data:image/png;base64,{a})\n\n![image](data:image/jpeg;base64,{b})")),
                ..imagen()
            },
            Case {
                name: "imagen: two images as parts",
                parts: true,
                upstream: two,
                content: json!([
                    {"type":"image_url","image_url":{"url":format!("data:image/png;base64,{a}")}},
                    {"type":"image_url","image_url":{"url":format!("data:image/jpeg;base64,{b}")}}]),
                ..imagen()
            },
            Case {
                name: "imagen: filtered",
                upstream: r#"{"predictions":[{"raiFilteredReason":"Your current safety filter threshold prohibited one or more images."}]}"#.into(),
                content: json!(no_image(IMAGEN, "Your current safety filter threshold prohibited one or more images.")),
                finish_reason: "content_filter",
                ..imagen()
            },
            Case {
                name: "imagen: empty answer",
                parts: true,
                upstream: "{}".into(),
                content: json!([{"type":"text","text":no_image(IMAGEN, no_predictions)}]),
                finish_reason: "content_filter",
                ..imagen()
            },
            Case {
                name: "imagen: open webui request with usage",
                request: r#"{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"日本の猫 🐱"}],"stream":true,"stream_options":{"include_usage":true}}"#.into(),
                upstream: r#"{"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"}]}"#.into(),
                content: json!("![image](data:image/png;base64,iAAA)"),
                ..imagen()
            },
            Case {
                name: "imagen: stream without usage",
                request: r#"{"messages":[{"role":"user","content":"x"}],"stream":true}"#.into(),
                upstream: r#"{"predictions":[{"bytesBase64Encoded":"iAAA"},{"bytesBase64Encoded":"iBBB"}]}"#.into(),
                content: json!("![image](data:image/png;base64,iAAA)\n\n![image](data:image/png;base64,iBBB)"),
                ..imagen()
            },
            Case {
                name: "imagen: a null stream is no stream",
                request: ask(r#","stream":null"#),
                ..one_png()
            },
            Case {
                name: "imagen: null stream_options ask for no usage",
                request: ask(r#","stream":true,"stream_options":null"#),
                ..one_png()
            },
            Case {
                name: "imagen: stream, filtered",
                request: r#"{"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":false}}"#.into(),
                upstream: r#"{"predictions":[]}"#.into(),
                content: json!(no_image(IMAGEN, no_predictions)),
                finish_reason: "content_filter",
                ..imagen()
            },
            Case {
                name: "images: png and jpeg sniffed",
                upstream: r#"{"created":1,"data":[{"b64_json":"iVBORw0KGgo","revised_prompt":"ignored"},{"b64_json":"/9j/4AAQ"}]}"#.into(),
                content: json!("![image](data:image/png;base64,iVBORw0KGgo)\n\n![image](data:image/jpeg;base64,/9j/4AAQ)"),
                ..images()
            },
            Case {
                name: "images: streamed",
                request: ask(r#","stream":true"#),
                upstream: r#"{"data":[{"b64_json":"iVBORw0KGgo"}]}"#.into(),
                content: json!("![image](data:image/png;base64,iVBORw0KGgo)"),
                ..images()
            },
            Case {
                name: "images: no data",
                upstream: r#"{"created":1,"data":[]}"#.into(),
                content: json!(no_image(GEMINI, "the answer has no b64_json images")),
                finish_reason: "content_filter",
                ..images()
            },
            Case {
                name: "images: url only",
                request: ask(r#","stream":true"#),
                upstream: r#"{"data":[{"url":"https://example.com/x.png"}]}"#.into(),
                content: json!(no_image(GEMINI, "the answer has no b64_json images")),
                finish_reason: "content_filter",
                ..images()
            },
            Case {
                name: "gemini: unary, text and image",
                upstream: unary.clone(),
                content: json!(format!("Here is your cat:\n\n![image](data:image/png;base64,{img})")),
                usage: usage.clone(),
                ..base()
            },
            Case {
                name: "gemini: unary as parts",
                parts: true,
                upstream: unary,
                content: json!([{"type":"text","text":"Here is your cat:"},{"type":"image_url","image_url":{"url":format!("data:image/png;base64,{img}")}}]),
                usage: usage.clone(),
                ..base()
            },
            Case {
                name: "gemini: sse collected, not streamed to client",
                to: E::StreamGenerateContent,
                upstream: sse.clone(),
                content: markdown.clone(),
                usage: usage.clone(),
                ..base()
            },
            Case {
                name: "gemini: sse collected and streamed",
                to: E::StreamGenerateContent,
                request: streamed.clone(),
                upstream: sse,
                content: markdown,
                usage,
                ..base()
            },
            Case {
                name: "gemini: image safety",
                to: E::StreamGenerateContent,
                request: streamed.clone(),
                upstream: "data: {\"candidates\":[{\"finishReason\":\"IMAGE_SAFETY\",\"index\":0}]}\n\n".into(),
                content: json!(no_image(GEMINI, "finishReason IMAGE_SAFETY")),
                finish_reason: "content_filter",
                ..base()
            },
            Case {
                name: "gemini: text only answer is passed on",
                upstream: r#"{"candidates":[{"content":{"parts":[{"text":"Which cat do you mean?"}]},"finishReason":"STOP"}]}"#.into(),
                content: json!("Which cat do you mean?"),
                ..base()
            },
            Case {
                name: "gemini: text with a safety stop says both",
                upstream: r#"{"candidates":[{"content":{"parts":[{"text":"I will draw it."}]},"finishReason":"IMAGE_SAFETY","finishMessage":"blocked"}]}"#.into(),
                content: json!(format!("I will draw it.\n\n{}", no_image(GEMINI, "finishReason IMAGE_SAFETY: blocked"))),
                finish_reason: "content_filter",
                ..base()
            },
            Case {
                name: "gemini: prompt blocked",
                parts: true,
                upstream: r#"{"promptFeedback":{"blockReason":"SAFETY","blockReasonMessage":"unsafe prompt"},"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}"#.into(),
                content: json!([{"type":"text","text":no_image(GEMINI, "the prompt was blocked (SAFETY): unsafe prompt")}]),
                finish_reason: "content_filter",
                usage: json!({"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}),
                ..base()
            },
        ];
        for case in cases {
            let (_, got) = run(
                &mut *chat(case.model, case.to, case.parts),
                &case.request,
                &case.upstream,
            );
            let request = json(case.request.as_bytes());
            if request["stream"] != true {
                let want = json!({"object":"chat.completion","created":CREATED,"model":case.model,
                    "choices":[{"index":0,"message":{"role":"assistant","content":case.content},"logprobs":null,"finish_reason":case.finish_reason}],
                    "usage":case.usage});
                assert_eq!(chat_completion(&got), want, "{}", case.name);
                continue;
            }
            let chunk = |choices: Value| json!({"object":"chat.completion.chunk","created":CREATED,"model":case.model,"choices":choices});
            let mut want = vec![
                chunk(
                    json!([{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]),
                ),
                chunk(
                    json!([{"index":0,"delta":{"content":case.content},"logprobs":null,"finish_reason":null}]),
                ),
                chunk(
                    json!([{"index":0,"delta":{},"logprobs":null,"finish_reason":case.finish_reason}]),
                ),
            ];
            if request["stream_options"]["include_usage"] == true {
                let mut usage = chunk(json!([]));
                usage["usage"] = case.usage;
                want.push(usage);
            }
            assert_eq!(chat_chunks(&got), want, "{}", case.name);
        }
    }

    /// Native `:generateContent` to Imagen `:predict`, in each framing.
    mod generate_content_to_predict {
        use super::*;
        const MODEL: &str = IMAGEN;

        fn translator(from: Endpoint, client_sse: bool) -> Box<dyn Translator> {
            let mut exchange = exchange(MODEL, from, Endpoint::Predict);
            exchange.client_sse = client_sse;
            select(&exchange).unwrap()
        }
        #[test]
        fn responses() {
            let upstream = r#"{"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"},{"bytesBase64Encoded":"iBBB","mimeType":"image/png"}]}"#;
            let want = json!({"candidates":[{"content":{"role":"model","parts":[
                {"inlineData":{"mimeType":"image/png","data":"iAAA"}},{"inlineData":{"mimeType":"image/png","data":"iBBB"}}]},
                "finishReason":"STOP","index":0}],
                "usageMetadata":{"promptTokenCount":0,"candidatesTokenCount":0,"totalTokenCount":0},
                "modelVersion":MODEL});
            for (name, from, client_sse, content_type) in [
                ("unary", E::GenerateContent, false, "application/json"),
                (
                    "stream sse",
                    E::StreamGenerateContent,
                    true,
                    "text/event-stream",
                ),
                (
                    "stream array",
                    E::StreamGenerateContent,
                    false,
                    "application/json",
                ),
            ] {
                let got = translator(from, client_sse)
                    .translate_response(upstream.as_bytes())
                    .unwrap();
                assert_eq!(got.content_type, content_type, "{name}");
                let docs: Vec<Value> = match (from, client_sse) {
                    (Endpoint::GenerateContent, _) => vec![json(&got.body)],
                    (_, true) => sse::data_frames(&got.body)
                        .iter()
                        .map(|f| json(f))
                        .collect(),
                    (_, false) => serde_json::from_slice(&got.body).unwrap(),
                };
                assert_eq!(docs, vec![want.clone()], "{name}");
            }
        }

        #[test]
        fn no_image_is_an_error() {
            let cases = [
                ResponseCase {
                    name: "filtered",
                    upstream: r#"{"predictions":[{"raiFilteredReason":"blocked"}]}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said("blocked".into()))),
                },
                ResponseCase {
                    name: "empty",
                    upstream: r#"{"predictions":[]}"#,
                    want: Err(TranslateError::NoImage(NoImage::Said(
                        "the answer has no predictions (Imagen leaves out images its safety filter blocks)".into(),
                    ))),
                },
            ];
            check_responses(|| translator(Endpoint::StreamGenerateContent, true), cases);
        }
    }

    /// `chat/completions` to a Gemini image model, whole or event by event.
    mod chat_to_generate_content {
        use super::*;
        const MODEL: &str = GEMINI;

        fn translator(to: Endpoint, parts: bool) -> Box<dyn Translator> {
            chat(MODEL, to, parts)
        }
        #[test]
        fn a_long_conversation_is_copied_once_into_a_right_sized_buffer() {
            const MB: usize = 1024 * 1024;
            let (a, b, c) = (
                fake_b64('A', 2 * MB),
                fake_b64('B', 2 * MB),
                fake_b64('C', 2 * MB),
            );
            // Turn one: the user's photo; turn two: the model's answer as our
            // own markdown (escaped newlines around the image) and a second
            // image as a part; turn three: the edit.
            // Written by hand: clients put `role` before `content` (a
            // `serde_json::Value` would sort the keys).
            let body = format!(
                r#"{{"model":"{MODEL}","messages":[
                {{"role":"user","content":[{{"type":"text","text":"a house by a lake"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{a}"}}}}]}},
                {{"role":"assistant","content":"Here is your house:\n\n![image](data:image/png;base64,{b})"}},
                {{"role":"user","content":"now make the sky purple"}},
                {{"role":"assistant","content":[{{"type":"text","text":"Purple:"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{c}"}}}}]}},
                {{"role":"user","content":"and add a moon"}}]}}"#
            );
            let images = a.len() + b.len() + c.len();

            let parsed = openai::parse_chat_conversation(body.as_bytes(), &[]).unwrap();
            let range = body.as_bytes().as_ptr_range();
            let borrowed: Vec<bool> = parsed
                .contents
                .turns()
                .iter()
                .flat_map(|turn| &turn.parts)
                .filter_map(|piece| match piece {
                    Piece::Image(image) => {
                        Some(matches!(&image.data, Cow::Borrowed(d) if range.contains(&d.as_ptr())))
                    }
                    Piece::Text(_) => None,
                })
                .collect();
            assert_eq!(
                borrowed,
                [true, true, true],
                "image data borrowed from the body"
            );
            let prompt_only = openai::parse_chat(body.as_bytes(), &[]).unwrap();
            assert!(
                prompt_only.contents.turns().is_empty(),
                "only Gemini's history is read"
            );

            let sent = translator(Endpoint::GenerateContent, false)
                .translate_request(body.as_bytes())
                .unwrap();
            assert!(
                sent.len() > images && sent.len() < images + 1024,
                "length {}",
                sent.len()
            );
            assert!(
                sent.capacity() < images + 4096,
                "one buffer, never regrown: capacity {}",
                sent.capacity()
            );
            let sent = json(&sent);
            let datas: Vec<&str> = sent["contents"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|turn| turn["parts"].as_array().unwrap())
                .filter_map(|part| part["inlineData"]["data"].as_str())
                .collect();
            assert_eq!(datas, [a.as_str(), b.as_str(), c.as_str()]);
            let roles: Vec<&str> = sent["contents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|turn| turn["role"].as_str().unwrap())
                .collect();
            assert_eq!(roles, ["user", "model", "user", "model", "user"]);
        }

        #[test]
        fn large_images_are_copied_once_into_a_right_sized_buffer() {
            let img = fake_b64('Z', 3 * 1024 * 1024);
            let upstream = format!(
                r#"{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/png","data":"{img}"}}}}]}}}}]}}"#
            );
            let mut t = translator(Endpoint::GenerateContent, false);
            let (_, got) = run(
                &mut *t,
                r#"{"messages":[{"role":"user","content":"x"}]}"#,
                &upstream,
            );
            assert!(
                got.body.capacity() < img.len() + 4096,
                "capacity {}",
                got.body.capacity()
            );
            let content = &chat_completion(&got)["choices"][0]["message"]["content"];
            assert_eq!(
                content,
                &json!(format!("![image](data:image/png;base64,{img})"))
            );
        }

        #[test]
        fn image_data_is_copied_as_is_only_when_it_needs_no_escape() {
            // Plain base64 is copied as it is; data with escapes in the request
            // (a quote, a backslash, a control character: not base64, but the
            // client's to send) is decoded and escaped again, so the body sent
            // is JSON whatever the data holds.
            let cases = [
                (r#"QUJD+/8="#, "QUJD+/8="),
                (
                    r#"AB\"}]}],\"x\":\"C\\D\u0001"#,
                    "AB\"}]}],\"x\":\"C\\D\u{1}",
                ),
                (r#"\u0041BC"#, "ABC"),
            ];
            for (raw, want) in cases {
                let body = format!(
                    r#"{{"messages":[{{"role":"user","content":[{{"type":"text","text":"edit"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{raw}"}}}}]}}]}}"#
                );
                let mut t = translator(Endpoint::GenerateContent, false);
                let sent = t.translate_request(body.as_bytes()).unwrap();
                let sent: Value = serde_json::from_slice(&sent).unwrap();
                let parts = &sent["contents"][0]["parts"];
                assert_eq!(parts[1]["inlineData"]["data"], want, "{raw}");
                assert_eq!(parts.as_array().map(Vec::len), Some(2), "{raw}");
            }
        }

        /// The `delta.content` of each chunk event in `events`, and the
        /// finish reasons, in order; `[DONE]` as "DONE".
        fn deltas(events: &[u8]) -> Vec<String> {
            let text = String::from_utf8_lossy(events);
            text.split("\n\n")
                .filter_map(|e| e.strip_prefix("data: "))
                .map(|e| {
                    if e == "[DONE]" {
                        return "DONE".to_owned();
                    }
                    let v: Value = serde_json::from_str(e).unwrap();
                    match (
                        &v["choices"][0]["delta"]["content"],
                        &v["choices"][0]["finish_reason"],
                    ) {
                        (Value::String(c), _) => format!("content:{c}"),
                        (_, Value::String(f)) => format!("finish:{f}"),
                        _ if v["usage"].is_object() => "usage".to_owned(),
                        _ => "other".to_owned(),
                    }
                })
                .collect()
        }

        #[test]
        fn a_streamed_answer_is_translated_event_by_event() {
            let exchange = exchange(
                MODEL,
                Endpoint::ChatCompletions,
                Endpoint::StreamGenerateContent,
            );
            let mut t = select(&exchange).unwrap();
            t.translate_request(
                br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a cat"}]}"#,
            )
            .unwrap();
            assert!(t.streams());
            let frames: [&[u8]; 4] = [
                br#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":"Here is "}]}}]}"#,
                br#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":"your cat"}]}}]}"#,
                br#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"iVBOR"}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":5,"totalTokenCount":7}}"#,
                b"[DONE]",
            ];
            let got: Vec<(Vec<String>, bool)> = frames
                .iter()
                .map(|f| {
                    let (events, done) = t.translate_event(f).unwrap();
                    (deltas(&events), done)
                })
                .collect();
            let want = vec![
                (
                    vec!["content:".to_owned(), "content:Here is ".to_owned()],
                    false,
                ),
                (vec!["content:your cat".to_owned()], false),
                (
                    vec![
                        "content:\n\n![image](data:image/png;base64,iVBOR)".to_owned(),
                        "finish:stop".to_owned(),
                        "usage".to_owned(),
                        "DONE".to_owned(),
                    ],
                    true,
                ),
                (vec![], true),
            ];
            assert_eq!(got, want);
            assert!(t.end_stream(None).is_empty(), "closed once");
        }

        #[test]
        fn a_streamed_answer_without_an_image_says_why_at_the_end() {
            let streamed = exchange(
                MODEL,
                Endpoint::ChatCompletions,
                Endpoint::StreamGenerateContent,
            );
            let mut t = select(&streamed).unwrap();
            t.translate_request(
                br#"{"stream":true,"messages":[{"role":"user","content":"a cat"}]}"#,
            )
            .unwrap();
            let (events, done) = t
                .translate_event(br#"{"candidates":[{"index":0,"content":{"parts":[{"text":"I can't draw that."}]}}]}"#)
                .unwrap();
            assert_eq!(deltas(&events), ["content:", "content:I can't draw that."]);
            assert!(!done);
            // Text alone is passed on as text, as in a whole answer.
            assert_eq!(deltas(&t.end_stream(None)), ["finish:stop", "DONE"]);
            let mut blocked = select(&streamed).unwrap();
            blocked
                .translate_request(
                    br#"{"stream":true,"messages":[{"role":"user","content":"a cat"}]}"#,
                )
                .unwrap();
            let (events, done) = blocked
                .translate_event(br#"{"candidates":[{"index":0,"finishReason":"IMAGE_SAFETY"}]}"#)
                .unwrap();
            assert!(done);
            assert_eq!(
                deltas(&events),
                [
                    "content:".to_owned(),
                    format!("content:No image was returned by {MODEL}. Reason: \"finishReason IMAGE_SAFETY\""),
                    "finish:content_filter".to_owned(),
                    "DONE".to_owned()
                ]
            );
            let mut failed = select(&streamed).unwrap();
            failed
                .translate_request(br#"{"stream":true,"messages":[{"role":"user","content":"x"}]}"#)
                .unwrap();
            assert_eq!(
                deltas(&failed.end_stream(Some("gemini-router: too large"))),
                [
                    "content:",
                    "content:gemini-router: too large",
                    "finish:content_filter",
                    "DONE"
                ]
            );
            // Not streamed: a whole answer, or an upstream that does not stream.
            let unary = exchange(MODEL, Endpoint::ChatCompletions, Endpoint::GenerateContent);
            let mut t = select(&unary).unwrap();
            t.translate_request(br#"{"stream":true,"messages":[{"role":"user","content":"x"}]}"#)
                .unwrap();
            assert!(!t.streams());
        }
    }
}
