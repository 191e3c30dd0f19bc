//! The configuration shape: `[[budgets]]`, `[[limits]]` and `[prices."provider/model"]` deserialize
//! strictly into the crate's types, as the config crate embeds them.

use std::collections::HashMap;

use pretty_assertions::assert_eq;
use serde::Deserialize;
use tandem_budget::{BudgetRule, Ledger, Period, Price, Prices, RateRule, ScopeKind, ScopePattern};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    budgets: Vec<BudgetRule>,
    #[serde(default)]
    limits: Vec<RateRule>,
    #[serde(default)]
    prices: HashMap<String, Price>,
}

const EXAMPLE: &str = r#"
[[budgets]]
name = "team-daily"
applies_to = "team:*"
period = "day"
max_tokens = 1000000
max_cost_usd = 50.0

[[budgets]]
name = "payments-monthly"
applies_to = "team:payments"
period = "month"
max_cost_usd = 500.0

[[limits]]
name = "per-user-rpm"
applies_to = "user:*"
requests_per_minute = 60
tokens_per_minute = 200000

[prices."openai/gpt-4.1"]
input_per_mtok = 2.0
output_per_mtok = 8.0
cached_input_per_mtok = 0.5

[prices."*"]
input_per_mtok = 3.0
output_per_mtok = 15.0
"#;

#[test]
fn the_documented_example_parses_and_builds_a_ledger() {
    let config: Config = toml::from_str(EXAMPLE).unwrap();
    assert_eq!(
        config.budgets[0],
        BudgetRule {
            name: "team-daily".into(),
            applies_to: ScopePattern::Each(ScopeKind::Team),
            period: Period::Day,
            max_tokens: Some(1_000_000),
            max_cost_usd: Some(50.0),
        }
    );
    assert_eq!(config.budgets[1].period, Period::Month);
    assert_eq!(config.limits[0].requests_per_minute, Some(60));
    let prices = Prices::new(config.prices);
    assert_eq!(prices.estimate("openai/gpt-4.1", 1_000_000, 0), 2.0);
    assert_eq!(
        prices.estimate("anthropic/claude-sonnet-4", 0, 1_000_000),
        15.0
    );
    assert!(
        Ledger::new(config.budgets, config.limits)
            .unwrap()
            .has_rules()
    );
}

#[track_caller]
fn check_error(toml_text: &str, expect: &str) {
    let err = toml::from_str::<Config>(toml_text)
        .err()
        .map(|e| e.message().to_owned());
    assert_eq!(err.as_deref(), Some(expect));
}

#[test]
fn mistakes_are_refused_with_their_reason() {
    check_error(
        "[[budgets]]\nname = \"b\"\napplies_to = \"user:*\"\nperiod = \"day\"\nmax_token = 1\n",
        "unknown field `max_token`, expected one of `name`, `applies_to`, `period`, `max_tokens`, `max_cost_usd`",
    );
    check_error(
        "[[budgets]]\nname = \"b\"\napplies_to = \"user:*\"\nperiod = \"week\"\nmax_tokens = 1\n",
        "unknown variant `week`, expected `day` or `month`",
    );
    check_error(
        "[[limits]]\nname = \"r\"\napplies_to = \"org:*\"\nrequests_per_minute = 1\n",
        "invalid scope `org:*`: kind must be `key`, `user`, `team` or `project`",
    );
    check_error(
        "[[limits]]\nname = \"r\"\napplies_to = \"user:*\"\nrequests_per_minute = -1\n",
        "invalid value: integer `-1`, expected u32",
    );
}

#[test]
fn rules_serialize_back_to_the_same_shape() {
    let config: Config = toml::from_str(EXAMPLE).unwrap();
    let text = toml::to_string(&config.budgets[1]).unwrap();
    assert_eq!(
        text,
        "name = \"payments-monthly\"\napplies_to = \"team:payments\"\nperiod = \"month\"\nmax_cost_usd = 500.0\n"
    );
}
