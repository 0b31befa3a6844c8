//! Embedding shapes: the compat `embeddings` request and list answer, and the
//! native `:embedContent` / `:batchEmbedContents` requests and answers.
//!
//! Bodies are read with the crate's pull reader ([`Reader`]), texts staying
//! borrowed. A vector is kept as its numbers' JSON text, borrowed from the
//! answer and checked against the JSON grammar, and written back as it is
//! (an integer gets `.0`, so that it stays a float to every client): no
//! float is parsed or formatted, except to encode `encoding_format:
//! "base64"`.

use super::codec::EmbedAsk;
use super::{TranslateError, Translated};
use crate::json::Out;
use crate::reader::{self, f64_of, JStr, ReadError, Reader};

/// A vector: the JSON text of each of its numbers, borrowed from the answer.
pub(crate) type Vector<'a> = Vec<&'a str>;

/// Reads a client's request body ([`TranslateError::InvalidRequest`] when
/// it is not JSON of the expected shape).
fn request<'a, T>(
    body: &'a [u8],
    read: fn(&mut Reader<'a, '_>) -> Result<T, ReadError>,
) -> Result<T, TranslateError> {
    reader::document(body, read).map_err(TranslateError::unread_request)
}

/// Reads an upstream answer ([`TranslateError::InvalidResponse`] when it is
/// not JSON of the expected shape).
fn response<'a, T>(
    body: &'a [u8],
    read: fn(&mut Reader<'a, '_>) -> Result<T, ReadError>,
) -> Result<T, TranslateError> {
    reader::document(body, read).map_err(TranslateError::unread_response)
}

/// Reads an OpenAI `embeddings` body.
#[inline(never)]
pub(crate) fn parse_embeddings_request(body: &[u8]) -> Result<EmbedAsk<'_>, TranslateError> {
    let request = request(body, read_embeddings_request)?;
    if request.texts.is_empty() {
        return Err(TranslateError::invalid_request(
            "`input` is missing or empty",
        ));
    }
    Ok(request)
}

/// The fields of an `embeddings` body that are read; the others are
/// checked and passed over.
fn read_embeddings_request<'a>(r: &mut Reader<'a, '_>) -> Result<EmbedAsk<'a>, ReadError> {
    let mut request = EmbedAsk::default();
    r.object(&mut |r, key| {
        if key.is("input") {
            request.texts = read_inputs(r)?;
        } else if key.is("dimensions") {
            request.dimensions = r.opt_int()?;
        } else if key.is("encoding_format") {
            request.base64 = r.opt_str()?.as_deref() == Some("base64");
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(request)
}

/// `input`: one string or a list of strings (token arrays are refused), or
/// `null` (none).
fn read_inputs<'a>(r: &mut Reader<'a, '_>) -> Result<Vec<JStr<'a>>, ReadError> {
    match r.peek() {
        Some(b'"') => Ok(vec![r.str()?.decode()?]),
        Some(b'[') => r.list(|r| r.str()?.decode()),
        _ if r.null() => Ok(Vec::new()),
        _ => Err(r.expected("a string or a list of strings (token arrays are not supported)")),
    }
}

/// A native `:batchEmbedContents` body with one request per input.
#[inline(never)]
pub(crate) fn batch_request_body(
    model: &str,
    inputs: &[JStr<'_>],
    dimensions: Option<i64>,
) -> Result<Vec<u8>, TranslateError> {
    let texts: usize = inputs.iter().map(|text| text.len()).sum();
    let mut out = Out::with_capacity(texts + inputs.len() * (model.len() + 96) + 16);
    // What ends each request, written once (a branch in the loop would
    // have LLVM copy the loop for each case).
    let end = match dimensions {
        Some(dimensions) => format!(",\"outputDimensionality\":{dimensions}}}"),
        None => "}".to_owned(),
    };
    out.raw("{\"requests\":[");
    for (i, text) in inputs.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"model\":\"models/")
            .escaped(model)
            .raw("\",\"content\":{\"parts\":[{\"text\":")
            .string(text)
            .raw("}]}")
            .raw(&end);
    }
    out.raw("]}");
    Ok(out.into_bytes())
}

/// An answer's vectors are one per input (`inputs`: 0 when not known).
pub(crate) fn check_count(vectors: &[Vector<'_>], inputs: usize) -> Result<(), TranslateError> {
    if inputs != 0 && vectors.len() != inputs {
        return Err(TranslateError::InvalidResponse(format!(
            "{} embeddings for {} inputs",
            vectors.len(),
            inputs
        )));
    }
    Ok(())
}

/// Reads `{"embeddings":[{"values":[...]}]}`.
#[inline(never)]
pub(crate) fn parse_batch_answer(body: &[u8]) -> Result<Vec<Vector<'_>>, TranslateError> {
    response(body, read_batch_answer)?
        .ok_or_else(|| TranslateError::invalid_response("the answer has no `embeddings`"))
}

/// The vectors of a `:batchEmbedContents` answer (`None` without
/// `embeddings`); a missing or `null` `values` is an empty vector.
fn read_batch_answer<'a>(r: &mut Reader<'a, '_>) -> Result<Option<Vec<Vector<'a>>>, ReadError> {
    let values = |r: &mut Reader<'a, '_>| r.field(&["values"], |r| r.opt(read_vector));
    let embeddings = r.field(&["embeddings"], |r| {
        r.opt(|r| r.list(|r| Ok(values(r)?.flatten().unwrap_or_default())))
    })?;
    Ok(embeddings.flatten())
}

/// A list of numbers, kept as their text.
fn read_vector<'a>(r: &mut Reader<'a, '_>) -> Result<Vector<'a>, ReadError> {
    let mut values = Vec::new();
    r.array(&mut |r| {
        let text = r.number_text()?;
        if !in_float_range(text) {
            return Err(r.expected("a number within the range of a float"));
        }
        values.push(text);
        Ok(())
    })?;
    Ok(values)
}

/// Whether a JSON number is within the range of an `f64` (as a number
/// read into one would have to be). Only a number with a positive
/// exponent, or hundreds of digits, can be out of range: only those are
/// parsed to be sure.
fn in_float_range(text: &str) -> bool {
    let exponent = text.bytes().position(|b| b == b'e' || b == b'E');
    let large =
        text.len() > 300 || exponent.is_some_and(|e| text.as_bytes().get(e + 1) != Some(&b'-'));
    !large || f64_of(text).is_some()
}

/// Writes a vector as a JSON list of its numbers' text; an integer gets
/// `.0`, as a float would have been written.
fn write_vector(out: &mut Out, values: &[&str]) {
    out.raw("[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw(value);
        if !value.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            out.raw(".0");
        }
    }
    out.raw("]");
}

/// Bytes to hold a vector's JSON list.
#[inline(never)]
fn vector_size(values: &[&str]) -> usize {
    values.iter().map(|v| v.len() + 3).sum::<usize>() + 2
}

/// Base64 of a vector as little-endian `f32`s, each number read as an
/// `f64` first and then rounded to `f32`.
fn base64_f32(values: &[&str]) -> Result<String, TranslateError> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for value in values {
        let v = f64_of(value)
            .ok_or_else(|| TranslateError::InvalidResponse(format!("`{value}` is not a number")))?;
        bytes.extend_from_slice(&(v as f32).to_le_bytes());
    }
    Ok(base64_encode(&bytes))
}

/// Standard base64 with padding (for OpenAI `encoding_format: "base64"`).
pub(crate) fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| TABLE[((n >> shift) & 0x3f) as usize];
        out.extend_from_slice(&[
            sextet(18),
            sextet(12),
            if chunk.len() > 1 { sextet(6) } else { b'=' },
            if chunk.len() > 2 { sextet(0) } else { b'=' },
        ]);
    }
    // Only ASCII was written: never empty for lack of UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Writes the OpenAI list answer.
#[inline(never)]
pub(crate) fn write_list(
    vectors: &[Vector<'_>],
    model: &str,
    base64: bool,
) -> Result<Translated, TranslateError> {
    let size: usize = vectors.iter().map(|v| vector_size(v) + 64).sum();
    let mut out = Out::with_capacity(size + model.len() + 128);
    out.raw("{\"object\":\"list\",\"data\":[");
    for (i, values) in vectors.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        write_list_item(&mut out, i, values, base64)?;
    }
    out.raw("],\"model\":")
        .string(model)
        .raw(",\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}");
    Ok(Translated::json(out))
}

/// One item of the OpenAI list answer. (A function of its own, so that
/// the loop is not copied once for each value of `base64`.)
#[inline(never)]
fn write_list_item(
    out: &mut Out,
    index: usize,
    values: &[&str],
    base64: bool,
) -> Result<(), TranslateError> {
    out.raw("{\"object\":\"embedding\",\"index\":")
        .number(index as u64)
        .raw(",\"embedding\":");
    if base64 {
        out.string(&base64_f32(values)?);
    } else {
        write_vector(out, values);
    }
    out.raw("}");
    Ok(())
}

/// One native embed request: the text of its `content` (its text parts
/// joined by newlines) and its `outputDimensionality`.
#[derive(Default)]
struct RawEmbed {
    text: String,
    dimensions: Option<i64>,
}

/// Reads a native `:embedContent` body (`taskType` and `title` have no
/// compat equivalent and are dropped).
#[inline(never)]
pub(crate) fn parse_embed_request(body: &[u8]) -> Result<EmbedAsk<'static>, TranslateError> {
    let raw = request(body, read_embed)?;
    if raw.text.is_empty() {
        return Err(TranslateError::NoPrompt);
    }
    Ok(EmbedAsk {
        texts: vec![JStr(raw.text.into())],
        dimensions: raw.dimensions,
        base64: false,
    })
}

/// Reads one embed request object (`outputDimensionality` also as
/// `output_dimensionality`).
fn read_embed(r: &mut Reader<'_, '_>) -> Result<RawEmbed, ReadError> {
    let mut raw = RawEmbed::default();
    r.object(&mut |r, key| {
        if key.is("content") {
            raw.text = read_content_text(r)?;
        } else if key.is_any(&["outputDimensionality", "output_dimensionality"]) {
            raw.dimensions = r.opt_int()?;
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(raw)
}

/// Reads `content` (or `null`): the texts of its parts joined by newlines.
/// `parts` is a list of parts or one part object (or `null`); a part's
/// `text` may be missing or `null`.
fn read_content_text(r: &mut Reader<'_, '_>) -> Result<String, ReadError> {
    if r.null() {
        return Ok(String::new());
    }
    let parts = r.field(&["parts"], |r| {
        let mut texts = Vec::new();
        match r.peek() {
            Some(b'[') => r.array(&mut |r| read_part_text(r, &mut texts))?,
            _ if r.null() => {}
            _ => read_part_text(r, &mut texts)?,
        }
        Ok(texts)
    })?;
    let texts: Vec<&str> = parts.iter().flatten().map(|t| &**t).collect();
    Ok(texts.join("\n"))
}

/// Reads one part object, keeping its `text`.
fn read_part_text<'a>(r: &mut Reader<'a, '_>, texts: &mut Vec<JStr<'a>>) -> Result<(), ReadError> {
    texts.extend(r.field(&["text"], Reader::opt_str)?.flatten());
    Ok(())
}

/// Reads a native `:batchEmbedContents` body. The compat layer takes one
/// `dimensions` for the whole batch, so requests that differ are refused.
#[inline(never)]
pub(crate) fn parse_batch_request(body: &[u8]) -> Result<EmbedAsk<'static>, TranslateError> {
    let requests = request(body, read_batch_request)?;
    if requests.is_empty() {
        return Err(TranslateError::invalid_request(
            "`requests` is missing or empty",
        ));
    }
    let dimensions = requests.first().and_then(|r| r.dimensions);
    if requests.iter().any(|r| r.dimensions != dimensions) {
        return Err(TranslateError::invalid_request(
            "requests with different outputDimensionality cannot be sent as one embeddings call",
        ));
    }
    if requests.iter().any(|r| r.text.is_empty()) {
        return Err(TranslateError::NoPrompt);
    }
    Ok(EmbedAsk {
        texts: requests.into_iter().map(|r| JStr(r.text.into())).collect(),
        dimensions,
        base64: false,
    })
}

/// The `requests` of a `:batchEmbedContents` body (none when missing or
/// `null`).
fn read_batch_request(r: &mut Reader<'_, '_>) -> Result<Vec<RawEmbed>, ReadError> {
    let requests = r.field(&["requests"], |r| r.opt(|r| r.list(read_embed)))?;
    Ok(requests.flatten().unwrap_or_default())
}

/// A compat `embeddings` body; one text is sent as a string, several as a list.
#[inline(never)]
pub(crate) fn embeddings_request_body(
    model: &str,
    texts: &[JStr<'_>],
    dimensions: Option<i64>,
) -> Result<Vec<u8>, TranslateError> {
    let size: usize = texts.iter().map(|text| text.len() + 3).sum();
    let mut out = Out::with_capacity(size + model.len() + 96);
    out.raw("{\"model\":").string(model).raw(",\"input\":");
    match texts {
        [one] => {
            out.string(one);
        }
        many => {
            out.raw("[");
            for (i, text) in many.iter().enumerate() {
                if i > 0 {
                    out.raw(",");
                }
                out.string(text);
            }
            out.raw("]");
        }
    }
    if let Some(dimensions) = dimensions {
        out.raw(",\"dimensions\":").int(dimensions);
    }
    out.raw(",\"encoding_format\":\"float\"}");
    Ok(out.into_bytes())
}

/// One item of a compat list answer.
#[derive(Default)]
struct Item<'a> {
    embedding: Option<Vector<'a>>,
    index: Option<u64>,
}

/// Reads the compat list answer, vectors in `index` order.
#[inline(never)]
pub(crate) fn parse_list_answer(body: &[u8]) -> Result<Vec<Vector<'_>>, TranslateError> {
    let mut items = response(body, read_list_answer)?
        .ok_or_else(|| TranslateError::invalid_response("the answer has no `data`"))?;
    crate::scan::sort_small(&mut items, |item| item.index.map_or(0, |i| i + 1));
    Ok(items
        .into_iter()
        .filter_map(|item| item.embedding)
        .collect())
}

/// The items of a compat list answer (`None` without `data`). Each must
/// have an `embedding` list; `index` is a count, or missing, or `null`.
fn read_list_answer<'a>(r: &mut Reader<'a, '_>) -> Result<Option<Vec<Item<'a>>>, ReadError> {
    let data = r.field(&["data"], |r| r.opt(|r| r.list(read_item)))?;
    Ok(data.flatten())
}

/// One item of a compat list answer.
fn read_item<'a>(r: &mut Reader<'a, '_>) -> Result<Item<'a>, ReadError> {
    let mut item = Item::default();
    r.object(&mut |r, key| {
        if key.is("embedding") {
            item.embedding = Some(read_vector(r)?);
        } else if key.is("index") {
            item.index = match r.opt_int()? {
                Some(i) => Some(
                    usize::try_from(i).map_err(|_| r.expected("an `index` that is a count"))?
                        as u64,
                ),
                None => None,
            };
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    if item.embedding.is_none() {
        return Err(r.expected("an item with an `embedding`"));
    }
    Ok(item)
}

/// Writes `{"embedding":{"values":[...]}}`.
#[inline(never)]
pub(crate) fn write_embed_answer(values: &[&str]) -> Result<Translated, TranslateError> {
    let mut out = Out::with_capacity(vector_size(values) + 32);
    out.raw("{\"embedding\":{\"values\":");
    write_vector(&mut out, values);
    out.raw("}}");
    Ok(Translated::json(out))
}

/// Writes `{"embeddings":[{"values":[...]}...]}`.
#[inline(never)]
pub(crate) fn write_batch_answer(vectors: &[Vector<'_>]) -> Result<Translated, TranslateError> {
    let size: usize = vectors.iter().map(|v| vector_size(v) + 16).sum();
    let mut out = Out::with_capacity(size + 32);
    out.raw("{\"embeddings\":[");
    for (i, values) in vectors.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"values\":");
        write_vector(&mut out, values);
        out.raw("}");
    }
    out.raw("]}");
    Ok(Translated::json(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::discriminant;

    /// The serde readers these replaced, as they were (strings owned, and a
    /// local one-or-many list), to check the new ones against.
    mod old {
        use crate::reader::JStr;
        use crate::translate::codec::EmbedAsk;
        use crate::translate::TranslateError;
        use serde::de::{
            self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
        };
        use std::fmt;
        use std::marker::PhantomData;

        /// `json::OneOrMany` as it was: a list of objects, or one object.
        /// Not `#[serde(untagged)]`: a derived struct also reads a list by
        /// position, so `[null]` or `["a"]` would pass as one part.
        struct OneOrMany<T>(Vec<T>);

        impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(ListVisitor(PhantomData))
            }
        }

        struct ListVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or a list of objects")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(OneOrMany(mut one)) =
                    seq.next_element_seed(ListVisitor::<T>(PhantomData))?
                {
                    items.append(&mut one);
                }
                Ok(OneOrMany(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|item| OneOrMany(vec![item]))
            }
        }

        impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ListVisitor<T> {
            type Value = OneOrMany<T>;

            fn deserialize<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<OneOrMany<T>, D::Error> {
                deserializer.deserialize_map(self)
            }
        }

        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Inputs {
            One(String),
            Many(Vec<String>),
        }

        fn request<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, TranslateError> {
            serde_json::from_slice(body).map_err(|e| TranslateError::InvalidRequest(e.to_string()))
        }

        fn response<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, TranslateError> {
            serde_json::from_slice(body).map_err(|e| TranslateError::InvalidResponse(e.to_string()))
        }

        pub(super) fn embeddings_request(
            body: &[u8],
        ) -> Result<(Vec<String>, Option<i64>, bool), TranslateError> {
            #[derive(serde::Deserialize)]
            struct Raw {
                input: Option<Inputs>,
                dimensions: Option<i64>,
                encoding_format: Option<String>,
            }
            let raw: Raw = request(body)?;
            let inputs = match raw.input {
                Some(Inputs::One(one)) => vec![one],
                Some(Inputs::Many(many)) => many,
                None => Vec::new(),
            };
            if inputs.is_empty() {
                return Err(TranslateError::InvalidRequest(
                    "`input` is missing or empty".to_owned(),
                ));
            }
            Ok((
                inputs,
                raw.dimensions,
                raw.encoding_format.as_deref() == Some("base64"),
            ))
        }

        #[derive(serde::Deserialize)]
        struct RawContent {
            parts: Option<OneOrMany<RawPart>>,
        }

        #[derive(serde::Deserialize)]
        struct RawPart {
            text: Option<String>,
        }

        impl RawContent {
            fn text(&self) -> String {
                let texts: Vec<&str> = self
                    .parts
                    .iter()
                    .flat_map(|p| p.0.iter())
                    .filter_map(|p| p.text.as_deref())
                    .collect();
                texts.join("\n")
            }
        }

        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct RawRequest {
            content: Option<RawContent>,
            #[serde(alias = "output_dimensionality")]
            output_dimensionality: Option<i64>,
        }

        pub(super) fn embed_request(body: &[u8]) -> Result<EmbedAsk<'static>, TranslateError> {
            let raw: RawRequest = request(body)?;
            let text = raw.content.map(|c| c.text()).unwrap_or_default();
            if text.is_empty() {
                return Err(TranslateError::NoPrompt);
            }
            Ok(EmbedAsk {
                texts: vec![JStr(text.into())],
                dimensions: raw.output_dimensionality,
                base64: false,
            })
        }

        pub(super) fn batch_request(body: &[u8]) -> Result<EmbedAsk<'static>, TranslateError> {
            #[derive(serde::Deserialize)]
            struct Raw {
                requests: Option<Vec<RawRequest>>,
            }
            let raw: Raw = request(body)?;
            let requests = raw.requests.unwrap_or_default();
            if requests.is_empty() {
                return Err(TranslateError::InvalidRequest(
                    "`requests` is missing or empty".to_owned(),
                ));
            }
            let dimensions = requests.first().and_then(|r| r.output_dimensionality);
            if requests
                .iter()
                .any(|r| r.output_dimensionality != dimensions)
            {
                return Err(TranslateError::InvalidRequest(
                    "requests with different outputDimensionality cannot be sent as one embeddings call"
                        .to_owned(),
                ));
            }
            let texts: Vec<String> = requests
                .iter()
                .map(|r| r.content.as_ref().map(RawContent::text).unwrap_or_default())
                .collect();
            if texts.iter().any(String::is_empty) {
                return Err(TranslateError::NoPrompt);
            }
            Ok(EmbedAsk {
                texts: texts.into_iter().map(|t| JStr(t.into())).collect(),
                dimensions,
                base64: false,
            })
        }

        pub(super) fn batch_answer(body: &[u8]) -> Result<Vec<Vec<f64>>, TranslateError> {
            #[derive(serde::Deserialize)]
            struct RawValues {
                values: Option<Vec<f64>>,
            }
            #[derive(serde::Deserialize)]
            struct Raw {
                embeddings: Option<Vec<RawValues>>,
            }
            let raw: Raw = response(body)?;
            let embeddings = raw.embeddings.ok_or_else(|| {
                TranslateError::InvalidResponse("the answer has no `embeddings`".to_owned())
            })?;
            Ok(embeddings
                .into_iter()
                .map(|e| e.values.unwrap_or_default())
                .collect())
        }

        pub(super) fn list_answer(body: &[u8]) -> Result<Vec<Vec<f64>>, TranslateError> {
            #[derive(serde::Deserialize)]
            struct Raw {
                data: Option<Vec<Item>>,
            }
            #[derive(serde::Deserialize)]
            struct Item {
                embedding: Vec<f64>,
                index: Option<usize>,
            }
            let raw: Raw = response(body)?;
            let mut items = raw.data.ok_or_else(|| {
                TranslateError::InvalidResponse("the answer has no `data`".to_owned())
            })?;
            items.sort_by_key(|item| item.index.map_or(0, |i| i as u64 + 1));
            Ok(items.into_iter().map(|item| item.embedding).collect())
        }

        /// A vector as `serde_json` wrote it.
        pub(super) fn floats(values: &[f64]) -> String {
            serde_json::to_string(values).unwrap()
        }

        /// A vector as base64 of f32, as it was encoded.
        pub(super) fn base64(values: &[f64]) -> String {
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect();
            super::super::base64_encode(&bytes)
        }
    }

    /// The same result, or errors of the same kind (the wording of a
    /// shape error differs from `serde_json`'s); our own messages are
    /// compared whole.
    fn same<T: PartialEq + std::fmt::Debug>(
        name: &str,
        got: Result<T, TranslateError>,
        want: Result<T, TranslateError>,
    ) {
        match (&got, &want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
            (Err(g), Err(w)) => {
                assert_eq!(discriminant(g), discriminant(w), "{name}: {g:?} / {w:?}");
                assert_eq!(g.status(), w.status(), "{name}");
                let ours = |e: &TranslateError| match e {
                    TranslateError::InvalidRequest(m) | TranslateError::InvalidResponse(m) => {
                        m.starts_with('`')
                            || m.starts_with("requests with")
                            || m.starts_with("the answer")
                    }
                    _ => true,
                };
                if ours(w) {
                    assert_eq!(g, w, "{name}");
                }
            }
            _ => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }

    /// Bodies every reader is tried on, beyond its own table.
    const GARBAGE: &[(&str, &str)] = &[
        ("not JSON", "{"),
        ("empty", ""),
        ("a list", "[]"),
        ("a string", "\"x\""),
        ("null", "null"),
        ("trailing characters", "{} x"),
        ("trailing comma", r#"{"a":1,}"#),
        ("bad escape in an unknown field", r#"{"x":"\q"}"#),
        ("leading zero in an unknown field", r#"{"x":01}"#),
        ("an empty object", "{}"),
        ("white space around", " \n{ } \r\n"),
    ];

    #[test]
    fn embeddings_requests_read_as_before() {
        let bodies = [
            ("one string", r#"{"model":"m","input":"a"}"#),
            ("a list", r#"{"input":["a","b"],"dimensions":8}"#),
            ("escaped", r#"{"input":["a\"b\\c\u00e9\ud83d\ude00\n"]}"#),
            ("base64", r#"{"input":"a","encoding_format":"base64"}"#),
            ("float", r#"{"input":"a","encoding_format":"float"}"#),
            (
                "escaped base64",
                r#"{"input":"a","encoding_format":"base\u0036\u0034"}"#,
            ),
            (
                "null fields",
                r#"{"input":"a","dimensions":null,"encoding_format":null}"#,
            ),
            ("null input", r#"{"input":null}"#),
            ("empty list", r#"{"input":[]}"#),
            ("empty string", r#"{"input":""}"#),
            (
                "unknown fields",
                r#"{"user":{"a":[1,{"b":null}]},"input":"a","x":-1.5e3}"#,
            ),
            ("token array", r#"{"input":[[1,2,3]]}"#),
            ("tokens", r#"{"input":[1,2,3]}"#),
            ("a number", r#"{"input":5}"#),
            ("an object", r#"{"input":{"text":"a"}}"#),
            ("null in the list", r#"{"input":["a",null]}"#),
            ("fractional dimensions", r#"{"input":"a","dimensions":7.5}"#),
            ("exponent dimensions", r#"{"input":"a","dimensions":1e3}"#),
            ("string dimensions", r#"{"input":"a","dimensions":"8"}"#),
            ("negative dimensions", r#"{"input":"a","dimensions":-8}"#),
            (
                "huge dimensions",
                r#"{"input":"a","dimensions":99999999999999999999}"#,
            ),
            ("number format", r#"{"input":"a","encoding_format":1}"#),
            ("bad escape", r#"{"input":"\x"}"#),
            ("unclosed", r#"{"input":"a"#),
        ];
        for (name, body) in bodies.iter().chain(GARBAGE) {
            let got = parse_embeddings_request(body.as_bytes()).map(|r| {
                let inputs = r.texts.iter().map(|i| i.to_string()).collect::<Vec<_>>();
                (inputs, r.dimensions, r.base64)
            });
            same(name, got, old::embeddings_request(body.as_bytes()));
        }
        // Texts without escapes stay borrowed from the body.
        let body = br#"{"input":["plain","esc\naped"]}"#;
        let request = parse_embeddings_request(body).unwrap();
        assert!(request.texts[0].is_plain_json());
        assert!(!request.texts[1].is_plain_json());
    }

    #[test]
    fn native_requests_read_as_before() {
        let embeds = [
            (
                "one part",
                r#"{"content":{"parts":[{"text":"a"}]},"outputDimensionality":3}"#,
            ),
            (
                "parts joined",
                r#"{"content":{"parts":[{"text":"a"},{"inlineData":{}},{"text":"b"}]}}"#,
            ),
            (
                "empty texts joined",
                r#"{"content":{"parts":[{"text":""},{"text":"b"},{"text":""}]}}"#,
            ),
            ("one part object", r#"{"content":{"parts":{"text":"a"}}}"#),
            (
                "snake case",
                r#"{"content":{"parts":[{"text":"a"}]},"output_dimensionality":8}"#,
            ),
            (
                "escaped",
                r#"{"content":{"parts":[{"text":"\u65e5\"\\\/\t"}]}}"#,
            ),
            (
                "null text",
                r#"{"content":{"parts":[{"text":null},{"text":"b"}]}}"#,
            ),
            ("null parts", r#"{"content":{"parts":null}}"#),
            ("null content", r#"{"content":null}"#),
            (
                "null dimensions",
                r#"{"content":{"parts":[{"text":"a"}]},"outputDimensionality":null}"#,
            ),
            ("no parts", r#"{"content":{"role":"user"}}"#),
            ("empty parts", r#"{"content":{"parts":[]}}"#),
            (
                "unknown fields",
                r#"{"model":"m","taskType":"RETRIEVAL_QUERY","title":"t","content":{"role":"user","parts":[{"text":"a","thought":true}]}}"#,
            ),
            ("string content", r#"{"content":"a"}"#),
            ("string parts", r#"{"content":{"parts":"a"}}"#),
            ("null part", r#"{"content":{"parts":[null]}}"#),
            ("nested parts", r#"{"content":{"parts":[[{"text":"a"}]]}}"#),
            ("number text", r#"{"content":{"parts":[{"text":1}]}}"#),
            (
                "float dimensions",
                r#"{"content":{"parts":[{"text":"a"}]},"outputDimensionality":8.0}"#,
            ),
        ];
        for (name, body) in embeds.iter().chain(GARBAGE) {
            same(
                name,
                parse_embed_request(body.as_bytes()),
                old::embed_request(body.as_bytes()),
            );
        }
        let batches = [
            (
                "two",
                r#"{"requests":[{"content":{"parts":[{"text":"a"}]},"outputDimensionality":3},{"content":{"parts":{"text":"b"}},"output_dimensionality":3}]}"#,
            ),
            (
                "no dimensions",
                r#"{"requests":[{"model":"models/m","content":{"parts":[{"text":"a"}]}}]}"#,
            ),
            (
                "differing dimensions",
                r#"{"requests":[{"content":{"parts":[{"text":"a"}]},"outputDimensionality":3},{"content":{"parts":[{"text":"b"}]}}]}"#,
            ),
            (
                "a request without text",
                r#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":null}]}"#,
            ),
            ("null requests", r#"{"requests":null}"#),
            ("empty requests", r#"{"requests":[]}"#),
            (
                "one request object",
                r#"{"requests":{"content":{"parts":[{"text":"a"}]}}}"#,
            ),
            ("null request", r#"{"requests":[null]}"#),
            (
                "unknown fields",
                r#"{"x":[{}],"requests":[{"y":"z","content":{"parts":[{"text":"a"}]}}]}"#,
            ),
            ("string request", r#"{"requests":["a"]}"#),
        ];
        for (name, body) in batches.iter().chain(GARBAGE) {
            same(
                name,
                parse_batch_request(body.as_bytes()),
                old::batch_request(body.as_bytes()),
            );
        }
    }

    /// Numbers as Google and the compat layer write them, and edge cases.
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "-1",
        "0.0",
        "1.0",
        "-0",
        "-0.0",
        "0.25",
        "-0.5",
        "0.1",
        "-0.2",
        "1e-7",
        "1e-05",
        "1E-5",
        "1.5e+2",
        "2E3",
        "-0.022415642",
        "0.0036343979",
        "-0.006748023",
        "0.30000000000000004",
        "123456789012345678901234",
        "2.2250738585072014e-308",
        "4.9e-324",
        "1e-400",
        "1.7976931348623157e308",
        "-1.7976931348623157e308",
    ];

    /// Numbers that do not fit a float: refused, as before.
    const OUT_OF_RANGE: &[&str] = &["1e400", "-1e309", "1.7976931348623159e308"];

    /// Numbers as an `f64`, read exactly (the standard library's parser
    /// rounds correctly).
    fn floats(text: &str) -> Vec<u64> {
        let list: Vec<&str> = text
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .filter(|s| !s.is_empty())
            .collect();
        list.iter()
            .map(|v| v.parse::<f64>().unwrap().to_bits())
            .collect()
    }

    /// Pseudo-random vector components in the forms they come in: f32
    /// printed shortest (native answers), as f64 (17 digits), six decimals.
    fn realistic() -> Vec<String> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut out = Vec::new();
        for _ in 0..3000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            let v = (unit - 0.5) * if state & 1 == 0 { 0.2 } else { 2e-4 };
            out.push(format!("{}", v as f32));
            out.push(format!("{:?}", f64::from(v as f32)));
            out.push(format!("{v:.6}"));
            out.push(format!("{v:e}"));
        }
        out
    }

    #[test]
    fn vectors_pass_through_as_the_same_numbers() {
        let mut numbers: Vec<String> = NUMBERS.iter().map(|n| n.to_string()).collect();
        numbers.extend(realistic());
        let list = numbers.join(" ,\n ");
        let body = format!(r#"{{"embeddings":[{{"values":[ {list} ]}},{{"values":null}},{{}}]}}"#);
        let vectors = parse_batch_answer(body.as_bytes()).unwrap();
        let before = old::batch_answer(body.as_bytes()).unwrap();
        assert_eq!(vectors.len(), 3);
        assert!(vectors[1].is_empty() && vectors[2].is_empty());
        assert!(before[1].is_empty() && before[2].is_empty());
        // The text is kept as it is.
        assert_eq!(
            vectors[0],
            numbers.iter().map(String::as_str).collect::<Vec<_>>()
        );

        // Floats: written as they came, each a float.
        let mut out = Out::default();
        write_vector(&mut out, &vectors[0]);
        let written = String::from_utf8(out.into_bytes()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert!(value
            .as_array()
            .unwrap()
            .iter()
            .all(serde_json::Value::is_f64));
        // The upstream's numbers, exactly.
        let upstream: Vec<u64> = numbers
            .iter()
            .map(|n| n.parse::<f64>().unwrap().to_bits())
            .collect();
        assert_eq!(floats(&written), upstream);
        // As before, except where `serde_json`'s reader (without its
        // `float_roundtrip` feature) was one unit in the last place off:
        // only for numbers of 17 significant digits, not Google's (an f32
        // printed shortest, or six decimals).
        let before_written = floats(&old::floats(&before[0]));
        let mut off = 0;
        for ((number, new), old) in numbers.iter().zip(&upstream).zip(&before_written) {
            if new != old {
                off += 1;
                let digits = number
                    .split(['e', 'E'])
                    .next()
                    .unwrap()
                    .bytes()
                    .filter(u8::is_ascii_digit)
                    .skip_while(|&b| b == b'0')
                    .count();
                assert!(new.abs_diff(*old) == 1 && digits >= 16, "{number}");
            }
        }
        assert!(off < numbers.len() / 8, "{off}");

        // A number is read exactly (as the standard library reads it), or,
        // outside the fast path, as serde_json read vectors before.
        let mut texts = numbers.clone();
        texts.extend(OUT_OF_RANGE.iter().map(|n| n.to_string()));
        texts.extend(
            [
                "9007199254740992",
                "9007199254740993",
                "90071992547409921",
                "0.9007199254740993",
                "1e22",
                "1e23",
                "123e20",
                "1.5e-22",
                "1.5e-23",
                "-1e0",
                "1E+0",
                "0e5",
                "0.000000000000000000000000001",
                "1e-0000000000000000000000000000005",
                "1e99999999999999999999",
            ]
            .map(str::to_owned),
        );
        for text in &texts {
            let exact = text.parse::<f64>().unwrap().to_bits();
            let got = f64_of(text).map(f64::to_bits);
            assert!(
                got == Some(exact)
                    || got == serde_json::from_str::<f64>(text).ok().map(f64::to_bits),
                "{text}"
            );
        }

        // Base64: the same bytes.
        assert_eq!(base64_f32(&vectors[0]).unwrap(), old::base64(&before[0]));

        // As the answers write them.
        let mut out = Out::default();
        write_vector(&mut out, &["0", "-0", "1", "1e-05", "-2.5E+3", "0.125"]);
        assert_eq!(out.into_bytes(), b"[0.0,-0.0,1.0,1e-05,-2.5E+3,0.125]");
    }

    #[test]
    fn answers_read_as_before() {
        let numbers = |v: Result<Vec<Vector<'_>>, TranslateError>| {
            v.map(|vectors| {
                vectors
                    .iter()
                    .map(|v| {
                        v.iter()
                            .map(|n| n.parse::<f64>().unwrap().to_bits())
                            .collect()
                    })
                    .collect::<Vec<Vec<u64>>>()
            })
        };
        let bits = |v: Result<Vec<Vec<f64>>, TranslateError>| {
            v.map(|vectors| {
                vectors
                    .iter()
                    .map(|v| v.iter().map(|n| n.to_bits()).collect())
                    .collect::<Vec<Vec<u64>>>()
            })
        };
        let out_of_range: Vec<String> = OUT_OF_RANGE
            .iter()
            .map(|n| format!(r#"{{"embeddings":[{{"values":[0.5,{n}]}}]}}"#))
            .collect();
        let mut batches: Vec<(&str, &str)> = vec![
            ("two", r#"{"embeddings":[{"values":[0.1,-0.2]},{"values":[1,2e-3]}]}"#),
            ("null values", r#"{"embeddings":[{"values":null}]}"#),
            ("no values", r#"{"embeddings":[{"other":[1]}]}"#),
            ("unknown fields", r#"{"metadata":{"a":"b"},"embeddings":[{"values":[0.5],"statistics":{"truncated":false}}]}"#),
            ("pretty", "{\n  \"embeddings\": [\n    {\n      \"values\": [\n        0.5,\n        -1e-05\n      ]\n    }\n  ]\n}\n"),
            ("no embeddings", r#"{"embedding":{"values":[0.1]}}"#),
            ("null embeddings", r#"{"embeddings":null}"#),
            ("empty embeddings", r#"{"embeddings":[]}"#),
            ("one embedding object", r#"{"embeddings":{"values":[0.1]}}"#),
            ("null embedding", r#"{"embeddings":[null]}"#),
            ("string values", r#"{"embeddings":[{"values":"AACAPw=="}]}"#),
            ("null number", r#"{"embeddings":[{"values":[0.1,null]}]}"#),
            ("string number", r#"{"embeddings":[{"values":["0.1"]}]}"#),
            ("nested", r#"{"embeddings":[{"values":[[0.1]]}]}"#),
            ("bad number", r#"{"embeddings":[{"values":[.5]}]}"#),
            ("NaN", r#"{"embeddings":[{"values":[NaN]}]}"#),
        ];
        batches.extend(out_of_range.iter().map(|b| ("out of range", b.as_str())));
        for (name, body) in batches.iter().chain(GARBAGE) {
            same(
                name,
                numbers(parse_batch_answer(body.as_bytes())),
                bits(old::batch_answer(body.as_bytes())),
            );
        }

        let out_of_range: Vec<String> = OUT_OF_RANGE
            .iter()
            .map(|n| format!(r#"{{"data":[{{"embedding":[{n}],"index":0}}]}}"#))
            .collect();
        let mut lists: Vec<(&str, &str)> = vec![
            (
                "one",
                r#"{"object":"list","data":[{"object":"embedding","embedding":[0.25,-0.5],"index":0}],"model":"m","usage":{"prompt_tokens":1}}"#,
            ),
            (
                "sorted by index",
                r#"{"data":[{"embedding":[3],"index":2},{"embedding":[1],"index":0},{"index":1,"embedding":[2]}]}"#,
            ),
            (
                "no index first",
                r#"{"data":[{"embedding":[2],"index":0},{"embedding":[1]}]}"#,
            ),
            (
                "null index",
                r#"{"data":[{"embedding":[2],"index":1},{"embedding":[1],"index":null}]}"#,
            ),
            ("empty data", r#"{"data":[]}"#),
            ("no data", r#"{"error":"x"}"#),
            ("null data", r#"{"data":null}"#),
            ("no embedding", r#"{"data":[{"index":0}]}"#),
            ("null embedding", r#"{"data":[{"embedding":null}]}"#),
            ("base64 embedding", r#"{"data":[{"embedding":"AACAPw=="}]}"#),
            (
                "negative index",
                r#"{"data":[{"embedding":[1],"index":-1}]}"#,
            ),
            (
                "fractional index",
                r#"{"data":[{"embedding":[1],"index":0.5}]}"#,
            ),
            (
                "string index",
                r#"{"data":[{"embedding":[1],"index":"0"}]}"#,
            ),
            ("one item object", r#"{"data":{"embedding":[1]}}"#),
            ("null item", r#"{"data":[null]}"#),
        ];
        lists.extend(out_of_range.iter().map(|b| ("out of range", b.as_str())));
        for (name, body) in lists.iter().chain(GARBAGE) {
            same(
                name,
                numbers(parse_list_answer(body.as_bytes())),
                bits(old::list_answer(body.as_bytes())),
            );
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64_encode(input.as_bytes()), want, "{input}");
        }
    }
}
