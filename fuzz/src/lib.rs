//! Input generators shared by the fuzz targets.
//!
//! Raw bytes rarely get past a JSON parser, so the `flow` and `translate`
//! targets also build bodies from [`Json`] (arbitrary JSON trees whose keys
//! and strings are mostly the names the Gemini and OpenAI shapes use) and
//! from [`request`] and [`response`] (bodies in the shape an endpoint takes
//! or answers, with arbitrary values mixed in), so the fuzzer reaches the
//! translators' field handling instead of their first "missing field" error.

use arbitrary::{Arbitrary, Result, Unstructured};
use gemini_router::endpoint::Endpoint;
use serde_json::{json, Map, Number, Value};

/// Keys of the request and response shapes the translators read.
pub const KEYS: &[&str] = &[
    "model",
    "stream",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "detail",
    "input_audio",
    "n",
    "size",
    "quality",
    "response_format",
    "prompt",
    "input",
    "dimensions",
    "encoding_format",
    "max_tokens",
    "temperature",
    "stream_options",
    "include_usage",
    "user",
    "contents",
    "parts",
    "inlineData",
    "inline_data",
    "mimeType",
    "mime_type",
    "data",
    "fileData",
    "systemInstruction",
    "generationConfig",
    "responseModalities",
    "imageConfig",
    "aspectRatio",
    "candidateCount",
    "instances",
    "parameters",
    "sampleCount",
    "aspect_ratio",
    "image_config",
    "candidates",
    "finishReason",
    "finishMessage",
    "index",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "totalTokenCount",
    "thoughtsTokenCount",
    "promptFeedback",
    "blockReason",
    "blockReasonMessage",
    "modelVersion",
    "predictions",
    "bytesBase64Encoded",
    "raiFilteredReason",
    "requests",
    "embedding",
    "embeddings",
    "values",
    "taskType",
    "outputDimensionality",
    "choices",
    "message",
    "delta",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "object",
    "created",
    "id",
    "revised_prompt",
    "b64_json",
    "error",
    "code",
    "status",
    "thought",
];

/// Values the translators look for.
pub const STRINGS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "model",
    "text",
    "image_url",
    "input_audio",
    "image/png",
    "image/jpeg",
    "image/webp",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:image/png;base64,",
    "data:,",
    "data:image/jpeg;base64,/9j/4AAQ",
    "https://example.com/a.png",
    "iVBORw0KGgo=",
    "AAAA",
    "b64_json",
    "url",
    "1024x1024",
    "1792x1024",
    "256x256",
    "auto",
    "16:9",
    "1:1",
    "STOP",
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "MAX_TOKENS",
    "OTHER",
    "TEXT",
    "IMAGE",
    "float",
    "base64",
    "RETRIEVAL_QUERY",
    "gemini-2.5-flash",
    "gemini-2.5-flash-image",
    "imagen-4.0-generate-001",
    "text-embedding-004",
    "",
    "\u{0}",
    "é",
    "\u{1F600}",
    "[DONE]",
];

const MAX_DEPTH: u32 = 6;

/// An arbitrary JSON value biased towards the API shapes.
#[derive(Debug, Clone)]
pub struct Json(pub Value);

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Json(value(u, 0)?))
    }
}

impl Json {
    /// The JSON text.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_string().into_bytes()
    }
}

/// A JSON object (the top level of every request and response body).
#[derive(Debug, Clone)]
pub struct JsonObject(pub Map<String, Value>);

impl<'a> Arbitrary<'a> for JsonObject {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(JsonObject(object(u, 0)?))
    }
}

fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let top = if depth >= MAX_DEPTH { 3 } else { 5 };
    Ok(match u.int_in_range(0..=top)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => number(u)?,
        3 => Value::String(string(u)?),
        4 => {
            let len = u.int_in_range(0..=4)?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(value(u, depth + 1)?);
            }
            Value::Array(items)
        }
        _ => Value::Object(object(u, depth + 1)?),
    })
}

fn object(u: &mut Unstructured<'_>, depth: u32) -> Result<Map<String, Value>> {
    let len = u.int_in_range(0..=6)?;
    let mut map = Map::new();
    for _ in 0..len {
        let key = if u.ratio(7, 8)? {
            (*u.choose(KEYS)?).to_owned()
        } else {
            u.arbitrary()?
        };
        map.insert(key, value(u, depth)?);
    }
    Ok(map)
}

fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=2)? {
        0 => Value::Number(Number::from(u.int_in_range(-2i64..=8)?)),
        1 => Value::Number(Number::from(u.arbitrary::<i64>()?)),
        _ => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
    })
}

fn string(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(3, 4)? {
        Ok((*u.choose(STRINGS)?).to_owned())
    } else {
        u.arbitrary()
    }
}

// -- bodies in an endpoint's shape --------------------------------------------

const ROLES: &[&str] = &[
    "user",
    "system",
    "developer",
    "assistant",
    "tool",
    "model",
    "x",
];
const MIMES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "audio/wav",
    "",
    "text/plain",
];
const BASE64: &[&str] = &[
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
    "/9j/4AAQSkZJRgABAQ",
    "UklGRiQAAABXRUJQ",
    "AAAA",
    "",
    "not base64!",
];
const SIZES: &[&str] = &[
    "1024x1024",
    "1792x1024",
    "1024x1792",
    "256x256",
    "0x0",
    "x",
    "auto",
];
const ASPECTS: &[&str] = &[
    "1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "0:0", "1:0", "wide",
];
const REASONS: &[&str] = &[
    "STOP",
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "MAX_TOKENS",
    "OTHER",
    "RECITATION",
];

fn pick(u: &mut Unstructured<'_>, options: &[&str]) -> Result<Value> {
    Ok(Value::String((*u.choose(options)?).to_owned()))
}

/// Mostly `v`; now and then an arbitrary value instead.
fn or_any(u: &mut Unstructured<'_>, v: Value) -> Result<Value> {
    if u.ratio(1, 12)? {
        value(u, 3)
    } else {
        Ok(v)
    }
}

fn text(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(Value::String(if u.ratio(1, 2)? {
        (*u.choose(&[
            "a cat",
            "draw a red square",
            "",
            "  ",
            "hello\nworld",
            "é\u{1F600}",
        ])?)
        .to_owned()
    } else {
        u.arbitrary()?
    }))
}

fn small_int(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(json!(u.int_in_range(-1i64..=9)?))
}

fn list(
    u: &mut Unstructured<'_>,
    max: usize,
    item: fn(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<Value> {
    let len = u.int_in_range(0..=max)?;
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        let v = item(u)?;
        items.push(or_any(u, v)?);
    }
    Ok(Value::Array(items))
}

/// Inserts `key` with the generated value, three times in four.
fn maybe(
    u: &mut Unstructured<'_>,
    map: &mut Map<String, Value>,
    key: &str,
    gen: fn(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<()> {
    if u.ratio(3, 4)? {
        let v = gen(u)?;
        map.insert(key.to_owned(), or_any(u, v)?);
    }
    Ok(())
}

fn data_url(u: &mut Unstructured<'_>) -> Result<Value> {
    let mime = u.choose(MIMES)?;
    let data = u.choose(BASE64)?;
    Ok(Value::String(match u.int_in_range(0..=3)? {
        0 => format!("data:{mime};base64,{data}"),
        1 => format!("data:{mime},{data}"),
        2 => "https://example.com/cat.png".to_owned(),
        _ => u.arbitrary()?,
    }))
}

fn chat_part(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=3)? {
        0 => json!({"type": "text", "text": text(u)?}),
        1 => json!({"type": "image_url", "image_url": {"url": data_url(u)?}}),
        2 => json!({"type": "image_url", "image_url": data_url(u)?}),
        _ => {
            json!({"type": "input_audio", "input_audio": {"data": pick(u, BASE64)?, "format": "wav"}})
        }
    })
}

fn chat_message(u: &mut Unstructured<'_>) -> Result<Value> {
    let content = if u.ratio(1, 2)? {
        text(u)?
    } else {
        list(u, 3, chat_part)?
    };
    Ok(json!({"role": pick(u, ROLES)?, "content": content}))
}

fn gemini_part(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=2)? {
        0 => json!({"text": text(u)?}),
        1 => json!({"inlineData": {"mimeType": pick(u, MIMES)?, "data": pick(u, BASE64)?}}),
        _ => json!({"thought": true, "text": text(u)?}),
    })
}

fn gemini_content(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(json!({"role": pick(u, ROLES)?, "parts": list(u, 3, gemini_part)?}))
}

fn generation_config(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut m = Map::new();
    maybe(u, &mut m, "candidateCount", small_int)?;
    maybe(u, &mut m, "imageConfig", |u| {
        Ok(json!({"aspectRatio": pick(u, ASPECTS)?}))
    })?;
    maybe(u, &mut m, "responseModalities", |u| {
        Ok(json!([pick(u, &["TEXT", "IMAGE"])?]))
    })?;
    Ok(Value::Object(m))
}

fn candidate(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut m = Map::new();
    maybe(u, &mut m, "content", gemini_content)?;
    maybe(u, &mut m, "finishReason", |u| pick(u, REASONS))?;
    maybe(u, &mut m, "finishMessage", text)?;
    Ok(Value::Object(m))
}

fn generate_content_answer(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut m = Map::new();
    maybe(u, &mut m, "candidates", |u| list(u, 3, candidate))?;
    if u.ratio(1, 4)? {
        m.insert(
            "promptFeedback".into(),
            json!({"blockReason": pick(u, REASONS)?, "blockReasonMessage": text(u)?}),
        );
    }
    maybe(u, &mut m, "usageMetadata", |u| {
        Ok(
            json!({"promptTokenCount": small_int(u)?, "candidatesTokenCount": small_int(u)?,
                  "thoughtsTokenCount": small_int(u)?, "totalTokenCount": small_int(u)?}),
        )
    })?;
    maybe(u, &mut m, "modelVersion", text)?;
    Ok(Value::Object(m))
}

fn prediction(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=2)? {
        0 => json!({"bytesBase64Encoded": pick(u, BASE64)?, "mimeType": pick(u, MIMES)?}),
        1 => json!({"raiFilteredReason": text(u)?}),
        _ => json!({"bytesBase64Encoded": pick(u, BASE64)?, "prompt": text(u)?}),
    })
}

fn floats(u: &mut Unstructured<'_>) -> Result<Value> {
    list(u, 4, |u| {
        Ok(json!(f64::from(u.int_in_range(-100i32..=100)?) / 10.0))
    })
}

/// A request body in the shape `endpoint` takes (arbitrary for the rest).
pub fn request(u: &mut Unstructured<'_>, endpoint: Endpoint) -> Result<Value> {
    let mut m = Map::new();
    match endpoint {
        Endpoint::ChatCompletions => {
            m.insert("messages".into(), list(u, 4, chat_message)?);
            maybe(u, &mut m, "n", small_int)?;
            maybe(u, &mut m, "size", |u| pick(u, SIZES))?;
            maybe(u, &mut m, "aspect_ratio", |u| pick(u, ASPECTS))?;
            maybe(u, &mut m, "stream", |u| Ok(Value::Bool(u.arbitrary()?)))?;
            maybe(u, &mut m, "stream_options", |u| {
                Ok(json!({"include_usage": u.arbitrary::<bool>()?}))
            })?;
        }
        Endpoint::ImagesGenerations => {
            maybe(u, &mut m, "prompt", text)?;
            maybe(u, &mut m, "n", small_int)?;
            maybe(u, &mut m, "size", |u| pick(u, SIZES))?;
            maybe(u, &mut m, "aspect_ratio", |u| pick(u, ASPECTS))?;
            maybe(u, &mut m, "response_format", |u| {
                pick(u, &["b64_json", "url"])
            })?;
        }
        Endpoint::Embeddings => {
            maybe(u, &mut m, "input", |u| {
                if u.arbitrary()? {
                    text(u)
                } else {
                    list(u, 3, text)
                }
            })?;
            maybe(u, &mut m, "dimensions", small_int)?;
            maybe(u, &mut m, "encoding_format", |u| {
                pick(u, &["float", "base64", "x"])
            })?;
        }
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent | Endpoint::CountTokens => {
            m.insert("contents".into(), list(u, 3, gemini_content)?);
            maybe(u, &mut m, "systemInstruction", |u| {
                Ok(json!({"parts": list(u, 2, gemini_part)?}))
            })?;
            maybe(u, &mut m, "generationConfig", generation_config)?;
        }
        Endpoint::Predict | Endpoint::PredictLongRunning => {
            m.insert(
                "instances".into(),
                list(u, 2, |u| Ok(json!({"prompt": text(u)?})))?,
            );
            maybe(u, &mut m, "parameters", |u| {
                Ok(json!({"sampleCount": small_int(u)?, "aspectRatio": pick(u, ASPECTS)?}))
            })?;
        }
        Endpoint::EmbedContent => {
            maybe(u, &mut m, "content", |u| {
                Ok(json!({"parts": list(u, 2, gemini_part)?}))
            })?;
            maybe(u, &mut m, "outputDimensionality", small_int)?;
            maybe(u, &mut m, "taskType", |u| {
                pick(u, &["RETRIEVAL_QUERY", "x"])
            })?;
        }
        Endpoint::BatchEmbedContents => {
            m.insert("requests".into(), list(u, 3, |u| {
                Ok(json!({"model": "models/text-embedding-004", "content": {"parts": list(u, 2, gemini_part)?}}))
            })?);
        }
        Endpoint::GenerateAnswer => return value(u, 0),
    }
    Ok(Value::Object(m))
}

/// An upstream answer in the shape `endpoint` returns; `:streamGenerateContent`
/// answers as SSE events (or a JSON array, as without `alt=sse`).
pub fn response(u: &mut Unstructured<'_>, endpoint: Endpoint) -> Result<Vec<u8>> {
    let v = match endpoint {
        Endpoint::GenerateContent | Endpoint::CountTokens => generate_content_answer(u)?,
        Endpoint::StreamGenerateContent => {
            let mut events = Vec::new();
            for _ in 0..u.int_in_range(0..=3)? {
                events.push(generate_content_answer(u)?);
            }
            if u.ratio(1, 4)? {
                return Ok(Value::Array(events).to_string().into_bytes());
            }
            let sep = *u.choose(&["\r\n\r\n", "\n\n", "\n", "\r\r"])?;
            let mut out = String::new();
            for e in events {
                out.push_str("data: ");
                out.push_str(&e.to_string());
                out.push_str(sep);
            }
            return Ok(out.into_bytes());
        }
        Endpoint::Predict | Endpoint::PredictLongRunning => {
            json!({"predictions": list(u, 3, prediction)?})
        }
        Endpoint::ImagesGenerations => {
            json!({"data": list(u, 3, |u| Ok(json!({"b64_json": pick(u, BASE64)?, "revised_prompt": text(u)?})))?})
        }
        Endpoint::Embeddings => {
            json!({"data": list(u, 3, |u| Ok(json!({"embedding": floats(u)?, "index": small_int(u)?})))?})
        }
        Endpoint::EmbedContent => json!({"embedding": {"values": floats(u)?}}),
        Endpoint::BatchEmbedContents => {
            json!({"embeddings": list(u, 3, |u| Ok(json!({"values": floats(u)?})))?})
        }
        Endpoint::ChatCompletions => json!({"choices": list(u, 2, |u| {
            Ok(json!({"index": 0, "message": {"role": "assistant", "content": text(u)?}, "finish_reason": "stop"}))
        })?}),
        Endpoint::GenerateAnswer => value(u, 0)?,
    };
    Ok(or_any(u, v)?.to_string().into_bytes())
}

/// A request body in the shape of an arbitrary endpoint.
#[derive(Debug, Clone)]
pub struct ShapedRequest(pub Value);

impl<'a> Arbitrary<'a> for ShapedRequest {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let endpoint = *u.choose(&Endpoint::ALL)?;
        Ok(ShapedRequest(request(u, endpoint)?))
    }
}

/// An upstream answer in the shape of an arbitrary endpoint.
#[derive(Debug, Clone)]
pub struct ShapedResponse(pub Vec<u8>);

impl<'a> Arbitrary<'a> for ShapedResponse {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let endpoint = *u.choose(&Endpoint::ALL)?;
        Ok(ShapedResponse(response(u, endpoint)?))
    }
}
