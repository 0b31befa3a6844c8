//! The only code that talks to the host. `RouterRoot` parses the
//! configuration once and defines the metrics; each request gets a `Router`
//! that asks [`crate::flow`] what to do at each callback and turns the answer
//! into host calls and an `Action`.

mod abi;
pub mod entry;
mod host;
mod metrics;
// The module's allocator (tested on the host, installed in the module only).
#[cfg(any(target_arch = "wasm32", test))]
mod pools;
#[cfg(test)]
mod tests;

use crate::catalogue::{self, Cache, Catalogue};
use crate::config::Config;
use crate::flow::{self, BodyStep, Head, HeadStep, LocalReply, Now, RejectKind, Routed, Why};
use crate::headers::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, GOOG_API_KEY,
    JSON, RETRY_AFTER,
};
use crate::response::{
    self, CatalogueQuery, Count, Edit, Response, ResponseHead, Step, Translation,
};
use crate::route::{Auth, HeaderOp, Verdict};
use crate::signatures::{Memory, Remembered, Shared};
use crate::translate::Translator;
use abi::{Action, BufferType, MapType};
use host::{Host, Proxy, SharedData};
use metrics::Metrics;
use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

const REQ: MapType = MapType::HttpRequestHeaders;
const RESP: MapType = MapType::HttpResponseHeaders;

/// The root context: configuration and metrics shared by all requests.
#[derive(Default)]
pub struct RouterRoot {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
    catalogues: Rc<RefCell<Cache>>,
}

/// The root context's tick, in milliseconds: how long a counter addition
/// waits before Envoy's stats show it, and how soon `/logging?wasm=debug`
/// takes effect.
const TICK_MS: u32 = 1000;

impl RouterRoot {
    /// The tick: hands the counters to Envoy and follows Envoy's log level
    /// (a line is formatted only when Envoy would log it).
    fn tick(&mut self) {
        host::flush_counters();
        entry::follow_host_log_level();
    }

    /// Reads and checks the plugin configuration (`size` bytes): whether
    /// it was accepted.
    fn configure(&mut self, size: usize) -> bool {
        entry::follow_host_log_level();
        if let Err(status) = abi::set_tick_period(TICK_MS) {
            host::host_error(
                log::Level::Warn,
                format_args!(
                    "gemini-router: no tick: counters and the log level are not refreshed"
                ),
                status,
            );
        }
        let bytes = match abi::buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                host::host_error(
                    log::Level::Error,
                    format_args!("gemini-router: cannot read the plugin configuration"),
                    status,
                );
                return false;
            }
        };
        match Config::from_bytes(&bytes) {
            Ok(config) => {
                log_line(
                    log::Level::Info,
                    format_args!(
                        "gemini-router: configuration accepted: {}",
                        config.summary()
                    ),
                );
                for field in &config.retired {
                    log_line(log::Level::Warn, format_args!("gemini-router: configuration: {field} is retired and has no effect (see the README)"));
                }
                self.config = Some(Rc::new(config));
                if self.metrics.is_none() {
                    self.metrics = Some(Rc::new(Metrics::define(&Proxy)));
                }
                true
            }
            Err(e) => {
                log_line(log::Level::Error, format_args!("gemini-router: {e}"));
                false
            }
        }
    }

    /// A request's context, once a configuration was accepted.
    fn create<H: Host>(&self, context_id: u32, host: H) -> Option<Router<H>> {
        let config = self.config.clone()?;
        let metrics = self.metrics.clone()?;
        Some(Router::new(
            context_id,
            config,
            metrics,
            Rc::clone(&self.catalogues),
            host,
        ))
    }
}

// The request headers [`RequestHead::read`] keeps, as the map holds their
// names: matched as bytes, a name is never checked as UTF-8 (a chat's
// request has a dozen or so: 1.4k instructions of the front Envoy fewer,
// counted by hand with callgrind).
const ACCEPT_ENCODING_BYTES: &[u8] = ACCEPT_ENCODING.as_bytes();
const CONTENT_LENGTH_BYTES: &[u8] = CONTENT_LENGTH.as_bytes();
const CONTENT_ENCODING_BYTES: &[u8] = CONTENT_ENCODING.as_bytes();
const CONTENT_TYPE_BYTES: &[u8] = CONTENT_TYPE.as_bytes();
const AUTHORIZATION_BYTES: &[u8] = AUTHORIZATION.as_bytes();
const GOOG_API_KEY_BYTES: &[u8] = GOOG_API_KEY.as_bytes();

/// The request headers [`RequestHead`] keeps, by their place in its
/// `spans`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Method,
    Path,
    ContentLength,
    ContentEncoding,
    ContentType,
    Authorization,
    ApiKey,
    Authority,
}

impl Kept {
    /// Each one with its name as the map holds names, in their order in
    /// `spans` (one table: the list of them and their names cannot drift
    /// apart).
    const TABLE: [(Kept, &'static [u8]); 8] = [
        (Kept::Method, b":method"),
        (Kept::Path, b":path"),
        (Kept::ContentLength, CONTENT_LENGTH_BYTES),
        (Kept::ContentEncoding, CONTENT_ENCODING_BYTES),
        (Kept::ContentType, CONTENT_TYPE_BYTES),
        (Kept::Authorization, AUTHORIZATION_BYTES),
        (Kept::ApiKey, GOOG_API_KEY_BYTES),
        (Kept::Authority, b":authority"),
    ];
    /// How many there are.
    const COUNT: usize = Kept::TABLE.len();
    /// Every one, in their order in `spans`.
    const ALL: [Kept; Kept::COUNT] = {
        let mut all = [Kept::Method; Kept::COUNT];
        let mut i = 0;
        while i < Kept::COUNT {
            all[i] = Kept::TABLE[i].0;
            i += 1;
        }
        all
    };

    /// The kept header `name` is (as the map holds names), if any. (A
    /// search of [`Kept::TABLE`] rather than a `match`: the same answer in
    /// a small loop, where a `match` on byte strings compiles to a
    /// comparison per name, code that every request runs.)
    fn of(name: &[u8]) -> Option<Kept> {
        Kept::TABLE
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(kept, _)| *kept)
    }

    /// Whether a second line of the header is joined to the first (with a
    /// comma); a pseudo-header's last line is kept instead.
    fn joins(self) -> bool {
        !matches!(self, Kept::Method | Kept::Path)
    }
}

// `spans` is indexed by `Kept as usize`, and `RequestHead::keep` fills it in
// table order: each one's place in the table must be its number.
const _: () = {
    let mut i = 0;
    while i < Kept::COUNT {
        assert!(Kept::TABLE[i].0 as usize == i);
        i += 1;
    }
};

/// The request facts kept while the body is buffered.
#[derive(Default)]
struct RequestHead {
    /// The kept headers' values, spans of `text` (`None`: absent).
    spans: [Option<Range<usize>>; Kept::COUNT],
    /// The text the values are in: the host's header map itself (made
    /// text, see [`host::HeaderMap::into_text`]), so that no value is
    /// copied out of it; or, for a map with a header that is not UTF-8 or
    /// a kept header given twice, the kept values written one after the
    /// other.
    text: String,
    /// The request carries `accept-encoding` (removing an absent header
    /// still costs a host call, and Envoy then clears its route cache).
    accept_encoding: bool,
    /// The current Unix time, once read (see [`RequestHead::now`]).
    now: Cell<Option<u64>>,
}

impl RequestHead {
    /// Reads the request facts the decisions use, from the whole request
    /// header map, read once (whether the router looks at the request at
    /// all, [`flow::head`] decides from `:method` and `:path`). One read,
    /// because each read is a host call and the host then calls back into
    /// the VM to copy its answer in: the pair costs far more than parsing
    /// the map (`make bench-parts`: 10.7k instructions of the front Envoy
    /// for the response's `:status`, 13.6k for this read with its parsing).
    /// A credential header given twice is seen (joined with a comma, as
    /// Envoy joins repeated HTTP/1 headers) wherever it came from.
    /// (Requests the router never looks at do not reach it in the shipped
    /// configurations: a route without the filter takes them.)
    fn read(host: &impl Host) -> RequestHead {
        RequestHead::from_map(host.header_map(REQ))
    }

    /// [`RequestHead::read`]'s facts from the map it read.
    fn from_map(map: host::HeaderMap) -> RequestHead {
        let mut head = RequestHead::default();
        // The later lines of a kept header given twice (rare), joined to
        // its first line with a comma below.
        let mut more: Vec<(Kept, Range<usize>)> = Vec::new();
        for (name, value) in map.spans() {
            if name == ACCEPT_ENCODING_BYTES {
                head.accept_encoding = true;
                continue;
            }
            let Some(kept) = Kept::of(name) else {
                continue;
            };
            let slot = &mut head.spans[kept as usize];
            if slot.is_some() && kept.joins() {
                more.push((kept, value));
            } else {
                *slot = Some(value);
            }
        }
        let bytes = match map.into_text() {
            // Nearly every request: the map itself is kept.
            Ok(text) if more.is_empty() => {
                head.text = text;
                return head;
            }
            Ok(text) => text.into_bytes(),
            // A header the router does not keep may be what is not UTF-8.
            Err(bytes) => bytes,
        };
        // The kept values copied out, as text, each with its later lines.
        let text = |span: &Range<usize>| host::text(bytes.get(span.clone()).unwrap_or_default());
        let values = Kept::ALL.map(|kept| {
            let mut value = text(head.spans[kept as usize].as_ref()?);
            for (_, line) in more.iter().filter(|(k, _)| *k == kept) {
                value.push(',');
                value.push_str(&text(line));
            }
            Some(value)
        });
        head.keep(values);
        head
    }

    /// Keeps `values` (by [`Kept`] place), written one after the other
    /// into `text`.
    fn keep(&mut self, values: [Option<String>; Kept::COUNT]) {
        self.text.clear();
        for (span, value) in self.spans.iter_mut().zip(values) {
            *span = value.map(|value| {
                let start = self.text.len();
                self.text.push_str(&value);
                start..self.text.len()
            });
        }
    }

    /// The value of kept header `kept`, if present.
    fn get(&self, kept: Kept) -> Option<&str> {
        let span = self.spans[kept as usize].clone()?;
        self.text.get(span)
    }

    /// `:method` (empty when absent).
    fn method(&self) -> &str {
        self.get(Kept::Method).unwrap_or_default()
    }

    /// `:path` (empty when absent).
    fn path(&self) -> &str {
        self.get(Kept::Path).unwrap_or_default()
    }

    /// Whether request header `name` is known to be `value` already (`None`:
    /// absent), so that writing it would change nothing. Only the headers
    /// the glue writes and the map read records are known; each is written
    /// at most once per request, so what was read still holds.
    fn already(&self, name: &str, value: Option<&str>) -> bool {
        let known = match name {
            ACCEPT_ENCODING => return value.is_none() && !self.accept_encoding,
            CONTENT_LENGTH => Kept::ContentLength,
            CONTENT_TYPE => Kept::ContentType,
            AUTHORIZATION => Kept::Authorization,
            GOOG_API_KEY => Kept::ApiKey,
            _ => return false,
        };
        self.get(known) == value
    }

    /// The current Unix time, read from the host the first time a
    /// decision needs it (a host call most requests do without), then the
    /// same for the rest of the request.
    fn now(&self, host: &impl Host) -> u64 {
        match self.now.get() {
            Some(now) => now,
            None => {
                let now = host.unix_time();
                self.now.set(Some(now));
                now
            }
        }
    }

    /// The path as it may be logged ([`crate::route::loggable`]).
    fn loggable_path(&self) -> String {
        let path = self.path();
        let secrets = crate::route::secrets(self.auth(), crate::request::query_of(path));
        crate::route::loggable(path, &secrets)
    }

    /// The request's credentials.
    fn auth(&self) -> Auth<'_> {
        Auth {
            authorization: self.get(Kept::Authorization),
            api_key: self.get(Kept::ApiKey),
        }
    }

    /// The facts as the decisions take them; `clock` reads the time and
    /// `catalogue` the key's cached live catalogue.
    fn view<'a>(
        &'a self,
        clock: &'a dyn Fn() -> u64,
        catalogue: &'a dyn Fn() -> Option<Rc<Catalogue>>,
    ) -> Head<'a> {
        Head {
            method: self.method(),
            path: self.path(),
            content_length: self.get(Kept::ContentLength),
            content_encoding: self.get(Kept::ContentEncoding),
            auth: self.auth(),
            now: Now::Read(clock),
            catalogue: Some(catalogue),
            signatures: None,
        }
    }
}

/// The per-request context, generic over the host so the glue can be
/// tested against a fake.
pub struct Router<H: Host = Proxy> {
    host: H,
    id: u32,
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    head: RequestHead,
    /// Request body chunks are being held for [`flow::buffered`].
    buffering_request: bool,
    /// What the headers step decided, for the body step.
    pending_body: Option<flow::Pending>,
    /// Bytes of request body held so far (Envoy has a body buffer only
    /// once a body callback ran: writing one before that crashes Envoy).
    request_size: Option<usize>,
    routed: Option<Routed>,
    translator: Option<Box<dyn Translator>>,
    response: Response,
    /// Bytes in Envoy's response body buffer, once a body callback ran.
    response_size: Option<usize>,
    /// The response headers as last read (and as written since), when the
    /// whole map was read: a write that would change nothing is skipped.
    response_headers: Option<Vec<(String, String)>>,
    /// Response bytes held for a rewrite, moved out of Envoy's buffer as
    /// they arrive (Envoy then holds only the chunk in flight).
    held: Vec<u8>,
    /// The VM's live catalogue cache.
    catalogues: Rc<RefCell<Cache>>,
    /// A 404 held while the live catalogue is read.
    pending: Option<Pending>,
}

/// Logs `line` at `level`.
#[inline(never)]
fn log_line(level: log::Level, line: std::fmt::Arguments<'_>) {
    log::log!(level, "{line}");
}

/// Logs a request's debug line: "[`id`] `line`".
#[inline(never)]
fn debug(id: u32, line: std::fmt::Arguments<'_>) {
    log::debug!("[{id}] {line}");
}

/// The first value of header `name` in `map` (what a single header read
/// returns when the header is repeated). (Not inlined: one copy for the
/// headers read.)
#[inline(never)]
fn first(map: &[(String, String)], name: &str) -> Option<String> {
    map.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// A rewritten 404 waiting for the live catalogue.
struct Pending {
    /// The token of the page callout in flight.
    token: u32,
    body: Vec<u8>,
    query: CatalogueQuery,
    catalogue: Catalogue,
    pages: usize,
    cluster: String,
    authority: String,
}

/// The request's translator as the response decisions take it.
fn translator_of(translator: &mut Option<Box<dyn Translator>>) -> Option<&mut dyn Translator> {
    translator
        .as_mut()
        .map(|t| t.as_mut() as &mut dyn Translator)
}

/// How long a catalogue page may take.
const CATALOGUE_TIMEOUT: Duration = Duration::from_secs(2);

impl<H: Host> Router<H> {
    fn new(
        id: u32,
        config: Rc<Config>,
        metrics: Rc<Metrics>,
        catalogues: Rc<RefCell<Cache>>,
        host: H,
    ) -> Router<H> {
        Router {
            host,
            catalogues,
            pending: None,
            held: Vec::new(),
            id,
            config,
            metrics,
            head: RequestHead::default(),
            buffering_request: false,
            pending_body: None,
            request_size: None,
            routed: None,
            translator: None,
            response: Response::default(),
            response_size: None,
            response_headers: None,
        }
    }

    fn pass(&self, reason: flow::PassReason) -> Action {
        if log::log_enabled!(log::Level::Debug) {
            debug(
                self.id,
                format_args!(
                    "pass through ({}): {}",
                    reason.as_str(),
                    self.head.loggable_path()
                ),
            );
        }
        self.metrics.passthrough(reason).inc(&self.host);
        Action::Continue
    }

    fn reject(&self, reply: &LocalReply) -> Action {
        debug(
            self.id,
            format_args!("local reply {}: {}", reply.status, reply.reason),
        );
        match reply.kind {
            RejectKind::InvalidModel => self.metrics.rejected.inc(&self.host),
            RejectKind::Translation => self.metrics.translate_errors.inc(&self.host),
            RejectKind::Credentials => self.metrics.rejected_credentials.inc(&self.host),
            RejectKind::Task => self.metrics.tasks_answered.inc(&self.host),
        }
        let mut headers: Vec<(&str, &str)> = vec![(CONTENT_TYPE, reply.content_type)];
        headers.extend(reply.headers.iter().map(|(n, v)| (*n, v.as_str())));
        self.host.reply(reply.status, &headers, &reply.body);
        Action::Pause
    }

    /// Applies a routing plan to the request headers and counts it.
    fn apply(&self, routed: &Routed) {
        let plan = &routed.plan;
        if let Some(path) = &plan.path {
            self.set_request_header(":path", Some(path));
        }
        for op in routed.header_ops(&self.config) {
            match op {
                HeaderOp::Set(name, value) => self.set_request_header(name, Some(&value.0)),
                HeaderOp::Remove(name) => self.set_request_header(name, None),
            }
        }
        if let Some(m) = routed.migration.as_ref().filter(|m| m.why == Why::Task) {
            self.metrics.tasks_served.inc(&self.host);
            debug(
                self.id,
                format_args!(
                    "background task for {} served by {}",
                    m.requested, routed.model.id
                ),
            );
        } else if let Some(m) = &routed.migration {
            self.metrics.migrated(m.family).inc(&self.host);
            if self.metrics.first_migration(&m.requested) {
                log_line(
                    log::Level::Info,
                    format_args!(
                        "gemini-router: {} (first time in this worker; further ones are counted in {}.{})",
                        crate::response::migration_sentence(routed, &m.requested),
                        crate::headers::METRIC_MIGRATED,
                        m.family
                    ),
                );
            }
        }
        match plan.verdict {
            Verdict::Rewritten => self.metrics.rewritten(plan.family).inc(&self.host),
            Verdict::Unchanged => self.metrics.unchanged(plan.family).inc(&self.host),
            Verdict::NoTranslator => self.metrics.no_translator.inc(&self.host),
        }
        if log::log_enabled!(log::Level::Debug) {
            debug(
                self.id,
                format_args!(
                    "model {} family {} ({}): {:?} {} -> {}",
                    routed.model.id,
                    plan.family,
                    plan.rule,
                    plan.verdict,
                    routed.loggable(&routed.original_path),
                    routed.loggable(routed.upstream_path()),
                ),
            );
        }
    }

    /// Decides on the whole request body (held by Envoy, `size` bytes, or
    /// none when no body callback ran).
    fn on_full_body(&mut self) -> Action {
        self.buffering_request = false;
        let body = match self.request_size {
            None | Some(0) => Vec::new(),
            Some(size) => match self.host.body(BufferType::HttpRequestBody, size) {
                Ok(body) => body,
                Err(_) => return Action::Continue,
            },
        };
        let Some(pending) = self.pending_body.take() else {
            return Action::Continue;
        };
        let store = SharedData(&self.host);
        let clock = || self.head.now(&self.host);
        let catalogue = || self.cached_catalogue();
        let mut view = self.head.view(&clock, &catalogue);
        view.signatures = Some(Shared(&store));
        match flow::buffered(&self.config, &view, pending, &body) {
            BodyStep::Pass(reason) => self.pass(reason),
            BodyStep::Reject(reply) => self.reject(&reply),
            BodyStep::Route(routed, translation) => {
                if let Some((new_body, translator)) = translation {
                    let written = match self.request_size {
                        Some(size) => {
                            self.host
                                .set_body(BufferType::HttpRequestBody, size, &new_body)
                        }
                        None => Err(abi::Status::NotFound),
                    };
                    if written.is_err() {
                        return self.reject(&flow::body_not_replaced(&routed));
                    }
                    self.set_request_header(CONTENT_LENGTH, None);
                    self.set_request_header(CONTENT_TYPE, Some(JSON));
                    if translator.is_some() {
                        self.metrics.translated.inc(&self.host);
                    }
                    self.translator = translator;
                }
                self.apply(&routed);
                let (restored, bypassed) = routed.signatures;
                self.metrics.signatures_restored.add(&self.host, restored);
                self.metrics.signatures_bypassed.add(&self.host, bypassed);
                self.routed = Some(*routed);
                Action::Continue
            }
        }
    }

    /// Passes a chunk of a watched answer ([`Step::Stream`]) through
    /// [`Response::chunk`]: writes what it returns in the chunk's place
    /// (not after trailers: the body has gone by then) and remembers the
    /// signatures it found.
    fn stream_chunk(&mut self, end: bool, trailers: bool) -> Action {
        let size = if trailers {
            0
        } else {
            self.response_size.unwrap_or(0)
        };
        let chunk = match size {
            0 => Vec::new(),
            size => match self.host.body(BufferType::HttpResponseBody, size) {
                Ok(chunk) => chunk,
                Err(_) => return Action::Continue,
            },
        };
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        let translator = translator_of(&mut self.translator);
        let fed = self
            .response
            .chunk(&self.config, routed, translator, &chunk, end);
        self.count(fed.count);
        if let (Some(out), false) = (&fed.out, trailers) {
            if self
                .host
                .set_body(BufferType::HttpResponseBody, size, out)
                .is_ok()
            {
                self.response_size = Some(out.len());
            }
        }
        if fed.repaired {
            self.metrics.streams_repaired.inc(&self.host);
        }
        if let (Some(routed), false) = (&self.routed, fed.signatures.is_empty()) {
            let store = SharedData(&self.host);
            let scope = routed.signature_scope();
            let memory = Memory::new(&store, &scope, self.config.signatures);
            for (id, signature) in &fed.signatures {
                match memory.remember(&routed.model.id, id, signature) {
                    Remembered::Stored => self.metrics.signatures_stored.inc(&self.host),
                    Remembered::TooLarge => self.metrics.signatures_too_large.inc(&self.host),
                    Remembered::Skipped => {}
                }
            }
        }
        Action::Continue
    }

    /// Turns a response step into host calls.
    fn respond(&mut self, step: Step) -> Action {
        match step {
            Step::Continue(edit) => {
                // Whatever was held is written or dropped by now.
                self.held = Vec::new();
                // (A plain success's edit is empty: nothing to write.)
                if !edit.is_empty() {
                    self.edit_response(edit);
                }
                Action::Continue
            }
            Step::Hold(edit) => {
                if edit.body.is_none() {
                    self.move_chunk();
                }
                self.edit_response(edit);
                Action::Pause
            }
            Step::ReadBody => {
                let chunk = match self.response_size {
                    None | Some(0) => Ok(Vec::new()),
                    Some(size) => self.host.body(BufferType::HttpResponseBody, size),
                };
                let Ok(chunk) = chunk else {
                    return Action::Continue;
                };
                let mut body = std::mem::take(&mut self.held);
                body.extend_from_slice(&chunk);
                drop(chunk);
                let Some(routed) = &self.routed else {
                    return Action::Continue;
                };
                if let Some(query) = self.response.catalogue_query(&self.config, routed) {
                    return self.with_catalogue(query, body);
                }
                self.finish(&body, None)
            }
            // Only reached from the body and trailers callbacks, which call
            // `stream_chunk` themselves.
            Step::Stream => Action::Continue,
            Step::Replace(reply) => {
                self.count(reply.count);
                debug(
                    self.id,
                    format_args!("response replaced by {}", reply.status),
                );
                let upstream = match self.response_headers.take() {
                    Some(known) => known,
                    None => self.host.headers(RESP),
                };
                let mut headers: Vec<(&str, &str)> = Vec::new();
                for (name, value) in &upstream {
                    if response::kept_on_replace(name)
                        && !reply.headers.iter().any(|(n, _)| n == name)
                    {
                        headers.push((name, value));
                    }
                }
                headers.extend(reply.headers.iter().map(|(n, v)| (*n, v.as_str())));
                self.host.reply(reply.status, &headers, &reply.body);
                Action::Pause
            }
        }
    }

    /// Rewrites the held response once its body is read (and the live
    /// catalogue's sentence, when one was read).
    fn finish(&mut self, body: &[u8], catalogue: Option<&str>) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        let translator = translator_of(&mut self.translator);
        let step = self
            .response
            .finish_with(&self.config, routed, translator, body, catalogue);
        self.respond(step)
    }

    /// Finishes a 404 with the live catalogue: from the cache, or by
    /// holding the response while the first page is read.
    fn with_catalogue(&mut self, query: CatalogueQuery, body: Vec<u8>) -> Action {
        let now = self.head.now(&self.host);
        let key = catalogue::credential_key(&query.key.0);
        let cached = self.catalogues.borrow().get(key, now);
        if let Some(cat) = cached {
            self.metrics.catalogue_cached.inc(&self.host);
            let sentence = self.sentence(&cat, &query);
            return self.finish(&body, Some(&sentence));
        }
        let cluster = self
            .host
            .property(&["xds", "cluster_name"])
            .and_then(|c| String::from_utf8(c).ok());
        let (Some(cluster), Some(authority)) =
            (cluster, self.head.get(Kept::Authority).map(str::to_owned))
        else {
            self.metrics.catalogue_failed.inc(&self.host);
            return self.finish(&body, None);
        };
        let mut pending = Pending {
            token: 0,
            body,
            query,
            catalogue: Catalogue::default(),
            pages: 1,
            cluster,
            authority,
        };
        match self.request_page(&pending, None) {
            Ok(token) => {
                pending.token = token;
                self.pending = Some(pending);
                Action::Pause
            }
            Err(()) => {
                self.metrics.catalogue_failed.inc(&self.host);
                self.finish(&pending.body, None)
            }
        }
    }

    /// Asks for a catalogue page: the callout's token.
    fn request_page(&self, pending: &Pending, token: Option<&str>) -> Result<u32, ()> {
        let path = catalogue::page_path(&pending.query.version, token);
        let headers = [
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", pending.authority.as_str()),
            (GOOG_API_KEY, pending.query.key.0.as_str()),
        ];
        self.host
            .dispatch(&pending.cluster, &headers, CATALOGUE_TIMEOUT)
            .map_err(|_| ())
    }

    fn sentence(&self, catalogue: &Catalogue, query: &CatalogueQuery) -> String {
        let model = self.routed.as_ref().map_or("", |r| r.model.id.as_str());
        catalogue
            .finding(model, query.method)
            .sentence(model, query.method)
    }

    /// The catalogue cached for the request's Developer API key, if the
    /// live catalogue is on and a 404 for that key read one (it classifies
    /// models no rule matches).
    fn cached_catalogue(&self) -> Option<Rc<Catalogue>> {
        // No 404 has read a catalogue yet (the usual case): no key to hash.
        if !self.config.live_catalogue || self.catalogues.borrow().is_empty() {
            return None;
        }
        let query = crate::request::query_of(self.head.path());
        let key = crate::route::api_key(self.head.auth(), query)?;
        self.catalogues
            .borrow()
            .get(catalogue::credential_key(&key.0), self.head.now(&self.host))
    }

    /// Moves the chunk in Envoy's buffer into `held` and empties the
    /// buffer: Envoy adds the next chunk to an empty buffer, so a burst can
    /// never push it past its limit while the filter holds the response.
    fn move_chunk(&mut self) {
        let Some(size) = self.response_size.filter(|s| *s > 0) else {
            return;
        };
        match self.host.body(BufferType::HttpResponseBody, size) {
            Ok(chunk) => {
                if self
                    .host
                    .set_body(BufferType::HttpResponseBody, size, &[])
                    .is_ok()
                {
                    self.held.extend_from_slice(&chunk);
                    self.response_size = Some(0);
                }
            }
            Err(_) => debug(
                self.id,
                format_args!("response chunk not readable; left in place"),
            ),
        }
    }

    /// Writes an edit of the held response. The body is only written where
    /// Envoy holds one (after a body callback).
    fn edit_response(&mut self, edit: Edit) {
        self.count(edit.count);
        if let Some(status) = edit.status {
            self.set_response_header(":status", Some(&status.to_string()));
        }
        for name in edit.remove {
            self.set_response_header(name, None);
        }
        for (name, value) in &edit.set {
            self.set_response_header(name, Some(value));
        }
        if let (Some(body), Some(size)) = (edit.body, self.response_size) {
            if self
                .host
                .set_body(BufferType::HttpResponseBody, size, &body)
                .is_ok()
            {
                self.response_size = Some(body.len());
            }
        }
    }

    /// Sets (or, with `None`, removes) request header `name`, unless the
    /// request already says exactly that: each write is a host call, and
    /// also clears Envoy's route cache (the route is matched again).
    fn set_request_header(&self, name: &str, value: Option<&str>) {
        if !self.head.already(name, value) {
            let _ = self.host.set_header(REQ, name, value);
        }
    }

    /// Sets (or, with `None`, removes) response header `name`, unless the
    /// headers as known already say exactly that: each write is a host call.
    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        if let Some(known) = &mut self.response_headers {
            let mut values = known
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str());
            if let (current, None) = (values.next(), values.next()) {
                if current == value {
                    return;
                }
            }
            known.retain(|(n, _)| n != name);
            if let Some(value) = value {
                known.push((name.to_owned(), value.to_owned()));
            }
        }
        let _ = self.host.set_header(RESP, name, value);
    }

    fn count(&self, count: Option<Count>) {
        match count {
            Some(Count::Annotated) => self.metrics.annotated.inc(&self.host),
            Some(Count::TranslateError) => self.metrics.translate_errors.inc(&self.host),
            None => {}
        }
    }
}

// The callbacks, as [`entry`] delivers them.
impl<H: Host> Router<H> {
    /// Whether the request waits for the callout answer `token`.
    fn awaits(&self, token: u32) -> bool {
        self.pending.as_ref().is_some_and(|p| p.token == token)
    }

    fn on_http_call_response(&mut self, body_size: usize) {
        self.on_catalogue_page(body_size);
    }

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.metrics.requests.inc(&self.host);
        if let Some(authority) = &self.config.authority {
            let _ = self.host.set_header(REQ, ":authority", Some(authority));
        }
        self.head = RequestHead::read(&self.host);
        let clock = || self.head.now(&self.host);
        let catalogue = || self.cached_catalogue();
        match flow::head(&self.config, &self.head.view(&clock, &catalogue)) {
            HeadStep::Pass(reason) => self.pass(reason),
            HeadStep::Reject(reply) => self.reject(&reply),
            HeadStep::Route(routed) => {
                self.apply(&routed);
                self.routed = Some(*routed);
                Action::Continue
            }
            HeadStep::Buffer(pending) => {
                self.pending_body = Some(pending);
                if end_of_stream {
                    return self.on_full_body();
                }
                self.buffering_request = true;
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.buffering_request {
            return Action::Continue;
        }
        self.request_size = Some(body_size);
        if body_size > self.config.max_body_bytes {
            self.buffering_request = false;
            return self.pass(flow::PassReason::TooLarge);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.on_full_body()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the body (HTTP/2, or HTTP/1.1 chunked with trailers).
        if !self.buffering_request {
            return Action::Continue;
        }
        self.on_full_body()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        let translation = Translation::of(self.translator.as_deref());
        // Each header read is a host call (and one more copies the value
        // into the VM): a 2xx of a plain routed request reads `:status`
        // only; where the other headers decide (an error, a translated
        // answer, one that may carry tool calls) the whole map is read once.
        let known = translation != Translation::None || routed.tools;
        let mut map = known.then(|| self.host.headers(RESP));
        let status = match &map {
            Some(map) => first(map, ":status").map(String::into_bytes),
            None => self.host.header(RESP, ":status"),
        }
        .map_or(0, |value| response::status_code(&value));
        if map.is_none() && response::untouched(routed, translation, status) {
            return Action::Continue;
        }
        if map.is_none() && response::reads_headers(routed, translation, status) {
            map = Some(self.host.headers(RESP));
        }
        let header = |name| first(map.as_deref().unwrap_or_default(), name);
        let encoding = header(CONTENT_ENCODING);
        let length = header(CONTENT_LENGTH);
        let content_type = if routed.tools {
            header(CONTENT_TYPE)
        } else {
            None
        };
        let head = ResponseHead {
            status,
            content_encoding: encoding.as_deref(),
            content_length: length.as_deref(),
            retry_after: status >= 400 && header(RETRY_AFTER).is_some(),
            content_type: content_type.as_deref(),
        };
        if response::encoding_kept(&self.config, &head) && self.metrics.first_kept_encoding() {
            log_line(
                log::Level::Warn,
                format_args!(
                    "gemini-router: an answer arrived compressed (content-encoding: {}) although \
                     route_removes_accept_encoding is set: the route does not remove \
                     accept-encoding, so error bodies pass unread and translations fail. Remove it \
                     on the route (request_headers_to_remove) or unset the field (logged once)",
                    crate::diagnose::header_value(head.content_encoding.unwrap_or_default())
                ),
            );
        }
        let (state, step) =
            Response::headers(&self.config, routed, translation, &head, end_of_stream);
        self.response = state;
        self.response_headers = map;
        self.respond(step)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Nothing held, nothing to change: the chunk goes on, without the
        // body step's code (which would decide just that).
        if self.response.passes() && self.held.is_empty() {
            return Action::Continue;
        }
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        self.response_size = Some(body_size);
        let seen = self.held.len() + body_size;
        let step = self
            .response
            .body(&self.config, routed, seen, end_of_stream);
        if step == Step::Stream {
            return self.stream_chunk(end_of_stream, false);
        }
        self.respond(step)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        let step = self.response.trailers(&self.config, routed);
        if step == Step::Stream {
            return self.stream_chunk(true, true);
        }
        self.respond(step)
    }
}

impl<H: Host> Router<H> {
    /// A catalogue page arrived (or the callout failed or timed out).
    fn on_catalogue_page(&mut self, body_size: usize) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        let (status, page) = if body_size > catalogue::MAX_PAGE_BYTES {
            (None, Vec::new())
        } else {
            self.host.call_response(body_size)
        };
        let next = match status.as_deref() {
            Some("200") => pending.catalogue.add_page(&page).map_err(|e| {
                debug(self.id, format_args!("live catalogue: {e}"));
            }),
            _ => Err(()),
        };
        let sentence = match next {
            Ok(Some(token)) if pending.pages < catalogue::MAX_PAGES => {
                if let Ok(callout) = self.request_page(&pending, Some(&token)) {
                    pending.token = callout;
                    pending.pages += 1;
                    self.pending = Some(pending);
                    return;
                }
                None
            }
            Ok(_) => {
                self.metrics.catalogue_fetched.inc(&self.host);
                let key = catalogue::credential_key(&pending.query.key.0);
                let catalogue = std::mem::take(&mut pending.catalogue);
                let cat =
                    self.catalogues
                        .borrow_mut()
                        .put(key, self.head.now(&self.host), catalogue);
                Some(self.sentence(&cat, &pending.query))
            }
            Err(()) => None,
        };
        if sentence.is_none() {
            self.metrics.catalogue_failed.inc(&self.host);
        }
        let _ = self.finish(&pending.body, sentence.as_deref());
        self.host.resume_response();
    }
}
