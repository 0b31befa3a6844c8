//! Counters exposed through Envoy stats (`wasmcustom.gemini_router.*`).

use super::host::Host;
use std::cell::{Cell, RefCell};

/// How many models' first migrations a VM remembers having logged.
pub const MAX_LOGGED_MIGRATIONS: usize = 256;
use crate::endpoint::Family;
use crate::flow::PassReason;
use crate::headers::{
    METRIC_ANNOTATED, METRIC_CATALOGUE, METRIC_MIGRATED, METRIC_PASSTHROUGH, METRIC_REJECTED,
    METRIC_REJECTED_CREDENTIALS, METRIC_REQUESTS, METRIC_REWRITTEN, METRIC_SIGNATURES,
    METRIC_STREAMS_REPAIRED, METRIC_TASKS, METRIC_TRANSLATED, METRIC_TRANSLATE_ERRORS,
    METRIC_UNCHANGED,
};

/// A counter id, or `None` if the host refused to define it.
#[derive(Debug, Clone, Copy)]
pub struct Counter(Option<u32>);

impl Counter {
    /// Adds one.
    pub fn inc(self, host: &impl Host) {
        if let Some(id) = self.0 {
            host.increment(id);
        }
    }

    /// Adds `n`.
    pub fn add(self, host: &impl Host, n: usize) {
        for _ in 0..n {
            self.inc(host);
        }
    }
}

/// Every counter the filter keeps, defined once per VM.
#[derive(Debug)]
pub struct Metrics {
    /// Every request seen.
    pub requests: Counter,
    rewritten: [Counter; Family::ALL.len()],
    migrated: [Counter; Family::ALL.len()],
    /// Models whose first migration was logged, sorted (at most
    /// [`MAX_LOGGED_MIGRATIONS`], so a stream of odd ids cannot grow it).
    logged_migrations: RefCell<Vec<String>>,
    /// Whether a compressed answer showed `route_removes_accept_encoding`
    /// wrong (logged once per VM).
    logged_kept_encoding: Cell<bool>,
    unchanged: [Counter; Family::ALL.len()],
    passthrough: [Counter; PassReason::ALL.len()],
    /// Passed on to an endpoint that does not serve the model (no translator).
    pub no_translator: Counter,
    /// Bodies translated.
    pub translated: Counter,
    /// Local 400s for unsafe model names.
    pub rejected: Counter,
    /// Local 400s for requests with more than one credential.
    pub rejected_credentials: Counter,
    /// Live catalogues read after a 404 (`fetched`), found in the cache
    /// (`cached`), or that could not be read (`failed`: the static hint).
    pub catalogue_fetched: Counter,
    /// See `catalogue_fetched`.
    pub catalogue_cached: Counter,
    /// See `catalogue_fetched`.
    pub catalogue_failed: Counter,
    /// Background-task prompts for image models served by `task_model`.
    pub tasks_served: Counter,
    /// Background-task prompts for image models answered empty by the filter.
    pub tasks_answered: Counter,
    /// Error responses annotated.
    pub annotated: Counter,
    /// Failed translations.
    pub translate_errors: Counter,
    /// Thought signatures remembered from answers.
    pub signatures_stored: Counter,
    /// Thought signatures larger than `max_signature_bytes`, not remembered.
    pub signatures_too_large: Counter,
    /// Tool calls given their remembered signature.
    pub signatures_restored: Counter,
    /// Steps given the bypass value.
    pub signatures_bypassed: Counter,
    /// Tool-call streams repaired.
    pub streams_repaired: Counter,
}

impl Metrics {
    /// Defines all counters with the host.
    pub fn define(host: &impl Host) -> Metrics {
        let define = |name: &str| Counter(host.define_counter(name));
        let sub = |prefix: &str, name: &str| sub_counter(host, prefix, name);
        let by_family = |prefix: &str| by_family(host, prefix);
        Metrics {
            requests: define(METRIC_REQUESTS),
            rewritten: by_family(METRIC_REWRITTEN),
            migrated: by_family(METRIC_MIGRATED),
            logged_migrations: RefCell::new(Vec::new()),
            logged_kept_encoding: Cell::new(false),
            unchanged: by_family(METRIC_UNCHANGED),
            passthrough: PassReason::ALL.map(|r| sub(METRIC_PASSTHROUGH, r.as_str())),
            no_translator: sub(METRIC_PASSTHROUGH, "no_translator"),
            translated: define(METRIC_TRANSLATED),
            rejected: define(METRIC_REJECTED),
            rejected_credentials: define(METRIC_REJECTED_CREDENTIALS),
            catalogue_fetched: sub(METRIC_CATALOGUE, "fetched"),
            catalogue_cached: sub(METRIC_CATALOGUE, "cached"),
            catalogue_failed: sub(METRIC_CATALOGUE, "failed"),
            tasks_served: sub(METRIC_TASKS, "served"),
            tasks_answered: sub(METRIC_TASKS, "answered"),
            annotated: define(METRIC_ANNOTATED),
            translate_errors: define(METRIC_TRANSLATE_ERRORS),
            signatures_stored: sub(METRIC_SIGNATURES, "stored"),
            signatures_too_large: sub(METRIC_SIGNATURES, "too_large"),
            signatures_restored: sub(METRIC_SIGNATURES, "restored"),
            signatures_bypassed: sub(METRIC_SIGNATURES, "bypassed"),
            streams_repaired: define(METRIC_STREAMS_REPAIRED),
        }
    }

    /// The rewritten counter of a family.
    pub fn rewritten(&self, family: Family) -> Counter {
        self.rewritten[family_index(family)]
    }

    /// The migrated counter of a family (of the model asked for).
    pub fn migrated(&self, family: Family) -> Counter {
        self.migrated[family_index(family)]
    }

    /// Whether this is the first migration of `model` this VM sees (then
    /// it is logged at info).
    pub fn first_migration(&self, model: &str) -> bool {
        remember(&mut self.logged_migrations.borrow_mut(), model)
    }

    /// Whether this is the first answer in this VM that shows the route
    /// keeping `accept-encoding` ([`crate::response::encoding_kept`]).
    pub fn first_kept_encoding(&self) -> bool {
        !self.logged_kept_encoding.replace(true)
    }

    /// The unchanged counter of a family.
    pub fn unchanged(&self, family: Family) -> Counter {
        self.unchanged[family_index(family)]
    }

    /// The passthrough counter of a reason.
    pub fn passthrough(&self, reason: PassReason) -> Counter {
        self.passthrough[reason as usize]
    }
}

/// Defines counter `prefix.family` of each family. (Not inlined: one copy
/// for the three sets.)
#[inline(never)]
fn by_family(host: &impl Host, prefix: &str) -> [Counter; Family::ALL.len()] {
    Family::ALL.map(|f| sub_counter(host, prefix, f.as_str()))
}

/// Defines counter `prefix.name`. (Not inlined: one copy for the many
/// counters.)
#[inline(never)]
fn sub_counter(host: &impl Host, prefix: &str, name: &str) -> Counter {
    Counter(host.define_counter(&dotted(prefix, name)))
}

/// `prefix.name`. (Not inlined: one copy for the many counters.)
#[inline(never)]
fn dotted(prefix: &str, name: &str) -> String {
    format!("{prefix}.{name}")
}

/// Adds `model` to the sorted list `logged` unless it is there or the list
/// is full; whether it was added. (A sorted `Vec` rather than a `BTreeSet`:
/// the same answers, without a B-tree's code in the module.)
fn remember(logged: &mut Vec<String>, model: &str) -> bool {
    match logged.binary_search_by(|m| m.as_str().cmp(model)) {
        Err(at) if logged.len() < MAX_LOGGED_MIGRATIONS => {
            logged.insert(at, model.to_owned());
            true
        }
        _ => false,
    }
}

/// The index of a family in `Family::ALL`, which lists the variants in
/// declaration order (checked by a test).
fn family_index(family: Family) -> usize {
    family as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_all_lists() {
        for (i, family) in Family::ALL.iter().enumerate() {
            assert_eq!(family_index(*family), i, "{family:?}");
        }
        for (i, reason) in PassReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason:?}");
        }
    }

    #[test]
    fn a_model_is_remembered_once_and_the_list_is_bounded() {
        let mut logged = Vec::new();
        let cases = [
            ("first", "gemini-b", true),
            ("again", "gemini-b", false),
            ("before", "gemini-a", true),
            ("after", "gemini-c", true),
            ("again, among others", "gemini-a", false),
        ];
        for (name, model, want) in cases {
            assert_eq!(remember(&mut logged, model), want, "{name}");
        }
        assert_eq!(logged, ["gemini-a", "gemini-b", "gemini-c"]);

        let mut full: Vec<String> = (0..MAX_LOGGED_MIGRATIONS)
            .map(|i| format!("m{i:03}"))
            .collect();
        full.sort();
        assert!(!remember(&mut full, "new-model"), "full");
        assert!(!remember(&mut full, "m000"), "full and known");
        assert_eq!(full.len(), MAX_LOGGED_MIGRATIONS);
    }
}
