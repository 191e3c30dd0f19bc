//! 200 threads against a small budget: the admitted count is exact and the spend bounded.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};

use pretty_assertions::assert_eq;
use tandem_budget::{Ledger, Period, Reservation};

use crate::support::{NOON, alice, budget, est, ledger, rate, tokens_of, tokens_per_day};

const THREADS: usize = 200;

/// Every thread reserves at once; returns the admitted reservations.
fn reserve_all(l: &Ledger, tokens: u64, cost: f64) -> Vec<Reservation> {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    l.reserve(&alice(), &est(tokens, cost), NOON).ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn actuals_equal_to_estimates_never_overspend_and_admit_exactly_what_fits() {
    let l = ledger(
        vec![
            tokens_per_day("tokens", "user:*", 10_050),
            budget("cost", "team:*", Period::Month, None, Some(1.0)),
        ],
        vec![],
    );
    // 100 tokens and $0.008 each: the token budget fits 100 requests, the cost budget 125.
    let admitted = reserve_all(&l, 100, 0.008);
    assert_eq!(admitted.len(), 100);
    std::thread::scope(|s| {
        for r in admitted {
            let l = &l;
            s.spawn(move || l.settle(r, 100, 0.008, NOON));
        }
    });
    assert_eq!(tokens_of(&l, "tokens", "user:alice", NOON), (10_000, 0));
    let cost = l
        .usage(NOON)
        .into_iter()
        .find(|r| r.rule == "cost")
        .unwrap();
    assert_eq!(
        (cost.used_cost_usd, cost.reserved_cost_usd, cost.requests),
        (0.8, 0.0, 100)
    );
}

#[test]
fn reserving_and_settling_interleaved_admits_exactly_what_fits() {
    let l = ledger(
        vec![tokens_per_day("tokens", "user:*", 1_000)],
        vec![rate("rpm", "user:*", Some(150), None)],
    );
    let admitted = AtomicU64::new(0);
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                if let Ok(r) = l.reserve(&alice(), &est(7, 0.0), NOON) {
                    admitted.fetch_add(1, Ordering::Relaxed);
                    l.settle(r, 7, 0.0, NOON);
                }
            });
        }
    });
    // 142 × 7 = 994 <= 1,000 < 143 × 7; the rate limit (150) does not bind.
    assert_eq!(admitted.load(Ordering::Relaxed), 142);
    assert_eq!(tokens_of(&l, "tokens", "user:alice", NOON), (994, 0));
}

#[test]
fn actuals_above_estimates_overspend_by_at_most_the_excess_of_requests_in_flight() {
    let l = ledger(vec![tokens_per_day("tokens", "user:*", 10_000)], vec![]);
    let admitted = reserve_all(&l, 100, 0.0);
    assert_eq!(admitted.len(), 100);
    // Every request used one token more than estimated: the total excess is one reservation (100).
    std::thread::scope(|s| {
        for r in admitted {
            let l = &l;
            s.spawn(move || l.settle(r, 101, 0.0, NOON));
        }
    });
    let (used, reserved) = tokens_of(&l, "tokens", "user:alice", NOON);
    assert_eq!((used, reserved), (10_100, 0));
    assert!(used <= 10_000 + 100);
    // The budget is spent: the next request is refused.
    assert!(l.reserve(&alice(), &est(1, 0.0), NOON).is_err());
}

#[test]
fn the_ledger_is_shared_and_reservations_move_between_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    fn movable<T: Send>() {}
    shared::<Ledger>();
    movable::<Reservation>();
}
