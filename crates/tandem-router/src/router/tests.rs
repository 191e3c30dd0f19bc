//! Tests for the router: validation, rule and scorer decisions, reasons, priority, explanations.

use std::sync::Arc;

use pretty_assertions::assert_eq;
use tandem_protocol::{ChatRequest, Message, Role};

use crate::{
    Features, Router, RouterConfig, RuleConfig, Scorer, ScorerConfig, SessionFacts, extract,
};

fn features(text: &str) -> Features {
    let req = ChatRequest::new(
        "auto",
        vec![
            Message::text(Role::System, "You are a coding agent."),
            Message::text(Role::User, text),
        ],
    );
    extract(&req, &SessionFacts::default())
}

struct Fixed(f64);

impl Scorer for Fixed {
    fn name(&self) -> &str {
        "fixed one"
    }
    fn score(&self, _: &Features) -> f64 {
        self.0
    }
}

fn with_scorer(score: f64) -> Router {
    let mut config = RouterConfig::new("live", "deep");
    config.scorer = Some(ScorerConfig::Custom(Arc::new(Fixed(score))));
    Router::new(config).unwrap()
}

#[track_caller]
fn check_err(edit: impl FnOnce(&mut RouterConfig), expect: &str) {
    let mut config = RouterConfig::new("live", "deep");
    edit(&mut config);
    assert_eq!(Router::new(config).unwrap_err().to_string(), expect);
}

#[test]
fn validation() {
    check_err(
        |c| c.live_tier = "fast".into(),
        "invalid router config: live_tier `fast` is not a known tier (known tiers: live, deep)",
    );
    check_err(
        |c| c.deep_tier = "live".into(),
        "invalid router config: live_tier and deep_tier are both `live`",
    );
    check_err(
        |c| c.deep_threshold = 1.5,
        "invalid router config: deep_threshold 1.5 is not in [0, 1]",
    );
    check_err(
        |c| {
            c.rules.push(RuleConfig {
                name: "gpu".into(),
                when: crate::Condition::default(),
                tier: "local".into(),
            });
        },
        "rule `gpu` names unknown tier `local` (known tiers: live, deep)",
    );
    // A third tier is fine once it is known.
    let mut config = RouterConfig::new("live", "deep");
    config.tiers.push("local".into());
    config.rules.insert(
        0,
        RuleConfig {
            name: "docs-local".into(),
            when: crate::Condition {
                task_class_in: Some(vec![crate::TaskClass::Docs]),
                ..crate::Condition::default()
            },
            tier: "local".into(),
        },
    );
    let router = Router::new(config).unwrap();
    assert_eq!(router.route(&features("update the README")).tier, "local");
}

#[test]
fn rules_then_scorer_then_live() {
    let rules_only = Router::new(RouterConfig::new("live", "deep")).unwrap();
    let d = rules_only.route(&features("refactor the session store in src/store.rs"));
    assert_eq!(
        (d.tier.as_str(), d.rule.as_deref(), d.reason.as_str()),
        (
            "deep",
            Some("deep-verbs"),
            "rule:deep-verbs deep_verbs=1>=1"
        )
    );
    assert!(d.priority >= 2.0 / 3.0);
    let d = rules_only.route(&features("add a unit test for parse_args"));
    assert_eq!(
        (d.tier.as_str(), d.rule, d.reason.as_str()),
        ("live", None, "default:live no-rule-matched")
    );
    assert!((1.0 / 3.0..=2.0 / 3.0).contains(&d.priority));
    let d = rules_only.route(&features("rename foo to bar in src/a.rs"));
    assert_eq!(d.rule.as_deref(), Some("spot-edit"));
    assert!(d.priority <= 1.0 / 3.0);

    let d = with_scorer(0.7).route(&features("add a unit test for parse_args"));
    assert_eq!(
        (d.tier.as_str(), d.reason.as_str(), d.score),
        ("deep", "score:fixedone 0.70>=0.50", 0.7)
    );
    let d = with_scorer(0.2).route(&features("add a unit test for parse_args"));
    assert_eq!(
        (d.tier.as_str(), d.reason.as_str()),
        ("live", "score:fixedone 0.20<0.50")
    );
    // Rules still win over the scorer.
    let d = with_scorer(0.99).route(&features("rename foo to bar"));
    assert_eq!(d.tier, "live");
    // Out-of-range scores are clamped, NaN is 0.5.
    assert_eq!(with_scorer(7.0).route(&features("hello")).score, 1.0);
    assert_eq!(with_scorer(f64::NAN).route(&features("hello")).score, 0.5);
}

#[test]
fn reasons_are_header_safe() {
    let router = with_scorer(0.5);
    for text in [
        "héllo wörld",
        "migrate src/a.rs src/b.rs src/c.rs",
        "\u{0}\n",
    ] {
        let reason = router.route(&features(text)).reason;
        assert!(
            reason.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{reason:?}"
        );
    }
}

#[test]
fn explanation() {
    let router = Router::new(RouterConfig::new("live", "deep")).unwrap();
    let text = router.explain(&features("fix the typo in README.md"));
    insta::assert_snapshot!(text);
}
