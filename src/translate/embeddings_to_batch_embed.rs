//! OpenAI `embeddings` -> native `:batchEmbedContents`.
//!
//! `input` (a string or a list of strings) becomes one request per text,
//! `dimensions` becomes `outputDimensionality`; the vectors come back as an
//! OpenAI list (as base64 of little-endian f32 when the client asked for
//! `encoding_format: "base64"`). Google reports no token counts here, so
//! `usage` is zero.

use super::embedding;
use super::{Exchange, TranslateError, Translated, Translator};

/// `embeddings` in, `:batchEmbedContents` out.
pub(crate) struct EmbeddingsToBatchEmbed {
    model: String,
    inputs: usize,
    base64: bool,
}

impl EmbeddingsToBatchEmbed {
    pub(crate) fn new(exchange: &Exchange<'_>) -> EmbeddingsToBatchEmbed {
        EmbeddingsToBatchEmbed {
            model: exchange.model.to_owned(),
            inputs: 0,
            base64: false,
        }
    }
}

impl Translator for EmbeddingsToBatchEmbed {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let request = embedding::parse_embeddings_request(body)?;
        self.inputs = request.inputs.len();
        self.base64 = request.base64;
        embedding::batch_request_body(&self.model, &request.inputs, request.dimensions)
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let vectors = embedding::parse_batch_answer(body)?;
        embedding::check_count(&vectors, self.inputs)?;
        embedding::write_list(&vectors, &self.model, self.base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::testutil::*;
    use serde_json::json;

    const MODEL: &str = "gemini-embedding-001";

    fn translator() -> EmbeddingsToBatchEmbed {
        EmbeddingsToBatchEmbed::new(&exchange(
            MODEL,
            Endpoint::Embeddings,
            Endpoint::BatchEmbedContents,
        ))
    }

    #[test]
    fn requests() {
        let request = |text: &str| json!({"model":"models/gemini-embedding-001","content":{"parts":[{"text":text}]}});
        let cases = [
            RequestCase {
                name: "one string",
                body: r#"{"model":"gemini-embedding-001","input":"日本の猫 🐱"}"#,
                want: Ok(json!({"requests":[request("日本の猫 🐱")]})),
            },
            RequestCase {
                name: "list with dimensions",
                body: r#"{"model":"models/gemini-embedding-001","input":["a","b"],"dimensions":768,"encoding_format":"float"}"#,
                want: Ok(json!({"requests":[
                    {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":768},
                    {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]},"outputDimensionality":768}]})),
            },
            RequestCase {
                name: "empty list",
                body: r#"{"input":[]}"#,
                want: Err(TranslateError::InvalidRequest(
                    "`input` is missing or empty".into(),
                )),
            },
            RequestCase {
                name: "missing input",
                body: r#"{"model":"x"}"#,
                want: Err(TranslateError::InvalidRequest(
                    "`input` is missing or empty".into(),
                )),
            },
        ];
        check_requests(translator, cases);
        for (name, body) in [
            ("token array", r#"{"input":[[1,2,3]]}"#),
            ("number", r#"{"input":5}"#),
        ] {
            let got = translator().translate_request(body.as_bytes());
            assert!(
                matches!(got, Err(TranslateError::InvalidRequest(_))),
                "{name}: {got:?}"
            );
        }
    }

    #[test]
    fn responses() {
        /// An answer to its own request.
        struct Case {
            request: &'static str,
            answer: ResponseCase,
        }
        let usage = json!({"prompt_tokens":0,"total_tokens":0});
        let cases = [
            Case {
                request: r#"{"input":["a","b"]}"#,
                answer: ResponseCase {
                    name: "two vectors",
                    upstream: r#"{"embeddings":[{"values":[0.1,-0.2]},{"values":[0.3,1e-7]}]}"#,
                    want: Ok(json!({"object":"list","data":[
                        {"object":"embedding","index":0,"embedding":[0.1,-0.2]},
                        {"object":"embedding","index":1,"embedding":[0.3,1e-7]}],"model":MODEL,"usage":usage})),
                },
            },
            Case {
                request: r#"{"input":"a","encoding_format":"base64"}"#,
                answer: ResponseCase {
                    name: "base64",
                    upstream: r#"{"embeddings":[{"values":[1.0,-2.0]}]}"#,
                    // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0
                    want: Ok(
                        json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPwAAAMA="}],"model":MODEL,"usage":usage}),
                    ),
                },
            },
            Case {
                request: r#"{"input":["a","b"]}"#,
                answer: ResponseCase {
                    name: "count mismatch",
                    upstream: r#"{"embeddings":[{"values":[0.1]}]}"#,
                    want: Err(TranslateError::InvalidResponse(
                        "1 embeddings for 2 inputs".into(),
                    )),
                },
            },
            Case {
                request: r#"{"input":"a"}"#,
                answer: ResponseCase {
                    name: "wrong shape",
                    upstream: r#"{"embedding":{"values":[0.1]}}"#,
                    want: Err(TranslateError::InvalidResponse(
                        "the answer has no `embeddings`".into(),
                    )),
                },
            },
        ];
        for case in cases {
            check_responses(after_request(translator, case.request), [case.answer]);
        }
    }
}
