//! Tiers and targets: where a request may go, in which order, and which targets are healthy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tandem_providers::Provider;

use crate::breaker::{Breaker, BreakerConfig};

/// One target of a tier, as configured.
#[derive(Clone, Debug)]
pub struct TargetConfig {
    /// Provider name.
    pub provider: String,
    /// Upstream model name.
    pub model: String,
    /// Share of first attempts among the tier's healthy targets; 0 = fallback only.
    pub weight: u32,
    /// Extra attempts on this target after a retryable failure, before moving on.
    pub retries: u32,
    /// Limit on the time to the first token for this target (on top of the provider's own timeouts).
    pub first_token_timeout: Option<Duration>,
    /// Circuit breaker settings.
    pub breaker: BreakerConfig,
}

/// A tier, as configured.
#[derive(Clone, Debug)]
pub struct TierConfig {
    /// Tier name (`live`, `deep`, ...).
    pub name: String,
    /// Model names that select this tier (e.g. `tandem-live`).
    pub aliases: Vec<String>,
    /// Targets in fallback order.
    pub targets: Vec<TargetConfig>,
    /// Tier whose targets are tried when all of this tier's fail, if policy allows crossing tiers.
    pub fallback_tier: Option<String>,
}

/// A target ready to call.
pub(crate) struct Target {
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) model: String,
    pub(crate) weight: u32,
    pub(crate) retries: u32,
    pub(crate) first_token_timeout: Option<Duration>,
    pub(crate) breaker: Option<Breaker>,
    /// `provider/model`: the backend identity used for reasoning blobs, headers and records.
    pub(crate) backend: String,
}

impl Target {
    pub(crate) fn new(provider: Arc<dyn Provider>, config: &TargetConfig) -> Target {
        let backend = format!("{}/{}", provider.name(), config.model);
        Target {
            provider,
            model: config.model.clone(),
            weight: config.weight,
            retries: config.retries,
            first_token_timeout: config.first_token_timeout,
            breaker: Some(Breaker::new(config.breaker)),
            backend,
        }
    }

    /// A one-off target for a direct `provider/model` name: no retries, no breaker.
    pub(crate) fn direct(provider: Arc<dyn Provider>, model: &str) -> Target {
        let backend = format!("{}/{model}", provider.name());
        Target {
            provider,
            model: model.to_owned(),
            weight: 1,
            retries: 0,
            first_token_timeout: None,
            breaker: None,
            backend,
        }
    }

    pub(crate) fn try_acquire(&self, now: Instant) -> bool {
        self.breaker.as_ref().is_none_or(|b| b.try_acquire(now))
    }

    pub(crate) fn succeeded(&self) {
        if let Some(b) = &self.breaker {
            b.success();
        }
    }

    pub(crate) fn failed(&self, now: Instant) {
        if let Some(b) = &self.breaker {
            b.failure(now);
        }
    }

    pub(crate) fn healthy(&self, now: Instant) -> bool {
        self.breaker
            .as_ref()
            .is_none_or(|b| b.health(now) != crate::breaker::Health::Open)
    }
}

/// A tier ready to route to.
pub(crate) struct Tier {
    pub(crate) name: String,
    pub(crate) targets: Vec<Arc<Target>>,
    pub(crate) fallback: Option<usize>,
    /// Rotates first attempts across weighted targets without a random number generator.
    pub(crate) turn: AtomicU64,
}

impl Tier {
    /// Targets in attempt order: a weighted pick among the healthy ones first, then the rest in config order.
    pub(crate) fn order(&self, now: Instant) -> Vec<Arc<Target>> {
        let healthy: Vec<&Arc<Target>> = self
            .targets
            .iter()
            .filter(|t| t.weight > 0 && t.healthy(now))
            .collect();
        let total: u64 = healthy.iter().map(|t| u64::from(t.weight)).sum();
        let first = if total == 0 {
            None
        } else {
            let mut at = self.turn.fetch_add(1, Ordering::Relaxed) % total;
            healthy
                .iter()
                .find(|t| {
                    let w = u64::from(t.weight);
                    if at < w {
                        true
                    } else {
                        at -= w;
                        false
                    }
                })
                .map(|t| Arc::clone(t))
        };
        let mut order = Vec::with_capacity(self.targets.len());
        if let Some(first) = &first {
            order.push(Arc::clone(first));
        }
        for t in &self.targets {
            if first.as_ref().is_none_or(|f| !Arc::ptr_eq(f, t)) {
                order.push(Arc::clone(t));
            }
        }
        order
    }
}

/// One upstream attempt, for the routing record.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// `provider/model`.
    pub target: String,
    /// Why it failed; `None` for the attempt that answered.
    pub error: Option<String>,
}

/// How a request was routed: sent as `x-tandem-*` headers and stored with the exchange's record.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteInfo {
    /// The tier, when the request went through one.
    pub tier: Option<String>,
    /// `provider/model` that answered (or was tried last).
    pub target: String,
    /// Why this tier: `alias`, `header`, `rule:<name> …`, `session:sticky`, `escalate:<signal>`, `model`.
    pub reason: String,
    /// The router rule that decided, if any.
    pub rule: Option<String>,
    /// The router's P(deep), if it ran.
    pub score: Option<f64>,
    /// The router's task class (`rename`, `fix`, …), if it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Every upstream attempt in order.
    pub attempts: Vec<Attempt>,
    /// Every policy evaluation in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<crate::PolicyCheck>,
}
