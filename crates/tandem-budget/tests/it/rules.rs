//! Each rule kind (tokens, cost, requests per minute, tokens per minute) and each pattern kind.

use pretty_assertions::assert_eq;
use tandem_budget::{Error, ExceededKind, Ledger, Period};

use crate::support::{NOON, alice, budget, est, ledger, rate, scopes, tokens_of, tokens_per_day};

#[test]
fn token_budget_admits_until_the_estimate_no_longer_fits() {
    let l = ledger(vec![tokens_per_day("daily", "user:*", 1_000)], vec![]);
    let a = l.reserve(&alice(), &est(600, 0.0), NOON).unwrap();
    let err = l.reserve(&alice(), &est(401, 0.0), NOON).unwrap_err();
    assert_eq!(
        (err.rule.as_str(), err.scope.as_str(), err.kind),
        ("daily", "user:alice", ExceededKind::Tokens)
    );
    let b = l.reserve(&alice(), &est(400, 0.0), NOON).unwrap();
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (0, 1_000));
    l.settle(a, 100, 0.0, NOON);
    l.settle(b, 400, 0.0, NOON);
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (500, 0));
    assert!(l.reserve(&alice(), &est(500, 0.0), NOON).is_ok());
}

#[test]
fn cost_budget_counts_dollars_exactly() {
    let l = ledger(
        vec![budget(
            "spend",
            "team:payments",
            Period::Month,
            None,
            Some(0.3),
        )],
        vec![],
    );
    // 0.1 + 0.2 != 0.3 in f64, but nano-dollars add up exactly.
    l.settle(
        l.reserve(&alice(), &est(10, 0.1), NOON).unwrap(),
        10,
        0.1,
        NOON,
    );
    l.settle(
        l.reserve(&alice(), &est(10, 0.2), NOON).unwrap(),
        10,
        0.2,
        NOON,
    );
    let err = l.reserve(&alice(), &est(10, 1e-9), NOON).unwrap_err();
    assert_eq!(
        (err.kind, err.scope.as_str()),
        (ExceededKind::Cost, "team:payments")
    );
    // A request priced at nothing still fits a spent cost budget's arithmetic (0 <= 0 more).
    assert!(l.reserve(&alice(), &est(10, 0.0), NOON).is_ok());
}

#[test]
fn a_budget_with_both_limits_refuses_on_either() {
    let l = ledger(
        vec![budget("both", "user:*", Period::Day, Some(100), Some(1.0))],
        vec![],
    );
    assert_eq!(
        l.reserve(&alice(), &est(101, 0.0), NOON).unwrap_err().kind,
        ExceededKind::Tokens
    );
    assert_eq!(
        l.reserve(&alice(), &est(1, 1.01), NOON).unwrap_err().kind,
        ExceededKind::Cost
    );
    assert!(l.reserve(&alice(), &est(100, 1.0), NOON).is_ok());
}

#[test]
fn requests_per_minute_counts_at_reserve() {
    let l = ledger(vec![], vec![rate("rpm", "user:*", Some(3), None)]);
    // Settling immediately does not give the request back.
    for _ in 0..3 {
        l.settle(
            l.reserve(&alice(), &est(10, 0.0), NOON).unwrap(),
            10,
            0.0,
            NOON,
        );
    }
    let err = l
        .reserve(&alice(), &est(10, 0.0), NOON + 59_999)
        .unwrap_err();
    assert_eq!(err.kind, ExceededKind::Requests);
    // The next minute starts at +60 s; there a third of this minute's 3 must fade: +80 s.
    assert_eq!(err.retry_after_s, Some(21));
    // Another user has their own allowance.
    assert!(
        l.reserve(&scopes(&["user:bob"]), &est(10, 0.0), NOON)
            .is_ok()
    );
    // Sliding: at +90 s the previous minute's 3 weigh 1.5, so one more fits, not two.
    let r = l.reserve(&alice(), &est(10, 0.0), NOON + 90_000).unwrap();
    assert!(l.reserve(&alice(), &est(10, 0.0), NOON + 90_000).is_err());
    drop(r);
    assert!(l.reserve(&alice(), &est(10, 0.0), NOON + 180_000).is_ok());
}

#[test]
fn tokens_per_minute_counts_the_estimate_then_the_actual() {
    let l = ledger(vec![], vec![rate("tpm", "key:*", None, Some(1_000))]);
    let a = l.reserve(&alice(), &est(800, 0.0), NOON).unwrap();
    let err = l.reserve(&alice(), &est(300, 0.0), NOON).unwrap_err();
    assert_eq!(
        (err.kind, err.scope.as_str()),
        (ExceededKind::TokensPerMinute, "key:laptop")
    );
    // The actual was smaller: the rest of the estimate is given back.
    l.settle(a, 200, 0.0, NOON + 1_000);
    let b = l.reserve(&alice(), &est(800, 0.0), NOON + 2_000).unwrap();
    // An actual larger than the estimate counts in full.
    l.settle(b, 900, 0.0, NOON + 3_000);
    assert_eq!(
        l.reserve(&alice(), &est(1, 0.0), NOON + 4_000)
            .unwrap_err()
            .kind,
        ExceededKind::TokensPerMinute
    );
    // A request larger than the limit can never be admitted.
    let err = l
        .reserve(&scopes(&["key:other"]), &est(1_001, 0.0), NOON)
        .unwrap_err();
    assert_eq!(err.retry_after_s, None);
}

#[test]
fn settling_after_the_minute_rolled_over_adjusts_the_minute_reserved_in() {
    let l = ledger(vec![], vec![rate("tpm", "user:*", None, Some(1_000))]);
    let minute = NOON; // NOON is a whole minute
    let a = l
        .reserve(&alice(), &est(1_000, 0.0), minute + 50_000)
        .unwrap();
    // Settled in the next minute with a small actual: the previous minute now holds 100, weighing 50 at +30 s.
    l.settle(a, 100, 0.0, minute + 70_000);
    assert!(l.reserve(&alice(), &est(950, 0.0), minute + 90_000).is_ok());
}

#[test]
fn exact_patterns_apply_to_one_scope_and_each_patterns_to_every_scope_of_a_kind() {
    let l = ledger(
        vec![
            tokens_per_day("payments", "team:payments", 100),
            tokens_per_day("each-project", "project:*", 50),
        ],
        vec![],
    );
    // Team search is not limited by the payments budget; project web is limited to 50.
    let search = scopes(&["team:search", "project:web"]);
    assert_eq!(
        l.reserve(&search, &est(60, 0.0), NOON).unwrap_err().rule,
        "each-project"
    );
    let search_api = scopes(&["team:search", "project:api"]);
    drop(l.reserve(&search_api, &est(50, 0.0), NOON).unwrap());
    let payments = scopes(&["team:payments"]);
    drop(l.reserve(&payments, &est(100, 0.0), NOON).unwrap());
    assert_eq!(
        l.reserve(&payments, &est(1, 0.0), NOON).unwrap_err().rule,
        "payments"
    );
    assert_eq!(tokens_of(&l, "each-project", "project:api", NOON), (50, 0));
    assert_eq!(tokens_of(&l, "each-project", "project:web", NOON), (0, 0));
}

#[test]
fn a_scope_listed_twice_counts_once_and_requests_without_matching_scopes_pass() {
    let l = ledger(
        vec![tokens_per_day("daily", "user:*", 100)],
        vec![rate("rpm", "user:*", Some(1), None)],
    );
    let twice = scopes(&["user:alice", "user:alice"]);
    let r = l.reserve(&twice, &est(60, 0.0), NOON).unwrap();
    assert_eq!(r.holds(), 2);
    l.settle(r, 60, 0.0, NOON);
    assert_eq!(tokens_of(&l, "daily", "user:alice", NOON), (60, 0));
    let r = l
        .reserve(&scopes(&["team:payments"]), &est(1_000_000, 1e6), NOON)
        .unwrap();
    assert_eq!(r.holds(), 0);
}

#[test]
fn two_users_in_one_request_are_each_charged() {
    let l = ledger(vec![tokens_per_day("daily", "user:*", 100)], vec![]);
    l.settle(
        l.reserve(&scopes(&["user:a", "user:b"]), &est(60, 0.0), NOON)
            .unwrap(),
        60,
        0.0,
        NOON,
    );
    assert_eq!(tokens_of(&l, "daily", "user:a", NOON), (60, 0));
    assert_eq!(tokens_of(&l, "daily", "user:b", NOON), (60, 0));
}

#[track_caller]
fn check_invalid(result: Result<Ledger, Error>, expect: &str) {
    assert_eq!(result.unwrap_err().to_string(), expect);
}

#[test]
fn rules_are_validated() {
    let b = |name: &str| tokens_per_day(name, "user:*", 1);
    check_invalid(
        Ledger::new(vec![b("x"), b("x")], vec![]),
        "duplicate budget or rate limit name `x`",
    );
    check_invalid(
        Ledger::new(vec![b("x")], vec![rate("x", "user:*", Some(1), None)]),
        "duplicate budget or rate limit name `x`",
    );
    check_invalid(
        Ledger::new(vec![b(" ")], vec![]),
        "a budget or rate limit has an empty name",
    );
    check_invalid(
        Ledger::new(
            vec![budget("none", "user:*", Period::Day, None, None)],
            vec![],
        ),
        "`none` sets no limit",
    );
    check_invalid(
        Ledger::new(vec![], vec![rate("none", "user:*", None, None)]),
        "`none` sets no limit",
    );
    check_invalid(
        Ledger::new(
            vec![budget("neg", "user:*", Period::Day, None, Some(-1.0))],
            vec![],
        ),
        "`neg` has an invalid limit: max_cost_usd must be finite and not negative",
    );
    assert!(!Ledger::new(vec![], vec![]).unwrap().has_rules());
}
