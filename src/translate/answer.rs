//! The answer of an image endpoint, read once from the upstream body (borrowing
//! the base64 data) and written back in the client's shape.

use super::{NoImage, TranslateError};
use crate::reader::JStr;
use std::borrow::Cow;

/// The MIME type assumed when the upstream does not name one.
pub(crate) const DEFAULT_MIME: &str = "image/png";

/// One generated image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image<'a> {
    /// MIME type, `image/png` unless the upstream said otherwise.
    pub(crate) mime: Cow<'a, str>,
    /// Base64 data, usually borrowed from the upstream body.
    pub(crate) data: Cow<'a, str>,
    /// `data` is (part of) a body's JSON string without escapes, read by a
    /// parser (see [`crate::reader::JStr`]): written into JSON as it is.
    pub(crate) plain_json: bool,
    /// The prompt as the upstream rewrote it (Imagen `prompt`, OpenAI `revised_prompt`).
    pub(crate) revised_prompt: Option<Cow<'a, str>>,
}

impl<'a> Image<'a> {
    /// An image whose data a JSON parser read from a body (written back as
    /// it is when it had no escapes).
    pub(crate) fn parsed(
        mime: Cow<'a, str>,
        data: JStr<'a>,
        revised_prompt: Option<Cow<'a, str>>,
    ) -> Image<'a> {
        Image {
            mime,
            plain_json: data.is_plain_json(),
            data: data.into_cow(),
            revised_prompt,
        }
    }
}

/// A part of an answer, in the upstream's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Text (Gemini image models often say something about the image).
    Text(String),
    /// An image.
    Image(Image<'a>),
}

/// Token counts, in OpenAI's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) total_tokens: u64,
}

/// Everything a translator takes from a successful image answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Answer<'a> {
    /// Text and images, in order.
    pub(crate) pieces: Vec<Piece<'a>>,
    /// Token counts when the upstream reported them.
    pub(crate) usage: Option<Usage>,
    /// Why images were withheld, in the upstream's words (safety filter
    /// reasons, block reasons, finish reasons other than `STOP`).
    pub(crate) withheld: Vec<String>,
}

impl<'a> Answer<'a> {
    /// Appends text, merging it with text right before it (streamed text
    /// arrives in fragments).
    pub(crate) fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.pieces.last_mut() {
            Some(Piece::Text(last)) => last.push_str(text),
            _ => self.pieces.push(Piece::Text(text.to_owned())),
        }
    }

    /// Appends an image.
    #[inline(never)]
    pub(crate) fn push_image(&mut self, image: Image<'a>) {
        self.pieces.push(Piece::Image(image));
    }

    /// Records why images were withheld.
    #[inline(never)]
    pub(crate) fn withhold(&mut self, why: &str) {
        self.withheld.push(why.to_owned());
    }

    /// The images, in order.
    pub(crate) fn images(&self) -> impl Iterator<Item = &Image<'a>> + '_ {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Image(image) => Some(image),
            Piece::Text(_) => None,
        })
    }

    /// Whether the answer carries at least one image.
    #[inline(never)]
    pub(crate) fn has_image(&self) -> bool {
        self.images().next().is_some()
    }

    /// All text, pieces separated by a blank line.
    pub(crate) fn text(&self) -> String {
        let texts: Vec<&str> = self
            .pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Text(text) => Some(text.trim()),
                Piece::Image(_) => None,
            })
            .filter(|text| !text.is_empty())
            .collect();
        texts.join("\n\n")
    }

    /// Bytes of text and image data, to size output buffers.
    #[inline(never)]
    pub(crate) fn payload_len(&self) -> usize {
        self.pieces
            .iter()
            .map(|piece| match piece {
                // Room for escapes in text, so the buffer never regrows (and
                // copies the images again).
                Piece::Text(text) => text.len() * 2 + 16,
                Piece::Image(image) => {
                    image.data.len()
                        + image.mime.len()
                        + image.revised_prompt.as_ref().map_or(0, |p| p.len())
                        + 96
                }
            })
            .sum()
    }

    /// Why there is no image, for an error or an assistant message.
    pub(crate) fn no_image_reason(&self) -> NoImage {
        if !self.withheld.is_empty() {
            return NoImage::Said(self.withheld.join("; "));
        }
        let text = self.text();
        if text.is_empty() {
            NoImage::Nothing
        } else {
            NoImage::Text(text)
        }
    }

    /// `Ok` when there is an image, else [`TranslateError::NoImage`] with the reason.
    #[inline(never)]
    pub(crate) fn require_image(&self) -> Result<(), TranslateError> {
        if self.has_image() {
            Ok(())
        } else {
            Err(TranslateError::NoImage(self.no_image_reason()))
        }
    }
}

/// The MIME type of base64 image data, from its first bytes (the compat
/// `images/generations` answer does not name it).
pub(crate) fn sniff_mime(base64: &str) -> &'static str {
    if base64.starts_with("/9j/") {
        "image/jpeg"
    } else if base64.starts_with("UklGR") {
        "image/webp"
    } else if base64.starts_with("R0lGOD") {
        "image/gif"
    } else {
        DEFAULT_MIME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(data: &str) -> Image<'_> {
        Image {
            mime: Cow::Borrowed(DEFAULT_MIME),
            data: Cow::Borrowed(data),
            plain_json: false,
            revised_prompt: None,
        }
    }

    #[test]
    fn no_image_reason_prefers_the_upstream_words() {
        struct Case {
            name: &'static str,
            answer: Answer<'static>,
            want: Option<NoImage>,
        }
        let cases = [
            Case {
                name: "image present",
                answer: Answer {
                    pieces: vec![Piece::Image(image("AAAA"))],
                    ..Answer::default()
                },
                want: None,
            },
            Case {
                name: "withheld reasons joined",
                answer: Answer {
                    withheld: vec!["a".into(), "b".into()],
                    ..Answer::default()
                },
                want: Some(NoImage::Said("a; b".into())),
            },
            Case {
                name: "text only",
                answer: Answer {
                    pieces: vec![Piece::Text("I can't draw that.".into())],
                    ..Answer::default()
                },
                want: Some(NoImage::Text("I can't draw that.".into())),
            },
            Case {
                name: "empty",
                answer: Answer::default(),
                want: Some(NoImage::Nothing),
            },
        ];
        for case in cases {
            let got = case.answer.require_image().err();
            assert_eq!(got, case.want.map(TranslateError::NoImage), "{}", case.name);
        }
    }

    #[test]
    fn a_long_text_only_answer_is_quoted_up_to_300_characters() {
        // As the reason was first written: the first 300 characters, then
        // `...` when there were more.
        let before = |text: &str| {
            let mut quoted: String = text.chars().take(300).collect();
            if text.chars().nth(300).is_some() {
                quoted.push_str("...");
            }
            format!("the model answered with text only: \"{quoted}\"")
        };
        for len in [1, 299, 300, 301, 1000] {
            for unit in ["a", "é", "猫", "🐱"] {
                let text = unit.repeat(len);
                let answer = Answer {
                    pieces: vec![Piece::Text(text.clone())],
                    ..Answer::default()
                };
                let got = answer.no_image_reason().to_string();
                assert_eq!(got, before(&text), "{len} x {unit}");
                assert_eq!(got.ends_with("...\""), len > 300, "{len} x {unit}");
            }
        }
    }

    #[test]
    fn text_fragments_merge() {
        let mut answer = Answer::default();
        answer.push_text("Here ");
        answer.push_text("");
        answer.push_text("it is");
        answer.push_image(image("AAAA"));
        answer.push_text("done");
        assert_eq!(answer.text(), "Here it is\n\ndone");
        assert_eq!(answer.pieces.len(), 3);
    }

    #[test]
    fn sniffs_common_formats() {
        let cases = [
            ("png", "iVBORw0KGgo", "image/png"),
            ("jpeg", "/9j/4AAQ", "image/jpeg"),
            ("webp", "UklGRiQ", "image/webp"),
            ("gif", "R0lGODlh", "image/gif"),
            ("unknown", "", "image/png"),
        ];
        for (name, data, want) in cases {
            assert_eq!(sniff_mime(data), want, "{name}");
        }
    }
}
