//! Prometheus metrics of the pipeline through the `metrics` facade: names, labels, buckets, and the one call per finished exchange.
//!
//! The gateway installs the exporter and serves `GET /metrics`; without an installed recorder every call here is a no-op.
//! Label values are bounded: APIs, outcomes and statuses are fixed sets, tiers and providers come from the configuration,
//! and a model that no tier or alias names is counted as [`OTHER`] (clients can send any `provider/model`).
//! Nothing here carries a request id, a user or a prompt.
//!
//! The handles of each label set are looked up once and cached, so a finished exchange costs a hash of its labels and a
//! handful of atomic adds (`cargo bench -p tandem-gateway --bench governance`, `metrics::finished`).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use metrics::{Counter, Gauge, Histogram, Unit};
use tandem_store::{Outcome, RequestRecord};

/// Finished exchanges: `api`, `tier`, `provider`, `model`, `outcome`, `status`.
pub const REQUESTS: &str = "tandem_requests_total";
/// Tokens: `direction` (`input`, `output`, `cached_input`, `reasoning`), `tier`, `model`.
pub const TOKENS: &str = "tandem_tokens_total";
/// What answered exchanges cost at the configured prices, in US dollars: `tier`, `model`.
pub const COST: &str = "tandem_cost_usd_total";
/// Time from arrival to the end of the answer: `api`, `tier`, `model`.
pub const DURATION: &str = "tandem_request_duration_seconds";
/// Time from arrival to the first streamed token (streams only): `api`, `tier`, `model`.
pub const TTFT: &str = "tandem_time_to_first_token_seconds";
/// Failed upstream attempts, retried or not: `provider`, `kind`.
pub const UPSTREAM_ERRORS: &str = "tandem_upstream_errors_total";
/// Data loss prevention findings: `direction` (`request`, `response`), `rule`, `action`.
pub const DLP_FINDINGS: &str = "tandem_dlp_findings_total";
/// Calls to the shared budget counters (Redis) that failed.
pub const COUNTER_ERRORS: &str = "tandem_budget_counter_errors_total";

/// Histogram buckets in seconds for both latency histograms: 5 ms to 10 minutes.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

/// The `model` label of models no tier or alias names.
pub const OTHER: &str = "other";

/// Describe every metric to the installed recorder (help text and unit); call once after installing it.
pub fn describe() {
    metrics::describe_counter!(REQUESTS, Unit::Count, "Finished client exchanges.");
    metrics::describe_counter!(TOKENS, Unit::Count, "Tokens used, by direction.");
    metrics::describe_gauge!(
        COST,
        "What answered exchanges cost in US dollars at the configured prices (only ever grows)."
    );
    metrics::describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Time from arrival to the end of the answer."
    );
    metrics::describe_histogram!(
        TTFT,
        Unit::Seconds,
        "Time from arrival to the first streamed token."
    );
    metrics::describe_counter!(
        UPSTREAM_ERRORS,
        Unit::Count,
        "Failed upstream attempts (retried, fallen back or returned)."
    );
    metrics::describe_counter!(DLP_FINDINGS, Unit::Count, "Data loss prevention findings.");
    metrics::describe_counter!(
        COUNTER_ERRORS,
        Unit::Count,
        "Calls to the shared budget counters that failed."
    );
}

/// Count one finished exchange: request, tokens, cost and latencies. Called by the recorder for every record.
pub fn finished(record: &RequestRecord) {
    let series = SERIES.get(record);
    series.requests.increment(1);
    let usage = &record.usage;
    if usage.input_tokens > 0 {
        series.input.increment(usage.input_tokens);
    }
    if usage.output_tokens > 0 {
        series.output.increment(usage.output_tokens);
    }
    if usage.cached_input_tokens > 0 {
        series.cached.increment(usage.cached_input_tokens);
    }
    if usage.reasoning_tokens > 0 {
        series.reasoning.increment(usage.reasoning_tokens);
    }
    if record.cost > 0.0 {
        series.cost.increment(record.cost);
    }
    series.duration.record(ms_to_s(record.latency_ms));
    if let Some(ttft) = record.ttft_ms {
        series.ttft.record(ms_to_s(ttft));
    }
}

/// Count one failed upstream attempt.
pub(crate) fn upstream_error(provider: &str, err: &tandem_providers::Error) {
    metrics::counter!(UPSTREAM_ERRORS, "provider" => provider.to_owned(), "kind" => error_kind(err))
        .increment(1);
}

/// Count one failed call to the shared budget counters.
pub(crate) fn counters_unreachable() {
    metrics::counter!(COUNTER_ERRORS).increment(1);
}

/// Count one DLP finding (rule ids are configured, so bounded).
pub(crate) fn dlp_finding(direction: &'static str, rule: &str, action: &'static str) {
    metrics::counter!(DLP_FINDINGS, "direction" => direction, "rule" => rule.to_owned(), "action" => action)
        .increment(1);
}

/// Make these upstream model names labels of their own (the models of tiers and aliases).
pub(crate) fn allow_models<'a>(models: impl IntoIterator<Item = &'a str>) {
    let mut known = KNOWN_MODELS.write().unwrap_or_else(PoisonError::into_inner);
    for model in models {
        if !known.contains(model) {
            known.insert(model.to_owned());
        }
    }
}

/// The `kind` label of an upstream failure.
pub(crate) fn error_kind(err: &tandem_providers::Error) -> &'static str {
    use tandem_providers::Error as E;
    match err {
        E::Connect { .. } => "connect",
        E::Timeout { .. } => "timeout",
        E::Reset { .. } => "reset",
        E::Truncated { .. } => "truncated",
        E::Malformed { .. } => "malformed",
        E::Status { status, .. } if *status >= 500 => "http_5xx",
        E::Status { .. } => "http_4xx",
        E::Refused { .. } => "refused",
        E::Internal { .. } => "internal",
        E::Config { .. } => "config",
    }
}

fn ms_to_s(ms: u64) -> f64 {
    // Exact below 2^53 ms (285,000 years).
    ms as f64 / 1000.0
}

/// Upstream model names that are labels of their own; shared by every `Core` of the process.
static KNOWN_MODELS: LazyLock<RwLock<HashSet<String>>> = LazyLock::new(Default::default);

static SERIES: LazyLock<SeriesCache> = LazyLock::new(SeriesCache::default);

/// The metric handles of one label set.
struct Series {
    api: Box<str>,
    tier: Box<str>,
    provider: Box<str>,
    model: Box<str>,
    outcome: Outcome,
    status: u16,
    requests: Counter,
    input: Counter,
    output: Counter,
    cached: Counter,
    reasoning: Counter,
    cost: Gauge,
    duration: Histogram,
    ttft: Histogram,
}

/// The labels of a record, borrowed.
#[derive(Clone, Copy)]
struct Labels<'a> {
    api: &'a str,
    tier: &'a str,
    provider: &'a str,
    model: &'a str,
    outcome: Outcome,
    status: u16,
}

impl Labels<'_> {
    fn matches(&self, series: &Series) -> bool {
        self.status == series.status
            && self.outcome == series.outcome
            && self.model == &*series.model
            && self.tier == &*series.tier
            && self.provider == &*series.provider
            && self.api == &*series.api
    }
}

/// Series by label hash; label sets are bounded (see the module docs), so this never needs evicting.
#[derive(Default)]
struct SeriesCache {
    hasher: RandomState,
    map: RwLock<HashMap<u64, Vec<Arc<Series>>>>,
}

impl SeriesCache {
    fn get(&self, record: &RequestRecord) -> Arc<Series> {
        let labels = Labels {
            api: &record.api,
            tier: record.tier.as_deref().unwrap_or(""),
            provider: &record.provider,
            model: &record.upstream_model,
            outcome: record.outcome,
            status: record.status,
        };
        let hash = self.hash(&labels);
        if let Some(series) = self.find(hash, &labels) {
            return series;
        }
        // Not seen as is: fold an unknown model into `other`, then look again or create.
        let known = labels.model.is_empty()
            || KNOWN_MODELS
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(labels.model);
        let labels = Labels {
            model: if known { labels.model } else { OTHER },
            ..labels
        };
        let hash = self.hash(&labels);
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let bucket = map.entry(hash).or_default();
        if let Some(series) = bucket.iter().find(|s| labels.matches(s)) {
            return Arc::clone(series);
        }
        let series = Arc::new(Series::new(&labels));
        bucket.push(Arc::clone(&series));
        series
    }

    fn find(&self, hash: u64, labels: &Labels<'_>) -> Option<Arc<Series>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(&hash)?
            .iter()
            .find(|s| labels.matches(s))
            .map(Arc::clone)
    }

    fn hash(&self, labels: &Labels<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        labels.api.hash(&mut h);
        labels.tier.hash(&mut h);
        labels.provider.hash(&mut h);
        labels.model.hash(&mut h);
        labels.outcome.as_str().hash(&mut h);
        labels.status.hash(&mut h);
        h.finish()
    }
}

impl Series {
    fn new(labels: &Labels<'_>) -> Series {
        let api = labels.api.to_owned();
        let tier = labels.tier.to_owned();
        let model = labels.model.to_owned();
        let tokens = |direction: &'static str| metrics::counter!(TOKENS, "direction" => direction, "tier" => tier.clone(), "model" => model.clone());
        let latency = |name: &'static str| metrics::histogram!(name, "api" => api.clone(), "tier" => tier.clone(), "model" => model.clone());
        Series {
            requests: metrics::counter!(
                REQUESTS,
                "api" => api.clone(),
                "tier" => tier.clone(),
                "provider" => labels.provider.to_owned(),
                "model" => model.clone(),
                "outcome" => labels.outcome.as_str(),
                "status" => labels.status.to_string(),
            ),
            input: tokens("input"),
            output: tokens("output"),
            cached: tokens("cached_input"),
            reasoning: tokens("reasoning"),
            cost: metrics::gauge!(COST, "tier" => tier.clone(), "model" => model.clone()),
            duration: latency(DURATION),
            ttft: latency(TTFT),
            api: api.into(),
            tier: tier.into(),
            provider: labels.provider.into(),
            model: model.into(),
            outcome: labels.outcome,
            status: labels.status,
        }
    }
}
