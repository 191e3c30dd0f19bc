//! The refusal messages clients read.

use tandem_budget::{Exceeded, Period};

use crate::support::{HOUR, NOON, alice, budget, est, ledger, rate, scopes};

fn render(e: &Exceeded) -> String {
    format!(
        "{} [{:?}, {}, retry after {:?}]\n{}\n",
        e.rule,
        e.kind,
        e.code(),
        e.retry_after_s,
        e.message
    )
}

#[test]
fn refusal_messages() {
    let l = ledger(
        vec![
            budget("team-daily", "team:*", Period::Day, Some(1_000_000), None),
            budget(
                "user-monthly-usd",
                "user:*",
                Period::Month,
                None,
                Some(50.0),
            ),
            budget("project-cents", "project:*", Period::Day, None, Some(0.05)),
        ],
        vec![rate("per-key", "key:*", Some(60), Some(200_000))],
    );
    let mut out = String::new();
    let mut push = |e: Exceeded| out.push_str(&render(&e));

    // A spent token budget.
    let payments = scopes(&["team:payments"]);
    l.settle(
        l.reserve(&payments, &est(1_000_000, 0.0), NOON).unwrap(),
        1_000_000,
        0.0,
        NOON,
    );
    push(l.reserve(&alice(), &est(4_096, 0.0), NOON).unwrap_err());

    // Not spent, but the estimate does not fit next to what is used and reserved.
    let bob = scopes(&["user:bob", "team:search"]);
    l.settle(
        l.reserve(&bob, &est(990_000, 0.0), NOON).unwrap(),
        990_000,
        0.0,
        NOON,
    );
    let held = l.reserve(&bob, &est(5_000, 0.0), NOON).unwrap();
    push(l.reserve(&bob, &est(6_000, 0.0), NOON).unwrap_err());
    drop(held);

    // A cost budget in dollars, and one under a dollar.
    let carol = scopes(&["user:carol"]);
    l.settle(
        l.reserve(&carol, &est(10, 49.9), NOON).unwrap(),
        10,
        49.95,
        NOON,
    );
    push(l.reserve(&carol, &est(10, 0.1), NOON).unwrap_err());
    let web = scopes(&["project:web"]);
    push(l.reserve(&web, &est(10, 0.0512), NOON).unwrap_err());

    // Rate limits: requests, then tokens, then a request larger than the limit.
    let dave = scopes(&["key:dave"]);
    for _ in 0..60 {
        l.settle(
            l.reserve(&dave, &est(10, 0.0), NOON).unwrap(),
            10,
            0.0,
            NOON,
        );
    }
    push(l.reserve(&dave, &est(10, 0.0), NOON + 15_000).unwrap_err());
    let erin = scopes(&["key:erin"]);
    l.settle(
        l.reserve(&erin, &est(190_000, 0.0), NOON).unwrap(),
        190_000,
        0.0,
        NOON,
    );
    push(
        l.reserve(&erin, &est(12_096, 0.0), NOON + HOUR / 120)
            .unwrap_err(),
    );
    push(
        l.reserve(&scopes(&["key:frank"]), &est(250_000, 0.0), NOON)
            .unwrap_err(),
    );

    insta::assert_snapshot!(out);
}
