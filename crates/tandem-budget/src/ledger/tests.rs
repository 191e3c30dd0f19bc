//! Tests for the ledger's arithmetic: nano-dollar conversion and the sliding-window retry time.

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use crate::ledger::{fits, sliding_count, sliding_fits, sliding_retry_ms, usd_to_nanos};
use crate::time::MINUTE_MS;

#[test]
fn dollars_convert_to_nanos_rounding_and_saturating() {
    assert_eq!(usd_to_nanos(0.3), 300_000_000);
    assert_eq!(usd_to_nanos(0.1 + 0.2), 300_000_000);
    assert_eq!(usd_to_nanos(50.0), 50_000_000_000);
    assert_eq!(usd_to_nanos(1e-10), 0);
    assert_eq!(usd_to_nanos(-1.0), 0);
    assert_eq!(usd_to_nanos(f64::NAN), 0);
    assert_eq!(usd_to_nanos(f64::INFINITY), u64::MAX);
}

#[test]
fn fits_does_not_overflow() {
    assert!(fits(0, 0, 10, 10));
    assert!(!fits(1, 0, 10, 10));
    assert!(!fits(u64::MAX, u64::MAX, 1, u64::MAX));
}

#[test]
fn sliding_window_weights_the_previous_minute() {
    // 60 in the previous minute, none in this one, limit 60: full weight at 0 s, half at 30 s.
    assert!(!sliding_fits(60, 0, 1, 60, 0));
    assert_eq!(sliding_count(60, 0, 0), 60);
    assert_eq!(sliding_count(60, 0, 30_000), 30);
    assert!(sliding_fits(60, 0, 30, 60, 30_000));
    assert!(!sliding_fits(60, 0, 31, 60, 30_000));
    assert!(sliding_fits(60, 0, 1, 60, 1_000));
    assert_eq!(sliding_retry_ms(60, 0, 1, 60, 0), Some(1_000));
    assert_eq!(sliding_retry_ms(60, 0, 30, 60, 10_000), Some(20_000));
    // This minute is full: wait for the next one, where it weighs as the previous.
    assert_eq!(sliding_retry_ms(0, 60, 1, 60, 20_000), Some(40_000 + 1_000));
    // The request alone is larger than the limit.
    assert_eq!(sliding_retry_ms(0, 0, 61, 60, 0), None);
}

/// Whether `need` fits `d` ms after the refusal, with no other traffic.
fn fits_after(prev: u64, cur: u64, need: u64, limit: u64, elapsed: i64, d: i64) -> bool {
    let t = elapsed + d;
    match t / MINUTE_MS {
        0 => sliding_fits(prev, cur, need, limit, t),
        1 => sliding_fits(cur, 0, need, limit, t - MINUTE_MS),
        _ => need <= limit,
    }
}

proptest! {
    #[test]
    fn retry_time_is_the_first_moment_it_fits(
        prev in 0u64..200, cur in 0u64..200, need in 1u64..50, limit in 1u64..200, elapsed in 0i64..MINUTE_MS,
    ) {
        prop_assume!(!sliding_fits(prev, cur, need, limit, elapsed));
        match sliding_retry_ms(prev, cur, need, limit, elapsed) {
            None => prop_assert!(need > limit),
            Some(d) => {
                prop_assert!(d > 0);
                prop_assert!(fits_after(prev, cur, need, limit, elapsed, d), "not yet at {d}");
                prop_assert!(!fits_after(prev, cur, need, limit, elapsed, d - 1), "already at {}", d - 1);
            }
        }
    }
}
