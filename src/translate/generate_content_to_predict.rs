//! Native `:generateContent` / `:streamGenerateContent` for an Imagen model
//! -> `:predict`.
//!
//! The prompt is the text of the last user content; `candidateCount` becomes
//! `sampleCount` and `imageConfig.aspectRatio` the nearest Imagen ratio. The
//! predictions come back as one `GenerateContentResponse` with `inlineData`
//! parts: a JSON object for `:generateContent`, and for
//! `:streamGenerateContent` one SSE event (`alt=sse`) or a one-element JSON
//! array. No image is an error ([`TranslateError::NoImage`]).

use super::gemini::{self, Framing};
use super::{aspect, imagen, Exchange, TranslateError, Translated, Translator};
use crate::endpoint::Endpoint;

/// `:generateContent` in, `:predict` out.
pub(crate) struct GenerateContentToPredict {
    model: String,
    framing: Framing,
}

impl GenerateContentToPredict {
    pub(crate) fn new(exchange: &Exchange<'_>) -> GenerateContentToPredict {
        let framing = match (exchange.from, exchange.client_sse) {
            (Endpoint::StreamGenerateContent, true) => Framing::Sse,
            (Endpoint::StreamGenerateContent, false) => Framing::Array,
            _ => Framing::Object,
        };
        GenerateContentToPredict {
            model: exchange.model.to_owned(),
            framing,
        }
    }
}

impl Translator for GenerateContentToPredict {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let request = gemini::parse_request(body)?;
        imagen::PredictRequest {
            prompt: &request.prompt,
            sample_count: request.candidate_count.unwrap_or(1),
            aspect_ratio: request
                .aspect_ratio
                .as_deref()
                .and_then(aspect::ratio)
                .map(|r| aspect::nearest(r, aspect::IMAGEN)),
        }
        .to_body()
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let answer = imagen::parse_answer(body)?;
        answer.require_image()?;
        Ok(gemini::write_answer(&answer, &self.model, self.framing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse;
    use crate::translate::testutil::*;
    use serde_json::{json, Value};

    const MODEL: &str = "imagen-4.0-generate-001";

    fn translator(from: Endpoint, client_sse: bool) -> GenerateContentToPredict {
        let mut exchange = exchange(MODEL, from, Endpoint::Predict);
        exchange.client_sse = client_sse;
        GenerateContentToPredict::new(&exchange)
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "google-genai generate_content",
                body: r#"{"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],"generationConfig":{"responseModalities":["IMAGE"]}}"#,
                want: Ok(
                    json!({"instances":[{"prompt":"日本の猫 🐱"}],"parameters":{"sampleCount":1}}),
                ),
            },
            RequestCase {
                name: "candidates and aspect ratio",
                body: r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":3,"imageConfig":{"aspectRatio":"3:2"}}}"#,
                want: Ok(
                    json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":3,"aspectRatio":"4:3"}}),
                ),
            },
            RequestCase {
                name: "too many candidates",
                body: r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":8}}"#,
                want: Ok(json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":4}})),
            },
            RequestCase {
                name: "no text",
                body: r#"{"contents":[]}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(|| translator(Endpoint::GenerateContent, false), cases);
    }

    #[test]
    fn responses() {
        struct Case {
            name: &'static str,
            from: Endpoint,
            client_sse: bool,
            content_type: &'static str,
        }
        let cases = [
            Case {
                name: "unary",
                from: Endpoint::GenerateContent,
                client_sse: false,
                content_type: "application/json",
            },
            Case {
                name: "stream sse",
                from: Endpoint::StreamGenerateContent,
                client_sse: true,
                content_type: "text/event-stream",
            },
            Case {
                name: "stream array",
                from: Endpoint::StreamGenerateContent,
                client_sse: false,
                content_type: "application/json",
            },
        ];
        let upstream = r#"{"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"},{"bytesBase64Encoded":"iBBB","mimeType":"image/png"}]}"#;
        let want = json!({"candidates":[{"content":{"role":"model","parts":[
            {"inlineData":{"mimeType":"image/png","data":"iAAA"}},{"inlineData":{"mimeType":"image/png","data":"iBBB"}}]},
            "finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":0,"candidatesTokenCount":0,"totalTokenCount":0},
            "modelVersion":MODEL});
        for case in cases {
            let got = translator(case.from, case.client_sse)
                .translate_response(upstream.as_bytes())
                .unwrap();
            assert_eq!(got.content_type, case.content_type, "{}", case.name);
            let docs: Vec<Value> = match (case.from, case.client_sse) {
                (Endpoint::GenerateContent, _) => vec![json(&got.body)],
                (_, true) => sse::data_frames(&got.body)
                    .iter()
                    .map(|f| json(f))
                    .collect(),
                (_, false) => serde_json::from_slice(&got.body).unwrap(),
            };
            assert_eq!(docs, vec![want.clone()], "{}", case.name);
        }
    }

    #[test]
    fn no_image_is_an_error() {
        let cases = [
            ResponseCase {
                name: "filtered",
                upstream: r#"{"predictions":[{"raiFilteredReason":"blocked"}]}"#,
                want: Err(TranslateError::NoImage("blocked".into())),
            },
            ResponseCase {
                name: "empty",
                upstream: r#"{"predictions":[]}"#,
                want: Err(TranslateError::NoImage(
                    "the answer has no predictions (Imagen leaves out images its safety filter blocks)".into(),
                )),
            },
        ];
        check_responses(|| translator(Endpoint::StreamGenerateContent, true), cases);
    }
}
