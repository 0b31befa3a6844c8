//! OpenAI-compatibility shapes: chat completion and `images/generations`
//! requests in, chat completions (JSON or SSE chunks) and images answers out.

use super::answer::{sniff_mime, Answer, Image, Piece, Usage};
use super::aspect;
use super::codec::ImageAsk;
use super::gemini::{Contents, Role};
use super::{Exchange, ImageMessageFormat, NoImage, TranslateError, Translated};
use crate::headers::EVENT_STREAM;
use crate::json::Out;
use crate::reader::{self, JStr, ReadError, Reader};
use crate::sse;
use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::ops::Range;

/// What a chat client asked an image model for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatRequest<'a> {
    /// Text of the last user message (text parts joined by newlines).
    pub(crate) prompt: String,
    /// The conversation as Gemini `contents`. Only
    /// [`parse_chat_conversation`] reads it; [`parse_chat`] leaves it empty.
    pub(crate) contents: Contents<'a>,
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

/// Reads a chat completion request for a model without conversations
/// (Imagen): only the last user message's text and the fields an image
/// request needs are read; the content of assistant and tool messages
/// (earlier images) and all other fields are skipped without being copied.
/// `long_strings`: where a scan found the body's long strings (or none).
#[inline(never)]
pub(crate) fn parse_chat<'a>(
    body: &'a [u8],
    long_strings: &[Range<usize>],
) -> Result<ChatRequest<'a>, TranslateError> {
    parse(body, long_strings, History::Skip)
}

/// Reads a chat completion request with its conversation, for Gemini
/// image models that edit their earlier images.
///
/// Each user message becomes a user turn (its text, then its `data:` URL
/// images); each assistant message a model turn (its text with the markdown
/// data-URL images taken out, and those images and its `image_url` parts as
/// inline data, in order). Images given by `http(s)` URL cannot be sent
/// inline and are skipped; markdown links to them stay in the text. Tool and
/// function messages are skipped unread. Image data is borrowed from `body`.
#[inline(never)]
pub(crate) fn parse_chat_conversation<'a>(
    body: &'a [u8],
    long_strings: &[Range<usize>],
) -> Result<ChatRequest<'a>, TranslateError> {
    parse(body, long_strings, History::Read)
}

/// Whether the earlier turns of a conversation are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum History {
    /// Only the last user message counts.
    Skip,
    /// User and assistant messages become `contents`.
    Read,
}

fn parse<'a>(
    body: &'a [u8],
    long_strings: &[Range<usize>],
    history: History,
) -> Result<ChatRequest<'a>, TranslateError> {
    let locator = Locator::new(body);
    let raw = read_chat(
        Reader::with_long_strings(body, long_strings),
        history,
        &locator,
    )
    .map_err(TranslateError::unread_request)?;
    let messages = raw
        .messages
        .ok_or_else(|| TranslateError::invalid_request("`messages` is missing"))?;
    let mut system = Vec::new();
    let mut prompt = String::new();
    let mut contents = Contents::default();
    for message in messages {
        match message.role.as_deref() {
            Some("user") => {
                let content = message.content.unwrap_or(Content::Text(JStr::default()));
                prompt = content.text();
                if history == History::Read {
                    let mut parts = vec![Piece::Text(prompt.clone())];
                    parts.extend(content.into_images().map(Piece::Image));
                    contents.push(Role::User, parts);
                }
            }
            Some("assistant") if history == History::Read => {
                if let Some(content) = message.content {
                    contents.push(Role::Model, content.into_model_parts());
                }
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
    let aspect = raw
        .aspect_ratio
        .as_deref()
        .and_then(aspect::ratio)
        .or_else(|| raw.size.as_deref().and_then(aspect::ratio));
    Ok(ChatRequest {
        prompt,
        contents,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        n: raw.n,
        size: raw.size.map(|s| s.to_string()),
        aspect,
        stream: raw.stream.unwrap_or(false),
        include_usage: raw.include_usage.unwrap_or(false),
    })
}

/// The top-level fields of a chat request that are read.
#[derive(Default)]
struct RawChat<'a> {
    messages: Option<Vec<Message<'a>>>,
    n: Option<i64>,
    size: Option<JStr<'a>>,
    aspect_ratio: Option<JStr<'a>>,
    stream: Option<bool>,
    include_usage: Option<bool>,
}

/// Reads the request object: the fields above, every other one checked
/// and passed over.
fn read_chat<'a>(
    mut r: Reader<'a, '_>,
    history: History,
    locator: &Locator<'a>,
) -> Result<RawChat<'a>, ReadError> {
    let mut raw = RawChat::default();
    r.object(&mut |r, key| {
        if key.is("messages") {
            raw.messages = r.opt(|r| r.list(|r| read_message(r, history, locator)))?;
        } else if key.is("n") {
            raw.n = r.opt_int()?;
        } else if key.is("size") {
            raw.size = r.opt_str()?;
        } else if key.is("aspect_ratio") {
            raw.aspect_ratio = r.opt_str()?;
        } else if key.is("stream") {
            raw.stream = r.opt_bool()?;
        } else if key.is("stream_options") {
            let options = r.opt(|r| r.field(&["include_usage"], Reader::opt_bool))?;
            raw.include_usage = options.flatten().flatten();
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    r.end()?;
    Ok(raw)
}

/// A chat message: only `role` and, for roles whose content is used, `content`.
#[derive(Default)]
struct Message<'a> {
    role: Option<JStr<'a>>,
    content: Option<Content<'a>>,
}

/// Reads one message.
fn read_message<'a>(
    r: &mut Reader<'a, '_>,
    history: History,
    locator: &Locator<'a>,
) -> Result<Message<'a>, ReadError> {
    let mut message = Message::default();
    r.object(&mut |r, key| {
        // Clients write `role` first; when they do, the (possibly
        // multi-MB) content of messages that are not used is skipped
        // unread: tool messages, and assistant messages unless the history
        // is read. (Content before its role is read as plain text, so an
        // assistant image in an escaped string is then copied rather than
        // located.)
        let used = |role: &str| {
            matches!(role, "user" | "system" | "developer")
                || (role == "assistant" && history == History::Read)
        };
        if key.is("role") {
            message.role = r.opt_str()?;
        } else if key.is("content") && message.role.as_deref().map_or(true, used) {
            let markdown = message.role.as_deref() == Some("assistant");
            message.content = read_content(r, markdown, locator)?;
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(message)
}

/// Message content: a string or a list of parts.
enum Content<'a> {
    Text(JStr<'a>),
    Parts(Vec<ContentPart<'a>>),
    /// An assistant string that had escapes, already split into text and
    /// its markdown data-URL images (see [`Locator`]).
    Markdown(Vec<Piece<'a>>),
}

impl<'a> Content<'a> {
    fn text(&self) -> String {
        match self {
            Content::Text(text) => text.trim().to_owned(),
            Content::Parts(parts) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter_map(ContentPart::text)
                    .map(|t| t.trim())
                    .filter(|t| !t.is_empty())
                    .collect();
                texts.join("\n")
            }
            Content::Markdown(pieces) => {
                let texts: Vec<&str> = pieces
                    .iter()
                    .filter_map(|piece| match piece {
                        Piece::Text(text) => Some(text.as_str()),
                        Piece::Image(_) => None,
                    })
                    .collect();
                texts.join("\n\n")
            }
        }
    }

    /// The `data:` URL images of `image_url` parts (other URLs are skipped).
    fn into_images(self) -> impl Iterator<Item = Image<'a>> {
        let parts = match self {
            Content::Parts(parts) => parts,
            Content::Text(_) | Content::Markdown(_) => Vec::new(),
        };
        parts
            .into_iter()
            .filter_map(|p| p.image_url)
            .filter_map(|url| data_url(&url))
    }

    /// An assistant message as model parts, in order: text with markdown
    /// data-URL images taken out, and those images and the `data:` URL
    /// images of `image_url` parts as inline data.
    fn into_model_parts(self) -> Vec<Piece<'a>> {
        match self {
            Content::Text(text) => split_plain_markdown(&text),
            Content::Markdown(pieces) => pieces,
            Content::Parts(parts) => {
                let mut pieces = Vec::with_capacity(parts.len());
                for part in parts {
                    if let Some(text) = part.text() {
                        pieces.extend(split_plain_markdown(text));
                    } else if let Some(image) = part.image_url.and_then(|url| data_url(&url)) {
                        pieces.push(Piece::Image(image));
                    }
                }
                pieces
            }
        }
    }
}

/// Reads a message's content (or `null`). `markdown`: the message is the
/// assistant's, whose text may carry markdown data-URL images.
fn read_content<'a>(
    r: &mut Reader<'a, '_>,
    markdown: bool,
    locator: &Locator<'a>,
) -> Result<Option<Content<'a>>, ReadError> {
    match r.peek() {
        Some(b'"') => {
            let text = r.str()?.decode()?;
            let Cow::Owned(v) = &text.0 else {
                return Ok(Some(Content::Text(text)));
            };
            if !markdown {
                return Ok(Some(Content::Text(text)));
            }
            // A string with escapes, decoded: an assistant string is split
            // here, its images borrowed from the body where it holds them
            // verbatim, so that the whole string is not copied again.
            let pieces = split_markdown(v, &mut |mime, data| {
                let data = v.get(data).unwrap_or_default();
                Image {
                    mime: Cow::Owned(v.get(mime).unwrap_or_default().to_owned()),
                    data: locator
                        .find(data)
                        .map_or_else(|| Cow::Owned(data.to_owned()), Cow::Borrowed),
                    // Found in the body, not read as a string of it.
                    plain_json: false,
                    revised_prompt: None,
                }
            });
            Ok(Some(Content::Markdown(pieces)))
        }
        Some(b'[') => Ok(Some(Content::Parts(r.list(read_part)?))),
        _ if r.null() => Ok(None),
        _ => Err(r.expected("a string or a list of content parts")),
    }
}

/// Reads one content part.
fn read_part<'a>(r: &mut Reader<'a, '_>) -> Result<ContentPart<'a>, ReadError> {
    let mut part = ContentPart::default();
    r.object(&mut |r, key| {
        if key.is("type") {
            part.kind = r.opt_str()?;
        } else if key.is("text") {
            part.text = r.opt_str()?;
        } else if key.is("image_url") {
            part.image_url = read_image_url(r)?;
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(part)
}

/// Reads `image_url`: `{"url": ...}` or, from lenient clients, a bare
/// string; or `null`.
fn read_image_url<'a>(r: &mut Reader<'a, '_>) -> Result<Option<JStr<'a>>, ReadError> {
    match r.peek() {
        Some(b'"') => Ok(Some(r.str()?.decode()?)),
        Some(b'{') => {
            let url = r.field(&["url"], |r| r.str()?.decode())?;
            Ok(Some(url.unwrap_or_default()))
        }
        _ if r.null() => Ok(None),
        _ => Err(r.expected("an image_url object or string")),
    }
}

#[derive(Default)]
struct ContentPart<'a> {
    /// `type`.
    kind: Option<JStr<'a>>,
    text: Option<JStr<'a>>,
    /// `image_url`'s URL.
    image_url: Option<JStr<'a>>,
}

impl<'a> ContentPart<'a> {
    /// The text of a `text` part (or of a part without `type`).
    fn text(&self) -> Option<&JStr<'a>> {
        if self.kind.as_deref().map_or(true, |k| k == "text") {
            self.text.as_ref()
        } else {
            None
        }
    }
}

/// `data:image/png;base64,DATA` as an image borrowing `DATA` when `url` is
/// borrowed. Other URLs (`http(s)`) cannot be sent inline: `None`.
fn data_url<'a>(url: &JStr<'a>) -> Option<Image<'a>> {
    let (mime, data) = data_url_ranges(url)?;
    Some(Image::parsed(url.slice(mime), url.part(data), None))
}

/// Where the MIME type and the data are in `data:image/...;base64,DATA`.
fn data_url_ranges(url: &str) -> Option<(Range<usize>, Range<usize>)> {
    const SCHEME: &str = "data:";
    const MARKER: &str = ";base64,";
    let marker = url.strip_prefix(SCHEME)?.find(MARKER)?;
    let mime = SCHEME.len()..SCHEME.len() + marker;
    let data = mime.end + MARKER.len()..url.len();
    let image = url.get(mime.clone())?.starts_with("image/") && !data.is_empty();
    image.then_some((mime, data))
}

/// Splits assistant text at its markdown data-URL images
/// (`![alt](data:image/png;base64,DATA)`, as [`ChatReply`] writes them):
/// the text around them (trimmed, blank pieces left out) and, for each, the
/// image `image` makes from the ranges of its MIME type and data in `text`.
/// Other markdown, links to `http(s)` images included, stays text.
fn split_markdown<'a>(
    text: &str,
    image: &mut dyn FnMut(Range<usize>, Range<usize>) -> Image<'a>,
) -> Vec<Piece<'a>> {
    fn push_text(pieces: &mut Vec<Piece<'_>>, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
    }
    let mut pieces = Vec::new();
    let mut done = 0;
    let mut at = 0;
    while let Some(link) = text.get(at..).and_then(|rest| rest.find("![")) {
        let start = at + link;
        at = start + "![".len();
        let Some((mime, data, end)) = markdown_data_image(text, start) else {
            continue;
        };
        push_text(&mut pieces, text.get(done..start).unwrap_or(""));
        pieces.push(Piece::Image(image(mime, data)));
        done = end;
        at = end;
    }
    push_text(&mut pieces, text.get(done..).unwrap_or(""));
    pieces
}

/// [`split_markdown`] of a string as it was read, its images parts of it.
fn split_plain_markdown<'a>(text: &JStr<'a>) -> Vec<Piece<'a>> {
    split_markdown(text, &mut |mime, data| {
        Image::parsed(text.slice(mime), text.part(data), None)
    })
}

/// The markdown image that starts at `start` (at `![`), when it is one
/// with a `data:` image URL: the ranges of its MIME type and data, and
/// where the link ends. The alt text is one line without brackets; the URL
/// is made of the characters of a data URL and ends at `)` (no title).
///
/// Neither scan can run past the next `![`, so splitting a text looks at
/// each byte a bounded number of times, whatever the text.
fn markdown_data_image(text: &str, start: usize) -> Option<(Range<usize>, Range<usize>, usize)> {
    let in_url = |c: char| c.is_ascii_alphanumeric() || "+/=:;,.-_".contains(c);
    let alt_start = start + "![".len();
    let alt_len = text.get(alt_start..)?.find(['[', ']', '\n'])?;
    let url_start = alt_start + alt_len + "](".len();
    if text.get(alt_start + alt_len..url_start)? != "](" {
        return None;
    }
    let rest = text.get(url_start..)?;
    let url_end = url_start + rest.find(|c| !in_url(c))?;
    if text.get(url_end..)?.starts_with(')') {
        let (mime, data) = data_url_ranges(text.get(url_start..url_end)?)?;
        let shift = |r: Range<usize>| r.start + url_start..r.end + url_start;
        Some((shift(mime), shift(data), url_end + ")".len()))
    } else {
        None
    }
}

/// Finds image data, decoded from a JSON string that had escapes, verbatim
/// in the request body, so that it can be borrowed instead of copied.
///
/// `serde_json` hands out a borrowed `&str` only for strings without
/// escapes. An assistant message such as
/// `"Here it is:\n\n![image](data:image/png;base64,...)"` has escapes around
/// its image, so the whole string, image included, arrives decoded in a
/// temporary buffer. The base64 itself has no escapes, so the same bytes are
/// in the body: they are looked up there (`str::find`, linear time) and
/// borrowed. Strings are read in body order, so each search starts where the
/// previous one ended and the searches together scan the body about once.
/// After one miss (a client that escapes `/` in base64) the locator gives up
/// and the remaining images are copied. Any match is byte-for-byte the data,
/// so what is borrowed is always right.
struct Locator<'de> {
    body: &'de [u8],
    text: OnceCell<Option<&'de str>>,
    from: Cell<usize>,
    missed: Cell<bool>,
}

impl<'de> Locator<'de> {
    fn new(body: &'de [u8]) -> Locator<'de> {
        Locator {
            body,
            text: OnceCell::new(),
            from: Cell::new(0),
            missed: Cell::new(false),
        }
    }

    /// `data` as a slice of the body, or `None` when it is not found there.
    fn find(&self, data: &str) -> Option<&'de str> {
        if self.missed.get() || data.is_empty() {
            return None;
        }
        let body = (*self
            .text
            .get_or_init(|| std::str::from_utf8(self.body).ok()))?;
        let from = self.from.get();
        let found = body.get(from..).and_then(|rest| rest.find(data));
        let Some(at) = found else {
            self.missed.set(true);
            return None;
        };
        let start = from + at;
        self.from.set(start + data.len());
        body.get(start..start + data.len())
    }
}

const CHUNK: &str = "chat.completion.chunk";
const ROLE_DELTA: &str = "{\"role\":\"assistant\",\"content\":\"\"}";
/// How much of a streamed answer's text is kept to quote when it brought
/// no image.
const NOTE_TEXT: usize = 1024;

/// What a streamed chat answer has written so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamState {
    started: bool,
    /// The kind of the last piece written (`true`: an image).
    last_image: Option<bool>,
    images: usize,
    /// The start of the answer's text (for the reason when there is no image).
    text: String,
    withheld: Vec<String>,
    usage: Option<Usage>,
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

    /// Takes streaming choices and a stable id from the request. A stream
    /// always carries markdown: OpenAI's `delta.content` is a string, and
    /// clients that accumulate it (the SDK's stream helper) drop a list.
    #[inline(never)]
    pub(crate) fn for_request(&mut self, request: &ChatRequest<'_>) {
        self.id = chat_id(&self.model, &request.prompt, self.created);
        self.stream = request.stream;
        self.include_usage = request.include_usage;
        if request.stream {
            self.format = ImageMessageFormat::Markdown;
        }
    }

    /// Whether the client asked for a stream.
    pub(crate) fn streams(&self) -> bool {
        self.stream
    }

    /// The answer as a `chat.completion`, or as `chat.completion.chunk`
    /// events when the request streamed. An answer without an image becomes
    /// an assistant message that says why, with `finish_reason: content_filter`
    /// (a text-only answer without a filter reason is passed on as text).
    #[inline(never)]
    pub(crate) fn write(&self, answer: &Answer<'_>) -> Translated {
        let note = if answer.has_image() {
            None
        } else {
            self.no_image_note(answer)
        };
        let finish_reason = if note.is_some() {
            "content_filter"
        } else {
            "stop"
        };
        self.write_message(answer, note.as_deref(), finish_reason)
    }

    /// The note that says why an answer without an image brought none;
    /// `None` when it is text only (passed on as that text).
    fn no_image_note(&self, answer: &Answer<'_>) -> Option<String> {
        match answer.no_image_reason() {
            NoImage::Text(_) => None,
            reason => Some(format!(
                "No image was returned by {}. Reason: \"{reason}\"",
                self.model
            )),
        }
    }

    /// An answer with empty content and `finish_reason: stop`, in the
    /// request's framing (a task prompt answered by the filter itself).
    pub(crate) fn write_empty(&self) -> Translated {
        self.write_message(&Answer::default(), None, "stop")
    }

    /// `{"id":...,"object":OBJECT,"created":...,"model":...` (open).
    fn write_head(&self, out: &mut Out, object: &str) {
        out.raw("{\"id\":")
            .string(&self.id)
            .raw(",\"object\":\"")
            .raw(object)
            .raw("\",\"created\":")
            .number(self.created)
            .raw(",\"model\":")
            .string(&self.model);
    }

    fn write_usage(out: &mut Out, usage: Usage) {
        out.raw("{\"prompt_tokens\":")
            .number(usage.prompt_tokens)
            .raw(",\"completion_tokens\":")
            .number(usage.completion_tokens)
            .raw(",\"total_tokens\":")
            .number(usage.total_tokens)
            .raw("}");
    }

    /// The start of a `chat.completion.chunk` event whose only choice has
    /// a `delta` (written next, then [`ChatReply::chunk_end`]).
    #[inline(never)]
    fn chunk_start(&self, out: &mut Out) {
        out.raw("data: ");
        self.write_head(out, CHUNK);
        out.raw(",\"choices\":[{\"index\":0,\"delta\":");
    }

    /// The end of a chunk event: its choice's `finish_reason`.
    #[inline(never)]
    fn chunk_end(out: &mut Out, finish_reason: Option<&str>) {
        out.raw(",\"logprobs\":null,\"finish_reason\":");
        match finish_reason {
            Some(reason) => out.raw("\"").raw(reason).raw("\""),
            None => out.raw("null"),
        };
        out.raw("}]}\n\n");
    }

    /// The chunk event whose delta gives the role.
    fn role_chunk(&self, out: &mut Out) {
        self.chunk_start(out);
        out.raw(ROLE_DELTA);
        Self::chunk_end(out, None);
    }

    /// The start of a chunk event whose delta is `content` text, after a
    /// blank line when `separate` (its text written next, then
    /// [`ChatReply::content_chunk_end`]).
    #[inline(never)]
    fn content_chunk_start(&self, out: &mut Out, separate: bool) {
        self.chunk_start(out);
        out.raw("{\"content\":\"");
        if separate {
            out.raw("\\n\\n");
        }
    }

    /// The end of a `content` text chunk event.
    #[inline(never)]
    fn content_chunk_end(out: &mut Out) {
        out.raw("\"}");
        Self::chunk_end(out, None);
    }

    /// The events that close a stream: a finish chunk, the usage chunk
    /// when the request asked for it, and `[DONE]`.
    fn write_close(&self, out: &mut Out, finish_reason: &str, usage: Usage) {
        self.chunk_start(out);
        out.raw("{}");
        Self::chunk_end(out, Some(finish_reason));
        if self.include_usage {
            out.raw("data: ");
            self.write_head(out, CHUNK);
            out.raw(",\"choices\":[],\"usage\":");
            Self::write_usage(out, usage);
            out.raw("}\n\n");
        }
        out.raw(sse::DONE);
    }

    fn write_message(
        &self,
        answer: &Answer<'_>,
        note: Option<&str>,
        finish_reason: &str,
    ) -> Translated {
        let usage = answer.usage.unwrap_or_default();
        let mut out = Out::with_capacity(
            answer.payload_len() + note.map_or(0, |n| n.len() * 2) + self.model.len() * 5 + 1024,
        );
        if !self.stream {
            self.write_head(&mut out, "chat.completion");
            out.raw(",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
            self.write_content(&mut out, answer, note);
            out.raw("},\"logprobs\":null,\"finish_reason\":\"")
                .raw(finish_reason)
                .raw("\"}],\"usage\":");
            Self::write_usage(&mut out, usage);
            out.raw("}");
            return Translated::json(out);
        }
        self.role_chunk(&mut out);
        self.chunk_start(&mut out);
        out.raw("{\"content\":");
        self.write_content(&mut out, answer, note);
        out.raw("}");
        Self::chunk_end(&mut out, None);
        self.write_close(&mut out, finish_reason, usage);
        Translated {
            body: out.into_bytes(),
            content_type: EVENT_STREAM,
        }
    }

    /// The events for a part of a streamed answer as it arrives: the role
    /// first, then each piece as a `delta.content` string (text as it
    /// came, an image as a markdown data URL), pieces of different kinds
    /// apart by a blank line as in [`ChatReply::write`]. `state` carries
    /// what was written before.
    pub(crate) fn write_stream_part(
        &self,
        state: &mut StreamState,
        answer: &Answer<'_>,
    ) -> Vec<u8> {
        let mut out = Out::with_capacity(answer.payload_len() + self.model.len() * 2 + 256);
        if !state.started {
            state.started = true;
            self.role_chunk(&mut out);
        }
        for piece in &answer.pieces {
            let image = matches!(piece, Piece::Image(_));
            let separate = state.last_image.is_some_and(|last| last || image);
            match piece {
                Piece::Text(text) if text.is_empty() => continue,
                Piece::Text(text) => {
                    if state.text.len() < NOTE_TEXT {
                        state.text.push_str(text);
                    }
                }
                Piece::Image(_) => state.images += 1,
            }
            state.last_image = Some(image);
            self.content_chunk_start(&mut out, separate);
            write_markdown(&mut out, piece, false);
            Self::content_chunk_end(&mut out);
        }
        state.withheld.extend(answer.withheld.iter().cloned());
        if answer.usage.is_some() {
            state.usage = answer.usage;
        }
        out.into_bytes()
    }

    /// The events that end a streamed answer: without an image, a delta
    /// saying why (or `note`, when the stream failed) and `finish_reason:
    /// content_filter`; then the usage and `[DONE]`.
    #[inline(never)]
    pub(crate) fn write_stream_end(&self, state: &mut StreamState, note: Option<&str>) -> Vec<u8> {
        let mut out = Out::with_capacity(1024 + note.map_or(0, str::len) * 2);
        if !state.started {
            state.started = true;
            self.role_chunk(&mut out);
        }
        let seen = Answer {
            pieces: vec![Piece::Text(std::mem::take(&mut state.text))],
            usage: state.usage,
            withheld: std::mem::take(&mut state.withheld),
        };
        let why = match note {
            Some(note) => Some(note.to_owned()),
            None if state.images == 0 => self.no_image_note(&seen),
            None => None,
        };
        let finish = match &why {
            Some(why) => {
                let separate = state.last_image.is_some();
                self.content_chunk_start(&mut out, separate);
                out.escaped(why);
                Self::content_chunk_end(&mut out);
                "content_filter"
            }
            None => "stop",
        };
        self.write_close(&mut out, finish, state.usage.unwrap_or_default());
        out.into_bytes()
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
                    write_markdown(out, piece, true);
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
                                .unquoted(&image.data, image.plain_json)
                                .raw("\"}}");
                        }
                    }
                }
                out.raw("]");
            }
        }
    }
}

/// A piece inside a markdown `content` string: its text (trimmed in a
/// whole answer, as it came in a stream delta), or the image as
/// `![image](data:MIME;base64,DATA)`.
fn write_markdown(out: &mut Out, piece: &Piece<'_>, trim: bool) {
    match piece {
        Piece::Text(text) => {
            out.escaped(if trim { text.trim() } else { text });
        }
        Piece::Image(image) => {
            out.raw("![image](data:")
                .escaped(&image.mime)
                .raw(";base64,")
                .unquoted(&image.data, image.plain_json)
                .raw(")");
        }
    }
}

/// `chatcmpl-` and a digest of the model, prompt and time.
fn chat_id(model: &str, prompt: &str, created: u64) -> String {
    let digest = digest(&[model.as_bytes(), prompt.as_bytes(), &created.to_le_bytes()]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity("chatcmpl-".len() + 16);
    id.push_str("chatcmpl-");
    id.extend(
        (0..16)
            .rev()
            .map(|i| char::from(HEX[((digest >> (4 * i)) & 0xf) as usize])),
    );
    id
}

/// A short, stable hex digest (FNV-1a, 64 bit) for response ids.
pub(crate) fn digest(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Reads an `images/generations` body. `response_format: "url"` cannot be
/// honoured (there is no URL to give); the answer always carries `b64_json`.
/// The aspect ratio comes from `aspect_ratio` (preferred) or `size`.
#[inline(never)]
pub(crate) fn parse_images(body: &[u8]) -> Result<ImageAsk<'static>, TranslateError> {
    let (mut prompt, mut n, mut size, mut aspect_ratio) = (None, None, None, None);
    let read = reader::document(body, |r| {
        r.object(&mut |r, key| {
            if key.is("prompt") {
                prompt = r.opt_str()?;
            } else if key.is("n") {
                n = r.opt_int()?;
            } else if key.is("size") {
                size = r.opt_str()?;
            } else if key.is("aspect_ratio") {
                aspect_ratio = r.opt_str()?;
            } else {
                r.skip()?;
            }
            Ok(())
        })
    });
    read.map_err(TranslateError::unread_request)?;
    let prompt = prompt.map(|p| p.trim().to_owned()).unwrap_or_default();
    if prompt.is_empty() {
        return Err(TranslateError::NoPrompt);
    }
    Ok(ImageAsk {
        prompt,
        n,
        aspect: aspect_ratio
            .as_deref()
            .and_then(aspect::ratio)
            .or_else(|| size.as_deref().and_then(aspect::ratio)),
        ..ImageAsk::default()
    })
}

/// An `images/generations` request body for the compat layer:
/// `{"model","prompt","n","size"?,"response_format":"b64_json"}`.
#[inline(never)]
pub(crate) fn images_request_body(
    model: &str,
    prompt: &str,
    n: i64,
    size: Option<&str>,
) -> Result<Vec<u8>, TranslateError> {
    let mut out = Out::with_capacity((model.len() + prompt.len()) * 2 + 96);
    out.raw("{\"model\":")
        .string(model)
        .raw(",\"prompt\":")
        .string(prompt)
        .raw(",\"n\":")
        .int(n);
    if let Some(size) = size {
        out.raw(",\"size\":").string(size);
    }
    out.raw(",\"response_format\":\"b64_json\"}");
    Ok(out.into_bytes())
}

/// Reads the compat layer's `{"data":[{"b64_json","revised_prompt"}]}`.
#[inline(never)]
pub(crate) fn parse_images_answer(body: &[u8]) -> Result<Answer<'_>, TranslateError> {
    let items = reader::document(body, |r| {
        r.field(&["data"], |r| {
            r.opt(|r| r.list(|r| r.fields([&["b64_json"], &["revised_prompt"]], Reader::opt_str)))
        })
    })
    .map_err(TranslateError::unread_response)?
    .flatten()
    .unwrap_or_default();
    let mut answer = Answer::default();
    for [b64_json, revised_prompt] in items {
        if let Some(data) = b64_json.filter(|d| !d.is_empty()) {
            answer.push_image(Image::parsed(
                Cow::Borrowed(sniff_mime(&data)),
                data,
                revised_prompt.map(JStr::into_cow),
            ));
        }
    }
    if !answer.has_image() {
        answer.withhold("the answer has no b64_json images");
    }
    Ok(answer)
}

/// Writes `{"created":..,"data":[{"b64_json":..,"revised_prompt"?}]}`. An
/// image's own revised prompt wins; otherwise the answer's text (what a
/// Gemini image model said) is given as `revised_prompt`.
#[inline(never)]
pub(crate) fn write_images_answer(answer: &Answer<'_>, created: u64) -> Translated {
    let text = answer.text();
    let mut out = Out::with_capacity(answer.payload_len() + text.len() * 4 + 64);
    out.raw("{\"created\":").number(created).raw(",\"data\":[");
    for (i, image) in answer.images().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"b64_json\":\"")
            .unquoted(&image.data, image.plain_json)
            .raw("\"");
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
    Translated::json(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part, for expected turns: text, or (MIME type, data).
    #[derive(Debug, PartialEq)]
    enum P {
        T(&'static str),
        I(&'static str, &'static str),
    }

    fn parts(turn: &Turn<'_>) -> Vec<P> {
        turn.parts
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => P::T(Box::leak(text.clone().into_boxed_str())),
                Piece::Image(image) => P::I(
                    Box::leak(image.mime.to_string().into_boxed_str()),
                    Box::leak(image.data.to_string().into_boxed_str()),
                ),
            })
            .collect()
    }

    use crate::translate::gemini::Turn;
    use P::{I, T};

    /// Whether the image's data is borrowed and lies inside `body`.
    fn borrowed_from(image: &Image<'_>, body: &[u8]) -> bool {
        let Cow::Borrowed(data) = image.data else {
            return false;
        };
        body.as_ptr_range().contains(&data.as_ptr())
    }

    fn images<'r>(request: &'r ChatRequest<'_>) -> Vec<&'r Image<'r>> {
        request
            .contents
            .turns()
            .iter()
            .flat_map(|turn| &turn.parts)
            .filter_map(|piece| match piece {
                Piece::Image(image) => Some(image),
                Piece::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn image_data_is_borrowed_from_the_body() {
        struct Case {
            name: &'static str,
            body: String,
            borrowed: Vec<bool>,
        }
        let cases = [
            Case {
                name: "user image_url",
                body: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo"}}]}]}"#.into(),
                borrowed: vec![true],
            },
            Case {
                name: "assistant markdown without escapes, image_url parts",
                body: r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"![image](data:image/png;base64,AAAA)"},
                    {"role":"assistant","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,BBBB"}}]},{"role":"user","content":"y"}]}"#.into(),
                borrowed: vec![true, true],
            },
            Case {
                name: "assistant markdown with escapes around the images is located",
                body: r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"Here:\n\n![image](data:image/png;base64,AAAA)\n\n![image](data:image/png;base64,BBBB)"},
                    {"role":"user","content":"y"},{"role":"assistant","content":"Again \"AAAA\":\n![image](data:image/png;base64,AAAA)"},{"role":"user","content":"z"}]}"#.into(),
                borrowed: vec![true, true, true],
            },
            Case {
                name: "escaped slashes in base64 are copied, and so is everything after a miss",
                body: r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"a\n![image](data:image\/png;base64,\/9j\/AAAA)"},
                    {"role":"user","content":"y"},{"role":"assistant","content":"b\n![image](data:image/png;base64,BBBB)"},{"role":"user","content":"z"}]}"#.into(),
                borrowed: vec![false, false],
            },
        ];
        for case in cases {
            let body = case.body.as_bytes();
            let got = parse_chat_conversation(body, &[]).unwrap();
            let borrowed: Vec<bool> = images(&got)
                .iter()
                .map(|image| borrowed_from(image, body))
                .collect();
            assert_eq!(borrowed, case.borrowed, "{}", case.name);
        }
    }

    #[test]
    fn markdown_splits_at_data_images_only() {
        let cases = [
            ("plain", "just text", vec![T("just text")]),
            ("empty", "", vec![]),
            (
                "image only",
                "![](data:image/png;base64,AA)",
                vec![I("image/png", "AA")],
            ),
            (
                "nested brackets are not an image",
                "![a [b]](data:image/png;base64,AA)",
                vec![T("![a [b]](data:image/png;base64,AA)")],
            ),
            (
                "alt text across lines is not an image",
                "![a\nb](data:image/png;base64,AA)",
                vec![T("![a\nb](data:image/png;base64,AA)")],
            ),
            (
                "bang without link, then an image",
                "wow! ![ ok ](data:image/gif;base64,R0lGOD) end",
                vec![T("wow!"), I("image/gif", "R0lGOD"), T("end")],
            ),
            (
                "multibyte around",
                "é![x](data:image/png;base64,AA)ü",
                vec![T("é"), I("image/png", "AA"), T("ü")],
            ),
            (
                "unterminated",
                "![x](data:image/png;base64,AA",
                vec![T("![x](data:image/png;base64,AA")],
            ),
        ];
        for (name, text, want) in cases {
            let pieces = split_markdown(text, &mut |mime, data| Image {
                mime: Cow::Owned(text[mime].to_owned()),
                data: Cow::Owned(text[data].to_owned()),
                plain_json: false,
                revised_prompt: None,
            });
            let got = parts(&Turn {
                role: Role::Model,
                parts: pieces,
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn splitting_hostile_text_takes_linear_time() {
        let texts = [
            "![a](data:image/png;base64,AAAA".repeat(40_000),
            format!("![{}", "a".repeat(1_000_000)).repeat(2),
            "![".repeat(500_000),
            format!("![a]({}", "data:image/png;base64,".repeat(40_000)),
        ];
        for text in texts {
            let started = std::time::Instant::now();
            let pieces = split_markdown(&text, &mut |_, _| unreachable!("no image here"));
            assert_eq!(pieces, vec![Piece::Text(text.clone())]);
            let elapsed = started.elapsed();
            assert!(elapsed.as_secs() < 5, "{elapsed:?} for {:.40}", text);
        }
    }

    #[test]
    fn the_locator_finds_data_in_order_and_gives_up_after_a_miss() {
        let body = br#"{"a":"xAAAAy","b":"zAAAAw BBBB"}"#;
        let locator = Locator::new(body);
        let first = locator.find("AAAA").unwrap();
        let second = locator.find("AAAA").unwrap();
        assert!(first.as_ptr() < second.as_ptr(), "searches move forward");
        assert_eq!(locator.find("CCCC"), None);
        assert_eq!(locator.find("BBBB"), None, "no search after a miss");
        assert_eq!(Locator::new(b"\xff AAAA").find("AAAA"), None, "not UTF-8");
    }

    #[test]
    fn chat_ids_are_stable_and_distinct() {
        let a = chat_id("m", "a cat", 1);
        assert_eq!(a, chat_id("m", "a cat", 1));
        assert_ne!(a, chat_id("m", "a dog", 1));
        assert_ne!(a, chat_id("m", "a cat", 2));
        assert_eq!(a.len(), "chatcmpl-".len() + 16);
        let digest = digest(&[b"m", b"a cat", &1u64.to_le_bytes()]);
        assert_eq!(a, format!("chatcmpl-{digest:016x}"));
    }
}
