//! Model id -> family, by an ordered list of glob rules (first match wins).
//!
//! Model availability changes often, so the rules are data: built-in defaults
//! that follow the API reference, with user rules from configuration checked
//! first.

use crate::endpoint::Family;
use std::cell::RefCell;
use std::fmt;

/// The built-in rules, in order. Image-output Gemini models come before the
/// general `gemini-*` rule so that they win.
pub const BUILTIN_RULES: &[(&str, Family)] = &[
    ("gemini-*-image*", Family::GeminiImage),
    ("imagen-*", Family::Imagen),
    ("veo-*", Family::Veo),
    ("*embedding*", Family::Embedding),
    ("aqa", Family::Aqa),
    ("gemini-*", Family::Gemini),
    ("gemma-*", Family::Gemini),
    ("learnlm-*", Family::Gemini),
];

/// A glob over model ids: `*` matches any run of characters, `?` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    /// Where the first and the last `*` are, if there is one.
    stars: Option<(usize, usize)>,
}

/// Why a glob pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// The pattern is empty.
    Empty,
    /// The pattern has a character a model id cannot have.
    BadCharacter(char),
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::Empty => f.write_str("the pattern is empty"),
            GlobError::BadCharacter(c) => write!(
                f,
                "the pattern has {}; only letters, digits, '.', '-', '_', '*' and '?' are allowed",
                c.escape_default()
            ),
        }
    }
}

impl std::error::Error for GlobError {}

impl Glob {
    /// Compiles a pattern, refusing characters no model id has.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*' | '?')))
        {
            return Err(GlobError::BadCharacter(c));
        }
        let stars = pattern
            .bytes()
            .position(|c| c == b'*')
            .zip(pattern.bytes().rposition(|c| c == b'*'));
        Ok(Glob {
            pattern: pattern.to_owned(),
            stars,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `text` matches. The pattern is literal runs (with `?`)
    /// between stars: the first run must start `text`, the last must end
    /// it, and each run between is taken where it first occurs after the
    /// previous one (the leftmost place leaves the most room for the rest,
    /// so that choice never loses a match). No backtracking: a model id a
    /// worker has not seen lately is tried against every rule (see
    /// [`FirstMatch`]), and clients choose the ids.
    pub fn matches(&self, text: &str) -> bool {
        let (p, t) = (self.pattern.as_bytes(), text.as_bytes());
        let Some((first_star, last_star)) = self.stars else {
            return runs_equal(p, t);
        };
        // Most rules fail on their first bytes: the head is compared first.
        let head = p.get(..first_star).unwrap_or_default();
        if !t
            .get(..head.len())
            .is_some_and(|start| runs_equal(head, start))
        {
            return false;
        }
        let tail = p.get(last_star + 1..).unwrap_or_default();
        let middle_end = match t.len().checked_sub(tail.len()) {
            Some(end) if end >= head.len() => end,
            _ => return false,
        };
        if !runs_equal(tail, t.get(middle_end..).unwrap_or_default()) {
            return false;
        }
        let mut rest = t.get(head.len()..middle_end).unwrap_or_default();
        let middle = p.get(first_star + 1..last_star).unwrap_or_default();
        for run in middle.split(|&c| c == b'*').filter(|run| !run.is_empty()) {
            match rest.windows(run.len()).position(|at| runs_equal(run, at)) {
                Some(at) => rest = rest.get(at + run.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        true
    }
}

/// The index of the first of a list of globs that matches a model id,
/// remembered for the last [`FirstMatch::IDS`] ids it had to search for (a
/// remembered id does not move up: the oldest search gives way). A deployment
/// sends a handful of models, and each request would otherwise try its id
/// against every pattern of the rules and of the lifecycle table (26 with
/// the built-in ones). The answer depends on the id and the list alone, and
/// the list does not change once configured, so a remembered answer is the
/// answer. Bounded, whatever ids clients send.
#[derive(Debug, Clone, Default)]
pub(crate) struct FirstMatch {
    /// (id, the first match's index), the most recent last.
    recent: RefCell<Vec<(Box<str>, Option<usize>)>>,
}

impl FirstMatch {
    /// How many ids are remembered.
    pub(crate) const IDS: usize = 16;

    /// The index of the first glob of `globs` that matches `id`.
    pub(crate) fn find<'g>(
        &self,
        id: &str,
        mut globs: impl Iterator<Item = &'g Glob>,
    ) -> Option<usize> {
        if let Ok(recent) = self.recent.try_borrow() {
            if let Some((_, index)) = recent.iter().rev().find(|(known, _)| **known == *id) {
                return *index;
            }
        }
        let index = globs.position(|glob| glob.matches(id));
        if let Ok(mut recent) = self.recent.try_borrow_mut() {
            if recent.len() == Self::IDS {
                recent.remove(0);
            }
            recent.push((id.into(), index));
        }
        index
    }
}

/// Remembered answers are not part of what a list is.
impl PartialEq for FirstMatch {
    fn eq(&self, _: &FirstMatch) -> bool {
        true
    }
}

impl Eq for FirstMatch {}

/// Whether a literal run of a pattern (`?` for any byte) matches `text`.
fn runs_equal(run: &[u8], text: &[u8]) -> bool {
    run.len() == text.len() && run.iter().zip(text).all(|(&p, &t)| p == b'?' || p == t)
}

/// Where a rule came from, for the `x-gemini-router-rule` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSource {
    /// `rules[i]` in the configuration.
    Config(usize),
    /// The built-in table: this pattern of it.
    Builtin(&'static str),
}

/// The label of the rule that decided a family, written out only when a
/// message or a header shows it (most requests never do): `imagen-*
/// (built-in)`, `my-* (rules[0])`, the live catalogue, or `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleLabel {
    /// A built-in rule, by its pattern.
    Builtin(&'static str),
    /// `rules[index]` of the configuration, and its pattern.
    Config { index: usize, pattern: String },
    /// No rule: the live catalogue's `supportedGenerationMethods`.
    Catalogue,
    /// No rule: the default family.
    Default,
}

impl fmt::Display for RuleLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleLabel::Builtin(pattern) => write!(f, "{pattern} (built-in)"),
            RuleLabel::Config { index, pattern } => write!(f, "{pattern} (rules[{index}])"),
            RuleLabel::Catalogue => f.write_str("live catalogue (supportedGenerationMethods)"),
            RuleLabel::Default => f.write_str("default"),
        }
    }
}

/// One classification rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The pattern on the bare model id.
    pub pattern: Glob,
    /// The family a match belongs to.
    pub family: Family,
    /// Where the rule came from.
    pub source: RuleSource,
}

/// The outcome of classification: the family and the rule that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification<'a> {
    /// The model's family.
    pub family: Family,
    /// The matching rule, or `None` when the default family applied.
    pub rule: Option<&'a Rule>,
    /// No rule matched, and the live catalogue's `supportedGenerationMethods`
    /// for the model decided the family.
    pub from_catalogue: bool,
}

impl Classification<'_> {
    /// The label naming the deciding rule (see [`RuleLabel`]).
    pub fn label(&self) -> RuleLabel {
        match self.rule {
            Some(rule) => match rule.source {
                RuleSource::Builtin(pattern) => RuleLabel::Builtin(pattern),
                RuleSource::Config(index) => RuleLabel::Config {
                    index,
                    pattern: rule.pattern.as_str().to_owned(),
                },
            },
            None if self.from_catalogue => RuleLabel::Catalogue,
            None => RuleLabel::Default,
        }
    }
}

/// An ordered rule list with a fallback family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classifier {
    rules: Vec<Rule>,
    default_family: Family,
    /// The rule each recent model id matched.
    first: FirstMatch,
}

impl Classifier {
    /// Builds the list: `user` rules first, then the built-in ones if wanted.
    pub fn new(user: Vec<Rule>, builtin: bool, default_family: Family) -> Classifier {
        let mut rules = user;
        if builtin {
            rules.extend(BUILTIN_RULES.iter().filter_map(|&(pattern_text, family)| {
                Glob::new(pattern_text).ok().map(|pattern| Rule {
                    pattern,
                    family,
                    source: RuleSource::Builtin(pattern_text),
                })
            }));
        }
        Classifier {
            rules,
            default_family,
            first: FirstMatch::default(),
        }
    }

    /// How many rules there are (user and built-in).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (every model gets the default family).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The family of a bare model id.
    pub fn classify(&self, id: &str) -> Classification<'_> {
        let rules = self.rules.iter().map(|r| &r.pattern);
        match self.first.find(id, rules).and_then(|i| self.rules.get(i)) {
            Some(rule) => Classification {
                family: rule.family,
                rule: Some(rule),
                from_catalogue: false,
            },
            None => Classification {
                family: self.default_family,
                rule: None,
                from_catalogue: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        let cases = [
            ("imagen-*", "imagen-4.0-generate-001", true),
            ("imagen-*", "imagen", false),
            ("*embedding*", "gemini-embedding-001", true),
            ("*embedding*", "embedding", true),
            ("gemini-*-image*", "gemini-2.5-flash-image", true),
            ("gemini-*-image*", "gemini-3-pro-image-preview", true),
            ("gemini-*-image*", "gemini-2.5-flash", false),
            ("aqa", "aqa", true),
            ("aqa", "aqa-2", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**x", "x", true),
        ];
        for (pattern, text, want) in cases {
            let glob = Glob::new(pattern).unwrap();
            assert_eq!(glob.matches(text), want, "{pattern} ~ {text}");
        }
    }

    /// The backtracking matcher the rules used before: the oracle.
    fn backtracking(p: &[u8], t: &[u8]) -> bool {
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == b'?' || c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }

    #[test]
    fn glob_matching_agrees_with_backtracking_on_every_small_case() {
        // Every pattern of up to five symbols over {a, b, ?, *} against every
        // text of up to six letters over {a, b}, and the built-in rules
        // against real ids.
        let mut patterns = vec![String::new()];
        let mut texts = vec![String::new()];
        for len in 1..=6 {
            for n in 0..4usize.pow(len) {
                let mut x = n;
                let mut pattern = String::new();
                for _ in 0..len {
                    pattern.push(['a', 'b', '?', '*'][x % 4]);
                    x /= 4;
                }
                if len <= 5 {
                    patterns.push(pattern);
                }
            }
            for n in 0..2usize.pow(len) {
                texts.push(
                    (0..len)
                        .map(|i| if n >> i & 1 == 1 { 'b' } else { 'a' })
                        .collect(),
                );
            }
        }
        for pattern in patterns.iter().filter(|p| !p.is_empty()) {
            let glob = Glob::new(pattern).unwrap();
            for text in &texts {
                let want = backtracking(pattern.as_bytes(), text.as_bytes());
                assert_eq!(glob.matches(text), want, "{pattern} ~ {text}");
            }
        }
        let ids = [
            "gemini-2.5-flash",
            "gemini-2.5-flash-image",
            "gemini-3-pro-image-preview",
            "gemini-embedding-001",
            "text-embedding-004",
            "imagen-4.0-generate-001",
            "veo-3.0-generate-001",
            "aqa",
            "gemma-3-27b-it",
            "learnlm-2.0-flash-experimental",
            "gemini-image",
            "gemini--image",
        ];
        for (pattern, _) in BUILTIN_RULES {
            let glob = Glob::new(pattern).unwrap();
            for id in ids {
                let want = backtracking(pattern.as_bytes(), id.as_bytes());
                assert_eq!(glob.matches(id), want, "{pattern} ~ {id}");
            }
        }
    }

    #[test]
    fn first_match_remembers_what_the_search_finds_and_no_more_ids_than_it_may() {
        let globs: Vec<Glob> = ["gemini-*-image*", "imagen-*", "gemini-*", "a?c"]
            .iter()
            .map(|p| Glob::new(p).unwrap())
            .collect();
        let first = FirstMatch::default();
        // Each id twice: searched, then remembered; the answers are the
        // search's either way.
        let cases = [
            ("gemini-2.5-flash-image", Some(0)),
            ("imagen-4.0-generate-001", Some(1)),
            ("gemini-3.5-flash", Some(2)),
            ("abc", Some(3)),
            ("gpt-4o", None),
            ("", None),
        ];
        for round in 0..2 {
            for (id, want) in cases {
                assert_eq!(first.find(id, globs.iter()), want, "{id}, round {round}");
            }
        }
        assert_eq!(first.recent.borrow().len(), cases.len(), "one entry per id");
        // A remembered id is answered without searching: with no globs to
        // try, the answers are still the search's.
        for (id, want) in cases {
            assert_eq!(first.find(id, std::iter::empty()), want, "{id}, remembered");
        }
        // Many more ids than it keeps: the oldest give way, the answers hold.
        for n in 0..3 * FirstMatch::IDS {
            let id = format!("gemini-{n}");
            assert_eq!(first.find(&id, globs.iter()), Some(2), "{id}");
        }
        let recent = first.recent.borrow();
        assert_eq!(recent.len(), FirstMatch::IDS);
        assert_eq!(
            &*recent[FirstMatch::IDS - 1].0,
            format!("gemini-{}", 3 * FirstMatch::IDS - 1)
        );
        drop(recent);
        let last = format!("gemini-{}", 3 * FirstMatch::IDS - 1);
        assert_eq!(first.find(&last, std::iter::empty()), Some(2), "remembered");
        // An id of the first rounds was forgotten: it is searched again,
        // so with no globs to try it matches none.
        assert_eq!(
            first.find("gemini-3.5-flash", std::iter::empty()),
            None,
            "forgotten, searched again"
        );
    }

    #[test]
    fn glob_rejects_bad_patterns() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(Glob::new("a/b"), Err(GlobError::BadCharacter('/')));
        assert_eq!(Glob::new("[ab]"), Err(GlobError::BadCharacter('[')));
    }

    #[test]
    fn builtin_classification_follows_the_api_reference() {
        let classifier = Classifier::new(Vec::new(), true, Family::Gemini);
        let cases = [
            ("gemini-2.5-flash", Family::Gemini, "gemini-* (built-in)"),
            ("gemma-3-27b-it", Family::Gemini, "gemma-* (built-in)"),
            (
                "gemini-2.5-flash-image",
                Family::GeminiImage,
                "gemini-*-image* (built-in)",
            ),
            (
                "gemini-2.5-flash-image-preview",
                Family::GeminiImage,
                "gemini-*-image* (built-in)",
            ),
            (
                "gemini-3-pro-image-preview",
                Family::GeminiImage,
                "gemini-*-image* (built-in)",
            ),
            (
                "gemini-2.0-flash-preview-image-generation",
                Family::GeminiImage,
                "gemini-*-image* (built-in)",
            ),
            (
                "imagen-3.0-generate-002",
                Family::Imagen,
                "imagen-* (built-in)",
            ),
            (
                "imagen-4.0-ultra-generate-001",
                Family::Imagen,
                "imagen-* (built-in)",
            ),
            ("veo-3.0-generate-001", Family::Veo, "veo-* (built-in)"),
            (
                "gemini-embedding-001",
                Family::Embedding,
                "*embedding* (built-in)",
            ),
            (
                "text-embedding-004",
                Family::Embedding,
                "*embedding* (built-in)",
            ),
            ("embedding-001", Family::Embedding, "*embedding* (built-in)"),
            ("aqa", Family::Aqa, "aqa (built-in)"),
            ("some-future-model", Family::Gemini, "default"),
        ];
        for (id, family, label) in cases {
            let got = classifier.classify(id);
            assert_eq!(
                (got.family, got.label().to_string().as_str()),
                (family, label),
                "{id}"
            );
        }
    }

    #[test]
    fn user_rules_win_and_builtins_can_be_dropped() {
        let user = vec![Rule {
            pattern: Glob::new("imagen-4*").unwrap(),
            family: Family::GeminiImage,
            source: RuleSource::Config(0),
        }];
        let with_builtin = Classifier::new(user.clone(), true, Family::Gemini);
        let got = with_builtin.classify("imagen-4.0-generate-001");
        assert_eq!(
            (got.family, got.label().to_string()),
            (Family::GeminiImage, "imagen-4* (rules[0])".to_owned())
        );
        assert_eq!(with_builtin.classify("imagen-3.0").family, Family::Imagen);

        let only_user = Classifier::new(user, false, Family::Embedding);
        assert_eq!(only_user.classify("imagen-3.0").family, Family::Embedding);
    }
}
