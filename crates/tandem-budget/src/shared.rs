//! The same budgets and rate limits, with the counters kept by a service several replicas share.
//!
//! [`Ledger::shared_plan`] lists every counter a request would hold (the rule, the scope, the window)
//! with its limits, as [`Counter`]s under stable keys; a counter service (Redis, in `tandem-counters`)
//! checks them all and reserves the estimate in one atomic step, with the same arithmetic as the local
//! ledger: a budget admits iff `used + reserved + estimate <= limit`, a rate limit iff the sliding
//! count plus this request fits. A refusal comes back as the counter's index, which limit refused and
//! the two numbers read, and [`SharedPlan::refusal`] turns it into the [`Exceeded`] the local ledger
//! would have given. Settling replaces the estimate by the actual usage in the same counters.

use crate::exceeded::{BudgetRefusal, rate_refusal};
use crate::ledger::{sliding_retry_ms, usd_to_nanos};
use crate::time::MINUTE_MS;
use crate::{Estimate, Exceeded, ExceededKind, Ledger, Period, Scope};

/// What a counter limits, with its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limits {
    /// A budget's window: tokens and/or nano-dollars, used plus reserved.
    Budget {
        /// Token limit of the window.
        max_tokens: Option<u64>,
        /// Cost limit of the window, in nano-dollars.
        max_nanos: Option<u64>,
    },
    /// A rate limit's current minute (the previous minute is [`Counter::previous`]).
    Rate {
        /// Requests per minute.
        max_requests: Option<u64>,
        /// Tokens per minute.
        max_tokens: Option<u64>,
        /// Milliseconds into the current minute.
        elapsed_ms: i64,
    },
}

/// One counter a request holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Stable key: `b:{rule}:{scope}:{window start}` or `r:{rule}:{scope}:{minute start}`.
    pub key: String,
    /// For rate limits, the previous minute's key (read, never written).
    pub previous: Option<String>,
    /// The limits to check.
    pub limits: Limits,
    /// When the counter may be forgotten (Unix ms): a budget window's end plus one more window, so the
    /// previous window can still be read; a rate minute's end plus one more minute.
    pub expire_at_ms: i64,
    rule: String,
    scope: Scope,
    period: Option<Period>,
    window_end_ms: i64,
}

/// Every counter a request holds, and the amounts it reserves in each.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedPlan {
    /// Budgets in configuration order, then rate limits; one per matching rule and scope.
    pub counters: Vec<Counter>,
    /// Tokens reserved in every counter.
    pub tokens: u64,
    /// Nano-dollars reserved in every budget counter.
    pub nanos: u64,
    /// When the plan was made (Unix ms).
    pub now_ms: i64,
}

impl SharedPlan {
    /// The refusal the local ledger would give when counter `index` refused with `kind`, having read
    /// `a` and `b`: for budgets the used and reserved amounts, for rate limits the previous and current
    /// minute's counts. `None` when the index or kind does not fit the plan.
    pub fn refusal(&self, index: usize, kind: ExceededKind, a: u64, b: u64) -> Option<Exceeded> {
        let counter = self.counters.get(index)?;
        let scope = counter.scope.to_string();
        match (&counter.limits, kind) {
            (
                Limits::Budget {
                    max_tokens,
                    max_nanos,
                },
                ExceededKind::Tokens | ExceededKind::Cost,
            ) => {
                let (limit, need) = match kind {
                    ExceededKind::Tokens => ((*max_tokens)?, self.tokens),
                    _ => ((*max_nanos)?, self.nanos),
                };
                Some(
                    BudgetRefusal {
                        rule: &counter.rule,
                        scope,
                        kind,
                        period: counter.period?,
                        used: a,
                        reserved: b,
                        need,
                        limit,
                        window_end_ms: counter.window_end_ms,
                        now_ms: self.now_ms,
                    }
                    .into_exceeded(),
                )
            }
            (
                Limits::Rate {
                    max_requests,
                    max_tokens,
                    elapsed_ms,
                },
                ExceededKind::Requests | ExceededKind::TokensPerMinute,
            ) => {
                let (limit, need) = match kind {
                    ExceededKind::Requests => ((*max_requests)?, 1),
                    _ => ((*max_tokens)?, self.tokens),
                };
                let retry = sliding_retry_ms(a, b, need, limit, *elapsed_ms);
                Some(rate_refusal(&counter.rule, scope, kind, limit, need, retry))
            }
            _ => None,
        }
    }
}

impl Ledger {
    /// The counters a request carrying `scopes` would hold for `estimate` at `now_ms`, for a shared
    /// counter service; the local counters are not touched.
    pub fn shared_plan(&self, scopes: &[Scope], estimate: &Estimate, now_ms: i64) -> SharedPlan {
        let mut counters: Vec<Counter> = Vec::new();
        for budget in self.budget_rules() {
            let period = budget.period;
            let start = period.window_start(now_ms);
            let end = period.window_end(start);
            for scope in scopes.iter().filter(|s| budget.applies_to.matches(s)) {
                let key = format!("b:{}:{scope}:{start}", budget.name);
                if counters.iter().any(|c| c.key == key) {
                    continue;
                }
                counters.push(Counter {
                    key,
                    previous: None,
                    limits: Limits::Budget {
                        max_tokens: budget.max_tokens,
                        max_nanos: budget.max_cost_usd.map(usd_to_nanos),
                    },
                    expire_at_ms: end.saturating_add(end.saturating_sub(start)),
                    rule: budget.name.clone(),
                    scope: scope.clone(),
                    period: Some(period),
                    window_end_ms: end,
                });
            }
        }
        let minute = now_ms.div_euclid(MINUTE_MS).saturating_mul(MINUTE_MS);
        for rate in self.rate_rules() {
            for scope in scopes.iter().filter(|s| rate.applies_to.matches(s)) {
                let key = format!("r:{}:{scope}:{minute}", rate.name);
                if counters.iter().any(|c| c.key == key) {
                    continue;
                }
                counters.push(Counter {
                    previous: Some(format!(
                        "r:{}:{scope}:{}",
                        rate.name,
                        minute.saturating_sub(MINUTE_MS)
                    )),
                    key,
                    limits: Limits::Rate {
                        max_requests: rate.requests_per_minute.map(u64::from),
                        max_tokens: rate.tokens_per_minute,
                        elapsed_ms: now_ms.saturating_sub(minute).clamp(0, MINUTE_MS - 1),
                    },
                    expire_at_ms: minute.saturating_add(2 * MINUTE_MS),
                    rule: rate.name.clone(),
                    scope: scope.clone(),
                    period: None,
                    window_end_ms: minute.saturating_add(MINUTE_MS),
                });
            }
        }
        SharedPlan {
            counters,
            tokens: estimate.tokens(),
            nanos: usd_to_nanos(estimate.cost_usd),
            now_ms,
        }
    }
}

/// US dollars as the nano-dollars counters hold, rounded to the nearest one.
pub fn nanos(usd: f64) -> u64 {
    usd_to_nanos(usd)
}
