//! Budgets and rate limits: counted in this process by the `tandem_budget::Ledger`, or, with Redis
//! configured, in counters every replica shares (`tandem_counters`), so limits hold across replicas.
//!
//! With shared counters, a Redis failure either refuses the requests a rule applies to (fail closed,
//! the default) or falls back to this process's ledger (fail open: across N replicas the spend during
//! the outage can reach N times a limit, and what was reserved in Redis before it failed stays reserved
//! until its window expires, which errs on the side of refusing).

use std::sync::Arc;

use tandem_budget::{Estimate, Ledger, Prices, Reservation, Scope, SharedPlan};
use tandem_counters::{RedisCounters, Verdict};

use crate::{Error, Result};

/// Counters shared by several replicas.
#[derive(Clone, Debug)]
pub struct SharedCounters {
    /// The Redis counters.
    pub counters: RedisCounters,
    /// On a Redis failure, count in this process instead of refusing.
    pub fail_open: bool,
}

/// Where budgets are counted.
#[derive(Debug)]
pub(crate) struct Budgets {
    ledger: Ledger,
    shared: Option<SharedCounters>,
}

/// An estimate held against every matching rule, to be settled with the actual usage.
#[derive(Debug)]
pub(crate) enum Hold {
    /// In this process's ledger.
    Local(Reservation),
    /// In the shared counters.
    Shared(SharedHold),
}

/// A reservation in the shared counters. Dropped unsettled, it is settled with its full estimate.
#[derive(Debug)]
pub(crate) struct SharedHold {
    counters: RedisCounters,
    plan: SharedPlan,
    settled: bool,
}

impl Budgets {
    pub(crate) fn new(ledger: Ledger, shared: Option<SharedCounters>) -> Budgets {
        Budgets { ledger, shared }
    }

    /// This process's ledger (the only one without shared counters).
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub(crate) fn has_rules(&self) -> bool {
        self.ledger.has_rules()
    }

    /// Holds `estimate` against every rule matching `scopes`, or refuses naming the first rule that
    /// has no room.
    pub(crate) async fn reserve(
        &self,
        scopes: &[Scope],
        estimate: &Estimate,
        now_ms: i64,
    ) -> Result<Hold> {
        let Some(shared) = &self.shared else {
            return self.reserve_locally(scopes, estimate, now_ms);
        };
        let plan = self.ledger.shared_plan(scopes, estimate, now_ms);
        match shared.counters.reserve(&plan).await {
            Ok(Verdict::Admitted) => Ok(Hold::Shared(SharedHold {
                counters: shared.counters.clone(),
                plan,
                settled: false,
            })),
            Ok(Verdict::Refused { index, kind, a, b }) => match plan.refusal(index, kind, a, b) {
                Some(exceeded) => Err(Error::Quota(exceeded)),
                None => Err(Error::Counters(tandem_counters::Error::Protocol(format!(
                    "refusal of counter {index} ({kind:?}) does not fit the plan"
                )))),
            },
            Err(err) if shared.fail_open => {
                tracing::warn!(error = %err, "shared budget counters unreachable; counting in this process (fail open)");
                crate::metrics::counters_unreachable();
                self.reserve_locally(scopes, estimate, now_ms)
            }
            Err(err) => {
                tracing::error!(error = %err, "shared budget counters unreachable; refusing (fail closed)");
                crate::metrics::counters_unreachable();
                Err(Error::Counters(err))
            }
        }
    }

    fn reserve_locally(&self, scopes: &[Scope], estimate: &Estimate, now_ms: i64) -> Result<Hold> {
        self.ledger
            .reserve(scopes, estimate, now_ms)
            .map(Hold::Local)
            .map_err(Error::Quota)
    }

    /// Replaces the estimate by what the answer used (priced on `backend`).
    pub(crate) fn settle(
        &self,
        hold: Hold,
        prices: &Prices,
        backend: &str,
        usage: &tandem_protocol::Usage,
        now_ms: i64,
    ) {
        let cost = prices.cost(backend, usage);
        match hold {
            Hold::Local(reservation) => {
                self.ledger
                    .settle(reservation, usage.total_tokens(), cost, now_ms);
            }
            Hold::Shared(mut hold) => {
                hold.settled = true;
                let (counters, plan) = (hold.counters.clone(), Arc::new(hold.plan.clone()));
                spawn_settle(
                    counters,
                    plan,
                    usage.total_tokens(),
                    tandem_budget::nanos(cost),
                );
            }
        }
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        if !self.settled {
            let (tokens, nanos) = (self.plan.tokens, self.plan.nanos);
            spawn_settle(
                self.counters.clone(),
                Arc::new(self.plan.clone()),
                tokens,
                nanos,
            );
        }
    }
}

/// Settles in the background: the answer never waits for it. Without a runtime (never on the server's
/// paths) or when Redis fails, the estimate stays reserved until the window expires.
fn spawn_settle(counters: RedisCounters, plan: Arc<SharedPlan>, tokens: u64, nanos: u64) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::error!("budget settlement skipped: no async runtime; the estimate stays reserved");
        return;
    };
    runtime.spawn(async move {
        if let Err(err) = counters.settle(&plan, tokens, nanos).await {
            crate::metrics::counters_unreachable();
            tracing::error!(error = %err, "budget settlement failed; the estimate stays reserved until the window ends");
        }
    });
}
