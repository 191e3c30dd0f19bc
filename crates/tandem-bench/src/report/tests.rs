//! Tests of the targets and the number formatting of the report.

use crate::Settings;
use crate::report::{
    GatewayMemory, Results, Round, counted_round, goals, int, markdown, quiet, signed,
};
use crate::scenario::{Kind, Sequential, Single};
use crate::stats::Summary;

fn settings() -> Settings {
    Settings {
        quick: false,
        requests: 100,
        streams: 10,
        warmup: 1,
        block: 50,
        ttft_rounds: 3,
        answer_tokens: 16,
        stream_tokens: 1000,
        litellm_stream_tokens: 100,
        concurrency: 10,
        concurrent_tokens: 200,
        concurrent_rate: 0.0,
        scenario_timeout_s: 120,
        litellm_workers: 1,
    }
}

fn seq(p50: f64, p99: f64) -> Sequential {
    Sequential {
        ok: 100,
        ms: Summary {
            count: 100,
            p50,
            p90: p50,
            p99,
            ..Summary::default()
        },
        ..Sequential::default()
    }
}

fn results() -> Results {
    let mut results = Results::new(settings(), &[]);
    results.targets = vec![Kind::Direct, Kind::Tandem, Kind::Litellm];
    results.latency.set(Kind::Direct, seq(0.2, 0.5));
    results.latency.set(Kind::Tandem, seq(0.3, 0.7));
    results.latency.set(Kind::Litellm, seq(9.0, 15.5));
    results.ttft.set(Kind::Direct, seq(0.2, 0.4));
    results.ttft.set(Kind::Tandem, seq(0.3, 0.6));
    results.single.set(
        Kind::Tandem,
        Single {
            requested: 1000,
            received: 1000,
            seconds: 0.01,
            tokens_per_sec: 100_000.0,
            ..Single::default()
        },
    );
    results.memory.tandem = Some(GatewayMemory {
        startup_s: 0.1,
        processes: 1,
        idle_mb: 12.0,
        peak_mb: 40.0,
        after_load_mb: 20.0,
    });
    results
}

#[test]
fn goals_use_added_percentiles() {
    let goals = goals(&results());
    let verdicts: Vec<_> = goals.iter().map(|g| g.pass).collect();
    assert_eq!(verdicts, [Some(true), Some(true), Some(true), Some(true)]);
    assert_eq!(
        goals[0].measured,
        "tandem +0.200 ms, LiteLLM +15.00 ms: 75.0×"
    );
    assert_eq!(goals[1].measured, "+0.200 ms");
}

#[test]
fn goals_fail_and_go_missing() {
    let mut results = results();
    results.latency.set(Kind::Tandem, seq(0.3, 3.5));
    results.latency.litellm = None;
    results.ttft.set(Kind::Tandem, seq(2.0, 2.0));
    let goals = goals(&results);
    assert_eq!(goals[0].pass, None);
    assert_eq!(goals[1].pass, Some(false));
}

#[test]
fn tandem_at_or_below_direct_counts_as_infinitely_better() {
    let mut results = results();
    results.latency.set(Kind::Tandem, seq(0.2, 0.4));
    let goals = goals(&results);
    assert_eq!(goals[0].pass, Some(true));
    assert!(goals[0].measured.contains('∞'));
}

#[test]
fn markdown_has_every_section() {
    let mut results = results();
    results.goals = goals(&results);
    let text = markdown(&results);
    for needle in [
        "## Targets",
        "| **added latency p99 (ms)** | — | +0.200 | +15.00 | 75.0× |",
        "| idle after startup (MB) | — | 12.0 | n/a |  |",
        "## Machine and command",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn number_formats() {
    assert_eq!(int(1_234_567.4), "1,234,567");
    assert_eq!(int(999.0), "999");
    assert_eq!(signed(-0.01234), "−0.012");
    assert_eq!(signed(12.345), "+12.35");
}

#[test]
fn a_noisy_host_is_flagged_under_errors_and_warnings() {
    let mut results = results();
    results.tandem_alive = true;
    results.steal.latency = Some(0.4);
    results.steal.ttft = Some(1.9);
    assert!(markdown(&results).contains("No errors"));
    results.steal.ttft = Some(5.25);
    let text = markdown(&results);
    assert!(
        text.contains(
            "- the hypervisor stole 5.2% of the CPU time during the TTFT scenario: its tail percentiles"
        ),
        "{text}"
    );
    assert!(
        !text.contains("during the non-streamed scenario: its"),
        "{text}"
    );
}

#[test]
fn the_turns_are_described_as_they_ran() {
    let mut results = results();
    let with = markdown(&results);
    assert!(
        with.contains(
            "direct and tandem alternating in turns of 50 each, LiteLLM in turns of its own; 2 unrecorded per turn"
        ),
        "{with}"
    );
    results.targets = vec![Kind::Direct, Kind::Tandem];
    let without = markdown(&results);
    assert!(
        without
            .contains("direct and tandem alternating in turns of 50 each; 2 unrecorded per turn"),
        "{without}"
    );
}

#[test]
fn a_disturbed_ttft_round_gives_way_to_the_first_quiet_one_or_else_the_least_disturbed() {
    assert!(quiet(Some(0.5)) && quiet(Some(0.0)) && quiet(None));
    assert!(!quiet(Some(0.51)));
    assert_eq!(counted_round(&[Some(3.1), Some(0.2), Some(0.0)]), Some(1));
    assert_eq!(counted_round(&[Some(3.1), Some(1.2), Some(2.0)]), Some(1));
    assert_eq!(counted_round(&[Some(3.1), None]), Some(1));
    assert_eq!(counted_round(&[Some(0.4)]), Some(0));
    assert_eq!(counted_round(&[]), None);
}

#[test]
fn the_ttft_target_names_its_round_when_one_was_set_aside_or_none_was_quiet() {
    let round = |steal: f64, counted: bool| Round {
        steal: Some(steal),
        added_p99_ms: Some(1.4),
        counted,
    };
    let mut results = results();
    results.ttft_rounds = vec![round(0.1, true)];
    assert_eq!(goals(&results)[1].measured, "+0.200 ms");
    results.ttft_rounds = vec![round(3.1, false), round(0.2, true)];
    assert_eq!(
        goals(&results)[1].measured,
        "+0.200 ms (round 2 of 2, 0.2% steal)"
    );
    results.ttft_rounds = vec![round(3.1, false), round(1.2, true), round(2.0, false)];
    assert_eq!(
        goals(&results)[1].measured,
        "+0.200 ms (round 2 of 3, 1.2% steal: no round was quiet)"
    );
}

#[test]
fn the_added_ttft_of_litellm_is_measured_against_direct_in_its_own_pass() {
    let mut results = results();
    results.ttft.set(Kind::Litellm, seq(20.0, 30.0));
    let text = markdown(&results);
    assert!(
        text.contains("| **added TTFT p99 (ms)** | — | +0.200 | +29.60 |"),
        "{text}"
    );
    results.ttft_litellm_direct = Some(seq(0.5, 1.0));
    let text = markdown(&results);
    assert!(
        text.contains("| **added TTFT p99 (ms)** | — | +0.200 | +29.00 |"),
        "{text}"
    );
    assert!(
        text.contains("| direct's TTFT p50 / p99 in LiteLLM's pass (ms) | 0.500 / 1.000 |"),
        "{text}"
    );
    assert!(
        text.contains("in rounds; LiteLLM in a pass of its own, in turns against direct"),
        "{text}"
    );
}
