//! Builders shared by the integration tests.

use tandem_budget::{BudgetRule, Estimate, Ledger, Period, RateRule, Scope, ScopePattern};

/// 2026-11-29T00:00:00Z.
pub const NOV_29: i64 = 1_795_910_400_000;
/// 2026-11-29T12:00:00Z.
pub const NOON: i64 = NOV_29 + 12 * HOUR;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

pub fn scopes(list: &[&str]) -> Vec<Scope> {
    list.iter().map(|s| Scope::parse(s).unwrap()).collect()
}

/// The usual request scopes: key, user, team and project.
pub fn alice() -> Vec<Scope> {
    scopes(&["key:laptop", "user:alice", "team:payments", "project:web"])
}

pub fn est(tokens: u64, cost_usd: f64) -> Estimate {
    Estimate {
        input_tokens: tokens / 2,
        output_tokens: tokens - tokens / 2,
        cost_usd,
    }
}

pub fn budget(
    name: &str,
    applies_to: &str,
    period: Period,
    max_tokens: Option<u64>,
    max_cost_usd: Option<f64>,
) -> BudgetRule {
    BudgetRule {
        name: name.to_owned(),
        applies_to: ScopePattern::parse(applies_to).unwrap(),
        period,
        max_tokens,
        max_cost_usd,
    }
}

pub fn tokens_per_day(name: &str, applies_to: &str, max: u64) -> BudgetRule {
    budget(name, applies_to, Period::Day, Some(max), None)
}

pub fn rate(name: &str, applies_to: &str, rpm: Option<u32>, tpm: Option<u64>) -> RateRule {
    RateRule {
        name: name.to_owned(),
        applies_to: ScopePattern::parse(applies_to).unwrap(),
        requests_per_minute: rpm,
        tokens_per_minute: tpm,
    }
}

pub fn ledger(budgets: Vec<BudgetRule>, rates: Vec<RateRule>) -> Ledger {
    Ledger::new(budgets, rates).unwrap()
}

/// `(used_tokens, reserved_tokens)` of `rule` for `scope` now.
pub fn tokens_of(ledger: &Ledger, rule: &str, scope: &str, now_ms: i64) -> (u64, u64) {
    ledger
        .usage(now_ms)
        .into_iter()
        .find(|r| r.rule == rule && r.scope == scope)
        .map_or((0, 0), |r| (r.used_tokens, r.reserved_tokens))
}
