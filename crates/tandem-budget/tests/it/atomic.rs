//! A reservation is all or nothing: when one matching rule refuses, no other rule is charged.

use pretty_assertions::assert_eq;
use tandem_budget::{ExceededKind, Period};

use crate::support::{NOON, alice, budget, est, ledger, rate, tokens_of, tokens_per_day};

#[test]
fn a_refusal_by_one_rule_charges_none_of_the_others() {
    let l = ledger(
        vec![
            tokens_per_day("user-daily", "user:*", 1_000),
            budget(
                "team-monthly",
                "team:*",
                Period::Month,
                Some(10_000),
                Some(5.0),
            ),
            tokens_per_day("project-daily", "project:web", 500),
        ],
        vec![
            rate("user-rpm", "user:*", Some(100), Some(100_000)),
            rate("key-rpm", "key:*", Some(2), None),
        ],
    );
    let ok = l.reserve(&alice(), &est(400, 1.0), NOON).unwrap();
    assert_eq!(ok.holds(), 5);
    let before = l.usage(NOON);

    // The project budget refuses (400 + 200 > 500): nothing changes anywhere.
    let err = l.reserve(&alice(), &est(200, 1.0), NOON).unwrap_err();
    assert_eq!(
        (err.rule.as_str(), err.kind),
        ("project-daily", ExceededKind::Tokens)
    );
    assert_eq!(l.usage(NOON), before);

    // The last rate rule refuses (third request of the minute): still nothing changes.
    let small = l.reserve(&alice(), &est(10, 0.1), NOON).unwrap();
    let before = l.usage(NOON);
    let err = l.reserve(&alice(), &est(10, 0.1), NOON).unwrap_err();
    assert_eq!(
        (err.rule.as_str(), err.kind),
        ("key-rpm", ExceededKind::Requests)
    );
    assert_eq!(l.usage(NOON), before);

    l.settle(ok, 400, 1.0, NOON);
    l.settle(small, 10, 0.1, NOON);
    assert_eq!(tokens_of(&l, "user-daily", "user:alice", NOON), (410, 0));
    assert_eq!(
        tokens_of(&l, "team-monthly", "team:payments", NOON),
        (410, 0)
    );
    assert_eq!(
        tokens_of(&l, "project-daily", "project:web", NOON),
        (410, 0)
    );
    let requests: Vec<(String, u64)> = l
        .usage(NOON)
        .into_iter()
        .map(|r| (r.rule, r.requests))
        .collect();
    assert_eq!(
        requests,
        [
            ("user-daily", 2),
            ("team-monthly", 2),
            ("project-daily", 2),
            ("user-rpm", 2),
            ("key-rpm", 2)
        ]
        .map(|(r, n)| (r.to_owned(), n))
    );
}

#[test]
fn the_first_refusing_rule_is_reported_budgets_before_rate_limits() {
    let l = ledger(
        vec![
            tokens_per_day("first", "user:*", 10),
            tokens_per_day("second", "team:*", 10),
        ],
        vec![rate("rate", "user:*", None, Some(10))],
    );
    assert_eq!(
        l.reserve(&alice(), &est(11, 0.0), NOON).unwrap_err().rule,
        "first"
    );
}
