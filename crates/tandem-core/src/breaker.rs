//! A per-target circuit breaker: closed, open for a cooldown after consecutive failures, then half-open.
//!
//! Written here rather than taken from a crate because it is a dozen lines of state that must share the
//! gateway's notion of "failure" (retryable upstream errors only) and take time as a parameter for tests.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open before one probe is let through.
    pub cooldown: Duration,
}

#[derive(Debug, Default)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    /// While a probe is out: when another may be sent if it never reports back (e.g. its request was dropped).
    probe_deadline: Option<Instant>,
}

/// The breaker of one target.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

/// What the breaker says about a target right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Calls go through.
    Closed,
    /// Cooling down: skip this target.
    Open,
    /// The cooldown is over: one probe may go through.
    HalfOpen,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state at `now`, without changing it.
    pub fn health(&self, now: Instant) -> Health {
        let state = self.lock();
        match state.open_until {
            None => Health::Closed,
            Some(until) if now < until => Health::Open,
            Some(_) if state.probe_deadline.is_some_and(|d| now < d) => Health::Open,
            Some(_) => Health::HalfOpen,
        }
    }

    /// Ask to send a call at `now`; a half-open breaker lets exactly one probe through.
    pub fn try_acquire(&self, now: Instant) -> bool {
        let mut state = self.lock();
        match state.open_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) if state.probe_deadline.is_some_and(|d| now < d) => false,
            Some(_) => {
                state.probe_deadline = Some(now + self.config.cooldown);
                true
            }
        }
    }

    /// The call succeeded: close the breaker.
    pub fn success(&self) {
        let mut state = self.lock();
        *state = State::default();
    }

    /// The call failed at `now`: count it, and open (or re-open after a failed probe) when the limit is hit.
    pub fn failure(&self, now: Instant) {
        let mut state = self.lock();
        state.consecutive = state.consecutive.saturating_add(1);
        if state.probe_deadline.is_some() || state.consecutive >= self.config.failures.max(1) {
            state.open_until = Some(now + self.config.cooldown);
            state.probe_deadline = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::breaker::{Breaker, BreakerConfig, Health};

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_one_probe() {
        let b = Breaker::new(BreakerConfig {
            failures: 2,
            cooldown: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        assert!(b.try_acquire(t0));
        b.failure(t0);
        assert_eq!(b.health(t0), Health::Closed);
        b.failure(t0);
        assert_eq!(b.health(t0), Health::Open);
        assert!(!b.try_acquire(t0 + Duration::from_secs(5)));
        let later = t0 + Duration::from_secs(11);
        assert_eq!(b.health(later), Health::HalfOpen);
        assert!(b.try_acquire(later));
        assert!(!b.try_acquire(later), "only one probe at a time");
        b.failure(later);
        assert_eq!(
            b.health(later + Duration::from_secs(1)),
            Health::Open,
            "failed probe re-opens"
        );
        let again = later + Duration::from_secs(11);
        assert!(b.try_acquire(again));
        b.success();
        assert_eq!(b.health(again), Health::Closed);
        assert!(b.try_acquire(again) && b.try_acquire(again));
    }

    #[test]
    fn a_probe_that_never_reports_back_does_not_wedge_the_breaker() {
        let b = Breaker::new(BreakerConfig {
            failures: 1,
            cooldown: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        b.failure(t0);
        let probe = t0 + Duration::from_secs(11);
        assert!(b.try_acquire(probe));
        assert!(!b.try_acquire(probe + Duration::from_secs(5)));
        assert!(b.try_acquire(probe + Duration::from_secs(11)));
    }

    #[test]
    fn success_resets_the_count() {
        let b = Breaker::new(BreakerConfig {
            failures: 2,
            cooldown: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        b.failure(t0);
        b.success();
        b.failure(t0);
        assert_eq!(b.health(t0), Health::Closed);
    }
}
