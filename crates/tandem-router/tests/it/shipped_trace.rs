//! The shipped trace: it is what the generator makes, and routers evaluate on it as expected.

use std::path::PathBuf;

use pretty_assertions::assert_eq;
use tandem_router::eval::parse_trace;
use tandem_router::{
    LogisticScorer, Report, Router, RouterConfig, ScorerConfig, TraceEntry, evaluate,
};

use crate::trace_gen;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/route/trace.jsonl")
}

fn trace() -> Vec<TraceEntry> {
    parse_trace(&std::fs::read_to_string(path()).unwrap()).unwrap()
}

/// `TANDEM_REGEN_TRACE=1 cargo test -p tandem-router --test it shipped_trace` rewrites the file.
#[test]
fn shipped_trace_is_current() {
    let generated = trace_gen::generate();
    if std::env::var_os("TANDEM_REGEN_TRACE").is_some() {
        std::fs::write(path(), &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(path()).unwrap();
    assert!(
        shipped == generated,
        "bench/route/trace.jsonl is stale: rerun with TANDEM_REGEN_TRACE=1"
    );
    assert_eq!(
        trace_gen::generate(),
        generated,
        "the generator is deterministic"
    );
}

fn rules_only() -> Router {
    Router::new(RouterConfig::new("live", "deep")).unwrap()
}

fn with_scorer(scorer: ScorerConfig) -> Router {
    let mut config = RouterConfig::new("live", "deep");
    config.scorer = Some(scorer);
    Router::new(config).unwrap()
}

fn apgr(report: &Report, policy: &str) -> f64 {
    report.policy(policy).unwrap().apgr.unwrap()
}

#[test]
fn default_router_beats_random() {
    let trace = trace();
    assert!((150..=300).contains(&trace.len()), "{}", trace.len());
    let report = evaluate(&trace, &rules_only(), 1);
    let random = apgr(&report, "random");
    assert!((0.4..0.6).contains(&random), "random APGR {random}");
    let router = apgr(&report, "router");
    assert!(
        router > random + 0.05,
        "router APGR {router} vs random {random}"
    );
    assert!(apgr(&report, "oracle") > router);
    let routed = report.policy("router").unwrap();
    let live = report.policy("always-live").unwrap();
    let deep = report.policy("always-deep").unwrap();
    assert!(routed.quality > live.quality);
    assert!(routed.cost_usd < deep.cost_usd);
    assert!(report.class_agreement > 0.7, "{}", report.class_agreement);
    insta::assert_snapshot!("default_router", report.to_markdown());
}

#[test]
fn prior_scorer_report() {
    let report = evaluate(&trace(), &with_scorer(ScorerConfig::Prior), 1);
    assert!(apgr(&report, "router") > 0.55);
    insta::assert_snapshot!("prior_scorer", report.to_markdown());
}

/// Train on the even-indexed half, evaluate on the odd half (no task is both trained and tested on).
#[test]
fn learned_scorer_on_held_out_half() {
    let trace = trace();
    let (train, test): (Vec<_>, Vec<_>) = trace
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let train: Vec<TraceEntry> = train.into_iter().map(|(_, e)| e).collect();
    let test: Vec<TraceEntry> = test.into_iter().map(|(_, e)| e).collect();
    let examples: Vec<_> = train
        .iter()
        .map(|e| (e.features(), e.live_failed()))
        .collect();
    let scorer = LogisticScorer::train(&examples, 3_000, 0.5, 1e-3);
    assert_eq!(scorer, LogisticScorer::train(&examples, 3_000, 0.5, 1e-3));
    let report = evaluate(
        &test,
        &with_scorer(ScorerConfig::Logistic(Box::new(scorer.clone()))),
        1,
    );
    let learned = apgr(&report, "scorer:logistic alone");
    let random = apgr(&report, "random");
    assert!(
        learned > random,
        "learned APGR {learned} vs random {random}"
    );
    insta::assert_snapshot!("learned_scorer_held_out", report.to_markdown());
    insta::assert_snapshot!("learned_scorer_weights", scorer.to_json());
}

#[test]
fn evaluation_is_deterministic() {
    let trace = trace();
    let router = rules_only();
    assert_eq!(evaluate(&trace, &router, 5), evaluate(&trace, &router, 5));
    let json = serde_json::to_string(&evaluate(&trace, &router, 5)).unwrap();
    assert_eq!(
        json,
        serde_json::to_string(&evaluate(&trace, &router, 5)).unwrap()
    );
}
