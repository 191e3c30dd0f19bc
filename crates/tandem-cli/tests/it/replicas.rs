//! Three `tandem serve` replicas sharing PostgreSQL and Redis: a key made on one works on all, budgets and
//! rate limits hold across them (no per-replica multiplication), a policy uploaded to one reaches the
//! others, and every answered request is recorded once in the shared database.
//!
//! Needs `TANDEM_TEST_POSTGRES_URL` (a role that may create databases) and `TANDEM_TEST_REDIS_URL`;
//! `cargo xtask ci` starts both servers. Each test gets its own database and Redis key prefix.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{PATIENCE, Serve, upstream};

/// The services' URLs, or `None` (the test says it is skipped) when they are not configured; with
/// `TANDEM_REQUIRE_SERVICES` set, missing services fail the test instead.
fn services() -> Option<(String, String)> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (
        var("TANDEM_TEST_POSTGRES_URL"),
        var("TANDEM_TEST_REDIS_URL"),
    ) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ => {
            assert!(
                std::env::var_os("TANDEM_REQUIRE_SERVICES").is_none(),
                "TANDEM_TEST_POSTGRES_URL and TANDEM_TEST_REDIS_URL must be set when TANDEM_REQUIRE_SERVICES is"
            );
            eprintln!("skipped: TANDEM_TEST_POSTGRES_URL / TANDEM_TEST_REDIS_URL not set");
            None
        }
    }
}

/// A fresh database on the test server; returns its URL.
async fn fresh_database(admin_url: &str) -> String {
    let name = format!("tandem_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn query_count(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

const ADMIN: &str = "replica-admin-token";

struct Cluster {
    replicas: Vec<Serve>,
    database: String,
    _upstream: tandem_testkit::Server,
}

/// `n` replicas on one database and one Redis prefix, with `extra` config appended.
async fn cluster(n: usize, extra: &str) -> Option<Cluster> {
    let (pg, redis) = services()?;
    let database = fresh_database(&pg).await;
    let upstream = upstream().await;
    let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
    let config = format!(
        "[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n\
         [auth]\nanonymous = false\napi_keys = true\n\
         [storage]\npostgres_url = \"{database}\"\nredis_url = \"{redis}\"\nredis_prefix = \"{prefix}\"\n\
         [telemetry]\nlog_format = \"json\"\n{extra}",
        upstream.addr()
    );
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(Serve::start(&config, &[("TANDEM_ADMIN_TOKEN", ADMIN)]).await);
    }
    Some(Cluster {
        replicas,
        database,
        _upstream: upstream,
    })
}

async fn create_key(base: &str, user: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"user": user}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["key"].as_str().unwrap().to_owned()
}

async fn chat(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    model: &str,
    max_tokens: u32,
) -> u16 {
    client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// 30 concurrent requests spread over three replicas against a 12-per-minute limit: exactly 12 pass.
/// A key created through one replica authenticates on the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_hold_across_replicas() {
    let Some(cluster) = cluster(
        3,
        "[[limits]]\nname = \"rpm\"\napplies_to = \"user:*\"\nrequests_per_minute = 12\n",
    )
    .await
    else {
        return;
    };
    let key = create_key(&cluster.replicas[0].base, "alice").await;
    let client = reqwest::Client::new();
    let sends = (0..30).map(|i| {
        let (client, key) = (client.clone(), key.clone());
        let base = cluster.replicas[i % 3].base.clone();
        async move { chat(&client, &base, &key, "tk/m?tokens=3", 16).await }
    });
    let statuses = futures::future::join_all(sends).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (12, 18), "{statuses:?}");
    stop_all(cluster.replicas).await;
    let recorded = query_count(
        &cluster.database,
        "SELECT count(*) FROM requests WHERE outcome = 'ok'",
    )
    .await;
    assert_eq!(
        recorded, 12,
        "every answered request is in the shared database once"
    );
}

/// A 1,000-token daily budget, requests that reserve about 200 tokens each and stay in flight for a
/// while: 12 concurrent requests over three replicas admit exactly 4, not 4 per replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budgets_hold_across_replicas() {
    let Some(cluster) = cluster(
        3,
        "[[budgets]]\nname = \"daily\"\napplies_to = \"user:*\"\nperiod = \"day\"\nmax_tokens = 1000\n",
    )
    .await
    else {
        return;
    };
    let key = create_key(&cluster.replicas[1].base, "bob").await;
    let client = reqwest::Client::new();
    // 20 tokens at 40 tokens/s: each answer takes half a second, so all reservations overlap.
    let sends = (0..12).map(|i| {
        let (client, key) = (client.clone(), key.clone());
        let base = cluster.replicas[i % 3].base.clone();
        async move { chat(&client, &base, &key, "tk/m?tokens=20&rate=40", 200).await }
    });
    let statuses = futures::future::join_all(sends).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 8);
    // Settled at their real size (a few tokens each), the budget has room again, on every replica.
    for replica in &cluster.replicas {
        assert_eq!(
            chat(&client, &replica.base, &key, "tk/m?tokens=3", 200).await,
            200
        );
    }
    stop_all(cluster.replicas).await;
}

/// A policy uploaded to one replica is stored as a version and enforced by the others within seconds;
/// a revoked key stops working on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policy_versions_and_revocation_reach_every_replica() {
    let Some(cluster) = cluster(3, "").await else {
        return;
    };
    let client = reqwest::Client::new();
    let key = create_key(&cluster.replicas[0].base, "carol").await;
    for replica in &cluster.replicas {
        assert_eq!(
            chat(&client, &replica.base, &key, "tk/m?tokens=2", 8).await,
            200
        );
    }
    let deny_carol = "@id(\"allow-all\")\npermit(principal, action, resource);\n\
                      @id(\"no-carol\")\nforbid(principal == Tandem::User::\"carol\", action, resource);\n";
    let uploaded = client
        .put(format!("{}/admin/policy", cluster.replicas[0].base))
        .bearer_auth(ADMIN)
        .body(deny_carol)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await.unwrap());
    assert_eq!(
        chat(&client, &cluster.replicas[0].base, &key, "tk/m?tokens=2", 8).await,
        400
    );
    for replica in &cluster.replicas[1..] {
        let deadline = Instant::now() + PATIENCE;
        while chat(&client, &replica.base, &key, "tk/m?tokens=2", 8).await != 400 {
            assert!(
                Instant::now() < deadline,
                "the policy never reached {}",
                replica.base
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let versions = query_count(&cluster.database, "SELECT count(*) FROM policy_versions").await;
    assert_eq!(versions, 1);

    let dave = create_key(&cluster.replicas[2].base, "dave").await;
    assert_eq!(
        chat(
            &client,
            &cluster.replicas[0].base,
            &dave,
            "tk/m?tokens=2",
            8
        )
        .await,
        200
    );
    let listed: Value = client
        .get(format!("{}/admin/keys", cluster.replicas[1].base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["user"] == "dave")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = client
        .delete(format!("{}/admin/keys/{id}", cluster.replicas[1].base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    for replica in &cluster.replicas {
        assert_eq!(
            chat(&client, &replica.base, &dave, "tk/m?tokens=2", 8).await,
            401
        );
    }
    stop_all(cluster.replicas).await;
}

async fn stop_all(replicas: Vec<Serve>) {
    for mut replica in replicas {
        replica.stop().await;
    }
}
