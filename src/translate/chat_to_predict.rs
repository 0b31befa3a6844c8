//! OpenAI `chat/completions` -> Imagen `:predict`.
//!
//! The prompt is the text of the last user message; `n` becomes
//! `sampleCount` (1..=4) and `aspect_ratio` or `size` the nearest Imagen
//! `aspectRatio`. The predictions come back as one assistant message (or as
//! `chat.completion.chunk` events when the client streamed).

use super::openai::{self, ChatReply};
use super::{aspect, imagen, Exchange, TranslateError, Translated, Translator};
use std::ops::Range;

/// Chat completion in, `:predict` out.
pub(crate) struct ChatToPredict {
    reply: ChatReply,
}

impl ChatToPredict {
    pub(crate) fn new(exchange: &Exchange<'_>) -> ChatToPredict {
        ChatToPredict {
            reply: ChatReply::new(exchange),
        }
    }
}

impl Translator for ChatToPredict {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        self.translate_scanned_request(body, &[])
    }

    fn translate_scanned_request(
        &mut self,
        body: &[u8],
        long_strings: &[Range<usize>],
    ) -> Result<Vec<u8>, TranslateError> {
        let request = openai::parse_chat(body, long_strings)?;
        self.reply.for_request(&request);
        if request.prompt.is_empty() {
            return Err(TranslateError::NoPrompt);
        }
        imagen::PredictRequest {
            prompt: &request.prompt,
            sample_count: request.n.unwrap_or(1),
            aspect_ratio: request.aspect.map(|r| aspect::nearest(r, aspect::IMAGEN)),
        }
        .to_body()
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let answer = imagen::parse_answer(body)?;
        Ok(self.reply.write(&answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::testutil::*;
    use serde_json::{json, Value};

    const MODEL: &str = "imagen-4.0-generate-001";

    fn translator(parts: bool) -> ChatToPredict {
        let exchange = exchange(MODEL, Endpoint::ChatCompletions, Endpoint::Predict);
        ChatToPredict::new(&if parts {
            with_parts(exchange)
        } else {
            exchange
        })
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "string content",
                body: r#"{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"a cat"}]}"#,
                want: Ok(json!({"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":1}})),
            },
            RequestCase {
                name: "last user message, text parts joined, image part and history skipped",
                body: r#"{"model":"imagen-4.0-generate-001","n":2,"size":"1792x1024","messages":[
                    {"role":"system","content":"You are helpful"},
                    {"role":"user","content":"a dog"},
                    {"role":"assistant","content":"![image](data:image/png;base64,AAAA)\n"},
                    {"role":"user","content":[{"type":"text","text":"日本の猫"},{"type":"image_url","image_url":{"url":"data:image/png;base64,BBBB"}},{"type":"text","text":"🐱"}]}]}"#,
                want: Ok(
                    json!({"instances":[{"prompt":"日本の猫\n🐱"}],"parameters":{"sampleCount":2,"aspectRatio":"16:9"}}),
                ),
            },
            RequestCase {
                name: "aspect_ratio wins over size, n clamped",
                body: r#"{"messages":[{"role":"user","content":"x"}],"n":12,"size":"1024x1024","aspect_ratio":"9:16"}"#,
                want: Ok(
                    json!({"instances":[{"prompt":"x"}],"parameters":{"sampleCount":4,"aspectRatio":"9:16"}}),
                ),
            },
            RequestCase {
                name: "content before role",
                body: r#"{"messages":[{"content":"x y","role":"user"},{"content":"ignored","role":"assistant"}]}"#,
                want: Ok(json!({"instances":[{"prompt":"x y"}],"parameters":{"sampleCount":1}})),
            },
            RequestCase {
                name: "no user message",
                body: r#"{"messages":[{"role":"system","content":"x"}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
            RequestCase {
                name: "image only",
                body: r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
            RequestCase {
                name: "null content",
                body: r#"{"messages":[{"role":"user","content":null}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(|| translator(false), cases);
        for (name, body) in [
            ("not json", "{"),
            ("no messages", r#"{"model":"x"}"#),
            ("messages not a list", r#"{"messages":"hi"}"#),
            (
                "content a number",
                r#"{"messages":[{"role":"user","content":3}]}"#,
            ),
        ] {
            let got = translator(false).translate_request(body.as_bytes());
            assert!(
                matches!(got, Err(TranslateError::InvalidRequest(_))),
                "{name}: {got:?}"
            );
        }
    }

    #[test]
    fn responses() {
        struct Case {
            name: &'static str,
            parts: bool,
            upstream: String,
            content: Value,
            finish_reason: &'static str,
        }
        let (a, b) = (fake_b64('A', 4000), fake_b64('B', 3000));
        let two = format!(
            r#"{{"predictions":[{{"bytesBase64Encoded":"{a}","mimeType":"image/png"}},{{"mimeType":"image/jpeg","bytesBase64Encoded":"{b}"}}]}}"#
        );
        let cases = [
            Case {
                name: "two images as markdown",
                parts: false,
                upstream: two.clone(),
                content: json!(format!("![image](data:image/png;base64,{a})\n\n![image](data:image/jpeg;base64,{b})")),
                finish_reason: "stop",
            },
            Case {
                name: "two images as parts",
                parts: true,
                upstream: two,
                content: json!([
                    {"type":"image_url","image_url":{"url":format!("data:image/png;base64,{a}")}},
                    {"type":"image_url","image_url":{"url":format!("data:image/jpeg;base64,{b}")}}]),
                finish_reason: "stop",
            },
            Case {
                name: "filtered",
                parts: false,
                upstream: r#"{"predictions":[{"raiFilteredReason":"Your current safety filter threshold prohibited one or more images."}]}"#.into(),
                content: json!("No image was returned by imagen-4.0-generate-001. Reason: \"Your current safety filter threshold prohibited one or more images.\""),
                finish_reason: "content_filter",
            },
            Case {
                name: "empty answer",
                parts: true,
                upstream: "{}".into(),
                content: json!([{"type":"text","text":"No image was returned by imagen-4.0-generate-001. Reason: \"the answer has no predictions (Imagen leaves out images its safety filter blocks)\""}]),
                finish_reason: "content_filter",
            },
        ];
        for case in cases {
            let mut t = translator(case.parts);
            let (_, got) = run(
                &mut t,
                r#"{"messages":[{"role":"user","content":"a cat"}]}"#,
                &case.upstream,
            );
            let want = json!({
                "object":"chat.completion","created":CREATED,"model":MODEL,
                "choices":[{"index":0,"message":{"role":"assistant","content":case.content},"logprobs":null,"finish_reason":case.finish_reason}],
                "usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}});
            assert_eq!(chat_completion(&got), want, "{}", case.name);
        }
    }

    #[test]
    fn streams() {
        struct Case {
            name: &'static str,
            request: &'static str,
            upstream: &'static str,
            content: &'static str,
            finish_reason: &'static str,
            usage_chunk: bool,
        }
        let cases = [
            Case {
                name: "open webui request with usage",
                request: r#"{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"日本の猫 🐱"}],"stream":true,"stream_options":{"include_usage":true}}"#,
                upstream: r#"{"predictions":[{"bytesBase64Encoded":"iAAA","mimeType":"image/png"}]}"#,
                content: "![image](data:image/png;base64,iAAA)",
                finish_reason: "stop",
                usage_chunk: true,
            },
            Case {
                name: "stream without usage",
                request: r#"{"messages":[{"role":"user","content":"x"}],"stream":true}"#,
                upstream: r#"{"predictions":[{"bytesBase64Encoded":"iAAA"},{"bytesBase64Encoded":"iBBB"}]}"#,
                content: "![image](data:image/png;base64,iAAA)\n\n![image](data:image/png;base64,iBBB)",
                finish_reason: "stop",
                usage_chunk: false,
            },
            Case {
                name: "stream, filtered",
                request: r#"{"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":false}}"#,
                upstream: r#"{"predictions":[]}"#,
                content: "No image was returned by imagen-4.0-generate-001. Reason: \"the answer has no predictions (Imagen leaves out images its safety filter blocks)\"",
                finish_reason: "content_filter",
                usage_chunk: false,
            },
        ];
        for case in cases {
            let mut t = translator(false);
            let (_, got) = run(&mut t, case.request, case.upstream);
            let chunks = chat_chunks(&got);
            let head = json!({"object":"chat.completion.chunk","created":CREATED,"model":MODEL});
            let chunk = |choices: Value| {
                let mut c = head.clone();
                c["choices"] = choices;
                c
            };
            let mut want = vec![
                chunk(
                    json!([{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]),
                ),
                chunk(
                    json!([{"index":0,"delta":{"content":case.content},"logprobs":null,"finish_reason":null}]),
                ),
                chunk(
                    json!([{"index":0,"delta":{},"logprobs":null,"finish_reason":case.finish_reason}]),
                ),
            ];
            if case.usage_chunk {
                let mut usage = chunk(json!([]));
                usage["usage"] = json!({"prompt_tokens":0,"completion_tokens":0,"total_tokens":0});
                want.push(usage);
            }
            assert_eq!(chunks, want, "{}", case.name);
            assert_eq!(content_text(&chunks), case.content, "{}", case.name);
        }
    }

    #[test]
    fn bad_upstream_answer_is_an_error() {
        let mut t = translator(false);
        t.translate_request(br#"{"messages":[{"role":"user","content":"x"}]}"#)
            .unwrap();
        let got = t.translate_response(b"<html>");
        assert!(
            matches!(got, Err(TranslateError::InvalidResponse(_))),
            "{got:?}"
        );
    }
}
