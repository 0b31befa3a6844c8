//! Native `:predict` for a Gemini image model -> `:generateContent`.
//!
//! `instances` may be a list or a single object (older Open WebUI); the
//! prompt is `instances[0].prompt`, `sampleCount` above one becomes
//! `candidateCount` and `aspectRatio` is passed on. The images come back as
//! `{"predictions":[{"bytesBase64Encoded","mimeType"}]}`; text the model
//! wrote has no place there and is dropped. No image is an error
//! ([`TranslateError::NoImage`]).

use super::gemini::{self, ResponseBody};
use super::{aspect, imagen, Exchange, TranslateError, Translated, Translator};

/// `:predict` in, `:generateContent` out.
pub(crate) struct PredictToGenerateContent;

impl PredictToGenerateContent {
    pub(crate) fn new(_exchange: &Exchange<'_>) -> PredictToGenerateContent {
        PredictToGenerateContent
    }
}

impl Translator for PredictToGenerateContent {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let request = imagen::parse_request(body)?;
        let contents = gemini::Contents::prompt(&request.prompt);
        Ok(gemini::ImageRequest {
            contents: &contents,
            system: None,
            candidate_count: request.sample_count,
            aspect_ratio: request
                .aspect_ratio
                .as_deref()
                .and_then(aspect::ratio)
                .map(|r| aspect::nearest(r, aspect::GEMINI)),
        }
        .to_body())
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let body = ResponseBody::split(body);
        let answer = body.answer()?;
        answer.require_image()?;
        Ok(imagen::write_answer(&answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::testutil::*;
    use serde_json::json;

    fn translator() -> PredictToGenerateContent {
        PredictToGenerateContent::new(&exchange(
            "gemini-2.5-flash-image",
            Endpoint::Predict,
            Endpoint::GenerateContent,
        ))
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "instances object (older Open WebUI)",
                body: r#"{"instances":{"prompt":"日本の猫 🐱"},"parameters":{"sampleCount":1,"outputOptions":{"mimeType":"image/png"}}}"#,
                want: Ok(
                    json!({"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}}),
                ),
            },
            RequestCase {
                name: "instances list with ratio and samples",
                body: r#"{"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":2,"aspectRatio":"9:16"}}"#,
                want: Ok(
                    json!({"contents":[{"role":"user","parts":[{"text":"a cat"}]}],
                    "generationConfig":{"responseModalities":["TEXT","IMAGE"],"candidateCount":2,"imageConfig":{"aspectRatio":"9:16"}}}),
                ),
            },
            RequestCase {
                name: "unknown ratio dropped",
                body: r#"{"instances":[{"prompt":"a cat"}],"parameters":{"aspectRatio":"wide"}}"#,
                want: Ok(
                    json!({"contents":[{"role":"user","parts":[{"text":"a cat"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}}),
                ),
            },
            RequestCase {
                name: "no prompt",
                body: r#"{"instances":[{}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(translator, cases);
    }

    #[test]
    fn responses() {
        let cases = [
            ResponseCase {
                name: "text dropped, image kept",
                upstream: r#"{"candidates":[{"content":{"parts":[{"text":"Here you go"},{"inlineData":{"mimeType":"image/png","data":"iAAA"}}]},"finishReason":"STOP"}]}"#,
                want: Ok(
                    json!({"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"}]}),
                ),
            },
            ResponseCase {
                name: "two images",
                upstream: r#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"iAAA"}},{"inlineData":{"mimeType":"image/jpeg","data":"/9j/"}}]}}]}"#,
                want: Ok(
                    json!({"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"},{"bytesBase64Encoded":"/9j/","mimeType":"image/jpeg"}]}),
                ),
            },
            ResponseCase {
                name: "image safety",
                upstream: r#"{"candidates":[{"finishReason":"IMAGE_SAFETY","finishMessage":"Unable to show the generated image."}]}"#,
                want: Err(TranslateError::NoImage(
                    "finishReason IMAGE_SAFETY: Unable to show the generated image.".into(),
                )),
            },
            ResponseCase {
                name: "no candidates",
                upstream: r#"{"promptFeedback":{"blockReason":"OTHER"}}"#,
                want: Err(TranslateError::NoImage(
                    "the prompt was blocked (OTHER)".into(),
                )),
            },
        ];
        check_responses(translator, cases);
    }
}
