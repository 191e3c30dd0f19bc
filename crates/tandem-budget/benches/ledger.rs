//! `reserve` + `settle` with five matching rules (three budgets, two rate limits), the per-request cost
//! of budgets in the gateway.
//!
//! Run with `cargo bench -p tandem-budget`; the target is well under 20 µs per request. Limits are set
//! high enough that nothing is refused, and the clock advances 1 ms per request so windows roll over.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup on fixed, valid rules; limits are set so that nothing is refused"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tandem_budget::{BudgetRule, Estimate, Ledger, Period, RateRule, Scope, ScopePattern};

fn pattern(s: &str) -> ScopePattern {
    ScopePattern::parse(s).unwrap()
}

fn ledger() -> Ledger {
    let budget = |name: &str, applies_to: &str, period, max_tokens, max_cost_usd| BudgetRule {
        name: name.to_owned(),
        applies_to: pattern(applies_to),
        period,
        max_tokens,
        max_cost_usd,
    };
    let rate = |name: &str, applies_to: &str, rpm, tpm| RateRule {
        name: name.to_owned(),
        applies_to: pattern(applies_to),
        requests_per_minute: rpm,
        tokens_per_minute: tpm,
    };
    Ledger::new(
        vec![
            budget(
                "user-daily",
                "user:*",
                Period::Day,
                Some(u64::MAX / 2),
                None,
            ),
            budget(
                "team-monthly",
                "team:*",
                Period::Month,
                Some(u64::MAX / 2),
                Some(1e9),
            ),
            budget("payments", "team:payments", Period::Day, None, Some(1e9)),
        ],
        vec![
            rate("user-rate", "user:*", Some(u32::MAX), Some(u64::MAX / 2)),
            rate("key-rate", "key:*", Some(u32::MAX), None),
        ],
    )
    .unwrap()
}

fn scopes(user: &str) -> Vec<Scope> {
    ["key:laptop", user, "team:payments", "project:web"]
        .iter()
        .map(|s| Scope::parse(s).unwrap())
        .collect()
}

fn reserve_settle(c: &mut Criterion) {
    let estimate = Estimate {
        input_tokens: 12_000,
        output_tokens: 4_096,
        cost_usd: 0.056_768,
    };
    let start = 1_795_953_600_000; // 2026-11-29T12:00:00Z

    let l = ledger();
    let alice = scopes("user:alice");
    let mut now = start;
    c.bench_function("reserve+settle, 5 rules", |b| {
        b.iter(|| {
            now += 1;
            let r = l
                .reserve(black_box(&alice), black_box(&estimate), now)
                .unwrap();
            l.settle(r, black_box(9_000), black_box(0.03), now);
        });
    });

    // The same with 10,000 users already known to the ledger.
    let l = ledger();
    for i in 0..10_000 {
        let r = l
            .reserve(&scopes(&format!("user:u{i}")), &estimate, start)
            .unwrap();
        l.settle(r, 9_000, 0.03, start);
    }
    let mut now = start;
    c.bench_function("reserve+settle, 5 rules, 10k users", |b| {
        b.iter(|| {
            now += 1;
            let r = l
                .reserve(black_box(&alice), black_box(&estimate), now)
                .unwrap();
            l.settle(r, black_box(9_000), black_box(0.03), now);
        });
    });

    let mut now = start;
    c.bench_function("usage, 10k users", |b| {
        b.iter(|| {
            now += 1;
            black_box(l.usage(now));
        });
    });
}

criterion_group!(benches, reserve_settle);
criterion_main!(benches);
