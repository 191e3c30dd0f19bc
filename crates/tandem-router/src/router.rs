//! The router: rules first, then the scorer, then the live tier.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use crate::scorer::{LogisticScorer, Scorer, ScorerConfig};
use crate::{Error, Features, Result, RuleConfig, RuleTable, default_rules_for};

#[cfg(test)]
mod tests;

/// How to route; built by the config crate (no `Default`: tier names are the caller's).
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// The fast tier: spot edits, and the fallback when nothing points to deep.
    pub live_tier: String,
    /// The slow tier the scorer escalates to.
    pub deep_tier: String,
    /// Every tier the gateway has; rules may name any of them, and both tiers above must be in it.
    pub tiers: Vec<String>,
    /// Ordered rules; the first match wins.
    pub rules: Vec<RuleConfig>,
    /// Consulted when no rule matched; `None` = rules only (unmatched requests go live).
    pub scorer: Option<ScorerConfig>,
    /// With a scorer: score `>=` threshold goes to the deep tier.
    pub deep_threshold: f64,
}

impl RouterConfig {
    /// Two tiers, the [`default_rules_for`] them, no scorer, threshold 0.5.
    pub fn new(live_tier: &str, deep_tier: &str) -> Self {
        RouterConfig {
            live_tier: live_tier.to_owned(),
            deep_tier: deep_tier.to_owned(),
            tiers: vec![live_tier.to_owned(), deep_tier.to_owned()],
            rules: default_rules_for(live_tier, deep_tier),
            scorer: None,
            deep_threshold: 0.5,
        }
    }
}

/// A routing decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The chosen tier.
    pub tier: String,
    /// Short ASCII, header-safe: `rule:multi-file files_named=4>=3`, `score:logistic 0.73>=0.50`,
    /// `default:live no-rule-matched`.
    pub reason: String,
    /// The rule that decided, if one did.
    pub rule: Option<String>,
    /// P(deep needed) from the configured scorer, or from [`LogisticScorer::prior`] when the router runs
    /// rules only (then it is logged but does not decide).
    pub score: f64,
    /// Sort key for sweeps, in `[0, 1]`: a rule that sends the request to a tier other than live puts it in
    /// `[2/3, 1]`, no rule in `[1/3, 2/3]`, a rule that sends it live in `[0, 1/3]`; the score places
    /// it inside its band. Ranking by priority follows the router's own order of preference.
    pub priority: f64,
    /// What the router looked at.
    pub features: Features,
}

/// Rules first, then the scorer, then the live tier.
#[derive(Clone)]
pub struct Router {
    live: String,
    deep: String,
    table: RuleTable,
    scorer: Option<Arc<dyn Scorer>>,
    prior: LogisticScorer,
    threshold: f64,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("live", &self.live)
            .field("deep", &self.deep)
            .field("table", &self.table)
            .field("scorer", &self.scorer.as_ref().map(|s| s.name().to_owned()))
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl Router {
    /// Check the config: tiers known, rule names non-empty and unique, threshold in `[0, 1]`.
    pub fn new(config: RouterConfig) -> Result<Router> {
        for (what, tier) in [
            ("live_tier", &config.live_tier),
            ("deep_tier", &config.deep_tier),
        ] {
            if !config.tiers.contains(tier) {
                return Err(Error::Config(format!(
                    "{what} `{tier}` is not a known tier (known tiers: {})",
                    config.tiers.join(", ")
                )));
            }
        }
        if config.live_tier == config.deep_tier {
            return Err(Error::Config(format!(
                "live_tier and deep_tier are both `{}`",
                config.live_tier
            )));
        }
        if !(0.0..=1.0).contains(&config.deep_threshold) {
            return Err(Error::Config(format!(
                "deep_threshold {} is not in [0, 1]",
                config.deep_threshold
            )));
        }
        let table = RuleTable::new(&config.rules, &config.tiers)?;
        Ok(Router {
            live: config.live_tier,
            deep: config.deep_tier,
            table,
            scorer: config.scorer.map(ScorerConfig::into_scorer),
            prior: LogisticScorer::prior(),
            threshold: config.deep_threshold,
        })
    }

    /// The live tier's name.
    pub fn live_tier(&self) -> &str {
        &self.live
    }

    /// The deep tier's name.
    pub fn deep_tier(&self) -> &str {
        &self.deep
    }

    /// The deep threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The name of the scorer behind [`Decision::score`] (`prior` when the router runs rules only).
    pub fn scorer_name(&self) -> &str {
        self.scorer().name()
    }

    /// The checked rules.
    pub fn rules(&self) -> &RuleTable {
        &self.table
    }

    fn scorer(&self) -> &dyn Scorer {
        match &self.scorer {
            Some(s) => s.as_ref(),
            None => &self.prior,
        }
    }

    /// The score, clamped to `[0, 1]` (NaN counts as 0.5).
    fn score(&self, f: &Features) -> f64 {
        let s = self.scorer().score(f);
        if s.is_nan() { 0.5 } else { s.clamp(0.0, 1.0) }
    }

    /// Decide a tier for these features.
    pub fn route(&self, f: &Features) -> Decision {
        let score = self.score(f);
        let (tier, reason, rule, band) = match self.table.first_match(f) {
            Some(rule) => {
                let band = if rule.tier() == self.live { 0.0 } else { 2.0 };
                (
                    rule.tier().to_owned(),
                    rule.reason(f),
                    Some(rule.name().to_owned()),
                    band,
                )
            }
            None => match &self.scorer {
                Some(scorer) => {
                    let name = header_safe(scorer.name());
                    let (tier, op) = if score >= self.threshold {
                        (&self.deep, ">=")
                    } else {
                        (&self.live, "<")
                    };
                    let reason = format!("score:{name} {score:.2}{op}{:.2}", self.threshold);
                    (tier.clone(), reason, None, 1.0)
                }
                None => (
                    self.live.clone(),
                    "default:live no-rule-matched".to_owned(),
                    None,
                    1.0,
                ),
            },
        };
        Decision {
            tier,
            reason,
            rule,
            score,
            priority: (band + score) / 3.0,
            features: f.clone(),
        }
    }

    /// A multi-line explanation: every feature, every rule with each clause and whether it holds, the
    /// score (with the scorer's largest contributions) and the decision.
    pub fn explain(&self, f: &Features) -> String {
        let decision = self.route(f);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_explanation(f, &decision, &mut out);
        out
    }

    fn write_explanation(&self, f: &Features, d: &Decision, out: &mut String) -> std::fmt::Result {
        writeln!(out, "decision: {} ({})", d.tier, d.reason)?;
        writeln!(out, "features:")?;
        for (name, value) in f.fields() {
            writeln!(out, "  {name} = {value}")?;
        }
        writeln!(out, "rules (first match wins):")?;
        let mut decided = false;
        for rule in self.table.rules() {
            let matched = rule.matches(f);
            let mark = match (matched, decided) {
                (true, false) => "MATCH",
                (true, true) => "match (shadowed)",
                (false, _) => "no",
            };
            decided |= matched;
            writeln!(out, "  [{mark}] {} -> {}", rule.name(), rule.tier())?;
            for (clause, holds) in rule.clause_report(f) {
                writeln!(out, "      {} {clause}", if holds { "+" } else { "-" })?;
            }
        }
        if self.table.rules().is_empty() {
            writeln!(out, "  (none)")?;
        }
        let scorer = self.scorer();
        match &self.scorer {
            Some(_) => writeln!(
                out,
                "scorer: {} score={:.3} threshold={:.2}{}",
                scorer.name(),
                d.score,
                self.threshold,
                if decided {
                    " (not used: a rule matched)"
                } else {
                    ""
                }
            )?,
            None => writeln!(
                out,
                "scorer: none (rules only); prior score={:.3}, not used for the decision",
                d.score
            )?,
        }
        let contributions = scorer.contributions(f);
        if !contributions.is_empty() {
            writeln!(out, "  largest contributions (logit):")?;
            for (name, c) in contributions.iter().take(6) {
                writeln!(out, "    {c:+.3} {name}")?;
            }
        }
        Ok(())
    }
}

/// Keep printable ASCII other than spaces, so a custom scorer's name cannot break a header.
fn header_safe(name: &str) -> String {
    let safe: String = name.chars().filter(char::is_ascii_graphic).collect();
    if safe.is_empty() {
        "scorer".to_owned()
    } else {
        safe
    }
}
