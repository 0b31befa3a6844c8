//! Header names and metric names, in one place. The README has a table of each.

/// Request header carrying `Bearer KEY` for the OpenAI-compatibility layer.
pub const AUTHORIZATION: &str = "authorization";
/// Request header carrying the API key for the native API.
pub const GOOG_API_KEY: &str = "x-goog-api-key";
/// `content-length`, removed whenever a body is replaced.
pub const CONTENT_LENGTH: &str = "content-length";
/// `content-type`, set whenever a body is replaced.
pub const CONTENT_TYPE: &str = "content-type";
/// `content-encoding`: a compressed request body is not inspected.
pub const CONTENT_ENCODING: &str = "content-encoding";

/// Diagnostic response header: the bare model id.
pub const DIAG_MODEL: &str = "x-gemini-router-model";
/// Diagnostic response header: the model's family.
pub const DIAG_FAMILY: &str = "x-gemini-router-family";
/// Diagnostic response header: the path the client sent (`key=` redacted).
pub const DIAG_ORIGINAL_PATH: &str = "x-gemini-router-original-path";
/// Diagnostic response header: the path sent upstream (`key=` redacted).
pub const DIAG_UPSTREAM_PATH: &str = "x-gemini-router-upstream-path";
/// Diagnostic response header: the classification rule that matched.
pub const DIAG_RULE: &str = "x-gemini-router-rule";
/// Diagnostic response header: one line a person can act on.
pub const DIAG_HINT: &str = "x-gemini-router-hint";

/// `Deprecation` (RFC 9745): set on answers for a model with an announced
/// shutdown, from the lifecycle table.
pub const DEPRECATION: &str = "deprecation";
/// `Sunset` (RFC 8594): the model's shutdown date.
pub const SUNSET: &str = "sunset";
/// Lifecycle response header: the recommended replacement model.
pub const REPLACEMENT: &str = "x-gemini-router-replacement";

/// Migration response header: the model the client asked for.
pub const REQUESTED_MODEL: &str = "x-gemini-router-requested-model";
/// Migration response header: the model that served the request.
pub const SERVED_MODEL: &str = "x-gemini-router-served-model";

/// `accept-encoding`: removed from routed requests, so that an error or a
/// translated answer arrives uncompressed and can be rewritten.
pub const ACCEPT_ENCODING: &str = "accept-encoding";

/// `retry-after`: kept from the upstream, or set from Google's `RetryInfo`.
pub const RETRY_AFTER: &str = "retry-after";

/// JSON content type.
pub const JSON: &str = "application/json";
/// Server-sent events content type (streamed answers).
pub const EVENT_STREAM: &str = "text/event-stream";

/// Metric: every request the filter sees.
pub const METRIC_REQUESTS: &str = "gemini_router.requests_total";
/// Metric prefix: requests sent to another endpoint, by family.
pub const METRIC_REWRITTEN: &str = "gemini_router.rewritten";
/// Metric prefix: model requests already on a serving endpoint, by family.
pub const METRIC_UNCHANGED: &str = "gemini_router.unchanged";
/// Metric: requests whose body was translated.
pub const METRIC_TRANSLATED: &str = "gemini_router.translated";
/// Metric prefix: requests passed through without routing, by reason.
pub const METRIC_PASSTHROUGH: &str = "gemini_router.passthrough";
/// Metric: requests answered locally because the model name is unsafe.
pub const METRIC_REJECTED: &str = "gemini_router.rejected.invalid_model";
/// Metric: upstream error responses annotated with diagnostics.
pub const METRIC_ANNOTATED: &str = "gemini_router.annotated";
/// Metric prefix: requests sent to a replacement model, by the family of
/// the model asked for.
pub const METRIC_MIGRATED: &str = "gemini_router.migrated";
/// Metric prefix: live catalogue reads after a 404 (`fetched`, `cached`,
/// `failed`).
pub const METRIC_CATALOGUE: &str = "gemini_router.catalogue";
/// Metric prefix: chat UI background-task prompts for image models,
/// `served` by `task_model` or `answered` empty by the filter.
pub const METRIC_TASKS: &str = "gemini_router.tasks";
/// Metric: requests refused because they carry more than one credential.
pub const METRIC_REJECTED_CREDENTIALS: &str = "gemini_router.rejected.ambiguous_credentials";
/// Metric: translations that failed (request or response).
pub const METRIC_TRANSLATE_ERRORS: &str = "gemini_router.translate_errors";
/// Prefix of the thought-signature counters: `.stored`, `.too_large`,
/// `.restored`, `.bypassed`.
pub const METRIC_SIGNATURES: &str = "gemini_router.signatures";
/// Tool-call streams repaired (a missing `index` or a `stop` after tool calls).
pub const METRIC_STREAMS_REPAIRED: &str = "gemini_router.streams.repaired";
