//! JSON plumbing shared by the translators: the output buffer that copies
//! large strings (base64 image data) exactly once, its escaper, base64 and
//! a digest. Bodies are read with [`crate::reader`], whose [`JStr`] keeps
//! strings without escapes borrowed from the body.

use super::answer::Image;

pub(crate) use crate::reader::JStr;

/// `s` as a quoted JSON string.
pub(crate) fn quoted(s: &str) -> Vec<u8> {
    let mut out = Out::with_capacity(s.len() + 2);
    out.string(s);
    out.into_bytes()
}

/// An output body written front to back into one preallocated buffer.
#[derive(Debug, Default)]
pub(crate) struct Out {
    buf: Vec<u8>,
}

impl Out {
    /// A buffer that holds `capacity` bytes without growing.
    #[inline(never)]
    pub(crate) fn with_capacity(capacity: usize) -> Out {
        Out {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Appends `s` as it is (JSON punctuation, SSE framing, trusted literals).
    /// Kept out of line: each of the many literals is then one call rather
    /// than a capacity check and a copy.
    #[inline(never)]
    pub(crate) fn raw(&mut self, s: &str) -> &mut Out {
        self.raw_inline(s)
    }

    /// [`Out::raw`], inlined, for the request writer on the hot path (where
    /// a short literal becomes a few stores instead of a `memcpy` call).
    #[inline]
    pub(crate) fn raw_inline(&mut self, s: &str) -> &mut Out {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    /// Appends `s` escaped for the inside of a JSON string, without quotes.
    pub(crate) fn escaped(&mut self, s: &str) -> &mut Out {
        escape_into(&mut self.buf, s);
        self
    }

    /// Appends `s` as a quoted JSON string.
    pub(crate) fn string(&mut self, s: &str) -> &mut Out {
        self.buf.push(b'"');
        escape_into(&mut self.buf, s);
        self.buf.push(b'"');
        self
    }

    /// Appends an image's data escaped for the inside of a JSON string
    /// (copied as it is when a parser found it needs no escape).
    pub(crate) fn image_data(&mut self, image: &Image<'_>) -> &mut Out {
        if image.plain_json {
            self.raw(&image.data)
        } else {
            self.escaped(&image.data)
        }
    }

    /// Appends an unsigned integer.
    pub(crate) fn number(&mut self, n: u64) -> &mut Out {
        self.raw(&n.to_string())
    }

    /// Appends a signed integer.
    pub(crate) fn int(&mut self, n: i64) -> &mut Out {
        self.raw(&n.to_string())
    }

    /// The bytes written so far.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Escapes `s` for a JSON string. Runs of bytes that need no escape (all of
/// base64, all non-ASCII UTF-8) are found sixteen bytes at a time and
/// copied with one `extend_from_slice` each.
fn escape_into(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        let end = crate::scan::plain_run_end(bytes, i);
        buf.extend_from_slice(bytes.get(i..end).unwrap_or_default());
        let Some(&b) = bytes.get(end) else {
            return;
        };
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            _ => {
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
            }
        }
        i = end + 1;
    }
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

/// A short, stable hex digest (FNV-1a, 64 bit) for response ids.
pub(crate) fn digest(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field `s` of a body, read with the reader.
    fn field_s(body: &str) -> Option<JStr<'_>> {
        crate::reader::document(body.as_bytes(), |r| {
            let mut s = None;
            r.object(&mut |r, key| {
                if key.is("s") {
                    s = r.opt_str()?;
                    Ok(())
                } else {
                    r.skip()
                }
            })?;
            Ok(s)
        })
        .unwrap()
    }

    #[test]
    fn jstr_borrows_unless_escaped() {
        struct Case {
            name: &'static str,
            body: &'static str,
            want: Option<&'static str>,
            borrowed: bool,
        }
        let cases = [
            Case {
                name: "plain",
                body: r#"{"s":"iVBORw0KGgo+/="}"#,
                want: Some("iVBORw0KGgo+/="),
                borrowed: true,
            },
            Case {
                name: "unicode",
                body: r#"{"s":"日本の猫 🐱"}"#,
                want: Some("日本の猫 🐱"),
                borrowed: true,
            },
            Case {
                name: "escaped slash",
                body: r#"{"s":"a\/b"}"#,
                want: Some("a/b"),
                borrowed: false,
            },
            Case {
                name: "null",
                body: r#"{"s":null}"#,
                want: None,
                borrowed: false,
            },
            Case {
                name: "missing",
                body: r#"{}"#,
                want: None,
                borrowed: false,
            },
        ];
        for case in cases {
            let got = field_s(case.body);
            assert_eq!(got.as_deref(), case.want, "{}", case.name);
            let borrowed = matches!(got.map(|s| s.0), Some(std::borrow::Cow::Borrowed(_)));
            assert_eq!(borrowed, case.borrowed, "{}", case.name);
        }
    }

    #[test]
    fn escaping_round_trips() {
        let cases = [
            ("empty", ""),
            ("base64", "iVBORw0KGgoAAAANSUhEUgAA+/=="),
            ("quotes and backslashes", r#"say "hi" \ bye"#),
            ("controls", "a\nb\r\tc\u{1}\u{8}\u{c}\u{1f}"),
            ("unicode", "日本の猫 🐱 \u{2028}"),
            (
                "long clean run then escapes",
                "abcdefghijklmnopqrstuvwxyz0123456789\"x\\y\u{0}z",
            ),
            (
                "escape at every offset",
                "a\"bcdefgh\\ijklmnop\nqrstuvwx\u{7f}\u{80}é",
            ),
        ];
        for (name, s) in cases {
            let mut out = Out::default();
            out.string(s);
            let bytes = out.into_bytes();
            let back: String = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, s, "{name}");
            // The very bytes `serde_json` writes (spliced model names and
            // thought signatures were written by it).
            assert_eq!(quoted(s), serde_json::to_vec(s).unwrap(), "{name}");
        }
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        assert_eq!(
            quoted(&every_ascii),
            serde_json::to_vec(&every_ascii).unwrap()
        );
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

    #[test]
    fn one_or_many_accepts_both() {
        let read = |body: &str| {
            crate::reader::document(body.as_bytes(), |r| {
                r.one_or_many(|r| {
                    let mut x = None;
                    r.object(&mut |r, key| {
                        if key.is("x") {
                            x = r.opt_int()?;
                            Ok(())
                        } else {
                            r.skip()
                        }
                    })?;
                    Ok(x)
                })
            })
        };
        let cases = [
            ("list", r#"[{"x":1},{"x":2}]"#, vec![Some(1), Some(2)]),
            ("object", r#"{"x":7}"#, vec![Some(7)]),
            ("empty list", "[]", vec![]),
        ];
        for (name, body, want) in cases {
            assert_eq!(read(body).unwrap(), want, "{name}");
        }
        assert!(read("3").is_err());
    }
}
