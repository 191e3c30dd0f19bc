//! Settlement: actuals replace estimates, a dropped reservation charges its estimate, a stream cut off by
//! the client is charged what was streamed, and late settlements go to the window reserved in.

use pretty_assertions::assert_eq;
use tandem_budget::{Ledger, Period};

use crate::support::{DAY, NOON, alice, budget, est, ledger, tokens_of, tokens_per_day};

fn daily() -> Ledger {
    ledger(
        vec![budget(
            "daily",
            "user:*",
            Period::Day,
            Some(10_000),
            Some(10.0),
        )],
        vec![],
    )
}

fn cost_of(l: &Ledger, now_ms: i64) -> (f64, f64) {
    l.usage(now_ms)
        .into_iter()
        .find(|r| r.rule == "daily")
        .map_or((0.0, 0.0), |r| (r.used_cost_usd, r.reserved_cost_usd))
}

#[test]
fn dropping_a_reservation_charges_the_full_estimate() {
    let l = daily();
    let r = l.reserve(&alice(), &est(4_096, 0.5), NOON).unwrap();
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (0, 4_096));
    drop(r);
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (4_096, 0));
    assert_eq!(cost_of(&l, NOON), (0.5, 0.0));
}

#[test]
fn a_panic_while_a_reservation_is_held_still_charges_it() {
    let l = daily();
    let result = std::panic::catch_unwind(|| {
        let _r = l.reserve(&alice(), &est(1_000, 0.1), NOON).unwrap();
        panic!("the request handler failed");
    });
    assert!(result.is_err());
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (1_000, 0));
}

#[test]
fn a_stream_cut_off_by_the_client_is_charged_what_was_streamed() {
    let l = daily();
    let r = l.reserve(&alice(), &est(4_096, 0.5), NOON).unwrap();
    // The client went away after 1,200 prompt tokens and 37 output tokens had been streamed.
    l.settle(r, 1_237, 0.0123, NOON + 5_000);
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (1_237, 0));
    assert_eq!(cost_of(&l, NOON), (0.0123, 0.0));
}

#[test]
fn an_actual_above_the_estimate_is_charged_in_full_and_then_refuses() {
    let l = ledger(vec![tokens_per_day("daily", "user:*", 1_000)], vec![]);
    let r = l.reserve(&alice(), &est(900, 0.0), NOON).unwrap();
    l.settle(r, 1_050, 0.0, NOON);
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (1_050, 0));
    let err = l.reserve(&alice(), &est(1, 0.0), NOON).unwrap_err();
    assert!(
        err.message
            .contains("is spent: 1,050 of 1,000 tokens used today"),
        "{}",
        err.message
    );
}

#[test]
fn a_settlement_after_midnight_charges_the_day_it_was_reserved_in() {
    let l = ledger(vec![tokens_per_day("daily", "user:*", 1_000)], vec![]);
    let late = NOON + 11 * 3_600_000 + 59 * 60_000; // 23:59
    let r = l.reserve(&alice(), &est(800, 0.0), late).unwrap();
    let tomorrow = NOON + DAY;
    l.settle(r, 700, 0.0, tomorrow);
    assert_eq!(tokens_of(&l, "daily", "user:alice", tomorrow), (0, 0));
    assert_eq!(tokens_of(&l, "daily", "user:alice", late), (700, 0));
    let exported: Vec<(i64, u64)> = l
        .export()
        .into_iter()
        .map(|r| (r.window_start_ms, r.tokens))
        .collect();
    assert_eq!(exported, [(NOON - 12 * 3_600_000, 700)]);
}

#[test]
fn a_dropped_reservation_after_midnight_charges_the_day_it_was_reserved_in() {
    let l = ledger(vec![tokens_per_day("daily", "user:*", 1_000)], vec![]);
    let r = l.reserve(&alice(), &est(800, 0.0), NOON).unwrap();
    // Traffic the next day rolls the scope over while the old reservation is in flight.
    let tomorrow = NOON + DAY;
    l.settle(
        l.reserve(&alice(), &est(100, 0.0), tomorrow).unwrap(),
        100,
        0.0,
        tomorrow,
    );
    drop(r);
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (800, 0));
    assert_eq!(tokens_of(&l, "daily", "user:alice", tomorrow), (100, 0));
}

#[test]
fn reservations_report_what_they_hold() {
    let l = daily();
    let r = l.reserve(&alice(), &est(10, 0.25), NOON).unwrap();
    assert_eq!(
        (
            r.estimate_tokens(),
            r.estimate_cost_usd(),
            r.reserved_at_ms(),
            r.holds()
        ),
        (10, 0.25, NOON, 1)
    );
    assert_eq!(
        format!("{r:?}"),
        format!(
            "Reservation {{ tokens: 10, cost_usd: 0.25, reserved_at_ms: {NOON}, holds: 1, settled: false }}"
        )
    );
    l.settle(r, 10, 0.25, NOON);
}
