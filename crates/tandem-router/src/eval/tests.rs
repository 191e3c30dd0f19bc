//! Tests for the evaluation math (hand-computed), trace parsing and the policies on a tiny trace.

use pretty_assertions::assert_eq;
use serde_json::json;

use crate::eval::{SplitMix64, curve_metrics, parse_trace, sweep};
use crate::{Router, RouterConfig, TraceEntry, eval_file, evaluate, explain_request};

/// `(live success, deep success)` for tasks a, b, c, d: live solves 2, deep 3.
const TASKS: [(bool, bool); 4] = [(false, true), (true, true), (false, true), (true, false)];

fn line(id: &str, class: &str, prompt: &str, (live, deep): (bool, bool)) -> String {
    json!({
        "id": id, "class": class,
        "request": {"model": "auto", "messages": [{"role": "user", "content": prompt}]},
        "outcomes": {
            "live": {"success": live, "cost_usd": 0.001, "latency_ms": 1000.0},
            "deep": {"success": deep, "cost_usd": 0.01, "latency_ms": 10000.0}
        }
    })
    .to_string()
}

fn tiny_text() -> String {
    let prompts = [
        ("a", "refactor", "refactor the session store across crates"),
        ("b", "rename", "rename foo to bar"),
        ("c", "migration", "migrate the server to axum 0.8"),
        ("d", "rename", "fix the typo in README.md"),
    ];
    let mut text = String::new();
    for ((id, class, prompt), outcome) in prompts.into_iter().zip(TASKS) {
        text.push_str(&line(id, class, prompt, outcome));
        text.push('\n');
    }
    text
}

fn tiny() -> Vec<TraceEntry> {
    parse_trace(&tiny_text()).unwrap()
}

#[track_caller]
fn close(a: Option<f64>, b: f64) {
    let a = a.unwrap();
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn sweep_and_metrics_by_hand() {
    let trace = tiny();
    // Order a (0.9), d (0.7), b (0.5), c (0.1): solved 2 → 3 → 2 → 2 → 3.
    let points = sweep(&trace, &[0.9, 0.5, 0.1, 0.7]);
    assert_eq!(points, vec![(0, 2), (1, 3), (2, 2), (3, 2), (4, 3)]);
    // AUC = (2.5 + 2.5 + 2 + 2.5) / 16 = 0.59375; APGR = (0.59375 - 0.5) / 0.25 = 0.375.
    // CPT(50%): 2.5 solved at k = 0.5 → 12.5%; CPT(80%): 2.8 at k = 0.8 → 20%.
    let (apgr, cpt50, cpt80) = curve_metrics(&points, 4);
    close(apgr, 0.375);
    close(cpt50, 0.125);
    close(cpt80, 0.2);
}

#[test]
fn ties_move_together() {
    let trace = tiny();
    // a first, then b, c, d together (net 0): AUC = (2.5 + 3 × 3) / 16 = 0.71875 → APGR 0.875.
    let points = sweep(&trace, &[0.9, 0.5, 0.5, 0.5]);
    assert_eq!(points, vec![(0, 2), (1, 3), (4, 3)]);
    let (apgr, cpt50, cpt80) = curve_metrics(&points, 4);
    close(apgr, 0.875);
    close(cpt50, 0.125);
    close(cpt80, 0.2);
    // All tied: the straight line from live to deep, which random routing gives in expectation.
    let points = sweep(&trace, &[0.0; 4]);
    assert_eq!(points, vec![(0, 2), (4, 3)]);
    let (apgr, cpt50, cpt80) = curve_metrics(&points, 4);
    close(apgr, 0.5);
    close(cpt50, 0.5);
    close(cpt80, 0.8);
}

#[test]
fn undefined_without_a_gap() {
    let trace = tiny();
    // Only b and d: live solves 2, deep 1.
    let worse: Vec<TraceEntry> = vec![trace[1].clone(), trace[3].clone()];
    assert_eq!(
        curve_metrics(&sweep(&worse, &[1.0, 0.0]), 2),
        (None, None, None)
    );
    assert_eq!(curve_metrics(&sweep(&[], &[]), 0), (None, None, None));
}

#[test]
fn policies_on_the_tiny_trace() {
    let trace = tiny();
    let router = Router::new(RouterConfig::new("live", "deep")).unwrap();
    let report = evaluate(&trace, &router, 7);
    let get = |name: &str| report.policy(name).unwrap().clone();

    let live = get("always-live");
    assert_eq!((live.deep_share, live.quality, live.apgr), (0.0, 0.5, None));
    assert!((live.cost_usd - 0.004).abs() < 1e-12);
    assert_eq!(live.mean_latency_ms, 1000.0);
    let deep = get("always-deep");
    assert_eq!((deep.deep_share, deep.quality), (1.0, 0.75));
    assert!((deep.cost_per_task_usd - 0.01).abs() < 1e-12);

    // Default rules: a (deep-verbs) and c (deep-verbs) deep, b and d spot edits live: all four solved.
    let routed = get("router");
    assert_eq!((routed.deep_share, routed.quality), (0.5, 1.0));
    assert!((routed.cost_usd - 0.022).abs() < 1e-12);
    assert_eq!(routed.mean_latency_ms, 5500.0);
    // Priority: a, c (deep band) first, then d and b in the live band; d (README.md named) has the
    // higher prior: solved 2 → 3 → 4 → 3 → 3, AUC = (2.5 + 3.5 + 3.5 + 3) / 16 = 0.78125 → 1.125.
    close(routed.apgr, 1.125);
    close(routed.cpt50, 0.125);
    close(routed.cpt80, 0.2);

    // Oracle: a and c only. Gains 1, 0, 1, -1: solved 2 → 4 (a, c) → 4 (b) → 3 (d).
    let oracle = get("oracle");
    assert_eq!((oracle.deep_share, oracle.quality), (0.5, 1.0));
    close(oracle.apgr, 1.375);

    let random = get("random");
    assert_eq!(random.deep_share, 0.5);
    assert!(random.apgr.unwrap() > 0.0 && random.apgr.unwrap() < 1.5);
    assert_eq!(report.tasks, 4);
    // "fix the typo" is labelled rename and extracted as rename; all four agree.
    assert_eq!(report.class_agreement, 1.0);
    assert_eq!(report, evaluate(&trace, &router, 7), "deterministic");
    insta::assert_snapshot!(report.to_markdown());
}

#[test]
fn trace_errors_name_the_line() {
    let err = |text: &str| parse_trace(text).unwrap_err().to_string();
    let good = line("a", "fix", "fix it", (true, true));
    assert!(err(&format!("{good}\n\n{good}\n")).starts_with("trace line 3: duplicate id `a`"));
    assert!(err("{\"id\": 1}").starts_with("trace line 1:"));
    let bad_class = good.replace("\"fix\"", "\"fixes\"");
    assert!(err(&bad_class).contains("fixes"));
    let bad_request = line("a", "fix", "x", (true, true)).replace("\"messages\"", "\"mesages\"");
    assert!(
        err(&bad_request).contains("request:"),
        "{}",
        err(&bad_request)
    );
    let negative = good.replace("0.001", "-1");
    assert!(err(&negative).contains("non-negative"));
    assert!(parse_trace("\n  \n").unwrap().is_empty());
}

#[test]
fn eval_file_and_explain_request() {
    let router = Router::new(RouterConfig::new("live", "deep")).unwrap();
    let report = eval_file(&tiny_text(), &router).unwrap();
    assert_eq!(report.seed, crate::eval::DEFAULT_SEED);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["policies"][0]["name"], "always-live");

    let chat =
        json!({"model": "auto", "messages": [{"role": "user", "content": "migrate to axum 0.8"}]});
    let responses =
        json!({"model": "auto", "input": "migrate to axum 0.8", "instructions": "be brief"});
    let messages = json!({"model": "auto", "max_tokens": 100, "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "migrate to axum 0.8"}]}]});
    for body in [chat, responses, messages] {
        let text = explain_request(body.to_string().as_bytes(), &router).unwrap();
        assert!(
            text.starts_with("decision: deep (rule:deep-verbs"),
            "{text}"
        );
    }
    let err = explain_request(b"{\"nope\": 1}", &router).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("body is not a Chat Completions"),
        "{err}"
    );
    assert_eq!(err.kind(), tandem_protocol::ErrorKind::BadRequest);
}

#[test]
fn splitmix_is_seeded() {
    let a: Vec<u64> = {
        let mut r = SplitMix64::new(1);
        (0..3).map(|_| r.next_u64()).collect()
    };
    let mut r = SplitMix64::new(1);
    assert_eq!(a, (0..3).map(|_| r.next_u64()).collect::<Vec<_>>());
    let mut r = SplitMix64::new(2);
    let x = r.next_f64();
    assert!((0.0..1.0).contains(&x));
    assert_ne!(a[0], SplitMix64::new(2).next_u64());
}
