//! A JSON document read whole: the upstream's error bodies, which the
//! filter unwraps, reads facts from and writes back with a changed message.
//!
//! Numbers keep their text, so one passed through is written back as the
//! upstream wrote it (no float formatting in the module). An object keeps
//! its keys in the body's order; a repeated key keeps its first place and
//! its last value, as `serde_json::Map` keeps the last value.

use crate::json::Out;
use crate::reader::{f64_of, ReadError, Reader};

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number's text, checked against the JSON grammar and to be in
    /// `f64`'s range.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON object: its fields in order, each key once.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Object {
    fields: Vec<(String, Json)>,
}

impl Object {
    /// The value of `key`. (Not inlined: one copy for the many reads.)
    #[inline(never)]
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`: in place when the key is there, else last.
    pub(crate) fn insert(&mut self, key: &str, value: Json) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.fields.push((key.to_owned(), value)),
        }
    }

    /// Takes the value of `key` out of the object.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Json> {
        let at = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(at).1)
    }

    /// `{"error": self}` as compact JSON.
    pub(crate) fn error_body(self) -> Vec<u8> {
        let mut envelope = Object::default();
        envelope.insert("error", Json::Object(self));
        let mut out = Out::with_capacity(256);
        envelope.write(&mut out);
        out.into_bytes()
    }

    fn write(&self, out: &mut Out) {
        out.raw("{");
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.raw(",");
            }
            out.string(key).raw(":");
            value.write(out);
        }
        out.raw("}");
    }
}

impl Json {
    /// The value of `key` when this is an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(object) => object.get(key),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    fn write(&self, out: &mut Out) {
        match self {
            Json::Null => {
                out.raw("null");
            }
            Json::Bool(b) => {
                out.raw(if *b { "true" } else { "false" });
            }
            Json::Number(text) => {
                out.raw(text);
            }
            Json::String(s) => {
                out.string(s);
            }
            Json::Array(items) => {
                out.raw("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.raw(",");
                    }
                    item.write(out);
                }
                out.raw("]");
            }
            Json::Object(object) => object.write(out),
        }
    }

    /// The same value as `serde_json` reads it (tests compare with it).
    #[cfg(test)]
    pub(crate) fn to_value(&self) -> serde_json::Value {
        let mut out = Out::default();
        self.write(&mut out);
        serde_json::from_slice(&out.into_bytes()).unwrap()
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::String(s.to_owned())
    }
}

impl From<u16> for Json {
    fn from(n: u16) -> Json {
        Json::Number(n.to_string())
    }
}

/// The value at the reader, accepting what `serde_json::Value` accepts: a
/// number outside `f64`'s range is refused.
pub(crate) fn value(r: &mut Reader<'_, '_>) -> Result<Json, ReadError> {
    Ok(match r.peek() {
        Some(b'{') => {
            let mut object = Object::default();
            r.object(&mut |r, key| {
                let key = key.decode()?.0;
                let value = value(r)?;
                object.insert(&key, value);
                Ok(())
            })?;
            Json::Object(object)
        }
        Some(b'[') => Json::Array(r.list(value)?),
        Some(b'"') => Json::String(r.str()?.decode()?.0.into_owned()),
        Some(b't' | b'f') => Json::Bool(r.bool()?),
        Some(b'n') if r.null() => Json::Null,
        _ => {
            let at = r.offset();
            let text = r.number_text()?;
            // Every integer `u64` or `i64` holds is in `f64`'s range too.
            if f64_of(text).is_none() {
                return Err(ReadError {
                    what: "number out of range",
                    at,
                });
            }
            Json::Number(text.to_owned())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::document;

    fn read(body: &str) -> Result<Json, ReadError> {
        document(body.as_bytes(), value)
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let bodies = [
            r#"{"error":{"code":429,"message":"a \"b\" \u00e9","details":[{"@type":"t","quotaValue":"5"},{"n":[1,-2,0,-0,1.5,-1e-7,1e300,18446744073709551615,18446744073709551616,-9223372036854775808]}]}}"#,
            "[]",
            "[null,true,false,{}]",
            r#"{"a":1,"a":2}"#,
            r#"{"b":[{"c":"\n\u0001"}],"a":{"b":{}}}"#,
        ];
        for body in bodies {
            let want: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(read(body).unwrap().to_value(), want, "{body}");
        }
        for body in [
            "[1e400]",
            "[-1e309]",
            "{\"a\":}",
            "[01]",
            "[1.]",
            "{\"a\" 1}",
        ] {
            assert!(serde_json::from_str::<serde_json::Value>(body).is_err());
            assert!(read(body).is_err(), "{body}");
        }
    }

    #[test]
    fn writes_numbers_as_read_and_keys_in_order() {
        let cases = [
            (
                r#"{ "z": 1.50, "a": -0 }"#,
                r#"{"error":{"z":1.50,"a":-0}}"#,
            ),
            (
                r#"{"a":1,"b":2,"a":[3e2]}"#,
                r#"{"error":{"a":[3e2],"b":2}}"#,
            ),
            (r#"{"m":"\"q\"\t"}"#, r#"{"error":{"m":"\"q\"\t"}}"#),
        ];
        for (body, want) in cases {
            let Json::Object(object) = read(body).unwrap() else {
                panic!("{body}");
            };
            assert_eq!(String::from_utf8(object.error_body()).unwrap(), want);
        }
    }

    #[test]
    fn objects_set_take_and_find_keys() {
        let mut object = Object::default();
        object.insert("code", Json::from(404));
        object.insert("message", Json::from("gone"));
        object.insert("code", Json::from(400));
        assert_eq!(object.get("code"), Some(&Json::Number("400".into())));
        assert!(object.contains_key("message"));
        assert_eq!(object.remove("message"), Some(Json::from("gone")));
        assert!(!object.contains_key("message"));
        assert_eq!(object.error_body(), br#"{"error":{"code":400}}"#);
        assert_eq!(Json::from("x").get("a"), None);
        assert_eq!(Json::Null.as_array(), None);
    }
}
