//! Export and import of settled spend, as the gateway does through SQLite.

use pretty_assertions::assert_eq;
use tandem_budget::{Ledger, Period, PersistedUsage};

use crate::support::{NOON, NOV_29, alice, budget, est, ledger, rate, scopes, tokens_of};

fn rules() -> Ledger {
    ledger(
        vec![
            budget("user-daily", "user:*", Period::Day, Some(10_000), None),
            budget(
                "team-monthly",
                "team:*",
                Period::Month,
                Some(100_000),
                Some(20.0),
            ),
        ],
        vec![rate("rpm", "user:*", Some(60), None)],
    )
}

#[test]
fn export_then_import_round_trips_settled_spend_but_not_reservations() {
    let a = rules();
    a.settle(
        a.reserve(&alice(), &est(1_000, 0.123_456_789), NOON)
            .unwrap(),
        900,
        0.1,
        NOON,
    );
    a.settle(
        a.reserve(&scopes(&["user:bob"]), &est(50, 0.0), NOON)
            .unwrap(),
        50,
        0.0,
        NOON,
    );
    let in_flight = a.reserve(&alice(), &est(2_000, 1.0), NOON).unwrap();
    let exported = a.export();
    let nov_1 = 1_793_491_200_000;
    assert_eq!(
        exported,
        [
            PersistedUsage {
                rule: "user-daily".into(),
                scope: "user:alice".into(),
                window_start_ms: NOV_29,
                requests: 2,
                tokens: 900,
                cost_nanos: 100_000_000
            },
            PersistedUsage {
                rule: "user-daily".into(),
                scope: "user:bob".into(),
                window_start_ms: NOV_29,
                requests: 1,
                tokens: 50,
                cost_nanos: 0
            },
            PersistedUsage {
                rule: "team-monthly".into(),
                scope: "team:payments".into(),
                window_start_ms: nov_1,
                requests: 2,
                tokens: 900,
                cost_nanos: 100_000_000
            },
        ]
    );

    let b = rules();
    b.import(exported.clone());
    assert_eq!(b.export(), exported);
    assert_eq!(tokens_of(&b, "user-daily", "user:alice", NOON), (900, 0));
    // Importing again, or importing smaller numbers, never lowers a spend.
    b.import(exported.clone());
    b.import(vec![PersistedUsage {
        tokens: 1,
        ..exported[0].clone()
    }]);
    assert_eq!(b.export(), exported);
    // The imported spend is enforced.
    assert!(b.reserve(&alice(), &est(9_101, 0.0), NOON).is_err());
    assert!(b.reserve(&alice(), &est(9_100, 0.0), NOON).is_ok());
    drop(in_flight);
}

#[test]
fn export_rows_survive_json() {
    let a = rules();
    a.settle(
        a.reserve(&alice(), &est(10, 0.5), NOON).unwrap(),
        10,
        0.5,
        NOON,
    );
    let json = serde_json::to_string(&a.export()).unwrap();
    let back: Vec<PersistedUsage> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a.export());
}

#[test]
fn import_skips_rows_that_no_longer_fit_the_configuration() {
    let b = rules();
    let row = |rule: &str, scope: &str, window_start_ms| PersistedUsage {
        rule: rule.into(),
        scope: scope.into(),
        window_start_ms,
        requests: 1,
        tokens: 5,
        cost_nanos: 0,
    };
    b.import(vec![
        row("gone", "user:alice", NOV_29),
        row("user-daily", "not a scope", NOV_29),
        row("user-daily", "team:payments", NOV_29),
        row("user-daily", "user:alice", NOV_29 + 1),
        row("team-monthly", "team:payments", NOV_29),
        row("rpm", "user:alice", NOV_29),
        row("user-daily", "user:carol", NOV_29),
    ]);
    let kept: Vec<(String, String)> = b.export().into_iter().map(|r| (r.rule, r.scope)).collect();
    assert_eq!(kept, [("user-daily".to_owned(), "user:carol".to_owned())]);
}
