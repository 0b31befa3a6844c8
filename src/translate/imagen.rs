//! Imagen `:predict` shapes: the request (written for Imagen targets, read
//! from `:predict` clients) and the answer (read from Imagen, written for
//! `:predict` clients).

use super::answer::{Answer, Image, DEFAULT_MIME};
use super::aspect;
use super::codec::ImageAsk;
use super::{TranslateError, Translated};
use crate::json::Out;
use crate::reader::{self, JStr, Reader};
use std::borrow::Cow;

/// The most images one `:predict` call returns.
pub(crate) const MAX_SAMPLES: i64 = 4;

/// A `:predict` request for Imagen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PredictRequest<'a> {
    pub(crate) prompt: &'a str,
    /// Clamped to 1..=4; always sent, since Imagen's default is 4.
    pub(crate) sample_count: i64,
    pub(crate) aspect_ratio: Option<&'static str>,
}

impl PredictRequest<'_> {
    /// The JSON body, `{"instances":[{"prompt":..}],"parameters":{"sampleCount":..,"aspectRatio"?:..}}`.
    #[inline(never)]
    pub(crate) fn to_body(&self) -> Result<Vec<u8>, TranslateError> {
        let mut out = Out::with_capacity(self.prompt.len() * 2 + 96);
        out.raw("{\"instances\":[{\"prompt\":")
            .string(self.prompt)
            .raw("}],\"parameters\":{\"sampleCount\":")
            .number(self.sample_count.clamp(1, MAX_SAMPLES).unsigned_abs());
        if let Some(ratio) = self.aspect_ratio {
            out.raw(",\"aspectRatio\":").string(ratio);
        }
        out.raw("}}");
        Ok(out.into_bytes())
    }
}

/// Reads a client's `:predict` body; `instances` may be a list or one object.
#[inline(never)]
pub(crate) fn parse_request(body: &[u8]) -> Result<ImageAsk<'static>, TranslateError> {
    let (mut prompt, mut sample_count, mut aspect_ratio) = (None, None, None);
    let read = reader::document(body, |r| {
        r.object(&mut |r, key| {
            if key.is("instances") {
                // The first instance's prompt.
                let instances = r.opt(|r| {
                    r.one_or_many(|r| Ok(r.field(&["prompt"], Reader::opt_str)?.flatten()))
                })?;
                prompt = instances.and_then(|i| i.into_iter().next()).flatten();
            } else if key.is("parameters") {
                (sample_count, aspect_ratio) = (None, None);
                r.opt(|r| {
                    r.object(&mut |r, key| {
                        if key.is_any(&["sampleCount", "sample_count"]) {
                            sample_count = r.opt_int()?;
                        } else if key.is_any(&["aspectRatio", "aspect_ratio"]) {
                            aspect_ratio = r.opt_str()?;
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
    let prompt = prompt
        .map(|prompt| prompt.trim().to_owned())
        .unwrap_or_default();
    if prompt.is_empty() {
        return Err(TranslateError::NoPrompt);
    }
    Ok(ImageAsk {
        prompt,
        n: sample_count,
        aspect: aspect_ratio.as_deref().and_then(aspect::ratio),
        ..ImageAsk::default()
    })
}

/// Reads Imagen's answer: one image per prediction with data; filtered
/// predictions (`raiFilteredReason`) and an empty list become `withheld`.
#[inline(never)]
pub(crate) fn parse_answer(body: &[u8]) -> Result<Answer<'_>, TranslateError> {
    let predictions = reader::document(body, |r| {
        r.field(&["predictions"], |r| {
            r.opt(|r| {
                r.list(|r| {
                    let names = [
                        &["bytesBase64Encoded"][..],
                        &["mimeType"],
                        &["raiFilteredReason"],
                        &["prompt"],
                    ];
                    r.fields(names, Reader::opt_str)
                })
            })
        })
    })
    .map_err(TranslateError::unread_response)?
    .flatten()
    .unwrap_or_default();
    let mut answer = Answer::default();
    if predictions.is_empty() {
        answer.withhold(
            "the answer has no predictions (Imagen leaves out images its safety filter blocks)",
        );
    }
    for [data, mime, filtered, prompt] in predictions {
        match data {
            Some(data) if !data.is_empty() => answer.push_image(Image::parsed(
                mime.map_or(Cow::Borrowed(DEFAULT_MIME), JStr::into_cow),
                data,
                prompt.map(JStr::into_cow),
            )),
            _ => {
                if let Some(reason) = filtered {
                    answer.withhold(&reason);
                }
            }
        }
    }
    if answer.withheld.is_empty() && !answer.has_image() {
        answer.withhold("the predictions carry no image data");
    }
    Ok(answer)
}

/// Writes `{"predictions":[{"bytesBase64Encoded","mimeType"}...]}` with the
/// answer's images (text has no place in this shape).
#[inline(never)]
pub(crate) fn write_answer(answer: &Answer<'_>) -> Translated {
    let mut out = Out::with_capacity(answer.payload_len() + 64);
    out.raw("{\"predictions\":[");
    for (i, image) in answer.images().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"bytesBase64Encoded\":\"")
            .unquoted(&image.data, image.plain_json)
            .raw("\",\"mimeType\":")
            .string(&image.mime)
            .raw("}");
    }
    out.raw("]}");
    Translated::json(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The images, and the filter reasons kept beside them, which no
    /// client sees (the codec matrix has the answers without an image).
    #[test]
    fn parses_answers() {
        struct Case {
            name: &'static str,
            body: &'static str,
            images: Vec<(&'static str, &'static str)>,
            withheld: Vec<&'static str>,
        }
        let cases = [
            Case {
                name: "two images",
                body: r#"{"predictions":[{"bytesBase64Encoded":"AAAA","mimeType":"image/png"},{"mimeType":"image/jpeg","bytesBase64Encoded":"/9j/"}]}"#,
                images: vec![("image/png", "AAAA"), ("image/jpeg", "/9j/")],
                withheld: vec![],
            },
            Case {
                name: "missing mime",
                body: r#"{"predictions":[{"bytesBase64Encoded":"AAAA"}]}"#,
                images: vec![("image/png", "AAAA")],
                withheld: vec![],
            },
            Case {
                name: "one filtered of two",
                body: r#"{"predictions":[{"bytesBase64Encoded":"AAAA"},{"raiFilteredReason":"blocked: people"}]}"#,
                images: vec![("image/png", "AAAA")],
                withheld: vec!["blocked: people"],
            },
        ];
        for case in cases {
            let answer = parse_answer(case.body.as_bytes()).unwrap();
            let images: Vec<(&str, &str)> = answer.images().map(|i| (&*i.mime, &*i.data)).collect();
            assert_eq!(images, case.images, "{}", case.name);
            assert_eq!(answer.withheld, case.withheld, "{}", case.name);
        }
    }

    #[test]
    fn image_data_is_borrowed() {
        let body = br#"{"predictions":[{"bytesBase64Encoded":"iVBORw0KGgo","prompt":"a cat, watercolour"}]}"#;
        let answer = parse_answer(body).unwrap();
        let image = answer.images().next().unwrap();
        assert!(matches!(image.data, Cow::Borrowed(_)));
        assert_eq!(image.revised_prompt.as_deref(), Some("a cat, watercolour"));
    }
}
