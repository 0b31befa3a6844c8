//! The only code that talks to the host. `RouterRoot` parses the
//! configuration once and defines the metrics; each request gets a `Router`
//! that asks [`crate::flow`] what to do at each callback and turns the answer
//! into host calls and an `Action`.

mod host;
mod metrics;

use crate::config::Config;
use crate::flow::{
    self, BodyStep, Head, HeadStep, LocalReply, RejectKind, Reply, ResponseMode, Routed,
};
use crate::headers::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, GOOG_API_KEY, JSON,
};
use crate::route::{Auth, HeaderOp, Verdict};
use crate::translate::Translator;
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};
use std::rc::Rc;
use std::time::Duration;

const REQ: MapType = MapType::HttpRequestHeaders;
const RESP: MapType = MapType::HttpResponseHeaders;

/// The root context: configuration and metrics shared by all requests.
#[derive(Default)]
pub struct RouterRoot {
    config: Option<Rc<Config>>,
    metrics: Option<Rc<Metrics>>,
}

impl Context for RouterRoot {}

/// How often the root context re-reads Envoy's log level for the `wasm`
/// component, so that `/logging?wasm=debug` takes effect at runtime.
const LOG_LEVEL_REFRESH: Duration = Duration::from_secs(1);

/// Follows Envoy's log level: the SDK formats and sends every line that
/// passes its own level, so it is set to the host's instead of `Trace`.
fn follow_host_log_level() {
    if let Ok(level) = proxy_wasm::hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
    }
}

impl RootContext for RouterRoot {
    fn on_tick(&mut self) {
        follow_host_log_level();
    }

    fn on_configure(&mut self, size: usize) -> bool {
        follow_host_log_level();
        if let Err(status) = proxy_wasm::hostcalls::set_tick_period(LOG_LEVEL_REFRESH) {
            log::debug!("gemini-router: no tick for log level refresh: host error {status:?}");
        }
        let bytes =
            match proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
                Ok(bytes) => bytes.unwrap_or_default(),
                Err(status) => {
                    log::error!(
                    "gemini-router: cannot read the plugin configuration: host error {status:?}"
                );
                    return false;
                }
            };
        match Config::from_bytes(&bytes) {
            Ok(config) => {
                log::info!(
                    "gemini-router: configuration accepted: {}",
                    config.summary()
                );
                self.config = Some(Rc::new(config));
                if self.metrics.is_none() {
                    self.metrics = Some(Rc::new(Metrics::define()));
                }
                true
            }
            Err(e) => {
                log::error!("gemini-router: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        let metrics = self.metrics.clone()?;
        Some(Box::new(Router::new(context_id, config, metrics)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The request facts kept while the body is buffered.
#[derive(Default)]
struct RequestHead {
    method: String,
    path: String,
    content_length: Option<String>,
    content_encoding: Option<String>,
    authorization: Option<String>,
    api_key: Option<String>,
}

impl RequestHead {
    /// Reads the request facts the decisions use; `false` when `:method`
    /// and `:path` already show the router does not look at the request (each
    /// header read is a host call, so the rest are not read for those).
    fn read() -> (RequestHead, bool) {
        let method = host::header(REQ, ":method").unwrap_or_default();
        let path = host::header(REQ, ":path").unwrap_or_default();
        if !flow::is_routed(&method, &path) {
            return (
                RequestHead {
                    method,
                    path,
                    ..RequestHead::default()
                },
                false,
            );
        }
        let head = RequestHead {
            method,
            path,
            content_length: host::header(REQ, CONTENT_LENGTH),
            content_encoding: host::header(REQ, CONTENT_ENCODING),
            authorization: host::header(REQ, AUTHORIZATION),
            api_key: host::header(REQ, GOOG_API_KEY),
        };
        (head, true)
    }

    fn view(&self) -> Head<'_> {
        Head {
            method: &self.method,
            path: &self.path,
            content_length: self.content_length.as_deref(),
            content_encoding: self.content_encoding.as_deref(),
            auth: Auth {
                authorization: self.authorization.as_deref(),
                api_key: self.api_key.as_deref(),
            },
        }
    }
}

/// The per-request context.
pub struct Router {
    id: u32,
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    head: RequestHead,
    buffering_request: bool,
    routed: Option<Routed>,
    translator: Option<Box<dyn Translator>>,
    response: ResponseMode,
    status: u16,
}

impl Router {
    fn new(id: u32, config: Rc<Config>, metrics: Rc<Metrics>) -> Router {
        Router {
            id,
            config,
            metrics,
            head: RequestHead::default(),
            buffering_request: false,
            routed: None,
            translator: None,
            response: ResponseMode::Pass,
            status: 0,
        }
    }

    fn pass(&self, reason: flow::PassReason) -> Action {
        log::debug!(
            "[{}] pass through ({}): {}",
            self.id,
            reason.as_str(),
            crate::route::redact_key(&self.head.path)
        );
        self.metrics.passthrough(reason).inc();
        Action::Continue
    }

    fn reject(&self, reply: &LocalReply) -> Action {
        log::debug!(
            "[{}] local reply {}: {}",
            self.id,
            reply.status,
            reply.reason
        );
        match reply.kind {
            RejectKind::InvalidModel => self.metrics.rejected.inc(),
            RejectKind::Translation => self.metrics.translate_errors.inc(),
        }
        let mut headers: Vec<(&str, &str)> = vec![(CONTENT_TYPE, JSON)];
        headers.extend(reply.headers.iter().map(|(n, v)| (*n, v.as_str())));
        host::reply(reply.status, &headers, &reply.body);
        Action::Pause
    }

    /// Applies a routing plan to the request headers and counts it.
    fn apply(&self, routed: &Routed) {
        let plan = &routed.plan;
        if let Some(path) = &plan.path {
            let _ = host::set_header(REQ, ":path", Some(path));
        }
        for op in &plan.headers {
            let _ = match op {
                HeaderOp::Set(name, value) => host::set_header(REQ, name, Some(&value.0)),
                HeaderOp::Remove(name) => host::set_header(REQ, name, None),
            };
        }
        match plan.verdict {
            Verdict::Rewritten => self.metrics.rewritten(plan.family).inc(),
            Verdict::Unchanged => self.metrics.unchanged(plan.family).inc(),
            Verdict::NoTranslator => self.metrics.no_translator.inc(),
        }
        log::debug!(
            "[{}] model {} family {} ({}): {:?} {} -> {}",
            self.id,
            routed.model.id,
            plan.family,
            plan.rule,
            plan.verdict,
            crate::route::redact_key(&routed.original_path),
            crate::route::redact_key(routed.upstream_path()),
        );
    }

    /// Decides on the whole request body.
    fn on_full_body(&mut self, size: usize) -> Action {
        let body = if size == 0 {
            Vec::new()
        } else {
            match host::body(BufferType::HttpRequestBody, size) {
                Ok(body) => body,
                Err(_) => return Action::Continue,
            }
        };
        match flow::body(&self.config, &self.head.view(), &body, host::unix_time()) {
            BodyStep::Pass(reason) => self.pass(reason),
            BodyStep::Reject(reply) => self.reject(&reply),
            BodyStep::Route(routed, translation) => {
                if let Some((new_body, translator)) = translation {
                    if host::set_body(BufferType::HttpRequestBody, size, &new_body).is_err() {
                        // The body could not be replaced: send nothing in a
                        // shape the target rejects.
                        let reply = LocalReply {
                            headers: Vec::new(),
                            status: 500,
                            body: crate::diagnose::local_error(
                                routed.shape,
                                500,
                                "gemini-router could not replace the request body",
                                "internal_error",
                                None,
                            ),
                            reason: "set body failed".into(),
                            kind: RejectKind::Translation,
                        };
                        return self.reject(&reply);
                    }
                    let _ = host::set_header(REQ, CONTENT_LENGTH, None);
                    let _ = host::set_header(REQ, CONTENT_TYPE, Some(JSON));
                    self.metrics.translated.inc();
                    self.translator = Some(translator);
                }
                self.apply(&routed);
                self.routed = Some(routed);
                Action::Continue
            }
        }
    }

    /// Writes a rewritten response: status, headers and body.
    fn write_reply(&self, reply: &Reply, size: usize) {
        if reply.status != self.status {
            let _ = host::set_header(RESP, ":status", Some(&reply.status.to_string()));
        }
        let _ = host::set_header(RESP, CONTENT_LENGTH, None);
        for (name, value) in &reply.headers {
            let _ = host::set_header(RESP, name, Some(value));
        }
        let _ = host::set_body(BufferType::HttpResponseBody, size, &reply.body);
    }
}

impl Context for Router {}

impl HttpContext for Router {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.metrics.requests.inc();
        if let Some(authority) = &self.config.authority {
            let _ = host::set_header(REQ, ":authority", Some(authority));
        }
        let (head, routed) = RequestHead::read();
        self.head = head;
        if !routed {
            return self.pass(flow::PassReason::Unrouted);
        }
        match flow::head(&self.config, &self.head.view()) {
            HeadStep::Pass(reason) => self.pass(reason),
            HeadStep::Reject(reply) => self.reject(&reply),
            HeadStep::Route(routed) => {
                self.apply(&routed);
                self.routed = Some(routed);
                Action::Continue
            }
            HeadStep::Buffer if end_of_stream => self.on_full_body(0),
            HeadStep::Buffer => {
                self.buffering_request = true;
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.buffering_request {
            return Action::Continue;
        }
        if body_size > self.config.max_body_bytes {
            self.buffering_request = false;
            return self.pass(flow::PassReason::TooLarge);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.buffering_request = false;
        self.on_full_body(body_size)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        self.status = host::header(RESP, ":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let encoding = host::header(RESP, CONTENT_ENCODING);
        self.response = flow::response_mode(
            &self.config,
            self.status,
            self.translator.is_some(),
            encoding.as_deref(),
        );
        match self.response {
            ResponseMode::Pass => Action::Continue,
            ResponseMode::Annotate | ResponseMode::Translate if !end_of_stream => Action::Pause,
            ResponseMode::HeadersOnly | ResponseMode::Annotate | ResponseMode::Translate => {
                // No body to rewrite (none, or compressed): the headers
                // alone carry the diagnosis.
                if self.status >= 400 {
                    for (name, value) in flow::error_headers(routed, self.status) {
                        let _ = host::set_header(RESP, name, Some(&value));
                    }
                    self.metrics.annotated.inc();
                }
                self.response = ResponseMode::Pass;
                Action::Continue
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.response == ResponseMode::Pass {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let Some(routed) = &self.routed else {
            return Action::Continue;
        };
        let Ok(body) = host::body(BufferType::HttpResponseBody, body_size) else {
            return Action::Continue;
        };
        let reply = match (self.response, self.translator.as_mut()) {
            (ResponseMode::Translate, Some(translator)) => {
                match flow::translated_reply(routed, translator.as_mut(), &body) {
                    Ok(reply) => reply,
                    Err(reply) => {
                        self.metrics.translate_errors.inc();
                        reply
                    }
                }
            }
            _ => {
                self.metrics.annotated.inc();
                flow::error_reply(routed, self.status, &body)
            }
        };
        log::debug!(
            "[{}] response {} -> {} ({} bytes)",
            self.id,
            self.status,
            reply.status,
            reply.body.len()
        );
        self.write_reply(&reply, body_size);
        self.response = ResponseMode::Pass;
        Action::Continue
    }
}
