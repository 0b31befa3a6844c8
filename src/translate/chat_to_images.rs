//! OpenAI `chat/completions` -> compat `images/generations`.
//!
//! For image families the configuration trusts the compat layer with
//! (`openai_images_families`). The request becomes
//! `{"model","prompt","n","size"?,"response_format":"b64_json"}`; the
//! `b64_json` images come back as one assistant message.

use super::openai::{self, ChatReply};
use super::{imagen, Exchange, TranslateError, Translated, Translator};
use std::ops::Range;

/// Chat completion in, `images/generations` out.
pub(crate) struct ChatToImages {
    model: String,
    reply: ChatReply,
}

impl ChatToImages {
    pub(crate) fn new(exchange: &Exchange<'_>) -> ChatToImages {
        ChatToImages {
            model: exchange.model.to_owned(),
            reply: ChatReply::new(exchange),
        }
    }
}

impl Translator for ChatToImages {
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
        openai::images_request_body(
            &self.model,
            &request.prompt,
            request.n.unwrap_or(1).clamp(1, imagen::MAX_SAMPLES),
            request.size.as_deref(),
        )
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let answer = openai::parse_images_answer(body)?;
        Ok(self.reply.write(&answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::testutil::*;
    use serde_json::json;

    const MODEL: &str = "gemini-2.5-flash-image";

    fn translator() -> ChatToImages {
        ChatToImages::new(&exchange(
            MODEL,
            Endpoint::ChatCompletions,
            Endpoint::ImagesGenerations,
        ))
    }

    #[test]
    fn requests() {
        let cases = [
            RequestCase {
                name: "minimal",
                body: r#"{"model":"gemini-2.5-flash-image","messages":[{"role":"user","content":"a cat"}]}"#,
                want: Ok(
                    json!({"model":MODEL,"prompt":"a cat","n":1,"response_format":"b64_json"}),
                ),
            },
            RequestCase {
                name: "size passed, n clamped, unicode",
                body: r#"{"messages":[{"role":"user","content":[{"type":"text","text":"日本の猫 🐱"}]}],"n":7,"size":"1024x1792"}"#,
                want: Ok(
                    json!({"model":MODEL,"prompt":"日本の猫 🐱","n":4,"size":"1024x1792","response_format":"b64_json"}),
                ),
            },
            RequestCase {
                name: "blank prompt",
                body: r#"{"messages":[{"role":"user","content":"   "}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(translator, cases);
    }

    #[test]
    fn responses() {
        struct Case {
            name: &'static str,
            stream: bool,
            upstream: &'static str,
            content: &'static str,
            finish_reason: &'static str,
        }
        let cases = [
            Case {
                name: "png and jpeg sniffed",
                stream: false,
                upstream: r#"{"created":1,"data":[{"b64_json":"iVBORw0KGgo","revised_prompt":"ignored"},{"b64_json":"/9j/4AAQ"}]}"#,
                content: "![image](data:image/png;base64,iVBORw0KGgo)\n\n![image](data:image/jpeg;base64,/9j/4AAQ)",
                finish_reason: "stop",
            },
            Case {
                name: "streamed",
                stream: true,
                upstream: r#"{"data":[{"b64_json":"iVBORw0KGgo"}]}"#,
                content: "![image](data:image/png;base64,iVBORw0KGgo)",
                finish_reason: "stop",
            },
            Case {
                name: "no data",
                stream: false,
                upstream: r#"{"created":1,"data":[]}"#,
                content: "No image was returned by gemini-2.5-flash-image. Reason: \"the answer has no b64_json images\"",
                finish_reason: "content_filter",
            },
            Case {
                name: "url only",
                stream: true,
                upstream: r#"{"data":[{"url":"https://example.com/x.png"}]}"#,
                content: "No image was returned by gemini-2.5-flash-image. Reason: \"the answer has no b64_json images\"",
                finish_reason: "content_filter",
            },
        ];
        for case in cases {
            let request = format!(
                r#"{{"messages":[{{"role":"user","content":"a cat"}}],"stream":{}}}"#,
                case.stream
            );
            let (_, got) = run(&mut translator(), &request, case.upstream);
            let values = if case.stream {
                chat_chunks(&got)
            } else {
                vec![chat_completion(&got)]
            };
            assert_eq!(content_text(&values), case.content, "{}", case.name);
            let finish = values
                .iter()
                .filter_map(|v| {
                    v["choices"].get(0)?["finish_reason"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect::<Vec<_>>();
            assert_eq!(finish, vec![case.finish_reason.to_owned()], "{}", case.name);
        }
    }
}
