//! Tests for the logistic scorer: training, the prior, JSON.

use pretty_assertions::assert_eq;
use tandem_protocol::{ChatRequest, Message, Role};

use crate::scorer::FEATURE_NAMES;
use crate::{Features, LogisticScorer, Scorer, SessionFacts, TaskClass, extract};

fn base() -> Features {
    let req = ChatRequest::new("auto", vec![Message::text(Role::User, "hello")]);
    extract(&req, &SessionFacts::default())
}

/// Deep needed iff several files are named or a migration; sizes vary as noise.
fn separable() -> Vec<(Features, bool)> {
    let mut out = Vec::new();
    for i in 0..40u32 {
        let mut f = base();
        let deep = i % 2 == 0;
        f.prompt_tokens = u64::from(500 + (i * 37) % 900);
        f.files_named = if deep { 3 + i % 4 } else { i % 2 };
        f.task_class = if deep {
            TaskClass::Migration
        } else {
            TaskClass::Rename
        };
        out.push((f, deep));
    }
    out
}

#[test]
fn training_separates_a_separable_set() {
    let examples = separable();
    let scorer = LogisticScorer::train(&examples, 2_000, 0.5, 1e-4);
    for (f, deep) in &examples {
        let s = scorer.score(f);
        assert!(if *deep { s > 0.8 } else { s < 0.2 }, "{s} for deep={deep}");
    }
    let weight = |name: &str| scorer.weights().find(|(n, _)| *n == name).unwrap().1;
    assert!(weight("log_files_named") > 0.0);
    assert!(weight("class_migration") > weight("class_rename"));
}

#[test]
fn training_is_deterministic() {
    let examples = separable();
    let a = LogisticScorer::train(&examples, 300, 0.3, 1e-3);
    let b = LogisticScorer::train(&examples, 300, 0.3, 1e-3);
    assert_eq!(a, b);
    assert_eq!(a.to_json(), b.to_json());
}

#[test]
fn training_on_nothing_gives_one_half() {
    let scorer = LogisticScorer::train(&[], 10, 0.1, 0.0);
    assert_eq!(scorer.score(&base()), 0.5);
}

#[test]
fn json_round_trip() {
    let scorer = LogisticScorer::train(&separable(), 50, 0.3, 1e-3);
    let back = LogisticScorer::from_json(&scorer.to_json()).unwrap();
    // serde_json parses floats to within one ulp (no `float_roundtrip`), so compare closely, not exactly.
    assert!((back.bias() - scorer.bias()).abs() < 1e-12);
    for ((name, a), (_, b)) in back.weights().zip(scorer.weights()) {
        assert!((a - b).abs() < 1e-12, "{name}: {a} vs {b}");
    }
    assert_eq!(
        back.to_json(),
        LogisticScorer::from_json(&back.to_json())
            .unwrap()
            .to_json()
    );
    let v: serde_json::Value = serde_json::from_str(&scorer.to_json()).unwrap();
    assert_eq!(v["weights"].as_object().unwrap().len(), FEATURE_NAMES.len());
    assert_eq!(v["name"], "logistic");
}

#[test]
fn json_errors() {
    let err = |text: &str| LogisticScorer::from_json(text).unwrap_err().to_string();
    assert!(err(r#"{"bias": 0, "weights": {"nope": 1}}"#).contains("unknown feature `nope`"));
    assert!(err(r#"{"bias": 0, "weights": {"log_turns": "x"}}"#).contains("not a finite number"));
    assert!(err(r#"{"bias": 0, "weights": {}, "extra": 1}"#).contains("unknown field"));
    assert!(err(r#"{"weights": {}}"#).contains("bias"));
    let partial =
        LogisticScorer::from_json(r#"{"bias": 1.5, "weights": {"escalated": 2}}"#).unwrap();
    assert_eq!(partial.bias(), 1.5);
    assert_eq!(partial.name(), "logistic");
    assert_eq!(partial.weights().filter(|(_, w)| *w != 0.0).count(), 1);
}

#[test]
fn prior_orders_spot_edits_below_migrations() {
    let mut rename = base();
    rename.task_class = TaskClass::Rename;
    rename.files_named = 1;
    rename.live_verbs = 1;
    rename.prompt_tokens = 800;
    rename.last_user_tokens = 30;
    let mut migration = base();
    migration.task_class = TaskClass::Migration;
    migration.files_named = 4;
    migration.deep_verbs = 2;
    migration.prompt_tokens = 2_000;
    migration.last_user_tokens = 150;
    let prior = LogisticScorer::prior();
    let (low, high) = (prior.score(&rename), prior.score(&migration));
    assert!(low < 0.2 && high > 0.85, "{low} {high}");
    let contributions = prior.contributions(&migration);
    assert!(
        contributions
            .windows(2)
            .all(|w| w[0].1.abs() >= w[1].1.abs())
    );
}

#[test]
fn named_constructor() {
    let s = LogisticScorer::new("mine", -1.0, &[("escalated", 3.0)]).unwrap();
    let mut f = base();
    assert!(s.score(&f) < 0.5);
    f.escalated = true;
    assert!(s.score(&f) > 0.5);
    assert!(LogisticScorer::new("", 0.0, &[]).is_err());
    assert!(LogisticScorer::new("x", f64::NAN, &[]).is_err());
    assert_eq!(s.with_name("other").unwrap().name(), "other");
}
