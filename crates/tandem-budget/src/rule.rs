//! The configured rules: budgets ([`BudgetRule`], per day or month) and rate limits ([`RateRule`], per
//! minute), in the shape `tandem.toml` writes them (`[[budgets]]` and `[[limits]]`).

use serde::{Deserialize, Serialize};

use crate::{Error, Period, Result, ScopePattern};

/// A token and/or cost allowance per scope and calendar period.
///
/// ```toml
/// [[budgets]]
/// name = "team-daily"
/// applies_to = "team:*"
/// period = "day"
/// max_tokens = 1000000
/// max_cost_usd = 50.0
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetRule {
    /// Unique among budgets and rate limits; named in refusals.
    pub name: String,
    /// `kind:*` for each scope of a kind, or one exact scope.
    pub applies_to: ScopePattern,
    /// When the allowance resets.
    pub period: Period,
    /// Input plus output tokens per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// US dollars per period, priced by [`crate::Prices`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

/// Requests and/or tokens per minute per scope.
///
/// ```toml
/// [[limits]]
/// name = "per-user-rpm"
/// applies_to = "user:*"
/// requests_per_minute = 60
/// tokens_per_minute = 200000
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    /// Unique among budgets and rate limits; named in refusals.
    pub name: String,
    /// `kind:*` for each scope of a kind, or one exact scope.
    pub applies_to: ScopePattern,
    /// Requests admitted per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Input plus output tokens per minute (estimates while in flight, actuals once settled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
}

/// Checks names (non-empty, unique across both lists) and limits (at least one, cost finite and not
/// negative).
pub(crate) fn validate(budgets: &[BudgetRule], rates: &[RateRule]) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    let all_names = budgets
        .iter()
        .map(|b| &b.name)
        .chain(rates.iter().map(|r| &r.name));
    for name in all_names {
        if name.trim().is_empty() {
            return Err(Error::EmptyName);
        }
        if !names.insert(name.as_str()) {
            return Err(Error::DuplicateRule(name.clone()));
        }
    }
    for b in budgets {
        if b.max_tokens.is_none() && b.max_cost_usd.is_none() {
            return Err(Error::NoLimit(b.name.clone()));
        }
        if let Some(cost) = b.max_cost_usd
            && !(cost.is_finite() && cost >= 0.0)
        {
            return Err(Error::InvalidLimit {
                rule: b.name.clone(),
                reason: "max_cost_usd must be finite and not negative",
            });
        }
    }
    for r in rates {
        if r.requests_per_minute.is_none() && r.tokens_per_minute.is_none() {
            return Err(Error::NoLimit(r.name.clone()));
        }
    }
    Ok(())
}
