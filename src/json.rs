//! The JSON writer: an output buffer written front to back, which copies
//! large strings (base64 image data) exactly once, and its escaper. Bodies
//! are read with [`crate::reader`], whose `JStr` keeps strings without
//! escapes borrowed from the body (and written back here as they are).

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

    /// Appends `s` for the inside of a JSON string: as it is when a reader
    /// found it in a body without escapes (`plain_json`), else escaped.
    pub(crate) fn unquoted(&mut self, s: &str, plain_json: bool) -> &mut Out {
        if plain_json {
            self.raw(s)
        } else {
            self.escaped(s)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
