//! Error responses a client can parse and a person can act on.
//!
//! For an upstream error on a routed request this module builds the
//! diagnostic headers and one-line hint, unwraps Google's list-wrapped error
//! (`[{"error":...}]`), and converts it to the OpenAI error shape for
//! OpenAI-style clients. It also builds the filter's own local error replies.
//! Nothing here sees the API key: bodies are built from the model, the paths
//! (with `key=` redacted) and the upstream's own error text.

use crate::endpoint::Endpoint;
use crate::headers::{
    DIAG_FAMILY, DIAG_HINT, DIAG_MODEL, DIAG_ORIGINAL_PATH, DIAG_RULE, DIAG_UPSTREAM_PATH,
};
use crate::lifecycle::Notice;
use crate::route::{redact_key, scrub, scrub_str, ErrorShape, Plan, Secret, Verdict};
use crate::scan;
use crate::translate::{Side, TranslateError};
use crate::tree::{Json, Object};
use std::fmt::Write;

/// How an endpoint is named in hints: `chat/completions` or `:predict`.
pub fn endpoint_label(endpoint: Endpoint) -> String {
    if endpoint.is_openai() {
        endpoint.as_str().to_owned()
    } else {
        format!(":{}", endpoint.as_str())
    }
}

/// What Google's error says beyond its message: the facts a hint can name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorFacts {
    /// The first exceeded quota (`QuotaFailure.violations[0]`): its id or
    /// metric, and its limit when given.
    pub quota: Option<String>,
    /// `RetryInfo.retryDelay`, in whole seconds (rounded up).
    pub retry_after: Option<u64>,
    /// The first field Google names (`BadRequest.fieldViolations[0]`),
    /// with its description.
    pub field: Option<String>,
    /// `ErrorInfo.reason` (`API_KEY_INVALID`, `SERVICE_DISABLED`, ...).
    pub reason: Option<String>,
}

/// Reads the `details` of a Google error object.
pub(crate) fn facts(error: &Object) -> ErrorFacts {
    let mut facts = ErrorFacts::default();
    let Some(details) = error.get("details").and_then(Json::as_array) else {
        return facts;
    };
    for detail in details {
        let kind = detail.get("@type").and_then(Json::as_str).unwrap_or("");
        let kind = kind.rsplit('.').next().unwrap_or(kind);
        match kind {
            "QuotaFailure" if facts.quota.is_none() => {
                let first = detail
                    .get("violations")
                    .and_then(Json::as_array)
                    .and_then(|v| v.first());
                if let Some(v) = first {
                    let name = text(v.get("quotaId")).or_else(|| text(v.get("quotaMetric")));
                    let limit = match v.get("quotaValue") {
                        Some(Json::String(s) | Json::Number(s)) => Some(s.clone()),
                        _ => None,
                    };
                    facts.quota = match (name, limit) {
                        (Some(name), Some(limit)) => Some(format!("{name} (limit {limit})")),
                        (name, _) => name,
                    };
                }
            }
            "RetryInfo" if facts.retry_after.is_none() => {
                facts.retry_after = detail
                    .get("retryDelay")
                    .and_then(Json::as_str)
                    .and_then(duration_seconds);
            }
            "BadRequest" if facts.field.is_none() => {
                let first = detail
                    .get("fieldViolations")
                    .and_then(Json::as_array)
                    .and_then(|v| v.first());
                if let Some(v) = first {
                    facts.field = match (text(v.get("field")), text(v.get("description"))) {
                        (Some(field), Some(why)) => Some(format!("{field}: {why}")),
                        (field, why) => field.or(why),
                    };
                }
            }
            "ErrorInfo" if facts.reason.is_none() => facts.reason = text(detail.get("reason")),
            _ => {}
        }
    }
    facts
}

/// The text of a string value, if `value` is one.
#[inline(never)]
fn text(value: Option<&Json>) -> Option<String> {
    value.and_then(Json::as_str).map(str::to_owned)
}

/// Seconds, rounded up, of a protobuf JSON duration (`"27s"`, `"1.5s"`).
fn duration_seconds(text: &str) -> Option<u64> {
    let number = text.trim().strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = whole.parse().ok()?;
    let round_up = fraction.bytes().any(|b| b != b'0');
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(whole.saturating_add(u64::from(round_up)))
}

/// What an error status from Gemini usually means, for the hint, with the
/// facts Google's details give.
fn usual_meaning(status: u16, facts: &ErrorFacts) -> String {
    let retry = facts
        .retry_after
        .map(|s| format!("; Google asks to retry after {s}s"))
        .unwrap_or_default();
    let reason = facts
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match status {
        404 => "the model is retired, misspelled, or not enabled for this API key (list models with GET /v1beta/models)".to_owned(),
        400 => match &facts.field {
            Some(field) => format!("Google refused a field of the request: {field}"),
            None => format!("the request body or the API key was refused{reason} (see the upstream message)"),
        },
        401 | 403 => format!(
            "the API key or token is missing, invalid, or lacks permission for this model or project{reason}"
        ),
        413 => "the request is larger than Google accepts".to_owned(),
        429 => match &facts.quota {
            Some(quota) => format!("the quota {quota} is exhausted{retry}"),
            None => format!(
                "a quota or rate limit of this model or key is exhausted (free-tier keys have low per-minute and per-day limits){retry}"
            ),
        },
        500..=599 => format!(
            "a failure at the upstream, not in the routing; retry with backoff{retry}"
        ),
        _ => format!("the upstream refused the request{reason} (see the upstream message)"),
    }
}

/// One line a person can act on: where the model was sent, why, and what
/// the status usually means there (with the facts of Google's `details`).
pub fn hint(
    plan: &Plan,
    model_id: &str,
    status: u16,
    facts: &ErrorFacts,
    notice: Option<&Notice>,
) -> String {
    let family = plan.family;
    let rule = &plan.rule;
    let from = endpoint_label(plan.from);
    let to = endpoint_label(plan.to);
    // A 404 for a model past its shutdown: say so, and name the replacement.
    let shut_down = notice
        .filter(|_| status == 404)
        .and_then(|n| n.shut_down_sentence(model_id));
    if let Some(sentence) = shut_down {
        let sent = if plan.from == plan.to {
            from
        } else {
            format!("{to} instead of {from}")
        };
        return format!(
            "{sentence}. gemini-router sent it to {sent} (family {family}, rule {rule}), where Google answers 404 for it."
        );
    }
    let mut out = family_sentence(model_id, plan);
    let meaning = || usual_meaning(status, facts);
    let _ = match plan.verdict {
        Verdict::Rewritten if plan.from != plan.to => write!(
            out,
            "; gemini-router sent it to {to} instead of {from}, because {from} does not serve {family} models. A {status} from {to} usually means {}.",
            meaning()
        ),
        Verdict::Rewritten => write!(
            out,
            "; gemini-router sent it to {to} on the configured API base. A {status} there usually means {}.",
            meaning()
        ),
        Verdict::Unchanged => write!(
            out,
            " and was sent to {from}, which serves {family} models. A {status} there usually means {}.",
            meaning()
        ),
        Verdict::NoTranslator => write!(
            out,
            ", served by {serving}, not by {from}; gemini-router has no translation from {from} to {serving}, so the request went to {from} unchanged. Call {serving} for this model.",
            serving = endpoint_label(plan.serving)
        ),
    };
    out
}

/// "`model_id` is in the `family` family (rule `rule`)", which hints
/// go on from.
fn family_sentence(model_id: &str, plan: &Plan) -> String {
    format!(
        "{model_id} is in the {} family (rule {})",
        plan.family, plan.rule
    )
}

/// One line for a translated exchange that failed: the client's request
/// could not be translated, or the upstream's 2xx answer could not be
/// returned in the client's shape (no image, unexpected body).
pub fn translation_hint(plan: &Plan, model_id: &str, error_kind: &TranslateError) -> String {
    let from = endpoint_label(plan.from);
    let to = endpoint_label(plan.to);
    let error = error_kind.to_string();
    let error = error.trim_end_matches('.');
    let mut out = family_sentence(model_id, plan);
    let _ = match error_kind {
        TranslateError::InvalidRequest(_)
        | TranslateError::NoPrompt
        | TranslateError::TooManyValues {
            side: Side::Request,
            ..
        }
        | TranslateError::TooLarge {
            side: Side::Request,
            ..
        } => write!(
            out,
            ", served by {to}; gemini-router translates {from} requests to {to} and could not translate this one: {error}."
        ),
        TranslateError::InvalidResponse(_)
        | TranslateError::NoImage(_)
        | TranslateError::TooManyValues {
            side: Side::Response,
            ..
        }
        | TranslateError::TooLarge {
            side: Side::Response,
            ..
        } => write!(
            out,
            "; gemini-router sent it to {to} instead of {from}, which answered with success, but {error}."
        ),
    };
    out
}

/// Longest diagnostic header value, in bytes; longer values are cut.
pub const MAX_HEADER_VALUE: usize = 1024;

/// A header-safe form of `text`: printable ASCII kept, anything else
/// (CR, LF and other control characters, non-ASCII) escaped, and at most
/// [`MAX_HEADER_VALUE`] bytes. Diagnostic values can carry text from the
/// upstream (a block reason), which must never split or add a header.
pub fn header_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_HEADER_VALUE));
    for c in text.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
        if out.len() >= MAX_HEADER_VALUE {
            out.truncate(MAX_HEADER_VALUE - 3);
            out.push_str("...");
            break;
        }
    }
    out
}

/// The diagnostic response headers for a routed request, the request's
/// credential values (`secrets`) replaced by `REDACTED` in each before it
/// is cut to [`MAX_HEADER_VALUE`]: a key cut in two is no longer found,
/// and its first part would go out.
pub fn diagnostic_headers(
    plan: &Plan,
    model_id: &str,
    original_path: &str,
    upstream_path: &str,
    hint: &str,
    secrets: &[Secret],
) -> Vec<(&'static str, String)> {
    let value = |text: &str| header_value(&scrub_str(text, secrets));
    vec![
        (DIAG_MODEL, value(model_id)),
        (DIAG_FAMILY, plan.family.as_str().to_owned()),
        (DIAG_ORIGINAL_PATH, value(&redact_key(original_path))),
        (DIAG_UPSTREAM_PATH, value(&redact_key(upstream_path))),
        (DIAG_RULE, value(&plan.rule.to_string())),
        (DIAG_HINT, value(hint)),
    ]
}

/// Google's error object from a body that is `{"error": {...}}` or a list
/// of those, taken as `#[serde(untagged)] enum { List(Vec<Envelope>),
/// Object(Envelope) }` with `struct Envelope { error: Map<String, Value> }`
/// takes it (list first: serde also reads a one-element list as a struct),
/// without the buffered copy of the body untagged enums need: the body is
/// read whole, and the scanner says where an object repeats `error` (the
/// derived envelope refuses that; a read object keeps the last one).
fn google_error(body: &[u8]) -> Option<Object> {
    match crate::reader::document(body, crate::tree::value).ok()? {
        object @ Json::Object(_) => is_envelope(&object, body)
            .then(|| envelope_error(object))
            .flatten(),
        Json::Array(items) => {
            let raws = scan::array_elements(body).ok()?;
            let envelopes = items.len() == raws.len()
                && items
                    .iter()
                    .zip(raws)
                    .all(|(item, raw)| is_envelope(item, raw));
            match (envelopes, items.len()) {
                // `List`: every element an envelope; the first one's error.
                (true, _) => items.into_iter().next().and_then(envelope_error),
                // `Object` from a list: its one field, the error itself.
                (false, 1) => match items.into_iter().next() {
                    Some(Json::Object(error)) => Some(error),
                    _ => None,
                },
                (false, _) => None,
            }
        }
        _ => None,
    }
}

/// Whether `value` (whose JSON text is `raw`) reads as an envelope: an
/// object with one `error`, an object; or a list of exactly one object, the
/// envelope's one field.
fn is_envelope(value: &Json, raw: &[u8]) -> bool {
    match value {
        Json::Object(object) => {
            matches!(object.get("error"), Some(Json::Object(_)))
                && matches!(scan::top_level_fields(raw, ["error"]), Ok([Some(_)]))
        }
        Json::Array(fields) => matches!(fields.as_slice(), [Json::Object(_)]),
        _ => false,
    }
}

/// The error object of an envelope (see [`is_envelope`]).
fn envelope_error(envelope: Json) -> Option<Object> {
    let error = match envelope {
        Json::Object(mut object) => object.remove("error")?,
        Json::Array(fields) => fields.into_iter().next()?,
        _ => return None,
    };
    match error {
        Json::Object(error) => Some(error),
        _ => None,
    }
}

/// Google's canonical status name for an HTTP status.
pub fn google_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// The OpenAI error type for a Google status, as the best gateways map it.
pub fn openai_type(google_status: &str) -> &'static str {
    match google_status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => "invalid_request_error",
        "NOT_FOUND" => "not_found_error",
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => "authentication_error",
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        _ => "api_error",
    }
}

/// Largest upstream error body the filter reads and rewrites (64 KiB).
/// Google's errors are a few KB; a larger error body keeps its bytes and
/// streams through, and only the diagnostic headers are added.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Google's error object from an upstream error body (the list unwrapped),
/// or one made from the status and the body's text when the body is not a
/// Google error: its first 512 bytes, the request's credential values
/// (`secrets`) scrubbed before the cut (a key cut in two would no longer be
/// found in what the filter writes). Only called on bodies of at most
/// [`MAX_ERROR_BODY`] bytes.
pub(crate) fn parse_error(status: u16, upstream: &[u8], secrets: &[Secret]) -> Object {
    let parsed = google_error(upstream);
    parsed.unwrap_or_else(|| {
        let scrubbed = scrub(upstream, secrets);
        let text = String::from_utf8_lossy(scrubbed.as_deref().unwrap_or(upstream));
        let text = text.trim();
        let message = if text.is_empty() {
            format!("upstream answered {status} with an empty body")
        } else {
            format!("upstream answered {status}: {}", truncate(text, 512))
        };
        google_object(status, message)
    })
}

/// Google's error object: `{"code", "message", "status"}`.
fn google_object(status: u16, message: String) -> Object {
    let mut error = Object::default();
    error.insert("code", Json::from(status));
    error.insert("message", Json::String(message));
    error.insert("status", Json::from(google_status(status)));
    error
}

/// Rewrites an upstream error body for the client: Google's object (list
/// unwrapped) with the hint appended to its message, or the OpenAI shape.
/// A body that is not a Google error is kept as the message text. (The
/// filter does this in two steps, [`parse_error`] then [`client_error`],
/// reading facts in between; the tests check both at once.)
#[cfg(test)]
fn error_body(
    shape: ErrorShape,
    status: u16,
    upstream: &[u8],
    hint: &str,
    secrets: &[Secret],
) -> Vec<u8> {
    client_error(shape, status, parse_error(status, upstream, secrets), hint)
}

/// The client's error body from Google's error object and the hint.
pub(crate) fn client_error(
    shape: ErrorShape,
    status: u16,
    mut error: Object,
    hint: &str,
) -> Vec<u8> {
    let upstream_message = error
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    let message = if upstream_message.is_empty() {
        format!("gemini-router: {hint}")
    } else {
        format!("{upstream_message} (gemini-router: {hint})")
    };
    match shape {
        ErrorShape::Google => {
            error.insert("message", Json::String(message));
            if !error.contains_key("code") {
                error.insert("code", Json::from(status));
            }
            if !error.contains_key("status") {
                error.insert("status", Json::from(google_status(status)));
            }
            error.error_body()
        }
        ErrorShape::OpenAi => {
            let google = error
                .get("status")
                .and_then(Json::as_str)
                .unwrap_or_else(|| google_status(status))
                .to_owned();
            openai_error(
                &message,
                openai_type(&google),
                None,
                &google.to_ascii_lowercase(),
            )
        }
    }
}

/// The filter's own error reply, in the client's shape.
pub fn local_error(
    shape: ErrorShape,
    status: u16,
    message: &str,
    code: &str,
    param: Option<&str>,
) -> Vec<u8> {
    match shape {
        ErrorShape::OpenAi => {
            openai_error(message, openai_type(google_status(status)), param, code)
        }
        ErrorShape::Google => google_object(status, message.to_owned()).error_body(),
    }
}

fn openai_error(message: &str, kind: &str, param: Option<&str>, code: &str) -> Vec<u8> {
    let mut error = Object::default();
    error.insert("message", Json::from(message));
    error.insert("type", Json::from(kind));
    error.insert("param", param.map_or(Json::Null, Json::from));
    error.insert("code", Json::from(code));
    error.error_body()
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Family;
    use crate::translate::NoImage;
    use serde_json::{json, Map, Value};

    fn plan(verdict: Verdict, from: Endpoint, to: Endpoint, serving: Endpoint) -> Plan {
        Plan {
            family: Family::Imagen,
            rule: crate::classify::RuleLabel::Builtin("imagen-*"),
            from,
            to,
            serving,
            verdict,
            path: None,
            headers: Vec::new(),
            client_sse: false,
            pair: crate::translate::pair_for(Family::Imagen, from, to),
        }
    }

    const COMPAT_404: &str = r#"[{"error":{"code":404,"message":"models/imagen-3.0-generate-002 is not found for API version v1main, or is not supported for predict. Call ListModels to see the list of available models and their supported methods.","status":"NOT_FOUND"}}]"#;

    #[test]
    fn hints_say_where_and_why() {
        let cases = [
            ("rewritten", plan(Verdict::Rewritten, Endpoint::ChatCompletions, Endpoint::Predict, Endpoint::Predict),
                "imagen-3 is in the imagen family (rule imagen-* (built-in)); gemini-router sent it to :predict instead of chat/completions"),
            ("unchanged", plan(Verdict::Unchanged, Endpoint::Predict, Endpoint::Predict, Endpoint::Predict),
                "was sent to :predict, which serves imagen models. A 404 there usually means the model is retired"),
            ("no translator", plan(Verdict::NoTranslator, Endpoint::GenerateContent, Endpoint::GenerateContent, Endpoint::Predict),
                "served by :predict, not by :generateContent; gemini-router has no translation"),
            ("rebased", plan(Verdict::Rewritten, Endpoint::Predict, Endpoint::Predict, Endpoint::Predict),
                "sent it to :predict on the configured API base"),
        ];
        for (name, plan, want) in cases {
            let got = hint(&plan, "imagen-3", 404, &ErrorFacts::default(), None);
            assert!(got.contains(want), "{name}: {got}");
            assert!(got.is_ascii() && !got.contains('\n'), "{name}: header-safe");
        }
    }

    #[test]
    fn diagnostic_headers_redact_keys() {
        let p = plan(
            Verdict::Rewritten,
            Endpoint::GenerateContent,
            Endpoint::Predict,
            Endpoint::Predict,
        );
        let headers = diagnostic_headers(
            &p,
            "imagen-3",
            "/v1beta/models/imagen-3:generateContent?key=SECRET",
            "/v1beta/models/imagen-3:predict?key=SECRET",
            "h",
            &[],
        );
        assert_eq!(headers.len(), 6);
        for (name, value) in &headers {
            assert!(!value.contains("SECRET"), "{name}: {value}");
        }
        assert_eq!(
            headers[3],
            (
                DIAG_UPSTREAM_PATH,
                "/v1beta/models/imagen-3:predict?key=REDACTED".to_owned()
            )
        );
    }

    #[test]
    fn a_key_is_scrubbed_before_a_long_value_is_cut() {
        let p = plan(
            Verdict::Rewritten,
            Endpoint::GenerateContent,
            Endpoint::Predict,
            Endpoint::Predict,
        );
        let key = "AIzaSECRETvalue0123";
        let secrets = [Secret(key.to_owned())];
        // The key under a name that is no credential parameter, where the
        // cut falls inside it; a hint that quotes it there too.
        // (A value of MAX_HEADER_VALUE bytes or more keeps MAX_HEADER_VALUE - 3:
        // the key's 19 bytes whole, then 12 of them, then 8.)
        for at in [
            MAX_HEADER_VALUE - 21,
            MAX_HEADER_VALUE - 15,
            MAX_HEADER_VALUE - 11,
        ] {
            let head = "/v1beta/models/imagen-3:generateContent?note=";
            let path = format!("{head}{}{key}", "x".repeat(at - head.len()));
            let hint = format!("{}{key}", "h".repeat(at));
            let headers = diagnostic_headers(&p, "imagen-3", &path, &path, &hint, &secrets);
            for (name, value) in &headers {
                assert!(value.len() <= MAX_HEADER_VALUE, "{name}: {}", value.len());
                // No part of the key that says more than its prefix.
                assert!(
                    !value.contains(&key[..8]),
                    "{name} at {at}: ...{}",
                    &value[value.len() - 24..]
                );
            }
        }
    }

    #[test]
    fn error_bodies_are_unwrapped_and_mapped() {
        struct Case {
            name: &'static str,
            shape: ErrorShape,
            status: u16,
            upstream: &'static str,
            want: Value,
        }
        let cases = [
            Case {
                name: "compat list to openai",
                shape: ErrorShape::OpenAi,
                status: 404,
                upstream: COMPAT_404,
                want: json!({"error": {
                    "message": "models/imagen-3.0-generate-002 is not found for API version v1main, or is not supported for predict. Call ListModels to see the list of available models and their supported methods. (gemini-router: HINT)",
                    "type": "not_found_error", "param": null, "code": "not_found"}}),
            },
            Case {
                name: "compat list to google",
                shape: ErrorShape::Google,
                status: 404,
                upstream: r#"[{"error":{"code":404,"message":"gone","status":"NOT_FOUND"}}]"#,
                want: json!({"error": {"code": 404, "message": "gone (gemini-router: HINT)", "status": "NOT_FOUND"}}),
            },
            Case {
                name: "native object keeps details",
                shape: ErrorShape::Google,
                status: 400,
                upstream: r#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT","details":[{"@type":"x"}]}}"#,
                want: json!({"error": {"code": 400, "message": "bad (gemini-router: HINT)", "status": "INVALID_ARGUMENT", "details": [{"@type": "x"}]}}),
            },
            Case {
                name: "permission to openai",
                shape: ErrorShape::OpenAi,
                status: 403,
                upstream: r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
                want: json!({"error": {"message": "denied (gemini-router: HINT)", "type": "authentication_error", "param": null, "code": "permission_denied"}}),
            },
            Case {
                name: "html body",
                shape: ErrorShape::OpenAi,
                status: 404,
                upstream: "<html>Not Found</html>",
                want: json!({"error": {"message": "upstream answered 404: <html>Not Found</html> (gemini-router: HINT)", "type": "not_found_error", "param": null, "code": "not_found"}}),
            },
            Case {
                name: "empty body",
                shape: ErrorShape::Google,
                status: 404,
                upstream: "",
                want: json!({"error": {"code": 404, "message": "upstream answered 404 with an empty body (gemini-router: HINT)", "status": "NOT_FOUND"}}),
            },
            Case {
                name: "empty list",
                shape: ErrorShape::Google,
                status: 429,
                upstream: "[]",
                want: json!({"error": {"code": 429, "message": "upstream answered 429: [] (gemini-router: HINT)", "status": "RESOURCE_EXHAUSTED"}}),
            },
        ];
        for case in cases {
            let got: Value = serde_json::from_slice(&error_body(
                case.shape,
                case.status,
                case.upstream.as_bytes(),
                "HINT",
                &[],
            ))
            .unwrap();
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_key_in_upstream_text_is_scrubbed_before_the_text_is_cut() {
        let key = "AIzaSECRETvalue0123";
        // The cut keeps 512 bytes: of the key, 12, then 8.
        for kept in [12, 8] {
            let text = format!("{}{key} and more text after it", "t".repeat(512 - kept));
            let body = error_body(
                ErrorShape::Google,
                502,
                text.as_bytes(),
                "HINT",
                &[Secret(key.to_owned())],
            );
            let got = String::from_utf8(body).unwrap();
            assert!(!got.contains(&key[..8]), "{kept}: {got}");
            assert!(got.contains("REDACTED"), "{kept}: {got}");
        }
    }

    /// The error object as the derived untagged enum this module used to
    /// parse with takes it: `GoogleBody` must read every body the same.
    fn untagged_error(upstream: &str) -> Option<Map<String, Value>> {
        use serde::Deserialize;

        #[derive(Deserialize)]
        struct Envelope {
            error: Map<String, Value>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Untagged {
            List(Vec<Envelope>),
            Object(Envelope),
        }
        match serde_json::from_str::<Untagged>(upstream).ok()? {
            Untagged::Object(env) => Some(env.error),
            Untagged::List(list) => list.into_iter().next().map(|env| env.error),
        }
    }

    #[test]
    fn google_bodies_read_as_the_untagged_enum_reads_them() {
        let deep = format!(
            r#"{{"error":{{}},"x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let deep_error = format!(
            r#"{{"error":{{"x":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let cases: Vec<(&str, &str)> = vec![
            ("object", r#"{"error":{"code":400,"message":"bad"}}"#),
            (
                "object with other keys",
                r#"{"x":[1,{"y":2}],"error":{"code":1},"z":null}"#,
            ),
            (
                "object, error repeated",
                r#"{"error":{"a":1},"error":{"b":2}}"#,
            ),
            ("object, error not an object", r#"{"error":"no"}"#),
            ("object without error", r#"{"code":404}"#),
            ("empty object", "{}"),
            ("list", r#"[{"error":{"code":404,"message":"gone"}}]"#),
            ("list of two", r#"[{"error":{"a":1}},{"error":{"b":2}}]"#),
            ("empty list", "[]"),
            ("list of a bare error", r#"[{"code":404,"message":"gone"}]"#),
            (
                "list of a bare error, keys repeated",
                r#"[{"code":1,"code":2,"error":3,"error":4}]"#,
            ),
            (
                "list of an envelope, error repeated",
                r#"[{"error":{"a":1},"error":{"b":2}}]"#,
            ),
            ("list of two bare errors", r#"[{"code":1},{"code":2}]"#),
            (
                "list, second not an envelope",
                r#"[{"error":{"a":1}},{"code":2}]"#,
            ),
            ("list of a wrapped envelope", r#"[[{"code":1}]]"#),
            (
                "list of wrapped and plain",
                r#"[[{"a":1}],{"error":{"b":2}}]"#,
            ),
            ("wrapped with two", r#"[[{"a":1},{"b":2}]]"#),
            ("wrapped empty", "[[]]"),
            ("wrapped scalar", "[[1]]"),
            (
                "error repeated, once escaped",
                r#"{"\u0065rror":{"a":1},"error":{"b":2}}"#,
            ),
            ("escaped error key", r#"{"\u0065rror":{"a":1}}"#),
            (
                "error keys nested deeper",
                r#"{"x":{"error":1,"error":2},"error":{"a":[{"error":3}]}}"#,
            ),
            (
                "list, error repeated in the second",
                r#"[{"error":{}},{"error":{},"error":{}}]"#,
            ),
            ("whitespace around", " \n[ {\"error\" : {\"a\":1} } ]\t"),
            (
                "error key inside a string",
                r#"{"x":"\"error\":1","error":{"a":1}}"#,
            ),
            ("wrapped list", "[[[{}]]]"),
            ("wrapped list of a scalar", "[[[1]]]"),
            (
                "wrapped envelope and a bare error",
                r#"[[{"a":1}],{"b":2}]"#,
            ),
            (
                "a bare error in a list with an envelope",
                r#"[{"code":1},[{"a":1}]]"#,
            ),
            ("list of a scalar", "[1]"),
            ("list with a scalar", r#"[{"error":{}},1]"#),
            ("scalar", "404"),
            ("string", r#""error""#),
            ("null", "null"),
            ("html", "<html>Not Found</html>"),
            ("empty", ""),
            ("trailing text", r#"{"error":{}} x"#),
            ("truncated", r#"[{"error":{"code":4"#),
            (
                "duplicate keys inside error",
                r#"{"error":{"code":1,"code":2}}"#,
            ),
            (
                "numbers",
                r#"{"error":{"a":-0,"b":1e300,"c":18446744073709551616,"d":-1.5}}"#,
            ),
            ("number out of range", r#"{"error":{"b":1e400}}"#),
            ("nested too deep in an ignored key", &deep),
            ("nested too deep in the error", &deep_error),
        ];
        for (name, body) in cases {
            let got = google_error(body.as_bytes()).map(|error| Json::Object(error).to_value());
            assert_eq!(got, untagged_error(body).map(Value::Object), "{name}");
        }
    }

    #[test]
    fn error_bodies_are_the_compact_text() {
        let cases = [
            json!({"code": 404, "message": "a \"quoted\"\nline \u{1}", "status": "NOT_FOUND"}),
            json!({"b": [1, -2, 1.5, true], "a": {"z": null, "é": "ü"}}),
        ];
        for value in cases {
            let text = value.to_string();
            let Ok(Json::Object(error)) =
                crate::reader::document(text.as_bytes(), crate::tree::value)
            else {
                panic!("{text}");
            };
            assert_eq!(
                String::from_utf8(error.error_body()).unwrap(),
                format!(r#"{{"error":{text}}}"#),
            );
        }
    }

    #[test]
    fn local_errors_follow_the_client_shape() {
        let openai: Value = serde_json::from_slice(&local_error(
            ErrorShape::OpenAi,
            400,
            "bad model",
            "invalid_model",
            Some("model"),
        ))
        .unwrap();
        assert_eq!(
            openai,
            json!({"error": {"message": "bad model", "type": "invalid_request_error", "param": "model", "code": "invalid_model"}})
        );
        let google: Value = serde_json::from_slice(&local_error(
            ErrorShape::Google,
            400,
            "bad model",
            "invalid_model",
            None,
        ))
        .unwrap();
        assert_eq!(
            google,
            json!({"error": {"code": 400, "message": "bad model", "status": "INVALID_ARGUMENT"}})
        );
    }

    #[test]
    fn status_mapping() {
        let cases = [
            ("INVALID_ARGUMENT", "invalid_request_error"),
            ("FAILED_PRECONDITION", "invalid_request_error"),
            ("NOT_FOUND", "not_found_error"),
            ("PERMISSION_DENIED", "authentication_error"),
            ("UNAUTHENTICATED", "authentication_error"),
            ("RESOURCE_EXHAUSTED", "rate_limit_error"),
            ("INTERNAL", "api_error"),
            ("UNAVAILABLE", "api_error"),
        ];
        for (google, want) in cases {
            assert_eq!(openai_type(google), want, "{google}");
        }
    }

    #[test]
    fn header_values_cannot_split_or_add_headers() {
        let cases = [
            ("plain", "a model: ok", "a model: ok".to_owned()),
            (
                "crlf injection",
                "blocked\r\nx-injected: yes",
                "blocked\\r\\nx-injected: yes".to_owned(),
            ),
            ("bare lf", "a\nb", "a\\nb".to_owned()),
            ("control", "a\u{12}b", "a\\u{12}b".to_owned()),
            ("non-ascii", "caf\u{e9}", "caf\\u{e9}".to_owned()),
            (
                "long",
                &"x".repeat(5000),
                format!("{}...", "x".repeat(MAX_HEADER_VALUE - 3)),
            ),
        ];
        for (name, text, want) in cases {
            let got = header_value(text);
            assert_eq!(got, want, "{name}");
            assert!(
                got.bytes().all(|b| (0x20..0x7f).contains(&b)) && got.len() <= MAX_HEADER_VALUE,
                "{name}"
            );
        }
    }

    #[test]
    fn upstream_text_in_a_hint_stays_on_one_line() {
        let p = plan(
            Verdict::Rewritten,
            Endpoint::ImagesGenerations,
            Endpoint::GenerateContent,
            Endpoint::GenerateContent,
        );
        let error = TranslateError::NoImage(NoImage::Said("blocked\r\nx-injected: yes".into()));
        let hint = translation_hint(&p, "gemini-2.5-flash-image", &error);
        for (name, value) in
            diagnostic_headers(&p, "gemini-2.5-flash-image", "/a", "/b", &hint, &[])
        {
            assert!(
                !value.contains('\r') && !value.contains('\n'),
                "{name}: {value:?}"
            );
        }
    }
}
