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
    use serde_json::{json, Value};

    fn translator() -> BatchEmbedToEmbeddings {
        BatchEmbedToEmbeddings::new(&exchange(
            "gemini-embedding-001",
            Endpoint::BatchEmbedContents,
            Endpoint::Embeddings,
        ))
    }

    #[test]
    fn requests() {
        struct Case {
            name: &'static str,
            body: &'static str,
            want: Result<Value, TranslateError>,
        }
        let cases = [
            Case {
                name: "two requests",
                body: r#"{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":3},
                    {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"日本の猫 🐱"}]},"outputDimensionality":3}]}"#,
                want: Ok(json!({"model":"gemini-embedding-001","input":["a","日本の猫 🐱"],"dimensions":3,"encoding_format":"float"})),
            },
            Case {
                name: "one request",
                body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]}}]}"#,
                want: Ok(json!({"model":"gemini-embedding-001","input":"a","encoding_format":"float"})),
            },
            Case {
                name: "different dimensions",
                body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]},"outputDimensionality":3},{"content":{"parts":[{"text":"b"}]}}]}"#,
                want: Err(TranslateError::InvalidRequest(
                    "requests with different outputDimensionality cannot be sent as one embeddings call".into(),
                )),
            },
            Case {
                name: "empty",
                body: r#"{"requests":[]}"#,
                want: Err(TranslateError::InvalidRequest("`requests` is missing or empty".into())),
            },
            Case {
                name: "a request without text",
                body: r#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{}}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        for case in cases {
            let got = translator()
                .translate_request(case.body.as_bytes())
                .map(|b| json(&b));
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn responses() {
        struct Case {
            name: &'static str,
            upstream: &'static str,
            want: Result<Value, TranslateError>,
        }
        let cases = [
            Case {
                name: "out of order data sorted by index",
                upstream: r#"{"data":[{"embedding":[2.0],"index":1},{"embedding":[1.0],"index":0}]}"#,
                want: Ok(json!({"embeddings":[{"values":[1.0]},{"values":[2.0]}]})),
            },
            Case {
                name: "count mismatch",
                upstream: r#"{"data":[{"embedding":[1.0],"index":0}]}"#,
                want: Err(TranslateError::InvalidResponse(
                    "1 embeddings for 2 inputs".into(),
                )),
            },
            Case {
                name: "no data",
                upstream: r#"{"error":"x"}"#,
                want: Err(TranslateError::InvalidResponse(
                    "the answer has no `data`".into(),
                )),
            },
        ];
        for case in cases {
            let mut t = translator();
            t.translate_request(br#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}"#).unwrap();
            let got = t
                .translate_response(case.upstream.as_bytes())
                .map(|t| json(&t.body));
            assert_eq!(got, case.want, "{}", case.name);
        }
    }
}
