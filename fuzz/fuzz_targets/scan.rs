//! `scan::top_level_fields` on arbitrary bytes.
//!
//! - It never panics.
//! - Wherever serde_json reads the input as a JSON object, the scanner agrees:
//!   it reports a duplicate exactly when a wanted key occurs twice (after
//!   escapes are decoded), and otherwise returns, for each wanted key, raw
//!   JSON text that serde_json decodes to the same value as the key's value
//!   in the object (or nothing when the key is absent). Refusing such an
//!   input as malformed is a failure too.
//!
//! The scanner is allowed to be more lenient than serde_json (it checks only
//! the outline of nested values), so inputs serde_json refuses are checked
//! for panics only.
#![no_main]

use gemini_router::scan::{top_level_fields, ScanError};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;

const WANTED: [&str; 2] = ["model", "stream"];

/// A top-level JSON object as serde_json reads it: keys decoded, in order,
/// duplicates kept.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

fuzz_target!(|data: &[u8]| {
    let scanned = top_level_fields(data, WANTED);
    let Ok(Entries(entries)) = serde_json::from_slice::<Entries>(data) else {
        return;
    };
    let occurrences = |key: &str| entries.iter().filter(|(k, _)| k == key).count();
    let duplicated: Vec<&str> = WANTED.into_iter().filter(|k| occurrences(k) > 1).collect();
    match scanned {
        Err(ScanError::Malformed { at }) => {
            panic!("the scanner refused a JSON object serde_json reads (at byte {at})")
        }
        Err(ScanError::DuplicateKey(key)) => assert!(
            duplicated.contains(&key),
            "the scanner reported {key:?} twice; serde_json sees it {} time(s)",
            occurrences(key)
        ),
        Ok(fields) => {
            assert!(
                duplicated.is_empty(),
                "serde_json sees {duplicated:?} more than once; the scanner did not"
            );
            for (key, raw) in WANTED.into_iter().zip(fields) {
                let want = entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                let got = raw.map(|raw| {
                    serde_json::from_slice::<Value>(raw).unwrap_or_else(|e| {
                        panic!(
                            "the scanner's raw {key:?} is not JSON ({e}): {:?}",
                            String::from_utf8_lossy(raw)
                        )
                    })
                });
                assert_eq!(got.as_ref(), want, "value of {key:?}");
            }
        }
    }
});
