//! Tests of the percentile summary.

use crate::stats::Summary;

#[test]
fn nearest_rank_percentiles() {
    let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
    let summary = Summary::of(&mut samples);
    assert_eq!(summary.count, 100);
    assert_eq!(summary.min, 1.0);
    assert_eq!(summary.p50, 50.0);
    assert_eq!(summary.p90, 90.0);
    assert_eq!(summary.p99, 99.0);
    assert_eq!(summary.max, 100.0);
    assert_eq!(summary.mean, 50.5);
}

#[test]
fn small_and_empty_sets() {
    assert_eq!(Summary::of(&mut []), Summary::default());
    let summary = Summary::of(&mut [3.0]);
    assert_eq!((summary.p50, summary.p99), (3.0, 3.0));
    let summary = Summary::of(&mut [2.0, 1.0]);
    assert_eq!((summary.p50, summary.p99), (1.0, 2.0));
}
