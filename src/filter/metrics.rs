//! Counters exposed through Envoy stats (`wasmcustom.gemini_router.*`).

use crate::endpoint::Family;
use crate::flow::PassReason;
use crate::headers::{
    METRIC_ANNOTATED, METRIC_PASSTHROUGH, METRIC_REJECTED, METRIC_REJECTED_CREDENTIALS,
    METRIC_REQUESTS, METRIC_REWRITTEN, METRIC_TRANSLATED, METRIC_TRANSLATE_ERRORS,
    METRIC_UNCHANGED,
};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// A counter id, or `None` if the host refused to define it.
#[derive(Debug, Clone, Copy)]
pub struct Counter(Option<u32>);

impl Counter {
    fn define(name: &str) -> Counter {
        match hostcalls::define_metric(MetricType::Counter, name) {
            Ok(id) => Counter(Some(id)),
            Err(status) => {
                log::warn!("define metric {name}: host error {status:?}");
                Counter(None)
            }
        }
    }

    /// Adds one.
    pub fn inc(self) {
        if let Some(id) = self.0 {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                log::debug!("increment metric {id}: host error {status:?}");
            }
        }
    }
}

/// Every counter the filter keeps, defined once per VM.
#[derive(Debug)]
pub struct Metrics {
    /// Every request seen.
    pub requests: Counter,
    rewritten: [Counter; Family::ALL.len()],
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
    /// Error responses annotated.
    pub annotated: Counter,
    /// Failed translations.
    pub translate_errors: Counter,
}

impl Metrics {
    /// Defines all counters with the host.
    pub fn define() -> Metrics {
        let by_family = |prefix: &str| {
            Family::ALL.map(|f| Counter::define(&format!("{prefix}.{}", f.as_str())))
        };
        Metrics {
            requests: Counter::define(METRIC_REQUESTS),
            rewritten: by_family(METRIC_REWRITTEN),
            unchanged: by_family(METRIC_UNCHANGED),
            passthrough: PassReason::ALL
                .map(|r| Counter::define(&format!("{METRIC_PASSTHROUGH}.{}", r.as_str()))),
            no_translator: Counter::define(&format!("{METRIC_PASSTHROUGH}.no_translator")),
            translated: Counter::define(METRIC_TRANSLATED),
            rejected: Counter::define(METRIC_REJECTED),
            rejected_credentials: Counter::define(METRIC_REJECTED_CREDENTIALS),
            annotated: Counter::define(METRIC_ANNOTATED),
            translate_errors: Counter::define(METRIC_TRANSLATE_ERRORS),
        }
    }

    /// The rewritten counter of a family.
    pub fn rewritten(&self, family: Family) -> Counter {
        self.rewritten[family_index(family)]
    }

    /// The unchanged counter of a family.
    pub fn unchanged(&self, family: Family) -> Counter {
        self.unchanged[family_index(family)]
    }

    /// The passthrough counter of a reason.
    pub fn passthrough(&self, reason: PassReason) -> Counter {
        let i = PassReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.passthrough[i]
    }
}

fn family_index(family: Family) -> usize {
    Family::ALL.iter().position(|f| *f == family).unwrap_or(0)
}
