//! `flow::head` and `flow::body` (and the response decisions that follow a
//! routed request) on arbitrary method, path, headers and body.
//!
//! Configurations: the default one (index 0), and a few others that turn on
//! the OpenAI, Vertex and custom-rule paths. Checked:
//! - nothing panics;
//! - a routed model id is 1..=max_model_length characters of
//!   `[A-Za-z0-9._-]`, and not `.` or `..`;
//! - a rewritten path starts with `/`, holds no character outside RFC 3986
//!   `pchar`/`/`/`?` that the client's path did not already hold, adds no dot
//!   segment, and names `{collection}/{id}:{method}` of the target (or ends in
//!   the OpenAI operation);
//! - header values the filter writes (diagnostics, moved credentials) hold no
//!   control character unless the request's own path or header values held it
//!   (Envoy refuses those, so in practice: none). Bodies, the client's or the
//!   upstream's, must never put one there: a CR or LF in a response header
//!   splits the HTTP/1 response;
//! - local replies, annotated errors and translated JSON bodies are JSON;
//! - the response state machine, driven through arbitrary headers, chunk
//!   sizes (some far past the bounds) and ends (at the headers, on the last
//!   chunk, or by trailers), never writes a body from the headers callback,
//!   never writes one larger than `max_body_bytes` (error bodies: the error
//!   limit plus 8 KiB), never holds a response again once it let it go, and
//!   never holds one that has ended;
//! - the API key (sent in `authorization`, `x-goog-api-key` or `?key=`) never
//!   appears in a diagnostic header, an error body or a local reply, nor in a
//!   path rewritten for an OpenAI-compatible target.
#![no_main]

use arbitrary::Arbitrary;
use gemini_router::config::Config;
use gemini_router::flow::{self, BodyStep, Head, HeadStep, LocalReply, Now, RejectKind, Routed};
use gemini_router::response::{self, Edit, Reply, Response, ResponseHead, Step, Translation};
use gemini_router::route::{Auth, HeaderOp};
use gemini_router::signatures::{Shared, Store};
use gemini_router::translate::Translator;
use gemini_router_fuzz::{Json, JsonObject, ShapedRequest, ShapedResponse};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const KEY: &str = "AIzaFuzzKey0123456789SECRET";
/// The key's first 12 bytes: what a value cut across the key would keep of
/// it. The properties look for this part, so a key cut short is caught too;
/// the request and the upstream "have the key" wherever they have this part.
const KEY_PART: &str = KEY.split_at(12).0;

/// Index 0 is the default configuration.
const CONFIGS: &[&str] = &[
    "",
    r#"{"api_style":"openai"}"#,
    r#"{"api_style":"openai","openai_images_families":["imagen","gemini_image"],"image_message_format":"image_url_parts"}"#,
    r#"{"api_style":"vertex","vertex":{"project":"proj","location":"us-central1"}}"#,
    r#"{"family_styles":{"imagen":"openai","embedding":"openai"},"openai_images_families":["imagen"],"native_version":"v1","openai_base_path":"/compat/v1"}"#,
    r#"{"rules":[{"match":"my-*","family":"imagen"},{"match":"?x*","family":"veo"}],"builtin_rules":false,"default_family":"embedding","max_body_bytes":256,"max_model_length":16,"annotate_statuses":[400,404,500]}"#,
];

const MODELS: &[&str] = &[
    "gemini-2.5-flash",
    "gemini-2.5-flash-image",
    "gemini-2.0-flash-preview-image-generation",
    "imagen-4.0-generate-001",
    "veo-3.0-generate-001",
    "text-embedding-004",
    "gemini-embedding-001",
    "embedding-001",
    "aqa",
    "gemma-3-27b-it",
    "learnlm-2.0-flash",
    "my-model",
    "models/gemini-2.5-flash",
    "tunedModels/my-tuned",
    ".",
    "..",
    "../x",
    "a/b",
    "%2F",
    "",
];

const METHODS: &[&str] = &[
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
    "batchEmbedContents",
    "predict",
    "predictLongRunning",
    "generateAnswer",
];

/// The configurations, compiled once per thread: a `Config` remembers its
/// recent model lookups (`classify::FirstMatch`, a `RefCell`), so it is not
/// shared between threads, as in the module, where each worker has its own.
fn configs() -> &'static [Config] {
    thread_local! {
        static CONFIGS_COMPILED: &'static [Config] = Vec::leak(
            CONFIGS
                .iter()
                .map(|c| Config::from_bytes(c.as_bytes()).expect("fuzz configuration is valid"))
                .collect(),
        );
    }
    CONFIGS_COMPILED.with(|configs| *configs)
}

#[derive(Arbitrary, Debug)]
enum Method<'a> {
    Post,
    Get,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Text<'a> {
    Known(u8),
    Raw(&'a str),
}

impl Text<'_> {
    fn pick(&self, known: &[&'static str]) -> String {
        match self {
            Text::Known(i) => known[usize::from(*i) % known.len()].to_owned(),
            Text::Raw(s) => (*s).to_owned(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum ModelPrefix<'a> {
    Native(u8),
    Vertex {
        project: &'a str,
        location: &'a str,
        publisher: &'a str,
    },
    VertexPublisher(&'a str),
    Custom(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Query<'a> {
    alt_sse: bool,
    key: bool,
    extra: &'a str,
}

#[derive(Arbitrary, Debug)]
enum PathInput<'a> {
    Raw(&'a str),
    OpenAi {
        prefix: Option<&'a str>,
        op: u8,
        query: Option<&'a str>,
    },
    Model {
        prefix: ModelPrefix<'a>,
        tuned: bool,
        id: Text<'a>,
        method: Text<'a>,
        query: Option<Query<'a>>,
    },
}

impl PathInput<'_> {
    fn render(&self) -> String {
        match self {
            PathInput::Raw(p) => (*p).to_owned(),
            PathInput::OpenAi { prefix, op, query } => {
                let op =
                    ["chat/completions", "images/generations", "embeddings"][usize::from(*op) % 3];
                let mut path = format!("{}/{op}", prefix.unwrap_or("/v1beta/openai"));
                if let Some(q) = query {
                    path.push('?');
                    path.push_str(q);
                }
                path
            }
            PathInput::Model {
                prefix,
                tuned,
                id,
                method,
                query,
            } => {
                let prefix = match prefix {
                    ModelPrefix::Native(v) => {
                        format!("/{}/", ["v1beta", "v1", "v1alpha"][usize::from(*v) % 3])
                    }
                    ModelPrefix::Vertex {
                        project,
                        location,
                        publisher,
                    } => format!(
                        "/v1/projects/{project}/locations/{location}/publishers/{publisher}/"
                    ),
                    ModelPrefix::VertexPublisher(publisher) => {
                        format!("/v1/publishers/{publisher}/")
                    }
                    ModelPrefix::Custom(p) => (*p).to_owned(),
                };
                let collection = if *tuned { "tunedModels" } else { "models" };
                let mut path = format!(
                    "{prefix}{collection}/{}:{}",
                    id.pick(MODELS),
                    method.pick(METHODS)
                );
                if let Some(q) = query {
                    let mut params = Vec::new();
                    if q.alt_sse {
                        params.push("alt=sse".to_owned());
                    }
                    if q.key {
                        params.push(format!("key={KEY}"));
                    }
                    if !q.extra.is_empty() {
                        params.push(q.extra.to_owned());
                    }
                    path.push('?');
                    path.push_str(&params.join("&"));
                }
                path
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum ModelValue<'a> {
    Known(u8),
    Raw(&'a str),
    NotAString(Json),
    Missing,
}

#[derive(Arbitrary, Debug)]
enum BodyInput<'a> {
    Raw(&'a [u8]),
    Json(JsonObject),
    Request {
        model: ModelValue<'a>,
        stream: Option<bool>,
        rest: JsonObject,
    },
    Shaped {
        model: ModelValue<'a>,
        shaped: ShapedRequest,
    },
}

fn set_model(map: &mut serde_json::Map<String, Value>, model: &ModelValue<'_>) {
    match model {
        ModelValue::Known(i) => {
            map.insert(
                "model".into(),
                MODELS[usize::from(*i) % MODELS.len()].into(),
            );
        }
        ModelValue::Raw(s) => {
            map.insert("model".into(), (*s).into());
        }
        ModelValue::NotAString(v) => {
            map.insert("model".into(), v.0.clone());
        }
        ModelValue::Missing => {
            map.remove("model");
        }
    }
}

impl BodyInput<'_> {
    fn render(&self) -> Vec<u8> {
        match self {
            BodyInput::Raw(b) => b.to_vec(),
            BodyInput::Json(o) => Value::Object(o.0.clone()).to_string().into_bytes(),
            BodyInput::Request {
                model,
                stream,
                rest,
            } => {
                let mut map = rest.0.clone();
                set_model(&mut map, model);
                if let Some(s) = stream {
                    map.insert("stream".into(), (*s).into());
                }
                Value::Object(map).to_string().into_bytes()
            }
            BodyInput::Shaped { model, shaped } => match &shaped.0 {
                Value::Object(map) => {
                    let mut map = map.clone();
                    set_model(&mut map, model);
                    Value::Object(map).to_string().into_bytes()
                }
                other => other.to_string().into_bytes(),
            },
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AuthInput<'a> {
    None,
    Bearer,
    GoogKey,
    Both,
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum UpstreamInput<'a> {
    Raw(&'a [u8]),
    Json(Json),
    Shaped(ShapedResponse),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    config: u8,
    method: Method<'a>,
    path: PathInput<'a>,
    content_length: Option<&'a str>,
    content_encoding: Option<&'a str>,
    auth: AuthInput<'a>,
    body: BodyInput<'a>,
    status: u16,
    upstream: UpstreamInput<'a>,
    response: ResponseInput<'a>,
}

/// How the upstream's answer arrives: its headers, then the body in chunks
/// (cut points into the upstream body, or sizes far past it to cross the
/// bounds), ended by the last chunk, by trailers, or already at the headers.
#[derive(Arbitrary, Debug)]
struct ResponseInput<'a> {
    content_encoding: Option<&'a str>,
    content_length: Option<&'a str>,
    retry_after: bool,
    chunks: Vec<ChunkSize>,
    end: End,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ChunkSize {
    /// A cut point into the upstream body.
    Cut(u16),
    /// Bytes far beyond it (as a size only: the bytes are never built).
    Huge(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum End {
    /// `end_of_stream` on the headers: no body at all.
    AtHeaders,
    /// `end_of_stream` on the last chunk.
    LastChunk,
    /// Trailers after the last chunk.
    Trailers,
}

/// RFC 3986 `pchar`, plus `/` and `?`: what a path the filter writes may hold.
fn uri_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(c)
}

fn dot_segments(path: &str) -> usize {
    let path_only = path.split_once('?').map_or(path, |(p, _)| p);
    path_only
        .split('/')
        .filter(|s| *s == "." || *s == "..")
        .count()
}

/// Whether a string or key anywhere in `value` holds the API key.
fn decoded_has_key(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(KEY_PART),
        Value::Array(items) => items.iter().any(decoded_has_key),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(KEY_PART) || decoded_has_key(v)),
        _ => false,
    }
}

/// How many times `needle` occurs in `haystack` (overlaps counted).
fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

struct Case<'c> {
    config: &'c Config,
    path: String,
    /// The request's method, path and header values (not its body).
    request_text: Vec<u8>,
    /// Whether the key appears in the request only where it was put as a credential.
    key_only_as_credential: bool,
    /// Whether the key was sent as a credential (then the filter scrubs it
    /// from every error and header it writes, even when the upstream echoes it).
    key_is_credential: bool,
    /// Whether the upstream's text has the key's part only inside whole
    /// keys (what the filter can know to scrub).
    upstream_key_whole: bool,
}

impl Case<'_> {
    fn no_key(&self, what: &str, text: &[u8]) {
        if self.key_only_as_credential {
            assert!(
                !contains(text, KEY_PART.as_bytes()),
                "the API key leaked into {what}: {:?}",
                String::from_utf8_lossy(text)
            );
            // Nor in what a client decodes from JSON (escapes undone).
            if let Ok(value) = serde_json::from_slice::<Value>(text) {
                assert!(
                    !decoded_has_key(&value),
                    "the API key leaked into {what}, JSON-escaped: {:?}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    fn header_value(&self, name: &str, value: &str) {
        for b in value.bytes() {
            if b < 0x20 || b == 0x7f {
                assert!(
                    self.request_text.contains(&b),
                    "header {name} has control byte {b:#04x} not in the request's path or headers: {value:?}"
                );
            }
        }
    }

    fn routed(&self, routed: &Routed) {
        let id = &routed.model.id;
        assert!(
            !id.is_empty()
                && id.len() <= self.config.max_model_length
                && id != "."
                && id != ".."
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "unsafe model id {id:?}"
        );
        if let Some(new) = &routed.plan.path {
            assert!(
                new.starts_with('/'),
                "rewritten path {new:?} is not absolute"
            );
            for c in new.chars() {
                assert!(
                    uri_safe(c) || self.path.contains(c),
                    "rewritten path {new:?} gained the character {c:?} (from {:?})",
                    self.path
                );
            }
            assert!(
                dot_segments(new) <= dot_segments(&self.path),
                "rewritten path {new:?} gained a dot segment (from {:?})",
                self.path
            );
            let to = routed.plan.to;
            let path_only = new.split_once('?').map_or(new.as_str(), |(p, _)| p);
            if to.is_openai() {
                assert!(
                    path_only.ends_with(&format!("/{}", to.as_str())),
                    "rewritten path {new:?} does not end in {}",
                    to.as_str()
                );
                self.no_key(
                    "a path rewritten for an OpenAI-compatible target",
                    new.as_bytes(),
                );
            } else {
                let tail = format!("/{}:{}", routed.model.resource(), to.as_str());
                assert!(
                    path_only.ends_with(&tail),
                    "rewritten path {new:?} does not end in {tail:?}"
                );
            }
        }
        for op in &routed.plan.headers {
            if let HeaderOp::Set(name, secret) = op {
                self.header_value(name, &secret.0);
            }
        }
    }

    fn local(&self, reply: &LocalReply) {
        // A background-task prompt answered by the filter is a 200 chat
        // completion (SSE when the request streamed); the rest are errors.
        let task = reply.kind == RejectKind::Task;
        assert!(
            if task {
                reply.status == 200
            } else {
                (400..=599).contains(&reply.status)
            },
            "local reply status {} ({:?})",
            reply.status,
            reply.kind
        );
        for (name, value) in &reply.headers {
            self.header_value(name, value);
            self.no_key("a local reply header", value.as_bytes());
        }
        assert!(
            sse_or_json(reply.content_type, &reply.body),
            "local reply body is not {}: {:?}",
            reply.content_type,
            String::from_utf8_lossy(&reply.body)
        );
        self.no_key("a local reply", &reply.body);
        self.no_key("a local reply's reason", reply.reason.as_bytes());
    }

    fn edit(&self, what: &str, edit: &Edit, upstream_has_key: bool) {
        // Upstream text (a block reason, an encoding) may reach a header or
        // an error body; the client's own key never does, since the filter
        // scrubs it. A successful answer is the upstream's content.
        let scrubbed = (self.key_is_credential && self.upstream_key_whole) || !upstream_has_key;
        for (name, value) in &edit.set {
            self.header_value(name, value);
            if scrubbed {
                self.no_key(what, value.as_bytes());
            }
        }
        if let Some(body) = &edit.body {
            let bound = self
                .config
                .max_body_bytes
                .max(response::error_limit(self.config) + 8192);
            assert!(
                body.len() <= bound,
                "{what}: wrote a body of {} bytes, above the bound {bound}",
                body.len()
            );
            let success = edit.status.is_none_or(|s| s < 400);
            if !upstream_has_key || (scrubbed && !success) {
                self.no_key(what, body);
            }
        }
    }

    fn reply(&self, what: &str, reply: &Reply, upstream_has_key: bool) {
        let scrubbed = (self.key_is_credential && self.upstream_key_whole) || !upstream_has_key;
        for (name, value) in &reply.headers {
            self.header_value(name, value);
            if scrubbed {
                self.no_key(what, value.as_bytes());
            }
        }
        assert!(
            is_json(&reply.body),
            "{what} body is not JSON: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        if scrubbed {
            self.no_key(what, &reply.body);
        }
    }

    /// Drives the response state machine through the input's headers,
    /// chunks and end, checking every step.
    #[allow(clippy::too_many_arguments)]
    fn responses(
        &self,
        routed: &Routed,
        mut translator: Option<Box<dyn Translator>>,
        status: u16,
        input: &ResponseInput<'_>,
        upstream: &[u8],
        upstream_has_key: bool,
    ) {
        // Streams and JSON both: the status picks the content type.
        let content_type = if status.is_multiple_of(2) {
            "text/event-stream"
        } else {
            "application/json"
        };
        let head = ResponseHead {
            status,
            content_encoding: input.content_encoding,
            content_length: input.content_length,
            retry_after: input.retry_after,
            content_type: Some(content_type),
        };
        let at_headers = matches!(input.end, End::AtHeaders);
        let translation = Translation::of(translator.as_deref());
        let (mut state, step) =
            Response::headers(self.config, routed, translation, &head, at_headers);
        if let Step::Continue(edit) | Step::Hold(edit) = &step {
            assert!(
                edit.body.is_none(),
                "a body written from the headers callback"
            );
        }
        let mut holding = self.check(
            &mut state,
            routed,
            &mut translator,
            step,
            upstream,
            (0, 0),
            upstream_has_key,
        );
        if at_headers {
            assert!(!holding, "still holding a response that has ended");
            return;
        }
        let mut size = 0usize;
        let last = input.chunks.len();
        for (i, chunk) in input.chunks.iter().enumerate() {
            let before = size;
            size = match *chunk {
                ChunkSize::Cut(at) => size.max(usize::from(at).min(upstream.len())),
                ChunkSize::Huge(n) => size.saturating_add(n as usize),
            };
            let end = i + 1 == last && matches!(input.end, End::LastChunk);
            let step = state.body(self.config, routed, size, end);
            let was_holding = holding;
            let span = if holding { (0, size) } else { (before, size) };
            holding = self.check(
                &mut state,
                routed,
                &mut translator,
                step,
                upstream,
                span,
                upstream_has_key,
            );
            assert!(
                was_holding || !holding,
                "held again after letting the response go"
            );
            if end {
                assert!(!holding, "still holding a response that has ended");
            }
        }
        if matches!(input.end, End::Trailers) || input.chunks.is_empty() {
            let step = state.trailers(self.config, routed);
            holding = self.check(
                &mut state,
                routed,
                &mut translator,
                step,
                upstream,
                (size, size),
                upstream_has_key,
            );
            assert!(!holding, "still holding a response after its trailers");
        }
    }

    /// Checks one step; returns whether the response is still held.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &self,
        state: &mut Response,
        routed: &Routed,
        translator: &mut Option<Box<dyn Translator>>,
        step: Step,
        upstream: &[u8],
        (from, size): (usize, usize),
        upstream_has_key: bool,
    ) -> bool {
        match step {
            Step::Stream => {
                // The chunk in Envoy's buffer: what arrived since the last
                // callback (the whole body once it was held).
                let chunk = &upstream[from.min(upstream.len())..size.min(upstream.len())];
                let end = size >= upstream.len();
                let t = translator
                    .as_mut()
                    .map(|t| t.as_mut() as &mut dyn Translator);
                let streamed = state.chunk(self.config, routed, t, chunk, end);
                if let Some(out) = &streamed.out {
                    // Each event passes through (or is translated) with a
                    // bounded growth: never more than a frame's worth.
                    assert!(
                        out.len() <= chunk.len() + self.config.max_body_bytes + 64 * 1024,
                        "a streamed chunk of {} bytes became {}",
                        chunk.len(),
                        out.len()
                    );
                    if !upstream_has_key {
                        self.no_key("a streamed chunk", out);
                    }
                }
                for (id, signature) in &streamed.signatures {
                    assert!(!id.is_empty() && !signature.is_empty());
                }
                false
            }
            Step::Continue(edit) => {
                self.edit("a response edit", &edit, upstream_has_key);
                false
            }
            Step::Hold(edit) => {
                self.edit("a held response edit", &edit, upstream_has_key);
                true
            }
            Step::Replace(reply) => {
                self.reply("a replacement response", &reply, upstream_has_key);
                false
            }
            Step::ReadBody => {
                let body = &upstream[..size.min(upstream.len())];
                let t = translator
                    .as_mut()
                    .map(|t| t.as_mut() as &mut dyn Translator);
                let step = state.finish(self.config, routed, t, body);
                // Before the end (an error past the bound) the reply's
                // headers are set and the rest is dropped while held.
                let (Step::Continue(edit) | Step::Hold(edit)) = &step else {
                    panic!("finish must edit the response: {step:?}");
                };
                let still_holding = matches!(step, Step::Hold(_));
                let content_type = edit
                    .set
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                    .map_or("", |(_, v)| v.as_str());
                // While still held the body is emptied (the reply's body is
                // written at the end); the final one must parse.
                if let Some(body) = edit.body.as_ref().filter(|_| !still_holding) {
                    assert!(
                        sse_or_json(content_type, body),
                        "rewritten response ({content_type}) is malformed: {:?}",
                        String::from_utf8_lossy(body)
                    );
                }
                self.edit("a rewritten response", edit, upstream_has_key);
                still_holding
            }
        }
    }
}

/// A signature memory with nothing remembered: a Gemini 3 tool call
/// without a signature gets the bypass value put in.
struct Remembers;

impl Store for Remembers {
    fn get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }
    fn set(&self, _key: &str, _value: &[u8]) -> bool {
        true
    }
}

static SIGNATURES: Remembers = Remembers;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn sse_or_json(content_type: &str, body: &[u8]) -> bool {
    if content_type.starts_with("text/event-stream") {
        let text = String::from_utf8_lossy(body);
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .all(|d| d.trim() == "[DONE]" || is_json(d.trim().as_bytes()))
    } else {
        is_json(body)
    }
}

fuzz_target!(|input: Input<'_>| {
    let configs = configs();
    let config = &configs[usize::from(input.config) % configs.len()];
    let method = match input.method {
        Method::Post => "POST",
        Method::Get => "GET",
        Method::Other(m) => m,
    };
    let path = input.path.render();
    let body = input.body.render();
    let upstream = match &input.upstream {
        UpstreamInput::Raw(b) => b.to_vec(),
        UpstreamInput::Json(j) => j.to_bytes(),
        UpstreamInput::Shaped(s) => s.0.clone(),
    };
    let bearer = format!("Bearer {KEY}");
    let (authorization, api_key) = match input.auth {
        AuthInput::None => (None, None),
        AuthInput::Bearer => (Some(bearer.as_str()), None),
        AuthInput::GoogKey => (None, Some(KEY)),
        AuthInput::Both => (Some(bearer.as_str()), Some(KEY)),
        AuthInput::Raw(v) => (Some(v), None),
    };
    let head = Head {
        method,
        path: &path,
        content_length: input.content_length,
        content_encoding: input.content_encoding,
        auth: Auth {
            authorization,
            api_key,
        },
        // Before and after the built-in table's shutdown dates.
        now: Now::At(if input.status.is_multiple_of(2) {
            1_700_000_000
        } else {
            1_796_169_600
        }),
        catalogue: None,
        signatures: Some(Shared(&SIGNATURES)),
    };
    let mut request_text = Vec::new();
    for part in [
        Some(method),
        Some(path.as_str()),
        input.content_length,
        input.content_encoding,
        authorization,
        api_key,
    ]
    .into_iter()
    .flatten()
    {
        request_text.extend_from_slice(part.as_bytes());
    }
    // The key is a credential only as a `key=` query parameter (or a
    // header); anywhere else in the path it is just text the client sent.
    let (path_only, query) = path.split_once('?').unwrap_or((path.as_str(), ""));
    let query_params: Vec<&str> = query.split('&').collect();
    let key_param = format!("key={KEY}");
    let key_in_query = query_params.contains(&key_param.as_str());
    let key_only_as_credential = !contains(path_only.as_bytes(), KEY_PART.as_bytes())
        && query_params
            .iter()
            .all(|p| *p == key_param || !p.contains(KEY_PART))
        && !contains(&body, KEY_PART.as_bytes())
        && !input.content_length.is_some_and(|v| v.contains(KEY_PART))
        && !input.content_encoding.is_some_and(|v| v.contains(KEY_PART))
        && !method.contains(KEY_PART);
    // Text from the upstream (its body and the response headers the flow
    // reads) is not the client's to protect: only the request's key is.
    let upstream_has_key = contains(&upstream, KEY_PART.as_bytes())
        || input
            .response
            .content_encoding
            .is_some_and(|v| v.contains(KEY_PART))
        || input
            .response
            .content_length
            .is_some_and(|v| v.contains(KEY_PART));
    let case = Case {
        config,
        path: path.clone(),
        request_text,
        key_only_as_credential,
        key_is_credential: !matches!(input.auth, AuthInput::None | AuthInput::Raw(_))
            || key_in_query,
        upstream_key_whole: count(&upstream, KEY_PART.as_bytes())
            == count(&upstream, KEY.as_bytes())
            && ![
                input.response.content_encoding,
                input.response.content_length,
            ]
            .iter()
            .flatten()
            .any(|v| v.contains(KEY_PART)),
    };
    let status = 400 + input.status % 200;

    match flow::head(config, &head) {
        HeadStep::Route(routed) => {
            case.routed(&routed);
            case.responses(
                &routed,
                None,
                status,
                &input.response,
                &upstream,
                upstream_has_key,
            );
        }
        HeadStep::Reject(reply) => case.local(&reply),
        HeadStep::Pass(_) | HeadStep::Buffer(_) => {}
    }

    match flow::body(config, &head, &body) {
        BodyStep::Route(routed, translation) => {
            case.routed(&routed);
            let translator = translation.and_then(|(new_body, translator)| {
                assert!(
                    is_json(&new_body),
                    "rewritten request body is not JSON: {:?}",
                    String::from_utf8_lossy(&new_body)
                );
                if translator.is_none() {
                    // A migration splices only the model value.
                    let sent: serde_json::Value =
                        serde_json::from_slice(&new_body).unwrap_or_default();
                    assert_eq!(
                        sent.get("model").and_then(|m| m.as_str()),
                        Some(routed.model.id.as_str()),
                        "a spliced body names the served model"
                    );
                }
                assert!(
                    new_body.len() <= config.max_body_bytes,
                    "translated request of {} bytes, above max_body_bytes",
                    new_body.len()
                );
                translator
            });
            // A 2xx as well as errors: the status input picks either.
            let status = if input.status.is_multiple_of(3) {
                200
            } else {
                status
            };
            case.responses(
                &routed,
                translator,
                status,
                &input.response,
                &upstream,
                upstream_has_key,
            );
        }
        BodyStep::Reject(reply) => case.local(&reply),
        BodyStep::Pass(_) => {}
    }
});
