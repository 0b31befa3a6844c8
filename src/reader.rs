//! A pull reader of JSON bodies: the translators (and the filter, for a
//! model name or a key) walk a body with it, reading the fields they need
//! and skipping the rest, with strings borrowed from the body.
//!
//! It replaces `serde_json` where a request can carry megabytes of inline
//! images: one reader, not a generic deserializer copied for every visitor
//! (a few kilobytes of module instead of tens), and string runs skipped
//! sixteen bytes at a time ([`crate::scan::plain_run_end`]). Every value is
//! checked against the JSON grammar, skipped ones included; nesting deeper
//! than [`MAX_DEPTH`] is refused, so no body can exhaust the stack.

use crate::scan::plain_run_end;
use std::borrow::Cow;
use std::fmt;
use std::ops::{Deref, Range};

/// The deepest nesting of objects and arrays read (as `serde_json`).
pub(crate) const MAX_DEPTH: usize = 128;

/// A JSON string, borrowed from the input when it had no escapes.
///
/// A borrowed `JStr` is only ever made by a JSON parser (`serde_json` on a
/// body, or [`super::reader`]) from a string without escapes: its text has
/// no `"`, `\` or control character, so it can be written into JSON as it
/// is ([`JStr::is_plain_json`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct JStr<'a>(pub(crate) Cow<'a, str>);

impl<'a> JStr<'a> {
    /// Whether the text is a body's JSON string without escapes (borrowed),
    /// to be written without escaping it again.
    pub(crate) fn is_plain_json(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }

    /// A part of the string that stays borrowed when `self` is; an empty
    /// string when `range` is not on character boundaries.
    pub(crate) fn slice(&self, range: Range<usize>) -> Cow<'a, str> {
        match &self.0 {
            Cow::Borrowed(s) => Cow::Borrowed(s.get(range).unwrap_or("")),
            Cow::Owned(s) => Cow::Owned(s.get(range).unwrap_or("").to_owned()),
        }
    }

    /// A part of the string, as [`JStr::slice`], still a `JStr`.
    pub(crate) fn part(&self, range: Range<usize>) -> JStr<'a> {
        JStr(self.slice(range))
    }

    /// The string as a `Cow`, borrowed when possible.
    pub(crate) fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

impl Deref for JStr<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Why a body is not what its reader expected, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadError {
    /// What was expected or found.
    pub(crate) what: &'static str,
    /// The byte offset in the body.
    pub(crate) at: usize,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// A JSON string as it is in the body: its raw text between the quotes
/// (escapes undecoded, control characters refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Str<'a> {
    raw: &'a [u8],
    escaped: bool,
    at: usize,
}

impl<'a> Str<'a> {
    /// Whether the string is one of `names` (a key and its alias, usually
    /// camelCase and snake_case).
    pub(crate) fn is_any(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.is(name))
    }

    /// Which entry of `names` the string is one of the names of (out of
    /// line: one copy for every [`Reader::fields`]).
    #[inline(never)]
    pub(crate) fn which(&self, names: &[&[&str]]) -> Option<usize> {
        names.iter().position(|names| self.is_any(names))
    }

    /// Whether the string is exactly `s` (a key, usually).
    pub(crate) fn is(&self, s: &str) -> bool {
        if self.escaped {
            self.decode().is_ok_and(|d| *d == *s)
        } else {
            self.raw == s.as_bytes()
        }
    }

    /// The byte offset of its text (after the opening quote).
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// The decoded string: borrowed from the body when it has no escapes.
    pub(crate) fn decode(&self) -> Result<JStr<'a>, ReadError> {
        let invalid = |what| ReadError { what, at: self.at };
        if !self.escaped {
            return std::str::from_utf8(self.raw)
                .map(|s| JStr(Cow::Borrowed(s)))
                .map_err(|_| invalid("a string is not UTF-8"));
        }
        let mut out = Vec::with_capacity(self.raw.len());
        let mut i = 0;
        while let Some(rest) = self.raw.get(i..).filter(|r| !r.is_empty()) {
            let run = rest.iter().position(|&b| b == b'\\').unwrap_or(rest.len());
            out.extend_from_slice(&rest[..run]);
            i += run;
            let Some(&kind) = self.raw.get(i + 1) else {
                break;
            };
            i += 2;
            let byte = match kind {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                _ => {
                    // `u`: checked by the reader, four hex digits.
                    let first = hex4(self.raw.get(i..i + 4));
                    i += 4;
                    let c = match first {
                        Some(high @ 0xd800..=0xdbff) => {
                            let low = match self.raw.get(i..i + 2) {
                                Some(b"\\u") => hex4(self.raw.get(i + 2..i + 6)),
                                _ => None,
                            };
                            match low {
                                Some(low @ 0xdc00..=0xdfff) => {
                                    i += 6;
                                    char::from_u32(
                                        0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00),
                                    )
                                }
                                _ => None,
                            }
                        }
                        Some(code) => char::from_u32(code),
                        None => None,
                    };
                    let c = c.ok_or_else(|| invalid("a string has a lone surrogate"))?;
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    continue;
                }
            };
            out.push(byte);
        }
        String::from_utf8(out)
            .map(|s| JStr(Cow::Owned(s)))
            .map_err(|_| invalid("a string is not UTF-8"))
    }
}

/// Four hex digits as a number.
fn hex4(digits: Option<&[u8]>) -> Option<u32> {
    let digits = std::str::from_utf8(digits?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// Reads `buf` as one JSON document with `read`: nothing but white space
/// may follow it.
pub(crate) fn document<'a, T>(
    buf: &'a [u8],
    read: impl FnOnce(&mut Reader<'a, '_>) -> Result<T, ReadError>,
) -> Result<T, ReadError> {
    let mut r = Reader::with_long_strings(buf, &[]);
    let value = read(&mut r)?;
    r.end()?;
    Ok(value)
}

/// The string a JSON document that is one string (`raw`, quotes included)
/// decodes to; `None` for any other document.
pub(crate) fn string_of(raw: &[u8]) -> Option<String> {
    str_of(raw).map(Cow::into_owned)
}

/// [`string_of`], borrowed from `raw` when the string has no escape.
pub(crate) fn str_of(raw: &[u8]) -> Option<Cow<'_, str>> {
    // A string with no escape, quote or control character between its
    // quotes (a model name, nearly always) is its own text: taken without
    // running the reader, code a routed request would run for nothing else.
    if let [b'"', text @ .., b'"'] = raw {
        if plain_run_end(text, 0) == text.len() {
            return std::str::from_utf8(text).ok().map(Cow::Borrowed);
        }
    }
    document(raw, |r| r.str()?.decode()).ok().map(|s| s.0)
}

/// Powers of ten an `f64` holds (as `serde_json` reads numbers).
#[rustfmt::skip]
const POW10: [f64; 309] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60, 1e61, 1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69, 1e70, 1e71, 1e72, 1e73, 1e74, 1e75, 1e76, 1e77, 1e78, 1e79, 1e80, 1e81, 1e82, 1e83, 1e84, 1e85, 1e86, 1e87, 1e88, 1e89, 1e90, 1e91, 1e92, 1e93, 1e94, 1e95, 1e96, 1e97, 1e98, 1e99, 1e100, 1e101, 1e102, 1e103, 1e104, 1e105, 1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118, 1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129, 1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142, 1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155, 1e156, 1e157, 1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168, 1e169, 1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, 1e180, 1e181, 1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191, 1e192, 1e193, 1e194, 1e195, 1e196, 1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207, 1e208, 1e209, 1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, 1e220, 1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, 1e230, 1e231, 1e232, 1e233, 1e234, 1e235, 1e236, 1e237, 1e238, 1e239, 1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248, 1e249, 1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259, 1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272, 1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287, 1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299, 1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308];

/// A JSON number's text (checked by the grammar) as an `f64`, read the way
/// `serde_json` reads one without its `float_roundtrip` feature: the digits
/// as an integer (those past 19 only scale it), then one product or
/// quotient by a power of ten; exact when the digits fit 2^53 and the power
/// is at most 22. `None` when it is out of range. (Not `str::parse`, whose
/// exact algorithm would add about 20 KB of tables to the module.)
pub(crate) fn f64_of(text: &str) -> Option<f64> {
    let (negative, rest) = match text.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text.as_bytes()),
    };
    let mut significand: u64 = 0;
    let mut full = false;
    let mut scale: i64 = 0;
    let mut fraction = false;
    let mut exponent: i64 = 0;
    let mut bytes = rest.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'0'..=b'9' => {
                let digit = u64::from(b - b'0');
                match significand
                    .checked_mul(10)
                    .and_then(|s| s.checked_add(digit))
                {
                    Some(next) if !full => {
                        significand = next;
                        scale -= i64::from(fraction);
                    }
                    _ => {
                        full = true;
                        scale += i64::from(!fraction);
                    }
                }
            }
            b'.' => fraction = true,
            b'e' | b'E' => {
                let mut sign = 1;
                for &b in bytes.by_ref() {
                    match b {
                        b'-' => sign = -1,
                        b'+' => {}
                        _ => {
                            let digit = i64::from(b.wrapping_sub(b'0'));
                            exponent = exponent.saturating_mul(10).saturating_add(digit);
                        }
                    }
                }
                exponent *= sign;
            }
            _ => return None,
        }
    }
    let mut power = scale.saturating_add(exponent);
    let mut value = significand as f64;
    loop {
        match usize::try_from(power.unsigned_abs())
            .ok()
            .and_then(|i| POW10.get(i))
        {
            Some(&pow) if power >= 0 => {
                value *= pow;
                break;
            }
            Some(&pow) => {
                value /= pow;
                break;
            }
            None if value == 0.0 => break,
            None if power >= 0 => return None,
            None => {
                value /= 1e308;
                power += 308;
            }
        }
    }
    value
        .is_finite()
        .then_some(if negative { -value } else { value })
}

/// A cursor over one JSON document.
pub(crate) struct Reader<'a, 'h> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    /// Long strings without escapes a scan found, in body order (their raw
    /// text): passed over without being read again.
    long_strings: &'h [Range<usize>],
}

impl<'a, 'h> Reader<'a, 'h> {
    #[cfg(test)]
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a, 'h> {
        Reader::with_long_strings(buf, &[])
    }

    /// A reader of `buf` that knows where its long strings are
    /// ([`crate::scan::Scanned::long_strings`] of the same `buf`).
    pub(crate) fn with_long_strings(
        buf: &'a [u8],
        long_strings: &'h [Range<usize>],
    ) -> Reader<'a, 'h> {
        Reader {
            buf,
            pos: 0,
            depth: 0,
            long_strings,
        }
    }

    /// The long string whose text starts at `start`, when the scan found
    /// one there: strings are read in body order, so the ones before are
    /// dropped as the reader passes them.
    fn long_string_at(&mut self, start: usize) -> Option<Range<usize>> {
        while let Some((first, rest)) = self.long_strings.split_first() {
            if first.start > start {
                return None;
            }
            self.long_strings = rest;
            // Its closing quote is where the scan saw it, or it is no hint.
            if first.start == start && self.buf.get(first.end) == Some(&b'"') {
                return Some(first.clone());
            }
        }
        None
    }

    fn error(&self, what: &'static str) -> ReadError {
        ReadError { what, at: self.pos }
    }

    /// An error saying what was expected at the current position.
    pub(crate) fn expected(&self, what: &'static str) -> ReadError {
        self.error(what)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.buf.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The byte offset of the next value, after white space.
    pub(crate) fn offset(&mut self) -> usize {
        self.skip_ws();
        self.pos
    }

    /// The first byte of the next value, after white space.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.buf.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8, what: &'static str) -> Result<(), ReadError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn word(&mut self, word: &[u8]) -> bool {
        let found = self
            .buf
            .get(self.pos..)
            .is_some_and(|r| r.starts_with(word));
        if found {
            self.pos += word.len();
        }
        found
    }

    /// Consumes `null` when it comes next.
    pub(crate) fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.word(b"null")
    }

    /// A boolean.
    pub(crate) fn bool(&mut self) -> Result<bool, ReadError> {
        self.skip_ws();
        if self.word(b"true") {
            Ok(true)
        } else if self.word(b"false") {
            Ok(false)
        } else {
            Err(self.error("expected a boolean"))
        }
    }

    /// A number's text, checked against the JSON grammar.
    fn number(&mut self) -> Result<&'a str, ReadError> {
        self.skip_ws();
        let start = self.pos;
        let digits = |r: &mut Reader<'a, 'h>| {
            let from = r.pos;
            while r.buf.get(r.pos).is_some_and(u8::is_ascii_digit) {
                r.pos += 1;
            }
            r.pos > from
        };
        if self.buf.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let leading_zero = self.buf.get(self.pos) == Some(&b'0');
        let sign = usize::from(self.buf.get(start) == Some(&b'-'));
        if !digits(self) || (leading_zero && self.pos - start > 1 + sign) {
            return Err(ReadError {
                what: "expected a number",
                at: start,
            });
        }
        if self.buf.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.error("a number has no digits after its point"));
            }
        }
        if let Some(b'e' | b'E') = self.buf.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.buf.get(self.pos) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.error("a number has no digits in its exponent"));
            }
        }
        let text = self.buf.get(start..self.pos).unwrap_or_default();
        std::str::from_utf8(text).map_err(|_| self.error("expected a number"))
    }

    /// A number's text as it is in the body, checked against the JSON
    /// grammar (for numbers passed on without being parsed).
    pub(crate) fn number_text(&mut self) -> Result<&'a str, ReadError> {
        self.number()
    }

    /// An integer (no fraction or exponent).
    pub(crate) fn int(&mut self) -> Result<i64, ReadError> {
        self.skip_ws();
        let at = self.pos;
        let text = self.number()?;
        text.parse().map_err(|_| ReadError {
            what: "expected an integer",
            at,
        })
    }

    /// A string, borrowed.
    pub(crate) fn str(&mut self) -> Result<Str<'a>, ReadError> {
        self.eat(b'"', "expected a string")?;
        let start = self.pos;
        if let Some(long) = self.long_string_at(start) {
            // The scan checked it: no escape, no control character.
            self.pos = long.end + 1;
            return Ok(Str {
                raw: self.buf.get(long).unwrap_or_default(),
                escaped: false,
                at: start,
            });
        }
        let mut escaped = false;
        let mut i = start;
        loop {
            i = plain_run_end(self.buf, i);
            match self.buf.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Str {
                        raw: &self.buf[start..i],
                        escaped,
                        at: start,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    let valid = match self.buf.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u') if hex4(self.buf.get(i + 2..i + 6)).is_some() => 6,
                        _ => 0,
                    };
                    if valid == 0 {
                        self.pos = i;
                        return Err(self.error("a string has an invalid escape"));
                    }
                    i += valid;
                }
                Some(_) => {
                    self.pos = i;
                    return Err(self.error("a string has a control character"));
                }
                None => {
                    self.pos = self.buf.len();
                    return Err(self.error("a string is not closed"));
                }
            }
        }
    }

    fn enter(&mut self, open: u8, what: &'static str) -> Result<(), ReadError> {
        self.eat(open, what)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("the body nests too deeply"));
        }
        Ok(())
    }

    /// An object: `field` is called with each key and must read its value.
    /// (A `dyn` callback: one copy of this loop in the module, whatever
    /// the callers.)
    pub(crate) fn object(
        &mut self,
        field: &mut dyn FnMut(&mut Reader<'a, 'h>, Str<'a>) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        self.begin_object()?;
        let mut read = 0;
        while let Some(key) = self.next_key(read)? {
            field(self, key)?;
            read += 1;
        }
        Ok(())
    }

    /// Opens an object, to be read key by key with [`Reader::next_key`]
    /// (for readers that keep their state in a loop, not a callback).
    pub(crate) fn begin_object(&mut self) -> Result<(), ReadError> {
        self.enter(b'{', "expected an object")
    }

    /// The next key of the object opened by [`Reader::begin_object`], its
    /// `:` consumed (its value is to be read next), or `None` at the end,
    /// the object closed. `read` is how many keys were read before.
    pub(crate) fn next_key(&mut self, read: usize) -> Result<Option<Str<'a>>, ReadError> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(None);
            }
            Some(b',') if read > 0 => self.pos += 1,
            _ if read == 0 => {}
            _ => return Err(self.error("expected `,` or `}`")),
        }
        if self.peek() != Some(b'"') {
            return Err(self.error("key must be a string"));
        }
        let key = self.str()?;
        self.eat(b':', "expected `:`")?;
        Ok(Some(key))
    }

    /// An array: `item` is called for each element and must read it.
    pub(crate) fn array(
        &mut self,
        item: &mut dyn FnMut(&mut Reader<'a, 'h>) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        self.begin_array()?;
        let mut read = 0;
        while self.next_item(read)? {
            item(self)?;
            read += 1;
        }
        Ok(())
    }

    /// Opens an array, to be read element by element with
    /// [`Reader::next_item`].
    pub(crate) fn begin_array(&mut self) -> Result<(), ReadError> {
        self.enter(b'[', "expected an array")
    }

    /// Whether another element of the array opened by
    /// [`Reader::begin_array`] follows (to be read next); at the end the
    /// array is closed. `read` is how many elements were read before.
    pub(crate) fn next_item(&mut self, read: usize) -> Result<bool, ReadError> {
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            Some(b',') if read > 0 => {
                self.pos += 1;
                Ok(true)
            }
            _ if read == 0 => Ok(true),
            _ => Err(self.error("expected `,` or `]`")),
        }
    }

    /// Any value, checked and passed over.
    pub(crate) fn skip(&mut self) -> Result<(), ReadError> {
        match self.peek() {
            Some(b'{') => self.object(&mut |r, _| r.skip()),
            Some(b'[') => self.array(&mut Reader::skip),
            Some(b'"') => self.str().map(drop),
            Some(b't' | b'f') => self.bool().map(drop),
            Some(b'n') if self.null() => Ok(()),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ => Err(self.error("expected a value")),
        }
    }

    /// A string, or `null`.
    pub(crate) fn opt_str(&mut self) -> Result<Option<JStr<'a>>, ReadError> {
        if self.null() {
            return Ok(None);
        }
        self.str()?.decode().map(Some)
    }

    /// A value `read` reads, or `null`.
    pub(crate) fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Reader<'a, 'h>) -> Result<T, ReadError>,
    ) -> Result<Option<T>, ReadError> {
        if self.null() {
            Ok(None)
        } else {
            read(self).map(Some)
        }
    }

    /// An object's field named any of `names` (the last, when repeated),
    /// read by `read`; every other field checked and passed over.
    pub(crate) fn field<T>(
        &mut self,
        names: &[&str],
        mut read: impl FnMut(&mut Reader<'a, 'h>) -> Result<T, ReadError>,
    ) -> Result<Option<T>, ReadError> {
        let mut value = None;
        self.object(&mut |r, key| {
            if key.is_any(names) {
                value = Some(read(r)?);
                Ok(())
            } else {
                r.skip()
            }
        })?;
        Ok(value)
    }

    /// An object's fields, one per entry of `names` (a field named any of
    /// the entry's names; the last, when repeated), each read by `read`;
    /// every other field checked and passed over.
    pub(crate) fn fields<T, const N: usize>(
        &mut self,
        names: [&[&str]; N],
        mut read: impl FnMut(&mut Reader<'a, 'h>) -> Result<Option<T>, ReadError>,
    ) -> Result<[Option<T>; N], ReadError> {
        let mut values = [(); N].map(|()| None);
        self.object(&mut |r, key| {
            match key.which(&names).and_then(|i| values.get_mut(i)) {
                Some(value) => *value = read(r)?,
                None => r.skip()?,
            }
            Ok(())
        })?;
        Ok(values)
    }

    /// An integer, or `null`.
    pub(crate) fn opt_int(&mut self) -> Result<Option<i64>, ReadError> {
        self.opt(Reader::int)
    }

    /// A non-negative integer, or `null`.
    pub(crate) fn opt_uint(&mut self) -> Result<Option<u64>, ReadError> {
        self.opt(|r| {
            r.skip_ws();
            let at = r.pos;
            let text = r.number()?;
            text.parse().map_err(|_| ReadError {
                what: "expected a non-negative integer",
                at,
            })
        })
    }

    /// A boolean, or `null`.
    pub(crate) fn opt_bool(&mut self) -> Result<Option<bool>, ReadError> {
        self.opt(Reader::bool)
    }

    /// An array whose elements `read` reads.
    pub(crate) fn list<T>(
        &mut self,
        mut read: impl FnMut(&mut Reader<'a, 'h>) -> Result<T, ReadError>,
    ) -> Result<Vec<T>, ReadError> {
        let mut items = Vec::new();
        self.array(&mut |r| {
            items.push(read(r)?);
            Ok(())
        })?;
        Ok(items)
    }

    /// An array whose elements `read` reads, or one such element alone
    /// (older clients send an object where a list belongs).
    pub(crate) fn one_or_many<T>(
        &mut self,
        mut read: impl FnMut(&mut Reader<'a, 'h>) -> Result<T, ReadError>,
    ) -> Result<Vec<T>, ReadError> {
        if self.peek() == Some(b'[') {
            self.list(read)
        } else {
            read(self).map(|item| vec![item])
        }
    }

    /// The end of the document: only white space may follow.
    pub(crate) fn end(mut self) -> Result<(), ReadError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of a document, read with `skip`; `Err` as `serde_json` would.
    fn skip_all(body: &str) -> Result<(), ReadError> {
        let mut r = Reader::new(body.as_bytes());
        r.skip()?;
        r.end()
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        let bodies = [
            "{}",
            "[]",
            r#"{"a":[1,-2.5e+3,0,-0,true,false,null,"s\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{}}"#,
            " [ 1 , { \"k\" : [ ] } ] ",
            "0.5",
            "\"\"",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[-]",
            "[tru]",
            "[nul]",
            "\"a\u{1}\"",
            r#""\x""#,
            r#""\u12""#,
            "[1] 2",
            "{\"a\":1}}",
            "[\"open",
            "",
        ];
        for body in bodies {
            let want = serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok();
            assert_eq!(skip_all(body).is_ok(), want, "{body:?}");
        }
    }

    #[test]
    fn a_string_document_is_borrowed_unless_escaped() {
        // (document, its string, borrowed)
        let cases: [(&str, Option<&str>, bool); 10] = [
            (r#""gemini-3.5-flash""#, Some("gemini-3.5-flash"), true),
            // Quotes at both ends, but not one string.
            (r#""a"b""#, None, false),
            (r#""a\""#, None, false),
            ("\"a\u{1}\"", None, false),
            (r#""é""#, Some("é"), true),
            (r#""""#, Some(""), true),
            (r#""a\u0041""#, Some("aA"), false),
            (r#" "x" "#, Some("x"), true),
            ("12", None, false),
            (r#""a" 1"#, None, false),
        ];
        for (doc, want, borrowed) in cases {
            let got = str_of(doc.as_bytes());
            assert_eq!(got.as_deref(), want, "{doc}");
            assert_eq!(
                matches!(got, Some(Cow::Borrowed(_))),
                borrowed,
                "{doc}: borrowed"
            );
            assert_eq!(string_of(doc.as_bytes()).as_deref(), want, "{doc}: owned");
        }
    }

    #[test]
    fn decodes_strings_as_serde_json_does() {
        let strings = [
            r#""plain""#,
            r#""é and 😀""#,
            r#""a\"b\\c\/d\be\ff\ng\rh\ti""#,
            r#""\u0041\u00e9\u20ac\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83d\u0041""#,
        ];
        for s in strings {
            let want = serde_json::from_str::<String>(s).ok();
            let mut r = Reader::new(s.as_bytes());
            let got = r
                .str()
                .and_then(|s| s.decode())
                .ok()
                .map(|j| j.0.into_owned());
            assert_eq!(got, want, "{s}");
        }
        let mut r = Reader::new(br#""plain""#);
        let plain = r.str().unwrap().decode().unwrap();
        assert!(matches!(plain.0, Cow::Borrowed(_)));
        let mut r = Reader::new(b"\"\xff\"");
        assert!(r.str().unwrap().decode().is_err());
    }

    #[test]
    fn long_strings_found_by_the_scan_are_passed_over() {
        let long = "Q".repeat(crate::scan::LONG_STRING + 3);
        let body = format!(r#"{{"a":["{long}",{{"b":"{long}"}}],"c":"x\n{long}","d":"{long}"}}"#);
        let notes = crate::scan::Notes {
            long_strings: true,
            ..Default::default()
        };
        let scanned = crate::scan::top_level_fields_noting(body.as_bytes(), ["a"], notes).unwrap();
        assert_eq!(scanned.long_strings.len(), 3);
        let read = |hints: &[Range<usize>]| {
            let mut strings = Vec::new();
            let mut r = Reader::with_long_strings(body.as_bytes(), hints);
            fn walk(r: &mut Reader<'_, '_>, out: &mut Vec<String>) -> Result<(), ReadError> {
                match r.peek() {
                    Some(b'"') => {
                        out.push(r.str()?.decode()?.0.into_owned());
                        Ok(())
                    }
                    Some(b'[') => r.array(&mut |r| walk(r, out)),
                    Some(b'{') => r.object(&mut |r, _| walk(r, out)),
                    _ => r.skip(),
                }
            }
            walk(&mut r, &mut strings).unwrap();
            r.end().unwrap();
            strings
        };
        let plain = read(&[]);
        assert_eq!(read(&scanned.long_strings), plain);
        assert_eq!(plain.len(), 4);
        // A hint that does not end at a quote is not taken.
        let wrong = scanned.long_strings[0].start..scanned.long_strings[0].end - 1;
        assert_eq!(read(std::slice::from_ref(&wrong)), plain);
    }

    #[test]
    fn objects_and_arrays_read_step_by_step() {
        let mut r = Reader::new(br#" {"a": [1, 2], "b": {}} "#);
        assert_eq!(r.offset(), 1);
        r.begin_object().unwrap();
        let mut keys = Vec::new();
        while let Some(key) = r.next_key(keys.len()).unwrap() {
            keys.push(key.decode().unwrap().0.into_owned());
            if key.is("a") {
                r.begin_array().unwrap();
                let mut items = Vec::new();
                while r.next_item(items.len()).unwrap() {
                    items.push(r.int().unwrap());
                }
                assert_eq!(items, [1, 2]);
            } else {
                assert_eq!(key.offset(), 16);
                r.skip().unwrap();
            }
        }
        assert_eq!(keys, ["a", "b"]);
        r.end().unwrap();

        let next_key = |body: &[u8], read| {
            let mut r = Reader::new(body);
            r.begin_object().unwrap();
            r.next_key(read).map(|k| k.is_some())
        };
        assert_eq!(next_key(b"{}", 0), Ok(false));
        assert_eq!(
            next_key(b"{1:2}", 0).unwrap_err().what,
            "key must be a string"
        );
        assert_eq!(
            next_key(b"{ 2}", 1).unwrap_err().what,
            "expected `,` or `}`"
        );
        let next_item = |body: &[u8], read| {
            let mut r = Reader::new(body);
            r.begin_array().unwrap();
            r.next_item(read)
        };
        assert_eq!(next_item(b"[]", 0), Ok(false));
        assert_eq!(next_item(b"[,]", 0), Ok(true));
        assert_eq!(
            next_item(b"[ 2]", 1).unwrap_err().what,
            "expected `,` or `]`"
        );
    }

    #[test]
    fn floats_are_what_serde_json_reads() {
        let numbers = [
            "0",
            "-0",
            "1",
            "0.1",
            "0.3",
            "-2.5e-3",
            "1e22",
            "1e23",
            "123e20",
            "1.5e-23",
            "9007199254740993",
            "123456789012345678901234",
            "0.000000000000000000000000001",
            "1e-0000000000000000000000000000005",
            "4.9e-324",
            "1e-400",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "0.12345678901234567890123",
            "-0.0000123456789",
        ];
        for text in numbers {
            let want = serde_json::from_str::<f64>(text).ok().map(f64::to_bits);
            assert_eq!(f64_of(text).map(f64::to_bits), want, "{text}");
        }
        for text in ["1e400", "1.7976931348623159e308", "1e99999999999999999999"] {
            assert!(serde_json::from_str::<f64>(text).is_err());
            assert_eq!(f64_of(text), None, "{text}");
        }
    }

    #[test]
    fn reads_one_field_by_any_of_its_names() {
        let read = |body: &str| {
            document(body.as_bytes(), |r| {
                r.field(&["aspectRatio", "aspect_ratio"], Reader::opt_str)
            })
            .map(|v| v.map(|s| s.map(|s| s.0.into_owned())))
        };
        type Want = Result<Option<Option<&'static str>>, ()>;
        let cases: [(&str, Want); 6] = [
            (r#"{"aspectRatio":"16:9"}"#, Ok(Some(Some("16:9")))),
            (
                r#"{"x":[1,{}],"aspect_ratio":"1:1"}"#,
                Ok(Some(Some("1:1"))),
            ),
            (
                r#"{"aspect_ratio":"1:1","aspectRatio":null}"#,
                Ok(Some(None)),
            ),
            (r#"{"other":"16:9"}"#, Ok(None)),
            (r#"{"other":[1 2],"aspectRatio":"1:1"}"#, Err(())),
            (r#"["aspectRatio"]"#, Err(())),
        ];
        for (body, want) in cases {
            let got = read(body).map_err(|_| ());
            assert_eq!(got, want.map(|v| v.map(|s| s.map(str::to_owned))), "{body}");
        }
    }

    #[test]
    fn reads_several_fields_by_any_of_their_names() {
        let read = |body: &str| {
            document(body.as_bytes(), |r| {
                r.fields([&["mimeType", "mime_type"], &["data"]], Reader::opt_str)
            })
            .map(|v| v.map(|s| s.map(|s| s.0.into_owned())))
            .map_err(|_| ())
        };
        type Want = Result<[Option<&'static str>; 2], ()>;
        let cases: [(&str, Want); 7] = [
            (
                r#"{"mimeType":"image/png","data":"AA"}"#,
                Ok([Some("image/png"), Some("AA")]),
            ),
            (
                r#"{"data":"AA","mime_type":"image/jpeg"}"#,
                Ok([Some("image/jpeg"), Some("AA")]),
            ),
            (r#"{"x":[1,{}],"data":"A\u0041"}"#, Ok([None, Some("AA")])),
            (r#"{"data":"AA","data":null}"#, Ok([None, None])),
            (r#"{}"#, Ok([None, None])),
            (r#"{"data":3}"#, Err(())),
            (r#"{"other":[1 2],"data":"AA"}"#, Err(())),
        ];
        for (body, want) in cases {
            let want = want.map(|v| v.map(|s| s.map(str::to_owned)));
            assert_eq!(read(body), want, "{body}");
        }
    }

    #[test]
    fn reads_fields_and_refuses_deep_nesting() {
        let body = br#"{"n":3,"s":"x","b":true,"z":null,"skip":[{"a":[1]}]}"#;
        let (mut n, mut s, mut b) = (0, None, false);
        let mut r = Reader::new(body);
        r.object(&mut |r, key| {
            if key.is("n") {
                n = r.int()?;
            } else if key.is("s") || key.is("z") {
                s = r.opt_str()?.or(s.take());
            } else if key.is("b") {
                b = r.bool()?;
            } else {
                r.skip()?;
            }
            Ok(())
        })
        .unwrap();
        r.end().unwrap();
        assert_eq!((n, s.as_deref(), b), (3, Some("x"), true));

        let deep = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        assert!(skip_all(&deep(MAX_DEPTH)).is_ok());
        let refused = skip_all(&deep(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(refused.what, "the body nests too deeply");
        // Far deeper than any stack could recurse: refused all the same.
        assert!(skip_all(&deep(1 << 20)).is_err());

        let mut r = Reader::new(b"2.5");
        assert_eq!(r.int().unwrap_err().what, "expected an integer");
        let mut r = Reader::new(b"\"x\"");
        assert_eq!(
            r.int().unwrap_err(),
            ReadError {
                what: "expected a number",
                at: 0
            }
        );
    }

    /// The field `s` of a body, read with the reader.
    fn field_s(body: &str) -> Option<JStr<'_>> {
        document(body.as_bytes(), |r| r.field(&["s"], Reader::opt_str))
            .unwrap()
            .flatten()
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
    fn one_or_many_accepts_both() {
        let read = |body: &str| {
            document(body.as_bytes(), |r| {
                r.one_or_many(|r| Ok(r.field(&["x"], Reader::opt_int)?.flatten()))
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
