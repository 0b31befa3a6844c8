//! Native `:embedContent` -> OpenAI `embeddings`.
//!
//! The text parts of `content` become `input`, `outputDimensionality`
//! becomes `dimensions` (`taskType` and `title` have no compat equivalent and
//! are dropped); `data[0].embedding` comes back as `{"embedding":{"values"}}`.

use super::embedding;
use super::{Exchange, TranslateError, Translated, Translator};

/// `:embedContent` in, `embeddings` out.
pub(crate) struct EmbedContentToEmbeddings {
    model: String,
}

impl EmbedContentToEmbeddings {
    pub(crate) fn new(exchange: &Exchange<'_>) -> EmbedContentToEmbeddings {
        EmbedContentToEmbeddings {
            model: exchange.model.to_owned(),
        }
    }
}

impl Translator for EmbedContentToEmbeddings {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let request = embedding::parse_embed_request(body)?;
        embedding::embeddings_request_body(&self.model, &request.texts, request.dimensions)
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let vectors = embedding::parse_list_answer(body)?;
        match vectors.as_slice() {
            [values] => embedding::write_embed_answer(values),
            other => Err(TranslateError::InvalidResponse(format!(
                "{} embeddings for one input",
                other.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::testutil::*;
    use serde_json::json;

    fn translator() -> EmbedContentToEmbeddings {
        EmbedContentToEmbeddings::new(&exchange(
            "gemini-embedding-001",
            Endpoint::EmbedContent,
            Endpoint::Embeddings,
        ))
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "google-genai embed_content",
                body: r#"{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"日本の猫 🐱"}]},"taskType":"RETRIEVAL_QUERY","outputDimensionality":256}"#,
                want: Ok(
                    json!({"model":"gemini-embedding-001","input":"日本の猫 🐱","dimensions":256,"encoding_format":"float"}),
                ),
            },
            RequestCase {
                name: "parts joined, snake_case",
                body: r#"{"content":{"parts":[{"text":"a"},{"text":"b"}]},"output_dimensionality":8}"#,
                want: Ok(
                    json!({"model":"gemini-embedding-001","input":"a\nb","dimensions":8,"encoding_format":"float"}),
                ),
            },
            RequestCase {
                name: "no text",
                body: r#"{"content":{"parts":[]}}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(translator, cases);
    }

    #[test]
    fn responses() {
        let cases = [
            ResponseCase {
                name: "one vector",
                upstream: r#"{"object":"list","data":[{"object":"embedding","embedding":[0.25,-0.5],"index":0}],"model":"gemini-embedding-001"}"#,
                want: Ok(json!({"embedding":{"values":[0.25,-0.5]}})),
            },
            ResponseCase {
                name: "none",
                upstream: r#"{"object":"list","data":[]}"#,
                want: Err(TranslateError::InvalidResponse(
                    "0 embeddings for one input".into(),
                )),
            },
        ];
        check_responses(translator, cases);
        let got = translator().translate_response(br#"{"data":[{"embedding":"AACAPw=="}]}"#);
        assert!(
            matches!(got, Err(TranslateError::InvalidResponse(_))),
            "{got:?}"
        );
    }
}
