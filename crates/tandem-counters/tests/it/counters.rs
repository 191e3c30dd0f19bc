//! The shared counters against the local ledger: the same decisions and refusals, exact under
//! concurrency, and settlement.

use std::sync::Arc;

use tandem_budget::{BudgetRule, Estimate, Ledger, Period, RateRule, Scope, ScopePattern};
use tandem_counters::{RedisCounters, Verdict};

/// The test server's URL. `cargo xtask ci` starts Redis and sets it; elsewhere the tests say they are
/// skipped, unless `TANDEM_REQUIRE_SERVICES` is set, which makes a missing server a failure.
fn redis_url() -> Option<String> {
    match std::env::var("TANDEM_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("TANDEM_REQUIRE_SERVICES").is_none(),
                "TANDEM_TEST_REDIS_URL is not set but TANDEM_REQUIRE_SERVICES is"
            );
            eprintln!("skipped: TANDEM_TEST_REDIS_URL is not set");
            None
        }
    }
}

async fn counters() -> Option<RedisCounters> {
    let url = redis_url()?;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    Some(RedisCounters::connect(&url, &prefix).await.unwrap())
}

fn ledger() -> Ledger {
    Ledger::new(
        vec![
            BudgetRule {
                name: "team-day".into(),
                applies_to: ScopePattern::parse("team:*").unwrap(),
                period: Period::Day,
                max_tokens: Some(1_000),
                max_cost_usd: Some(0.5),
            },
            BudgetRule {
                name: "user-month".into(),
                applies_to: ScopePattern::parse("user:*").unwrap(),
                period: Period::Month,
                max_tokens: Some(2_500),
                max_cost_usd: None,
            },
        ],
        vec![RateRule {
            name: "rpm".into(),
            applies_to: ScopePattern::parse("user:*").unwrap(),
            requests_per_minute: Some(7),
            tokens_per_minute: Some(900),
        }],
    )
    .unwrap()
}

fn scopes(user: &str) -> Vec<Scope> {
    vec![Scope::User(user.into()), Scope::Team("payments".into())]
}

/// The real clock: counters expire one window after theirs ends, so a past time would be gone at once.
fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A fixed sequence of requests, settled with varying actuals, gets the same answer from Redis as from
/// the local ledger, refusal messages included.
#[tokio::test]
async fn redis_decides_as_the_local_ledger() {
    let Some(shared) = counters().await else {
        return;
    };
    let local = ledger();
    let plans = ledger();
    let mut admitted = 0;
    let start = now();
    for i in 0..40u64 {
        let now = start + i64::try_from(i).unwrap() * 4_000;
        let user = if i % 3 == 0 { "bob" } else { "alice" };
        let estimate = Estimate {
            input_tokens: 40 + (i * 7) % 60,
            output_tokens: 50,
            cost_usd: 0.01 * ((i % 4) as f64),
        };
        let scopes = scopes(user);
        let local_answer = local.reserve(&scopes, &estimate, now);
        let plan = plans.shared_plan(&scopes, &estimate, now);
        let shared_answer = shared.reserve(&plan).await.unwrap();
        match (local_answer, shared_answer) {
            (Ok(held), Verdict::Admitted) => {
                admitted += 1;
                let actual = estimate.tokens() / 2 + i % 5;
                let cost = estimate.cost_usd / 3.0;
                local.settle(held, actual, cost, now);
                shared
                    .settle(&plan, actual, tandem_budget::nanos(cost))
                    .await
                    .unwrap();
            }
            (Err(local_refusal), Verdict::Refused { index, kind, a, b }) => {
                let shared_refusal = plan.refusal(index, kind, a, b).unwrap();
                assert_eq!(shared_refusal, local_refusal, "request {i}");
            }
            (local, shared) => panic!("request {i}: local {local:?}, shared {shared:?}"),
        }
    }
    assert!(admitted > 5 && admitted < 40, "admitted {admitted}");
}

/// Many concurrent reservations against one budget admit exactly as many as fit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_overspend() {
    let Some(shared) = counters().await else {
        return;
    };
    let shared = Arc::new(shared);
    let ledger = Arc::new(
        Ledger::new(
            vec![BudgetRule {
                name: "tight".into(),
                applies_to: ScopePattern::parse("team:*").unwrap(),
                period: Period::Day,
                max_tokens: Some(1_000),
                max_cost_usd: None,
            }],
            Vec::new(),
        )
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (shared, ledger) = (Arc::clone(&shared), Arc::clone(&ledger));
        tasks.push(tokio::spawn(async move {
            let estimate = Estimate {
                input_tokens: 30,
                output_tokens: 20,
                cost_usd: 0.0,
            };
            let plan = ledger.shared_plan(&[Scope::Team("t".into())], &estimate, now());
            shared.reserve(&plan).await.unwrap() == Verdict::Admitted
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 20, "1,000 tokens hold exactly 20 requests of 50");
}

/// Settling releases the reservation: a cheap actual makes room for more.
#[tokio::test]
async fn settling_makes_room() {
    let Some(shared) = counters().await else {
        return;
    };
    let ledger = Ledger::new(
        vec![BudgetRule {
            name: "b".into(),
            applies_to: ScopePattern::parse("user:*").unwrap(),
            period: Period::Day,
            max_tokens: Some(100),
            max_cost_usd: None,
        }],
        Vec::new(),
    )
    .unwrap();
    let estimate = Estimate {
        input_tokens: 60,
        output_tokens: 0,
        cost_usd: 0.0,
    };
    let scopes = [Scope::User("u".into())];
    let first = ledger.shared_plan(&scopes, &estimate, now());
    assert_eq!(shared.reserve(&first).await.unwrap(), Verdict::Admitted);
    let second = ledger.shared_plan(&scopes, &estimate, now());
    assert!(matches!(
        shared.reserve(&second).await.unwrap(),
        Verdict::Refused { a: 0, b: 60, .. }
    ));
    shared.settle(&first, 10, 0).await.unwrap();
    assert_eq!(shared.reserve(&second).await.unwrap(), Verdict::Admitted);
    shared.settle(&second, 60, 0).await.unwrap();
    let third = ledger.shared_plan(&scopes, &estimate, now());
    assert!(matches!(
        shared.reserve(&third).await.unwrap(),
        Verdict::Refused { a: 70, b: 0, .. }
    ));
}

/// An unreachable server is an error within the deadline, not a hang.
#[tokio::test]
async fn unreachable_redis_is_an_error() {
    let started = std::time::Instant::now();
    let err = RedisCounters::connect("redis://127.0.0.1:1/", "x:")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{err}"
    );
}
