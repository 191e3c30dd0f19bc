//! Three `tandem serve` replicas sharing PostgreSQL and Redis: a key made on one works on all, budgets and
//! rate limits hold across them (no per-replica multiplication), a policy uploaded to one reaches the
//! others, every answered request is recorded once in the shared database, and the audit ledger they
//! share verifies, also after one replica is killed in the middle of a stream.
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
    /// The audit ledger's signing key, which every replica shares (as a mounted secret would be).
    _keys: tempfile::TempDir,
}

/// `n` replicas on one database and one Redis prefix, with one audit key, and `extra` config appended.
async fn cluster(n: usize, extra: &str) -> Option<Cluster> {
    let (pg, redis) = services()?;
    let keys = tempfile::tempdir().unwrap();
    let database = fresh_database(&pg).await;
    let upstream = upstream().await;
    let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
    let config = format!(
        "[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n\
         [auth]\nanonymous = false\napi_keys = true\n\
         [storage]\npostgres_url = \"{database}\"\nredis_url = \"{redis}\"\nredis_prefix = \"{prefix}\"\n\
         [audit]\ndir = {:?}\n[telemetry]\nlog_format = \"json\"\n{extra}",
        upstream.addr(),
        keys.path().join("audit").display().to_string(),
    );
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(Serve::start(&config, &[("TANDEM_ADMIN_TOKEN", ADMIN)]).await);
    }
    Some(Cluster {
        replicas,
        database,
        _upstream: upstream,
        _keys: keys,
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
    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if ![200, 429, 400, 401].contains(&status) {
        eprintln!("{status}: {}", response.text().await.unwrap_or_default());
    }
    status
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

/// A 1,000-token daily budget and streams that reserve about 200 tokens each and stay open (the upstream
/// stalls after the first token) until every status is in: 12 concurrent requests over three replicas
/// admit exactly 4, not 4 per replica. Once they are cut off and settled, there is room again everywhere.
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
    let sends = (0..12).map(|i| {
        let (client, key) = (client.clone(), key.clone());
        let base = cluster.replicas[i % 3].base.clone();
        async move {
            client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&json!({"model": "tk/m?tokens=20&stall_after=1", "stream": true, "max_tokens": 200,
                               "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    });
    let held = futures::future::join_all(sends).await;
    let statuses: Vec<u16> = held.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        8,
        "{statuses:?}"
    );
    drop(held);
    // Cut off after one token, each is charged its prompt and that token: room again, on every replica.
    for replica in &cluster.replicas {
        let deadline = Instant::now() + PATIENCE;
        while chat(&client, &replica.base, &key, "tk/m?tokens=3", 200).await != 200 {
            assert!(
                Instant::now() < deadline,
                "the budget never had room again on {}",
                replica.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// `tandem audit …` against a replica's config (the ledger is read from PostgreSQL).
fn audit(replica: &Serve, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("audit")
        .args(args)
        .arg("--config")
        .arg(replica.dir().join("tandem.toml"))
        .env_remove("TANDEM_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Three replicas append to one audit ledger in PostgreSQL while one of them is killed (SIGKILL) in the
/// middle of a stream: every answer a client received complete is in the ledger, once, and the ledger
/// verifies (chain, tree, signed checkpoints).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_audit_ledger_survives_a_killed_replica() {
    let Some(mut cluster) = cluster(3, "").await else {
        return;
    };
    let key = create_key(&cluster.replicas[0].base, "erin").await;
    let client = reqwest::Client::new();
    // A long stream on replica 1, which is killed once it is under way.
    let doomed = {
        let (client, key) = (client.clone(), key.clone());
        let base = cluster.replicas[1].base.clone();
        tokio::spawn(async move {
            let response = client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&json!({"model": "tk/m?tokens=400&rate=40", "stream": true,
                               "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await;
            match response {
                Ok(response) => response
                    .text()
                    .await
                    .map(|t| t.contains("[DONE]"))
                    .unwrap_or(false),
                Err(_) => false,
            }
        })
    };
    let answered = (0..24).map(|i| {
        let (client, key) = (client.clone(), key.clone());
        let base = cluster.replicas[[0, 2, 1][i % 3]].base.clone();
        async move {
            let response = client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(&key)
                .json(
                    &json!({"model": "tk/m?tokens=5&rate=50", "stream": i % 2 == 0,
                               "messages": [{"role": "user", "content": format!("q{i}")}]}),
                )
                .send()
                .await
                .ok()?;
            let id = response
                .headers()
                .get("x-request-id")?
                .to_str()
                .ok()?
                .to_owned();
            let status = response.status();
            let body = response.text().await.ok()?;
            let complete = status == 200 && (i % 2 == 1 || body.contains("[DONE]"));
            complete.then_some(id)
        }
    });
    let answered = tokio::spawn(futures::future::join_all(answered));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.replicas[1].kill();
    assert!(
        !doomed.await.unwrap(),
        "the killed replica's stream cannot have ended cleanly"
    );
    let answered: Vec<String> = answered.await.unwrap().into_iter().flatten().collect();
    assert!(
        answered.len() >= 12,
        "answers from the live replicas: {answered:?}"
    );
    let survivors: Vec<Serve> = cluster
        .replicas
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| (i != 1).then_some(r))
        .collect();
    let (ok, report, err) = audit(&survivors[0], &["verify"]);
    assert!(ok, "audit verify failed:\n{report}\n{err}");
    let (ok, shown, err) = audit(&survivors[1], &["show", "--json"]);
    assert!(ok, "{err}");
    for id in &answered {
        assert_eq!(
            shown.matches(id.as_str()).count(),
            1,
            "answered request {id} is in the ledger exactly once"
        );
    }
    let entries = query_count(&cluster.database, "SELECT count(*) FROM audit_entries").await;
    assert!(entries >= i64::try_from(answered.len()).unwrap());
    stop_all(survivors).await;
}

async fn stop_all(replicas: Vec<Serve>) {
    for mut replica in replicas {
        replica.stop().await;
    }
}

/// `tandem migrate` brings a new SQLite or PostgreSQL store to the current schema, says what it applied,
/// and has nothing to do the second time; `tandem keys` on PostgreSQL works once it has run.
#[tokio::test]
async fn migrate_applies_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("TANDEM_CONFIG")
            .env_remove("TANDEM_POSTGRES_URL")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
        (out.status.success(), text)
    };
    let (ok, first) = run(&["migrate"], &[]);
    assert!(
        ok && first.contains("sqlite: schema migrated from version 0 to"),
        "{first}"
    );
    assert!(
        first.contains("applied 1 ") && first.contains("applied 2 "),
        "{first}"
    );
    let (ok, second) = run(&["migrate"], &[]);
    assert!(
        ok && second.contains("sqlite: schema already at version"),
        "{second}"
    );

    let Some((pg, _)) = services() else {
        return;
    };
    let database = fresh_database(&pg).await;
    let env = [("TANDEM_POSTGRES_URL", database.as_str())];
    let (ok, refused) = run(&["keys", "list"], &env);
    assert!(!ok && refused.contains("tandem migrate"), "{refused}");
    let (ok, first) = run(&["migrate"], &env);
    assert!(
        ok && first.contains("postgres: schema migrated from version 0 to"),
        "{first}"
    );
    let (ok, second) = run(&["migrate"], &env);
    assert!(
        ok && second.contains("postgres: schema already at version"),
        "{second}"
    );
    let (ok, created) = run(&["keys", "create", "--user", "frank"], &env);
    assert!(ok && created.starts_with("tdm_"), "{created}");
    let (ok, listed) = run(&["keys", "list"], &env);
    assert!(ok && listed.contains("frank"), "{listed}");
}
