//! Gemini `:generateContent` / `:streamGenerateContent` shapes: the image
//! request (written for Gemini image models, read from native clients) and
//! the `GenerateContentResponse` (read from one object, a JSON array or an SSE
//! stream; written for native clients).

use super::answer::{Answer, Image, Piece, Usage, DEFAULT_MIME};
use super::aspect;
use super::codec::ImageAsk;
use super::{TranslateError, Translated};
use crate::headers::{EVENT_STREAM, JSON};
use crate::json::Out;
use crate::reader::{self, JStr, ReadError, Reader};
use crate::sse;
use std::borrow::Cow;

/// Who speaks a turn of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    User,
    Model,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Model => "model",
        }
    }
}

/// One `contents[]` entry: a role and its text and `inlineData` parts, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Turn<'a> {
    pub(crate) role: Role,
    pub(crate) parts: Vec<Piece<'a>>,
}

/// The `contents` of a request, built turn by turn.
///
/// Consecutive turns of one role are merged into one: Gemini documents
/// alternating user and model turns, and whether it accepts two of a role in
/// a row is unconfirmed. Blank text parts and turns left without parts are
/// dropped (Gemini refuses a content without parts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Contents<'a> {
    turns: Vec<Turn<'a>>,
}

impl<'a> Contents<'a> {
    /// One user turn with `prompt` as its only part.
    pub(crate) fn prompt(prompt: &str) -> Contents<'a> {
        let mut contents = Contents::default();
        contents.push(Role::User, vec![Piece::Text(prompt.to_owned())]);
        contents
    }

    /// Appends a turn, or its parts to the last turn when that has the same role.
    pub(crate) fn push(&mut self, role: Role, mut parts: Vec<Piece<'a>>) {
        parts.retain(|part| !matches!(part, Piece::Text(text) if text.trim().is_empty()));
        match self.turns.last_mut() {
            Some(last) if last.role == role => last.parts.append(&mut parts),
            _ => {
                if !parts.is_empty() {
                    self.turns.push(Turn { role, parts });
                }
            }
        }
    }

    /// The turns, in order.
    pub(crate) fn turns(&self) -> &[Turn<'a>] {
        &self.turns
    }

    /// Whether the last turn is the user's (Gemini answers the last user turn;
    /// a conversation that ends with the model has nothing to answer).
    pub(crate) fn ends_with_user(&self) -> bool {
        self.turns
            .last()
            .is_some_and(|turn| turn.role == Role::User)
    }

    /// Bytes of text and image data, to size the request buffer.
    fn payload_len(&self) -> usize {
        self.turns
            .iter()
            .flat_map(|turn| &turn.parts)
            .map(|part| match part {
                // Room for escapes, so the buffer never regrows (and copies
                // the images again).
                Piece::Text(text) => text.len() * 2 + 16,
                Piece::Image(image) => image.data.len() + image.mime.len() * 2 + 64,
            })
            .sum::<usize>()
            + self.turns.len() * 32
    }
}

/// A `:generateContent` request that asks a Gemini image model for images.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageRequest<'r, 'a> {
    /// The conversation (often one user turn); the model answers its last
    /// user turn, whose images (and earlier ones) are the images to edit.
    pub(crate) contents: &'r Contents<'a>,
    /// `systemInstruction` text.
    pub(crate) system: Option<&'r str>,
    /// Sent only when more than one image is asked for.
    pub(crate) candidate_count: Option<i64>,
    pub(crate) aspect_ratio: Option<&'static str>,
}

impl ImageRequest<'_, '_> {
    /// The JSON body, written into one buffer sized for it, so each image
    /// is copied once.
    #[inline(never)]
    pub(crate) fn to_body(&self) -> Vec<u8> {
        let system = self.system.filter(|s| !s.is_empty());
        let mut out = Out::with_capacity(
            self.contents.payload_len() + system.map_or(0, |s| s.len() * 2) + 256,
        );
        out.raw_inline("{\"contents\":[");
        for (i, turn) in self.contents.turns().iter().enumerate() {
            if i > 0 {
                out.raw_inline(",");
            }
            out.raw_inline("{\"role\":\"")
                .raw_inline(turn.role.as_str())
                .raw_inline("\",\"parts\":[");
            write_parts(&mut out, &turn.parts);
            out.raw_inline("]}");
        }
        out.raw_inline("]");
        if let Some(text) = system {
            out.raw_inline(",\"systemInstruction\":{\"parts\":[{\"text\":")
                .string(text)
                .raw_inline("}]}");
        }
        // The 2.0 preview image model refuses IMAGE alone.
        out.raw_inline(",\"generationConfig\":{\"responseModalities\":[\"TEXT\",\"IMAGE\"]");
        if let Some(n) = self
            .candidate_count
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n > 1)
        {
            out.raw_inline(",\"candidateCount\":").number(n);
        }
        if let Some(ratio) = self.aspect_ratio {
            out.raw_inline(",\"imageConfig\":{\"aspectRatio\":")
                .string(ratio)
                .raw_inline("}");
        }
        out.raw_inline("}}");
        out.into_bytes()
    }
}

/// Writes text and `inlineData` parts, comma separated.
fn write_parts(out: &mut Out, parts: &[Piece<'_>]) {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.raw_inline(",");
        }
        match part {
            Piece::Text(text) => {
                out.raw_inline("{\"text\":").string(text).raw_inline("}");
            }
            Piece::Image(image) => {
                out.raw_inline("{\"inlineData\":{\"mimeType\":")
                    .string(&image.mime)
                    .raw_inline(",\"data\":\"")
                    .unquoted(&image.data, image.plain_json)
                    .raw_inline("\"}}");
            }
        }
    }
}

/// Reads a client's `:generateContent` body (camelCase or snake_case fields,
/// `contents` as a list or one object); inline data parts are skipped unread.
#[inline(never)]
pub(crate) fn parse_request(body: &[u8]) -> Result<ImageAsk<'static>, TranslateError> {
    /// A content: its role and its parts' text (`thought` parts left out).
    #[derive(Default)]
    struct RawContent<'a> {
        role: Option<JStr<'a>>,
        texts: Vec<JStr<'a>>,
    }
    fn read_content<'a>(r: &mut Reader<'a, '_>) -> Result<RawContent<'a>, ReadError> {
        let mut content = RawContent::default();
        r.object(&mut |r, key| {
            if key.is("role") {
                content.role = r.opt_str()?;
            } else if key.is("parts") {
                let parts = r.opt(|r| r.one_or_many(read_part))?;
                content.texts = parts.into_iter().flatten().flatten().collect();
            } else {
                r.skip()?;
            }
            Ok(())
        })?;
        Ok(content)
    }
    /// A part's text, unless it is a thought.
    fn read_part<'a>(r: &mut Reader<'a, '_>) -> Result<Option<JStr<'a>>, ReadError> {
        let (mut text, mut thought) = (None, None);
        r.object(&mut |r, key| {
            if key.is("text") {
                text = r.opt_str()?;
            } else if key.is("thought") {
                thought = r.opt_bool()?;
            } else {
                r.skip()?;
            }
            Ok(())
        })?;
        Ok(text.filter(|_| thought != Some(true)))
    }
    let mut contents: Vec<RawContent> = Vec::new();
    let mut candidate_count = None;
    let mut aspect_ratio = None;
    let read = reader::document(body, |r| {
        r.object(&mut |r, key| {
            if key.is("contents") {
                contents = r.opt(|r| r.one_or_many(read_content))?.unwrap_or_default();
            } else if key.is_any(&["generationConfig", "generation_config"]) {
                (candidate_count, aspect_ratio) = (None, None);
                r.opt(|r| {
                    r.object(&mut |r, key| {
                        if key.is_any(&["candidateCount", "candidate_count"]) {
                            candidate_count = r.opt_int()?;
                        } else if key.is_any(&["imageConfig", "image_config"]) {
                            let config = r.opt(|r| {
                                r.field(&["aspectRatio", "aspect_ratio"], Reader::opt_str)
                            })?;
                            aspect_ratio = config.flatten().flatten();
                        } else {
                            r.skip()?;
                        }
                        Ok(())
                    })
                })?;
            } else {
                r.skip()?;
            }
            Ok(())
        })
    });
    read.map_err(TranslateError::unread_request)?;
    let last_user = contents
        .into_iter()
        .rev()
        .find(|c| c.role.as_deref().map_or(true, |role| role == "user"));
    let texts: Vec<String> = last_user
        .map(|c| c.texts)
        .unwrap_or_default()
        .into_iter()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .collect();
    let prompt = texts.join("\n");
    if prompt.is_empty() {
        return Err(TranslateError::NoPrompt);
    }
    Ok(ImageAsk {
        prompt,
        n: candidate_count,
        aspect: aspect_ratio.as_deref().and_then(aspect::ratio),
        ..ImageAsk::default()
    })
}

/// An upstream `GenerateContentResponse` body, split into its JSON documents
/// once so that the answer can borrow from them.
#[derive(Debug)]
pub(crate) struct ResponseBody<'a> {
    /// One document (`{...}` or `[...]`), or one per SSE event.
    frames: Vec<Cow<'a, [u8]>>,
    /// The single document is a JSON array of responses.
    array: bool,
}

impl<'a> ResponseBody<'a> {
    /// Recognises the framing by the first byte: `{` one response (unary),
    /// `[` a JSON array (streaming without `alt=sse`), otherwise SSE.
    pub(crate) fn split(body: &'a [u8]) -> ResponseBody<'a> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => ResponseBody {
                frames: vec![Cow::Borrowed(body)],
                array: false,
            },
            Some(b'[') => ResponseBody {
                frames: vec![Cow::Borrowed(body)],
                array: true,
            },
            _ => ResponseBody {
                frames: sse::data_frames(body),
                array: false,
            },
        }
    }

    /// Collects text and images across all responses, candidate by candidate.
    /// Thought parts (interim images of thinking models) are left out.
    #[inline(never)]
    pub(crate) fn answer(&self) -> Result<Answer<'_>, TranslateError> {
        let mut acc = Collector::default();
        for frame in &self.frames {
            let frame: &[u8] = frame;
            if !self.array && frame.trim_ascii() == b"[DONE]" {
                continue;
            }
            for response in read_responses(frame, self.array)? {
                acc.add(response)?;
            }
        }
        if acc.frames == 0 {
            return Err(TranslateError::invalid_response(
                "the stream carried no GenerateContentResponse",
            ));
        }
        Ok(acc.finish())
    }
}

/// One `GenerateContentResponse` of a stream: its answer, and the
/// indexes of the candidates that finished in it.
pub(crate) fn frame_answer(frame: &[u8]) -> Result<(Answer<'_>, Vec<u32>), TranslateError> {
    let mut acc = Collector::default();
    for response in read_responses(frame, false)? {
        acc.add(response)?;
    }
    let finished = acc
        .candidates
        .iter()
        .filter(|c| c.finish_reason.is_some())
        .map(|c| c.index)
        .collect();
    Ok((acc.finish(), finished))
}

/// One `GenerateContentResponse`: the fields read (camelCase or snake_case).
#[derive(Default)]
struct RawResponse<'a> {
    candidates: Option<Vec<RawCandidate<'a>>>,
    /// `promptFeedback`: `blockReason` and `blockReasonMessage`.
    blocked: Option<(JStr<'a>, Option<JStr<'a>>)>,
    /// `usageMetadata`: the prompt's, the candidates', the thoughts' and
    /// the total token counts.
    usage_metadata: Option<[Option<u64>; 4]>,
    /// `error`: `status` and `message`.
    error: Option<[Option<JStr<'a>>; 2]>,
}

#[derive(Default)]
struct RawCandidate<'a> {
    parts: Vec<RawPart<'a>>,
    finish_reason: Option<JStr<'a>>,
    finish_message: Option<JStr<'a>>,
    index: Option<u32>,
}

#[derive(Default)]
struct RawPart<'a> {
    text: Option<JStr<'a>>,
    /// `inlineData`: `mimeType` and `data`.
    inline_data: Option<[Option<JStr<'a>>; 2]>,
    thought: Option<bool>,
}

/// Reads one upstream JSON document: a response, or (`array`) a list of them.
fn read_responses(frame: &[u8], array: bool) -> Result<Vec<RawResponse<'_>>, TranslateError> {
    reader::document(frame, |r| {
        if array {
            r.list(read_response)
        } else {
            read_response(r).map(|response| vec![response])
        }
    })
    .map_err(TranslateError::unread_response)
}

fn read_response<'a>(r: &mut Reader<'a, '_>) -> Result<RawResponse<'a>, ReadError> {
    let mut response = RawResponse::default();
    r.object(&mut |r, key| {
        if key.is("candidates") {
            response.candidates = r.opt(|r| r.list(read_candidate))?;
        } else if key.is_any(&["promptFeedback", "prompt_feedback"]) {
            let feedback = r.opt(|r| {
                r.fields(
                    [
                        &["blockReason", "block_reason"],
                        &["blockReasonMessage", "block_reason_message"],
                    ],
                    Reader::opt_str,
                )
            })?;
            response.blocked = feedback.and_then(|[reason, message]| Some((reason?, message)));
        } else if key.is_any(&["usageMetadata", "usage_metadata"]) {
            response.usage_metadata = r.opt(|r| {
                r.fields(
                    [
                        &["promptTokenCount", "prompt_token_count"],
                        &["candidatesTokenCount", "candidates_token_count"],
                        &["thoughtsTokenCount", "thoughts_token_count"],
                        &["totalTokenCount", "total_token_count"],
                    ],
                    Reader::opt_uint,
                )
            })?;
        } else if key.is("error") {
            response.error = r.opt(|r| r.fields([&["status"], &["message"]], Reader::opt_str))?;
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(response)
}

fn read_candidate<'a>(r: &mut Reader<'a, '_>) -> Result<RawCandidate<'a>, ReadError> {
    let mut candidate = RawCandidate::default();
    r.object(&mut |r, key| {
        if key.is("content") {
            let content = r.opt(|r| r.field(&["parts"], |r| r.opt(|r| r.list(read_part))))?;
            candidate.parts = content.flatten().flatten().unwrap_or_default();
        } else if key.is_any(&["finishReason", "finish_reason"]) {
            candidate.finish_reason = r.opt_str()?;
        } else if key.is_any(&["finishMessage", "finish_message"]) {
            candidate.finish_message = r.opt_str()?;
        } else if key.is("index") {
            let at = r.expected("an index");
            candidate.index = match r.opt_uint()? {
                Some(index) => Some(u32::try_from(index).map_err(|_| ReadError {
                    what: "an index out of range",
                    ..at
                })?),
                None => None,
            };
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(candidate)
}

fn read_part<'a>(r: &mut Reader<'a, '_>) -> Result<RawPart<'a>, ReadError> {
    let mut part = RawPart::default();
    r.object(&mut |r, key| {
        if key.is("text") {
            part.text = r.opt_str()?;
        } else if key.is_any(&["inlineData", "inline_data"]) {
            part.inline_data =
                r.opt(|r| r.fields([&["mimeType", "mime_type"], &["data"]], Reader::opt_str))?;
        } else if key.is("thought") {
            part.thought = r.opt_bool()?;
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(part)
}

/// The most candidates an answer is read with.
const MAX_CANDIDATES: usize = 64;

/// One candidate's parts, accumulated across stream frames.
#[derive(Default)]
struct CandidateAcc<'a> {
    index: u32,
    answer: Answer<'a>,
    finish_reason: Option<String>,
    finish_message: Option<String>,
}

#[derive(Default)]
struct Collector<'a> {
    frames: usize,
    candidates: Vec<CandidateAcc<'a>>,
    blocked: Option<String>,
    usage: Option<Usage>,
}

impl<'a> Collector<'a> {
    fn add(&mut self, response: RawResponse<'a>) -> Result<(), TranslateError> {
        self.frames += 1;
        if let Some([status, message]) = response.error {
            let status = status.as_deref().unwrap_or("UNKNOWN").to_owned();
            let message = message.as_deref().unwrap_or("").to_owned();
            return Err(TranslateError::InvalidResponse(format!(
                "the upstream stream carried an error: {status}: {message}"
            )));
        }
        if let Some((reason, message)) = response.blocked {
            self.blocked = Some(with_message(
                format!("the prompt was blocked ({})", &*reason),
                message.as_deref(),
            ));
        }
        if let Some([prompt, candidates, thoughts, total]) = response.usage_metadata {
            let prompt = prompt.unwrap_or(0);
            let completion = candidates.unwrap_or(0) + thoughts.unwrap_or(0);
            self.usage = Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: total.unwrap_or(prompt + completion),
            });
        }
        for (position, candidate) in response
            .candidates
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let index = candidate
                .index
                .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
            let slot = match self.candidates.iter().position(|c| c.index == index) {
                Some(slot) => slot,
                // Gemini answers at most 8 candidates; many more (a hostile
                // answer) would make each lookup long.
                None if self.candidates.len() >= MAX_CANDIDATES => {
                    return Err(TranslateError::InvalidResponse(format!(
                        "the answer has more than {MAX_CANDIDATES} candidates"
                    )))
                }
                None => {
                    self.candidates.push(CandidateAcc {
                        index,
                        ..CandidateAcc::default()
                    });
                    self.candidates.len() - 1
                }
            };
            let Some(acc) = self.candidates.get_mut(slot) else {
                continue;
            };
            for part in candidate.parts {
                if part.thought == Some(true) {
                    continue;
                }
                if let Some(text) = part.text {
                    acc.answer.push_text(&text);
                }
                if let Some(data) = part
                    .inline_data
                    .and_then(|[mime, data]| data.filter(|d| !d.is_empty()).map(|d| (mime, d)))
                {
                    let (mime, data) = data;
                    acc.answer.push_image(Image::parsed(
                        mime.map_or(Cow::Borrowed(DEFAULT_MIME), JStr::into_cow),
                        data,
                        None,
                    ));
                }
            }
            if let Some(reason) = candidate.finish_reason {
                acc.finish_reason = Some(reason.to_string());
            }
            if let Some(message) = candidate.finish_message {
                acc.finish_message = Some(message.to_string());
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Answer<'a> {
        crate::scan::sort_small(&mut self.candidates, |c| u64::from(c.index));
        let mut answer = Answer {
            usage: self.usage,
            ..Answer::default()
        };
        if let Some(blocked) = self.blocked {
            answer.withheld.push(blocked);
        }
        for candidate in self.candidates {
            answer.pieces.extend(candidate.answer.pieces);
            match candidate.finish_reason.as_deref() {
                None | Some("STOP") | Some("FINISH_REASON_UNSPECIFIED") => {}
                Some(reason) => answer.withheld.push(with_message(
                    format!("finishReason {reason}"),
                    candidate.finish_message.as_deref(),
                )),
            }
        }
        answer
    }
}

fn with_message(reason: String, message: Option<&str>) -> String {
    match message.map(str::trim) {
        Some(message) if !message.is_empty() => format!("{reason}: {message}"),
        _ => reason,
    }
}

/// How a native client expects a `GenerateContentResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `:generateContent`: one JSON object.
    Object,
    /// `:streamGenerateContent` without `alt=sse`: a JSON array of responses.
    Array,
    /// `:streamGenerateContent?alt=sse`: `data: {...}` events.
    Sse,
}

/// Writes the answer as one `GenerateContentResponse` (text and
/// `inlineData` parts, `finishReason: STOP`, `usageMetadata` (zeros when
/// unknown), `modelVersion: model`).
#[inline(never)]
pub(crate) fn write_answer(answer: &Answer<'_>, model: &str, framing: Framing) -> Translated {
    let mut out = Out::with_capacity(answer.payload_len() + model.len() + 256);
    match framing {
        Framing::Object => {}
        Framing::Array => {
            out.raw("[");
        }
        Framing::Sse => {
            out.raw("data: ");
        }
    }
    out.raw("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[");
    write_parts(&mut out, &answer.pieces);
    out.raw("]},\"finishReason\":\"STOP\",\"index\":0}]");
    // Always present (zeros when the upstream gave none): clients such as
    // LiteLLM's gemini provider refuse an answer without it.
    let usage = answer.usage.unwrap_or_default();
    out.raw(",\"usageMetadata\":{\"promptTokenCount\":")
        .number(usage.prompt_tokens)
        .raw(",\"candidatesTokenCount\":")
        .number(usage.completion_tokens)
        .raw(",\"totalTokenCount\":")
        .number(usage.total_tokens)
        .raw("}");
    out.raw(",\"modelVersion\":").string(model).raw("}");
    let content_type = match framing {
        Framing::Object => JSON,
        Framing::Array => {
            out.raw("]");
            JSON
        }
        Framing::Sse => {
            out.raw("\r\n\r\n");
            EVENT_STREAM
        }
    };
    Translated {
        body: out.into_bytes(),
        content_type,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_answer_with_too_many_candidates_is_refused() {
        let candidates = |n: usize| {
            let list: Vec<String> = (0..n)
                .rev()
                .map(|i| format!(r#"{{"index":{i},"content":{{"parts":[{{"text":"{i}"}}]}}}}"#))
                .collect();
            format!(r#"{{"candidates":[{}]}}"#, list.join(","))
        };
        let ok = candidates(MAX_CANDIDATES);
        let (answer, _) = frame_answer(ok.as_bytes()).unwrap();
        assert_eq!(
            answer.text().split("\n\n").next(),
            Some("0"),
            "sorted by index"
        );
        let hostile = candidates(MAX_CANDIDATES + 1);
        assert!(matches!(
            frame_answer(hostile.as_bytes()),
            Err(TranslateError::InvalidResponse(_))
        ));
    }

    use super::*;
    use serde_json::{json, Value};

    /// An image as the parser reads it from a body: base64 is plain JSON text.
    fn png(data: &'static str) -> Image<'static> {
        Image {
            mime: Cow::Borrowed("image/png"),
            data: Cow::Borrowed(data),
            plain_json: true,
            revised_prompt: None,
        }
    }

    fn user(parts: Vec<Piece<'static>>) -> Turn<'static> {
        Turn {
            role: Role::User,
            parts,
        }
    }

    fn model(parts: Vec<Piece<'static>>) -> Turn<'static> {
        Turn {
            role: Role::Model,
            parts,
        }
    }

    fn contents(turns: Vec<Turn<'static>>) -> Contents<'static> {
        let mut contents = Contents::default();
        for turn in turns {
            contents.push(turn.role, turn.parts);
        }
        contents
    }

    #[test]
    fn a_conversation_merges_turns_of_a_role_and_drops_blank_ones() {
        let contents = contents(vec![
            user(vec![text("a cat")]),
            user(vec![Piece::Image(png("AAAA"))]),
            model(vec![text(" \n ")]),
            model(vec![
                text("Here:"),
                Piece::Image(png("BBBB")),
                text("Enjoy"),
            ]),
            user(vec![]),
            user(vec![text("now purple")]),
        ]);
        let request = ImageRequest {
            contents: &contents,
            system: None,
            candidate_count: None,
            aspect_ratio: None,
        };
        let got: Value = serde_json::from_slice(&request.to_body()).unwrap();
        let want = json!({"contents":[
            {"role":"user","parts":[{"text":"a cat"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]},
            {"role":"model","parts":[{"text":"Here:"},{"inlineData":{"mimeType":"image/png","data":"BBBB"}},{"text":"Enjoy"}]},
            {"role":"user","parts":[{"text":"now purple"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}});
        assert_eq!(got, want);
    }

    #[test]
    fn contents_end_with_user_or_not() {
        let cases = [
            ("empty", contents(vec![]), false),
            ("user", Contents::prompt("x"), true),
            (
                "model last",
                contents(vec![user(vec![text("x")]), model(vec![text("y")])]),
                false,
            ),
            (
                "empty model turn is not a turn",
                contents(vec![user(vec![text("x")]), model(vec![text("")])]),
                true,
            ),
        ];
        for (name, contents, want) in cases {
            assert_eq!(contents.ends_with_user(), want, "{name}");
        }
    }

    struct AnswerCase {
        name: &'static str,
        body: String,
        pieces: Vec<Piece<'static>>,
        withheld: Vec<&'static str>,
        usage: Option<Usage>,
    }

    fn text(t: &str) -> Piece<'static> {
        Piece::Text(t.to_owned())
    }

    #[test]
    fn parses_answers() {
        let unary = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Here is your cat"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]},"finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1290,"totalTokenCount":1295},"modelVersion":"gemini-2.5-flash-image"}"#;
        let frames = [
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Here "}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"it is"}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"inlineData":{"mimeType":"image/jpeg","data":"BBBB"}}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":10,"thoughtsTokenCount":2,"totalTokenCount":15}}"#,
        ];
        let stream_pieces = vec![
            text("Here it is"),
            Piece::Image(png("AAAA")),
            Piece::Image(Image {
                mime: Cow::Borrowed("image/jpeg"),
                ..png("BBBB")
            }),
        ];
        let stream_usage = Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 12,
            total_tokens: 15,
        });
        let cases = [
            AnswerCase {
                name: "unary",
                body: unary.to_owned(),
                pieces: vec![text("Here is your cat"), Piece::Image(png("AAAA"))],
                withheld: vec![],
                usage: Some(Usage { prompt_tokens: 5, completion_tokens: 1290, total_tokens: 1295 }),
            },
            AnswerCase {
                name: "sse lf",
                body: frames.iter().map(|f| format!("data: {f}\n\n")).collect(),
                pieces: stream_pieces.clone(),
                withheld: vec![],
                usage: stream_usage,
            },
            AnswerCase {
                name: "sse crlf without trailing blank line",
                body: frames.iter().map(|f| format!("data: {f}")).collect::<Vec<_>>().join("\r\n\r\n"),
                pieces: stream_pieces.clone(),
                withheld: vec![],
                usage: stream_usage,
            },
            AnswerCase {
                name: "json array stream",
                body: format!("[{}]", frames.join(",\r\n")),
                pieces: stream_pieces,
                withheld: vec![],
                usage: stream_usage,
            },
            AnswerCase {
                name: "thought parts skipped",
                body: r#"{"candidates":[{"content":{"parts":[{"text":"thinking","thought":true},{"inlineData":{"mimeType":"image/png","data":"DRAFT"},"thought":true},{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]},"finishReason":"STOP"}]}"#.to_owned(),
                pieces: vec![Piece::Image(png("AAAA"))],
                withheld: vec![],
                usage: None,
            },
            AnswerCase {
                name: "two candidates keep their order",
                body: r#"{"candidates":[{"content":{"parts":[{"inlineData":{"data":"BBBB"}}]},"index":1},{"content":{"parts":[{"inlineData":{"data":"AAAA"}}]},"index":0}]}"#.to_owned(),
                pieces: vec![Piece::Image(png("AAAA")), Piece::Image(png("BBBB"))],
                withheld: vec![],
                usage: None,
            },
            AnswerCase {
                name: "image safety",
                body: r#"{"candidates":[{"content":{"parts":[]},"finishReason":"IMAGE_SAFETY","finishMessage":"Unable to show the generated image."}],"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4}}"#.to_owned(),
                pieces: vec![],
                withheld: vec!["finishReason IMAGE_SAFETY: Unable to show the generated image."],
                usage: Some(Usage { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 }),
            },
            AnswerCase {
                name: "prompt blocked, no candidates",
                body: r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}"#.to_owned(),
                pieces: vec![],
                withheld: vec!["the prompt was blocked (PROHIBITED_CONTENT)"],
                usage: None,
            },
            AnswerCase {
                name: "safety without content",
                body: r#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#.to_owned(),
                pieces: vec![],
                withheld: vec!["finishReason SAFETY"],
                usage: None,
            },
            AnswerCase {
                name: "text only",
                body: r#"{"candidates":[{"content":{"parts":[{"text":"日本の猫 🐱?"}]},"finishReason":"STOP"}]}"#.to_owned(),
                pieces: vec![text("日本の猫 🐱?")],
                withheld: vec![],
                usage: None,
            },
        ];
        for case in cases {
            let body = ResponseBody::split(case.body.as_bytes());
            let answer = body
                .answer()
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(answer.pieces, case.pieces, "{}", case.name);
            assert_eq!(answer.withheld, case.withheld, "{}", case.name);
            assert_eq!(answer.usage, case.usage, "{}", case.name);
        }
    }

    #[test]
    fn what_is_written_in_each_framing_reads_back_the_same() {
        let answer = Answer {
            pieces: vec![
                text("caption \"q\""),
                Piece::Image(png("AAAA")),
                Piece::Image(png("BBBB")),
            ],
            ..Answer::default()
        };
        for framing in [Framing::Object, Framing::Array, Framing::Sse] {
            let got = write_answer(&answer, "imagen-4.0-generate-001", framing);
            let back = ResponseBody::split(&got.body);
            assert_eq!(back.answer().unwrap().pieces, answer.pieces, "{framing:?}");
        }
    }

    #[test]
    fn image_data_is_borrowed_from_sse_frames() {
        let body = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{\"data\":\"AAAA\"}}]}}]}\r\n\r\n";
        let split = ResponseBody::split(body);
        let answer = split.answer().unwrap();
        let image = answer.images().next().unwrap();
        assert!(matches!(image.data, Cow::Borrowed(_)));
    }
}
