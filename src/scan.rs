//! Finds top-level fields of a JSON object without building a tree of it.
//!
//! An OpenAI-style request can carry megabytes of inline base64 images; the
//! router only needs `model` and `stream`. The scanner walks the top-level
//! object once, skipping nested values and long strings byte by byte, and
//! returns the raw JSON text of the wanted fields for `serde_json` to decode.
//! It rejects what is not a single JSON object, and a wanted key given twice
//! (so the filter and the upstream can never read different models).

use std::fmt;

/// The raw values (JSON text) of the wanted top-level keys, in `wanted` order.
pub type Fields<'a, const N: usize> = [Option<&'a [u8]>; N];

/// Why a body is not a JSON object the scanner can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// Not JSON, or not an object at the top level; `at` is the byte offset.
    Malformed { at: usize },
    /// A wanted key occurs more than once.
    DuplicateKey(&'static str),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Malformed { at } => write!(f, "body is not a JSON object (byte {at})"),
            ScanError::DuplicateKey(key) => write!(f, "body has the key {key:?} more than once"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Scans `body` for the top-level keys in `wanted`.
pub fn top_level_fields<'a, const N: usize>(
    body: &'a [u8],
    wanted: [&'static str; N],
) -> Result<Fields<'a, N>, ScanError> {
    // One scanner for every `N`: the array sizes are only the callers' view.
    let mut found: Fields<'a, N> = [None; N];
    scan_fields(
        &mut Scanner::new(body, Notes::default()),
        &wanted,
        &mut found,
    )?;
    Ok(found)
}

/// The shortest string [`Notes::long_strings`] records.
pub const LONG_STRING: usize = 4096;

/// What [`top_level_fields_noting`] found in one pass over a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned<'a, const N: usize> {
    /// The raw values of the wanted keys, in `wanted` order.
    pub fields: Fields<'a, N>,
    /// Whether some string nested in the body is [`Notes::string`].
    pub noted: bool,
    /// Whether some string nested in the body starts, after white space,
    /// with one of [`Notes::prefixes`].
    pub prefixed: bool,
    /// The objects, arrays and strings (keys included) in the body: what
    /// [`count_values`] counts, so a caller need not count again.
    pub values: usize,
    /// Where the strings of at least [`LONG_STRING`] bytes without escapes
    /// are (their raw text, between the quotes), in body order, when
    /// [`Notes::long_strings`] asked: a parser that reads the body next can
    /// pass over them without looking at their bytes again. At most one
    /// per [`LONG_STRING`] bytes of body.
    pub long_strings: Vec<std::ops::Range<usize>>,
}

/// What [`top_level_fields_noting`] looks out for in the strings nested in
/// a body (keys and values inside the top-level values), in their raw text
/// (escapes undecoded).
#[derive(Debug, Clone, Copy)]
pub struct Notes<'p> {
    /// A string to find exactly (empty: none).
    pub string: &'static str,
    /// Beginnings of a string, after white space (raw or escaped) is skipped
    /// (see [`Prefixes`]).
    pub prefixes: &'p Prefixes,
    /// Record where the long strings are ([`Scanned::long_strings`]).
    pub long_strings: bool,
}

impl Default for Notes<'_> {
    fn default() -> Self {
        Notes {
            string: "",
            prefixes: &NO_PREFIXES,
            long_strings: false,
        }
    }
}

/// No prefixes: [`Notes::default`]'s.
static NO_PREFIXES: Prefixes = Prefixes {
    list: Vec::new(),
    may_start: [0; 4],
    any_empty: false,
};

/// Beginnings of a string for [`Notes::prefixes`], each trimmed of ASCII
/// white space when matched (`trim_ascii`: a small loop, where `trim` is
/// Unicode tables), with what the scan tests each string against worked
/// out once, where the list is configured, rather than for every body. A
/// prefix written with escapes is not recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    list: Vec<String>,
    /// The bytes a string that may start with a prefix can start with (a
    /// prefix's first, or white space, raw or escaped), one bit each.
    may_start: [u64; 4],
    /// A prefix is empty once trimmed: it starts every string (the caller
    /// then looks at the prompt itself).
    any_empty: bool,
}

impl Prefixes {
    /// The set of `list`, as configured.
    pub fn new(list: Vec<String>) -> Prefixes {
        let mut may_start = [0u64; 4];
        let mut any_empty = false;
        if !list.is_empty() {
            // White space (raw, escaped, or non-ASCII).
            may_start = [
                1 << b' ' | 1 << b'\t' | 1 << b'\n' | 1 << b'\r' | 1 << 0x0b | 1 << 0x0c,
                1 << (b'\\' - 64),
                !0,
                !0,
            ];
        }
        for prefix in &list {
            match prefix.trim_ascii().bytes().next() {
                Some(b) => may_start[usize::from(b / 64)] |= 1 << (b % 64),
                None => any_empty = true,
            }
        }
        Prefixes {
            list,
            may_start,
            any_empty,
        }
    }

    /// The prefixes as given.
    pub fn as_slice(&self) -> &[String] {
        &self.list
    }

    /// Whether there are none: nothing is looked out for.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// [`top_level_fields`], whether some string nested in the body is what
/// `notes` looks out for, and how many values the body holds: found in the
/// same pass, so a caller that needs to know whether a chat has
/// `tool_calls` or a task prompt, or to bound a translation, reads the body
/// once.
pub fn top_level_fields_noting<'a, const N: usize>(
    body: &'a [u8],
    wanted: [&'static str; N],
    notes: Notes<'_>,
) -> Result<Scanned<'a, N>, ScanError> {
    let mut fields: Fields<'a, N> = [None; N];
    let mut s = Scanner::new(body, notes);
    scan_fields(&mut s, &wanted, &mut fields)?;
    Ok(Scanned {
        fields,
        noted: s.seen,
        prefixed: s.prefixed,
        values: s.values,
        long_strings: s.long,
    })
}

/// [`top_level_fields`] for any number of keys: fills `found[i]` with the
/// raw value of `wanted[i]`. (It and the scanner methods it calls are
/// compiled with SIMD128 in the module, like `plain_run_end_simd`, so that
/// it can be inlined into them: 0.94x against 0.95x `IgnoredAny`'s time in
/// V8 at 1 KiB without, the medians of seven runs of `make bench`'s V8
/// timing, by hand.)
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn scan_fields<'a>(
    s: &mut Scanner<'a, '_>,
    wanted: &[&'static str],
    found: &mut [Option<&'a [u8]>],
) -> Result<(), ScanError> {
    let body = s.buf;
    s.values = 1;
    s.skip_ws();
    s.expect(b'{')?;
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.pos += 1;
    } else {
        loop {
            s.skip_ws();
            let (key, key_escaped) = s.key()?;
            s.skip_ws();
            s.expect(b':')?;
            s.skip_ws();
            let start = s.pos;
            s.value()?;
            let raw = &body[start..s.pos];
            if let Some(i) = wanted.iter().position(|w| key_equals(key, key_escaped, w)) {
                if found[i].is_some() {
                    return Err(ScanError::DuplicateKey(wanted[i]));
                }
                found[i] = Some(raw);
            }
            s.skip_ws();
            match s.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(s.malformed()),
            }
        }
    }
    s.skip_ws();
    if s.pos != body.len() {
        return Err(s.malformed());
    }
    Ok(())
}

/// Whether the raw text of a JSON string starts with `prefix` once its
/// leading white space is skipped: literal, escaped (`\n`, `\u00a0`) or
/// non-ASCII (what `str::trim_start` removes from the decoded text).
fn starts_after_space(raw: &[u8], prefix: &[u8]) -> bool {
    let mut i = 0;
    loop {
        let Some(rest) = raw.get(i..) else {
            return false;
        };
        if rest.starts_with(prefix) {
            return true;
        }
        let skip = match rest {
            [b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c, ..] => 1,
            [b'\\', b'n' | b't' | b'r' | b'f', ..] => 2,
            [b'\\', b'u', hex @ ..] => {
                let code = hex
                    .get(..4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32);
                match code {
                    Some(c) if c.is_whitespace() => 6,
                    _ => return false,
                }
            }
            [first, ..] if *first >= 0x80 => {
                let len = match first {
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                let c = rest
                    .get(..len)
                    .and_then(|c| std::str::from_utf8(c).ok())
                    .and_then(|c| c.chars().next());
                match c {
                    Some(c) if c.is_whitespace() => len,
                    _ => return false,
                }
            }
            _ => return false,
        };
        i += skip;
    }
}

/// The raw elements (JSON text) of a JSON array: `raw` is the array's
/// text, as [`top_level_fields`] returns it. Each element is a slice of
/// `raw`, so [`offset`] finds where it is.
pub fn array_elements(raw: &[u8]) -> Result<Vec<&[u8]>, ScanError> {
    let mut elements = Vec::new();
    let mut s = Scanner::new(raw, Notes::default());
    s.skip_ws();
    s.expect(b'[')?;
    s.skip_ws();
    if s.peek() == Some(b']') {
        s.pos += 1;
    } else {
        loop {
            s.skip_ws();
            let start = s.pos;
            s.value()?;
            elements.push(&raw[start..s.pos]);
            s.skip_ws();
            match s.next() {
                Some(b',') => continue,
                Some(b']') => break,
                _ => return Err(s.malformed()),
            }
        }
    }
    s.skip_ws();
    if s.pos != raw.len() {
        return Err(s.malformed());
    }
    Ok(elements)
}

/// Where `part` starts in `base`, when it is a slice of it (as the slices
/// [`top_level_fields`] and [`array_elements`] return are).
pub fn offset(base: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    (start + part.len() <= base.len()).then_some(start)
}

/// Sorts items that nearly always come in order, stably, by `key`: a
/// sorted list is only read, a short one sorted in place, and a long one
/// (a hostile answer) by one sort of `(key, position)` pairs, so no input
/// takes quadratic time. Each standard sort of `T` would add kilobytes of
/// code to the module; this adds one sort of pairs for every `T`.
pub fn sort_small<T>(items: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    if items.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        return;
    }
    if items.len() <= 32 {
        for i in 1..items.len() {
            let mut j = i;
            while j > 0 && key(&items[j - 1]) > key(&items[j]) {
                items.swap(j - 1, j);
                j -= 1;
            }
        }
        return;
    }
    let mut order: Vec<(u64, usize)> = items
        .iter()
        .enumerate()
        .map(|(at, item)| (key(item), at))
        .collect();
    heap_sort(&mut order);
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(
        order
            .into_iter()
            .filter_map(|(_, at)| slots.get_mut(at).and_then(Option::take)),
    );
}

/// Sorts distinct pairs: a heap sort, in place, O(n log n), and a few
/// hundred bytes of code where the standard sorts take kilobytes.
fn heap_sort(items: &mut [(u64, usize)]) {
    fn sift_down(items: &mut [(u64, usize)], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && items[child] < items[child + 1] {
                child += 1;
            }
            if items[root] >= items[child] {
                return;
            }
            items.swap(root, child);
            root = child;
        }
    }
    let len = items.len();
    for root in (0..len / 2).rev() {
        sift_down(items, root, len);
    }
    for end in (1..len).rev() {
        items.swap(0, end);
        sift_down(items, 0, end);
    }
}

/// `base` with each range in `edits` replaced by its bytes, copied once.
/// Ranges must not overlap; they are applied in order of their start.
pub fn splice(base: &[u8], edits: &mut Vec<(std::ops::Range<usize>, Vec<u8>)>) -> Vec<u8> {
    sort_small(edits, |(at, _)| at.start as u64);
    let grow: usize = edits.iter().map(|(_, with)| with.len()).sum();
    let mut out = Vec::with_capacity(base.len() + grow);
    let mut from = 0;
    for (at, with) in edits.iter() {
        let start = at.start.clamp(from, base.len());
        out.extend_from_slice(&base[from..start]);
        out.extend_from_slice(with);
        from = at.end.clamp(start, base.len());
    }
    out.extend_from_slice(&base[from..]);
    out
}

/// Counts the objects, arrays and strings in `body` (one JSON document, or
/// a stream of them such as SSE `data:` lines), stopping as soon as the
/// count passes `limit`. A translator builds one small value per object,
/// array or string it reads, so this bounds the memory a translation can
/// take before anything is parsed. Returns the count, or `Err(limit + 1)`
/// when the body holds more. Text outside JSON is skipped, not validated.
pub fn count_values(body: &[u8], limit: usize) -> Result<usize, usize> {
    let mut count = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                count += 1;
                i = skip_string(body, i + 1);
            }
            b'{' | b'[' => {
                count += 1;
                i += 1;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        if count > limit {
            return Err(limit + 1);
        }
    }
    Ok(count)
}

/// The index just past the string that starts at `i` (after its opening
/// quote); the end of the body when the string is not closed.
fn skip_string(body: &[u8], mut i: usize) -> usize {
    loop {
        i = plain_run_end(body, i);
        match body.get(i) {
            None => return body.len(),
            Some(b'"') => return i + 1,
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
        }
    }
}

/// Compares a raw key (between the quotes) with a wanted name, decoding
/// it only when it has escapes (`escaped`, as the scan found it).
fn key_equals(raw: &[u8], escaped: bool, wanted: &str) -> bool {
    if !escaped {
        return raw == wanted.as_bytes();
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    crate::reader::string_of(&quoted).is_some_and(|k| k == wanted)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Non-zero when some byte of `x` is less than `n` (for `n` <= 0x80).
fn below(x: u64, n: u64) -> u64 {
    x.wrapping_sub(ONES * n) & !x & HIGH
}

/// Whether `needle` occurs in `haystack`: candidate positions of its first
/// byte are found eight bytes at a time, then compared.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let pattern = ONES * u64::from(first);
    let mut i = 0;
    while i < haystack.len() {
        // Skip words that hold no byte equal to `first`.
        while let Some(word) = haystack
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            if below(u64::from_le_bytes(word) ^ pattern, 1) != 0 {
                break;
            }
            i += 8;
        }
        let Some(at) = haystack
            .get(i..)
            .and_then(|h| h.iter().position(|&b| b == first))
        else {
            return false;
        };
        let start = i + at + 1;
        if haystack[start..].starts_with(rest) {
            return true;
        }
        i = start;
    }
    false
}

/// Whether any of the eight bytes in `word` (little-endian) ends or escapes
/// a JSON string or may not stand in one: `"`, `\\` or a control character.
#[cfg(test)]
fn word_has_string_special(word: u64) -> bool {
    string_special_mask(word) != 0
}

/// The high bit of each byte of `word` (little-endian) that is `"`, `\\`
/// or a control character, by the "has a zero byte" bit trick. Bits above
/// the lowest can be false (a borrow out of a hit), so only the lowest set
/// bit is to be read: it marks the first special byte exactly.
fn string_special_mask(word: u64) -> u64 {
    let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    let control = word.wrapping_sub(ONES * 0x20);
    (quote | backslash | control) & !word & HIGH
}

/// Eight bytes of `chunk` from `at`, little-endian.
fn word_at(chunk: &[u8; 16], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&chunk[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The index of the first byte at or after `i` that is `"`, `\\` or a
/// control character: the end of a run of bytes a JSON string holds as
/// they are (all of base64, all non-ASCII UTF-8); `buf.len()` when there
/// is none. Sixteen bytes are tested per step: with one SIMD128 compare in
/// the Wasm module, with two 8-byte words elsewhere.
pub(crate) fn plain_run_end(buf: &[u8], i: usize) -> usize {
    #[cfg(target_arch = "wasm32")]
    return plain_run_end_simd(buf, i);
    #[cfg(not(target_arch = "wasm32"))]
    return plain_run_end_swar(buf, i);
}

/// All ones in each lane of the 16 bytes `$c` that is `"`, `\\` or below
/// 0x20. A macro, not a function: at the module's inlining threshold
/// (.cargo/config.toml) a function would be called, not inlined, for every
/// 16 bytes, and `#[inline(always)]` cannot go with `#[target_feature]`.
#[cfg(target_arch = "wasm32")]
macro_rules! special_bytes {
    ($c:expr) => {{
        use core::arch::wasm32::{u8x16, u8x16_eq, u8x16_lt, u8x16_splat, v128_or};
        let c: &[u8; 16] = $c;
        let v = u8x16(
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13],
            c[14], c[15],
        );
        v128_or(
            v128_or(
                u8x16_eq(v, u8x16_splat(b'"')),
                u8x16_eq(v, u8x16_splat(b'\\')),
            ),
            u8x16_lt(v, u8x16_splat(0x20)),
        )
    }};
}

/// [`plain_run_end`] by Wasm SIMD128, which V8 (Envoy's Wasm runtime)
/// turns into SSE compares: 32 bytes per step while they last, then 16,
/// then a byte at a time.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
fn plain_run_end_simd(buf: &[u8], mut i: usize) -> usize {
    use core::arch::wasm32::{u8x16_bitmask, v128_any_true, v128_or};
    while let Some(c) = buf.get(i..).and_then(<[u8]>::first_chunk::<32>) {
        let (low, high) = c.split_at(16);
        // Both are 16 bytes: the `else` is never taken (and would be right).
        let (Some(low), Some(high)) = (low.first_chunk(), high.first_chunk()) else {
            break;
        };
        let (low, high) = (special_bytes!(low), special_bytes!(high));
        if v128_any_true(v128_or(low, high)) {
            let mask = u32::from(u8x16_bitmask(low)) | u32::from(u8x16_bitmask(high)) << 16;
            return i + mask.trailing_zeros() as usize;
        }
        i += 32;
    }
    if let Some(c) = buf.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        let mask = u8x16_bitmask(special_bytes!(c));
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    plain_bytes_end(buf, i)
}

/// [`plain_run_end`] by two 8-byte words per step.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn plain_run_end_swar(buf: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = buf
        .get(i..i + 16)
        .and_then(|c| <&[u8; 16]>::try_from(c).ok())
    {
        let (low, high) = (word_at(chunk, 0), word_at(chunk, 8));
        let (low, high) = (string_special_mask(low), string_special_mask(high));
        if low | high == 0 {
            i += 16;
            continue;
        }
        let lane = if low != 0 {
            low.trailing_zeros()
        } else {
            64 + high.trailing_zeros()
        };
        return i + (lane / 8) as usize;
    }
    plain_bytes_end(buf, i)
}

/// [`plain_run_end`] a byte at a time, for the last bytes.
fn plain_bytes_end(buf: &[u8], mut i: usize) -> usize {
    while let Some(&b) = buf.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    buf.len()
}

struct Scanner<'a, 'p> {
    buf: &'a [u8],
    pos: usize,
    /// What to look out for inside nested values.
    notes: Notes<'p>,
    /// `notes.string` was seen.
    seen: bool,
    /// A string starting with one of `notes.prefixes` was seen.
    prefixed: bool,
    /// The long strings without escapes, when `notes.long_strings`.
    long: Vec<std::ops::Range<usize>>,
    /// Objects, arrays and strings consumed so far.
    values: usize,
}

impl<'a, 'p> Scanner<'a, 'p> {
    fn new(buf: &'a [u8], notes: Notes<'p>) -> Scanner<'a, 'p> {
        Scanner {
            buf,
            pos: 0,
            notes,
            seen: false,
            prefixed: notes.prefixes.any_empty,
            long: Vec::new(),
            values: 0,
        }
    }

    fn malformed(&self) -> ScanError {
        ScanError::Malformed { at: self.pos }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Result<(), ScanError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.malformed())
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Consumes a string and returns its raw contents (escapes undecoded)
    /// and whether it had escapes. Runs of ordinary bytes (all of base64)
    /// are skipped sixteen at a time.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn string(&mut self) -> Result<(&'a [u8], bool), ScanError> {
        self.expect(b'"')?;
        self.values += 1;
        let buf = self.buf;
        let start = self.pos;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = plain_run_end(buf, i);
            match buf.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    if self.notes.long_strings && !escaped && i - start >= LONG_STRING {
                        self.long.push(start..i);
                    }
                    return Ok((&buf[start..i], escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(b) if *b < 0x20 => {
                    self.pos = i;
                    return Err(self.malformed());
                }
                Some(_) => i += 1,
                None => {
                    self.pos = buf.len();
                    return Err(self.malformed());
                }
            }
        }
    }

    /// Consumes one value of any type, checking only its outline.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn value(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"' | b'{' | b'[') => self.nested().map(|_| ()),
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'0'..=b'9' | b'e' | b'E' | b'a'..=b'z')
                ) {
                    self.pos += 1;
                }
                let atom = &self.buf[start..self.pos];
                let word_ok = matches!(atom, b"true" | b"false" | b"null");
                let number_ok = atom
                    .first()
                    .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
                    && atom.iter().all(|b| !b.is_ascii_lowercase() || *b == b'e');
                if word_ok || number_ok {
                    Ok(())
                } else {
                    Err(ScanError::Malformed { at: start })
                }
            }
            _ => Err(self.malformed()),
        }
    }

    /// Notes what a nested string is.
    fn note(&mut self, raw: &[u8]) {
        let wanted = self.notes.string.as_bytes();
        // A length test first: nearly every string is skipped.
        if raw.len() == wanted.len() && !raw.is_empty() && raw == wanted {
            self.seen = true;
        }
        // One bit test for nearly every string; an empty one is no prompt.
        let Some(&first) = raw.first() else {
            return;
        };
        let may_start = &self.notes.prefixes.may_start;
        if self.prefixed || may_start[usize::from(first / 64)] & (1 << (first % 64)) == 0 {
            return;
        }
        self.prefixed = self
            .notes
            .prefixes
            .list
            .iter()
            .any(|p| starts_after_space(raw, p.trim_ascii().as_bytes()));
    }

    /// Consumes a key: a string, its raw contents (escapes undecoded) and
    /// whether it had escapes.
    fn key(&mut self) -> Result<(&'a [u8], bool), ScanError> {
        if self.peek() != Some(b'"') {
            return Err(self.malformed());
        }
        self.nested()?.ok_or_else(|| self.malformed())
    }

    /// Consumes a string, or an object or array by bracket depth, noting
    /// the strings inside it ([`Scanner::note`]): a string's raw contents
    /// and whether it had escapes (`None` for the others). The one place [`Scanner::string`]
    /// is called from: V8 (Envoy's) inlines a small Wasm function into each
    /// of its callers, and the string step, inlined here, would otherwise
    /// be compiled once per caller, and each copy run by every request.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn nested(&mut self) -> Result<Option<(&'a [u8], bool)>, ScanError> {
        let mut open = Brackets::default();
        loop {
            match self.peek() {
                Some(b'"') => {
                    let (raw, escaped) = self.string()?;
                    if open.depth == 0 {
                        return Ok(Some((raw, escaped)));
                    }
                    self.note(raw);
                }
                Some(b'{') => {
                    self.values += 1;
                    open.push(true);
                    self.pos += 1;
                }
                Some(b'[') => {
                    self.values += 1;
                    open.push(false);
                    self.pos += 1;
                }
                Some(close @ (b'}' | b']')) => {
                    if open.pop() != Some(close == b'}') {
                        return Err(self.malformed());
                    }
                    self.pos += 1;
                    if open.depth == 0 {
                        return Ok(None);
                    }
                }
                Some(_) => self.pos += 1,
                None => return Err(self.malformed()),
            }
        }
    }
}

/// The kinds of the open brackets, one bit each (set: `{`): the first 64
/// in a word, so a body nested less deeply allocates nothing.
#[derive(Default)]
struct Brackets {
    depth: usize,
    low: u64,
    deeper: Vec<u64>,
}

impl Brackets {
    fn push(&mut self, object: bool) {
        let (word, bit) = (self.depth / 64, self.depth % 64);
        let slot = if word == 0 {
            &mut self.low
        } else {
            if self.deeper.len() < word {
                self.deeper.push(0);
            }
            &mut self.deeper[word - 1]
        };
        if object {
            *slot |= 1 << bit;
        } else {
            *slot &= !(1 << bit);
        }
        self.depth += 1;
    }

    /// Whether the innermost open bracket is `{`; `None` when none is open.
    fn pop(&mut self) -> Option<bool> {
        self.depth = self.depth.checked_sub(1)?;
        let (word, bit) = (self.depth / 64, self.depth % 64);
        let slot = if word == 0 {
            self.low
        } else {
            *self.deeper.get(word - 1)?
        };
        Some(slot & (1 << bit) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        body: &'static str,
        want: Result<[Option<&'static str>; 2], ScanError>,
    }

    #[test]
    fn finds_top_level_model_and_stream() {
        let cases = [
            Case {
                name: "simple",
                body: r#"{"model":"gemini-2.5-flash","stream":true}"#,
                want: Ok([Some(r#""gemini-2.5-flash""#), Some("true")]),
            },
            Case {
                name: "key order and whitespace",
                body: " \n{ \"stream\" : false ,\t\"model\"\r\n: \"m\" } \n",
                want: Ok([Some(r#""m""#), Some("false")]),
            },
            Case {
                name: "nested model keys are ignored",
                body: r#"{"messages":[{"model":"evil","content":"{\"model\":\"x\"}"}],"model":"good"}"#,
                want: Ok([Some(r#""good""#), None]),
            },
            Case {
                name: "escaped quotes and backslashes in strings",
                body: r#"{"prompt":"a \"quoted\" \\ back\\","model":"m\u002d1"}"#,
                want: Ok([Some(r#""m\u002d1""#), None]),
            },
            Case {
                name: "escaped key still matches",
                body: r#"{"mod\u0065l":"m"}"#,
                want: Ok([Some(r#""m""#), None]),
            },
            Case {
                name: "escaped and plain keys and values mixed: each key by its own escapes",
                body: r#"{"x":"a\"b","model":"m","str\u0065am":true,"mode\"l":1}"#,
                want: Ok([Some(r#""m""#), Some("true")]),
            },
            Case {
                name: "non-string model is returned raw",
                body: r#"{"model":42,"stream":null}"#,
                want: Ok([Some("42"), Some("null")]),
            },
            Case {
                name: "object model",
                body: r#"{"model":{"a":[1,2,{"b":"]"}]}}"#,
                want: Ok([Some(r#"{"a":[1,2,{"b":"]"}]}"#), None]),
            },
            Case {
                name: "missing model",
                body: r#"{"messages":[]}"#,
                want: Ok([None, None]),
            },
            Case {
                name: "empty object",
                body: "{}",
                want: Ok([None, None]),
            },
            Case {
                name: "duplicate model",
                body: r#"{"model":"a","model":"b"}"#,
                want: Err(ScanError::DuplicateKey("model")),
            },
            Case {
                name: "array at top level",
                body: r#"[{"model":"a"}]"#,
                want: Err(ScanError::Malformed { at: 0 }),
            },
            Case {
                name: "unterminated string",
                body: r#"{"model":"abc"#,
                want: Err(ScanError::Malformed { at: 13 }),
            },
            Case {
                name: "trailing garbage",
                body: r#"{"model":"a"} x"#,
                want: Err(ScanError::Malformed { at: 14 }),
            },
            Case {
                name: "missing colon",
                body: r#"{"model" "a"}"#,
                want: Err(ScanError::Malformed { at: 9 }),
            },
            Case {
                name: "bare word",
                body: r#"{"model":nope}"#,
                want: Err(ScanError::Malformed { at: 9 }),
            },
            Case {
                name: "unbalanced brackets",
                body: r#"{"x":[1,2}"#,
                want: Err(ScanError::Malformed { at: 9 }),
            },
            Case {
                name: "raw control character in string",
                body: "{\"model\":\"a\nb\"}",
                want: Err(ScanError::Malformed { at: 11 }),
            },
            Case {
                name: "empty body",
                body: "",
                want: Err(ScanError::Malformed { at: 0 }),
            },
        ];
        for case in cases {
            let got = top_level_fields(case.body.as_bytes(), ["model", "stream"])
                .map(|f| f.map(|v| v.map(|raw| std::str::from_utf8(raw).unwrap_or("<utf8>"))));
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn skips_a_large_inline_image() {
        let image = "A".repeat(4 << 20);
        let body = format!(
            r#"{{"messages":[{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{image}"}}}}]}}],"model":"gemini-2.5-flash"}}"#
        );
        let got = top_level_fields(body.as_bytes(), ["model"]).unwrap();
        assert_eq!(got[0], Some(&br#""gemini-2.5-flash""#[..]));
    }

    #[test]
    fn word_test_agrees_with_the_byte_test() {
        let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        // Every byte value in every lane, among ordinary neighbours.
        for lane in 0..8 {
            for b in 0..=255u8 {
                let mut word = [b'A'; 8];
                word[lane] = b;
                let got = word_has_string_special(u64::from_le_bytes(word));
                assert_eq!(got, special(b), "byte {b:#04x} in lane {lane}");
            }
        }
        // Neighbours that could borrow into the next lane.
        for pair in [
            [0x00, 0x22],
            [0x21, 0x22],
            [0x80, 0x5c],
            [0xff, 0x1f],
            [0x20, 0x21],
        ] {
            let mut word = [b'A'; 8];
            word[3..5].copy_from_slice(&pair);
            let want = pair.iter().any(|&b| special(b));
            assert_eq!(
                word_has_string_special(u64::from_le_bytes(word)),
                want,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn strings_end_at_every_offset() {
        // A closing quote, escape or control byte at each position of the
        // eight-byte stride is found where the byte-wise scan finds it.
        for len in 0..20 {
            let s = "b".repeat(len);
            let body = format!(r#"{{"model":"{s}","x":"{s}\"{s}"}}"#);
            let got = top_level_fields(body.as_bytes(), ["model", "x"]).unwrap();
            assert_eq!(got[0], Some(format!("\"{s}\"").as_bytes()), "{len}");
            let bad = format!("{{\"model\":\"{s}\u{1}\"}}");
            assert_eq!(
                top_level_fields(bad.as_bytes(), ["model"]),
                Err(ScanError::Malformed { at: 10 + len }),
                "{len}"
            );
        }
    }

    #[test]
    fn plain_runs_end_where_the_byte_test_says() {
        let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        // Each byte value at each position of the steps (two of 32 bytes
        // and one of 16 in the Wasm module, five of 16 elsewhere) and the
        // tail, after start offsets that shift them, among ordinary
        // neighbours (ASCII and UTF-8 bytes above 0x80).
        for filler in [b'A', 0xc3] {
            for at in 0..80 {
                for b in [0x00, 0x1f, 0x20, b'"', b'\\', 0x7f, 0x80, 0xff] {
                    let mut buf = vec![filler; 80];
                    buf[at] = b;
                    for from in [0, 1, 7, 8, 15] {
                        let want = (from..buf.len())
                            .find(|&i| special(buf[i]))
                            .unwrap_or(buf.len());
                        assert_eq!(
                            plain_run_end(&buf, from),
                            want,
                            "{b:#04x} at {at} from {from}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn plain_runs_end_where_the_byte_test_says_on_random_bytes() {
        // Random buffers, sparse in special bytes so that runs are long,
        // from every start offset: the steps of 32, 16 and 1 bytes meet in
        // every order and alignment.
        let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        let mut next = crate::testutil::xorshift(0x9e37_79b9_7f4a_7c15_u64);
        for round in 0..300 {
            let len = (next() % 150) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| match next() % 64 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (next() % 0x20) as u8,
                    _ => 0x20 + (next() % 0xe0) as u8,
                })
                .collect();
            for from in 0..=len {
                let want = (from..len).find(|&i| special(buf[i])).unwrap_or(len);
                assert_eq!(plain_run_end(&buf, from), want, "round {round} from {from}");
            }
        }
    }

    #[test]
    fn brackets_nest_past_one_word() {
        for depth in [1, 63, 64, 65, 128, 129, 300] {
            let open: String = (0..depth)
                .map(|i| if i % 3 == 0 { '[' } else { '{' })
                .collect();
            let inner: String = (0..depth)
                .rev()
                .map(|i| if i % 3 == 0 { "]" } else { "}" })
                .collect();
            // Objects need a key before their value: one `"k":` after each `{`.
            let mut body = String::from(r#"{"a":"#);
            for c in open.chars() {
                body.push(c);
                if c == '{' {
                    body.push_str(r#""k":"#);
                }
            }
            body.push('1');
            body.push_str(&inner);
            body.push_str(r#","model":"m"}"#);
            let got = top_level_fields(body.as_bytes(), ["model"]);
            assert_eq!(got, Ok([Some(&br#""m""#[..])]), "depth {depth}");
            // The innermost bracket closed by the wrong kind.
            let swapped = if inner.starts_with(']') { "}" } else { "]" };
            let bad = body.replacen(&inner[..1], swapped, 1);
            assert!(
                matches!(
                    top_level_fields(bad.as_bytes(), ["model"]),
                    Err(ScanError::Malformed { .. })
                ),
                "depth {depth}"
            );
        }
    }

    #[test]
    fn counts_objects_arrays_and_strings() {
        let cases: [(&str, &str, usize, Result<usize, usize>); 8] = [
            ("empty", "", 10, Ok(0)),
            ("numbers only", "[1,2,3,4.5e6]", 10, Ok(1)),
            ("object", r#"{"a":"b","c":[1,{}]}"#, 10, Ok(6)),
            ("escaped quote", r#"["a\"b","c"]"#, 10, Ok(3)),
            ("escaped backslash", r#"["a\\","c"]"#, 10, Ok(3)),
            ("brackets in strings", r#"["{[{["]"#, 10, Ok(2)),
            (
                "sse frames",
                "data: {\"a\":1}\r\n\r\ndata: {\"a\":2}\r\n\r\n",
                10,
                Ok(4),
            ),
            ("over the limit", r#"["","","",""]"#, 3, Err(4)),
        ];
        for (name, body, limit, want) in cases {
            assert_eq!(count_values(body.as_bytes(), limit), want, "{name}");
        }
    }

    #[test]
    fn counting_agrees_with_a_byte_at_a_time_count() {
        fn naive(body: &[u8]) -> usize {
            let (mut count, mut in_string, mut escaped) = (0, false, false);
            for &b in body {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                } else if b == b'"' {
                    in_string = true;
                    count += 1;
                } else if b == b'{' || b == b'[' {
                    count += 1;
                }
            }
            count
        }
        let pieces: [&[u8]; 9] = [
            b"\"", b"\\", b"\\\"", b"{", b"[", b"AAAAAAA", b"x", b"\n", b"]}",
        ];
        let mut seed = 7u64;
        for _ in 0..500 {
            let mut body = Vec::new();
            for _ in 0..40 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                body.extend_from_slice(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            assert_eq!(
                count_values(&body, usize::MAX),
                Ok(naive(&body)),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn the_scan_counts_what_count_values_counts() {
        let bodies = [
            r#"{}"#,
            r#"{"model":"m"}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a \"b\" {[ \\"}]}],"n":1,"stream":true,"x":null,"y":[[],{}]}"#,
            r#" { "a" : [ 1 , "s" , { "k" : [ ] } ] } "#,
        ];
        for body in bodies {
            let scanned =
                top_level_fields_noting(body.as_bytes(), ["model"], Notes::default()).unwrap();
            assert_eq!(
                Ok(scanned.values),
                count_values(body.as_bytes(), usize::MAX),
                "{body}"
            );
        }
    }

    #[test]
    fn notes_a_nested_string_in_the_same_pass() {
        let tool_calls = Notes {
            string: "tool_calls",
            ..Notes::default()
        };
        let cases = [
            (
                r#"{"messages":[{"role":"assistant","tool_calls":[]}]}"#,
                true,
            ),
            (r#"{"a":{"b":["tool_calls"]}}"#, true),
            (r#"{"tool_calls":1}"#, false),
            (r#"{"messages":[{"content":"no tool_calls here"}]}"#, false),
            (r#"{"messages":[{"tool_callsX":1,"tool_call":2}]}"#, false),
            (r#"{"m":[]}"#, false),
        ];
        for (body, want) in cases {
            let got = top_level_fields_noting(body.as_bytes(), ["m"], tool_calls).map(|s| s.noted);
            assert_eq!(got, Ok(want), "{body}");
        }
        assert_eq!(
            top_level_fields_noting(b"{\"m\":[", ["m"], tool_calls).map(|s| s.noted),
            Err(ScanError::Malformed { at: 6 })
        );
    }

    #[test]
    fn notes_a_nested_string_that_starts_with_a_prefix() {
        let prefixes = Prefixes::new(vec!["### Task:".to_owned(), " Summarise ".to_owned()]);
        let notes = Notes {
            prefixes: &prefixes,
            ..Notes::default()
        };
        let cases = [
            (
                r####"{"messages":[{"content":"### Task: title"}]}"####,
                true,
            ),
            (
                r####"{"messages":[{"content":"\n\t \u00a0### Task: title"}]}"####,
                true,
            ),
            (
                "{\"messages\":[{\"content\":\"\u{2003}\u{a0} ### Task:\"}]}",
                true,
            ),
            (
                r####"{"m":[{"type":"text","text":"Summarise this"}]}"####,
                true,
            ),
            (
                r####"{"messages":[{"content":"a ### Task: title"}]}"####,
                false,
            ),
            (
                r####"{"messages":[{"content":"\u0041### Task:"}]}"####,
                false,
            ),
            // A prefix written with escapes is not recognised (documented).
            (
                r####"{"messages":[{"content":"\u0023## Task:"}]}"####,
                false,
            ),
            (r####"{"messages":[{"content":"\"### Task:"}]}"####, false),
            (r####"{"messages":[{"content":"\u12"}]}"####, false),
            // Top-level strings are not messages.
            (r####"{"prompt":"### Task:"}"####, false),
        ];
        for (body, want) in cases {
            let got = top_level_fields_noting(body.as_bytes(), ["m"], notes).map(|s| s.prefixed);
            assert_eq!(got, Ok(want), "{body}");
            // Exactly what trimming the decoded strings finds.
            // (The scan checks the outline only: `\u12` is for Google to refuse.)
            let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
                continue;
            };
            let mut strings = Vec::new();
            fn walk(v: &serde_json::Value, top: bool, out: &mut Vec<String>) {
                match v {
                    serde_json::Value::String(s) if !top => out.push(s.clone()),
                    serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, false, out)),
                    serde_json::Value::Object(o) => {
                        o.values().for_each(|v| walk(v, false, out));
                        if !top {
                            out.extend(o.keys().cloned());
                        }
                    }
                    _ => {}
                }
            }
            if let serde_json::Value::Object(o) = &value {
                o.values().for_each(|v| walk(v, true, &mut strings));
            }
            let decoded = strings.iter().any(|s| {
                prefixes
                    .as_slice()
                    .iter()
                    .any(|p| s.trim_start().starts_with(p.trim()))
            });
            let escaped_prefix = body.contains(r"\u0023");
            assert_eq!(decoded, want || escaped_prefix, "decoded {body}");
        }
    }

    #[test]
    fn a_blank_prefix_starts_every_body_and_none_starts_none() {
        let body = br#"{"m":[{"content":"hello"}]}"#;
        let cases = [
            ("blank", vec![" \t".to_owned()], true),
            ("none", Vec::new(), false),
            ("another beginning", vec!["Task:".to_owned()], false),
        ];
        for (name, list, want) in cases {
            let prefixes = Prefixes::new(list);
            let notes = Notes {
                prefixes: &prefixes,
                ..Notes::default()
            };
            let scanned = top_level_fields_noting(body, ["m"], notes).unwrap();
            assert_eq!(scanned.prefixed, want, "{name}");
        }
    }

    #[test]
    fn records_long_strings_without_escapes() {
        let long = "A".repeat(LONG_STRING);
        let short = "B".repeat(LONG_STRING - 1);
        let body =
            format!(r#"{{"a":"{long}","m":[{{"k":"{short}"}},"{long}","x\"{long}"],"{long}":1}}"#);
        let notes = Notes {
            long_strings: true,
            ..Notes::default()
        };
        let scanned = top_level_fields_noting(body.as_bytes(), ["m"], notes).unwrap();
        let texts: Vec<&str> = scanned
            .long_strings
            .iter()
            .map(|r| &body[r.clone()])
            .collect();
        // The value, the nested string and the key; not the short one nor
        // the one with an escape.
        assert_eq!(texts, [long.as_str(); 3]);
        assert!(scanned
            .long_strings
            .windows(2)
            .all(|w| w[0].end < w[1].start));
        let unasked = top_level_fields_noting(body.as_bytes(), ["m"], Notes::default()).unwrap();
        assert!(unasked.long_strings.is_empty());
    }

    #[test]
    fn sorts_stably_short_and_long_lists() {
        let mut items = vec![(3, 'a'), (1, 'b'), (3, 'c'), (0, 'd'), (1, 'e')];
        sort_small(&mut items, |(k, _)| *k);
        assert_eq!(items, [(0, 'd'), (1, 'b'), (1, 'e'), (3, 'a'), (3, 'c')]);
        let mut empty: Vec<u8> = Vec::new();
        sort_small(&mut empty, |k| u64::from(*k));
        // Long and reversed (a hostile answer): the same order as a stable sort.
        let mut long: Vec<(u64, usize)> = (0..10_000u64)
            .map(|i| ((10_000 - i) / 3, i as usize))
            .collect();
        let mut want = long.clone();
        want.sort_by_key(|(k, _)| *k);
        sort_small(&mut long, |(k, _)| *k);
        assert_eq!(long, want);
    }

    #[test]
    fn splits_array_elements() {
        let cases: [(&str, Result<Vec<&str>, ()>); 7] = [
            ("[]", Ok(vec![])),
            (" [ ] ", Ok(vec![])),
            ("[1]", Ok(vec!["1"])),
            (
                r#"[{"a":[1,"]"]}, "x" ,null,[[]]]"#,
                Ok(vec![r#"{"a":[1,"]"]}"#, r#""x""#, "null", "[[]]"]),
            ),
            ("[1,]", Err(())),
            ("{}", Err(())),
            ("[1] x", Err(())),
        ];
        for (raw, want) in cases {
            let got = array_elements(raw.as_bytes());
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let got: Vec<&[u8]> = got.clone();
                    let want: Vec<&[u8]> = want.iter().map(|w| w.as_bytes()).collect();
                    assert_eq!(got, want, "{raw}");
                    for element in got {
                        let at = offset(raw.as_bytes(), element).unwrap_or(usize::MAX);
                        assert_eq!(&raw.as_bytes()[at..at + element.len()], element, "{raw}");
                    }
                }
                (Err(_), Err(())) => {}
                (got, want) => panic!("{raw}: got {got:?}, want {want:?}"),
            }
        }
        let bytes = b"abc";
        assert_eq!(offset(&bytes[..1], &bytes[1..]), None);
    }

    #[test]
    fn contains_finds_needles_anywhere() {
        let long = [b"A".repeat(1000), b"### Task:".to_vec(), b"B".repeat(9)].concat();
        let cases: [(&[u8], &[u8], bool); 8] = [
            (b"", b"", true),
            (b"abc", b"", true),
            (b"", b"a", false),
            (b"### Task: x", b"### Task:", true),
            (b"## Task: ###Task", b"### Task:", false),
            (&long, b"### Task:", true),
            (&long[..1005], b"### Task:", false),
            (b"xx#", b"#", true),
        ];
        for (haystack, needle, want) in cases {
            assert_eq!(
                contains(haystack, needle),
                want,
                "{:?} in {} bytes",
                String::from_utf8_lossy(needle),
                haystack.len()
            );
        }
    }
}
