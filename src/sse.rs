//! Server-sent events: reading the `data` of each event from an upstream
//! stream, and the framing constants for writing one.

use std::borrow::Cow;

/// The line that ends an OpenAI stream.
pub(crate) const DONE: &str = "data: [DONE]\n\n";

/// The `data` payload of each event in `body`, in order. Lines may end in
/// `\n` or `\r\n`; an event with one `data:` line borrows it from `body`,
/// several `data:` lines are joined with `\n` as the SSE spec says. Comments
/// and other fields are skipped.
pub(crate) fn data_frames(body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut frames = Vec::new();
    let mut current: Option<Cow<'_, [u8]>> = None;
    for line in Lines(body) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if let Some(frame) = current.take() {
                frames.push(frame);
            }
            continue;
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            continue;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        current = Some(match current.take() {
            None => Cow::Borrowed(value),
            Some(previous) => {
                let mut joined = previous.into_owned();
                joined.push(b'\n');
                joined.extend_from_slice(value);
                Cow::Owned(joined)
            }
        });
    }
    if let Some(frame) = current {
        frames.push(frame);
    }
    frames
}

/// The end of the last complete event in `bytes` (after its blank line):
/// what a stream can pass on while the rest waits for more bytes.
pub(crate) fn events_end(bytes: &[u8]) -> usize {
    let mut end = 0;
    while let Some(len) = bytes.get(end..).and_then(first_event_len) {
        end += len;
    }
    end
}

/// The length of the first complete event in `bytes`, blank line included.
fn first_event_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    for line in Lines(bytes) {
        at += line.len() + 1;
        if (line.is_empty() || line == b"\r") && at <= bytes.len() {
            return Some(at);
        }
    }
    None
}

/// The events of `bytes` as they came, each with its blank line (the last
/// may lack one, at the end of a stream).
pub(crate) struct Events<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Events<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let (event, rest) = self
            .0
            .split_at(first_event_len(self.0).unwrap_or(self.0.len()));
        self.0 = rest;
        Some(event)
    }
}

/// Lines split on `\n` (a line of several MB is found eight bytes at a time).
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let (line, rest) = match find_newline(self.0) {
            Some(at) => (self.0.get(..at), self.0.get(at + 1..)),
            None => (Some(self.0), Some(&[][..])),
        };
        self.0 = rest.unwrap_or_default();
        line
    }
}

/// The index of the first `\n` in `bytes`.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = bytes
        .get(i..i + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        if x.wrapping_sub(ONES) & !x & HIGH != 0 {
            break;
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|at| i + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_newlines_at_every_offset() {
        for len in 0..20 {
            for at in 0..=len {
                let mut bytes = vec![b'a'; len];
                if at < len {
                    bytes[at] = b'\n';
                }
                let want = (at < len).then_some(at);
                assert_eq!(find_newline(&bytes), want, "len {len} at {at}");
            }
        }
    }

    #[test]
    fn finds_where_complete_events_end() {
        for (bytes, want) in [
            ("", 0),
            ("data: x", 0),
            ("data: x\n", 0),
            ("data: x\n\n", 9),
            ("data: x\r\n\r\ndata: y", 11),
            ("data: x\n\ndata: y\n\n\n", 19),
            ("\n", 1),
        ] {
            assert_eq!(events_end(bytes.as_bytes()), want, "{bytes:?}");
        }
    }

    #[test]
    fn splits_events() {
        struct Case {
            name: &'static str,
            body: &'static str,
            want: Vec<&'static str>,
        }
        let cases = [
            Case {
                name: "lf",
                body: "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n",
                want: vec!["{\"a\":1}", "{\"b\":2}"],
            },
            Case {
                name: "crlf",
                body: "data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n",
                want: vec!["{\"a\":1}", "{\"b\":2}"],
            },
            Case {
                name: "no trailing blank line",
                body: "data: x\n\ndata: y",
                want: vec!["x", "y"],
            },
            Case {
                name: "no space after colon",
                body: "data:x\n\n",
                want: vec!["x"],
            },
            Case {
                name: "multi-line data",
                body: "data: a\ndata: b\n\n",
                want: vec!["a\nb"],
            },
            Case {
                name: "comments and fields",
                body: ": ping\nevent: message\nid: 3\ndata: z\n\n",
                want: vec!["z"],
            },
            Case {
                name: "empty",
                body: "",
                want: vec![],
            },
        ];
        for case in cases {
            let got = data_frames(case.body.as_bytes());
            let got: Vec<&[u8]> = got.iter().map(|f| f.as_ref()).collect();
            let want: Vec<&[u8]> = case.want.iter().map(|w| w.as_bytes()).collect();
            assert_eq!(got, want, "{}", case.name);
        }
    }
}
