//! The response side of a routed request: a small state machine the glue
//! drives from the response callbacks (headers, each body chunk, trailers).
//! Each call returns a [`Step`]: what to write and whether to keep holding
//! the response. The glue only turns steps into host calls.
//!
//! What gets rewritten, and the bounds that keep memory and output fixed:
//! - an error (4xx or 5xx) whose body is at most [`error_limit`] bytes
//!   becomes one error object in the client's shape, with the diagnostic
//!   headers; one announced larger (`content-length`) or compressed streams
//!   through untouched with the diagnostic headers only; one of unannounced
//!   length that grows larger is answered from its first [`error_limit`]
//!   bytes and the rest dropped as it arrives; an error without a body gets
//!   one;
//! - a 2xx answer to a translated request is buffered up to
//!   `max_body_bytes` and translated; a larger or compressed one, or one
//!   whose translation would be larger than `max_body_bytes`, becomes a 502
//!   in the client's shape while the upstream's bytes are dropped as they
//!   arrive (never held);
//! - every other response passes untouched.
//!
//! A body the filter writes is never larger than `max_body_bytes` (an error
//! body at most [`error_limit`] plus a few KB), so it always fits Envoy's
//! buffer when `max_body_bytes` does: growing Envoy's buffer past its limit
//! from inside a callback makes Envoy send a local reply while the filter
//! is still running, which the proxy-wasm SDK cannot take. The glue moves
//! each held chunk out of Envoy's buffer into the VM as it arrives, so
//! Envoy never holds more than the chunk in flight (a burst landing on a
//! half-full buffer would otherwise make Envoy answer 500 itself).

use crate::config::Config;
use crate::diagnose::{self, MAX_ERROR_BODY};
use crate::endpoint::Endpoint;
use crate::flow::{reject_translation, Routed};
use crate::headers::{
    CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, EVENT_STREAM, JSON, REQUESTED_MODEL,
    RETRY_AFTER, SERVED_MODEL,
};
use crate::route::{self, Secret};
use crate::signatures::{self, Restore};
use crate::tool_stream::{Fed, ToolStream};
use crate::translate::{self, Side, TranslateError, Translator};

/// The response facts the decisions read, from the response headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseHead<'a> {
    /// `:status`.
    pub status: u16,
    /// `content-encoding`, if present.
    pub content_encoding: Option<&'a str>,
    /// `content-length`, if present.
    pub content_length: Option<&'a str>,
    /// Whether the upstream sent `retry-after`.
    pub retry_after: bool,
    /// `content-type`, if present.
    pub content_type: Option<&'a str>,
}

/// A change to the held response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// A new `:status`.
    pub status: Option<u16>,
    /// Headers to set.
    pub set: Vec<(&'static str, String)>,
    /// Headers to remove.
    pub remove: Vec<&'static str>,
    /// A new body for what is buffered (empty to drop it).
    pub body: Option<Vec<u8>>,
    /// The metric this edit counts under.
    pub count: Option<Count>,
}

impl Edit {
    /// Whether the edit changes nothing (the response goes on as it is).
    pub fn is_empty(&self) -> bool {
        *self == Edit::default()
    }

    /// The edit that writes `body` and nothing else. (Not inlined: one
    /// copy for its three sites.)
    #[inline(never)]
    fn body(body: Vec<u8>) -> Edit {
        Edit {
            body: Some(body),
            ..Edit::default()
        }
    }
}

/// What a response counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// An upstream error got diagnostics (and a rewritten body when it fit).
    Annotated,
    /// A translated answer failed to translate (shape, no image, bounds).
    TranslateError,
}

/// A response the filter writes in place of the upstream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status to send.
    pub status: u16,
    /// Headers to set (diagnostics, content type).
    pub headers: Vec<(&'static str, String)>,
    /// The new body.
    pub body: Vec<u8>,
    /// The metric it counts under, if any (a successful translation counts
    /// nothing here: the request was counted when it went out).
    pub count: Option<Count>,
}

impl Reply {
    /// The reply with the request's credentials (`secrets`, from
    /// [`Routed::secrets`]) removed from its body: an upstream that echoes
    /// the request (a path with `?key=`) must not make the filter hand the
    /// key back in an error. Its headers are the diagnostic ones, scrubbed
    /// where they are made ([`Routed::diagnostics`], before they are cut),
    /// and a content type and a number.
    fn scrubbed(mut self, secrets: &[Secret]) -> Reply {
        if let Some(body) = route::scrub_json(&self.body, secrets) {
            self.body = body;
        }
        self
    }

    /// The edit that turns the held response into this reply: status,
    /// headers, no stale `content-length` or `content-encoding`, and `body`
    /// (the reply's own; none from the headers callback, where there is no
    /// body to write yet).
    fn edit(&self, body: Option<Vec<u8>>) -> Edit {
        Edit {
            status: Some(self.status),
            set: self.headers.clone(),
            remove: vec![CONTENT_LENGTH, CONTENT_ENCODING],
            body,
            count: self.count,
        }
    }
}

/// What the glue does at a response callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Apply the edit and let the response go on.
    Continue(Edit),
    /// Apply the edit and keep holding the response.
    Hold(Edit),
    /// Read the whole buffered body and call [`Response::finish`].
    ReadBody,
    /// There is no body to write into: send this reply instead of the
    /// upstream's response (a local reply).
    Replace(Reply),
    /// Read the chunk, call [`Response::chunk`], write what it returns in
    /// its place and let it go on.
    Stream,
}

impl Step {
    /// Let the response go on unchanged. (Not inlined, nor is
    /// [`Step::hold`]: one copy of the empty edit for the many steps.)
    #[inline(never)]
    fn go_on() -> Step {
        Step::Continue(Edit::default())
    }

    /// Keep holding the response, unchanged.
    #[inline(never)]
    fn hold() -> Step {
        Step::Hold(Edit::default())
    }
}

/// How the response is being handled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Untouched.
    Pass,
    /// An error, buffered to be rewritten.
    Annotate,
    /// A 2xx answer, buffered to be translated.
    Translate,
    /// Refused at the response headers (whose edit was written then): this
    /// reply's body goes out in place of the first chunk, and the rest of
    /// the upstream's body is dropped.
    Drain(Reply),
    /// A tool-call stream, repaired event by event as it passes.
    Repair(Box<ToolStream>),
    /// A JSON answer that may carry tool calls: passes untouched while a
    /// copy (at most `max_body_bytes`) is kept for its signatures.
    Observe(Vec<u8>),
    /// A 2xx stream translated event by event as it passes; holds the
    /// incomplete end of what arrived (at most `max_body_bytes`).
    TranslateStream(Vec<u8>),
    /// The client's answer is out (a reply, or the closing events of a
    /// translated stream that failed): the rest of the upstream's body is
    /// dropped as it passes, each chunk let go on empty. Never held, so no
    /// burst of it can push Envoy's buffer over its limit (Envoy would
    /// answer 500 itself).
    Dropped,
}

impl Mode {
    /// What follows an answer written before (or as) the upstream's body
    /// ended.
    fn after_answer(end: bool) -> Mode {
        if end {
            Mode::Pass
        } else {
            Mode::Dropped
        }
    }
}

/// How a 2xx answer to the request is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Not at all.
    None,
    /// Whole, once it is all there.
    Whole,
    /// Event by event, as it streams.
    Stream,
}

impl Translation {
    /// How the request's translator (if any) translates a 2xx answer.
    pub fn of(translator: Option<&dyn Translator>) -> Translation {
        match translator {
            None => Translation::None,
            Some(t) if t.streams() => Translation::Stream,
            Some(_) => Translation::Whole,
        }
    }
}

/// What a chunk of a watched answer ([`Step::Stream`]) became.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Streamed {
    /// The bytes to send in place of the chunk (`None`: the chunk as it is).
    pub out: Option<Vec<u8>>,
    /// `(tool-call id, thought signature)` pairs to remember.
    pub signatures: Vec<(String, String)>,
    /// The metric this chunk counts under.
    pub count: Option<Count>,
    /// A tool-call stream was repaired (first time for this answer).
    pub repaired: bool,
}

/// The state of one routed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    mode: Mode,
    status: u16,
    body_seen: bool,
    retry_after: bool,
    /// The upstream's body has ended (last chunk or trailers).
    ended: bool,
    /// A repair was counted.
    repaired: bool,
}

impl Default for Response {
    fn default() -> Response {
        Response {
            mode: Mode::Pass,
            status: 0,
            body_seen: false,
            retry_after: false,
            ended: false,
            repaired: false,
        }
    }
}

/// The response's `:status` value as a number; 0 when it is not one (as
/// `str::parse::<u16>` reads it: an optional `+`, then digits, at most
/// 65535). On the bytes as the host gives them: the read of `:status` alone
/// makes no text of them (a UTF-8 check, code every routed answer would
/// run for three digits).
pub fn status_code(value: &[u8]) -> u16 {
    let digits = value.strip_prefix(b"+").unwrap_or(value);
    if digits.is_empty() {
        return 0;
    }
    digits
        .iter()
        .try_fold(0u16, |code, &b| match b {
            b'0'..=b'9' => code.checked_mul(10)?.checked_add(u16::from(b - b'0')),
            _ => None,
        })
        .unwrap_or(0)
}

/// Whether the response headers besides `:status` decide anything: for an
/// error, a translated answer, or an answer that may carry tool calls. A
/// routed request's other answers pass untouched, whatever they say.
pub fn reads_headers(routed: &Routed, translation: Translation, status: u16) -> bool {
    status >= 400 || translation != Translation::None || routed.tools
}

/// Whether the answer with `status` goes to the client exactly as it came,
/// with nothing to read or write: what [`Response::headers`] decides then is
/// to go on with an empty edit and the state of a passing response (the
/// glue then stops after `:status`: most answers, a plain success, cost no
/// more code than that).
pub fn untouched(routed: &Routed, translation: Translation, status: u16) -> bool {
    !reads_headers(routed, translation, status)
        && routed.notice.is_none()
        && routed.migration.is_none()
}

/// The largest upstream error body rewritten: [`MAX_ERROR_BODY`], or
/// `max_body_bytes` if that is smaller.
pub fn error_limit(config: &Config) -> usize {
    MAX_ERROR_BODY.min(config.max_body_bytes)
}

/// Whether an upstream response header is kept when the filter answers in
/// place of a response without a body: everything but the framing and
/// content headers the replacement sets itself.
pub fn kept_on_replace(name: &str) -> bool {
    !name.starts_with(':')
        && !matches!(
            name,
            "content-length"
                | "content-type"
                | "content-encoding"
                | "transfer-encoding"
                | "connection"
                | "keep-alive"
                | "date"
                | "server"
        )
}

fn is_compressed(encoding: Option<&str>) -> bool {
    encoding.is_some_and(|e| !e.trim_ascii().eq_ignore_ascii_case("identity"))
}

/// Whether the answer `head` shows `route_removes_accept_encoding` set on
/// a route that does not remove it: the upstream compresses only what a
/// client asked compressed, and the filter left the header to the route.
/// Such an error's body passes unread and such a translation fails.
pub fn encoding_kept(config: &Config, head: &ResponseHead<'_>) -> bool {
    config.route_removes_accept_encoding && is_compressed(head.content_encoding)
}

impl Response {
    /// Decides on the response headers of a routed request.
    pub fn headers(
        config: &Config,
        routed: &Routed,
        translation: Translation,
        head: &ResponseHead<'_>,
        end_of_stream: bool,
    ) -> (Response, Step) {
        let translating = translation != Translation::None;
        let mut state = Response {
            status: head.status,
            retry_after: head.retry_after,
            ..Response::default()
        };
        let length = head
            .content_length
            .and_then(|v| v.trim_ascii().parse::<u64>().ok());
        let compressed = is_compressed(head.content_encoding);
        let step = if translating && (200..300).contains(&head.status) {
            let refused = if compressed {
                Some(TranslateError::InvalidResponse(format!(
                    "it is compressed (content-encoding: {})",
                    diagnose::header_value(head.content_encoding.unwrap_or_default())
                )))
            } else if translation == Translation::Stream {
                None
            } else {
                length
                    .filter(|len| *len > config.max_body_bytes as u64)
                    .map(|len| TranslateError::TooLarge {
                        side: Side::Response,
                        size: usize::try_from(len).unwrap_or(usize::MAX),
                        limit: config.max_body_bytes,
                    })
            };
            match refused {
                Some(error) => state.drain(routed, error, end_of_stream),
                None if translation == Translation::Stream && !end_of_stream => {
                    state.mode = Mode::TranslateStream(Vec::new());
                    Step::Continue(Edit {
                        set: vec![(CONTENT_TYPE, EVENT_STREAM.to_owned())],
                        remove: vec![CONTENT_LENGTH],
                        ..Edit::default()
                    })
                }
                None if end_of_stream => {
                    state.mode = Mode::Translate;
                    Step::Replace(state.translated(config, routed, None, b""))
                }
                None => {
                    state.mode = Mode::Translate;
                    Step::hold()
                }
            }
        } else if head.status >= 400 {
            let too_large = length.is_some_and(|len| len > error_limit(config) as u64);
            if end_of_stream {
                Step::Replace(state.error_reply(routed, b"", None))
            } else if compressed || too_large {
                Step::Continue(state.annotation(routed))
            } else {
                state.mode = Mode::Annotate;
                Step::hold()
            }
        } else if routed.tools && (200..300).contains(&head.status) && !compressed {
            state.watch_tool_calls(config, head.content_type)
        } else {
            Step::go_on()
        };
        (state, with_notice(step, routed))
    }

    /// Starts watching a successful answer to a chat request that offers
    /// tools: a stream is repaired as it passes (its length changes), a
    /// JSON answer is read for its signatures when they are remembered.
    fn watch_tool_calls(&mut self, config: &Config, content_type: Option<&str>) -> Step {
        let stream = content_type.is_some_and(|t| {
            t.trim_start()
                .get(..17)
                .is_some_and(|t| t.eq_ignore_ascii_case("text/event-stream"))
        });
        if stream {
            self.mode = Mode::Repair(Box::new(ToolStream::new(config.max_body_bytes)));
            return Step::Continue(Edit {
                remove: vec![CONTENT_LENGTH],
                ..Edit::default()
            });
        }
        if config.signatures.restore != Restore::Off {
            self.mode = Mode::Observe(Vec::new());
        }
        Step::go_on()
    }

    /// A chunk of a watched answer ([`Step::Stream`]): what to send in its
    /// place, the thought signatures to remember (none when they are not
    /// remembered), and whether this is the answer's first repair.
    pub fn chunk(
        &mut self,
        config: &Config,
        routed: &Routed,
        translator: Option<&mut dyn Translator>,
        chunk: &[u8],
        end: bool,
    ) -> Streamed {
        if let Mode::TranslateStream(_) = self.mode {
            return self.translate_chunk(config, routed, translator, chunk, end);
        }
        let mut fed = match &mut self.mode {
            Mode::Repair(stream) => stream.feed(chunk, end),
            Mode::Observe(copy) if copy.len() + chunk.len() > config.max_body_bytes => {
                self.mode = Mode::Pass;
                Fed::default()
            }
            Mode::Observe(copy) => {
                copy.extend_from_slice(chunk);
                let mut fed = Fed::default();
                if end {
                    fed.signatures = signatures::in_answer(copy);
                    self.mode = Mode::Pass;
                }
                fed
            }
            _ => Fed::default(),
        };
        if config.signatures.restore == Restore::Off {
            fed.signatures.clear();
        }
        let first = fed.repaired && !self.repaired;
        self.repaired |= fed.repaired;
        Streamed {
            out: fed.out,
            signatures: fed.signatures,
            count: None,
            repaired: first,
        }
    }

    /// A chunk of a translated stream: the client's events for each
    /// upstream event completed in it, the closing events at the end; on a
    /// failure, closing events that say why, and nothing more after them.
    fn translate_chunk(
        &mut self,
        config: &Config,
        routed: &Routed,
        translator: Option<&mut dyn Translator>,
        chunk: &[u8],
        end: bool,
    ) -> Streamed {
        let (Mode::TranslateStream(tail), Some(translator)) = (&mut self.mode, translator) else {
            return Streamed {
                out: Some(Vec::new()),
                ..Streamed::default()
            };
        };
        let mut data = std::mem::take(tail);
        data.extend_from_slice(chunk);
        let complete = if end {
            data.len()
        } else {
            crate::sse::events_end(&data)
        };
        let mut out = Vec::new();
        let mut failure =
            (data.len() - complete > config.max_body_bytes).then(|| TranslateError::TooLarge {
                side: Side::Response,
                size: data.len() - complete,
                limit: config.max_body_bytes,
            });
        if failure.is_none() {
            for frame in crate::sse::data_frames(&data[..complete]) {
                match translate::event(translator, &frame, config.max_body_bytes) {
                    Ok((events, _)) => out.extend_from_slice(&events),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        let mut streamed = Streamed::default();
        if let Some(error) = failure {
            let hint = diagnose::translation_hint(&routed.plan, &routed.model.id, &error);
            out.extend(translator.end_stream(Some(&format!("gemini-router: {hint}"))));
            streamed.count = Some(Count::TranslateError);
            self.mode = Mode::Dropped;
        } else if end {
            out.extend(translator.end_stream(None));
        } else if let Mode::TranslateStream(tail) = &mut self.mode {
            tail.extend_from_slice(&data[complete..]);
        }
        streamed.out = Some(out);
        streamed
    }

    /// Decides on a body chunk; `size` is all that is buffered so far.
    pub fn body(&mut self, config: &Config, routed: &Routed, size: usize, end: bool) -> Step {
        self.body_seen = true;
        self.ended = end;
        match &mut self.mode {
            Mode::Pass => Step::go_on(),
            Mode::Repair(_) | Mode::Observe(_) | Mode::TranslateStream(_) => Step::Stream,
            Mode::Dropped => Step::Continue(Edit::body(Vec::new())),
            // Refused at the headers: the reply's body goes out in place of
            // this first chunk.
            Mode::Drain(reply) => {
                let body = std::mem::take(&mut reply.body);
                self.mode = Mode::after_answer(end);
                Step::Continue(Edit::body(body))
            }
            // An error body of unannounced length that grows past the bound:
            // it is answered from its first bytes (one error object quoting
            // them), and the rest is dropped as it arrives. (One announced
            // larger streams through untouched: see `headers`.)
            Mode::Annotate if size > error_limit(config) => Step::ReadBody,
            Mode::Translate if size > config.max_body_bytes => {
                let error = TranslateError::TooLarge {
                    side: Side::Response,
                    size,
                    limit: config.max_body_bytes,
                };
                self.drain(routed, error, end)
            }
            Mode::Annotate | Mode::Translate if end => Step::ReadBody,
            Mode::Annotate | Mode::Translate => Step::hold(),
        }
    }

    /// `reply` goes out now, in place of the response held so far; the
    /// rest of the upstream's body, unless it has ended, is dropped as it
    /// passes.
    fn answer_now(&mut self, mut reply: Reply, end: bool) -> Step {
        self.mode = Mode::after_answer(end);
        let body = std::mem::take(&mut reply.body);
        Step::Continue(reply.edit(Some(body)))
    }

    /// Whether the rest of the answer goes through untouched: the body and
    /// trailers steps would only let it go on (a routed request's plain
    /// success, nearly every answer), so they need not run.
    pub fn passes(&self) -> bool {
        matches!(self.mode, Mode::Pass)
    }

    /// Decides on the response trailers, which end the body.
    pub fn trailers(&mut self, config: &Config, routed: &Routed) -> Step {
        self.ended = true;
        let mode = std::mem::replace(&mut self.mode, Mode::Pass);
        match mode {
            Mode::Pass => Step::go_on(),
            // The body has ended: a JSON copy is read; an incomplete last
            // event is dropped (as SSE clients drop one at the end).
            Mode::Repair(_) | Mode::Observe(_) | Mode::TranslateStream(_) => {
                self.mode = mode;
                Step::Stream
            }
            Mode::Dropped => Step::go_on(),
            Mode::Annotate | Mode::Translate if self.body_seen => {
                self.mode = mode;
                Step::ReadBody
            }
            Mode::Annotate => Step::Replace(self.error_reply(routed, b"", None)),
            Mode::Translate => Step::Replace(self.translated(config, routed, None, b"")),
            // Refused at the headers, and no body came.
            Mode::Drain(reply) => Step::Replace(reply),
        }
    }

    /// The rewritten response once the whole body is there (after
    /// [`Step::ReadBody`]).
    pub fn finish(
        &mut self,
        config: &Config,
        routed: &Routed,
        translator: Option<&mut dyn Translator>,
        body: &[u8],
    ) -> Step {
        self.finish_with(config, routed, translator, body, None)
    }

    /// Whether the live catalogue should be read before [`Response::finish`]:
    /// an upstream 404 being rewritten, for a request with a Developer API
    /// key, when `live_catalogue` is on. The answer names the method the
    /// client needs and the key to read it with.
    pub fn catalogue_query(&self, config: &Config, routed: &Routed) -> Option<CatalogueQuery> {
        if !config.live_catalogue || self.mode != Mode::Annotate || self.status != 404 {
            return None;
        }
        Some(CatalogueQuery {
            key: routed.api_key()?,
            method: native_method(routed.plan.to),
            version: config.native_version.clone(),
        })
    }

    /// [`Response::finish`], with the live catalogue's sentence for the hint.
    pub fn finish_with(
        &mut self,
        config: &Config,
        routed: &Routed,
        translator: Option<&mut dyn Translator>,
        body: &[u8],
        catalogue: Option<&str>,
    ) -> Step {
        let mode = std::mem::replace(&mut self.mode, Mode::Pass);
        let reply = match mode {
            Mode::Annotate => {
                let read = &body[..body.len().min(error_limit(config))];
                self.error_reply(routed, read, catalogue)
            }
            Mode::Translate => self.translated(config, routed, translator, body),
            Mode::Pass
            | Mode::Drain(_)
            | Mode::Repair(_)
            | Mode::Observe(_)
            | Mode::TranslateStream(_)
            | Mode::Dropped => return Step::go_on(),
        };
        self.answer_now(reply, self.ended)
    }

    /// Starts dropping the upstream's bytes; the client gets `error`.
    fn drain(&mut self, routed: &Routed, error: TranslateError, end: bool) -> Step {
        let reply = failed_translation(routed, error);
        match (end, self.body_seen) {
            (true, false) => {
                self.mode = Mode::Pass;
                Step::Replace(reply)
            }
            (end, true) => self.answer_now(reply, end),
            // From the headers: there is no body to write into yet.
            (false, false) => {
                let edit = reply.edit(None);
                self.mode = Mode::Drain(reply);
                Step::Hold(edit)
            }
        }
    }

    /// The diagnostic headers alone, for an error body left as it is.
    fn annotation(&self, routed: &Routed) -> Edit {
        let hint = hint(routed, self.status, &diagnose::ErrorFacts::default());
        Edit {
            set: routed.diagnostics(&hint),
            count: Some(Count::Annotated),
            ..Edit::default()
        }
    }

    /// The upstream error as one error object in the client's shape, with
    /// the diagnostic headers (and `retry-after` from Google's `RetryInfo`
    /// when the upstream sent none).
    fn error_reply(&self, routed: &Routed, upstream_body: &[u8], catalogue: Option<&str>) -> Reply {
        let secrets = routed.secrets();
        let error = diagnose::parse_error(self.status, upstream_body, &secrets);
        let facts = diagnose::facts(&error);
        let mut hint = hint(routed, self.status, &facts);
        if let Some(sentence) = catalogue {
            hint.push(' ');
            hint.push_str(sentence);
        }
        let mut headers = routed.diagnostics(&hint);
        headers.push((CONTENT_TYPE, JSON.to_owned()));
        if let Some(seconds) = facts.retry_after.filter(|_| !self.retry_after) {
            headers.push((RETRY_AFTER, seconds.to_string()));
        }
        Reply {
            status: self.status,
            headers,
            body: diagnose::client_error(routed.shape, self.status, error, &hint),
            count: Some(Count::Annotated),
        }
        .scrubbed(&secrets)
    }

    /// The client-shaped answer for a 2xx answer, or the error saying why
    /// it cannot be given.
    fn translated(
        &self,
        config: &Config,
        routed: &Routed,
        translator: Option<&mut dyn Translator>,
        upstream_body: &[u8],
    ) -> Reply {
        let result = match translator {
            Some(t) => translate::response(t, upstream_body, config.max_body_bytes),
            None => Err(TranslateError::InvalidResponse(
                "the upstream answered with success and no body".into(),
            )),
        };
        match result {
            Ok(t) => Reply {
                status: 200,
                headers: vec![(CONTENT_TYPE, t.content_type.to_owned())],
                body: t.body,
                count: None,
            },
            Err(e) => failed_translation(routed, e),
        }
    }
}

/// Every answer for a model the lifecycle table knows carries its
/// `Deprecation`, `Sunset` and replacement headers, and a migrated one the
/// model asked for and the model that served (set while the response
/// headers are still held, so also on answers rewritten later).
fn with_notice(mut step: Step, routed: &Routed) -> Step {
    let set = match &mut step {
        Step::Continue(edit) | Step::Hold(edit) => &mut edit.set,
        Step::Replace(reply) => &mut reply.headers,
        Step::ReadBody | Step::Stream => return step,
    };
    if let Some(notice) = &routed.notice {
        set.extend(notice.headers());
    }
    if let Some(m) = &routed.migration {
        set.push((REQUESTED_MODEL, m.requested.clone()));
        set.push((SERVED_MODEL, routed.model.id.clone()));
    }
    step
}

/// The hint for an upstream error: what the status usually means, and for
/// a migrated request first that it went to the replacement (for one that
/// was not, a 404 for a shut-down model says so).
fn hint(routed: &Routed, status: u16, facts: &diagnose::ErrorFacts) -> String {
    match &routed.migration {
        Some(m) => format!(
            "{} {}",
            migration_sentence(routed, &m.requested),
            diagnose::hint(&routed.plan, &routed.model.id, status, facts, None)
        ),
        None => diagnose::hint(
            &routed.plan,
            &routed.model.id,
            status,
            facts,
            routed.notice.as_ref(),
        ),
    }
}

/// "X was shut down on DATE; gemini-router sent the request to its
/// replacement Y."
pub fn migration_sentence(routed: &Routed, requested: &str) -> String {
    if routed
        .migration
        .as_ref()
        .is_some_and(|m| m.why == crate::flow::Why::Task)
    {
        return format!(
            "gemini-router sent this background-task prompt for the image model {requested} to task_model {}.",
            routed.model.id
        );
    }
    let when = routed
        .notice
        .as_ref()
        .and_then(|n| n.shutdown)
        .map(|d| format!(" on {d}"))
        .unwrap_or_default();
    let status = if routed.notice.as_ref().is_some_and(|n| n.shut_down) {
        format!("was shut down{when}")
    } else {
        format!("shuts down{when}")
    };
    format!(
        "{requested} {status}; gemini-router sent the request to its replacement {}.",
        routed.model.id
    )
}

/// What to ask the live catalogue, and for which method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueQuery {
    /// The caller's Developer API key (never logged: `Secret`).
    pub key: Secret,
    /// The native method the client needs (`generateContent` ...).
    pub method: &'static str,
    /// The API version to list models on.
    pub version: String,
}

/// The native method name an endpoint stands for in ListModels'
/// `supportedGenerationMethods` (compat endpoints: the method behind them).
fn native_method(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::StreamGenerateContent => "generateContent",
        Endpoint::ImagesGenerations => "predict",
        Endpoint::Embeddings => "embedContent",
        other => other.as_str(),
    }
}

/// The reply for an answer that cannot be given in the client's shape.
fn failed_translation(routed: &Routed, error: TranslateError) -> Reply {
    let local = reject_translation(routed, error);
    let mut headers = local.headers;
    headers.push((CONTENT_TYPE, JSON.to_owned()));
    Reply {
        status: local.status,
        headers,
        body: local.body,
        count: Some(Count::TranslateError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{body as flow_body, BodyStep, Head};
    use crate::headers::{DIAG_HINT, RETRY_AFTER};
    use crate::route::Auth;
    use serde_json::Value;

    /// A configuration without the built-in lifecycle table, so the
    /// sequences below do not depend on which models are shut down today.
    fn config(json: &str) -> Config {
        let mut value: Value =
            serde_json::from_str(if json.is_empty() { "{}" } else { json }).unwrap();
        value["builtin_lifecycle"] = Value::Bool(false);
        Config::from_bytes(value.to_string().as_bytes()).unwrap()
    }

    /// A chat request for `model`, routed (and translated when the model
    /// needs it) under `config`.
    fn routed(config: &Config, model: &str) -> (Routed, Option<Box<dyn Translator>>) {
        let head = Head {
            method: "POST",
            path: "/v1beta/openai/chat/completions",
            content_length: None,
            content_encoding: None,
            auth: Auth::default(),
            now: crate::flow::Now::At(1_796_169_600),
            catalogue: None,
            signatures: None,
        };
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"a cat"}}]}}"#);
        match flow_body(config, &head, body.as_bytes()) {
            BodyStep::Route(routed, t) => (*routed, t.and_then(|(_, t)| t)),
            _ => panic!("not routed"),
        }
    }

    /// Finishes a held error response with `upstream` as its body; the
    /// edit and its hint.
    fn finish_error(
        state: &mut Response,
        config: &Config,
        routed: &Routed,
        upstream: &[u8],
    ) -> (Edit, String) {
        state.body(config, routed, upstream.len(), true);
        let Step::Continue(edit) = state.finish(config, routed, None, upstream) else {
            panic!("not finished")
        };
        let hint = edit
            .set
            .iter()
            .find(|(n, _)| *n == DIAG_HINT)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        (edit, hint)
    }

    #[derive(Clone, Copy)]
    enum Event {
        Headers(bool),
        Body(usize, bool),
        Trailers,
    }

    /// A step as a short label: `pass`, `hold`, `drop` (continue with the
    /// chunk emptied), `read`, `write` (continue with a new body),
    /// `headers` (continue with headers only), `replace:STATUS`.
    #[test]
    fn an_edit_is_empty_only_when_it_changes_nothing() {
        let cases = [
            ("default", Edit::default(), true),
            (
                "status",
                Edit {
                    status: Some(502),
                    ..Edit::default()
                },
                false,
            ),
            (
                "set",
                Edit {
                    set: vec![(CONTENT_TYPE, JSON.to_owned())],
                    ..Edit::default()
                },
                false,
            ),
            (
                "remove",
                Edit {
                    remove: vec![CONTENT_LENGTH],
                    ..Edit::default()
                },
                false,
            ),
            ("empty body", Edit::body(Vec::new()), false),
            (
                "count",
                Edit {
                    count: Some(Count::Annotated),
                    ..Edit::default()
                },
                false,
            ),
        ];
        for (name, edit, want) in cases {
            assert_eq!(edit.is_empty(), want, "{name}");
        }
    }

    #[test]
    fn status_codes_read_as_str_parse_reads_them() {
        let values: [&[u8]; 14] = [
            b"200", b"404", b"503", b"+200", b"0200", b"65535", b"65536", b"", b"+", b"20 ",
            b" 200", b"2O0", b"-200", b"\xff00",
        ];
        for value in values {
            let want = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0);
            assert_eq!(status_code(value), want, "{value:?}");
        }
    }

    /// Where `untouched` holds (the glue stops after `:status`), the headers
    /// step would only let the answer go on, with nothing written and the
    /// state of a passing answer; and for each case here where it does not,
    /// the headers step has something to do. (Not everywhere: a chat that
    /// offers tools, answered 304, is let by, but the glue reads its map.)
    #[test]
    fn untouched_is_where_the_headers_step_only_lets_the_answer_by() {
        let config = config("{}");
        let shut_down = r#"[{"match":"gemini-2.5-pro","shutdown":"2026-12-01","replacement":"gemini-3.5-flash"}]"#;
        let config_retired = self::config(&format!(r#"{{"lifecycle":{shut_down}}}"#));
        let config_never =
            self::config(&format!(r#"{{"lifecycle":{shut_down},"migrate":"never"}}"#));
        let (chat, _) = routed(&config, "gemini-3.5-flash");
        let tools = Routed {
            tools: true,
            ..chat.clone()
        };
        // Shut down: with `migrate: never` it is sent as asked, with a notice.
        let (noticed, _) = routed(&config_never, "gemini-2.5-pro");
        let (migrated, _) = routed(&config_retired, "gemini-2.5-pro");
        let (image, translator) = routed(&config, "gemini-3.1-flash-image");
        let translated = Translation::of(translator.as_deref());
        assert!(noticed.notice.is_some() && noticed.migration.is_none());
        assert!(migrated.migration.is_some());
        let cases = [
            ("a plain success", &chat, Translation::None, 200, true),
            ("a plain redirect", &chat, Translation::None, 304, true),
            ("no status", &chat, Translation::None, 0, true),
            ("a not found", &chat, Translation::None, 404, false),
            ("a server error", &chat, Translation::None, 503, false),
            (
                "a chat that offers tools",
                &tools,
                Translation::None,
                200,
                false,
            ),
            (
                "a model with a notice",
                &noticed,
                Translation::None,
                200,
                false,
            ),
            ("a migrated model", &migrated, Translation::None, 200, false),
            ("a translated answer", &image, translated, 200, false),
        ];
        for (name, routed, translation, status, want) in cases {
            assert_eq!(untouched(routed, translation, status), want, "{name}");
            let head = ResponseHead {
                status,
                ..ResponseHead::default()
            };
            for end in [false, true] {
                let (state, step) = Response::headers(&config, routed, translation, &head, end);
                let lets_by = state.passes() && step == Step::go_on();
                assert_eq!(lets_by, want, "{name}, end of stream {end}");
            }
        }
    }

    /// A compressed answer shows `route_removes_accept_encoding` wrong,
    /// and only when the field is set.
    #[test]
    fn a_compressed_answer_shows_a_route_that_keeps_accept_encoding() {
        let trusting = config(r#"{"route_removes_accept_encoding":true}"#);
        let removing = config("{}");
        let cases = [
            ("field set, gzip", &trusting, Some("gzip"), true),
            ("field set, br, padded", &trusting, Some(" br "), true),
            ("field set, identity", &trusting, Some("Identity"), false),
            ("field set, no encoding", &trusting, None, false),
            ("field unset, gzip", &removing, Some("gzip"), false),
        ];
        for (name, config, encoding, want) in cases {
            let head = ResponseHead {
                status: 404,
                content_encoding: encoding,
                ..ResponseHead::default()
            };
            assert_eq!(encoding_kept(config, &head), want, "{name}");
        }
    }

    /// `passes` says the body and trailers steps would only let the answer
    /// go on (the glue then skips them), and only then.
    #[test]
    fn passes_only_where_the_body_and_trailers_steps_change_nothing() {
        let config = config("{}");
        let (chat, _) = routed(&config, "gemini-3.5-flash");
        let (image, translator) = routed(&config, "gemini-3.1-flash-image");
        let cases = [
            ("a plain success", &chat, Translation::None, 200, true),
            ("a plain redirect", &chat, Translation::None, 304, true),
            ("an error", &chat, Translation::None, 404, false),
            (
                "a translated success",
                &image,
                Translation::of(translator.as_deref()),
                200,
                false,
            ),
        ];
        for (name, routed, translation, status, want) in cases {
            let head = ResponseHead {
                status,
                ..ResponseHead::default()
            };
            let (state, _) = Response::headers(&config, routed, translation, &head, false);
            assert_eq!(state.passes(), want, "{name}");
            for end in [false, true] {
                let mut body = state.clone();
                let mut trailers = state.clone();
                let steps = [
                    body.body(&config, routed, 10, end),
                    trailers.trailers(&config, routed),
                ];
                for step in steps {
                    assert_eq!(
                        step == Step::Continue(Edit::default()),
                        want,
                        "{name}, end {end}"
                    );
                }
            }
        }
    }

    fn label(step: &Step) -> String {
        match step {
            Step::Continue(e) if e.body.as_ref().is_some_and(Vec::is_empty) => "drop".into(),
            Step::Continue(e) if e.body.is_some() => "write".into(),
            Step::Continue(e) if !e.set.is_empty() => "headers".into(),
            Step::Continue(_) => "pass".into(),
            Step::Hold(_) => "hold".into(),
            Step::ReadBody => "read".into(),
            Step::Stream => "stream".into(),
            Step::Replace(r) => format!("replace:{}", r.status),
        }
    }

    #[test]
    fn response_sequences() {
        use Event::{Body, Headers, Trailers};
        struct Case {
            name: &'static str,
            config: &'static str,
            model: &'static str,
            status: u16,
            encoding: Option<&'static str>,
            length: Option<&'static str>,
            events: &'static [Event],
            want: &'static [&'static str],
        }
        let small = r#"{"max_body_bytes": 1000}"#;
        let cases = [
            Case {
                name: "2xx untranslated passes",
                config: "",
                model: "gemini-3.5-flash",
                status: 200,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, true)],
                want: &["pass", "pass"],
            },
            Case {
                name: "404 buffered and rewritten",
                config: "",
                model: "gemini-3.5-flash",
                status: 404,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, false), Body(20, true)],
                want: &["hold", "hold", "read:write"],
            },
            Case {
                name: "429 rewritten too",
                config: "",
                model: "gemini-3.5-flash",
                status: 429,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, true)],
                want: &["hold", "read:write"],
            },
            Case {
                name: "503 rewritten too",
                config: "",
                model: "gemini-3.5-flash",
                status: 503,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, true)],
                want: &["hold", "read:write"],
            },
            Case {
                name: "error with content-length 0 is replaced",
                config: "",
                model: "gemini-3.5-flash",
                status: 404,
                encoding: None,
                length: Some("0"),
                events: &[Headers(true)],
                want: &["replace:404"],
            },
            Case {
                name: "compressed error: headers only",
                config: "",
                model: "gemini-3.5-flash",
                status: 404,
                encoding: Some("gzip"),
                length: None,
                events: &[Headers(false), Body(10, true)],
                want: &["headers", "pass"],
            },
            Case {
                name: "error announced too large: headers only",
                config: "",
                model: "gemini-3.5-flash",
                status: 404,
                encoding: None,
                length: Some("70000"),
                events: &[Headers(false), Body(70000, true)],
                want: &["headers", "pass"],
            },
            Case {
                name: "error of unannounced length growing too large: answered from its start, the rest dropped",
                config: "",
                model: "gemini-3.5-flash",
                status: 500,
                encoding: None,
                length: None,
                events: &[
                    Headers(false),
                    Body(60000, false),
                    Body(70000, false),
                    Body(80000, true),
                ],
                want: &["hold", "hold", "read:write", "drop"],
            },
            Case {
                name: "error ended by trailers",
                config: "",
                model: "gemini-3.5-flash",
                status: 404,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, false), Trailers],
                want: &["hold", "hold", "read:write"],
            },
            Case {
                name: "error with only trailers is replaced",
                config: "",
                model: "gemini-3.5-flash",
                status: 404,
                encoding: None,
                length: None,
                events: &[Headers(false), Trailers],
                want: &["hold", "replace:404"],
            },
            Case {
                name: "translated 2xx buffered",
                config: "",
                model: "imagen-4.0-generate-001",
                status: 200,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, false), Body(20, true)],
                want: &["hold", "hold", "read:write"],
            },
            Case {
                name: "translated 2xx ended by trailers",
                config: "",
                model: "imagen-4.0-generate-001",
                status: 200,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, false), Trailers],
                want: &["hold", "hold", "read:write"],
            },
            Case {
                name: "translated gzip answer drained into a 502",
                config: "",
                model: "imagen-4.0-generate-001",
                status: 200,
                encoding: Some("gzip"),
                length: None,
                events: &[Headers(false), Body(10, false), Body(20, true)],
                want: &["hold", "write", "drop"],
            },
            Case {
                name: "translated answer announced too large",
                config: small,
                model: "imagen-4.0-generate-001",
                status: 200,
                encoding: None,
                length: Some("2000"),
                events: &[Headers(false), Body(1500, false), Trailers],
                want: &["hold", "write", "pass"],
            },
            Case {
                name: "translated answer growing too large",
                config: small,
                model: "imagen-4.0-generate-001",
                status: 200,
                encoding: None,
                length: None,
                events: &[
                    Headers(false),
                    Body(900, false),
                    Body(1100, false),
                    Body(1500, true),
                ],
                want: &["hold", "hold", "write", "drop"],
            },
            Case {
                name: "translated empty 2xx is replaced",
                config: "",
                model: "imagen-4.0-generate-001",
                status: 200,
                encoding: None,
                length: Some("0"),
                events: &[Headers(true)],
                want: &["replace:502"],
            },
            Case {
                name: "translated gzip without body is replaced",
                config: "",
                model: "imagen-4.0-generate-001",
                status: 200,
                encoding: Some("gzip"),
                length: None,
                events: &[Headers(true)],
                want: &["replace:502"],
            },
            Case {
                name: "translated error rewritten",
                config: "",
                model: "imagen-4.0-generate-001",
                status: 400,
                encoding: None,
                length: None,
                events: &[Headers(false), Body(10, true)],
                want: &["hold", "read:write"],
            },
            Case {
                name: "3xx passes",
                config: "",
                model: "imagen-4.0-generate-001",
                status: 304,
                encoding: None,
                length: None,
                events: &[Headers(true)],
                want: &["pass"],
            },
        ];
        for case in &cases {
            let config = config(case.config);
            let (routed, translator) = routed(&config, case.model);
            let head = ResponseHead {
                status: case.status,
                content_encoding: case.encoding,
                content_length: case.length,
                retry_after: false,
                content_type: None,
            };
            let mut state = Response::default();
            let mut got = Vec::new();
            for event in case.events {
                let step = match *event {
                    Event::Headers(eos) => {
                        let (s, step) = Response::headers(
                            &config,
                            &routed,
                            Translation::of(translator.as_deref()),
                            &head,
                            eos,
                        );
                        state = s;
                        step
                    }
                    Event::Body(size, eos) => state.body(&config, &routed, size, eos),
                    Event::Trailers => state.trailers(&config, &routed),
                };
                let label = match step {
                    // The glue reads the body and finishes, as it does.
                    Step::ReadBody => {
                        format!(
                            "read:{}",
                            label(&state.finish(&config, &routed, None, b"{}"))
                        )
                    }
                    other => label(&other),
                };
                got.push(label);
            }
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn replaced_bodies_never_keep_a_stale_encoding_or_length() {
        let config = config("");
        let (routed, translator) = routed(&config, "imagen-4.0-generate-001");
        let head = ResponseHead {
            status: 200,
            content_encoding: Some("gzip"),
            ..ResponseHead::default()
        };
        let (_, step) = Response::headers(
            &config,
            &routed,
            Translation::of(translator.as_deref()),
            &head,
            false,
        );
        let Step::Hold(edit) = step else {
            panic!("{step:?}")
        };
        assert_eq!(edit.status, Some(502));
        assert_eq!(edit.remove, vec![CONTENT_LENGTH, CONTENT_ENCODING]);
        assert!(
            edit.set.contains(&(CONTENT_TYPE, JSON.to_owned())),
            "{:?}",
            edit.set
        );
        assert_eq!(
            edit.body, None,
            "no body is written from the headers callback"
        );
    }

    #[test]
    fn errors_are_one_object_in_the_client_shape_with_a_fitting_hint() {
        let config = config("");
        let (routed, _) = routed(&config, "gemini-3.5-flash");
        let quota = r#"[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"15"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26.5s"}]}}]"#;
        type Case<'a> = (
            &'a str,
            u16,
            &'a str,
            bool,
            &'a str,
            &'a str,
            Option<&'a str>,
        );
        let cases: [Case<'_>; 5] = [
            ("429 names the quota", 429, quota, false, "rate_limit_error",
                "the quota GenerateRequestsPerMinutePerProjectPerModel-FreeTier (limit 15) is exhausted; Google asks to retry after 27s", Some("27")),
            ("429 keeps the upstream retry-after", 429, quota, true, "rate_limit_error", "is exhausted", None),
            ("400 names the field", 400,
                r#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"generation_config.temperature","description":"must be <= 2"}]}]}}"#,
                false, "invalid_request_error", "Google refused a field of the request: generation_config.temperature: must be <= 2", None),
            ("403 says key or permission", 403,
                r#"[{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED"}]}}]"#,
                false, "authentication_error", "lacks permission for this model or project (SERVICE_DISABLED)", None),
            ("503 says retry", 503, r#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#,
                false, "api_error", "a failure at the upstream, not in the routing; retry with backoff", None),
        ];
        for (name, status, upstream, upstream_retry_after, kind, hint_part, retry_after) in cases {
            let head = ResponseHead {
                status,
                retry_after: upstream_retry_after,
                ..ResponseHead::default()
            };
            let (mut state, _) =
                Response::headers(&config, &routed, Translation::None, &head, false);
            assert_eq!(
                label(&state.body(&config, &routed, upstream.len(), true)),
                "read",
                "{name}"
            );
            let Step::Continue(edit) = state.finish(&config, &routed, None, upstream.as_bytes())
            else {
                panic!("{name}")
            };
            assert_eq!(edit.status, Some(status), "{name}");
            let body: Value = serde_json::from_slice(edit.body.as_deref().unwrap()).unwrap();
            assert!(body.is_object(), "{name}: {body}");
            assert_eq!(body["error"]["type"], kind, "{name}");
            let hint = edit
                .set
                .iter()
                .find(|(n, _)| *n == DIAG_HINT)
                .map(|(_, v)| v.as_str())
                .unwrap();
            assert!(hint.contains(hint_part), "{name}: {hint}");
            let retry = edit
                .set
                .iter()
                .find(|(n, _)| *n == RETRY_AFTER)
                .map(|(_, v)| v.as_str());
            assert_eq!(retry, retry_after, "{name}");
            assert_eq!(edit.count, Some(Count::Annotated), "{name}");
        }
    }

    #[test]
    fn written_bodies_stay_within_max_body_bytes() {
        // A translated answer that would grow past max_body_bytes is refused.
        let config = config(r#"{"max_body_bytes": 300}"#);
        let (routed, mut translator) = routed(&config, "imagen-4.0-generate-001");
        let data = "A".repeat(200);
        let upstream = format!(
            r#"{{"predictions":[{{"bytesBase64Encoded":"{data}","mimeType":"image/png"}}]}}"#
        );
        let head = ResponseHead {
            status: 200,
            ..ResponseHead::default()
        };
        let (mut state, _) = Response::headers(&config, &routed, Translation::Whole, &head, false);
        assert_eq!(
            label(&state.body(&config, &routed, upstream.len(), true)),
            "read"
        );
        let t = translator
            .as_mut()
            .map(|t| t.as_mut() as &mut dyn Translator);
        let Step::Continue(edit) = state.finish(&config, &routed, t, upstream.as_bytes()) else {
            panic!()
        };
        assert_eq!(edit.status, Some(502));
        let body = edit.body.unwrap();
        assert!(body.len() <= 2048, "{}", body.len());
        assert!(String::from_utf8_lossy(&body).contains("above max_body_bytes (300)"));
    }

    #[test]
    fn lifecycle_headers_on_every_answer_and_the_404_tells_the_truth() {
        let config = Config::from_bytes(br#"{"migrate":"never"}"#).unwrap();
        let (routed, _) = routed(&config, "gemini-2.5-flash");
        let want = [
            (crate::headers::DEPRECATION, "@1796083200".to_owned()),
            (
                crate::headers::SUNSET,
                "Tue, 01 Dec 2026 00:00:00 GMT".to_owned(),
            ),
            (crate::headers::REPLACEMENT, "gemini-3.8-flash".to_owned()),
        ];
        for (status, eos) in [(200, false), (404, false), (404, true), (503, false)] {
            let head = ResponseHead {
                status,
                ..ResponseHead::default()
            };
            let (_, step) = Response::headers(&config, &routed, Translation::None, &head, eos);
            let set = match &step {
                Step::Continue(e) | Step::Hold(e) => e.set.clone(),
                Step::Replace(r) => r.headers.clone(),
                Step::ReadBody | Step::Stream => panic!("{status}"),
            };
            for header in &want {
                assert!(set.contains(header), "{status} {eos}: {set:?}");
            }
        }
        let head = ResponseHead {
            status: 404,
            ..ResponseHead::default()
        };
        let (mut state, _) = Response::headers(&config, &routed, Translation::None, &head, false);
        let upstream = br#"[{"error":{"code":404,"message":"models/gemini-2.5-flash is not found","status":"NOT_FOUND"}}]"#;
        let (edit, hint) = finish_error(&mut state, &config, &routed, upstream);
        assert!(
            hint.starts_with("gemini-2.5-flash was shut down on 2026-12-01; its replacement is gemini-3.8-flash."),
            "{hint}"
        );
        let body: Value = serde_json::from_slice(edit.body.as_deref().unwrap()).unwrap();
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("its replacement is gemini-3.8-flash"));
    }

    #[test]
    fn a_migrated_request_says_so_on_every_answer_and_in_its_hint() {
        let config = Config::from_bytes(b"").unwrap();
        let (routed, _) = routed(&config, "gemini-2.5-flash");
        assert_eq!(routed.model.id, "gemini-3.8-flash");
        let head = ResponseHead {
            status: 429,
            ..ResponseHead::default()
        };
        let (mut state, step) =
            Response::headers(&config, &routed, Translation::None, &head, false);
        let Step::Hold(edit) = step else {
            panic!("{step:?}")
        };
        assert!(
            edit.set
                .contains(&(REQUESTED_MODEL, "gemini-2.5-flash".to_owned())),
            "{:?}",
            edit.set
        );
        assert!(
            edit.set
                .contains(&(SERVED_MODEL, "gemini-3.8-flash".to_owned())),
            "{:?}",
            edit.set
        );
        let upstream = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#;
        let (_, hint) = finish_error(&mut state, &config, &routed, upstream);
        assert!(
            hint.starts_with("gemini-2.5-flash was shut down on 2026-12-01; gemini-router sent the request to its replacement gemini-3.8-flash. gemini-3.8-flash is in the gemini family"),
            "{hint}"
        );
    }

    #[test]
    fn kept_headers_on_replace() {
        for (name, want) in [
            ("retry-after", true),
            ("x-goog-foo", true),
            (":status", false),
            ("content-length", false),
            ("content-encoding", false),
            ("transfer-encoding", false),
        ] {
            assert_eq!(kept_on_replace(name), want, "{name}");
        }
    }
}
