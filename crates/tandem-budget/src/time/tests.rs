//! Tests for the calendar arithmetic: known dates, boundaries and properties.

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use crate::Period;
use crate::time::{DAY_MS, civil_from_days, days_from_civil, format_rfc3339};

/// Milliseconds of `y-m-d h:mi:s` UTC.
fn at(y: i64, m: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, m, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000
}

#[test]
fn known_dates() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(days_from_civil(1969, 12, 31), -1);
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_rfc3339(1_764_460_800_000), "2025-11-30T00:00:00Z");
    assert_eq!(
        format_rfc3339(at(2026, 11, 29, 23, 59, 59) + 999),
        "2026-11-29T23:59:59Z"
    );
    assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
}

#[track_caller]
fn check(period: Period, now: i64, start: &str, end: &str) {
    let s = period.window_start(now);
    assert_eq!(
        (
            format_rfc3339(s).as_str(),
            format_rfc3339(period.window_end(s)).as_str()
        ),
        (start, end),
        "{period:?} at {}",
        format_rfc3339(now)
    );
}

#[test]
fn day_windows() {
    check(
        Period::Day,
        at(2026, 11, 29, 13, 5, 0),
        "2026-11-29T00:00:00Z",
        "2026-11-30T00:00:00Z",
    );
    check(
        Period::Day,
        at(2026, 11, 29, 0, 0, 0),
        "2026-11-29T00:00:00Z",
        "2026-11-30T00:00:00Z",
    );
    check(
        Period::Day,
        at(2026, 11, 29, 0, 0, 0) - 1,
        "2026-11-28T00:00:00Z",
        "2026-11-29T00:00:00Z",
    );
    check(
        Period::Day,
        at(2026, 12, 31, 23, 59, 59),
        "2026-12-31T00:00:00Z",
        "2027-01-01T00:00:00Z",
    );
    check(
        Period::Day,
        at(2024, 2, 28, 12, 0, 0),
        "2024-02-28T00:00:00Z",
        "2024-02-29T00:00:00Z",
    );
    check(
        Period::Day,
        at(2024, 2, 29, 12, 0, 0),
        "2024-02-29T00:00:00Z",
        "2024-03-01T00:00:00Z",
    );
    check(
        Period::Day,
        -1,
        "1969-12-31T00:00:00Z",
        "1970-01-01T00:00:00Z",
    );
}

#[test]
fn month_windows() {
    check(
        Period::Month,
        at(2026, 11, 29, 13, 5, 0),
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    );
    check(
        Period::Month,
        at(2026, 12, 31, 23, 59, 59),
        "2026-12-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
    );
    check(
        Period::Month,
        at(2027, 1, 1, 0, 0, 0),
        "2027-01-01T00:00:00Z",
        "2027-02-01T00:00:00Z",
    );
    check(
        Period::Month,
        at(2024, 2, 29, 23, 0, 0),
        "2024-02-01T00:00:00Z",
        "2024-03-01T00:00:00Z",
    );
    check(
        Period::Month,
        at(2023, 2, 28, 23, 0, 0),
        "2023-02-01T00:00:00Z",
        "2023-03-01T00:00:00Z",
    );
    check(
        Period::Month,
        at(2000, 2, 29, 0, 0, 0),
        "2000-02-01T00:00:00Z",
        "2000-03-01T00:00:00Z",
    );
    check(
        Period::Month,
        -1,
        "1969-12-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
    );
    assert_eq!(
        format_rfc3339(Period::Month.previous_start(at(2027, 1, 1, 0, 0, 0))),
        "2026-12-01T00:00:00Z"
    );
    assert_eq!(
        format_rfc3339(Period::Day.previous_start(at(2024, 3, 1, 0, 0, 0))),
        "2024-02-29T00:00:00Z"
    );
    // February of a leap year has 29 days, of a common year 28.
    let feb = |y| Period::Month.window_end(at(y, 2, 1, 0, 0, 0)) - at(y, 2, 1, 0, 0, 0);
    assert_eq!(
        (feb(2024), feb(2023), feb(2000), feb(1900)),
        (29 * DAY_MS, 28 * DAY_MS, 29 * DAY_MS, 28 * DAY_MS)
    );
}

proptest! {
    #[test]
    fn civil_round_trips(days in -100_000_000i64..100_000_000) {
        let (y, m, d) = civil_from_days(days);
        prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        prop_assert_eq!(days_from_civil(y, m, d), days);
    }

    #[test]
    fn windows_contain_now_and_tile(now in -4_000_000_000_000i64..40_000_000_000_000, month in any::<bool>()) {
        let period = if month { Period::Month } else { Period::Day };
        let start = period.window_start(now);
        let end = period.window_end(start);
        prop_assert!(start <= now && now < end);
        prop_assert_eq!(period.window_start(end), end);
        prop_assert_eq!(period.window_start(end - 1), start);
        prop_assert_eq!(period.window_end(period.previous_start(start)), start);
        let (_, _, d) = civil_from_days(start.div_euclid(DAY_MS));
        prop_assert!(!month || d == 1);
    }
}
