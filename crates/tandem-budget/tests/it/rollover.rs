//! Windows roll over cleanly at UTC day and month boundaries, including December to January and the end
//! of February in a leap year.

use pretty_assertions::assert_eq;
use tandem_budget::{Ledger, Period, format_rfc3339};

use crate::support::{alice, budget, est, ledger};

/// Milliseconds of the UTC midnights used below.
const DEC_31_2026: i64 = 1_798_675_200_000;
const JAN_01_2027: i64 = 1_798_761_600_000;
const FEB_28_2024: i64 = 1_709_078_400_000;
const FEB_29_2024: i64 = 1_709_164_800_000;
const MAR_01_2024: i64 = 1_709_251_200_000;

/// Spends the whole budget just before `boundary`, and checks it is spent 1 ms before and fresh at it.
#[track_caller]
fn check(period: Period, boundary: i64, expect_reset: &str) {
    let l: Ledger = ledger(vec![budget("b", "user:*", period, Some(100), None)], vec![]);
    let before = boundary - 1;
    l.settle(
        l.reserve(&alice(), &est(100, 0.0), before - 1_000).unwrap(),
        100,
        0.0,
        before - 1_000,
    );
    let err = l.reserve(&alice(), &est(1, 0.0), before).unwrap_err();
    assert!(
        err.message.ends_with(&format!("resets at {expect_reset}")),
        "{}",
        err.message
    );
    assert_eq!(err.retry_after_s, Some(1));
    let r = l.reserve(&alice(), &est(100, 0.0), boundary).unwrap();
    let rows = l.usage(boundary);
    assert_eq!(
        (
            rows[0].window_start_ms,
            rows[0].used_tokens,
            rows[0].reserved_tokens
        ),
        (boundary, 0, 100)
    );
    assert_eq!(format_rfc3339(rows[0].window_start_ms), expect_reset);
    drop(r);
}

#[test]
fn day_boundaries() {
    check(Period::Day, DEC_31_2026, "2026-12-31T00:00:00Z");
    check(Period::Day, JAN_01_2027, "2027-01-01T00:00:00Z");
    check(Period::Day, FEB_29_2024, "2024-02-29T00:00:00Z");
    check(Period::Day, MAR_01_2024, "2024-03-01T00:00:00Z");
}

#[test]
fn month_boundaries() {
    check(Period::Month, JAN_01_2027, "2027-01-01T00:00:00Z");
    check(Period::Month, MAR_01_2024, "2024-03-01T00:00:00Z");
}

#[test]
fn the_leap_day_belongs_to_february() {
    let l = ledger(
        vec![budget("m", "user:*", Period::Month, Some(100), None)],
        vec![],
    );
    l.settle(
        l.reserve(&alice(), &est(60, 0.0), FEB_28_2024).unwrap(),
        60,
        0.0,
        FEB_28_2024,
    );
    let err = l
        .reserve(&alice(), &est(60, 0.0), FEB_29_2024 + 1_000)
        .unwrap_err();
    assert!(
        err.message.ends_with("resets at 2024-03-01T00:00:00Z"),
        "{}",
        err.message
    );
    assert!(l.reserve(&alice(), &est(100, 0.0), MAR_01_2024).is_ok());
}

#[test]
fn old_windows_are_pruned_but_the_previous_one_is_kept_for_export() {
    let l = ledger(
        vec![budget("d", "user:*", Period::Day, Some(100), None)],
        vec![],
    );
    for day in 0..4 {
        let now = DEC_31_2026 + day * 86_400_000;
        l.settle(
            l.reserve(&alice(), &est(10, 0.0), now).unwrap(),
            10,
            0.0,
            now,
        );
    }
    let windows: Vec<String> = l
        .export()
        .into_iter()
        .map(|r| format_rfc3339(r.window_start_ms))
        .collect();
    assert_eq!(windows, ["2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z"]);
}
