//! Embedding shapes: the compat `embeddings` request and list answer, and the
//! native `:embedContent` / `:batchEmbedContents` requests and answers.
//!
//! Vectors are small (at most a few thousand floats), so they are read into
//! `Vec<f64>` and written with `serde_json`; texts stay borrowed.

use super::json::{self, JStr, OneOrMany, Out};
use super::{TranslateError, Translated};
use crate::headers::JSON;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;

/// What an OpenAI `embeddings` client asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EmbeddingsRequest<'a> {
    pub(crate) inputs: Vec<JStr<'a>>,
    pub(crate) dimensions: Option<i64>,
    /// `encoding_format: "base64"`: vectors go back as base64 of little-endian f32.
    pub(crate) base64: bool,
}

/// `input` as one string or a list of strings (token arrays are refused).
struct Inputs<'a>(Vec<JStr<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Inputs<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for InputVisitor<'a> {
            type Value = Inputs<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings (token arrays are not supported)")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Inputs<'a>, E> {
                Ok(Inputs(vec![JStr(v.into())]))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Inputs<'a>, E> {
                Ok(Inputs(vec![JStr(v.to_owned().into())]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inputs<'a>, A::Error> {
                let mut inputs = Vec::new();
                while let Some(input) = seq.next_element()? {
                    inputs.push(input);
                }
                Ok(Inputs(inputs))
            }
        }

        deserializer.deserialize_any(InputVisitor(PhantomData))
    }
}

/// Reads an OpenAI `embeddings` body.
pub(crate) fn parse_embeddings_request(
    body: &[u8],
) -> Result<EmbeddingsRequest<'_>, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        input: Option<Inputs<'a>>,
        dimensions: Option<i64>,
        #[serde(borrow)]
        encoding_format: Option<JStr<'a>>,
    }
    let raw: Raw = json::request(body)?;
    let inputs = raw.input.map(|i| i.0).unwrap_or_default();
    if inputs.is_empty() {
        return Err(TranslateError::InvalidRequest(
            "`input` is missing or empty".to_owned(),
        ));
    }
    Ok(EmbeddingsRequest {
        inputs,
        dimensions: raw.dimensions,
        base64: raw.encoding_format.as_deref() == Some("base64"),
    })
}

/// A native `:batchEmbedContents` body with one request per input.
pub(crate) fn batch_request_body(
    model: &str,
    inputs: &[JStr<'_>],
    dimensions: Option<i64>,
) -> Result<Vec<u8>, TranslateError> {
    #[derive(Serialize)]
    struct Body<'a> {
        requests: Vec<Request<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        model: &'a str,
        content: Content<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_dimensionality: Option<i64>,
    }
    #[derive(Serialize)]
    struct Content<'a> {
        parts: [Part<'a>; 1],
    }
    #[derive(Serialize)]
    struct Part<'a> {
        text: &'a str,
    }
    let model = format!("models/{model}");
    json::to_body(&Body {
        requests: inputs
            .iter()
            .map(|text| Request {
                model: &model,
                content: Content {
                    parts: [Part { text }],
                },
                output_dimensionality: dimensions,
            })
            .collect(),
    })
}

#[derive(serde::Deserialize)]
struct RawValues {
    values: Option<Vec<f64>>,
}

/// Reads `{"embeddings":[{"values":[...]}]}`.
pub(crate) fn parse_batch_answer(body: &[u8]) -> Result<Vec<Vec<f64>>, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Raw {
        embeddings: Option<Vec<RawValues>>,
    }
    let raw: Raw = json::response(body)?;
    let embeddings = raw.embeddings.ok_or_else(|| {
        TranslateError::InvalidResponse("the answer has no `embeddings`".to_owned())
    })?;
    Ok(embeddings
        .into_iter()
        .map(|e| e.values.unwrap_or_default())
        .collect())
}

/// Writes the OpenAI list answer.
pub(crate) fn write_list(
    vectors: &[Vec<f64>],
    model: &str,
    base64: bool,
) -> Result<Translated, TranslateError> {
    let floats: usize = vectors.iter().map(Vec::len).sum();
    let mut out = Out::with_capacity(floats * 24 + vectors.len() * 64 + model.len() + 128);
    out.raw("{\"object\":\"list\",\"data\":[");
    for (i, values) in vectors.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"object\":\"embedding\",\"index\":")
            .number(i as u64)
            .raw(",\"embedding\":");
        if base64 {
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect();
            out.string(&json::base64_encode(&bytes));
        } else {
            out.value(values)?;
        }
        out.raw("}");
    }
    out.raw("],\"model\":")
        .string(model)
        .raw(",\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}");
    Ok(Translated {
        body: out.into_bytes(),
        content_type: JSON,
    })
}

#[derive(serde::Deserialize)]
struct RawContent<'a> {
    #[serde(borrow)]
    parts: Option<OneOrMany<RawPart<'a>>>,
}

#[derive(serde::Deserialize)]
struct RawPart<'a> {
    #[serde(borrow)]
    text: Option<JStr<'a>>,
}

impl RawContent<'_> {
    /// Text parts joined by newlines.
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

/// One text to embed, from a native request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NativeEmbed {
    pub(crate) texts: Vec<String>,
    pub(crate) dimensions: Option<i64>,
}

/// Reads a native `:embedContent` body (`taskType` and `title` have no
/// compat equivalent and are dropped).
pub(crate) fn parse_embed_request(body: &[u8]) -> Result<NativeEmbed, TranslateError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw<'a> {
        #[serde(borrow)]
        content: Option<RawContent<'a>>,
        #[serde(alias = "output_dimensionality")]
        output_dimensionality: Option<i64>,
    }
    let raw: Raw = json::request(body)?;
    let text = raw.content.map(|c| c.text()).unwrap_or_default();
    if text.is_empty() {
        return Err(TranslateError::NoPrompt);
    }
    Ok(NativeEmbed {
        texts: vec![text],
        dimensions: raw.output_dimensionality,
    })
}

/// Reads a native `:batchEmbedContents` body. The compat layer takes one
/// `dimensions` for the whole batch, so requests that differ are refused.
pub(crate) fn parse_batch_request(body: &[u8]) -> Result<NativeEmbed, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        requests: Option<Vec<RawRequest<'a>>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RawRequest<'a> {
        #[serde(borrow)]
        content: Option<RawContent<'a>>,
        #[serde(alias = "output_dimensionality")]
        output_dimensionality: Option<i64>,
    }
    let raw: Raw = json::request(body)?;
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
    Ok(NativeEmbed { texts, dimensions })
}

/// A compat `embeddings` body; one text is sent as a string, several as a list.
pub(crate) fn embeddings_request_body(
    model: &str,
    texts: &[String],
    dimensions: Option<i64>,
) -> Result<Vec<u8>, TranslateError> {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Input<'a> {
        One(&'a str),
        Many(&'a [String]),
    }
    #[derive(Serialize)]
    struct Body<'a> {
        model: &'a str,
        input: Input<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dimensions: Option<i64>,
        encoding_format: &'static str,
    }
    let input = match texts {
        [one] => Input::One(one),
        many => Input::Many(many),
    };
    json::to_body(&Body {
        model,
        input,
        dimensions,
        encoding_format: "float",
    })
}

/// Reads the compat list answer, vectors in `index` order.
pub(crate) fn parse_list_answer(body: &[u8]) -> Result<Vec<Vec<f64>>, TranslateError> {
    #[derive(serde::Deserialize)]
    struct Raw {
        data: Option<Vec<Item>>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        embedding: Vec<f64>,
        index: Option<usize>,
    }
    let raw: Raw = json::response(body)?;
    let mut items = raw
        .data
        .ok_or_else(|| TranslateError::InvalidResponse("the answer has no `data`".to_owned()))?;
    crate::scan::sort_small(&mut items, |item| item.index.map_or(0, |i| i as u64 + 1));
    Ok(items.into_iter().map(|item| item.embedding).collect())
}

/// Writes `{"embedding":{"values":[...]}}`.
pub(crate) fn write_embed_answer(values: &[f64]) -> Result<Translated, TranslateError> {
    let mut out = Out::with_capacity(values.len() * 24 + 32);
    out.raw("{\"embedding\":{\"values\":");
    out.value(values)?;
    out.raw("}}");
    Ok(Translated {
        body: out.into_bytes(),
        content_type: JSON,
    })
}

/// Writes `{"embeddings":[{"values":[...]}...]}`.
pub(crate) fn write_batch_answer(vectors: &[Vec<f64>]) -> Result<Translated, TranslateError> {
    let floats: usize = vectors.iter().map(Vec::len).sum();
    let mut out = Out::with_capacity(floats * 24 + vectors.len() * 16 + 32);
    out.raw("{\"embeddings\":[");
    for (i, values) in vectors.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"values\":");
        out.value(values)?;
        out.raw("}");
    }
    out.raw("]}");
    Ok(Translated {
        body: out.into_bytes(),
        content_type: JSON,
    })
}
