//! OpenAI `chat/completions` -> Gemini image model `:generateContent` or
//! `:streamGenerateContent?alt=sse`.
//!
//! The conversation becomes `contents`, so that an image can be edited turn
//! after turn ("now make the sky purple"): user messages become user turns
//! (text, then `data:` URL images), assistant messages model turns (text,
//! and the images the model made earlier, found as markdown data URLs in the
//! text or as `image_url` parts, as inline data); consecutive messages of one
//! role are merged into one turn. Images given by `http(s)` URL are skipped
//! (Gemini takes no URLs inline), and so are tool messages. The conversation
//! must end with a user message that has text, or there is nothing to answer
//! ([`TranslateError::NoPrompt`]). System messages become
//! `systemInstruction`; `responseModalities` asks for text and images. The
//! answer's text and images (collected across stream frames) come back as
//! one assistant message in their original order, with `usageMetadata` as
//! `usage`.
//!
//! Image data is borrowed from the request body and copied once, into the
//! new body (see `openai::parse_chat_conversation`).

use super::gemini::{self, ResponseBody};
use super::openai::{self, ChatReply, StreamState};
use super::{aspect, Exchange, TranslateError, Translated, Translator};
use crate::endpoint::Endpoint;
use std::ops::Range;

/// Chat completion in, `:generateContent` / `:streamGenerateContent` out.
pub(crate) struct ChatToGenerateContent {
    reply: ChatReply,
    /// The upstream answers with SSE events (`:streamGenerateContent`).
    sse: bool,
    /// Candidates asked for (`n`).
    candidates: usize,
    /// A streamed answer as written so far.
    stream: StreamState,
    /// Candidates that finished in the stream so far.
    finished: Vec<u32>,
    /// The closing events were written.
    closed: bool,
}

impl ChatToGenerateContent {
    pub(crate) fn new(exchange: &Exchange<'_>) -> ChatToGenerateContent {
        ChatToGenerateContent {
            reply: ChatReply::new(exchange),
            sse: exchange.to == Endpoint::StreamGenerateContent,
            candidates: 1,
            stream: StreamState::default(),
            finished: Vec::new(),
            closed: false,
        }
    }
}

impl Translator for ChatToGenerateContent {
    fn translate_request(&mut self, body: &[u8]) -> Result<Vec<u8>, TranslateError> {
        self.translate_scanned_request(body, &[])
    }

    fn translate_scanned_request(
        &mut self,
        body: &[u8],
        long_strings: &[Range<usize>],
    ) -> Result<Vec<u8>, TranslateError> {
        let request = openai::parse_chat_conversation(body, long_strings)?;
        self.reply.for_request(&request);
        self.candidates = request
            .n
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        if request.prompt.is_empty() || !request.contents.ends_with_user() {
            return Err(TranslateError::NoPrompt);
        }
        Ok(gemini::ImageRequest {
            contents: &request.contents,
            system: request.system.as_deref(),
            candidate_count: request.n,
            aspect_ratio: request.aspect.map(|r| aspect::nearest(r, aspect::GEMINI)),
        }
        .to_body())
    }

    fn translate_response(&mut self, body: &[u8]) -> Result<Translated, TranslateError> {
        let body = ResponseBody::split(body);
        let answer = body.answer()?;
        Ok(self.reply.write(&answer))
    }

    /// A streaming chat answered by `:streamGenerateContent` events: each
    /// event's text goes out as it arrives, an image once its event is
    /// complete, and the stream closes after the event in which every
    /// candidate finished (or when the upstream ends).
    fn streams(&self) -> bool {
        self.sse && self.reply.streams()
    }

    fn translate_event(&mut self, data: &[u8]) -> Result<(Vec<u8>, bool), TranslateError> {
        if self.closed || data.trim_ascii() == b"[DONE]" {
            return Ok((Vec::new(), self.closed));
        }
        let (answer, finished) = gemini::frame_answer(data)?;
        let mut out = self.reply.write_stream_part(&mut self.stream, &answer);
        for index in finished {
            if !self.finished.contains(&index) {
                self.finished.push(index);
            }
        }
        if self.finished.len() >= self.candidates {
            out.extend(self.end_stream(None));
        }
        Ok((out, self.closed))
    }

    fn end_stream(&mut self, note: Option<&str>) -> Vec<u8> {
        if std::mem::replace(&mut self.closed, true) {
            return Vec::new();
        }
        self.reply.write_stream_end(&mut self.stream, note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::translate::answer::Piece;
    use crate::translate::testutil::*;
    use serde_json::{json, Value};
    use std::borrow::Cow;

    const MODEL: &str = "gemini-2.5-flash-image";

    fn translator(to: Endpoint, parts: bool) -> ChatToGenerateContent {
        let exchange = exchange(MODEL, Endpoint::ChatCompletions, to);
        ChatToGenerateContent::new(&if parts {
            with_parts(exchange)
        } else {
            exchange
        })
    }

    #[test]
    fn requests() {
        let config = json!({"responseModalities":["TEXT","IMAGE"]});
        let cases = [
            RequestCase {
                name: "minimal",
                body: r#"{"model":"gemini-2.5-flash-image","messages":[{"role":"user","content":"a cat"}],"stream":true}"#,
                want: Ok(
                    json!({"contents":[{"role":"user","parts":[{"text":"a cat"}]}],"generationConfig":config}),
                ),
            },
            RequestCase {
                name: "system, n, aspect ratio from size",
                body: r#"{"messages":[{"role":"system","content":"Draw in watercolour."},{"role":"developer","content":[{"type":"text","text":"No text in images."}]},
                    {"role":"user","content":"日本の猫 🐱"}],"n":2,"size":"1536x1024"}"#,
                want: Ok(
                    json!({"contents":[{"role":"user","parts":[{"text":"日本の猫 🐱"}]}],
                    "systemInstruction":{"parts":[{"text":"Draw in watercolour.\n\nNo text in images."}]},
                    "generationConfig":{"responseModalities":["TEXT","IMAGE"],"candidateCount":2,"imageConfig":{"aspectRatio":"3:2"}}}),
                ),
            },
            RequestCase {
                name: "the conversation is sent: earlier user images and the model's image too",
                body: r#"{"messages":[
                    {"role":"user","content":[{"type":"text","text":"a cat"},{"type":"image_url","image_url":{"url":"data:image/png;base64,OLD"}}]},
                    {"role":"assistant","content":"![image](data:image/png;base64,GEN)"},
                    {"role":"user","content":[{"type":"text","text":"make it blue"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/NEW","detail":"high"}},
                        {"type":"image_url","image_url":{"url":"https://example.com/x.png"}},{"type":"image_url","image_url":"data:image/webp;base64,UklGR"}]}]}"#,
                want: Ok(json!({"contents":[
                    {"role":"user","parts":[{"text":"a cat"},{"inlineData":{"mimeType":"image/png","data":"OLD"}}]},
                    {"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"GEN"}}]},
                    {"role":"user","parts":[{"text":"make it blue"},
                        {"inlineData":{"mimeType":"image/jpeg","data":"/9j/NEW"}},
                        {"inlineData":{"mimeType":"image/webp","data":"UklGR"}}]}],"generationConfig":config})),
            },
            RequestCase {
                name: "two-turn edit: our own markdown answer becomes a model turn with inline data",
                body: r#"{"model":"gemini-2.5-flash-image","stream":true,"messages":[
                    {"role":"system","content":"Photorealistic."},
                    {"role":"user","content":"a house by a lake"},
                    {"role":"assistant","content":"Here is your house:\n\n![image](data:image/png;base64,iVBORw0KGgo)"},
                    {"role":"user","content":"now make the sky purple"}]}"#,
                want: Ok(json!({"contents":[
                    {"role":"user","parts":[{"text":"a house by a lake"}]},
                    {"role":"model","parts":[{"text":"Here is your house:"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo"}}]},
                    {"role":"user","parts":[{"text":"now make the sky purple"}]}],
                    "systemInstruction":{"parts":[{"text":"Photorealistic."}]},"generationConfig":config})),
            },
            RequestCase {
                name: "image_url parts in the assistant's history (image_url_parts answers)",
                body: r#"{"messages":[
                    {"role":"user","content":"a fox"},
                    {"role":"assistant","content":[{"type":"text","text":"A fox:"},{"type":"image_url","image_url":{"url":"data:image/png;base64,FOX1"}}]},
                    {"role":"user","content":"in the snow"},
                    {"role":"assistant","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,FOX2"}},{"type":"image_url","image_url":{"url":"https://cdn.example.com/fox.png"}}]},
                    {"role":"user","content":"at night"}]}"#,
                want: Ok(json!({"contents":[
                    {"role":"user","parts":[{"text":"a fox"}]},
                    {"role":"model","parts":[{"text":"A fox:"},{"inlineData":{"mimeType":"image/png","data":"FOX1"}}]},
                    {"role":"user","parts":[{"text":"in the snow"}]},
                    {"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"FOX2"}}]},
                    {"role":"user","parts":[{"text":"at night"}]}],"generationConfig":config})),
            },
            RequestCase {
                name: "consecutive user messages are one turn; a trailing empty assistant message is not a turn",
                body: r#"{"messages":[{"role":"user","content":"old prompt"},{"role":"user","content":"new prompt"},{"role":"assistant","content":""}]}"#,
                want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"old prompt"},{"text":"new prompt"}]}],"generationConfig":config})),
            },
            RequestCase {
                name: "unicode conversation",
                body: r#"{"messages":[{"role":"user","content":"日本の猫 🐱"},
                    {"role":"assistant","content":"どうぞ 🐈\n\n![image](data:image/png;base64,NEKO)"},
                    {"role":"user","content":"空を紫に \u2014 🟣"}]}"#,
                want: Ok(json!({"contents":[
                    {"role":"user","parts":[{"text":"日本の猫 🐱"}]},
                    {"role":"model","parts":[{"text":"どうぞ 🐈"},{"inlineData":{"mimeType":"image/png","data":"NEKO"}}]},
                    {"role":"user","parts":[{"text":"空を紫に — 🟣"}]}],"generationConfig":config})),
            },
            RequestCase {
                name: "last message is the assistant's: nothing to answer",
                body: r#"{"messages":[{"role":"user","content":"a cat"},{"role":"assistant","content":"![image](data:image/png;base64,GEN)"}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
            RequestCase {
                name: "last user message has no text",
                body: r#"{"messages":[{"role":"user","content":"a cat"},{"role":"assistant","content":"ok"},
                    {"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
            RequestCase {
                name: "aspect_ratio field",
                body: r#"{"messages":[{"role":"user","content":"x"}],"aspect_ratio":"21:9"}"#,
                want: Ok(json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                    "generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"21:9"}}})),
            },
            RequestCase {
                name: "no prompt",
                body: r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
                want: Err(TranslateError::NoPrompt),
            },
        ];
        check_requests(|| translator(Endpoint::GenerateContent, false), cases);
    }

    fn frame(parts: Value, extra: Value) -> String {
        let mut response =
            json!({"candidates":[{"content":{"role":"model","parts":parts},"index":0}]});
        if let (Some(r), Some(extra)) = (response.as_object_mut(), extra.as_object()) {
            r.extend(extra.clone());
        }
        format!("data: {response}\r\n\r\n")
    }

    #[test]
    fn responses() {
        struct Case {
            name: &'static str,
            to: Endpoint,
            parts: bool,
            stream: bool,
            upstream: String,
            content: Value,
            finish_reason: &'static str,
            usage: Value,
        }
        let img = fake_b64('Q', 5000);
        let usage_meta = json!({"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1290,"totalTokenCount":1297}});
        let usage = json!({"prompt_tokens":7,"completion_tokens":1290,"total_tokens":1297});
        let zero = json!({"prompt_tokens":0,"completion_tokens":0,"total_tokens":0});
        let sse = [
            frame(json!([{"text":"Here is "}]), json!({})),
            frame(json!([{"text":"your cat:"}]), json!({})),
            frame(
                json!([{"inlineData":{"mimeType":"image/png","data":img}}]),
                json!({}),
            ),
            frame(json!([{"text":"Enjoy!"}]), usage_meta.clone()),
        ]
        .concat();
        let unary = json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Here is your cat:"},{"inlineData":{"mimeType":"image/png","data":img}}]},"finishReason":"STOP","index":0}],
            "usageMetadata":usage_meta["usageMetadata"]}).to_string();
        let markdown = json!(format!(
            "Here is your cat:\n\n![image](data:image/png;base64,{img})\n\nEnjoy!"
        ));
        let cases = [
            Case {
                name: "unary, text and image",
                to: Endpoint::GenerateContent,
                parts: false,
                stream: false,
                upstream: unary.clone(),
                content: json!(format!("Here is your cat:\n\n![image](data:image/png;base64,{img})")),
                finish_reason: "stop",
                usage: usage.clone(),
            },
            Case {
                name: "unary as parts",
                to: Endpoint::GenerateContent,
                parts: true,
                stream: false,
                upstream: unary,
                content: json!([{"type":"text","text":"Here is your cat:"},{"type":"image_url","image_url":{"url":format!("data:image/png;base64,{img}")}}]),
                finish_reason: "stop",
                usage: usage.clone(),
            },
            Case {
                name: "sse collected, not streamed to client",
                to: Endpoint::StreamGenerateContent,
                parts: false,
                stream: false,
                upstream: sse.clone(),
                content: markdown.clone(),
                finish_reason: "stop",
                usage: usage.clone(),
            },
            Case {
                name: "sse collected and streamed",
                to: Endpoint::StreamGenerateContent,
                parts: false,
                stream: true,
                upstream: sse,
                content: markdown,
                finish_reason: "stop",
                usage,
            },
            Case {
                name: "image safety",
                to: Endpoint::StreamGenerateContent,
                parts: false,
                stream: true,
                upstream: "data: {\"candidates\":[{\"finishReason\":\"IMAGE_SAFETY\",\"index\":0}]}\n\n".into(),
                content: json!("No image was returned by gemini-2.5-flash-image. Reason: \"finishReason IMAGE_SAFETY\""),
                finish_reason: "content_filter",
                usage: zero.clone(),
            },
            Case {
                name: "text only answer is passed on",
                to: Endpoint::GenerateContent,
                parts: false,
                stream: false,
                upstream: r#"{"candidates":[{"content":{"parts":[{"text":"Which cat do you mean?"}]},"finishReason":"STOP"}]}"#.into(),
                content: json!("Which cat do you mean?"),
                finish_reason: "stop",
                usage: zero.clone(),
            },
            Case {
                name: "text with a safety stop says both",
                to: Endpoint::GenerateContent,
                parts: false,
                stream: false,
                upstream: r#"{"candidates":[{"content":{"parts":[{"text":"I will draw it."}]},"finishReason":"IMAGE_SAFETY","finishMessage":"blocked"}]}"#.into(),
                content: json!("I will draw it.\n\nNo image was returned by gemini-2.5-flash-image. Reason: \"finishReason IMAGE_SAFETY: blocked\""),
                finish_reason: "content_filter",
                usage: zero.clone(),
            },
            Case {
                name: "prompt blocked",
                to: Endpoint::GenerateContent,
                parts: true,
                stream: false,
                upstream: r#"{"promptFeedback":{"blockReason":"SAFETY","blockReasonMessage":"unsafe prompt"},"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}"#.into(),
                content: json!([{"type":"text","text":"No image was returned by gemini-2.5-flash-image. Reason: \"the prompt was blocked (SAFETY): unsafe prompt\""}]),
                finish_reason: "content_filter",
                usage: json!({"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}),
            },
        ];
        for case in cases {
            let request = format!(
                r#"{{"messages":[{{"role":"user","content":"a cat"}}],"stream":{},"stream_options":{{"include_usage":true}}}}"#,
                case.stream
            );
            let (_, got) = run(
                &mut translator(case.to, case.parts),
                &request,
                &case.upstream,
            );
            if case.stream {
                let chunks = chat_chunks(&got);
                assert_eq!(chunks.len(), 4, "{}", case.name);
                assert_eq!(
                    chunks[0]["choices"][0]["delta"],
                    json!({"role":"assistant","content":""}),
                    "{}",
                    case.name
                );
                assert_eq!(
                    chunks[1]["choices"][0]["delta"]["content"], case.content,
                    "{}",
                    case.name
                );
                assert_eq!(
                    chunks[2]["choices"][0]["finish_reason"],
                    json!(case.finish_reason),
                    "{}",
                    case.name
                );
                assert_eq!(chunks[3]["choices"], json!([]), "{}", case.name);
                assert_eq!(chunks[3]["usage"], case.usage, "{}", case.name);
            } else {
                let want = json!({"object":"chat.completion","created":CREATED,"model":MODEL,
                    "choices":[{"index":0,"message":{"role":"assistant","content":case.content},"logprobs":null,"finish_reason":case.finish_reason}],
                    "usage":case.usage});
                assert_eq!(chat_completion(&got), want, "{}", case.name);
            }
        }
    }

    #[test]
    fn a_long_conversation_is_copied_once_into_a_right_sized_buffer() {
        const MB: usize = 1024 * 1024;
        let (a, b, c) = (
            fake_b64('A', 2 * MB),
            fake_b64('B', 2 * MB),
            fake_b64('C', 2 * MB),
        );
        // Turn one: the user's photo; turn two: the model's answer as our
        // own markdown (escaped newlines around the image) and a second
        // image as a part; turn three: the edit.
        // Written by hand: clients put `role` before `content` (a
        // `serde_json::Value` would sort the keys).
        let body = format!(
            r#"{{"model":"{MODEL}","messages":[
            {{"role":"user","content":[{{"type":"text","text":"a house by a lake"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{a}"}}}}]}},
            {{"role":"assistant","content":"Here is your house:\n\n![image](data:image/png;base64,{b})"}},
            {{"role":"user","content":"now make the sky purple"}},
            {{"role":"assistant","content":[{{"type":"text","text":"Purple:"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{c}"}}}}]}},
            {{"role":"user","content":"and add a moon"}}]}}"#
        );
        let images = a.len() + b.len() + c.len();

        let parsed = openai::parse_chat_conversation(body.as_bytes(), &[]).unwrap();
        let range = body.as_bytes().as_ptr_range();
        let borrowed: Vec<bool> = parsed
            .contents
            .turns()
            .iter()
            .flat_map(|turn| &turn.parts)
            .filter_map(|piece| match piece {
                Piece::Image(image) => {
                    Some(matches!(&image.data, Cow::Borrowed(d) if range.contains(&d.as_ptr())))
                }
                Piece::Text(_) => None,
            })
            .collect();
        assert_eq!(
            borrowed,
            [true, true, true],
            "image data borrowed from the body"
        );

        let sent = translator(Endpoint::GenerateContent, false)
            .translate_request(body.as_bytes())
            .unwrap();
        assert!(
            sent.len() > images && sent.len() < images + 1024,
            "length {}",
            sent.len()
        );
        assert!(
            sent.capacity() < images + 4096,
            "one buffer, never regrown: capacity {}",
            sent.capacity()
        );
        let sent = json(&sent);
        let datas: Vec<&str> = sent["contents"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|turn| turn["parts"].as_array().unwrap())
            .filter_map(|part| part["inlineData"]["data"].as_str())
            .collect();
        assert_eq!(datas, [a.as_str(), b.as_str(), c.as_str()]);
        let roles: Vec<&str> = sent["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|turn| turn["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "model", "user", "model", "user"]);
    }

    #[test]
    fn large_images_are_copied_once_into_a_right_sized_buffer() {
        let img = fake_b64('Z', 3 * 1024 * 1024);
        let upstream = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/png","data":"{img}"}}}}]}}}}]}}"#
        );
        let mut t = translator(Endpoint::GenerateContent, false);
        let (_, got) = run(
            &mut t,
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            &upstream,
        );
        assert!(
            got.body.capacity() < img.len() + 4096,
            "capacity {}",
            got.body.capacity()
        );
        let content = content_text(&[chat_completion(&got)]);
        assert_eq!(content, format!("![image](data:image/png;base64,{img})"));
    }

    #[test]
    fn image_data_is_copied_as_is_only_when_it_needs_no_escape() {
        // Plain base64 is copied as it is; data with escapes in the request
        // (a quote, a backslash, a control character: not base64, but the
        // client's to send) is decoded and escaped again, so the body sent
        // is JSON whatever the data holds.
        let cases = [
            (r#"QUJD+/8="#, "QUJD+/8="),
            (
                r#"AB\"}]}],\"x\":\"C\\D\u0001"#,
                "AB\"}]}],\"x\":\"C\\D\u{1}",
            ),
            (r#"\u0041BC"#, "ABC"),
        ];
        for (raw, want) in cases {
            let body = format!(
                r#"{{"messages":[{{"role":"user","content":[{{"type":"text","text":"edit"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{raw}"}}}}]}}]}}"#
            );
            let mut t = translator(Endpoint::GenerateContent, false);
            let sent = t.translate_request(body.as_bytes()).unwrap();
            let sent: Value = serde_json::from_slice(&sent).unwrap();
            let parts = &sent["contents"][0]["parts"];
            assert_eq!(parts[1]["inlineData"]["data"], want, "{raw}");
            assert_eq!(parts.as_array().map(Vec::len), Some(2), "{raw}");
        }
    }

    /// The `delta.content` of each chunk event in `events`, and the
    /// finish reasons, in order; `[DONE]` as "DONE".
    fn deltas(events: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(events);
        text.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|e| {
                if e == "[DONE]" {
                    return "DONE".to_owned();
                }
                let v: Value = serde_json::from_str(e).unwrap();
                match (
                    &v["choices"][0]["delta"]["content"],
                    &v["choices"][0]["finish_reason"],
                ) {
                    (Value::String(c), _) => format!("content:{c}"),
                    (_, Value::String(f)) => format!("finish:{f}"),
                    _ if v["usage"].is_object() => "usage".to_owned(),
                    _ => "other".to_owned(),
                }
            })
            .collect()
    }

    #[test]
    fn a_streamed_answer_is_translated_event_by_event() {
        let exchange = exchange(
            MODEL,
            Endpoint::ChatCompletions,
            Endpoint::StreamGenerateContent,
        );
        let mut t = ChatToGenerateContent::new(&exchange);
        t.translate_request(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a cat"}]}"#,
        )
        .unwrap();
        assert!(t.streams());
        let frames: [&[u8]; 4] = [
            br#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":"Here is "}]}}]}"#,
            br#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"text":"your cat"}]}}]}"#,
            br#"{"candidates":[{"index":0,"content":{"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"iVBOR"}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":5,"totalTokenCount":7}}"#,
            b"[DONE]",
        ];
        let got: Vec<(Vec<String>, bool)> = frames
            .iter()
            .map(|f| {
                let (events, done) = t.translate_event(f).unwrap();
                (deltas(&events), done)
            })
            .collect();
        let want = vec![
            (
                vec!["content:".to_owned(), "content:Here is ".to_owned()],
                false,
            ),
            (vec!["content:your cat".to_owned()], false),
            (
                vec![
                    "content:\n\n![image](data:image/png;base64,iVBOR)".to_owned(),
                    "finish:stop".to_owned(),
                    "usage".to_owned(),
                    "DONE".to_owned(),
                ],
                true,
            ),
            (vec![], true),
        ];
        assert_eq!(got, want);
        assert!(t.end_stream(None).is_empty(), "closed once");
    }

    #[test]
    fn a_streamed_answer_without_an_image_says_why_at_the_end() {
        let streamed = exchange(
            MODEL,
            Endpoint::ChatCompletions,
            Endpoint::StreamGenerateContent,
        );
        let mut t = ChatToGenerateContent::new(&streamed);
        t.translate_request(br#"{"stream":true,"messages":[{"role":"user","content":"a cat"}]}"#)
            .unwrap();
        let (events, done) = t
            .translate_event(br#"{"candidates":[{"index":0,"content":{"parts":[{"text":"I can't draw that."}]}}]}"#)
            .unwrap();
        assert_eq!(deltas(&events), ["content:", "content:I can't draw that."]);
        assert!(!done);
        // Text alone is passed on as text, as in a whole answer.
        assert_eq!(deltas(&t.end_stream(None)), ["finish:stop", "DONE"]);
        let mut blocked = ChatToGenerateContent::new(&streamed);
        blocked
            .translate_request(br#"{"stream":true,"messages":[{"role":"user","content":"a cat"}]}"#)
            .unwrap();
        let (events, done) = blocked
            .translate_event(br#"{"candidates":[{"index":0,"finishReason":"IMAGE_SAFETY"}]}"#)
            .unwrap();
        assert!(done);
        assert_eq!(
            deltas(&events),
            [
                "content:".to_owned(),
                format!("content:No image was returned by {MODEL}. Reason: \"finishReason IMAGE_SAFETY\""),
                "finish:content_filter".to_owned(),
                "DONE".to_owned()
            ]
        );
        let mut failed = ChatToGenerateContent::new(&streamed);
        failed
            .translate_request(br#"{"stream":true,"messages":[{"role":"user","content":"x"}]}"#)
            .unwrap();
        assert_eq!(
            deltas(&failed.end_stream(Some("gemini-router: too large"))),
            [
                "content:",
                "content:gemini-router: too large",
                "finish:content_filter",
                "DONE"
            ]
        );
        // Not streamed: a whole answer, or an upstream that does not stream.
        let unary = exchange(MODEL, Endpoint::ChatCompletions, Endpoint::GenerateContent);
        let mut t = ChatToGenerateContent::new(&unary);
        t.translate_request(br#"{"stream":true,"messages":[{"role":"user","content":"x"}]}"#)
            .unwrap();
        assert!(!t.streams());
    }
}
