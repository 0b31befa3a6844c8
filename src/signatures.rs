//! Thought signatures kept for OpenAI clients that drop them.
//!
//! Gemini 3 answers a tool call on the compatibility layer with an opaque
//! `extra_content.google.thought_signature` on the first call of each step,
//! and refuses a later request whose tool-call history lacks it (400
//! INVALID_ARGUMENT). Most agent frameworks rebuild the assistant message
//! from `id`, `type` and `function` and drop it. The filter remembers each
//! signature by tool-call id from the answers ([`in_answer`], and the
//! stream repair in [`crate::tool_stream`]) and puts it back into requests
//! whose tool calls lack it ([`restore`]); where none is remembered, the
//! value Google documents for histories it did not produce ([`BYPASS`]) is
//! used, per [`Restore`].
//!
//! Memory ([`Memory`]) is a fixed number of slots in a [`Store`] (Envoy's
//! shared data, shared by the VM's workers): a slot is chosen by a hash of
//! the request's credential and the tool-call id, so one tenant's ids never
//! find another's signatures, and a new signature evicts whatever held its
//! slot. A slot holds at most `max_signature_bytes` of signature plus the
//! model id and a 16-byte tag. Signatures are never logged.

use crate::reader::string_of;
use crate::scan::{self, top_level_fields};
use std::hash::{Hash, Hasher};
use std::ops::Range;

/// The value Google documents for a tool call whose signature is not known
/// (a history it did not produce): the model skips the check.
pub const BYPASS: &str = "skip_thought_signature_validator";

/// The prefix of the shared-data keys the slots live under.
pub const SLOT_PREFIX: &str = "gemini_router.thought_signature.";

/// What a request whose tool calls lack their signature gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restore {
    /// Nothing: signatures are neither remembered nor put back.
    Off,
    /// The remembered signature; a call without one is sent as it came.
    Remembered,
    /// The remembered signature, or [`BYPASS`] on the first call of a step
    /// of a model that requires signatures.
    #[default]
    RememberedThenBypass,
}

impl Restore {
    /// Every policy, in declaration order.
    pub const ALL: [Restore; 3] = [
        Restore::Off,
        Restore::Remembered,
        Restore::RememberedThenBypass,
    ];
    /// Their names in configuration, in the same order.
    pub const NAMES: [&'static str; 3] = ["off", "remembered", "remembered_then_bypass"];
}

impl Restore {
    /// A policy's name in configuration.
    pub(crate) fn read(
        r: &mut crate::reader::Reader<'_, '_>,
    ) -> Result<Restore, crate::config::FieldError> {
        crate::config::read_unit_enum(r, &Restore::NAMES).map(|i| Restore::ALL[i])
    }
}

/// The signature memory's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// What requests get.
    pub restore: Restore,
    /// Number of slots.
    pub entries: u32,
    /// Largest signature remembered, in bytes.
    pub max_bytes: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            restore: Restore::default(),
            entries: 1024,
            max_bytes: 16 * 1024,
        }
    }
}

impl Settings {
    /// The most memory the slots can take, in bytes.
    pub fn bound(&self) -> usize {
        self.entries as usize * (self.max_bytes + SLOT_OVERHEAD)
    }
}

/// A slot's bytes besides the signature: the tag, and a model id of at most
/// the longest model name accepted.
pub const SLOT_OVERHEAD: usize = 17 + 1 + crate::config::MAX_MAX_MODEL_LENGTH;

/// Whether `model` refuses a tool-call history without signatures: the
/// Gemini models of generation 3 and later.
pub fn required_by(model: &str) -> bool {
    let Some(rest) = model.strip_prefix("gemini-") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest.get(..digits)
        .and_then(|d| d.parse::<u32>().ok())
        .is_some_and(|major| major >= 3)
}

/// Key-value memory shared by the VM's workers.
pub trait Store {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Sets the value under `key`; `false` if the host refused.
    fn set(&self, key: &str, value: &[u8]) -> bool;
}

/// A [`Store`] handed to the request decisions ([`crate::flow::Head`]).
#[derive(Clone, Copy)]
pub struct Shared<'a>(pub &'a dyn Store);

impl std::fmt::Debug for Shared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

/// What [`Memory::remember`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// Stored (evicting what held the slot).
    Stored,
    /// Larger than `max_signature_bytes`: not stored.
    TooLarge,
    /// Empty, the bypass value, or the host refused: not stored.
    Skipped,
}

/// The signatures of one credential (the request's key or token, hashed).
pub struct Memory<'a> {
    store: &'a dyn Store,
    scope: u64,
    settings: Settings,
}

impl<'a> Memory<'a> {
    /// The memory of the credential `scope` (any stable text naming the
    /// caller; empty when the request has none).
    pub fn new(store: &'a dyn Store, scope: &str, settings: Settings) -> Memory<'a> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hash_str(&mut hasher, "gemini-router thought signatures");
        Memory {
            store,
            scope: finish(hasher, scope),
            settings,
        }
    }

    /// The tag of a tool-call id in this scope, and the key of its slot.
    fn slot(&self, id: &str) -> (u64, String) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.scope.hash(&mut hasher);
        let tag = finish(hasher, id);
        let entries = u64::from(self.settings.entries.max(1));
        (tag, format!("{SLOT_PREFIX}{}", tag % entries))
    }

    /// Remembers the signature `model` gave the tool call `id`.
    pub fn remember(&self, model: &str, id: &str, signature: &str) -> Remembered {
        if signature.is_empty() || signature == BYPASS || model.contains('\n') {
            return Remembered::Skipped;
        }
        if signature.len() > self.settings.max_bytes {
            return Remembered::TooLarge;
        }
        let (tag, key) = self.slot(id);
        let mut value = format!("{tag:016x} {model}\n").into_bytes();
        value.extend_from_slice(signature.as_bytes());
        if self.store.set(&key, &value) {
            Remembered::Stored
        } else {
            Remembered::Skipped
        }
    }

    /// The signature remembered for the tool call `id` answered by `model`.
    pub fn recall(&self, model: &str, id: &str) -> Option<String> {
        let (tag, key) = self.slot(id);
        let value = self.store.get(&key)?;
        let text = std::str::from_utf8(&value).ok()?;
        let (head, signature) = text.split_once('\n')?;
        let (stored_tag, stored_model) = head.split_once(' ')?;
        let fits = u64::from_str_radix(stored_tag, 16).ok() == Some(tag)
            && stored_model == model
            && !signature.is_empty();
        fits.then(|| signature.to_owned())
    }
}

/// Hashes `text` as `str` hashes itself. (Not inlined: one copy of the
/// hashing rounds for the two hashes.)
#[inline(never)]
fn hash_str(hasher: &mut std::collections::hash_map::DefaultHasher, text: &str) {
    text.hash(hasher);
}

/// The hash of what `hasher` has seen followed by `last`.
#[inline(never)]
fn finish(mut hasher: std::collections::hash_map::DefaultHasher, last: &str) -> u64 {
    hash_str(&mut hasher, last);
    hasher.finish()
}

/// A request body with signatures put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The new body.
    pub body: Vec<u8>,
    /// Tool calls given their remembered signature.
    pub restored: usize,
    /// Steps given [`BYPASS`].
    pub bypassed: usize,
}

/// Puts signatures back into the assistant tool calls of an OpenAI chat
/// request for `model` that lack one. Only the tool calls are edited (a
/// field inserted, or their `extra_content` rewritten); the rest of the
/// body is copied as it is. `None` when nothing changes, and for a body
/// that is not a chat request this can read (it goes on as it came). The
/// caller reads it only for a body whose scan saw `tool_calls`
/// ([`crate::scan::top_level_fields_noting`]).
pub fn restore(
    body: &[u8],
    model: &str,
    restore: Restore,
    memory: &Memory<'_>,
) -> Option<Restored> {
    if restore == Restore::Off {
        return None;
    }
    let [messages] = top_level_fields(body, ["messages"]).ok()?;
    let bypass = restore == Restore::RememberedThenBypass && required_by(model);
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    let (mut restored, mut bypassed) = (0, 0);
    for message in scan::array_elements(messages?).ok()? {
        if !scan::contains(message, b"\"tool_calls\"") {
            continue;
        }
        let Ok([role, calls]) = top_level_fields(message, ["role", "tool_calls"]) else {
            continue;
        };
        if role != Some(&b"\"assistant\""[..]) {
            continue;
        }
        let Some(Ok(calls)) = calls.map(scan::array_elements) else {
            continue;
        };
        for (position, call) in calls.into_iter().enumerate() {
            let Ok([id, extra]) = top_level_fields(call, ["id", "extra_content"]) else {
                continue;
            };
            if extra.is_some_and(has_signature) {
                continue;
            }
            let id = id.and_then(string_of);
            let (signature, restoring) = match id.and_then(|id| memory.recall(model, &id)) {
                Some(signature) => (signature, true),
                None if bypass && position == 0 => (BYPASS.to_owned(), false),
                None => continue,
            };
            let Some(edit) = with_signature(body, call, extra, &signature) else {
                continue;
            };
            edits.push(edit);
            if restoring {
                restored += 1;
            } else {
                bypassed += 1;
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    Some(Restored {
        body: scan::splice(body, &mut edits),
        restored,
        bypassed,
    })
}

/// The field `name` of the JSON object `raw`, if it is an object that has it.
/// (Not inlined: one copy for the many reads.)
#[inline(never)]
fn field<'a>(raw: &'a [u8], name: &'static str) -> Option<&'a [u8]> {
    let [value] = top_level_fields(raw, [name]).ok()?;
    value
}

/// The signature in a raw `extra_content` value, if it has one.
pub(crate) fn signature_of(extra: &[u8]) -> Option<String> {
    field(field(extra, "google")?, "thought_signature")
        .and_then(string_of)
        .filter(|s| !s.is_empty())
}

fn has_signature(extra: &[u8]) -> bool {
    signature_of(extra).is_some()
}

/// The edit that inserts `field` (`"name":value`) first in the object
/// `object` (a slice of `body`).
fn insert_first(body: &[u8], object: &[u8], field: String) -> Option<(Range<usize>, Vec<u8>)> {
    if object.first() != Some(&b'{') {
        return None;
    }
    let open = scan::offset(body, object)?;
    let empty = object[1..]
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .count()
        <= 1;
    let mut bytes = field.into_bytes();
    if !empty {
        bytes.push(b',');
    }
    Some((open + 1..open + 1, bytes))
}

/// The edit of `body` that gives the tool call `call` (a slice of `body`)
/// the signature, wherever it lacks it: a new `extra_content`, a new
/// `google` in it, or a new (or empty) `thought_signature` in that.
fn with_signature(
    body: &[u8],
    call: &[u8],
    extra: Option<&[u8]>,
    signature: &str,
) -> Option<(Range<usize>, Vec<u8>)> {
    let quoted = String::from_utf8(crate::json::quoted(signature)).ok()?;
    let Some(extra) = extra else {
        let field = format!("\"extra_content\":{{\"google\":{{\"thought_signature\":{quoted}}}}}");
        return insert_first(body, call, field);
    };
    let [google] = top_level_fields(extra, ["google"]).ok()?;
    let Some(google) = google else {
        let field = format!("\"google\":{{\"thought_signature\":{quoted}}}");
        return insert_first(body, extra, field);
    };
    let [present] = top_level_fields(google, ["thought_signature"]).ok()?;
    match present {
        // `null` or `""`: replaced.
        Some(value) => {
            let at = scan::offset(body, value)?;
            Some((at..at + value.len(), quoted.into_bytes()))
        }
        None => insert_first(body, google, format!("\"thought_signature\":{quoted}")),
    }
}

/// The tool calls of a `chat.completion` answer that carry a signature:
/// `(id, signature)` pairs, in order.
pub fn in_answer(body: &[u8]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if !scan::contains(body, b"thought_signature") {
        return found;
    }
    let choices = field(body, "choices").and_then(|c| scan::array_elements(c).ok());
    for choice in choices.unwrap_or_default() {
        let calls = field(choice, "message")
            .and_then(|m| field(m, "tool_calls"))
            .and_then(|c| scan::array_elements(c).ok());
        for call in calls.unwrap_or_default() {
            let Ok([Some(id), Some(extra)]) = top_level_fields(call, ["id", "extra_content"])
            else {
                continue;
            };
            if let (Some(id), Some(signature)) = (string_of(id), signature_of(extra)) {
                if !id.is_empty() {
                    found.push((id, signature));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MapStore(RefCell<HashMap<String, Vec<u8>>>);

    impl Store for MapStore {
        fn get(&self, key: &str) -> Option<Vec<u8>> {
            self.0.borrow().get(key).cloned()
        }
        fn set(&self, key: &str, value: &[u8]) -> bool {
            self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
            true
        }
    }

    const MODEL: &str = "gemini-3.5-flash";

    fn settings(restore: Restore) -> Settings {
        Settings {
            restore,
            ..Settings::default()
        }
    }

    #[test]
    fn models_that_require_signatures() {
        for (model, want) in [
            ("gemini-3.5-flash", true),
            ("gemini-3-pro-preview", true),
            ("gemini-10.0-ultra", true),
            ("gemini-2.5-pro", false),
            ("gemini-exp-1206", false),
            ("gemma-3-27b-it", false),
            ("gemini-", false),
        ] {
            assert_eq!(required_by(model), want, "{model}");
        }
    }

    #[test]
    fn memory_is_scoped_by_credential_model_and_bounded() {
        let store = MapStore::default();
        let small = Settings {
            max_bytes: 8,
            ..settings(Restore::Remembered)
        };
        let alice = Memory::new(&store, "key-alice", small);
        let bob = Memory::new(&store, "key-bob", small);
        assert_eq!(
            alice.remember(MODEL, "call-1", "c2lnMQ=="),
            Remembered::Stored
        );
        assert_eq!(alice.recall(MODEL, "call-1").as_deref(), Some("c2lnMQ=="));
        assert_eq!(bob.recall(MODEL, "call-1"), None, "another credential");
        assert_eq!(
            alice.recall("gemini-3.1-pro-preview", "call-1"),
            None,
            "another model"
        );
        assert_eq!(alice.recall(MODEL, "call-2"), None);
        assert_eq!(
            alice.remember(MODEL, "call-3", "123456789"),
            Remembered::TooLarge
        );
        assert_eq!(alice.remember(MODEL, "call-3", BYPASS), Remembered::Skipped);
        assert_eq!(alice.remember(MODEL, "call-3", ""), Remembered::Skipped);
        // One slot: the newest signature evicts the older one.
        let one = Memory::new(
            &store,
            "key-carol",
            Settings {
                entries: 1,
                ..small
            },
        );
        one.remember(MODEL, "a", "AAAA");
        one.remember(MODEL, "b", "BBBB");
        assert_eq!(one.recall(MODEL, "a"), None);
        assert_eq!(one.recall(MODEL, "b").as_deref(), Some("BBBB"));
        // Nothing in the store names the credential or the id.
        for (key, value) in store.0.borrow().iter() {
            let text = format!("{key} {}", String::from_utf8_lossy(value));
            for secret in ["key-alice", "key-bob", "call-1"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
        assert_eq!(
            Settings::default().bound(),
            1024 * (16 * 1024 + SLOT_OVERHEAD)
        );
    }

    fn history(first_call: Value) -> Value {
        json!({"model": MODEL, "tools": [{"type": "function", "function": {"name": "get_weather"}}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [first_call,
                    {"id": "call-2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call-1", "content": "sunny"}]})
    }

    fn call(extra: Option<Value>) -> Value {
        let mut call = json!({"id": "call-1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
        if let Some(extra) = extra {
            call["extra_content"] = extra;
        }
        call
    }

    fn signatures(body: &[u8]) -> Vec<Option<String>> {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        value["messages"][1]["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        c["extra_content"]["google"]["thought_signature"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn restores_remembered_signatures_or_bypasses() {
        struct Case {
            name: &'static str,
            body: Value,
            remembered: bool,
            restore: Restore,
            model: &'static str,
            want: Option<(Vec<Option<&'static str>>, usize, usize)>,
        }
        let sig = Some("U0lH");
        let cases = [
            Case {
                name: "dropped, remembered",
                body: history(call(None)),
                remembered: true,
                restore: Restore::RememberedThenBypass,
                model: MODEL,
                want: Some((vec![sig, None], 1, 0)),
            },
            Case {
                name: "dropped, not remembered: bypass on the first call",
                body: history(call(None)),
                remembered: false,
                restore: Restore::RememberedThenBypass,
                model: MODEL,
                want: Some((vec![Some(BYPASS), None], 0, 1)),
            },
            Case {
                name: "dropped, not remembered, remembered only",
                body: history(call(None)),
                remembered: false,
                restore: Restore::Remembered,
                model: MODEL,
                want: None,
            },
            Case {
                name: "model without the requirement: no bypass",
                body: history(call(None)),
                remembered: false,
                restore: Restore::RememberedThenBypass,
                model: "gemini-2.5-flash",
                want: None,
            },
            Case {
                name: "kept by the client: untouched",
                body: history(call(Some(json!({"google": {"thought_signature": "T1dO"}})))),
                remembered: true,
                restore: Restore::RememberedThenBypass,
                model: MODEL,
                want: None,
            },
            Case {
                name: "extra_content without the signature keeps its other fields",
                body: history(call(Some(json!({"google": {"other": 1}, "x": true})))),
                remembered: true,
                restore: Restore::RememberedThenBypass,
                model: MODEL,
                want: Some((vec![sig, None], 1, 0)),
            },
            Case {
                name: "an empty signature is replaced",
                body: history(call(Some(json!({"google": {"thought_signature": ""}})))),
                remembered: true,
                restore: Restore::RememberedThenBypass,
                model: MODEL,
                want: Some((vec![sig, None], 1, 0)),
            },
            Case {
                name: "empty extra_content",
                body: history(call(Some(json!({})))),
                remembered: false,
                restore: Restore::RememberedThenBypass,
                model: MODEL,
                want: Some((vec![Some(BYPASS), None], 0, 1)),
            },
            Case {
                name: "off",
                body: history(call(None)),
                remembered: true,
                restore: Restore::Off,
                model: MODEL,
                want: None,
            },
            Case {
                name: "no tool calls",
                body: json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
                remembered: true,
                restore: Restore::RememberedThenBypass,
                model: MODEL,
                want: None,
            },
        ];
        for case in cases {
            let store = MapStore::default();
            let memory = Memory::new(&store, "key", settings(case.restore));
            if case.remembered {
                memory.remember(case.model, "call-1", "U0lH");
            }
            let body = serde_json::to_vec(&case.body).unwrap_or_default();
            let got = restore(&body, case.model, case.restore, &memory);
            match (&got, &case.want) {
                (None, None) => {}
                (Some(got), Some((sigs, restored, bypassed))) => {
                    let want: Vec<Option<String>> =
                        sigs.iter().map(|s| s.map(str::to_owned)).collect();
                    assert_eq!(signatures(&got.body), want, "{}", case.name);
                    assert_eq!(
                        (got.restored, got.bypassed),
                        (*restored, *bypassed),
                        "{}",
                        case.name
                    );
                    // Everything but the tool call is as it was.
                    let mut before: Value = case.body.clone();
                    let mut after: Value = serde_json::from_slice(&got.body).unwrap_or_default();
                    for v in [&mut before, &mut after] {
                        if let Some(extra) = v["messages"][1]["tool_calls"][0].as_object_mut() {
                            extra.remove("extra_content");
                        }
                    }
                    assert_eq!(before, after, "{}", case.name);
                }
                _ => panic!("{}: got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn copies_the_rest_of_the_body_byte_for_byte() {
        let store = MapStore::default();
        let memory = Memory::new(&store, "", settings(Restore::RememberedThenBypass));
        memory.remember(MODEL, "c1", "QUJD");
        let body = br#"{ "model" : "gemini-3.5-flash", "messages": [ {"role":"user","content":"\u00e9  x"},
            {"role":"assistant","tool_calls":[ { "id":"c1","function":{"name":"f","arguments":"{}"}}, {} ]} ],"n":1 }"#;
        let got = restore(body, MODEL, Restore::RememberedThenBypass, &memory);
        let want = br#"{ "model" : "gemini-3.5-flash", "messages": [ {"role":"user","content":"\u00e9  x"},
            {"role":"assistant","tool_calls":[ {"extra_content":{"google":{"thought_signature":"QUJD"}}, "id":"c1","function":{"name":"f","arguments":"{}"}}, {} ]} ],"n":1 }"#;
        assert_eq!(
            got.map(|r| String::from_utf8_lossy(&r.body).into_owned()),
            Some(String::from_utf8_lossy(want).into_owned())
        );
    }

    #[test]
    fn leaves_bodies_it_cannot_read() {
        let store = MapStore::default();
        let memory = Memory::new(&store, "", settings(Restore::RememberedThenBypass));
        for body in [
            &br#"{"messages":"tool_calls"}"#[..],
            br#"{"messages":[{"role":"assistant","tool_calls":"x"}]}"#,
            br#"{"messages":[{"role":"assistant","tool_calls":[1,"a",null]}]}"#,
            br#"{"messages":[{"role":"assistant","tool_calls":[{"id":"a"}]"#,
            br#"[{"tool_calls":[]}]"#,
        ] {
            assert_eq!(
                restore(body, MODEL, Restore::RememberedThenBypass, &memory).map(|r| r.body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn finds_signatures_in_answers() {
        let answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"},
             "extra_content": {"google": {"thought_signature": "U0lHMQ=="}}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
            "finish_reason": "tool_calls"}]});
        let body = serde_json::to_vec(&answer).unwrap_or_default();
        assert_eq!(
            in_answer(&body),
            vec![("c1".to_owned(), "U0lHMQ==".to_owned())]
        );
        assert!(in_answer(b"{\"choices\":[]}").is_empty());
        assert!(in_answer(b"not json thought_signature").is_empty());
    }
}
