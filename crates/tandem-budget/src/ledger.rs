//! The ledger: every budget and rate-limit counter behind one mutex, with reserve-then-settle
//! accounting so that concurrent requests cannot jointly overspend.
//!
//! A request first [`Ledger::reserve`]s its [`Estimate`] against every rule that matches one of its
//! scopes, all or nothing, under the lock; after the upstream call it [`Ledger::settle`]s the actual
//! usage, which replaces the estimate in the window the reservation was made in.
//!
//! Money is kept in nano-dollars (`u64`, 10⁻⁹ USD) so that reserving and releasing the same estimate
//! cancel exactly; `f64` amounts are converted once, rounding to the nearest nano-dollar.
//!
//! Rate limits use a sliding window approximated from two fixed minutes (the current minute aligned to
//! the epoch, and the one before it): the count over the last 60 s is estimated as
//! `previous × (60 s − elapsed) / 60 s + current`, the approach of Cloudflare's and nginx's limiters.
//! It needs two counters per scope, and it is exact when traffic is even across the previous minute.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::exceeded::{BudgetRefusal, rate_refusal};
use crate::rule::validate;
use crate::time::MINUTE_MS;
use crate::{BudgetRule, Exceeded, ExceededKind, Period, Prices, RateRule, Result, Scope};

#[cfg(test)]
mod tests;

/// What a request may use at most, reserved before the upstream call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Prompt tokens, as counted or estimated by the gateway.
    pub input_tokens: u64,
    /// The output reserve: the request's max output tokens, or a configured default such as
    /// [`Estimate::DEFAULT_OUTPUT_RESERVE`].
    pub output_tokens: u64,
    /// The most the request may cost, usually [`Prices::estimate`].
    pub cost_usd: f64,
}

impl Estimate {
    /// A reasonable output reserve for requests that set no max output tokens.
    pub const DEFAULT_OUTPUT_RESERVE: u64 = 4096;

    /// The estimate for `input_tokens` of prompt and up to `output_tokens` of output on `backend`.
    pub fn priced(
        prices: &Prices,
        backend: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Estimate {
        Estimate {
            input_tokens,
            output_tokens,
            cost_usd: prices.estimate(backend, input_tokens, output_tokens),
        }
    }

    /// Input plus output tokens.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// The length of the window a [`UsageRow`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// A budget's UTC day.
    Day,
    /// A budget's UTC month.
    Month,
    /// A rate limit's sliding 60 seconds.
    Minute,
}

/// One rule's counters for one scope in the current window, for the admin API and `tandem budgets`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageRow {
    /// The rule's name.
    pub rule: String,
    /// The scope, e.g. `user:alice`.
    pub scope: String,
    /// Day, month or minute.
    pub window: WindowKind,
    /// Start of the window (Unix ms); for rate limits, 60 s before `now_ms`.
    pub window_start_ms: i64,
    /// End of the window: when a budget resets; for rate limits, `now_ms`.
    pub window_end_ms: i64,
    /// Requests admitted in the window (for rate limits, the sliding estimate, rounded up).
    pub requests: u64,
    /// Settled tokens (for rate limits, the sliding estimate, in-flight estimates included).
    pub used_tokens: u64,
    /// Tokens held by requests in flight (always 0 for rate limits, whose `used_tokens` include them).
    pub reserved_tokens: u64,
    /// Settled cost in US dollars (0 for rate limits).
    pub used_cost_usd: f64,
    /// Cost held by requests in flight (0 for rate limits).
    pub reserved_cost_usd: f64,
    /// The rule's token limit for this window, if any.
    pub max_tokens: Option<u64>,
    /// The rule's cost limit, if any.
    pub max_cost_usd: Option<f64>,
    /// The rule's request limit, if any (rate limits only).
    pub max_requests: Option<u64>,
}

/// The settled spend of one budget for one scope in one window, for persistence.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersistedUsage {
    /// The budget's name.
    pub rule: String,
    /// The scope, e.g. `team:payments`.
    pub scope: String,
    /// Start of the window (Unix ms, a UTC midnight or first of the month).
    pub window_start_ms: i64,
    /// Requests admitted.
    pub requests: u64,
    /// Settled tokens.
    pub tokens: u64,
    /// Settled cost in nano-dollars (10⁻⁹ USD), exact.
    pub cost_nanos: u64,
}

/// All budget and rate-limit state. Cloning is cheap and shares the state.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("budgets", &self.inner.budgets.len())
            .field("rates", &self.inner.rates.len())
            .finish_non_exhaustive()
    }
}

/// A held estimate. Settle it exactly once with [`Ledger::settle`].
///
/// Dropping it unsettled (a bug, or a panic unwinding through the request) charges the full estimate
/// at the time it was reserved: fail safe, the ledger may overcharge but never undercharges.
#[must_use = "a reservation must be settled with the actual usage; dropping it charges the full estimate"]
pub struct Reservation {
    /// `None` once settled.
    inner: Option<Arc<Inner>>,
    budget_holds: Vec<BudgetHold>,
    rate_holds: Vec<RateHold>,
    tokens: u64,
    nanos: u64,
    reserved_at_ms: i64,
}

impl Reservation {
    /// The tokens held against every matching rule.
    pub fn estimate_tokens(&self) -> u64 {
        self.tokens
    }

    /// The cost held against every matching budget, in US dollars.
    pub fn estimate_cost_usd(&self) -> f64 {
        nanos_to_usd(self.nanos)
    }

    /// When the reservation was made (Unix ms): the windows it charges.
    pub fn reserved_at_ms(&self) -> i64 {
        self.reserved_at_ms
    }

    /// How many budget and rate-limit counters hold this reservation.
    pub fn holds(&self) -> usize {
        self.budget_holds.len() + self.rate_holds.len()
    }

    fn finish(&mut self, tokens: u64, nanos: u64, now_ms: i64) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut state = inner.lock();
        for hold in &self.budget_holds {
            let bucket = &mut state.budget_buckets[hold.bucket];
            let period = inner.budgets[bucket.rule].rule.period;
            if let Some(w) = bucket
                .windows
                .iter_mut()
                .find(|w| w.start == hold.window_start)
            {
                w.reserved_tokens = w.reserved_tokens.saturating_sub(self.tokens);
                w.reserved_nanos = w.reserved_nanos.saturating_sub(self.nanos);
                w.in_flight = w.in_flight.saturating_sub(1);
                w.used_tokens = w.used_tokens.saturating_add(tokens);
                w.used_nanos = w.used_nanos.saturating_add(nanos);
            }
            bucket.prune(period, period.window_start(now_ms));
        }
        for hold in &self.rate_holds {
            let bucket = &mut state.rate_buckets[hold.bucket];
            bucket.roll(now_ms);
            let counter = if hold.minute == bucket.minute {
                &mut bucket.tokens
            } else if hold.minute == bucket.minute.saturating_sub(MINUTE_MS) {
                &mut bucket.prev_tokens
            } else {
                continue;
            };
            *counter = counter.saturating_sub(self.tokens).saturating_add(tokens);
        }
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("tokens", &self.tokens)
            .field("cost_usd", &self.estimate_cost_usd())
            .field("reserved_at_ms", &self.reserved_at_ms)
            .field("holds", &self.holds())
            .field("settled", &self.inner.is_none())
            .finish()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.finish(self.tokens, self.nanos, self.reserved_at_ms);
    }
}

impl Ledger {
    /// A ledger enforcing `budgets` and `rates`.
    ///
    /// Fails when a name is empty or used twice (budgets and rate limits share one namespace), a rule
    /// sets no limit, or a cost limit is negative or not finite.
    pub fn new(budgets: Vec<BudgetRule>, rates: Vec<RateRule>) -> Result<Ledger> {
        validate(&budgets, &rates)?;
        let budgets: Vec<Budget> = budgets
            .into_iter()
            .map(|rule| Budget {
                max_nanos: rule.max_cost_usd.map(usd_to_nanos),
                rule,
            })
            .collect();
        let state = State {
            budget_index: vec![HashMap::new(); budgets.len()],
            budget_buckets: Vec::new(),
            rate_index: vec![HashMap::new(); rates.len()],
            rate_buckets: Vec::new(),
        };
        Ok(Ledger {
            inner: Arc::new(Inner {
                budgets,
                rates,
                state: Mutex::new(state),
            }),
        })
    }

    /// The budgets, in configuration order.
    pub(crate) fn budget_rules(&self) -> impl Iterator<Item = &BudgetRule> {
        self.inner.budgets.iter().map(|b| &b.rule)
    }

    /// The rate limits, in configuration order.
    pub(crate) fn rate_rules(&self) -> impl Iterator<Item = &RateRule> {
        self.inner.rates.iter()
    }

    /// Whether any rule is configured (when none is, the gateway may skip the ledger).
    pub fn has_rules(&self) -> bool {
        !self.inner.budgets.is_empty() || !self.inner.rates.is_empty()
    }

    /// Admits a request carrying `scopes` if `estimate` fits every matching budget and rate limit, and
    /// holds it against all of them; otherwise changes nothing and names the first rule that refused
    /// (budgets in configuration order, then rate limits).
    ///
    /// A budget admits iff `used + reserved + estimate <= limit` in the window containing `now_ms`; a
    /// rate limit iff the sliding count plus this request (1 request, the estimate's tokens) fits.
    /// A rule applies once per matching scope; the same scope listed twice counts once.
    pub fn reserve(
        &self,
        scopes: &[Scope],
        estimate: &Estimate,
        now_ms: i64,
    ) -> Result<Reservation, Exceeded> {
        let inner = &*self.inner;
        let tokens = estimate.tokens();
        let nanos = usd_to_nanos(estimate.cost_usd);
        let mut state = inner.lock();
        let state = &mut *state;

        let mut budget_holds = Vec::new();
        for (i, budget) in inner.budgets.iter().enumerate() {
            for scope in scopes.iter().filter(|s| budget.rule.applies_to.matches(s)) {
                let b = state.budget_bucket(i, scope);
                if budget_holds.iter().any(|h: &BudgetHold| h.bucket == b) {
                    continue;
                }
                let period = budget.rule.period;
                let start = period.window_start(now_ms);
                let bucket = &mut state.budget_buckets[b];
                bucket.prune(period, start);
                let w = bucket
                    .windows
                    .iter()
                    .find(|w| w.start == start)
                    .copied()
                    .unwrap_or_default();
                let refusal = |kind, used, reserved, need, limit| {
                    BudgetRefusal {
                        rule: &budget.rule.name,
                        scope: scope.to_string(),
                        kind,
                        period,
                        used,
                        reserved,
                        need,
                        limit,
                        window_end_ms: period.window_end(start),
                        now_ms,
                    }
                    .into_exceeded()
                };
                if let Some(max) = budget.rule.max_tokens
                    && !fits(w.used_tokens, w.reserved_tokens, tokens, max)
                {
                    return Err(refusal(
                        ExceededKind::Tokens,
                        w.used_tokens,
                        w.reserved_tokens,
                        tokens,
                        max,
                    ));
                }
                if let Some(max) = budget.max_nanos
                    && !fits(w.used_nanos, w.reserved_nanos, nanos, max)
                {
                    return Err(refusal(
                        ExceededKind::Cost,
                        w.used_nanos,
                        w.reserved_nanos,
                        nanos,
                        max,
                    ));
                }
                budget_holds.push(BudgetHold {
                    bucket: b,
                    window_start: start,
                });
            }
        }

        let mut rate_holds = Vec::new();
        for (i, rate) in inner.rates.iter().enumerate() {
            for scope in scopes.iter().filter(|s| rate.applies_to.matches(s)) {
                let b = state.rate_bucket(i, scope);
                if rate_holds.iter().any(|h: &RateHold| h.bucket == b) {
                    continue;
                }
                let bucket = &mut state.rate_buckets[b];
                bucket.roll(now_ms);
                let elapsed = now_ms.saturating_sub(bucket.minute).clamp(0, MINUTE_MS - 1);
                if let Some(max) = rate.requests_per_minute.map(u64::from)
                    && !sliding_fits(bucket.prev_requests, bucket.requests, 1, max, elapsed)
                {
                    let retry =
                        sliding_retry_ms(bucket.prev_requests, bucket.requests, 1, max, elapsed);
                    return Err(rate_refusal(
                        &rate.name,
                        scope.to_string(),
                        ExceededKind::Requests,
                        max,
                        1,
                        retry,
                    ));
                }
                if let Some(max) = rate.tokens_per_minute
                    && !sliding_fits(bucket.prev_tokens, bucket.tokens, tokens, max, elapsed)
                {
                    let retry =
                        sliding_retry_ms(bucket.prev_tokens, bucket.tokens, tokens, max, elapsed);
                    let kind = ExceededKind::TokensPerMinute;
                    return Err(rate_refusal(
                        &rate.name,
                        scope.to_string(),
                        kind,
                        max,
                        tokens,
                        retry,
                    ));
                }
                rate_holds.push(RateHold {
                    bucket: b,
                    minute: bucket.minute,
                });
            }
        }

        // Everything fits: hold the estimate everywhere.
        for hold in &budget_holds {
            let w = state.budget_buckets[hold.bucket].window_mut(hold.window_start);
            w.requests = w.requests.saturating_add(1);
            w.reserved_tokens = w.reserved_tokens.saturating_add(tokens);
            w.reserved_nanos = w.reserved_nanos.saturating_add(nanos);
            w.in_flight = w.in_flight.saturating_add(1);
        }
        for hold in &rate_holds {
            let bucket = &mut state.rate_buckets[hold.bucket];
            bucket.requests = bucket.requests.saturating_add(1);
            bucket.tokens = bucket.tokens.saturating_add(tokens);
        }
        Ok(Reservation {
            inner: Some(Arc::clone(&self.inner)),
            budget_holds,
            rate_holds,
            tokens,
            nanos,
            reserved_at_ms: now_ms,
        })
    }

    /// Replaces the reservation's estimate by the actual usage in every counter it holds, in the
    /// windows it was reserved in. The actual may be more or less than the estimate; for a stream cut
    /// off by the client, pass what was streamed.
    pub fn settle(
        &self,
        mut reservation: Reservation,
        actual_tokens: u64,
        actual_cost_usd: f64,
        now_ms: i64,
    ) {
        reservation.finish(actual_tokens, usd_to_nanos(actual_cost_usd), now_ms);
    }

    /// Every rule's counters for every scope active in the window containing `now_ms`, in
    /// configuration order (budgets, then rate limits) and by scope.
    pub fn usage(&self, now_ms: i64) -> Vec<UsageRow> {
        let inner = &*self.inner;
        let mut state = inner.lock();
        let mut rows = Vec::new();
        for bucket in &state.budget_buckets {
            let budget = &inner.budgets[bucket.rule];
            let period = budget.rule.period;
            let start = period.window_start(now_ms);
            let Some(w) = bucket.windows.iter().find(|w| w.start == start) else {
                continue;
            };
            rows.push((
                bucket.rule,
                UsageRow {
                    rule: budget.rule.name.clone(),
                    scope: bucket.scope.to_string(),
                    window: match period {
                        Period::Day => WindowKind::Day,
                        Period::Month => WindowKind::Month,
                    },
                    window_start_ms: start,
                    window_end_ms: period.window_end(start),
                    requests: w.requests,
                    used_tokens: w.used_tokens,
                    reserved_tokens: w.reserved_tokens,
                    used_cost_usd: nanos_to_usd(w.used_nanos),
                    reserved_cost_usd: nanos_to_usd(w.reserved_nanos),
                    max_tokens: budget.rule.max_tokens,
                    max_cost_usd: budget.rule.max_cost_usd,
                    max_requests: None,
                },
            ));
        }
        for bucket in &mut state.rate_buckets {
            bucket.roll(now_ms);
            let elapsed = now_ms.saturating_sub(bucket.minute).clamp(0, MINUTE_MS - 1);
            let requests = sliding_count(bucket.prev_requests, bucket.requests, elapsed);
            let tokens = sliding_count(bucket.prev_tokens, bucket.tokens, elapsed);
            if requests == 0 && tokens == 0 {
                continue;
            }
            let rate = &inner.rates[bucket.rule];
            rows.push((
                inner.budgets.len() + bucket.rule,
                UsageRow {
                    rule: rate.name.clone(),
                    scope: bucket.scope.to_string(),
                    window: WindowKind::Minute,
                    window_start_ms: now_ms.saturating_sub(MINUTE_MS),
                    window_end_ms: now_ms,
                    requests,
                    used_tokens: tokens,
                    reserved_tokens: 0,
                    used_cost_usd: 0.0,
                    reserved_cost_usd: 0.0,
                    max_tokens: rate.tokens_per_minute,
                    max_cost_usd: None,
                    max_requests: rate.requests_per_minute.map(u64::from),
                },
            ));
        }
        rows.sort_by(|(a, ra), (b, rb)| a.cmp(b).then_with(|| ra.scope.cmp(&rb.scope)));
        rows.into_iter().map(|(_, row)| row).collect()
    }

    /// The settled spend of every budget, scope and retained window (the current and previous
    /// window, and any window with requests still in flight), sorted by rule, scope and window.
    /// Reservations and rate-limit counters are not included.
    pub fn export(&self) -> Vec<PersistedUsage> {
        let inner = &*self.inner;
        let state = inner.lock();
        let mut rows: Vec<(usize, PersistedUsage)> = state
            .budget_buckets
            .iter()
            .flat_map(|bucket| {
                bucket
                    .windows
                    .iter()
                    .filter(|w| w.requests > 0 || w.used_tokens > 0 || w.used_nanos > 0)
                    .map(move |w| {
                        (
                            bucket.rule,
                            PersistedUsage {
                                rule: inner.budgets[bucket.rule].rule.name.clone(),
                                scope: bucket.scope.to_string(),
                                window_start_ms: w.start,
                                requests: w.requests,
                                tokens: w.used_tokens,
                                cost_nanos: w.used_nanos,
                            },
                        )
                    })
            })
            .collect();
        rows.sort_by(|(a, ra), (b, rb)| {
            a.cmp(b)
                .then_with(|| ra.scope.cmp(&rb.scope))
                .then(ra.window_start_ms.cmp(&rb.window_start_ms))
        });
        rows.into_iter().map(|(_, row)| row).collect()
    }

    /// Restores settled spend saved by [`Ledger::export`], typically at startup.
    ///
    /// Each counter becomes the larger of its current and its saved value, so importing twice, or
    /// after traffic, never lowers a spend. Rows whose rule no longer exists, whose scope does not
    /// parse or no longer matches the rule, or whose window does not start on the rule's period are
    /// skipped; windows already over are pruned when their scope is next used.
    pub fn import(&self, rows: Vec<PersistedUsage>) {
        let inner = &*self.inner;
        let mut state = inner.lock();
        for row in rows {
            let Some(i) = inner.budgets.iter().position(|b| b.rule.name == row.rule) else {
                continue;
            };
            let rule = &inner.budgets[i].rule;
            let Ok(scope) = Scope::parse(&row.scope) else {
                continue;
            };
            if !rule.applies_to.matches(&scope)
                || rule.period.window_start(row.window_start_ms) != row.window_start_ms
            {
                continue;
            }
            let b = state.budget_bucket(i, &scope);
            let w = state.budget_buckets[b].window_mut(row.window_start_ms);
            w.requests = w.requests.max(row.requests);
            w.used_tokens = w.used_tokens.max(row.tokens);
            w.used_nanos = w.used_nanos.max(row.cost_nanos);
        }
    }
}

struct Inner {
    budgets: Vec<Budget>,
    rates: Vec<RateRule>,
    state: Mutex<State>,
}

impl Inner {
    /// The state, also after a panic elsewhere poisoned the lock: no code in this crate panics while
    /// holding it, and every update keeps the counters consistent step by step.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
struct Budget {
    rule: BudgetRule,
    max_nanos: Option<u64>,
}

#[derive(Debug)]
struct State {
    /// Per budget rule, scope to index in `budget_buckets`.
    budget_index: Vec<HashMap<Scope, usize>>,
    budget_buckets: Vec<BudgetBucket>,
    /// Per rate rule, scope to index in `rate_buckets`.
    rate_index: Vec<HashMap<Scope, usize>>,
    rate_buckets: Vec<RateBucket>,
}

impl State {
    fn budget_bucket(&mut self, rule: usize, scope: &Scope) -> usize {
        if let Some(&b) = self.budget_index[rule].get(scope) {
            return b;
        }
        let b = self.budget_buckets.len();
        self.budget_buckets.push(BudgetBucket {
            rule,
            scope: scope.clone(),
            windows: Vec::new(),
        });
        self.budget_index[rule].insert(scope.clone(), b);
        b
    }

    fn rate_bucket(&mut self, rule: usize, scope: &Scope) -> usize {
        if let Some(&b) = self.rate_index[rule].get(scope) {
            return b;
        }
        let b = self.rate_buckets.len();
        self.rate_buckets.push(RateBucket {
            rule,
            scope: scope.clone(),
            minute: i64::MIN,
            requests: 0,
            tokens: 0,
            prev_requests: 0,
            prev_tokens: 0,
        });
        self.rate_index[rule].insert(scope.clone(), b);
        b
    }
}

/// One budget rule for one scope: its windows, oldest first (usually one or two).
#[derive(Debug)]
struct BudgetBucket {
    rule: usize,
    scope: Scope,
    windows: Vec<Window>,
}

impl BudgetBucket {
    /// Drops windows older than the one before `current_start`, unless requests reserved in them are
    /// still in flight. The previous window is kept so that an export after a rollover still sees the
    /// late settlements charged to it.
    fn prune(&mut self, period: Period, current_start: i64) {
        let keep_from = period.previous_start(current_start);
        self.windows
            .retain(|w| w.start >= keep_from || w.in_flight > 0);
    }

    fn window_mut(&mut self, start: i64) -> &mut Window {
        let i = match self.windows.binary_search_by_key(&start, |w| w.start) {
            Ok(i) => i,
            Err(i) => {
                self.windows.insert(
                    i,
                    Window {
                        start,
                        ..Window::default()
                    },
                );
                i
            }
        };
        &mut self.windows[i]
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Window {
    start: i64,
    requests: u64,
    used_tokens: u64,
    used_nanos: u64,
    reserved_tokens: u64,
    reserved_nanos: u64,
    in_flight: u64,
}

/// One rate rule for one scope: counts in the current minute and the one before.
#[derive(Debug)]
struct RateBucket {
    rule: usize,
    scope: Scope,
    /// Start of the current minute (aligned to the epoch).
    minute: i64,
    requests: u64,
    tokens: u64,
    prev_requests: u64,
    prev_tokens: u64,
}

impl RateBucket {
    /// Moves the counters forward to the minute containing `now_ms`. A `now_ms` older than the current
    /// minute (threads read the clock before taking the lock) leaves them as they are.
    fn roll(&mut self, now_ms: i64) {
        let minute = now_ms.div_euclid(MINUTE_MS).saturating_mul(MINUTE_MS);
        if minute <= self.minute {
            return;
        }
        (self.prev_requests, self.prev_tokens) = match minute.checked_sub(self.minute) {
            Some(MINUTE_MS) => (self.requests, self.tokens),
            _ => (0, 0),
        };
        self.requests = 0;
        self.tokens = 0;
        self.minute = minute;
    }
}

#[derive(Debug)]
struct BudgetHold {
    bucket: usize,
    window_start: i64,
}

#[derive(Debug)]
struct RateHold {
    bucket: usize,
    /// The minute whose counter holds the estimate.
    minute: i64,
}

/// `used + reserved + need <= limit`, without overflow.
fn fits(used: u64, reserved: u64, need: u64, limit: u64) -> bool {
    u128::from(used) + u128::from(reserved) + u128::from(need) <= u128::from(limit)
}

/// `prev × (W − elapsed) / W + cur + need <= limit`, exactly (W = 60 s).
fn sliding_fits(prev: u64, cur: u64, need: u64, limit: u64, elapsed: i64) -> bool {
    let w = MINUTE_MS as u128;
    let rest = (MINUTE_MS - elapsed) as u128;
    u128::from(prev) * rest + (u128::from(cur) + u128::from(need)) * w <= u128::from(limit) * w
}

/// The sliding count `prev × (W − elapsed) / W + cur`, rounded up.
fn sliding_count(prev: u64, cur: u64, elapsed: i64) -> u64 {
    let w = MINUTE_MS as u128;
    let weighted = (u128::from(prev) * (MINUTE_MS - elapsed) as u128).div_ceil(w);
    u64::try_from(weighted + u128::from(cur)).unwrap_or(u64::MAX)
}

/// How long until `need` more fits in the sliding window if nothing else arrives, in ms; `None` if it
/// never can (`need > limit`).
pub(crate) fn sliding_retry_ms(
    prev: u64,
    cur: u64,
    need: u64,
    limit: u64,
    elapsed: i64,
) -> Option<i64> {
    if need > limit {
        return None;
    }
    let w = MINUTE_MS as u128;
    // The earliest offset into a minute at which `p × (W − e) <= slack × W`, if any.
    let earliest = |p: u64, slack: u64| -> Option<i64> {
        if p == 0 {
            return Some(0);
        }
        let room = (u128::from(slack) * w / u128::from(p)).min(w);
        i64::try_from(w - room).ok().filter(|e| *e < MINUTE_MS)
    };
    // Still in this minute: the previous minute's weight fades.
    if let Some(slack) = limit.checked_sub(cur).and_then(|s| s.checked_sub(need))
        && let Some(e) = earliest(prev, slack)
    {
        return Some((e - elapsed).max(0));
    }
    // In the next minute this minute becomes the previous one; failing that, the one after is empty.
    let to_next = MINUTE_MS - elapsed;
    Some(to_next + earliest(cur, limit - need).unwrap_or(MINUTE_MS))
}

/// Rounds to the nearest nano-dollar. Negative and NaN amounts count as 0; `as` saturates, so amounts
/// beyond 18 billion dollars, infinity included, count as `u64::MAX`.
pub(crate) fn usd_to_nanos(usd: f64) -> u64 {
    (usd * 1e9).round() as u64
}

fn nanos_to_usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}
