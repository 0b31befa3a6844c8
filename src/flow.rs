//! The per-request decisions, as pure functions the filter glue calls at each
//! stage: on request headers ([`head`]) and on the full request body
//! ([`body`]); the response side is [`crate::response`]. Each returns what
//! to do; the glue turns that into host calls.

use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::diagnose;
use crate::endpoint::{Endpoint, Family};
use crate::headers::{ACCEPT_ENCODING, DIAG_HINT, JSON};
use crate::lifecycle::Notice;
use crate::model::{ModelError, ModelName};
use crate::request::{query_of, recognize, OpenAiPath, Recognized};
use crate::route::{self, Auth, Client, Credentials, ErrorShape, HeaderOp, Plan, Secret, Verdict};
use crate::scan::{self, top_level_fields_noting, ScanError};
use crate::signatures::{self, Memory, Shared};
use crate::translate::{self, Exchange, NoImage, TranslateError, Translator};
use std::rc::Rc;

/// Why a request goes on without routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    /// Not a request that names a model (lists, files, GETs, unknown methods).
    Unrouted,
    /// An OpenAI-style body without a `model`.
    NoModel,
    /// An OpenAI-style body that is not a JSON object.
    InvalidJson,
    /// A body larger than `max_body_bytes`.
    TooLarge,
    /// A compressed body (`content-encoding`).
    Compressed,
}

impl PassReason {
    /// Every reason, for defining metrics.
    pub const ALL: [PassReason; 5] = [
        PassReason::Unrouted,
        PassReason::NoModel,
        PassReason::InvalidJson,
        PassReason::TooLarge,
        PassReason::Compressed,
    ];

    /// The metric suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            PassReason::Unrouted => "unrouted",
            PassReason::NoModel => "no_model",
            PassReason::InvalidJson => "invalid_json",
            PassReason::TooLarge => "too_large",
            PassReason::Compressed => "compressed",
        }
    }
}

/// The request facts the decisions read, taken from the request headers.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`.
    pub path: &'a str,
    /// `content-length`, if present.
    pub content_length: Option<&'a str>,
    /// `content-encoding`, if present.
    pub content_encoding: Option<&'a str>,
    /// The credentials, for moving the key between styles.
    pub auth: Auth<'a>,
    /// The current Unix time (the lifecycle table's clock, OpenAI `created`).
    pub now: Now<'a>,
    /// Reads the live catalogue cached for the request's key, if any:
    /// classifies a model no rule matches by its `supportedGenerationMethods`
    /// (read only for such a model).
    pub catalogue: Option<&'a dyn Fn() -> Option<Rc<Catalogue>>>,
    /// Where thought signatures are remembered (`None`: nothing is put back).
    pub signatures: Option<Shared<'a>>,
}

/// The current Unix time, as the decisions take it: a value, or a clock
/// read only when a decision needs the time (the filter's clock is a host
/// call, and most requests need none: a model the lifecycle table does not
/// list, an answer that is not translated).
#[derive(Clone, Copy)]
pub enum Now<'a> {
    /// This time.
    At(u64),
    /// The time this reads (the glue remembers its first answer).
    Read(&'a dyn Fn() -> u64),
}

impl Now<'_> {
    /// The time.
    pub fn get(self) -> u64 {
        match self {
            Now::At(t) => t,
            Now::Read(read) => read(),
        }
    }
}

impl std::fmt::Debug for Now<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Now::At(t) => write!(f, "At({t})"),
            Now::Read(_) => f.write_str("Read"),
        }
    }
}

/// A reply the filter sends itself instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// JSON error body in the client's shape.
    pub body: Vec<u8>,
    /// Diagnostic headers to send with it (never the key).
    pub headers: Vec<(&'static str, String)>,
    /// Why, for the log and the hint header (never carries the key).
    pub reason: String,
    /// The metric this reply counts under.
    pub kind: RejectKind,
    /// The body's content type (JSON, or SSE for a streamed task answer).
    pub content_type: &'static str,
}

/// What kind of local reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// The model name is unsafe or malformed.
    InvalidModel,
    /// The request body could not be translated.
    Translation,
    /// The request carries more than one credential.
    Credentials,
    /// A background-task prompt for an image model, answered empty.
    Task,
}

/// See [`Routed::header_ops`].
static ASK_UNCOMPRESSED: HeaderOp = HeaderOp::Remove(ACCEPT_ENCODING);

/// A request the router decided on.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The validated model.
    pub model: ModelName,
    /// The decision.
    pub plan: Plan,
    /// The path the client sent.
    pub original_path: String,
    /// The error shape the client reads.
    pub shape: ErrorShape,
    /// What the lifecycle table says of the model asked for (announced or
    /// past shutdown, replacement), if anything.
    pub notice: Option<Notice>,
    /// Set when the request is sent to a replacement: the model asked for.
    pub migration: Option<Migration>,
    /// The request's credential headers (never logged: they print as
    /// redacted), read by [`Routed::api_key`] and [`Routed::secrets`].
    pub credentials: Credentials,
    /// An OpenAI chat request that offers tools, sent to the compatibility
    /// layer's chat: its answer may carry tool calls (a stream is repaired,
    /// signatures are remembered).
    pub tools: bool,
    /// Tool calls given their remembered thought signature, and steps
    /// given the bypass value, in the request body.
    pub signatures: (usize, usize),
}

/// A request sent to the replacement of the model it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The model the client asked for.
    pub requested: String,
    /// Its family (migrations are counted by it).
    pub family: Family,
    /// Why another model serves the request.
    pub why: Why,
}

/// Why a request is served by another model than the one it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The model is shut down (or listed in `migrate_always`): its replacement.
    Shutdown,
    /// A chat UI's background-task prompt for an image model: `task_model`.
    Task,
}

impl Routed {
    /// The diagnostic headers for this request with `hint`, with the
    /// request's own credential values scrubbed (a path can carry the key
    /// under a name that is not a credential parameter).
    pub fn diagnostics(&self, hint: &str) -> Vec<(&'static str, String)> {
        self.diagnostics_with(hint, &self.secrets())
    }

    /// [`Routed::diagnostics`] with the request's `secrets` already worked
    /// out.
    fn diagnostics_with(&self, hint: &str, secrets: &[Secret]) -> Vec<(&'static str, String)> {
        diagnose::diagnostic_headers(
            &self.plan,
            &self.model.id,
            &self.original_path,
            self.upstream_path(),
            hint,
            secrets,
        )
    }

    /// The query of the path the client sent.
    fn query(&self) -> Option<&str> {
        query_of(&self.original_path)
    }

    /// The request's credential values, scrubbed from any upstream text
    /// the filter writes back ([`route::secrets`]).
    pub fn secrets(&self) -> Vec<Secret> {
        self.credentials.secrets(self.query())
    }

    /// The Developer API key the request carries (`x-goog-api-key`, the
    /// bearer token of an OpenAI-style request, or `?key=`), for reading
    /// the live catalogue with the caller's own credential; `None` on Vertex.
    pub fn api_key(&self) -> Option<Secret> {
        self.credentials.api_key(self.query())
    }

    /// `path` as it may be logged: credential parameters redacted, and the
    /// request's credential values scrubbed wherever else they appear.
    pub fn loggable(&self, path: &str) -> String {
        route::loggable(path, &self.secrets())
    }

    /// The credential thought signatures are remembered under (a hash of
    /// it names the slot): the Developer API key, else the request's first
    /// credential; empty without one.
    pub fn signature_scope(&self) -> String {
        self.api_key()
            .or_else(|| self.secrets().into_iter().next())
            .map_or_else(String::new, |s| s.0)
    }

    /// The request header changes: the plan's, then `accept-encoding`
    /// removed unless the route removes it (`route_removes_accept_encoding`).
    /// The filter may rewrite the answer (an annotated error, a
    /// translation), so it asks for it uncompressed; successful answers
    /// still stream through as they come. The route is the cheaper place:
    /// Envoy matches a request's route again after any request header
    /// change by a module of this ABI version, and a request forwarded
    /// unchanged has no other. (Not pushed onto the plan's list: most plans
    /// change no other header, and an empty list costs no allocation.)
    pub fn header_ops<'a>(&'a self, config: &Config) -> impl Iterator<Item = &'a HeaderOp> {
        let ask = (!config.route_removes_accept_encoding).then_some(&ASK_UNCOMPRESSED);
        self.plan.headers.iter().chain(ask)
    }

    /// The path that goes upstream.
    pub fn upstream_path(&self) -> &str {
        self.plan.path.as_deref().unwrap_or(&self.original_path)
    }
}

/// What to do after the request headers.
#[derive(Debug)]
pub enum HeadStep {
    /// Continue untouched.
    Pass(PassReason),
    /// Answer locally.
    Reject(LocalReply),
    /// Wait for the whole body, then call [`buffered`] with this.
    Buffer(Pending),
    /// Apply the plan now and continue; no body is needed.
    Route(Box<Routed>),
}

/// What [`head`] decided of a request whose body it needs, so that
/// [`buffered`] goes on from there instead of deciding again.
#[derive(Debug)]
pub enum Pending {
    /// OpenAI style: the model is in the body. The path's prefix is the
    /// first `prefix_len` bytes of `:path`.
    OpenAi {
        /// The operation called.
        endpoint: Endpoint,
        /// Length of the prefix before the operation.
        prefix_len: usize,
    },
    /// A native or Vertex request, decided on its path, whose body is
    /// translated.
    Translate(Box<Routed>),
}

/// A new request body, and the translator that made it when it is a
/// translation (a migration splices the model and needs none).
pub type Rewrite = (Vec<u8>, Option<Box<dyn Translator>>);

/// What to do once the whole request body is there.
pub enum BodyStep {
    /// Continue untouched.
    Pass(PassReason),
    /// Answer locally.
    Reject(LocalReply),
    /// Apply the plan; with a new body, replace it (and keep the
    /// translator, when it is a translation, for the response).
    Route(Box<Routed>, Option<Rewrite>),
}

/// Decides on the request headers.
pub fn head(config: &Config, head: &Head<'_>) -> HeadStep {
    let client = match recognize(head.method, head.path) {
        Recognized::Unrouted => return HeadStep::Pass(PassReason::Unrouted),
        Recognized::OpenAi(p) => Client::OpenAi(p),
        Recognized::Model(p) => Client::Model(p),
    };
    let query = query_of(head.path);
    if let Err(e) = route::check_credentials(head.auth, query) {
        return HeadStep::Reject(reject_credentials(client.error_shape(), &e));
    }
    let pending = match client {
        Client::OpenAi(p) => Pending::OpenAi {
            endpoint: p.endpoint,
            prefix_len: p.prefix.len(),
        },
        Client::Model(p) => {
            let model = match ModelName::from_path(p.collection, p.raw_id, config.max_model_length)
            {
                Ok(m) => m,
                Err(e) => return HeadStep::Reject(reject_model(ErrorShape::Google, &e)),
            };
            let stream = p.endpoint == Endpoint::StreamGenerateContent;
            let routed = decide(config, client, model, stream, head);
            if !routed.plan.translates() {
                return HeadStep::Route(Box::new(routed));
            }
            Pending::Translate(Box::new(routed))
        }
    };
    // The body is needed: for the model (OpenAI style) or for translation.
    // A native request that needs translation but whose body cannot be read
    // is left where it was sent: routing it untranslated would send a body
    // the target rejects.
    if let Some(reason) = body_unreadable(config, head) {
        return HeadStep::Pass(reason);
    }
    HeadStep::Buffer(pending)
}

/// Why the request body cannot be inspected, if it cannot.
fn body_unreadable(config: &Config, head: &Head<'_>) -> Option<PassReason> {
    if head
        .content_encoding
        .is_some_and(|e| !e.trim_ascii().eq_ignore_ascii_case("identity"))
    {
        return Some(PassReason::Compressed);
    }
    let too_large = head
        .content_length
        .and_then(|v| v.trim_ascii().parse::<u64>().ok())
        .is_some_and(|len| len > config.max_body_bytes as u64);
    too_large.then_some(PassReason::TooLarge)
}

/// Decides on a request whose body is all there: [`head`], then
/// [`buffered`] when the headers step needs the body (what the glue does
/// across its callbacks; for tests, benchmarks and the fuzzer).
pub fn body(config: &Config, head: &Head<'_>, body: &[u8]) -> BodyStep {
    match self::head(config, head) {
        HeadStep::Pass(reason) => BodyStep::Pass(reason),
        HeadStep::Reject(reply) => BodyStep::Reject(reply),
        HeadStep::Route(routed) => BodyStep::Route(routed, None),
        HeadStep::Buffer(pending) => buffered(config, head, pending, body),
    }
}

/// Decides on the full request body, going on from what [`head`] decided.
pub fn buffered(config: &Config, head: &Head<'_>, pending: Pending, body: &[u8]) -> BodyStep {
    if body.len() > config.max_body_bytes {
        return BodyStep::Pass(PassReason::TooLarge);
    }
    match pending {
        Pending::Translate(routed) => translated(config, head, *routed, body, None),
        Pending::OpenAi {
            endpoint,
            prefix_len,
        } => match head.path.get(..prefix_len) {
            Some(prefix) => openai_body(config, head, OpenAiPath { prefix, endpoint }, body),
            None => BodyStep::Pass(PassReason::Unrouted),
        },
    }
}

/// An OpenAI-style request: the model from the body, then the decision.
fn openai_body(config: &Config, head: &Head<'_>, path: OpenAiPath<'_>, body: &[u8]) -> BodyStep {
    let client = Client::OpenAi(path);
    // One pass finds the fields and whether any message may carry tool
    // calls (a string `tool_calls` somewhere inside).
    let notes = scan::Notes {
        string: "tool_calls",
        prefixes: &config.task_prefixes,
        long_strings: true,
    };
    let scanned = top_level_fields_noting(body, ["model", "stream", "tools"], notes);
    let scan::Scanned {
        fields: [model, stream, tools],
        noted: tool_history,
        prefixed: task_like,
        values,
        long_strings,
    } = match scanned {
        Ok(scanned) => scanned,
        Err(ScanError::Malformed { .. }) => return BodyStep::Pass(PassReason::InvalidJson),
        Err(e @ ScanError::DuplicateKey(_)) => {
            return BodyStep::Reject(reject_model(ErrorShape::OpenAi, &e))
        }
    };
    let Some(raw_model) = model else {
        return BodyStep::Pass(PassReason::NoModel);
    };
    let offers_tools = tools.is_some_and(|t| t.first() == Some(&b'[') && t != b"[]");
    // Where the body names the model, for a migration.
    let model_span = scan::offset(body, raw_model).map(|start| start..start + raw_model.len());
    let model = match crate::reader::str_of(raw_model) {
        Some(name) => ModelName::parse(&name, config.max_model_length),
        None => Err(ModelError::NotAString),
    };
    let model = match model {
        Ok(m) => m,
        Err(e) => return BodyStep::Reject(reject_model(ErrorShape::OpenAi, &e)),
    };
    let mut routed = decide(config, client, model, stream == Some(&b"true"[..]), head);
    if let Some(task) = background_task(config, client, &routed, body, head, task_like) {
        match task {
            Task::Answer(reply) => return BodyStep::Reject(reply),
            Task::Serve(served) => routed = *served,
        }
    }
    if routed.plan.translates() {
        let scanned = translate::Scanned {
            values,
            long_strings: &long_strings,
        };
        return translated(config, head, routed, body, Some(scanned));
    }
    let mut rewrite = match (&routed.migration, model_span) {
        (Some(_), Some(span)) => match splice_model(body, span, &routed.model.id, config) {
            Ok(new_body) => Some((new_body, None)),
            Err(e) => return BodyStep::Reject(reject_translation(&routed, e)),
        },
        _ => None,
    };
    if path.endpoint == Endpoint::ChatCompletions && routed.plan.to == Endpoint::ChatCompletions {
        routed.tools = offers_tools;
        let sent = rewrite.as_ref().map_or(body, |(b, _)| b.as_slice());
        match put_back_signatures(config, head, &routed, sent, tool_history) {
            Ok(Some(restored)) => {
                routed.signatures = (restored.restored, restored.bypassed);
                rewrite = Some((restored.body, None));
            }
            Ok(None) => {}
            Err(e) => return BodyStep::Reject(reject_translation(&routed, e)),
        }
    }
    BodyStep::Route(Box::new(routed), rewrite)
}

/// A request whose body is translated for the plan's pair; `scanned`: what
/// the scan that found the model learned of the body, when there was one.
fn translated(
    config: &Config,
    head: &Head<'_>,
    routed: Routed,
    body: &[u8],
    scanned: Option<translate::Scanned<'_>>,
) -> BodyStep {
    let Some(pair) = routed.plan.pair else {
        return BodyStep::Route(Box::new(routed), None);
    };
    let exchange = Exchange {
        model: &routed.model.id,
        from: routed.plan.from,
        to: routed.plan.to,
        client_sse: routed.plan.client_sse,
        created: head.now.get(),
        options: config.translate,
    };
    let mut translator = translate::translator(pair, &exchange);
    match translate::request(translator.as_mut(), body, scanned, config.max_body_bytes) {
        Ok(new_body) => BodyStep::Route(Box::new(routed), Some((new_body, Some(translator)))),
        Err(e) => BodyStep::Reject(reject_translation(&routed, e)),
    }
}

fn decide(
    config: &Config,
    client: Client<'_>,
    requested: ModelName,
    stream: bool,
    head: &Head<'_>,
) -> Routed {
    let notice = config.lifecycle.notice_at(&requested.id, || head.now.get());
    // A model past its shutdown goes to its replacement (per `migrate`),
    // when the client's endpoint can reach it: a `:batchEmbedContents` body
    // names the model in every request, so it stays as asked.
    let target = notice
        .as_ref()
        .and_then(|n| config.migration_target(&requested.id, n))
        .filter(|_| client.endpoint() != Endpoint::BatchEmbedContents);
    let Some(target) = target else {
        let mut routed = plan_for(config, client, requested, stream, head, false);
        routed.notice = notice;
        return routed;
    };
    // A path names the model, so it changes with it; an OpenAI-style body
    // is spliced instead (see `body`).
    let path_changes = matches!(client, Client::Model(_));
    let mut routed = plan_for(config, client, target, stream, head, path_changes);
    if routed.plan.verdict == Verdict::NoTranslator {
        // The replacement is not reachable from this endpoint: send the
        // request as asked, and let the 404 say what replaces the model.
        routed = plan_for(config, client, requested, stream, head, false);
    } else {
        routed.migration = Some(Migration {
            family: config.classifier.classify(&requested.id).family,
            requested: requested.id,
            why: Why::Shutdown,
        });
    }
    routed.notice = notice;
    routed
}

/// What to do with a background-task prompt.
enum Task {
    /// Answer it locally (no `task_model`).
    Answer(LocalReply),
    /// Serve it with `task_model`.
    Serve(Box<Routed>),
}

/// A chat UI's background-task prompt (chat title, tags, follow-ups: Open
/// WebUI sends them to the chat's own model) for an image model would be
/// billed as an image generation: it goes to `task_model`, or is answered
/// here with an empty completion. `None` for every other request.
/// `task_like`: the scan saw a string that starts with a task prefix.
fn background_task(
    config: &Config,
    client: Client<'_>,
    routed: &Routed,
    body: &[u8],
    head: &Head<'_>,
    task_like: bool,
) -> Option<Task> {
    let Client::OpenAi(path) = client else {
        return None;
    };
    let image = matches!(routed.plan.family, Family::Imagen | Family::GeminiImage);
    if path.endpoint != Endpoint::ChatCompletions || !image || config.task_prefixes.is_empty() {
        return None;
    }
    // Most chats to image models are not tasks: the scan that found the
    // model saw whether a string starts with a prefix (a prefix written
    // with JSON escapes is not recognised) before the messages are parsed.
    if !task_like {
        return None;
    }
    let prompt = translate::chat_prompt(body)?;
    if !config.is_task_prompt(&prompt) {
        return None;
    }
    let requested = routed
        .migration
        .as_ref()
        .map_or(routed.model.id.as_str(), |m| m.requested.as_str());
    match &config.task_model {
        Some(model) => Some(Task::Serve(Box::new(Routed {
            migration: Some(Migration {
                requested: requested.to_owned(),
                family: config.classifier.classify(requested).family,
                why: Why::Task,
            }),
            notice: routed.notice.clone(),
            ..plan_for(config, client, model.clone(), false, head, false)
        }))),
        None => {
            let exchange = Exchange {
                model: requested,
                from: Endpoint::ChatCompletions,
                to: Endpoint::ChatCompletions,
                client_sse: false,
                created: head.now.get(),
                options: config.translate,
            };
            let answer = translate::empty_chat_answer(body, &exchange);
            let hint = format!(
                "gemini-router answered this background-task prompt for the image model {requested} itself, with an empty completion, so that it is not billed as an image generation; set task_model to have a text model answer such prompts."
            );
            Some(Task::Answer(LocalReply {
                status: 200,
                body: answer.body,
                headers: vec![(DIAG_HINT, diagnose::header_value(&hint))],
                reason: "background-task prompt for an image model".into(),
                kind: RejectKind::Task,
                content_type: answer.content_type,
            }))
        }
    }
}

/// The chat request `body` with the thought signatures its assistant tool
/// calls lack put back (see [`signatures::restore`]); `None` when nothing
/// changes, and without reading the body when the scan saw no tool calls
/// (`tool_history`).
fn put_back_signatures(
    config: &Config,
    head: &Head<'_>,
    routed: &Routed,
    body: &[u8],
    tool_history: bool,
) -> Result<Option<signatures::Restored>, TranslateError> {
    let Some(store) = head.signatures.filter(|_| tool_history) else {
        return Ok(None);
    };
    let scope = routed.signature_scope();
    let memory = Memory::new(store.0, &scope, config.signatures);
    let restored = signatures::restore(body, &routed.model.id, config.signatures.restore, &memory);
    match restored {
        Some(r) if r.body.len() > config.max_body_bytes => Err(TranslateError::TooLarge {
            side: translate::Side::Request,
            size: r.body.len(),
            limit: config.max_body_bytes,
        }),
        other => Ok(other),
    }
}

/// `body` with the JSON value at `span` (its `model`) replaced by `model`,
/// copied once and never re-serialised (a multi-megabyte chat stays as it
/// is around it).
fn splice_model(
    body: &[u8],
    span: std::ops::Range<usize>,
    model: &str,
    config: &Config,
) -> Result<Vec<u8>, TranslateError> {
    let value = crate::json::quoted(model);
    let size = body.len() - span.len() + value.len();
    if size > config.max_body_bytes {
        return Err(TranslateError::TooLarge {
            side: translate::Side::Request,
            size,
            limit: config.max_body_bytes,
        });
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(&value);
    out.extend_from_slice(&body[span.end..]);
    Ok(out)
}

/// The plan for sending the request with `model`; `path_changes` when
/// that is not the model the request's path names.
fn plan_for(
    config: &Config,
    client: Client<'_>,
    model: ModelName,
    stream: bool,
    head: &Head<'_>,
    path_changes: bool,
) -> Routed {
    let mut class = config.classifier.classify(&model.id);
    if class.rule.is_none() {
        let listed = head.catalogue.and_then(|read| read());
        if let Some(family) = listed.and_then(|c| c.family_of(&model.id)) {
            class.family = family;
            class.from_catalogue = true;
        }
    }
    let plan = route::plan(
        config,
        client,
        &model,
        class,
        stream,
        head.auth,
        path_changes,
    );
    Routed {
        model,
        plan,
        original_path: head.path.to_owned(),
        shape: client.error_shape(),
        notice: None,
        migration: None,
        credentials: Credentials::new(
            head.auth,
            matches!(client, Client::Model(p) if p.style == crate::endpoint::ApiStyle::Vertex),
        ),
        tools: false,
        signatures: (0, 0),
    }
}

/// The local 400 for a model the filter will not put into a path (unsafe,
/// not a string, or given twice).
fn reject_model(shape: ErrorShape, error: &dyn std::fmt::Display) -> LocalReply {
    refused(
        shape,
        error,
        "invalid_model",
        Some("model"),
        RejectKind::InvalidModel,
    )
}

/// The local 400 "gemini-router refused the request: {error}".
fn refused(
    shape: ErrorShape,
    error: &dyn std::fmt::Display,
    code: &str,
    param: Option<&str>,
    kind: RejectKind,
) -> LocalReply {
    let message = format!("gemini-router refused the request: {error}");
    LocalReply {
        status: 400,
        body: diagnose::local_error(shape, 400, &message, code, param),
        headers: vec![(DIAG_HINT, diagnose::header_value(&message))],
        reason: error.to_string(),
        kind,
        content_type: JSON,
    }
}

/// The local 500 when the host would not take the new request body: the
/// request is not sent in a shape its target rejects.
pub fn body_not_replaced(routed: &Routed) -> LocalReply {
    LocalReply {
        headers: Vec::new(),
        status: 500,
        body: diagnose::local_error(
            routed.shape,
            500,
            "gemini-router could not replace the request body",
            "internal_error",
            None,
        ),
        reason: "set body failed".into(),
        kind: RejectKind::Translation,
        content_type: JSON,
    }
}

/// The local 400 for a request that carries more than one credential.
fn reject_credentials(shape: ErrorShape, error: &route::CredentialError) -> LocalReply {
    refused(
        shape,
        error,
        "ambiguous_credentials",
        None,
        RejectKind::Credentials,
    )
}

/// The text `error` carries from the client's body or the upstream's
/// answer, if any: what a reply built from it must first clear of the
/// request's credentials.
fn quoted_text(error: &mut TranslateError) -> Option<&mut String> {
    match error {
        TranslateError::InvalidRequest(text)
        | TranslateError::InvalidResponse(text)
        | TranslateError::NoImage(NoImage::Said(text) | NoImage::Text(text)) => Some(text),
        TranslateError::NoImage(NoImage::Nothing)
        | TranslateError::NoPrompt
        | TranslateError::TooManyValues { .. }
        | TranslateError::TooLarge { .. } => None,
    }
}

/// The reply for a translated exchange that failed, on either side, with the
/// diagnostic headers of the routed request. Text the error carries from
/// the client or the upstream is cleared of the request's credentials
/// before anything quotes or cuts it (a text-only answer is quoted to 300
/// characters: a key standing across that cut would go out as its first
/// bytes otherwise), and the body written from it once more after.
pub(crate) fn reject_translation(routed: &Routed, mut error: TranslateError) -> LocalReply {
    let secrets = routed.secrets();
    if let Some(text) = quoted_text(&mut error) {
        *text = route::scrub_str(text, &secrets).into_owned();
    }
    let hint = diagnose::translation_hint(&routed.plan, &routed.model.id, &error);
    let status = error.status();
    let body = diagnose::local_error(
        routed.shape,
        status,
        &format!("gemini-router: {hint}"),
        "translation_failed",
        None,
    );
    LocalReply {
        status,
        body: route::scrub_json(&body, &secrets).unwrap_or(body),
        headers: routed.diagnostics_with(&hint, &secrets),
        reason: error.to_string(),
        kind: RejectKind::Translation,
        content_type: JSON,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn defaults() -> Config {
        Config::from_bytes(b"").unwrap()
    }

    fn h<'a>(method: &'a str, path: &'a str) -> Head<'a> {
        Head {
            method,
            path,
            content_length: None,
            content_encoding: None,
            auth: Auth {
                authorization: Some("Bearer K"),
                api_key: None,
            },
            now: Now::At(0),
            catalogue: None,
            signatures: None,
        }
    }

    #[test]
    fn head_decisions() {
        let config = defaults();
        let small = Config::from_bytes(br#"{"max_body_bytes": 10}"#).unwrap();
        let cases: Vec<(&str, &Config, Head<'_>, &str)> = vec![
            (
                "GET passes",
                &config,
                h("GET", "/v1beta/models"),
                "pass:unrouted",
            ),
            (
                "openai buffers",
                &config,
                h("POST", "/v1beta/openai/chat/completions"),
                "buffer",
            ),
            (
                "native routes now",
                &config,
                h("POST", "/v1beta/models/gemini-2.5-flash:generateContent"),
                "route",
            ),
            (
                "hostile native path",
                &config,
                h("POST", "/v1beta/models/..%2Fx:generateContent"),
                "reject",
            ),
            (
                "compressed",
                &config,
                Head {
                    content_encoding: Some("gzip"),
                    ..h("POST", "/v1/chat/completions")
                },
                "pass:compressed",
            ),
            (
                "identity is not compressed",
                &config,
                Head {
                    content_encoding: Some("identity"),
                    ..h("POST", "/v1/chat/completions")
                },
                "buffer",
            ),
            (
                "too large",
                &small,
                Head {
                    content_length: Some("11"),
                    ..h("POST", "/v1/chat/completions")
                },
                "pass:too_large",
            ),
            (
                "fits",
                &small,
                Head {
                    content_length: Some("10"),
                    ..h("POST", "/v1/chat/completions")
                },
                "buffer",
            ),
        ];
        for (name, config, head_in, want) in cases {
            let got = match head(config, &head_in) {
                HeadStep::Pass(r) => format!("pass:{}", r.as_str()),
                HeadStep::Reject(_) => "reject".into(),
                HeadStep::Buffer(_) => "buffer".into(),
                HeadStep::Route(_) => "route".into(),
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn body_decisions() {
        let config = defaults();
        let chat = h("POST", "/v1beta/openai/chat/completions");
        let cases = [
            (
                "gemini unchanged",
                r#"{"model":"gemini-2.5-flash","messages":[]}"#,
                "route:Unchanged",
            ),
            (
                "models prefix",
                r#"{"model":"models/gemini-2.5-flash"}"#,
                "route:Unchanged",
            ),
            ("no model", r#"{"messages":[]}"#, "pass:no_model"),
            ("bad json", r#"{"model":"#, "pass:invalid_json"),
            ("number model", r#"{"model":7}"#, "reject:400"),
            ("traversal", r#"{"model":"../../etc"}"#, "reject:400"),
            ("escaped slash", r#"{"model":"a\/b"}"#, "reject:400"),
            ("duplicate", r#"{"model":"a","model":"b"}"#, "reject:400"),
            (
                "veo has no translator",
                r#"{"model":"veo-3.0-generate-001"}"#,
                "route:NoTranslator",
            ),
        ];
        for (name, json, want) in cases {
            let got = match body(&config, &chat, json.as_bytes()) {
                BodyStep::Pass(r) => format!("pass:{}", r.as_str()),
                BodyStep::Reject(r) => format!("reject:{}", r.status),
                BodyStep::Route(r, _) => format!("route:{:?}", r.plan.verdict),
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn rejections_use_the_client_shape() {
        let config = defaults();
        let BodyStep::Reject(reply) = body(
            &config,
            &h("POST", "/v1/chat/completions"),
            br#"{"model":"a b"}"#,
        ) else {
            panic!("not rejected")
        };
        let v: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        let HeadStep::Reject(reply) = head(&config, &h("POST", "/v1beta/models/a%20b:predict"))
        else {
            panic!("not rejected")
        };
        let v: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    }

    #[test]
    fn translation_failures_carry_diagnostics() {
        let config = defaults();
        // Request side: no prompt, answered locally with the routed diagnostics.
        let chat = h("POST", "/v1beta/openai/chat/completions");
        let BodyStep::Reject(reply) = body(
            &config,
            &chat,
            br#"{"model":"imagen-4.0-generate-001","messages":[]}"#,
        ) else {
            panic!("not rejected")
        };
        assert_eq!(reply.status, 400);
        let names: Vec<&str> = reply.headers.iter().map(|(n, _)| *n).collect();
        assert!(
            names.contains(&crate::headers::DIAG_UPSTREAM_PATH),
            "{names:?}"
        );
        let v: Value = serde_json::from_slice(&reply.body).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("could not translate"),
            "{v}"
        );
    }

    #[test]
    fn background_tasks_for_image_models_never_reach_an_image_endpoint() {
        let title = "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n### Chat History:\n<chat_history>\nUSER: a red fox\n</chat_history>";
        let chat = |model: &str, stream: bool| {
            serde_json::json!({"model": model, "stream": stream,
                "messages": [{"role": "user", "content": title}]})
            .to_string()
        };
        struct Case {
            name: &'static str,
            config: &'static str,
            body: String,
            want: &'static str,
        }
        let cases = [
            Case { name: "imagen title answered empty", config: r#"{"migrate":"never"}"#,
                body: chat("imagen-4.0-generate-001", false), want: "answer:application/json" },
            Case { name: "streamed title answered as SSE", config: r#"{"migrate":"never"}"#,
                body: chat("imagen-4.0-generate-001", true), want: "answer:text/event-stream" },
            Case { name: "migrated imagen too", config: "",
                body: chat("imagen-3.0-generate-002", false), want: "answer:application/json" },
            Case { name: "gemini image model too", config: "",
                body: chat("gemini-3.1-flash-image", false), want: "answer:application/json" },
            Case { name: "task_model serves it", config: r#"{"task_model":"gemini-3.5-flash"}"#,
                body: chat("imagen-3.0-generate-002", false), want: "served:gemini-3.5-flash" },
            Case { name: "a text model's task goes on", config: "",
                body: chat("gemini-3.5-flash", false), want: "route" },
            Case { name: "an image prompt goes on", config: "",
                body: serde_json::json!({"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a red fox"}]}).to_string(),
                want: "route" },
            Case { name: "recognition off", config: r#"{"task_prefixes":[]}"#,
                body: chat("gemini-3.1-flash-image", false), want: "route" },
        ];
        let head = Head {
            now: Now::At(1_796_169_600),
            ..h("POST", "/v1beta/openai/chat/completions")
        };
        for case in cases {
            let config = Config::from_bytes(case.config.as_bytes()).unwrap();
            let got = match body(&config, &head, case.body.as_bytes()) {
                BodyStep::Reject(reply) if reply.kind == RejectKind::Task => {
                    assert_eq!(reply.status, 200, "{}", case.name);
                    let text = String::from_utf8(reply.body.clone()).unwrap();
                    assert!(text.contains("\"content\":\"\""), "{}: {text}", case.name);
                    format!("answer:{}", reply.content_type)
                }
                BodyStep::Route(routed, rewrite) => match &routed.migration {
                    Some(m) if m.why == Why::Task => {
                        let (sent, _) = rewrite.unwrap();
                        let sent: Value = serde_json::from_slice(&sent).unwrap();
                        assert_eq!(sent["model"], routed.model.id.as_str(), "{}", case.name);
                        format!("served:{}", routed.model.id)
                    }
                    _ => "route".into(),
                },
                other => format!("{:?}", matches!(other, BodyStep::Pass(_))),
            };
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_key_in_a_translation_error_is_scrubbed_before_it_is_quoted_or_cut() {
        let key = "AIzaQUOTEDsecret0123";
        let bearer = format!("Bearer {key}");
        let head = Head {
            auth: Auth {
                authorization: Some(&bearer),
                api_key: None,
            },
            ..h("POST", "/v1beta/openai/images/generations")
        };
        let request = r#"{"model":"gemini-3.1-flash-image","prompt":"a fox"}"#;
        let BodyStep::Route(routed, _) = body(&defaults(), &head, request.as_bytes()) else {
            panic!("the image request is routed");
        };
        // The quote keeps 300 characters: of the key, 12, then 8.
        let quoted = |kept: usize| format!("{}{key} and more words", "x".repeat(300 - kept));
        let cases = [
            (
                "text only, 12 at the cut",
                TranslateError::NoImage(NoImage::Text(quoted(12))),
            ),
            (
                "text only, 8 at the cut",
                TranslateError::NoImage(NoImage::Text(quoted(8))),
            ),
            (
                "upstream words",
                TranslateError::NoImage(NoImage::Said(format!("no: {key}"))),
            ),
            (
                "unexpected answer",
                TranslateError::InvalidResponse(format!("bad {key}")),
            ),
            (
                "request",
                TranslateError::InvalidRequest(format!("bad {key}")),
            ),
        ];
        for (name, error) in cases {
            let reply = reject_translation(&routed, error);
            let body = String::from_utf8(reply.body).unwrap();
            assert!(body.contains("REDACTED"), "{name}: {body}");
            assert!(!body.contains(&key[..8]), "{name}: {body}");
            assert!(
                !reply.reason.contains(&key[..8]),
                "{name}: {}",
                reply.reason
            );
            for (header, value) in &reply.headers {
                assert!(!value.contains(&key[..8]), "{name}: {header}: {value}");
            }
        }
    }
}
