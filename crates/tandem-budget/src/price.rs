//! Model prices from configuration, and the cost of a request from its token usage.
//!
//! Prices are in US dollars per million tokens. A backend is named `provider/model`; its price is the
//! first of `provider/model`, `provider/*` and `*` that the table has, and a backend with none of them
//! costs nothing (so cost budgets ignore it; configure `*` to avoid that).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tandem_protocol::Usage;

use crate::{Error, Result};

#[cfg(test)]
mod tests;

/// One model's price, in US dollars per million tokens.
///
/// Deserializing checks that every price is finite and not negative.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawPrice")]
pub struct Price {
    /// Uncached prompt tokens.
    pub input_per_mtok: f64,
    /// Completion tokens, reasoning included.
    pub output_per_mtok: f64,
    /// Prompt tokens served from the upstream's cache; the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input_per_mtok: f64,
    output_per_mtok: f64,
    #[serde(default)]
    cached_input_per_mtok: Option<f64>,
}

impl TryFrom<RawPrice> for Price {
    type Error = Error;

    fn try_from(raw: RawPrice) -> Result<Price> {
        let price = Price {
            input_per_mtok: raw.input_per_mtok,
            output_per_mtok: raw.output_per_mtok,
            cached_input_per_mtok: raw.cached_input_per_mtok,
        };
        price.validate()?;
        Ok(price)
    }
}

impl Price {
    /// Checks that every price is finite and not negative.
    pub fn validate(&self) -> Result<()> {
        let all = [
            self.input_per_mtok,
            self.output_per_mtok,
            self.cached_input_per_mtok.unwrap_or(0.0),
        ];
        match all.iter().all(|p| p.is_finite() && *p >= 0.0) {
            true => Ok(()),
            false => Err(Error::InvalidPrice(
                "prices must be finite and not negative",
            )),
        }
    }
}

/// The price table: `provider/model`, `provider/*` or `*` to [`Price`].
#[derive(Clone, Debug, Default)]
pub struct Prices {
    exact: HashMap<String, Price>,
    per_provider: HashMap<String, Price>,
    default: Option<Price>,
}

impl Prices {
    /// A table from configuration keys (`openai/gpt-4.1`, `openai/*`, `*`) to prices.
    pub fn new(map: HashMap<String, Price>) -> Prices {
        let mut prices = Prices::default();
        for (key, price) in map {
            if key == "*" {
                prices.default = Some(price);
            } else if let Some(provider) = key.strip_suffix("/*") {
                prices.per_provider.insert(provider.to_owned(), price);
            } else {
                prices.exact.insert(key, price);
            }
        }
        prices
    }

    /// The price of `backend` (`provider/model`), if the table has one for it.
    pub fn get(&self, backend: &str) -> Option<&Price> {
        if let Some(price) = self.exact.get(backend) {
            return Some(price);
        }
        backend
            .split_once('/')
            .and_then(|(provider, _)| self.per_provider.get(provider))
            .or(self.default.as_ref())
    }

    /// What `usage` cost on `backend`, in US dollars. Cached prompt tokens are priced at the cached
    /// rate; the rest of the prompt at the input rate.
    pub fn cost(&self, backend: &str, usage: &Usage) -> f64 {
        let Some(price) = self.get(backend) else {
            return 0.0;
        };
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let uncached = usage.input_tokens - cached;
        let cached_rate = price.cached_input_per_mtok.unwrap_or(price.input_per_mtok);
        per_mtok(uncached, price.input_per_mtok)
            + per_mtok(cached, cached_rate)
            + per_mtok(usage.output_tokens, price.output_per_mtok)
    }

    /// The most a request may cost: every prompt token uncached plus `max_output_tokens` of output.
    pub fn estimate(&self, backend: &str, input_tokens: u64, max_output_tokens: u64) -> f64 {
        let Some(price) = self.get(backend) else {
            return 0.0;
        };
        per_mtok(input_tokens, price.input_per_mtok)
            + per_mtok(max_output_tokens, price.output_per_mtok)
    }
}

/// Token counts are far below 2^53, where the conversion to `f64` is exact.
fn per_mtok(tokens: u64, price: f64) -> f64 {
    tokens as f64 * price / 1_000_000.0
}
