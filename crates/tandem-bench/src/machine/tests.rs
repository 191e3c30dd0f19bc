//! Tests of the calendar arithmetic and of reading `/proc/stat`.

use crate::machine::{CpuTimes, civil_from_days};

#[test]
fn civil_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    assert_eq!(civil_from_days(20_454), (2026, 1, 1));
}

#[test]
fn steal_is_the_share_of_all_cpu_time_between_two_readings() {
    let before =
        CpuTimes::parse("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 50 0 25 400 5 0 2 18 0 0\n");
    let after = CpuTimes::parse("cpu  150 0 70 1000 10 0 5 65 0 0\n");
    // 300 ticks in all, of which 30 stolen.
    let share = after.steal_percent_since(&before).unwrap_or(f64::NAN);
    assert!((share - 10.0).abs() < 1e-9, "{share}");
    assert_eq!(after.steal_percent_since(&after), None, "no time passed");
    assert_eq!(CpuTimes::parse("no such line"), CpuTimes::default());
}
