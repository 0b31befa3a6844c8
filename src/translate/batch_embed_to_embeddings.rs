//! Native `:batchEmbedContents` -> OpenAI `embeddings`.
//!
//! Each request's text becomes one `input` entry; one shared
//! `outputDimensionality` becomes `dimensions` (requests that differ are
//! refused, since the compat layer takes one value per call). The list comes
//! back in `index` order as `{"embeddings":[{"values"}]}`.

use super::embedding;
use super::{Exchange, TranslateError, Translated, Translator};

/// `:batchEmbedContents` in, `embeddings` out.
pub(crate) struct BatchEmbedToEmbeddings {
    model: String,
    inputs: usize,
}

impl BatchEmbedToEmbeddings {
    pub(crate) fn new(exchange: &Exchange<'_>) -> BatchEmbedToEmbeddings {
        BatchEmbedToEmbeddings {
            model: exchange.model.to_owned(),
            inputs: 0,
        }
    }
}

impl Translator for BatchEmbedToEmbeddings {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let request = embedding::parse_batch_request(body)?;
        self.inputs = request.texts.len();
        embedding::embeddings_request_body(&self.model, &request.texts, request.dimensions)
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let vectors = embedding::parse_list_answer(body)?;
        embedding::check_count(&vectors, self.inputs)?;
        embedding::write_batch_answer(&vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::testutil::*;
    use serde_json::json;

    fn translator() -> BatchEmbedToEmbeddings {
        BatchEmbedToEmbeddings::new(&exchange(
            "gemini-embedding-001",
            Endpoint::BatchEmbedContents,
            Endpoint::Embeddings,
        ))
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "two requests",
                body: r#"{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":3},
                    {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"日本の猫 🐱"}]},"outputDimensionality":3}]}"#,
                want: Ok(json!({"model":"gemini-embedding-001","input":["a","日本の猫 🐱"],"dimensions":3,"encoding_format":"float"})),
            },
            RequestCase {
                name: "one request",
                body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]}}]}"#,
                want: Ok(json!({"model":"gemini-embedding-001","input":"a","encoding_format":"float"})),
            },
            RequestCase {
                name: "different dimensions",
                body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]},"outputDimensionality":3},{"content":{"parts":[{"text":"b"}]}}]}"#,
                want: Err(TranslateError::InvalidRequest(
                    "requests with different outputDimensionality cannot be sent as one embeddings call".into(),
                )),
            },
            RequestCase {
                name: "empty",
                body: r#"{"requests":[]}"#,
                want: Err(TranslateError::InvalidRequest("`requests` is missing or empty".into())),
            },
            RequestCase {
                name: "a request without text",
                body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{}}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(translator, cases);
    }

    #[test]
    fn responses() {
        let cases = [
            ResponseCase {
                name: "out of order data sorted by index",
                upstream: r#"{"data":[{"embedding":[2.0],"index":1},{"embedding":[1.0],"index":0}]}"#,
                want: Ok(json!({"embeddings":[{"values":[1.0]},{"values":[2.0]}]})),
            },
            ResponseCase {
                name: "count mismatch",
                upstream: r#"{"data":[{"embedding":[1.0],"index":0}]}"#,
                want: Err(TranslateError::InvalidResponse(
                    "1 embeddings for 2 inputs".into(),
                )),
            },
            ResponseCase {
                name: "no data",
                upstream: r#"{"error":"x"}"#,
                want: Err(TranslateError::InvalidResponse(
                    "the answer has no `data`".into(),
                )),
            },
        ];
        let request = r#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}"#;
        check_responses(after_request(translator, request), cases);
    }
}
