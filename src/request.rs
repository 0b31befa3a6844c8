//! Recognises the requests the router acts on from `:method` and `:path`.

use crate::endpoint::{ApiStyle, Endpoint};
use crate::model::Collection;

/// What kind of request a `:path` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognized<'a> {
    /// An OpenAI-style request; the model is in the JSON body.
    OpenAi(OpenAiPath<'a>),
    /// A native (Developer API) or Vertex model request; the model is in the path.
    Model(ModelPath<'a>),
    /// Anything else: passes through untouched.
    Unrouted,
}

/// An OpenAI-style path: `{prefix}/{operation}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenAiPath<'a> {
    /// Everything before the operation, e.g. `/v1beta/openai`.
    pub prefix: &'a str,
    /// The operation.
    pub endpoint: Endpoint,
}

/// A model method path: `{prefix}{collection}/{id}:{method}[?{query}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelPath<'a> {
    /// Native or Vertex.
    pub style: ApiStyle,
    /// Everything before the collection, with its trailing `/`
    /// (`/v1beta/` or `/v1/projects/p/locations/l/publishers/google/`).
    pub prefix: &'a str,
    /// `models` or `tunedModels`.
    pub collection: Collection,
    /// The id as written in the path (not yet validated).
    pub raw_id: &'a str,
    /// The method.
    pub endpoint: Endpoint,
    /// The query string without `?`, if any.
    pub query: Option<&'a str>,
}

const NATIVE_VERSIONS: &[&str] = &["v1", "v1beta", "v1alpha"];

/// `path` split at its first `?`: the path, and the query without the `?`
/// (`None`: no `?`). A byte search: `split_once('?')` goes through the
/// generic char searcher, whose code every request would run, several
/// times.
pub fn split_query(path: &str) -> (&str, Option<&str>) {
    match path.bytes().position(|b| b == b'?') {
        Some(at) => (path.get(..at).unwrap_or(path), path.get(at + 1..)),
        None => (path, None),
    }
}

/// The query of `path`, without the `?` (see [`split_query`]).
pub fn query_of(path: &str) -> Option<&str> {
    split_query(path).1
}

/// Classifies a request by method and path.
pub fn recognize<'a>(method: &str, path: &'a str) -> Recognized<'a> {
    // Only origin-form paths are routed: anything else (Envoy refuses most
    // of it anyway) passes untouched, so a rewritten path is always absolute.
    if method != "POST" || !path.starts_with('/') {
        return Recognized::Unrouted;
    }
    let (path_only, query) = split_query(path);
    if let Some(endpoint) = Endpoint::from_openai_path(path_only) {
        let prefix = &path_only[..path_only.len() - endpoint.as_str().len() - 1];
        return Recognized::OpenAi(OpenAiPath { prefix, endpoint });
    }
    match model_path(path_only, query) {
        Some(model) => Recognized::Model(model),
        None => Recognized::Unrouted,
    }
}

fn model_path<'a>(path: &'a str, query: Option<&'a str>) -> Option<ModelPath<'a>> {
    let rest = path.strip_prefix('/')?;
    let (version, after_version) = rest.split_once('/')?;
    if version.is_empty() || !version.starts_with('v') {
        return None;
    }
    // Find where the collection starts, and the style that prefix implies.
    let (style, collection_at) = if NATIVE_VERSIONS.contains(&version)
        && (after_version.starts_with("models/") || after_version.starts_with("tunedModels/"))
    {
        (ApiStyle::Native, 1 + version.len() + 1)
    } else {
        let segments: Vec<&str> = after_version.splitn(7, '/').collect();
        let skip = match segments.as_slice() {
            ["projects", p, "locations", l, "publishers", publ, tail]
                if !p.is_empty()
                    && !l.is_empty()
                    && !publ.is_empty()
                    && tail.starts_with("models/") =>
            {
                6
            }
            ["publishers", publ, tail @ ..]
                if !publ.is_empty() && tail.first().is_some_and(|t| *t == "models") =>
            {
                2
            }
            _ => return None,
        };
        let prefix_len: usize = segments[..skip].iter().map(|s| s.len() + 1).sum();
        (ApiStyle::Vertex, 1 + version.len() + 1 + prefix_len)
    };
    let prefix = &path[..collection_at];
    let tail = &path[collection_at..];
    let (collection, id_and_method) = if let Some(t) = tail.strip_prefix("models/") {
        (Collection::Models, t)
    } else if let Some(t) = tail.strip_prefix("tunedModels/") {
        (Collection::TunedModels, t)
    } else {
        return None;
    };
    let (raw_id, method) = id_and_method.rsplit_once(':')?;
    let endpoint = Endpoint::from_native_method(method)?;
    Some(ModelPath {
        style,
        prefix,
        collection,
        raw_id,
        endpoint,
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(
        style: ApiStyle,
        prefix: &'static str,
        raw_id: &'static str,
        endpoint: Endpoint,
        query: Option<&'static str>,
    ) -> Recognized<'static> {
        Recognized::Model(ModelPath {
            style,
            prefix,
            collection: Collection::Models,
            raw_id,
            endpoint,
            query,
        })
    }

    #[test]
    fn recognizes_paths() {
        use ApiStyle::{Native, Vertex};
        use Endpoint as E;
        let openai = |prefix, endpoint| Recognized::OpenAi(OpenAiPath { prefix, endpoint });
        let cases = [
            ("compat chat", "POST", "/v1beta/openai/chat/completions", openai("/v1beta/openai", E::ChatCompletions)),
            ("v1 chat with query", "POST", "/v1/chat/completions?x=1", openai("/v1", E::ChatCompletions)),
            ("openai/v1 images", "POST", "/openai/v1/images/generations", openai("/openai/v1", E::ImagesGenerations)),
            ("embeddings", "POST", "/v1beta/openai/embeddings", openai("/v1beta/openai", E::Embeddings)),
            ("GET chat is unrouted", "GET", "/v1beta/openai/chat/completions", Recognized::Unrouted),
            ("native generate", "POST", "/v1beta/models/gemini-2.5-flash:generateContent",
                model(Native, "/v1beta/", "gemini-2.5-flash", E::GenerateContent, None)),
            ("native stream sse", "POST", "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                model(Native, "/v1/", "gemini-2.5-flash", E::StreamGenerateContent, Some("alt=sse"))),
            ("native predict", "POST", "/v1alpha/models/imagen-4.0-generate-001:predict",
                model(Native, "/v1alpha/", "imagen-4.0-generate-001", E::Predict, None)),
            ("hostile id kept raw", "POST", "/v1beta/models/a/../b:generateContent",
                model(Native, "/v1beta/", "a/../b", E::GenerateContent, None)),
            ("vertex full", "POST", "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent",
                model(Vertex, "/v1/projects/p/locations/us-central1/publishers/google/", "gemini-2.5-flash", E::GenerateContent, None)),
            ("vertex short", "POST", "/v1/publishers/google/models/imagen-3.0:predict",
                model(Vertex, "/v1/publishers/google/", "imagen-3.0", E::Predict, None)),
            ("unknown method", "POST", "/v1beta/models/gemini:batchGenerateContent", Recognized::Unrouted),
            ("no method", "POST", "/v1beta/models/gemini", Recognized::Unrouted),
            ("models list", "GET", "/v1beta/models", Recognized::Unrouted),
            ("operation poll", "GET", "/v1beta/models/veo-3/operations/abc", Recognized::Unrouted),
            ("files upload", "POST", "/upload/v1beta/files", Recognized::Unrouted),
            ("cached contents", "POST", "/v1beta/cachedContents", Recognized::Unrouted),
            ("unknown version", "POST", "/v2/models/gemini:generateContent", Recognized::Unrouted),
            ("empty", "POST", "", Recognized::Unrouted),
            ("not origin-form", "POST", "x/v1/chat/completions", Recognized::Unrouted),
            ("absolute-form", "POST", "http://h/v1/chat/completions", Recognized::Unrouted),
        ];
        for (name, method, path, want) in cases {
            assert_eq!(recognize(method, path), want, "{name}");
        }
    }

    #[test]
    fn recognizes_tuned_models() {
        let got = recognize("POST", "/v1beta/tunedModels/my-tuned:generateContent");
        let Recognized::Model(m) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            (m.collection, m.raw_id),
            (Collection::TunedModels, "my-tuned")
        );
    }

    #[test]
    fn splits_the_query_at_the_first_question_mark() {
        let cases: [(&str, (&str, Option<&str>)); 6] = [
            ("/v1beta/models", ("/v1beta/models", None)),
            ("/v1beta/models?key=k", ("/v1beta/models", Some("key=k"))),
            ("/p?", ("/p", Some(""))),
            ("/p?a=1?b=2", ("/p", Some("a=1?b=2"))),
            ("?only", ("", Some("only"))),
            ("/caf\u{e9}?q=\u{e9}", ("/caf\u{e9}", Some("q=\u{e9}"))),
        ];
        for (path, want) in cases {
            assert_eq!(split_query(path), want, "{path}");
            assert_eq!(query_of(path), want.1, "{path}");
        }
    }
}
