//! OpenAI `images/generations` -> Imagen `:predict`.
//!
//! `prompt`, `n` (1..=4) and `aspect_ratio` or `size` map to the predict
//! request; predictions come back as `{"created","data":[{"b64_json",
//! "revised_prompt"?}]}` (Imagen's rewritten prompt, when it gives one). No
//! image is an error ([`TranslateError::NoImage`]).

use super::openai;
use super::{aspect, imagen, Exchange, TranslateError, Translated, Translator};

/// `images/generations` in, `:predict` out.
pub(crate) struct ImagesToPredict {
    created: u64,
}

impl ImagesToPredict {
    pub(crate) fn new(exchange: &Exchange<'_>) -> ImagesToPredict {
        ImagesToPredict {
            created: exchange.created,
        }
    }
}

impl Translator for ImagesToPredict {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let request = openai::parse_images(body)?;
        imagen::PredictRequest {
            prompt: &request.prompt,
            sample_count: request.n.unwrap_or(1),
            aspect_ratio: request.aspect.map(|r| aspect::nearest(r, aspect::IMAGEN)),
        }
        .to_body()
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let answer = imagen::parse_answer(body)?;
        answer.require_image()?;
        Ok(openai::write_images_answer(&answer, self.created))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::testutil::*;
    use serde_json::json;

    fn translator() -> ImagesToPredict {
        ImagesToPredict::new(&exchange(
            "imagen-4.0-generate-001",
            Endpoint::ImagesGenerations,
            Endpoint::Predict,
        ))
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "open webui openai engine",
                body: r#"{"model":"imagen-4.0-generate-001","prompt":"a cat","n":1,"size":"1024x1024","response_format":"b64_json"}"#,
                want: Ok(
                    json!({"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":1,"aspectRatio":"1:1"}}),
                ),
            },
            RequestCase {
                name: "defaults, unicode",
                body: r#"{"model":"imagen-4.0-generate-001","prompt":"日本の猫 🐱"}"#,
                want: Ok(
                    json!({"instances":[{"prompt":"日本の猫 🐱"}],"parameters":{"sampleCount":1}}),
                ),
            },
            RequestCase {
                name: "n clamped, aspect_ratio extra",
                body: r#"{"prompt":"x","n":10,"size":"auto","aspect_ratio":"4:3"}"#,
                want: Ok(
                    json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":4,"aspectRatio":"4:3"}}),
                ),
            },
            RequestCase {
                name: "no prompt",
                body: r#"{"model":"m"}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(translator, cases);
    }

    #[test]
    fn responses() {
        let cases = [
            ResponseCase {
                name: "two images, one with a rewritten prompt",
                upstream: r#"{"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png","prompt":"a fluffy cat"},{"bytesBase64Encoded":"iBBB","mimeType":"image/png"}]}"#,
                want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA","revised_prompt":"a fluffy cat"},{"b64_json":"iBBB"}]})),
            },
            ResponseCase {
                name: "filtered",
                upstream: r#"{"predictions":[{"raiFilteredReason":"prohibited"}]}"#,
                want: Err(TranslateError::NoImage("prohibited".into())),
            },
            ResponseCase {
                name: "empty",
                upstream: r#"{}"#,
                want: Err(TranslateError::NoImage(
                    "the answer has no predictions (Imagen leaves out images its safety filter blocks)".into(),
                )),
            },
        ];
        check_responses(translator, cases);
    }
}
