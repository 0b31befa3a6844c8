//! OpenAI `images/generations` -> Gemini image model `:generateContent` (or
//! `:streamGenerateContent`, collected).
//!
//! The answer comes back as `{"created","data":[{"b64_json","revised_prompt"?}]}`
//! where `revised_prompt` carries what the model said in text. No image is an
//! error ([`TranslateError::NoImage`]).

use super::gemini::{self, ResponseBody};
use super::openai;
use super::{aspect, Exchange, TranslateError, Translated, Translator};

/// `images/generations` in, `:generateContent` out.
pub(crate) struct ImagesToGenerateContent {
    created: u64,
}

impl ImagesToGenerateContent {
    pub(crate) fn new(exchange: &Exchange<'_>) -> ImagesToGenerateContent {
        ImagesToGenerateContent {
            created: exchange.created,
        }
    }
}

impl Translator for ImagesToGenerateContent {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let request = openai::parse_images(body)?;
        let contents = gemini::Contents::prompt(&request.prompt);
        Ok(gemini::ImageRequest {
            contents: &contents,
            system: None,
            candidate_count: request.n,
            aspect_ratio: request.aspect.map(|r| aspect::nearest(r, aspect::GEMINI)),
        }
        .to_body())
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let body = ResponseBody::split(body);
        let answer = body.answer()?;
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

    fn translator() -> ImagesToGenerateContent {
        ImagesToGenerateContent::new(&exchange(
            "gemini-2.5-flash-image",
            Endpoint::ImagesGenerations,
            Endpoint::GenerateContent,
        ))
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "openai sdk images.generate",
                body: r#"{"model":"gemini-2.5-flash-image","prompt":"日本の猫 🐱","n":1,"size":"1024x1024","response_format":"b64_json"}"#,
                want: Ok(
                    json!({"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],
                    "generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"1:1"}}}),
                ),
            },
            RequestCase {
                name: "several images",
                body: r#"{"prompt":"x","n":2}"#,
                want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                    "generationConfig":{"responseModalities":["TEXT","IMAGE"],"candidateCount":2}})),
            },
            RequestCase {
                name: "empty prompt",
                body: r#"{"prompt":""}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(translator, cases);
        let got = translator().translate_request(br#"{"prompt":3}"#);
        assert!(
            matches!(got, Err(TranslateError::InvalidRequest(_))),
            "{got:?}"
        );
    }

    #[test]
    fn responses() {
        let cases = [
            ResponseCase {
                name: "text becomes revised_prompt",
                upstream: r#"{"candidates":[{"content":{"parts":[{"text":"A calico cat."},{"inlineData":{"mimeType":"image/png","data":"iAAA"}}]},"finishReason":"STOP"}]}"#,
                want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA","revised_prompt":"A calico cat."}]})),
            },
            ResponseCase {
                name: "two candidates, no text",
                upstream: r#"{"candidates":[{"content":{"parts":[{"inlineData":{"data":"iAAA"}}]},"index":0},{"content":{"parts":[{"inlineData":{"data":"iBBB"}}]},"index":1}]}"#,
                want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA"},{"b64_json":"iBBB"}]})),
            },
            ResponseCase {
                name: "sse",
                upstream: "data: {\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"data\":\"iAAA\"}}]}}]}\n\ndata: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n",
                want: Ok(json!({"created":CREATED,"data":[{"b64_json":"iAAA"}]})),
            },
            ResponseCase {
                name: "image safety",
                upstream: r#"{"candidates":[{"finishReason":"IMAGE_SAFETY"}]}"#,
                want: Err(TranslateError::NoImage("finishReason IMAGE_SAFETY".into())),
            },
            ResponseCase {
                name: "text only",
                upstream: r#"{"candidates":[{"content":{"parts":[{"text":"Sorry, I can't."}]},"finishReason":"STOP"}]}"#,
                want: Err(TranslateError::NoImage("the model answered with text only: \"Sorry, I can't.\"".into())),
            },
        ];
        check_responses(translator, cases);
    }
}
