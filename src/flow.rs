//! The per-request decisions, as pure functions the filter glue calls at each
//! stage: on request headers ([`head`]) and on the full request body
//! ([`body`]); the response side is [`crate::response`]. Each returns what
//! to do; the glue turns that into host calls.

use crate::config::Config;
use crate::diagnose;
use crate::endpoint::Endpoint;
use crate::headers::{ACCEPT_ENCODING, DIAG_HINT};
use crate::lifecycle::Notice;
use crate::model::{ModelError, ModelName};
use crate::request::{recognize, Recognized};
use crate::route::{self, Auth, Client, ErrorShape, HeaderOp, Plan, Secret, Verdict};
use crate::scan::{top_level_fields, ScanError};
use crate::translate::{self, Exchange, TranslateError, Translator};

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
#[derive(Debug, Clone, Copy)]
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
    pub now: u64,
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
}

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
    /// What the lifecycle table says of the model (announced or past
    /// shutdown, replacement), if anything.
    pub notice: Option<Notice>,
    /// The request's credential values, scrubbed from any upstream text the
    /// filter writes back (never logged: `Secret` prints as redacted).
    pub secrets: Vec<Secret>,
}

impl Routed {
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
    /// Wait for the whole body, then call [`body`].
    Buffer,
    /// Apply the plan now and continue; no body is needed.
    Route(Routed),
}

/// What to do once the whole request body is there.
pub enum BodyStep {
    /// Continue untouched.
    Pass(PassReason),
    /// Answer locally.
    Reject(LocalReply),
    /// Apply the plan; with a translation, replace the body and keep the
    /// translator for the response.
    Route(Box<Routed>, Option<(Vec<u8>, Box<dyn Translator>)>),
}

/// Whether a request is one the router looks at, from `:method` and
/// `:path` alone: the glue reads no other header for the rest, which pass
/// through untouched.
pub fn is_routed(method: &str, path: &str) -> bool {
    recognize(method, path) != Recognized::Unrouted
}

/// Decides on the request headers.
pub fn head(config: &Config, head: &Head<'_>) -> HeadStep {
    let client = match recognize(head.method, head.path) {
        Recognized::Unrouted => return HeadStep::Pass(PassReason::Unrouted),
        Recognized::OpenAi(p) => Client::OpenAi(p),
        Recognized::Model(p) => Client::Model(p),
    };
    let query = head.path.split_once('?').map(|(_, q)| q);
    if let Err(e) = route::check_credentials(head.auth, query) {
        return HeadStep::Reject(reject_credentials(client.error_shape(), &e));
    }
    if let Client::Model(p) = client {
        {
            let model = match ModelName::from_path(p.collection, p.raw_id, config.max_model_length)
            {
                Ok(m) => m,
                Err(e) => return HeadStep::Reject(reject_model(ErrorShape::Google, &e)),
            };
            let stream = p.endpoint == Endpoint::StreamGenerateContent;
            let routed = decide(config, client, model, stream, head);
            if !routed.plan.translates() {
                return HeadStep::Route(routed);
            }
        }
    }
    // The body is needed: for the model (OpenAI style) or for translation.
    // A native request that needs translation but whose body cannot be read
    // is left where it was sent: routing it untranslated would send a body
    // the target rejects.
    if let Some(reason) = body_unreadable(config, head) {
        return HeadStep::Pass(reason);
    }
    HeadStep::Buffer
}

/// Why the request body cannot be inspected, if it cannot.
fn body_unreadable(config: &Config, head: &Head<'_>) -> Option<PassReason> {
    if head
        .content_encoding
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
    {
        return Some(PassReason::Compressed);
    }
    let too_large = head
        .content_length
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > config.max_body_bytes as u64);
    too_large.then_some(PassReason::TooLarge)
}

/// Decides on the full request body.
pub fn body(config: &Config, head: &Head<'_>, body: &[u8]) -> BodyStep {
    if body.len() > config.max_body_bytes {
        return BodyStep::Pass(PassReason::TooLarge);
    }
    let (client, model, stream) = match recognize(head.method, head.path) {
        Recognized::Unrouted => return BodyStep::Pass(PassReason::Unrouted),
        Recognized::Model(p) => {
            match ModelName::from_path(p.collection, p.raw_id, config.max_model_length) {
                Ok(m) => (
                    Client::Model(p),
                    m,
                    p.endpoint == Endpoint::StreamGenerateContent,
                ),
                Err(e) => return BodyStep::Reject(reject_model(ErrorShape::Google, &e)),
            }
        }
        Recognized::OpenAi(p) => {
            let [model, stream] = match top_level_fields(body, ["model", "stream"]) {
                Ok(fields) => fields,
                Err(ScanError::Malformed { .. }) => return BodyStep::Pass(PassReason::InvalidJson),
                Err(e @ ScanError::DuplicateKey(_)) => {
                    return BodyStep::Reject(reject_model(ErrorShape::OpenAi, &e))
                }
            };
            let Some(raw_model) = model else {
                return BodyStep::Pass(PassReason::NoModel);
            };
            let model = match serde_json::from_slice::<String>(raw_model) {
                Ok(name) => ModelName::parse(&name, config.max_model_length),
                Err(_) => Err(ModelError::NotAString),
            };
            match model {
                Ok(m) => (Client::OpenAi(p), m, stream == Some(&b"true"[..])),
                Err(e) => return BodyStep::Reject(reject_model(ErrorShape::OpenAi, &e)),
            }
        }
    };
    let routed = decide(config, client, model, stream, head);
    if !routed.plan.translates() {
        return BodyStep::Route(Box::new(routed), None);
    }
    let exchange = Exchange {
        model: &routed.model.id,
        from: routed.plan.from,
        to: routed.plan.to,
        client_sse: routed.plan.client_sse,
        created: head.now,
        options: config.translate,
    };
    let Some(mut translator) = translate::select(&exchange) else {
        // `route::plan` only rewrites to pairs `translate::supports`; this
        // keeps the request as sent if the two ever disagree.
        let mut routed = routed;
        routed.plan.to = routed.plan.from;
        routed.plan.path = None;
        routed.plan.headers.clear();
        routed.plan.verdict = Verdict::NoTranslator;
        return BodyStep::Route(Box::new(routed), None);
    };
    match translate::request(translator.as_mut(), body, config.max_body_bytes) {
        Ok(new_body) => BodyStep::Route(Box::new(routed), Some((new_body, translator))),
        Err(e) => BodyStep::Reject(reject_translation(&routed, &e)),
    }
}

fn decide(
    config: &Config,
    client: Client<'_>,
    model: ModelName,
    stream: bool,
    head: &Head<'_>,
) -> Routed {
    let class = config.classifier.classify(&model.id);
    let mut plan = route::plan(config, client, &model, class, stream, head.auth);
    // The filter may rewrite the answer (an annotated error, a translation):
    // ask for it uncompressed. Successful answers still stream through as is.
    plan.headers.push(HeaderOp::Remove(ACCEPT_ENCODING));
    let query = head.path.split_once('?').map(|(_, q)| q);
    let model_id = model.id.clone();
    Routed {
        model,
        plan,
        original_path: head.path.to_owned(),
        shape: client.error_shape(),
        notice: config.lifecycle.notice(&model_id, head.now),
        secrets: route::secrets(head.auth, query),
    }
}

/// The local 400 for a model the filter will not put into a path (unsafe,
/// not a string, or given twice).
fn reject_model(shape: ErrorShape, error: &dyn std::fmt::Display) -> LocalReply {
    let message = format!("gemini-router refused the request: {error}");
    LocalReply {
        status: 400,
        body: diagnose::local_error(shape, 400, &message, "invalid_model", Some("model")),
        headers: vec![(DIAG_HINT, diagnose::header_value(&message))],
        reason: error.to_string(),
        kind: RejectKind::InvalidModel,
    }
}

/// The local 400 for a request that carries more than one credential.
fn reject_credentials(shape: ErrorShape, error: &route::CredentialError) -> LocalReply {
    let message = format!("gemini-router refused the request: {error}");
    LocalReply {
        status: 400,
        body: diagnose::local_error(shape, 400, &message, "ambiguous_credentials", None),
        headers: vec![(DIAG_HINT, diagnose::header_value(&message))],
        reason: error.to_string(),
        kind: RejectKind::Credentials,
    }
}

/// The reply for a translated exchange that failed, on either side, with the
/// diagnostic headers of the routed request.
pub(crate) fn reject_translation(routed: &Routed, error: &TranslateError) -> LocalReply {
    let hint = diagnose::translation_hint(&routed.plan, &routed.model.id, error);
    let status = error.status();
    LocalReply {
        status,
        body: diagnose::local_error(
            routed.shape,
            status,
            &format!("gemini-router: {hint}"),
            "translation_failed",
            None,
        ),
        headers: diagnose::diagnostic_headers(
            &routed.plan,
            &routed.model.id,
            &routed.original_path,
            routed.upstream_path(),
            &hint,
        ),
        reason: error.to_string(),
        kind: RejectKind::Translation,
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
            now: 0,
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
                HeadStep::Buffer => "buffer".into(),
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
}
