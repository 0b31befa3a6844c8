//! The routing decision: which endpoint serves the model, the `:path` that
//! reaches it, and the header changes that go with it (the API key moves
//! between `Authorization: Bearer` and `x-goog-api-key` with the API style).
//!
//! Method choice ([`target`]) is kept apart from base-path choice
//! ([`render_path`]). The result is a [`Plan`]; the filter applies it.

use crate::classify::{Classification, RuleLabel};
use crate::config::Config;
use crate::endpoint::{ApiStyle, Endpoint, Family};
use crate::headers::{AUTHORIZATION, GOOG_API_KEY};
use crate::model::ModelName;
use crate::request::{split_query, ModelPath, OpenAiPath};
use crate::translate::{self, Pair};
use std::borrow::Cow;
use std::fmt;

/// The request as the client sent it.
#[derive(Debug, Clone, Copy)]
pub enum Client<'a> {
    /// OpenAI-style: model from the body.
    OpenAi(OpenAiPath<'a>),
    /// Native or Vertex: model from the path.
    Model(ModelPath<'a>),
}

impl Client<'_> {
    /// The endpoint the client called.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Client::OpenAi(p) => p.endpoint,
            Client::Model(p) => p.endpoint,
        }
    }

    /// The error shape the client reads.
    pub fn error_shape(&self) -> ErrorShape {
        match self {
            Client::OpenAi(_) => ErrorShape::OpenAi,
            Client::Model(_) => ErrorShape::Google,
        }
    }
}

/// Which error body a client can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error":{"message","type","param","code"}}`.
    OpenAi,
    /// `{"error":{"code","message","status"}}`.
    Google,
}

/// The credentials the request carries, read from its headers.
#[derive(Clone, Copy, Default)]
pub struct Auth<'a> {
    /// The `authorization` header.
    pub authorization: Option<&'a str>,
    /// The `x-goog-api-key` header.
    pub api_key: Option<&'a str>,
}

/// A header value that must never be logged: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

/// The credential headers a routed request carried, kept as sent and read
/// into [`secrets`] and [`api_key`] only when something needs them (an
/// answer the filter writes, a log line, the signature store): most
/// requests never do, and the work and the copies are then saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    authorization: Option<Secret>,
    api_key: Option<Secret>,
    /// A Vertex request: it carries no Developer API key.
    vertex: bool,
}

impl Credentials {
    /// The request's credential headers; `vertex` for a Vertex client.
    pub fn new(auth: Auth<'_>, vertex: bool) -> Credentials {
        let keep = |value: Option<&str>| value.map(|v| Secret(v.to_owned()));
        Credentials {
            authorization: keep(auth.authorization),
            api_key: keep(auth.api_key),
            vertex,
        }
    }

    fn auth(&self) -> Auth<'_> {
        Auth {
            authorization: self.authorization.as_ref().map(|s| s.0.as_str()),
            api_key: self.api_key.as_ref().map(|s| s.0.as_str()),
        }
    }

    /// [`secrets`] of these headers and `query` (the path's).
    pub fn secrets(&self, query: Option<&str>) -> Vec<Secret> {
        secrets(self.auth(), query)
    }

    /// [`api_key`] of these headers and `query`; `None` on Vertex.
    pub fn api_key(&self, query: Option<&str>) -> Option<Secret> {
        if self.vertex {
            return None;
        }
        api_key(self.auth(), query)
    }
}

impl fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("authorization", &self.authorization.map(|_| "<redacted>"))
            .field("api_key", &self.api_key.map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A change to a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    /// Set (replace) the header.
    Set(&'static str, Secret),
    /// Remove the header.
    Remove(&'static str),
}

/// What routing decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The request is already on an endpoint that serves the model.
    Unchanged,
    /// The request is sent to another endpoint.
    Rewritten,
    /// The endpoint does not serve the model, and there is no translator to
    /// the one that does: the request goes on as sent, and a 404 says why.
    NoTranslator,
}

/// The routing plan for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The model's family.
    pub family: Family,
    /// The rule that decided the family.
    pub rule: RuleLabel,
    /// The endpoint the client called.
    pub from: Endpoint,
    /// The endpoint the request is sent to (equal to `from` unless rewritten).
    pub to: Endpoint,
    /// The endpoint that serves the family in the configured style.
    pub serving: Endpoint,
    /// What was decided.
    pub verdict: Verdict,
    /// The new `:path`, when it changes.
    pub path: Option<String>,
    /// Header changes (auth moves).
    pub headers: Vec<HeaderOp>,
    /// The client called `:streamGenerateContent` with `alt=sse`.
    pub client_sse: bool,
    /// The translation from `from` to `to`, when their shapes differ.
    pub pair: Option<Pair>,
}

impl Plan {
    /// Whether the body must be translated (the endpoint's shape changes).
    pub fn translates(&self) -> bool {
        self.pair.is_some()
    }
}

/// Decides the plan for a client request for `model`.
pub fn plan(
    config: &Config,
    client: Client<'_>,
    model: &ModelName,
    class: Classification<'_>,
    stream: bool,
    auth: Auth<'_>,
    model_changed: bool,
) -> Plan {
    let family = class.family;
    let from = client.endpoint();
    // A Vertex client stays on Vertex, on its own project and location:
    // only the method changes. The other styles follow the configuration.
    let (style, serving) = match client {
        Client::Model(p) if p.style == ApiStyle::Vertex => {
            (ApiStyle::Vertex, native_endpoint(family, from, stream))
        }
        _ => target(config, family, from, stream),
    };
    let served = from.serves(family)
        && (from != Endpoint::ImagesGenerations || config.openai_images_serves(family));
    // A Developer-API path is re-rendered on Vertex when Vertex is the style.
    let rebase = matches!(client, Client::Model(p) if p.style == ApiStyle::Native)
        && style == ApiStyle::Vertex;

    // A request on an endpoint that serves its family stays there, unless
    // `family_styles` explicitly puts the family on another API style.
    let client_style = match client {
        Client::OpenAi(_) => ApiStyle::Openai,
        Client::Model(p) => p.style,
    };
    let forced = config.forced_style(family).is_some() && style != client_style;
    let keep = if rebase {
        Verdict::Rewritten
    } else {
        Verdict::Unchanged
    };

    // In the openai style, an image family's compat endpoint may have no
    // translator from the client's endpoint (a native `:generateContent`
    // for Imagen); its native method, which also serves it, may have one.
    let native = native_endpoint(family, from, stream);
    let fallback = (serving.is_openai() && native != from).then_some(native);

    let (verdict, to, to_style) = if from == serving || (served && !forced) {
        (keep, from, style)
    } else if translate::supports_for(family, from, serving) {
        (Verdict::Rewritten, serving, style)
    } else if let Some(native) = fallback.filter(|n| translate::supports_for(family, from, *n)) {
        (Verdict::Rewritten, native, ApiStyle::Native)
    } else if served {
        (keep, from, style)
    } else {
        (Verdict::NoTranslator, from, style)
    };

    // A model sent in place of the one asked for (its replacement) changes
    // the path (or the body) even where the endpoint stays.
    let verdict = if model_changed && verdict == Verdict::Unchanged {
        Verdict::Rewritten
    } else {
        verdict
    };

    let client_sse = matches!(client, Client::Model(p)
        if p.endpoint == Endpoint::StreamGenerateContent && param_value(p.query, "alt") == Some("sse"));

    let (path, headers) = if verdict == Verdict::Rewritten {
        let to_style = if to.is_openai() {
            ApiStyle::Openai
        } else {
            to_style
        };
        (
            Some(render_path(config, client, model, to, to_style)),
            move_auth(client, to_style, auth),
        )
    } else {
        (None, Vec::new())
    };

    Plan {
        family,
        rule: class.label(),
        from,
        to,
        serving,
        verdict,
        path,
        headers,
        client_sse,
        pair: translate::pair_for(family, from, to),
    }
}

/// The endpoint that serves `family`, and the API style it is reached in.
pub fn target(
    config: &Config,
    family: Family,
    from: Endpoint,
    stream: bool,
) -> (ApiStyle, Endpoint) {
    let style = config.style_for(family);
    if style == ApiStyle::Openai {
        let openai = match family {
            Family::Gemini => Some(Endpoint::ChatCompletions),
            Family::Embedding => Some(Endpoint::Embeddings),
            Family::Imagen | Family::GeminiImage if config.openai_images_serves(family) => {
                Some(Endpoint::ImagesGenerations)
            }
            _ => None,
        };
        if let Some(endpoint) = openai {
            return (ApiStyle::Openai, endpoint);
        }
        return (ApiStyle::Native, native_endpoint(family, from, stream));
    }
    (style, native_endpoint(family, from, stream))
}

fn native_endpoint(family: Family, from: Endpoint, stream: bool) -> Endpoint {
    match family {
        Family::Gemini | Family::GeminiImage if stream => Endpoint::StreamGenerateContent,
        Family::Gemini | Family::GeminiImage => Endpoint::GenerateContent,
        Family::Imagen => Endpoint::Predict,
        Family::Veo => Endpoint::PredictLongRunning,
        Family::Embedding if from == Endpoint::Embeddings => Endpoint::BatchEmbedContents,
        Family::Embedding => Endpoint::EmbedContent,
        Family::Aqa => Endpoint::GenerateAnswer,
    }
}

/// The `:path` that reaches `to` in `style` for this client and model.
fn render_path(
    config: &Config,
    client: Client<'_>,
    model: &ModelName,
    to: Endpoint,
    style: ApiStyle,
) -> String {
    if to.is_openai() {
        let prefix = match client {
            Client::OpenAi(p) => p.prefix,
            Client::Model(_) => config.openai_base_path.as_str(),
        };
        return concat(&[prefix, "/", to.as_str()]);
    }
    let query = match client {
        Client::Model(p) => native_query(p.query, to),
        Client::OpenAi(_) => native_query(None, to),
    };
    let (question, query) = if query.is_empty() {
        ("", "")
    } else {
        ("?", query.as_str())
    };
    let (collection, id) = (model.collection.as_str(), model.id.as_str());
    let resource = [collection, "/", id, ":", to.as_str(), question, query];
    match (client, style, &config.vertex) {
        (Client::Model(p), _, _) if p.style == style => {
            concat(&[&[p.prefix][..], &resource].concat())
        }
        (_, ApiStyle::Vertex, Some(v)) => concat(
            &[
                &[
                    "/",
                    &v.version,
                    "/projects/",
                    &v.project,
                    "/locations/",
                    &v.location,
                    "/publishers/",
                    &v.publisher,
                    "/",
                ][..],
                &resource,
            ]
            .concat(),
        ),
        _ => concat(&[&["/", &config.native_version, "/"][..], &resource].concat()),
    }
}

/// The client's query adjusted for the target: `alt=sse` added for a
/// `parts` joined into one string of the exact size (no formatting
/// machinery on the request path).
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| out.push_str(p));
    out
}

/// streaming target, and `alt` dropped for a non-streaming one.
fn native_query(query: Option<&str>, to: Endpoint) -> String {
    let streaming = to == Endpoint::StreamGenerateContent;
    let mut params: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && canonical_name(p) != "alt")
        .collect();
    if streaming {
        params.push("alt=sse");
    }
    params.join("&")
}

fn param_name(param: &str) -> &str {
    param.split_once('=').map_or(param, |(k, _)| k)
}

/// `text` with `%XX` escapes decoded (and `+` as a space, as in forms);
/// borrowed when there is nothing to decode. Invalid escapes stay as written.
pub fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// `text` percent-encoded for a query value: everything but RFC 3986
/// unreserved characters is escaped.
pub fn percent_encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A query parameter's name as Google reads it: percent-decoded, without
/// the `$` that marks a system parameter (`$key` is `key`).
fn canonical_name(param: &str) -> Cow<'_, str> {
    match percent_decode(param_name(param)) {
        Cow::Borrowed(name) => Cow::Borrowed(name.strip_prefix('$').unwrap_or(name)),
        Cow::Owned(name) => Cow::Owned(name.strip_prefix('$').unwrap_or(&name).to_owned()),
    }
}

/// Query parameters that carry a credential: Google's API key (`key`) and
/// OAuth token (`access_token`), and the names other Google and OAuth
/// front ends accept. Compared by decoded name, ignoring case.
const CREDENTIAL_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "access_token",
    "oauth_token",
    "bearer_token",
];

fn is_credential_param(param: &str) -> bool {
    // Lowercased once and compared exactly: `eq_ignore_ascii_case` against
    // each name unrolled into six case-folding loops.
    let name = canonical_name(param).to_ascii_lowercase();
    CREDENTIAL_PARAMS.contains(&name.as_str())
}

fn param_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find(|p| canonical_name(p) == name)
        .map(|p| p.split_once('=').map_or("", |(_, v)| v))
}

/// The values of the API key parameter (`key`, however its name is
/// encoded), as written.
fn query_keys(query: Option<&str>) -> impl Iterator<Item = &str> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty() && canonical_name(p) == "key")
        .map(|p| p.split_once('=').map_or("", |(_, v)| v))
}

/// Moves the API key to the header the target API reads.
fn move_auth(client: Client<'_>, to_style: ApiStyle, auth: Auth<'_>) -> Vec<HeaderOp> {
    match (client, to_style) {
        (Client::OpenAi(_), ApiStyle::Native) => {
            let bearer = auth.authorization.and_then(bearer_token);
            match bearer {
                Some(key) => vec![
                    HeaderOp::Set(GOOG_API_KEY, Secret(key.to_owned())),
                    HeaderOp::Remove(AUTHORIZATION),
                ],
                None => Vec::new(),
            }
        }
        (Client::Model(p), ApiStyle::Openai) if p.style == ApiStyle::Native => {
            let key = match auth.api_key {
                Some(key) => Some(Cow::Borrowed(key.trim_ascii())),
                None => param_value(p.query, "key").map(percent_decode),
            };
            // Only a key that is one visible-ASCII token becomes a header value.
            match key {
                Some(key) if !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()) => vec![
                    HeaderOp::Set(AUTHORIZATION, Secret(format!("Bearer {key}"))),
                    HeaderOp::Remove(GOOG_API_KEY),
                ],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

fn bearer_token(value: &str) -> Option<&str> {
    // A byte search: `split_once(' ')` goes through the generic char
    // searcher.
    let value = value.trim_ascii();
    let space = value.bytes().position(|b| b == b' ')?;
    let (scheme, token) = (value.get(..space)?, value.get(space + 1..)?);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `path` with the value of every credential query parameter (`key`,
/// `access_token` and the other [`CREDENTIAL_PARAMS`], by decoded name)
/// replaced by `REDACTED`, for diagnostics and logs. The parameter name
/// stays as written, so a reader sees a credential was sent.
pub fn redact_key(path: &str) -> String {
    let (base, Some(query)) = split_query(path) else {
        return path.to_owned();
    };
    let mut out = String::with_capacity(path.len());
    out.push_str(base);
    out.push('?');
    for (i, p) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        if is_credential_param(p) {
            out.push_str(param_name(p));
            out.push_str("=REDACTED");
        } else {
            out.push_str(p);
        }
    }
    out
}

/// `path` as it may be logged: every credential parameter's value
/// redacted ([`redact_key`]), and `secrets` (the request's credential
/// values, [`secrets`]) scrubbed wherever else they appear, such as under a
/// parameter that is no credential name.
pub fn loggable(path: &str, secrets: &[Secret]) -> String {
    let redacted = redact_key(path);
    if let Cow::Owned(clean) = scrub_str(&redacted, secrets) {
        return clean;
    }
    redacted
}

/// The credential values a request carries (the bearer token or
/// `authorization` value, `x-goog-api-key`, the `key` parameter as written
/// and decoded), for scrubbing them from text the upstream sends back.
/// Only values that look like a credential are kept: at least 8 bytes of
/// token characters (`A-Z a-z 0-9 . _ ~ + / = % -`) with a letter among them.
/// Such a value can only occur inside a JSON string, so replacing it never
/// breaks the JSON it is scrubbed from; and no Google credential is shorter.
pub fn secrets(auth: Auth<'_>, query: Option<&str>) -> Vec<Secret> {
    let mut out: Vec<Secret> = Vec::new();
    let mut add = |value: &str| {
        let value = value.trim_ascii();
        let token = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~+/=%-".contains(&b));
        let credential_like =
            value.len() >= 8 && token && value.bytes().any(|b| b.is_ascii_alphabetic());
        if credential_like && !out.iter().any(|s| s.0 == value) {
            out.push(Secret(value.to_owned()));
        }
    };
    if let Some(a) = auth.authorization {
        add(bearer_token(a).unwrap_or(a));
    }
    if let Some(k) = auth.api_key {
        add(k);
    }
    for key in query_keys(query) {
        add(key);
        add(&percent_decode(key));
    }
    out
}

/// Whether byte `i` of JSON text is part of an escape's code: the byte
/// after an escaping backslash, or one of the four hex digits of `\uXXXX`.
/// A backslash escapes only when the run of backslashes it ends is odd:
/// `\\` is a backslash, and what follows it is text.
fn in_escape(text: &[u8], i: usize) -> bool {
    let escapes_next =
        |p: usize| text[..=p].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1;
    if i > 0 && escapes_next(i - 1) {
        return true;
    }
    // `\uXXXX` with byte i among the XXXX: the backslash 2 to 5 bytes back.
    (2..=5).any(|back| {
        i >= back && text[i - back] == b'\\' && text[i - back + 1] == b'u' && escapes_next(i - back)
    })
}

/// `text` (a path, a header value: no JSON) with every occurrence of a
/// secret replaced by `REDACTED`. `None` when there is nothing to replace.
pub fn scrub(text: &[u8], secrets: &[Secret]) -> Option<Vec<u8>> {
    replace_secrets(text, secrets, |_, _| false)
}

/// [`scrub`] for text: borrowed as it is when it holds no secret. (A secret
/// is ASCII ([`secrets`]), so what replaces it keeps the text UTF-8.)
pub fn scrub_str<'t>(text: &'t str, secrets: &[Secret]) -> Cow<'t, str> {
    match scrub(text.as_bytes(), secrets) {
        Some(clean) => Cow::Owned(String::from_utf8_lossy(&clean).into_owned()),
        None => Cow::Borrowed(text),
    }
}

/// [`scrub`] for JSON the filter wrote (an error body), where an occurrence
/// that starts inside an escape's code is left: `\n` before a secret that
/// starts with `n`, or the hex digits of `\u0041`, are no occurrence in
/// the decoded text, and replacing them would break the escape. One after
/// an escaped backslash (`\\`) is an occurrence, and replaced. The
/// filter's writer escapes only quotes, backslashes and control bytes,
/// which no secret holds ([`secrets`]), so a secret in the decoded text is
/// in the written text byte for byte.
pub fn scrub_json(text: &[u8], secrets: &[Secret]) -> Option<Vec<u8>> {
    replace_secrets(text, secrets, in_escape)
}

/// `text` with each secret replaced by `REDACTED` wherever it occurs and
/// `skip(text, start)` is false; `None` when nothing is replaced.
fn replace_secrets(
    text: &[u8],
    secrets: &[Secret],
    skip: impl Fn(&[u8], usize) -> bool,
) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for secret in secrets {
        let needle = secret.0.as_bytes();
        let current = out.as_deref().unwrap_or(text);
        let found = |i: usize| current[i..].starts_with(needle) && !skip(current, i);
        // The text before the first occurrence is copied as it is.
        let Some(first) = (0..current.len()).find(|&i| found(i)) else {
            continue;
        };
        let mut next = Vec::with_capacity(current.len());
        next.extend_from_slice(&current[..first]);
        let mut i = first;
        while i < current.len() {
            if found(i) {
                next.extend_from_slice(b"REDACTED");
                i += needle.len();
            } else {
                next.push(current[i]);
                i += 1;
            }
        }
        out = Some(next);
    }
    out
}

/// The Developer API key a request carries: `x-goog-api-key`, else the
/// bearer token, else the `key` query parameter (decoded).
pub fn api_key(auth: Auth<'_>, query: Option<&str>) -> Option<Secret> {
    let key = auth
        .api_key
        .map(|k| k.trim_ascii().to_owned())
        .or_else(|| auth.authorization.and_then(bearer_token).map(str::to_owned))
        .or_else(|| {
            query_keys(query)
                .next()
                .map(|k| percent_decode(k).into_owned())
        })?;
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic())).then_some(Secret(key))
}

/// Why the credentials of a request are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// A credential header or parameter is given more than once (Envoy
    /// joins repeated headers with a comma).
    Repeated(&'static str),
    /// Two different credentials: which one Google would use is a guess.
    Conflicting,
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialError::Repeated(what) => write!(
                f,
                "{what} is given more than once; send exactly one credential"
            ),
            CredentialError::Conflicting => f.write_str(
                "the request carries two different credentials (among the authorization header, x-goog-api-key and the key query parameter); send exactly one",
            ),
        }
    }
}

impl std::error::Error for CredentialError {}

/// Checks that a request carries at most one credential: no credential
/// header or `key` parameter repeated, and no two different keys among
/// them. The same key given in two places counts as one.
pub fn check_credentials(auth: Auth<'_>, query: Option<&str>) -> Result<(), CredentialError> {
    // A byte search, as in `split_query`.
    let repeated = |v: &str| v.bytes().any(|b| b == b',');
    if auth.authorization.is_some_and(repeated) {
        return Err(CredentialError::Repeated("the authorization header"));
    }
    if auth.api_key.is_some_and(repeated) {
        return Err(CredentialError::Repeated("the x-goog-api-key header"));
    }
    // No API key header and no query: one credential at most, which
    // nothing can contradict (most requests: a bearer token alone).
    if auth.api_key.is_none() && query.is_none() {
        return Ok(());
    }
    let mut keys = query_keys(query);
    let query_key = keys.next();
    if keys.next().is_some() {
        return Err(CredentialError::Repeated("the key query parameter"));
    }
    let query_key = query_key.map(percent_decode);
    let bearer = auth.authorization.and_then(bearer_token);
    let mut seen: Option<&str> = None;
    let candidates = [
        bearer.or(auth.authorization.map(str::trim_ascii)),
        auth.api_key.map(str::trim_ascii),
        query_key.as_deref(),
    ];
    for value in candidates.into_iter().flatten() {
        match seen {
            Some(first) if first != value => return Err(CredentialError::Conflicting),
            _ => seen = Some(value),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{recognize, Recognized};

    fn client(path: &'static str) -> Client<'static> {
        match recognize("POST", path) {
            Recognized::OpenAi(p) => Client::OpenAi(p),
            Recognized::Model(p) => Client::Model(p),
            Recognized::Unrouted => panic!("unrouted: {path}"),
        }
    }

    struct Case {
        name: &'static str,
        config: &'static str,
        path: &'static str,
        model: &'static str,
        stream: bool,
        want_verdict: Verdict,
        want_path: Option<&'static str>,
        want_to: Endpoint,
    }

    fn run(config: &str, path: &'static str, model: &str, stream: bool, auth: Auth<'_>) -> Plan {
        let config = Config::from_bytes(config.as_bytes()).unwrap();
        let model = ModelName::parse(model, 128).unwrap();
        let class = config.classifier.classify(&model.id);
        plan(&config, client(path), &model, class, stream, auth, false)
    }

    #[test]
    fn routes_by_family_and_style() {
        use Endpoint as E;
        use Verdict::{NoTranslator, Rewritten, Unchanged};
        let vertex = r#"{"api_style":"vertex","vertex":{"project":"p","location":"us-central1"}}"#;
        let cases = [
            Case { name: "gemini chat stays", config: "", path: "/v1beta/openai/chat/completions",
                model: "gemini-2.5-flash", stream: true, want_verdict: Unchanged, want_path: None, want_to: E::ChatCompletions },
            Case { name: "gemini chat stays in openai style", config: r#"{"api_style":"openai"}"#, path: "/v1beta/openai/chat/completions",
                model: "models/gemini-2.5-flash", stream: false, want_verdict: Unchanged, want_path: None, want_to: E::ChatCompletions },
            Case { name: "native generate stays", config: "", path: "/v1beta/models/gemini-2.5-flash:generateContent",
                model: "gemini-2.5-flash", stream: false, want_verdict: Unchanged, want_path: None, want_to: E::GenerateContent },
            Case { name: "native stream sse stays", config: "", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                model: "gemini-2.5-flash", stream: true, want_verdict: Unchanged, want_path: None, want_to: E::StreamGenerateContent },
            Case { name: "countTokens stays", config: "", path: "/v1beta/models/gemini-2.5-flash:countTokens",
                model: "gemini-2.5-flash", stream: false, want_verdict: Unchanged, want_path: None, want_to: E::CountTokens },
            Case { name: "vertex rebases native stream", config: vertex, path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                model: "gemini-2.5-flash", stream: true, want_verdict: Rewritten,
                want_path: Some("/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
                want_to: E::StreamGenerateContent },
            Case { name: "vertex rebase adds alt=sse", config: vertex, path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                model: "gemini-2.5-flash", stream: true, want_verdict: Rewritten,
                want_path: Some("/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
                want_to: E::StreamGenerateContent },
            Case { name: "vertex path stays in vertex style", config: vertex,
                path: "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-flash:generateContent",
                model: "gemini-2.5-flash", stream: false, want_verdict: Unchanged, want_path: None, want_to: E::GenerateContent },
            Case { name: "veo on generateContent has no translator", config: "", path: "/v1beta/models/veo-3.0-generate-001:generateContent",
                model: "veo-3.0-generate-001", stream: false, want_verdict: NoTranslator, want_path: None, want_to: E::GenerateContent },
            Case { name: "veo on chat has no translator", config: "", path: "/v1beta/openai/chat/completions",
                model: "veo-3.0-generate-001", stream: false, want_verdict: NoTranslator, want_path: None, want_to: E::ChatCompletions },
            Case { name: "embedding on native stays", config: "", path: "/v1beta/models/gemini-embedding-001:embedContent",
                model: "gemini-embedding-001", stream: false, want_verdict: Unchanged, want_path: None, want_to: E::EmbedContent },
            Case { name: "veo on its method stays", config: "", path: "/v1beta/models/veo-3.0-generate-001:predictLongRunning",
                model: "veo-3.0-generate-001", stream: false, want_verdict: Unchanged, want_path: None, want_to: E::PredictLongRunning },
        ];
        for case in &cases {
            let got = run(
                case.config,
                case.path,
                case.model,
                case.stream,
                Auth::default(),
            );
            assert_eq!(
                (got.verdict, got.path.as_deref(), got.to),
                (case.want_verdict, case.want_path, case.want_to),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn rewrites_where_a_translator_exists() {
        // (name, config, client path, model, stream, want path or "" for unchanged)
        let images_openai =
            r#"{"api_style":"openai","openai_images_families":["imagen","gemini_image"]}"#;
        let cases = [
            (
                "chat imagen",
                "",
                "/v1beta/openai/chat/completions",
                "imagen-4.0-generate-001",
                false,
                "/v1beta/models/imagen-4.0-generate-001:predict",
            ),
            (
                "chat gemini image stream",
                "",
                "/v1beta/openai/chat/completions",
                "gemini-2.5-flash-image",
                true,
                "/v1beta/models/gemini-2.5-flash-image:streamGenerateContent?alt=sse",
            ),
            (
                "native generate imagen keeps the key query",
                "",
                "/v1beta/models/imagen-4.0-generate-001:generateContent?key=K",
                "imagen-4.0-generate-001",
                false,
                "/v1beta/models/imagen-4.0-generate-001:predict?key=K",
            ),
            (
                "native predict gemini image",
                "",
                "/v1beta/models/gemini-2.5-flash-image:predict",
                "gemini-2.5-flash-image",
                false,
                "/v1beta/models/gemini-2.5-flash-image:generateContent",
            ),
            (
                "chat imagen openai style",
                r#"{"api_style":"openai","openai_images_families":["imagen"]}"#,
                "/v1beta/openai/chat/completions",
                "imagen-4.0-generate-001",
                false,
                "/v1beta/openai/images/generations",
            ),
            (
                "native generate imagen, openai style, falls back to predict",
                images_openai,
                "/v1beta/models/imagen-4.0-generate-001:generateContent",
                "imagen-4.0-generate-001",
                false,
                "/v1beta/models/imagen-4.0-generate-001:predict",
            ),
            (
                "native predict gemini image, openai style, falls back to generateContent",
                images_openai,
                "/v1beta/models/gemini-2.5-flash-image:predict",
                "gemini-2.5-flash-image",
                false,
                "/v1beta/models/gemini-2.5-flash-image:generateContent",
            ),
            (
                "imagen predict stays in openai style",
                images_openai,
                "/v1beta/models/imagen-4.0-generate-001:predict",
                "imagen-4.0-generate-001",
                false,
                "",
            ),
            (
                "images untrusted go native",
                "",
                "/v1beta/openai/images/generations",
                "imagen-4.0-generate-001",
                false,
                "/v1beta/models/imagen-4.0-generate-001:predict",
            ),
            (
                "images trusted stay",
                images_openai,
                "/v1beta/openai/images/generations",
                "imagen-4.0-generate-001",
                false,
                "",
            ),
            (
                "embeddings stay on compat",
                "",
                "/v1beta/openai/embeddings",
                "text-embedding-004",
                false,
                "",
            ),
            (
                "embeddings forced native",
                r#"{"family_styles":{"embedding":"native"}}"#,
                "/v1beta/openai/embeddings",
                "text-embedding-004",
                false,
                "/v1beta/models/text-embedding-004:batchEmbedContents",
            ),
            (
                "native embed stays native",
                r#"{"api_style":"openai"}"#,
                "/v1beta/models/gemini-embedding-001:embedContent?key=K",
                "gemini-embedding-001",
                false,
                "",
            ),
            (
                "native embed forced to openai",
                r#"{"family_styles":{"embedding":"openai"}}"#,
                "/v1beta/models/gemini-embedding-001:embedContent?key=K",
                "gemini-embedding-001",
                false,
                "/v1beta/openai/embeddings",
            ),
        ];
        for (name, config, path, model, stream, want) in cases {
            let got = run(config, path, model, stream, Auth::default());
            if want.is_empty() {
                assert_eq!(
                    (got.verdict, got.path.as_deref(), got.translates()),
                    (Verdict::Unchanged, None, false),
                    "{name}"
                );
            } else {
                assert_eq!(
                    (got.verdict, got.path.as_deref(), got.translates()),
                    (Verdict::Rewritten, Some(want), true),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn the_openai_fallback_to_a_native_method_keeps_the_native_key_header() {
        let config = r#"{"api_style":"openai","openai_images_families":["imagen"]}"#;
        let path = "/v1beta/models/imagen-4.0-generate-001:generateContent";
        let auth = Auth {
            authorization: None,
            api_key: Some("K"),
        };
        let got = run(config, path, "imagen-4.0-generate-001", false, auth);
        assert_eq!(
            (got.to, got.headers),
            (Endpoint::Predict, vec![]),
            "native to native keeps x-goog-api-key"
        );
    }

    #[test]
    fn auth_moves_with_the_style() {
        let openai = client("/v1beta/openai/chat/completions");
        let native = client("/v1beta/models/m:embedContent?key=QK");
        let bearer = Auth {
            authorization: Some("Bearer K1"),
            api_key: None,
        };
        let cases = [
            (
                "openai to native",
                openai,
                ApiStyle::Native,
                bearer,
                vec![
                    HeaderOp::Set(GOOG_API_KEY, Secret("K1".into())),
                    HeaderOp::Remove(AUTHORIZATION),
                ],
            ),
            (
                "openai to native, lowercase scheme",
                openai,
                ApiStyle::Native,
                Auth {
                    authorization: Some("bearer  K1 "),
                    api_key: None,
                },
                vec![
                    HeaderOp::Set(GOOG_API_KEY, Secret("K1".into())),
                    HeaderOp::Remove(AUTHORIZATION),
                ],
            ),
            (
                "openai to native, no key",
                openai,
                ApiStyle::Native,
                Auth::default(),
                vec![],
            ),
            (
                "openai to native, basic auth",
                openai,
                ApiStyle::Native,
                Auth {
                    authorization: Some("Basic abc"),
                    api_key: None,
                },
                vec![],
            ),
            (
                "openai to vertex untouched",
                openai,
                ApiStyle::Vertex,
                bearer,
                vec![],
            ),
            (
                "native header to openai",
                native,
                ApiStyle::Openai,
                Auth {
                    authorization: None,
                    api_key: Some("HK"),
                },
                vec![
                    HeaderOp::Set(AUTHORIZATION, Secret("Bearer HK".into())),
                    HeaderOp::Remove(GOOG_API_KEY),
                ],
            ),
            (
                "native query to openai",
                native,
                ApiStyle::Openai,
                Auth::default(),
                vec![
                    HeaderOp::Set(AUTHORIZATION, Secret("Bearer QK".into())),
                    HeaderOp::Remove(GOOG_API_KEY),
                ],
            ),
        ];
        for (name, client, style, auth, want) in cases {
            assert_eq!(move_auth(client, style, auth), want, "{name}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let op = HeaderOp::Set(GOOG_API_KEY, Secret("SECRET".into()));
        assert!(!format!("{op:?}").contains("SECRET"));
    }

    #[test]
    fn redacts_key_values() {
        let cases = [
            ("/v1beta/models/m:predict", "/v1beta/models/m:predict"),
            (
                "/v1beta/models/m:predict?key=SECRET",
                "/v1beta/models/m:predict?key=REDACTED",
            ),
            ("/x?alt=sse&key=SECRET&y=1", "/x?alt=sse&key=REDACTED&y=1"),
            ("/x?monkey=1", "/x?monkey=1"),
            ("/x?%6Bey=SECRET", "/x?%6Bey=REDACTED"),
            ("/x?k%65y=SECRET&alt=sse", "/x?k%65y=REDACTED&alt=sse"),
            ("/x?%6b%65%79=SECRET", "/x?%6b%65%79=REDACTED"),
            ("/x?$key=SECRET", "/x?$key=REDACTED"),
            ("/x?%24key=SECRET", "/x?%24key=REDACTED"),
            ("/x?access_token=SECRET", "/x?access_token=REDACTED"),
            ("/x?access%5Ftoken=SECRET", "/x?access%5Ftoken=REDACTED"),
            ("/x?KEY=SECRET", "/x?KEY=REDACTED"),
            (
                "/x?Api_Key=A&APIKEY=B&OAuth_Token=C&Bearer_TOKEN=D&k%C3%A9y=E",
                "/x?Api_Key=REDACTED&APIKEY=REDACTED&OAuth_Token=REDACTED&Bearer_TOKEN=REDACTED&k%C3%A9y=E",
            ),
            ("/x?key", "/x?key=REDACTED"),
            ("/x?key=a&key=b", "/x?key=REDACTED&key=REDACTED"),
            ("/x?ke%y=1", "/x?ke%y=1"),
            ("/x?%", "/x?%"),
        ];
        for (path, want) in cases {
            assert_eq!(redact_key(path), want, "{path}");
        }
    }

    #[test]
    fn one_credential_or_a_clear_refusal() {
        use CredentialError::{Conflicting, Repeated};
        let auth = |authorization, api_key| Auth {
            authorization,
            api_key,
        };
        let cases = [
            ("none", auth(None, None), None, Ok(())),
            ("bearer", auth(Some("Bearer K"), None), None, Ok(())),
            ("header key", auth(None, Some("K")), None, Ok(())),
            ("query key", auth(None, None), Some("key=K&alt=sse"), Ok(())),
            (
                "same key twice",
                auth(Some("Bearer K"), Some("K")),
                Some("key=K"),
                Ok(()),
            ),
            (
                "oauth token alone",
                auth(Some("Bearer ya29.T"), None),
                None,
                Ok(()),
            ),
            (
                "two authorization joined",
                auth(Some("Bearer A,Bearer B"), None),
                None,
                Err(Repeated("the authorization header")),
            ),
            (
                "two api keys joined",
                auth(None, Some("A,B")),
                None,
                Err(Repeated("the x-goog-api-key header")),
            ),
            (
                "two query keys",
                auth(None, None),
                Some("key=A&%6Bey=B"),
                Err(Repeated("the key query parameter")),
            ),
            (
                "bearer and other header key",
                auth(Some("Bearer A"), Some("B")),
                None,
                Err(Conflicting),
            ),
            (
                "header and other query key",
                auth(None, Some("A")),
                Some("key=B"),
                Err(Conflicting),
            ),
            (
                "encoded query key differs",
                auth(Some("Bearer A"), None),
                Some("k%65y=B"),
                Err(Conflicting),
            ),
            (
                "encoded query value is the same key",
                auth(None, Some("A-1")),
                Some("key=A%2D1"),
                Ok(()),
            ),
        ];
        for (name, auth, query, want) in cases {
            assert_eq!(check_credentials(auth, query), want, "{name}");
        }
    }

    #[test]
    fn kept_credentials_read_as_the_headers_they_came_from() {
        let auth = Auth {
            authorization: Some("Bearer AIzaBEARER123"),
            api_key: None,
        };
        let query = Some("key=AIzaQUERY456");
        for vertex in [false, true] {
            let kept = Credentials::new(auth, vertex);
            assert_eq!(kept.secrets(query), secrets(auth, query), "{vertex}");
            let want = (!vertex).then(|| Secret("AIzaBEARER123".into()));
            assert_eq!(kept.api_key(query), want, "{vertex}");
            assert!(!format!("{kept:?}").contains("AIza"), "{kept:?}");
        }
        assert_eq!(Credentials::default().secrets(None), vec![]);
    }

    #[test]
    fn a_loggable_path_has_no_credential_value_anywhere() {
        let secrets = [Secret("AIzaKEY123".into())];
        let cases = [
            (
                "/v1beta/models?key=AIzaKEY123",
                "/v1beta/models?key=REDACTED",
            ),
            (
                "/v1beta/models?note=AIzaKEY123",
                "/v1beta/models?note=REDACTED",
            ),
            (
                "/v1beta/AIzaKEY123/models?k%65y=other",
                "/v1beta/REDACTED/models?k%65y=REDACTED",
            ),
            ("/v1beta/models?alt=sse", "/v1beta/models?alt=sse"),
        ];
        for (path, want) in cases {
            assert_eq!(loggable(path, &secrets), want, "{path}");
        }
        assert_eq!(loggable("/a?note=AIzaKEY123", &[]), "/a?note=AIzaKEY123");
    }

    #[test]
    fn a_secret_is_scrubbed_unless_it_starts_inside_an_escape() {
        let secrets = [Secret("AIzaKEY123".into()), Secret("nKEY45678".into())];
        let cases: [(&str, &str); 9] = [
            (r#""AIzaKEY123""#, r#""REDACTED""#),
            // An escaped backslash, then the key: the text has the key.
            (r#""\\AIzaKEY123""#, r#""\\REDACTED""#),
            (r#""\\\\AIzaKEY123""#, r#""\\\\REDACTED""#),
            (r#""\\\"AIzaKEY123""#, r#""\\\"REDACTED""#),
            // `\n` and a secret starting with `n`: a newline, no secret.
            (r#""\nKEY45678""#, r#""\nKEY45678""#),
            (r#""\\nKEY45678""#, r#""\\REDACTED""#),
            (r#""\\\nKEY45678""#, r#""\\\nKEY45678""#),
            // The hex digits of `\uXXXX` are no text either.
            (r#""\\u0041AIzaKEY123""#, r#""\\u0041REDACTED""#),
            (r#""\u0000AIzaKEY123""#, r#""\u0000REDACTED""#),
        ];
        for (text, want) in cases {
            let got =
                scrub_json(text.as_bytes(), &secrets).unwrap_or_else(|| text.as_bytes().to_vec());
            assert_eq!(String::from_utf8(got).unwrap(), want, "{text}");
            // What a client decodes never holds a secret.
            let decoded: String = serde_json::from_str(want).unwrap();
            assert!(
                !decoded.contains("AIzaKEY123") && !decoded.contains("nKEY45678"),
                "{text}"
            );
        }
        // A key that starts inside the hex digits is no occurrence: left intact.
        let hex = [Secret("0041AIzaX".into())];
        assert_eq!(scrub_json(br#""\u0041AIzaX""#, &hex), None);
        // Text that is no JSON has no escapes: every occurrence goes.
        let got = scrub(br"\AIzaKEY123 \nKEY45678", &secrets).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), r"\REDACTED \REDACTED");
    }

    #[test]
    fn secrets_are_scrubbed_from_upstream_text() {
        let auth = Auth {
            authorization: Some("Bearer AIzaBEARER123"),
            api_key: Some("AIzaHEADER456"),
        };
        let secrets = secrets(auth, Some("alt=sse&k%65y=AIza%2DQUERY789&key=short"));
        let text =
            b"bad AIzaBEARER123, AIzaHEADER456, AIza%2DQUERY789 and AIza-QUERY789; short stays";
        let got = scrub(text, &secrets).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "bad REDACTED, REDACTED, REDACTED and REDACTED; short stays"
        );
        assert_eq!(scrub(b"nothing here", &secrets), None);
        // Values that could match JSON structure are never secrets.
        let odd = Auth {
            authorization: Some(r#"{"error":"#),
            api_key: Some("12345678"),
        };
        assert_eq!(
            super::secrets(odd, Some("key=a%20b%22cdefgh")),
            vec![Secret("a%20b%22cdefgh".into())],
            "the decoded form has a space and a quote: not a secret"
        );
    }

    #[test]
    fn a_vertex_client_stays_on_vertex() {
        let path = "/v1/projects/p/locations/europe-west4/publishers/google/models/imagen-3.0-generate-002:generateContent";
        for config in ["", r#"{"api_style":"openai"}"#] {
            let got = run(
                config,
                path,
                "imagen-3.0-generate-002",
                false,
                Auth::default(),
            );
            assert_eq!(
                (got.verdict, got.path.as_deref(), got.headers),
                (
                    Verdict::Rewritten,
                    Some("/v1/projects/p/locations/europe-west4/publishers/google/models/imagen-3.0-generate-002:predict"),
                    vec![]
                ),
                "config {config:?}"
            );
        }
        let stays =
            "/v1/projects/p/locations/l/publishers/google/models/gemini-3.5-flash:generateContent";
        let got = run(
            r#"{"family_styles":{"gemini":"openai"}}"#,
            stays,
            "gemini-3.5-flash",
            false,
            Auth::default(),
        );
        assert_eq!(
            (got.verdict, got.path),
            (Verdict::Unchanged, None),
            "family_styles does not move a Vertex client"
        );
    }

    #[test]
    fn a_query_key_moves_by_its_decoded_name() {
        let native = client("/v1beta/models/m:embedContent?k%65y=QK");
        assert_eq!(
            move_auth(native, ApiStyle::Openai, Auth::default()),
            vec![
                HeaderOp::Set(AUTHORIZATION, Secret("Bearer QK".into())),
                HeaderOp::Remove(GOOG_API_KEY),
            ]
        );
        let unsafe_key = client("/v1beta/models/m:embedContent?key=A%0D%0Ax-injected:1");
        assert_eq!(
            move_auth(unsafe_key, ApiStyle::Openai, Auth::default()),
            vec![]
        );
    }

    #[test]
    fn native_query_handles_alt() {
        assert_eq!(
            native_query(Some("alt=sse&key=K"), Endpoint::Predict),
            "key=K"
        );
        assert_eq!(
            native_query(Some("key=K"), Endpoint::StreamGenerateContent),
            "key=K&alt=sse"
        );
        assert_eq!(native_query(None, Endpoint::GenerateContent), "");
    }
}
