//! Tests for price lookup, cost and estimates.

use std::collections::HashMap;

use pretty_assertions::assert_eq;
use tandem_protocol::Usage;

use crate::{Price, Prices};

fn price(input: f64, output: f64, cached: Option<f64>) -> Price {
    Price {
        input_per_mtok: input,
        output_per_mtok: output,
        cached_input_per_mtok: cached,
    }
}

fn table() -> Prices {
    Prices::new(HashMap::from([
        ("openai/gpt-4.1".to_owned(), price(2.0, 8.0, Some(0.5))),
        ("openai/*".to_owned(), price(1.0, 4.0, None)),
        ("*".to_owned(), price(10.0, 30.0, None)),
    ]))
}

fn usage(input: u64, cached: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
        reasoning_tokens: 0,
    }
}

#[track_caller]
fn check(prices: &Prices, backend: &str, u: &Usage, expect: f64) {
    let got = prices.cost(backend, u);
    assert!((got - expect).abs() < 1e-12, "{backend}: {got} != {expect}");
}

#[test]
fn lookup_prefers_exact_then_provider_then_default() {
    let prices = table();
    check(
        &prices,
        "openai/gpt-4.1",
        &usage(1_000_000, 0, 1_000_000),
        10.0,
    );
    check(
        &prices,
        "openai/gpt-4.1-mini",
        &usage(1_000_000, 0, 1_000_000),
        5.0,
    );
    check(
        &prices,
        "anthropic/claude",
        &usage(1_000_000, 0, 1_000_000),
        40.0,
    );
    check(&prices, "local", &usage(1_000_000, 0, 0), 10.0);
    check(
        &Prices::new(HashMap::new()),
        "openai/gpt-4.1",
        &usage(1_000_000, 0, 1_000_000),
        0.0,
    );
}

#[test]
fn cached_tokens_use_the_cached_rate_or_the_input_rate() {
    let prices = table();
    // 600k uncached at $2, 400k cached at $0.50, 100k output at $8.
    check(
        &prices,
        "openai/gpt-4.1",
        &usage(1_000_000, 400_000, 100_000),
        1.2 + 0.2 + 0.8,
    );
    // No cached price: cached tokens cost the input rate.
    check(&prices, "openai/o3", &usage(1_000_000, 400_000, 0), 1.0);
    // More cached than input (a confused upstream) is capped at the input.
    check(
        &prices,
        "openai/gpt-4.1",
        &usage(100, 1_000, 0),
        100.0 * 0.5 / 1e6,
    );
}

#[test]
fn estimate_prices_the_whole_prompt_uncached_and_the_output_reserve() {
    let est = table().estimate("openai/gpt-4.1", 10_000, 4_096);
    assert!((est - (10_000.0 * 2.0 + 4_096.0 * 8.0) / 1e6).abs() < 1e-12);
}

#[test]
fn prices_deserialize_strictly() {
    let p: Price = toml::from_str("input_per_mtok = 2.0\noutput_per_mtok = 8.0").unwrap();
    assert_eq!(p, price(2.0, 8.0, None));
    let err = toml::from_str::<Price>("input_per_mtok = 2.0\noutput_per_mtok = 8.0\nextra = 1")
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `extra`"), "{err}");
    let err = toml::from_str::<Price>("input_per_mtok = -2.0\noutput_per_mtok = 8.0").unwrap_err();
    assert!(err.to_string().contains("finite and not negative"), "{err}");
    let err = toml::from_str::<Price>("input_per_mtok = nan\noutput_per_mtok = 8.0").unwrap_err();
    assert!(err.to_string().contains("finite and not negative"), "{err}");
}
