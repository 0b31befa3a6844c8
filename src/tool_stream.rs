//! Tool-call streams of the compatibility layer, repaired as they pass.
//!
//! Gemini's compatibility layer streams `chat.completion.chunk` events whose
//! `delta.tool_calls` entries have no `index`, and ends a stream that made
//! tool calls with `finish_reason: "stop"`. OpenAI clients accumulate tool
//! calls by `index` (the SDK's stream helper, LangChain) and run tools only
//! on `"tool_calls"`. [`ToolStream`] gives each entry the position of its
//! call in the answer and turns that `"stop"` into `"tool_calls"`, editing
//! only those bytes of each event, and collects the thought signatures the
//! calls carry (for [`crate::signatures`]).
//!
//! Events go out as soon as they are complete; only the incomplete end of
//! a chunk is held until the rest arrives. An event larger than
//! `max_frame` is not repaired: what is held goes out as it is, and so does
//! the rest of the stream, so memory stays bounded by `max_frame`.

use crate::reader::string_of;
use crate::scan::{self, top_level_fields};
use crate::signatures::signature_of;
use crate::sse::{events_end, Events};
use std::ops::Range;

/// The repair state of one streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolStream {
    /// The incomplete end of the bytes seen so far.
    tail: Vec<u8>,
    /// What each choice has called so far.
    choices: Vec<Calls>,
    max_frame: usize,
    /// An event outgrew `max_frame`: the rest passes as it is.
    given_up: bool,
}

/// The tool calls one choice made so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Calls {
    choice: u64,
    /// Ids seen, with their positions.
    ids: Vec<(String, u64)>,
    /// The position of the entry seen last (a continuation without id).
    last: Option<u64>,
    /// The next free position.
    next: u64,
}

/// What one chunk became.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fed {
    /// The bytes to send in place of the chunk (`None`: the chunk as it is).
    pub out: Option<Vec<u8>>,
    /// `(tool-call id, thought signature)` of the calls completed here.
    pub signatures: Vec<(String, String)>,
    /// Whether any event was edited.
    pub repaired: bool,
}

impl ToolStream {
    /// A stream whose events are repaired while at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> ToolStream {
        ToolStream {
            tail: Vec::new(),
            choices: Vec::new(),
            max_frame,
            given_up: false,
        }
    }

    /// Takes the next chunk of the stream; `end` on the last one.
    pub fn feed(&mut self, chunk: &[u8], end: bool) -> Fed {
        if self.given_up {
            return Fed::default();
        }
        let mut fed = Fed::default();
        if self.tail.is_empty() && !end && !chunk.is_empty() {
            // The usual case: the chunk holds whole events and nothing to
            // repair; it goes out as it is.
            let complete = events_end(chunk);
            if complete == chunk.len() && !needs_reading(chunk) {
                return fed;
            }
        }
        let mut data = std::mem::take(&mut self.tail);
        data.extend_from_slice(chunk);
        let complete = if end { data.len() } else { events_end(&data) };
        if data.len() - complete > self.max_frame {
            self.given_up = true;
            fed.out = Some(data);
            return fed;
        }
        let mut out = Vec::with_capacity(complete + 64);
        for event in Events(&data[..complete]) {
            match self.repair(event, &mut fed.signatures) {
                Some(repaired) => {
                    out.extend_from_slice(&repaired);
                    fed.repaired = true;
                }
                None => out.extend_from_slice(event),
            }
        }
        self.tail = data[complete..].to_vec();
        fed.out = Some(out);
        fed
    }

    /// The repaired event, if it needs repair; collects its signatures.
    fn repair(&mut self, event: &[u8], signatures: &mut Vec<(String, String)>) -> Option<Vec<u8>> {
        if !needs_reading(event) {
            return None;
        }
        let payload = single_data(event)?;
        let [choices] = top_level_fields(payload, ["choices"]).ok()?;
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        for choice in scan::array_elements(choices?).ok()? {
            let Ok([index, delta, finish]) =
                top_level_fields(choice, ["index", "delta", "finish_reason"])
            else {
                continue;
            };
            let number = index.and_then(number).unwrap_or(0);
            let calls = self.calls(number);
            if let Some(delta) = delta {
                calls.read_delta(event, delta, &mut edits, signatures);
            }
            if finish == Some(&b"\"stop\""[..]) && calls.next > 0 {
                let at = scan::offset(event, finish?)?;
                edits.push((at..at + 6, b"\"tool_calls\"".to_vec()));
            }
        }
        (!edits.is_empty()).then(|| scan::splice(event, &mut edits))
    }

    fn calls(&mut self, choice: u64) -> &mut Calls {
        let at = match self.choices.iter().position(|c| c.choice == choice) {
            Some(at) => at,
            None => {
                self.choices.push(Calls {
                    choice,
                    ..Calls::default()
                });
                self.choices.len() - 1
            }
        };
        &mut self.choices[at]
    }
}

impl Calls {
    /// Reads the `tool_calls` of a delta (a slice of `event`): the edits
    /// that give entries without `index` theirs, and the signatures.
    fn read_delta(
        &mut self,
        event: &[u8],
        delta: &[u8],
        edits: &mut Vec<(Range<usize>, Vec<u8>)>,
        signatures: &mut Vec<(String, String)>,
    ) {
        let Ok([Some(list)]) = top_level_fields(delta, ["tool_calls"]) else {
            return;
        };
        let Ok(entries) = scan::array_elements(list) else {
            return;
        };
        for entry in entries {
            let Ok([index, id, extra]) = top_level_fields(entry, ["index", "id", "extra_content"])
            else {
                continue;
            };
            let id = id.and_then(string_of);
            let given = index.and_then(number);
            let position = match (given, &id) {
                (Some(position), _) => position,
                (None, Some(id)) => match self.ids.iter().find(|(known, _)| known == id) {
                    Some((_, position)) => *position,
                    None => self.next,
                },
                (None, None) => self.last.unwrap_or(0),
            };
            if let Some(id) = &id {
                if !self.ids.iter().any(|(known, _)| known == id) {
                    self.ids.push((id.clone(), position));
                }
                if let Some(signature) = extra.and_then(signature_of) {
                    signatures.push((id.clone(), signature));
                }
            }
            self.last = Some(position);
            self.next = self.next.max(position + 1);
            if given.is_some() {
                continue;
            }
            let Some(at) = scan::offset(event, entry) else {
                continue;
            };
            match index {
                // `"index": null` (or another non-number): replaced.
                Some(raw) => {
                    if let Some(start) = scan::offset(event, raw) {
                        edits.push((start..start + raw.len(), position.to_string().into_bytes()));
                    }
                }
                None => {
                    let empty = entry[1..entry.len().saturating_sub(1)]
                        .iter()
                        .all(u8::is_ascii_whitespace);
                    let field = format!("\"index\":{position}{}", if empty { "" } else { "," });
                    edits.push((at + 1..at + 1, field.into_bytes()));
                }
            }
        }
    }
}

/// A JSON value's raw text read as a `u64`, if it is one.
fn number(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// Whether an event may need repair or carry a signature.
fn needs_reading(bytes: &[u8]) -> bool {
    scan::contains(bytes, b"\"tool_calls\"") || scan::contains(bytes, b"\"stop\"")
}

/// The payload of an event's only `data:` line (a slice of `event`), if it
/// has exactly one and it is a JSON object.
fn single_data(event: &[u8]) -> Option<&[u8]> {
    let mut found = None;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            if found.is_some() {
                return None;
            }
            found = Some(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
    found.filter(|v| v.first() == Some(&b'{'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event(payload: Value) -> String {
        format!("data: {payload}\n\n")
    }

    fn chunk(delta: Value, finish: Value) -> String {
        event(json!({"id": "x", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
    }

    /// Runs `stream` through a repairer in chunks of `size` bytes; returns
    /// the output and the signatures.
    fn run(stream: &str, size: usize) -> (String, Vec<(String, String)>, bool) {
        let mut repair = ToolStream::new(1 << 20);
        let bytes = stream.as_bytes();
        let mut out = Vec::new();
        let mut signatures = Vec::new();
        let mut repaired = false;
        let pieces: Vec<&[u8]> = bytes.chunks(size.max(1)).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let fed = repair.feed(piece, i + 1 == pieces.len());
            out.extend_from_slice(fed.out.as_deref().unwrap_or(piece));
            signatures.extend(fed.signatures);
            repaired |= fed.repaired;
        }
        if pieces.is_empty() {
            let fed = repair.feed(b"", true);
            out.extend_from_slice(fed.out.as_deref().unwrap_or_default());
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            signatures,
            repaired,
        )
    }

    fn payloads(stream: &str) -> Vec<Value> {
        stream
            .split("\n\n")
            .filter_map(|e| e.trim().strip_prefix("data: "))
            .filter(|p| *p != "[DONE]")
            .map(|p| serde_json::from_str(p).unwrap_or(Value::Null))
            .collect()
    }

    /// The `index` of every streamed tool-call entry, in order.
    fn indexes(events: &[Value]) -> Vec<Value> {
        events
            .iter()
            .flat_map(|e| {
                e["choices"][0]["delta"]["tool_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| c["index"].clone())
            .collect()
    }

    #[test]
    fn repairs_google_tool_call_streams_at_every_chunk_size() {
        let call = |id: &str, name: &str, sig: Option<&str>| {
            let mut c = json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": "{}"}});
            if let Some(sig) = sig {
                c["extra_content"] = json!({"google": {"thought_signature": sig}});
            }
            c
        };
        let stream = [
            chunk(
                json!({"role": "assistant", "tool_calls": [call("a", "f", Some("U0lH")), call("b", "g", None)]}),
                Value::Null,
            ),
            chunk(json!({"tool_calls": [call("c", "h", None)]}), Value::Null),
            chunk(json!({}), json!("stop")),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        for size in [1, 7, 64, stream.len()] {
            let (out, signatures, repaired) = run(&stream, size);
            let events = payloads(&out);
            let indexes = indexes(&events);
            assert_eq!(indexes, vec![json!(0), json!(1), json!(2)], "size {size}");
            assert_eq!(
                events[2]["choices"][0]["finish_reason"], "tool_calls",
                "size {size}"
            );
            assert_eq!(
                signatures,
                vec![("a".to_owned(), "U0lH".to_owned())],
                "size {size}"
            );
            assert!(repaired);
            assert!(out.ends_with("data: [DONE]\n\n"), "size {size}");
        }
    }

    #[test]
    fn leaves_what_needs_no_repair() {
        struct Case {
            name: &'static str,
            stream: String,
        }
        let cases = [
            Case {
                name: "text stream ending in stop",
                stream: [
                    chunk(json!({"role": "assistant", "content": "hi"}), Value::Null),
                    chunk(json!({}), json!("stop")),
                ]
                .concat(),
            },
            Case {
                name: "indexes present, finish tool_calls",
                stream: [
                    chunk(
                        json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]}),
                        Value::Null,
                    ),
                    chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}), Value::Null),
                    chunk(json!({}), json!("tool_calls")),
                ]
                .concat(),
            },
            Case {
                name: "comments, crlf and not JSON",
                stream: ": keep-alive\r\n\r\ndata: not json \"tool_calls\"\r\n\r\n".to_owned(),
            },
        ];
        for case in cases {
            for size in [3, 1000] {
                let (out, _, repaired) = run(&case.stream, size);
                assert_eq!(out, case.stream, "{} size {size}", case.name);
                assert!(!repaired, "{}", case.name);
            }
        }
    }

    #[test]
    fn continuations_keep_the_position_of_their_call() {
        let stream = [
            chunk(json!({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{\"x\":"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"function": {"arguments": "1}"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}, {}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": null, "id": "a"}]}), json!("stop")),
        ]
        .concat();
        let (out, _, _) = run(&stream, 5);
        let indexes = indexes(&payloads(&out));
        assert_eq!(
            indexes,
            vec![json!(0), json!(0), json!(1), json!(1), json!(0)]
        );
        assert_eq!(
            payloads(&out)[3]["choices"][0]["finish_reason"],
            "tool_calls"
        );
    }

    #[test]
    fn an_event_larger_than_the_bound_passes_as_it_is() {
        let big = chunk(
            json!({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "x".repeat(100)}}]}),
            Value::Null,
        );
        let mut repair = ToolStream::new(50);
        let half = big.len() / 2;
        let first = repair.feed(&big.as_bytes()[..half], false);
        assert_eq!(first.out.as_deref(), Some(&big.as_bytes()[..half]));
        let second = repair.feed(&big.as_bytes()[half..], true);
        assert_eq!(second.out, None);
        assert!(repair.tail.is_empty());
    }
}
