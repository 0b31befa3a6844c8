//! The live model catalogue: after an upstream 404, which models the
//! caller's own credential can use (`GET /{version}/models`, read by the
//! glue through an HTTP callout to the same cluster), so the hint can say
//! whether the model exists for this key, which methods it supports, and
//! which live models nearest to its name serve the method the client needs.
//!
//! Everything here is pure: the page parser (bounded), the per-credential
//! cache (keyed by a hash of the credential, never the credential itself;
//! bounded in entries, with a TTL) and the sentence for the hint.

use crate::config::{parse_document, read_opt_string, read_seq_into, read_string};
use crate::config::{FieldError, Shape};
use crate::endpoint::Family;
use crate::reader::Reader;
use std::hash::{Hash, Hasher};

/// Most models kept from a catalogue (all pages together).
pub const MAX_MODELS: usize = 2_000;
/// Most pages read for one catalogue.
pub const MAX_PAGES: usize = 3;
/// Largest page body read.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Credentials whose catalogue is cached per VM.
pub const MAX_ENTRIES: usize = 64;
/// How long a catalogue is trusted, in seconds.
pub const TTL_SECONDS: u64 = 600;
/// Page size asked for.
pub const PAGE_SIZE: usize = 1_000;

/// One listed model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Bare id (`models/` dropped).
    pub id: String,
    /// `supportedGenerationMethods`.
    pub methods: Vec<String>,
}

/// The models a credential can use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// The listed models, in the order Google lists them.
    pub models: Vec<Listed>,
}

/// A ListModels page; other fields are skipped.
#[derive(Default)]
struct RawPage {
    models: Vec<RawModel>,
    next_page_token: Option<String>,
}

impl RawPage {
    const SHAPE: Shape = Shape {
        name: "RawPage",
        fields: &["models", "nextPageToken"],
        required: 0,
        defaulted: 0b11,
        deny_unknown: false,
    };

    fn read(r: &mut Reader<'_, '_>) -> Result<RawPage, FieldError> {
        let mut page = RawPage::default();
        RawPage::SHAPE.read(r, &mut |r, index| {
            match index {
                0 => read_seq_into(r, &mut page.models, RawModel::read)?,
                _ => read_opt_string(r, &mut page.next_page_token)?,
            }
            Ok(())
        })?;
        Ok(page)
    }
}

#[derive(Default)]
struct RawModel {
    name: String,
    methods: Vec<String>,
}

impl RawModel {
    const SHAPE: Shape = Shape {
        name: "RawModel",
        fields: &["name", "supportedGenerationMethods"],
        required: 1,
        defaulted: 0b10,
        deny_unknown: false,
    };

    fn read(r: &mut Reader<'_, '_>) -> Result<RawModel, FieldError> {
        let mut model = RawModel::default();
        RawModel::SHAPE.read(r, &mut |r, index| {
            match index {
                0 => model.name = read_string(r)?,
                _ => read_seq_into(r, &mut model.methods, read_string)?,
            }
            Ok(())
        })?;
        Ok(model)
    }
}

/// Why a page could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// Larger than [`MAX_PAGE_BYTES`].
    TooLarge(usize),
    /// Not a ListModels page.
    Malformed(String),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::TooLarge(n) => write!(f, "catalogue page of {n} bytes is too large"),
            PageError::Malformed(why) => write!(f, "catalogue page is not a model list: {why}"),
        }
    }
}

impl std::error::Error for PageError {}

impl Catalogue {
    /// Adds one ListModels page; returns the next page token, if any.
    pub fn add_page(&mut self, body: &[u8]) -> Result<Option<String>, PageError> {
        if body.len() > MAX_PAGE_BYTES {
            return Err(PageError::TooLarge(body.len()));
        }
        // The page is at most 1 MiB: its tree is bounded too.
        let page = parse_document(body, RawPage::read).map_err(PageError::Malformed)?;
        for model in page.models {
            if self.models.len() >= MAX_MODELS {
                break;
            }
            let id = model
                .name
                .strip_prefix("models/")
                .unwrap_or(&model.name)
                .to_owned();
            self.models.push(Listed {
                id,
                methods: model.methods,
            });
        }
        Ok(page.next_page_token.filter(|t| !t.is_empty()))
    }

    /// The family a listed model's `supportedGenerationMethods` imply, for
    /// a model no classification rule matches.
    pub fn family_of(&self, model: &str) -> Option<Family> {
        let listed = self.models.iter().find(|m| m.id == model)?;
        // The first method listed here that the model has decides.
        const BY_METHOD: [(&str, Family); 6] = [
            ("predict", Family::Imagen),
            ("predictLongRunning", Family::Veo),
            ("embedContent", Family::Embedding),
            ("batchEmbedContents", Family::Embedding),
            ("generateAnswer", Family::Aqa),
            ("generateContent", Family::Gemini),
        ];
        BY_METHOD
            .iter()
            .find(|(method, _)| listed.methods.iter().any(|m| m == method))
            .map(|(_, family)| *family)
    }

    /// What the catalogue says of `model` for `method` (a native method
    /// name such as `generateContent`).
    pub fn finding(&self, model: &str, method: &str) -> Finding {
        if let Some(listed) = self.models.iter().find(|m| m.id == model) {
            return Finding::Listed {
                serves: listed.methods.iter().any(|m| m == method),
                methods: listed.methods.clone(),
            };
        }
        let serving = self
            .models
            .iter()
            .filter(|m| m.methods.iter().any(|x| x == method))
            .map(|m| (distance(model, &m.id), m.id.as_str()));
        Finding::Missing {
            count: self.models.len(),
            nearest: smallest(serving, NEAREST)
                .into_iter()
                .map(|(_, id)| id.to_owned())
                .collect(),
        }
    }
}

/// What the catalogue says of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The key can use the model.
    Listed {
        /// Whether it serves the method that was called.
        serves: bool,
        /// Its methods.
        methods: Vec<String>,
    },
    /// The key cannot: not among its `count` models.
    Missing {
        /// How many models the key can use.
        count: usize,
        /// Up to three listed models nearest by name that serve the method.
        nearest: Vec<String>,
    },
}

impl Finding {
    /// The sentence the hint ends with.
    pub fn sentence(&self, model: &str, method: &str) -> String {
        match self {
            Finding::Listed { serves: true, .. } => format!(
                "The live catalogue (GET /v1beta/models with this key) lists {model} with :{method}, so the 404 is the upstream's own; retry, or check the request."
            ),
            Finding::Listed { methods, .. } => format!(
                "The live catalogue (GET /v1beta/models with this key) lists {model}, but only for {}.",
                if methods.is_empty() {
                    "no method".to_owned()
                } else {
                    methods.iter().map(|m| format!(":{m}")).collect::<Vec<_>>().join(", ")
                }
            ),
            Finding::Missing { count, nearest } if nearest.is_empty() => format!(
                "{model} is not among the {count} models this key can use (GET /v1beta/models), and none of them serves :{method}."
            ),
            Finding::Missing { count, nearest } => format!(
                "{model} is not among the {count} models this key can use (GET /v1beta/models); the nearest that serve :{method}: {}.",
                nearest.join(", ")
            ),
        }
    }
}

/// How many nearest models the hint names.
const NEAREST: usize = 3;

/// The `n` smallest items, in ascending order: what sorting all of them
/// and taking the first `n` gives, in one pass and without the standard
/// sort's kilobytes of code.
fn smallest<'a>(items: impl Iterator<Item = (usize, &'a str)>, n: usize) -> Vec<(usize, &'a str)> {
    let mut best: Vec<(usize, &str)> = Vec::with_capacity(n + 1);
    for item in items {
        let at = best.partition_point(|b| *b <= item);
        if at < n {
            best.insert(at, item);
            best.truncate(n);
        }
    }
    best
}

/// Levenshtein distance on bytes (model ids are ASCII), bounded in work by
/// the caller's id lengths (at most `max_model_length`).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // One row of the table, updated in place: `row[j]` is the distance
    // between the part of `a` read so far and `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        // The cell above-left, and the one to the left (the row's first).
        let (mut diagonal, mut left) = (i, i + 1);
        let mut cells = row.iter_mut();
        if let Some(first) = cells.next() {
            *first = left;
        }
        for (cell, cb) in cells.zip(b) {
            let up = *cell;
            left = (diagonal + usize::from(ca != cb)).min(up + 1).min(left + 1);
            *cell = left;
            diagonal = up;
        }
    }
    row.last().copied().unwrap_or(0)
}

/// The cache key of a credential: a hash, never the credential itself.
pub fn credential_key(credential: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    "gemini-router catalogue".hash(&mut hasher);
    credential.hash(&mut hasher);
    hasher.finish()
}

/// Catalogues by credential hash, at most [`MAX_ENTRIES`], each trusted for
/// [`TTL_SECONDS`]; the oldest goes first when full.
#[derive(Debug, Default)]
pub struct Cache {
    entries: Vec<(u64, u64, std::rc::Rc<Catalogue>)>,
}

impl Cache {
    /// The catalogue for `key` if fetched less than the TTL ago.
    pub fn get(&self, key: u64, now: u64) -> Option<std::rc::Rc<Catalogue>> {
        self.entries
            .iter()
            .find(|(k, at, _)| *k == key && now.saturating_sub(*at) < TTL_SECONDS)
            .map(|(_, _, c)| std::rc::Rc::clone(c))
    }

    /// Stores a catalogue for `key`.
    pub fn put(&mut self, key: u64, now: u64, catalogue: Catalogue) -> std::rc::Rc<Catalogue> {
        self.entries
            .retain(|(k, at, _)| *k != key && now.saturating_sub(*at) < TTL_SECONDS);
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.remove(0);
        }
        let catalogue = std::rc::Rc::new(catalogue);
        self.entries
            .push((key, now, std::rc::Rc::clone(&catalogue)));
        catalogue
    }

    /// Number of cached catalogues.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The path of a ListModels page request.
pub fn page_path(version: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => format!(
            "/{version}/models?pageSize={PAGE_SIZE}&pageToken={}",
            crate::route::percent_encode_query(t)
        ),
        None => format!("/{version}/models?pageSize={PAGE_SIZE}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{"models":[
        {"name":"models/gemini-3.5-flash","supportedGenerationMethods":["generateContent","countTokens"]},
        {"name":"models/gemini-3.5-flash-lite","supportedGenerationMethods":["generateContent"]},
        {"name":"models/gemini-3.1-flash-image","supportedGenerationMethods":["generateContent"]},
        {"name":"models/gemini-embedding-001","supportedGenerationMethods":["embedContent"]},
        {"name":"models/gemini-3.8-flash","supportedGenerationMethods":["generateContent"]}],
        "nextPageToken":"abc"}"#;

    fn catalogue() -> Catalogue {
        let mut c = Catalogue::default();
        assert_eq!(c.add_page(PAGE.as_bytes()).unwrap().as_deref(), Some("abc"));
        c
    }

    #[test]
    fn findings() {
        let c = catalogue();
        let cases = [
            ("gemini-3.5-flsh", "generateContent",
                "gemini-3.5-flsh is not among the 5 models this key can use (GET /v1beta/models); the nearest that serve :generateContent: gemini-3.5-flash, gemini-3.8-flash, gemini-3.5-flash-lite."),
            ("gemini-3.5-flash", "generateContent", "lists gemini-3.5-flash with :generateContent"),
            ("gemini-embedding-001", "generateContent", "lists gemini-embedding-001, but only for :embedContent."),
            ("veo-9", "predictLongRunning", "and none of them serves :predictLongRunning."),
        ];
        for (model, method, want) in cases {
            let got = c.finding(model, method).sentence(model, method);
            assert!(got.contains(want), "{model}: {got}");
        }
    }

    #[test]
    fn smallest_is_the_head_of_the_sorted_list() {
        let cases: [(&str, &[(usize, &str)]); 5] = [
            ("empty", &[]),
            ("fewer than three", &[(4, "b"), (1, "a")]),
            (
                "ties by name",
                &[(2, "c"), (2, "a"), (1, "z"), (2, "b"), (9, "y")],
            ),
            ("duplicates", &[(1, "a"), (1, "a"), (0, "b"), (1, "a")]),
            (
                "many",
                &[
                    (7, "g"),
                    (3, "c"),
                    (5, "e"),
                    (1, "a"),
                    (6, "f"),
                    (2, "b"),
                    (0, "z"),
                ],
            ),
        ];
        for (name, items) in cases {
            let mut want = items.to_vec();
            want.sort();
            want.truncate(NEAREST);
            assert_eq!(smallest(items.iter().copied(), NEAREST), want, "{name}");
        }
    }

    #[test]
    fn pages_read_as_the_derive_reads_them() {
        mod derived {
            #[derive(serde::Deserialize)]
            pub struct RawPage {
                #[serde(default)]
                pub models: Vec<RawModel>,
                #[serde(default, rename = "nextPageToken")]
                pub next_page_token: Option<String>,
            }

            #[derive(serde::Deserialize)]
            pub struct RawModel {
                pub name: String,
                #[serde(default, rename = "supportedGenerationMethods")]
                pub methods: Vec<String>,
            }
        }
        type Page = (Vec<(String, Vec<String>)>, Option<String>);
        let cases = [
            PAGE,
            "{}",
            r#"{"models":[],"nextPageToken":null}"#,
            r#"{"models":[{"name":"m","displayName":"M","inputTokenLimit":1}],"x":[{}]}"#,
            r#"{"models":[{"supportedGenerationMethods":[]}]}"#,
            r#"{"models":[{"name":"m","name":"n"}]}"#,
            r#"{"models":[{"name":"m"}],"models":[]}"#,
            r#"{"models":[["m",["predict"]]],"nextPageToken":"t"}"#,
            r#"{"models":[["m"]]}"#,
            r#"{"models":[[]]}"#,
            r#"[[{"name":"m"}],"t"]"#,
            r#"[[{"name":"m"}]]"#,
            "[]",
            r#"{"models":null}"#,
            r#"{"models":[{"name":null}]}"#,
            r#"{"nextPageToken":5}"#,
            "[1,2]",
        ];
        for json in cases {
            let got: Result<Page, String> = parse_document(json.as_bytes(), RawPage::read)
                .map(|p| {
                    let models = p.models.into_iter().map(|m| (m.name, m.methods));
                    (models.collect(), p.next_page_token)
                })
                .map_err(|e| crate::config::without_position(&e));
            let want: Result<Page, String> = serde_json::from_str::<derived::RawPage>(json)
                .map(|p| {
                    let models = p.models.into_iter().map(|m| (m.name, m.methods));
                    (models.collect(), p.next_page_token)
                })
                .map_err(|e| crate::config::without_position(&e.to_string()));
            assert_eq!(got, want, "{json}");
        }
    }

    #[test]
    fn listed_methods_imply_a_family() {
        let mut c = Catalogue::default();
        c.add_page(br#"{"models":[
            {"name":"models/acme-draw","supportedGenerationMethods":["predict"]},
            {"name":"models/acme-film","supportedGenerationMethods":["predictLongRunning"]},
            {"name":"models/acme-vec","supportedGenerationMethods":["embedContent","countTextTokens"]},
            {"name":"models/acme-chat","supportedGenerationMethods":["generateContent","countTokens"]},
            {"name":"models/acme-odd","supportedGenerationMethods":["tuneModel"]}]}"#).unwrap();
        let cases = [
            ("acme-draw", Some(Family::Imagen)),
            ("acme-film", Some(Family::Veo)),
            ("acme-vec", Some(Family::Embedding)),
            ("acme-chat", Some(Family::Gemini)),
            ("acme-odd", None),
            ("unlisted", None),
        ];
        for (model, want) in cases {
            assert_eq!(c.family_of(model), want, "{model}");
        }
    }

    #[test]
    fn pages_are_bounded() {
        let mut c = Catalogue::default();
        assert!(matches!(
            c.add_page(&vec![b' '; MAX_PAGE_BYTES + 1]),
            Err(PageError::TooLarge(_))
        ));
        assert!(matches!(c.add_page(b"[1,2]"), Err(PageError::Malformed(_))));
        let many = format!(
            r#"{{"models":[{}]}}"#,
            (0..MAX_MODELS + 10)
                .map(|i| format!(r#"{{"name":"models/m{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(c.add_page(many.as_bytes()).unwrap(), None);
        assert_eq!(c.models.len(), MAX_MODELS);
    }

    #[test]
    fn the_cache_is_bounded_keyed_by_hash_and_expires() {
        let mut cache = Cache::default();
        let key = credential_key("AIzaSECRET");
        assert_ne!(key, credential_key("AIzaOTHER"));
        assert!(!format!("{cache:?}").contains("AIza"));
        cache.put(key, 1_000, catalogue());
        assert!(cache.get(key, 1_000 + TTL_SECONDS - 1).is_some());
        assert!(cache.get(key, 1_000 + TTL_SECONDS).is_none());
        for i in 0..(MAX_ENTRIES as u64 + 5) {
            cache.put(i, 2_000, Catalogue::default());
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert!(cache.get(0, 2_000).is_none(), "the oldest went first");
    }

    #[test]
    fn page_paths() {
        assert_eq!(page_path("v1beta", None), "/v1beta/models?pageSize=1000");
        assert_eq!(
            page_path("v1", Some("a b/c")),
            "/v1/models?pageSize=1000&pageToken=a%20b%2Fc"
        );
    }

    /// The whole table, row by row: what [`distance`] keeps one row of.
    fn full_table_distance(a: &str, b: &str) -> usize {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let mut table = vec![vec![0; b.len() + 1]; a.len() + 1];
        for (i, row) in table.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in table[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                table[i][j] = (table[i - 1][j - 1] + cost)
                    .min(table[i - 1][j] + 1)
                    .min(table[i][j - 1] + 1);
            }
        }
        table[a.len()][b.len()]
    }

    #[test]
    fn distance_is_levenshtein() {
        let known = [
            ("", "", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("flaw", "lawn", 2),
            ("gemini-3.5-flsh", "gemini-3.5-flash", 1),
            ("gemini-3.5-flsh", "gemini-3.5-flash-lite", 6),
            ("abc", "abc", 0),
        ];
        for (a, b, want) in known {
            assert_eq!(distance(a, b), want, "{a} {b}");
            assert_eq!(distance(b, a), want, "{b} {a}");
        }
        let ids = [
            "",
            "a",
            "ab",
            "ba",
            "gemini-2.5-pro",
            "gemini-3.1-flash-image",
            "imagen-4.0-generate-001",
            "veo-3.0-generate-preview",
            "text-embedding-004",
        ];
        for a in ids {
            for b in ids {
                assert_eq!(distance(a, b), full_table_distance(a, b), "{a} {b}");
            }
        }
    }
}
