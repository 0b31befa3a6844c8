//! OpenAI-compatibility shapes: chat completion and `images/generations`
//! requests in, chat completions (JSON or SSE chunks) and images answers out.

use super::answer::{sniff_mime, Answer, Image, Piece};
use super::aspect;
use super::json::{self, JStr, Out};
use super::sse;
use super::{
    Exchange, ImageMessageFormat, TranslateError, Translated, CONTENT_TYPE_JSON, CONTENT_TYPE_SSE,
};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// What a chat client asked an image model for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatRequest<'a> {
    /// Text of the last user message (text parts joined by newlines).
    pub(crate) prompt: String,
    /// `data:` URL images of the last user message (other URLs are skipped).
    pub(crate) images: Vec<Image<'a>>,
    /// System and developer messages, joined by blank lines.
    pub(crate) system: Option<String>,
    pub(crate) n: Option<i64>,
    /// The client's `size`, as given.
    pub(crate) size: Option<String>,
    /// Width over height, from `aspect_ratio` (preferred) or `size`.
    pub(crate) aspect: Option<f64>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
}

/// Reads a chat completion request. Only the fields an image request needs
/// are read; the content of assistant messages (earlier images) and all
/// other fields are skipped without being copied.
pub(crate) fn parse_chat(body: &[u8]) -> Result<ChatRequest<'_>, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        messages: Option<Vec<Message<'a>>>,
        n: Option<i64>,
        #[serde(borrow)]
        size: Option<JStr<'a>>,
        #[serde(borrow)]
        aspect_ratio: Option<JStr<'a>>,
        stream: Option<bool>,
        stream_options: Option<StreamOptions>,
    }
    #[derive(serde::Deserialize)]
    struct StreamOptions {
        include_usage: Option<bool>,
    }
    let raw: Raw = json::request(body)?;
    let messages = raw
        .messages
        .ok_or_else(|| TranslateError::InvalidRequest("`messages` is missing".to_owned()))?;
    let mut system = Vec::new();
    let mut last_user = None;
    for message in messages {
        match message.role.as_deref() {
            Some("user") => {
                last_user = Some(message.content.unwrap_or(Content::Text(JStr::default())))
            }
            Some("system" | "developer") => {
                let text = message.content.map(|c| c.text()).unwrap_or_default();
                if !text.is_empty() {
                    system.push(text);
                }
            }
            _ => {}
        }
    }
    let (prompt, images) = match last_user {
        Some(content) => (content.text(), content.into_images()),
        None => (String::new(), Vec::new()),
    };
    let aspect = raw
        .aspect_ratio
        .as_deref()
        .and_then(aspect::ratio)
        .or_else(|| raw.size.as_deref().and_then(aspect::ratio));
    Ok(ChatRequest {
        prompt,
        images,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        n: raw.n,
        size: raw.size.map(|s| s.to_string()),
        aspect,
        stream: raw.stream.unwrap_or(false),
        include_usage: raw
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

/// A chat message: only `role` and, for roles whose text is used, `content`.
struct Message<'a> {
    role: Option<JStr<'a>>,
    content: Option<Content<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Message<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for MessageVisitor<'a> {
            type Value = Message<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chat message object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<'a>, A::Error> {
                let mut message = Message {
                    role: None,
                    content: None,
                };
                while let Some(key) = map.next_key::<JStr<'de>>()? {
                    match &*key {
                        "role" => message.role = map.next_value()?,
                        // Clients write `role` first; when they do, the
                        // (possibly multi-MB) content of assistant and tool
                        // messages is skipped unread.
                        "content"
                            if message.role.as_deref().map_or(true, |role| {
                                matches!(role, "user" | "system" | "developer")
                            }) =>
                        {
                            message.content = map.next_value()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(message)
            }
        }

        deserializer.deserialize_map(MessageVisitor(PhantomData))
    }
}

/// Message content: a string or a list of parts.
enum Content<'a> {
    Text(JStr<'a>),
    Parts(Vec<ContentPart<'a>>),
}

impl<'a> Content<'a> {
    fn text(&self) -> String {
        match self {
            Content::Text(text) => text.trim().to_owned(),
            Content::Parts(parts) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter(|p| p.kind.as_deref().map_or(true, |k| k == "text"))
                    .filter_map(|p| p.text.as_deref())
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect();
                texts.join("\n")
            }
        }
    }

    fn into_images(self) -> Vec<Image<'a>> {
        match self {
            Content::Text(_) => Vec::new(),
            Content::Parts(parts) => parts
                .into_iter()
                .filter_map(|p| p.image_url)
                .filter_map(|url| data_url(&url))
                .collect(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ContentVisitor<'a> {
            type Value = Content<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of content parts")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Content<'a>, E> {
                Ok(Content::Text(JStr(Cow::Borrowed(v))))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Content<'a>, E> {
                Ok(Content::Text(JStr(Cow::Owned(v.to_owned()))))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Content<'a>, E> {
                Ok(Content::Text(JStr(Cow::Owned(v))))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }

        deserializer.deserialize_any(ContentVisitor(PhantomData))
    }
}

#[derive(serde::Deserialize)]
struct ContentPart<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<JStr<'a>>,
    #[serde(borrow)]
    text: Option<JStr<'a>>,
    #[serde(borrow)]
    image_url: Option<ImageUrl<'a>>,
}

/// `image_url` as `{"url": ...}` or, from lenient clients, a bare string.
struct ImageUrl<'a>(JStr<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for ImageUrl<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UrlVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for UrlVisitor<'a> {
            type Value = ImageUrl<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an image_url object or string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<ImageUrl<'a>, E> {
                Ok(ImageUrl(JStr(Cow::Borrowed(v))))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ImageUrl<'a>, E> {
                Ok(ImageUrl(JStr(Cow::Owned(v.to_owned()))))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ImageUrl<'a>, A::Error> {
                let mut url = JStr::default();
                while let Some(key) = map.next_key::<JStr<'de>>()? {
                    if &*key == "url" {
                        url = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ImageUrl(url))
            }
        }

        deserializer.deserialize_any(UrlVisitor(PhantomData))
    }
}

/// `data:image/png;base64,DATA` as an image borrowing `DATA`.
fn data_url<'a>(url: &ImageUrl<'a>) -> Option<Image<'a>> {
    let s: &str = &url.0;
    let rest = s.strip_prefix("data:")?;
    let marker = rest.find(";base64,")?;
    let mime_start = "data:".len();
    let data_start = mime_start + marker + ";base64,".len();
    let mime = url.0.slice(mime_start..mime_start + marker);
    let data = url.0.slice(data_start..s.len());
    if data.is_empty() || !mime.starts_with("image/") {
        return None;
    }
    Some(Image {
        mime,
        data,
        revised_prompt: None,
    })
}

/// Writes chat completion answers for one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatReply {
    id: String,
    model: String,
    created: u64,
    format: ImageMessageFormat,
    stream: bool,
    include_usage: bool,
}

impl ChatReply {
    /// A reply for a non-streaming request; [`ChatReply::for_request`] sets the rest.
    pub(crate) fn new(exchange: &Exchange<'_>) -> ChatReply {
        ChatReply {
            id: chat_id(exchange.model, "", exchange.created),
            model: exchange.model.to_owned(),
            created: exchange.created,
            format: exchange.options.image_format,
            stream: false,
            include_usage: false,
        }
    }

    /// Takes streaming choices and a stable id from the request.
    pub(crate) fn for_request(&mut self, request: &ChatRequest<'_>) {
        self.id = chat_id(&self.model, &request.prompt, self.created);
        self.stream = request.stream;
        self.include_usage = request.include_usage;
    }

    /// The answer as a `chat.completion`, or as `chat.completion.chunk`
    /// events when the request streamed. An answer without an image becomes
    /// an assistant message that says why, with `finish_reason: content_filter`
    /// (a text-only answer without a filter reason is passed on as text).
    pub(crate) fn write(&self, answer: &Answer<'_>) -> Translated {
        let note =
            if answer.has_image() || (answer.withheld.is_empty() && !answer.text().is_empty()) {
                None
            } else {
                Some(format!(
                    "No image was returned by {}. Reason: \"{}\"",
                    self.model,
                    answer.no_image_reason()
                ))
            };
        let finish_reason = if note.is_some() {
            "content_filter"
        } else {
            "stop"
        };
        let usage = answer.usage.unwrap_or_default();
        let mut out = Out::with_capacity(
            answer.payload_len()
                + note.as_ref().map_or(0, |n| n.len() * 2)
                + self.model.len() * 5
                + 1024,
        );
        let head = |out: &mut Out, object: &str| {
            out.raw("{\"id\":")
                .string(&self.id)
                .raw(",\"object\":\"")
                .raw(object)
                .raw("\",\"created\":")
                .number(self.created)
                .raw(",\"model\":")
                .string(&self.model);
        };
        let usage_object = |out: &mut Out| {
            out.raw("{\"prompt_tokens\":")
                .number(usage.prompt_tokens)
                .raw(",\"completion_tokens\":")
                .number(usage.completion_tokens)
                .raw(",\"total_tokens\":")
                .number(usage.total_tokens)
                .raw("}");
        };
        if !self.stream {
            head(&mut out, "chat.completion");
            out.raw(",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
            self.write_content(&mut out, answer, note.as_deref());
            out.raw("},\"logprobs\":null,\"finish_reason\":\"")
                .raw(finish_reason)
                .raw("\"}],\"usage\":");
            usage_object(&mut out);
            out.raw("}");
            return Translated {
                body: out.into_bytes(),
                content_type: CONTENT_TYPE_JSON,
            };
        }
        let chunk = "chat.completion.chunk";
        out.raw("data: ");
        head(&mut out, chunk);
        out.raw(",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        out.raw("data: ");
        head(&mut out, chunk);
        out.raw(",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        self.write_content(&mut out, answer, note.as_deref());
        out.raw("},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        out.raw("data: ");
        head(&mut out, chunk);
        out.raw(",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"")
            .raw(finish_reason)
            .raw("\"}]}\n\n");
        if self.include_usage {
            out.raw("data: ");
            head(&mut out, chunk);
            out.raw(",\"choices\":[],\"usage\":");
            usage_object(&mut out);
            out.raw("}\n\n");
        }
        out.raw(sse::DONE);
        Translated {
            body: out.into_bytes(),
            content_type: CONTENT_TYPE_SSE,
        }
    }

    /// The `content` value: a markdown string (pieces separated by blank
    /// lines, each image `![image](data:MIME;base64,DATA)`) or a list of
    /// `text` / `image_url` parts.
    fn write_content(&self, out: &mut Out, answer: &Answer<'_>, note: Option<&str>) {
        let note = note.map(|n| Piece::Text(n.to_owned()));
        let pieces = answer
            .pieces
            .iter()
            .chain(note.as_ref())
            .filter(|p| !matches!(p, Piece::Text(t) if t.trim().is_empty()));
        match self.format {
            ImageMessageFormat::Markdown => {
                out.raw("\"");
                for (i, piece) in pieces.enumerate() {
                    if i > 0 {
                        out.raw("\\n\\n");
                    }
                    match piece {
                        Piece::Text(text) => {
                            out.escaped(text.trim());
                        }
                        Piece::Image(image) => {
                            out.raw("![image](data:")
                                .escaped(&image.mime)
                                .raw(";base64,")
                                .escaped(&image.data)
                                .raw(")");
                        }
                    }
                }
                out.raw("\"");
            }
            ImageMessageFormat::ImageUrlParts => {
                out.raw("[");
                for (i, piece) in pieces.enumerate() {
                    if i > 0 {
                        out.raw(",");
                    }
                    match piece {
                        Piece::Text(text) => {
                            out.raw("{\"type\":\"text\",\"text\":")
                                .string(text.trim())
                                .raw("}");
                        }
                        Piece::Image(image) => {
                            out.raw("{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:")
                                .escaped(&image.mime)
                                .raw(";base64,")
                                .escaped(&image.data)
                                .raw("\"}}");
                        }
                    }
                }
                out.raw("]");
            }
        }
    }
}

/// `chatcmpl-` and a digest of the model, prompt and time.
fn chat_id(model: &str, prompt: &str, created: u64) -> String {
    let digest = json::digest(&[model.as_bytes(), prompt.as_bytes(), &created.to_le_bytes()]);
    format!("chatcmpl-{digest:016x}")
}

/// What an `images/generations` client asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImagesRequest {
    pub(crate) prompt: String,
    pub(crate) n: Option<i64>,
    /// Width over height, from `aspect_ratio` (preferred) or `size`.
    pub(crate) aspect: Option<f64>,
}

/// Reads an `images/generations` body. `response_format: "url"` cannot be
/// honoured (there is no URL to give); the answer always carries `b64_json`.
pub(crate) fn parse_images(body: &[u8]) -> Result<ImagesRequest, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        prompt: Option<JStr<'a>>,
        n: Option<i64>,
        #[serde(borrow)]
        size: Option<JStr<'a>>,
        #[serde(borrow)]
        aspect_ratio: Option<JStr<'a>>,
    }
    let raw: Raw = json::request(body)?;
    let prompt = raw.prompt.map(|p| p.trim().to_owned()).unwrap_or_default();
    if prompt.is_empty() {
        return Err(TranslateError::NoPrompt);
    }
    Ok(ImagesRequest {
        prompt,
        n: raw.n,
        aspect: raw
            .aspect_ratio
            .as_deref()
            .and_then(aspect::ratio)
            .or_else(|| raw.size.as_deref().and_then(aspect::ratio)),
    })
}

/// An `images/generations` request body for the compat layer.
pub(crate) fn images_request_body(
    model: &str,
    prompt: &str,
    n: i64,
    size: Option<&str>,
) -> Result<Vec<u8>, TranslateError> {
    #[derive(Serialize)]
    struct Body<'a> {
        model: &'a str,
        prompt: &'a str,
        n: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<&'a str>,
        response_format: &'static str,
    }
    json::to_body(&Body {
        model,
        prompt,
        n,
        size,
        response_format: "b64_json",
    })
}

/// Reads the compat layer's `{"data":[{"b64_json","revised_prompt"}]}`.
pub(crate) fn parse_images_answer(body: &[u8]) -> Result<Answer<'_>, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        data: Option<Vec<Item<'a>>>,
    }
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        #[serde(borrow)]
        b64_json: Option<JStr<'a>>,
        #[serde(borrow)]
        revised_prompt: Option<JStr<'a>>,
    }
    let raw: Raw = json::response(body)?;
    let mut answer = Answer::default();
    for item in raw.data.unwrap_or_default() {
        if let Some(data) = item.b64_json.filter(|d| !d.is_empty()) {
            answer.push_image(Image {
                mime: Cow::Borrowed(sniff_mime(&data)),
                data: data.into_cow(),
                revised_prompt: item.revised_prompt.map(JStr::into_cow),
            });
        }
    }
    if !answer.has_image() {
        answer
            .withheld
            .push("the answer has no b64_json images".to_owned());
    }
    Ok(answer)
}

/// Writes `{"created":..,"data":[{"b64_json":..,"revised_prompt"?}]}`. An
/// image's own revised prompt wins; otherwise the answer's text (what a
/// Gemini image model said) is given as `revised_prompt`.
pub(crate) fn write_images_answer(answer: &Answer<'_>, created: u64) -> Translated {
    let text = answer.text();
    let mut out = Out::with_capacity(answer.payload_len() + text.len() * 4 + 64);
    out.raw("{\"created\":").number(created).raw(",\"data\":[");
    for (i, image) in answer.images().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"b64_json\":").string(&image.data);
        match image.revised_prompt.as_deref() {
            Some(revised) => {
                out.raw(",\"revised_prompt\":").string(revised);
            }
            None if !text.is_empty() => {
                out.raw(",\"revised_prompt\":").string(&text);
            }
            None => {}
        }
        out.raw("}");
    }
    out.raw("]}");
    Translated {
        body: out.into_bytes(),
        content_type: CONTENT_TYPE_JSON,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chat_requests() {
        struct Case {
            name: &'static str,
            body: &'static str,
            prompt: &'static str,
            images: Vec<(&'static str, &'static str)>,
            system: Option<&'static str>,
            stream: (bool, bool),
            aspect: Option<f64>,
        }
        let cases = [
            Case {
                name: "open webui streaming request",
                body: r#"{"model":"imagen-3.0-generate-002","messages":[{"role":"user","content":"a cat"}],"stream":true,"stream_options":{"include_usage":true}}"#,
                prompt: "a cat",
                images: vec![],
                system: None,
                stream: (true, true),
                aspect: None,
            },
            Case {
                name: "assistant content is skipped unread when role comes first",
                body: r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":{"not":"a string"}},{"role":"tool","content":7},{"role":"user","content":"b"}]}"#,
                prompt: "b",
                images: vec![],
                system: None,
                stream: (false, false),
                aspect: None,
            },
            Case {
                name: "data urls, other urls skipped, parts without type",
                body: r#"{"messages":[{"role":"user","content":[{"text":"x"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},
                    {"type":"image_url","image_url":{"url":"data:text/plain;base64,AAAA"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,"}},
                    {"type":"input_audio","input_audio":{"data":"zzz","format":"wav"}}]}],"stream":false,"size":"1024x1024"}"#,
                prompt: "x",
                images: vec![("image/png", "AAAA")],
                system: None,
                stream: (false, false),
                aspect: Some(1.0),
            },
            Case {
                name: "system and developer",
                body: r#"{"messages":[{"role":"system","content":"s1"},{"role":"developer","content":[{"type":"text","text":"s2"}]},{"role":"user","content":"u"}],"stream":null}"#,
                prompt: "u",
                images: vec![],
                system: Some("s1\n\ns2"),
                stream: (false, false),
                aspect: None,
            },
            Case {
                name: "escaped prompt",
                body: r#"{"messages":[{"role":"user","content":"line one\nline \"two\" \u65e5"}],"aspect_ratio":"16:9"}"#,
                prompt: "line one\nline \"two\" 日",
                images: vec![],
                system: None,
                stream: (false, false),
                aspect: Some(16.0 / 9.0),
            },
        ];
        for case in cases {
            let got = parse_chat(case.body.as_bytes()).unwrap();
            assert_eq!(got.prompt, case.prompt, "{}", case.name);
            let images: Vec<(&str, &str)> =
                got.images.iter().map(|i| (&*i.mime, &*i.data)).collect();
            assert_eq!(images, case.images, "{}", case.name);
            assert_eq!(got.system.as_deref(), case.system, "{}", case.name);
            assert_eq!(
                (got.stream, got.include_usage),
                case.stream,
                "{}",
                case.name
            );
            assert_eq!(got.aspect, case.aspect, "{}", case.name);
        }
    }

    #[test]
    fn input_image_data_is_borrowed() {
        let body = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo"}}]}]}"#;
        let got = parse_chat(body).unwrap();
        assert!(matches!(got.images[0].data, Cow::Borrowed("iVBORw0KGgo")));
    }

    #[test]
    fn chat_ids_are_stable_and_distinct() {
        let a = chat_id("m", "a cat", 1);
        assert_eq!(a, chat_id("m", "a cat", 1));
        assert_ne!(a, chat_id("m", "a dog", 1));
        assert_ne!(a, chat_id("m", "a cat", 2));
        assert_eq!(a.len(), "chatcmpl-".len() + 16);
    }
}
