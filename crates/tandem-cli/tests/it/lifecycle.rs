//! `tandem serve`'s life after start: SIGTERM drains requests in flight up to `[server] drain_timeout_s`, then
//! exits 0 with records and the audit ledger flushed; SIGHUP (or a changed file) reloads the configuration
//! without dropping connections, refuses a bad one and keeps the one in force; a changed policy file still
//! reloads on its own.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{PATIENCE, Serve, upstream, wait_for_tokens};

/// The provider `tk` on `upstream`, JSON logs, and `extra` (which may start with more `[server]` keys).
fn config(upstream: &tandem_testkit::Server, extra: &str) -> String {
    format!(
        "{extra}\n[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n[telemetry]\nlog_format = \"json\"\n",
        upstream.addr()
    )
}

/// Rewrites the config file of `serve`: its `[server]` lines, then `config`.
fn rewrite(serve: &Serve, config: &str) {
    let path = serve.dir().join("tandem.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let server: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, server + config).unwrap();
}

/// Starts a streamed Chat Completions request for `model`; the response, headers read.
async fn start_stream(serve: &Serve, model: &str) -> reqwest::Response {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", serve.base))
        .json(&json!({
            "model": model,
            "stream": true,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads a streamed body until it ends or breaks (bounded); the text read and whether it ended cleanly.
async fn read_stream(mut response: reqwest::Response) -> (String, bool) {
    let mut text = String::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return (text, true),
            Ok(Err(_)) => return (text, false),
            Err(_) => panic!("the stream neither ended nor broke: {text}"),
        }
    }
}

/// A non-streamed answer's status and text.
async fn ask(client: &reqwest::Client, serve: &Serve, model: &str) -> (u16, Value) {
    let response = client
        .post(format!("{}/v1/chat/completions", serve.base))
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn content(answer: &Value) -> &str {
    answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
}

/// `(outcome, stream)` of every stored record, in order.
fn records(serve: &Serve) -> Vec<(String, bool)> {
    let db = rusqlite::Connection::open(serve.dir().join("state/tandem.db")).unwrap();
    let mut query = db
        .prepare("SELECT outcome, stream FROM requests ORDER BY seq")
        .unwrap();
    query
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The outcome of every request entry sealed into the audit ledger, in order.
fn audited(serve: &Serve) -> Vec<String> {
    let db = rusqlite::Connection::open(serve.dir().join("state/audit/ledger.db")).unwrap();
    let mut query = db
        .prepare("SELECT CAST(body AS TEXT) FROM entries ORDER BY idx")
        .unwrap();
    query
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|body| serde_json::from_str::<Value>(&body.unwrap()).unwrap())
        .filter(|entry| entry["kind"] == "request")
        .map(|entry| entry["outcome"].as_str().unwrap().to_owned())
        .collect()
}

fn refused(log: &Value, part: &str) -> bool {
    log["fields"]["error"]
        .as_str()
        .is_some_and(|error| error.contains(part))
}

#[tokio::test]
async fn lifecycle_sigterm_lets_a_stream_finish() {
    let upstream = upstream().await;
    let mut serve = Serve::start(&config(&upstream, ""), &[]).await;
    let addr = serve.base.trim_start_matches("http://").to_owned();
    let stream = start_stream(&serve, "tk/m?tokens=60&rate=20").await;
    wait_for_tokens(&upstream, 2).await;

    serve.signal("TERM");
    serve
        .wait_logged(
            "no longer accepting connections; draining those open",
            |_| true,
        )
        .await;
    assert_eq!(
        upstream.stats().streams_completed,
        0,
        "the stream ended before SIGTERM"
    );
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "a new connection was accepted while draining"
    );
    let (text, clean) = read_stream(stream).await;
    assert!(clean, "{text}");
    assert!(text.contains("tok59\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    let status = serve.wait_exit().await;
    assert!(status.success(), "tandem serve exited with {status}");
    assert_eq!(records(&serve), [("ok".to_owned(), true)]);
    assert_eq!(audited(&serve), ["ok"]);
}

#[tokio::test]
async fn lifecycle_drain_deadline_ends_a_long_stream() {
    let upstream = upstream().await;
    let mut serve = Serve::start(&config(&upstream, "drain_timeout_s = 1"), &[]).await;
    // 2,000 tokens at 20 a second: far longer than the test waits.
    let stream = start_stream(&serve, "tk/m?tokens=2000&rate=20").await;
    wait_for_tokens(&upstream, 2).await;

    serve.signal("TERM");
    let (text, _) = read_stream(stream).await;
    assert!(!text.contains("[DONE]"), "{text}");
    serve
        .wait_logged(
            "drain deadline passed; closing the connections still open",
            |log| log["fields"]["connections"] == 1,
        )
        .await;
    let status = serve.wait_exit().await;
    assert!(status.success(), "tandem serve exited with {status}");

    assert_eq!(records(&serve), [("cancelled".to_owned(), true)]);
    assert_eq!(audited(&serve), ["cancelled"]);
    let deadline = Instant::now() + PATIENCE;
    while upstream.stats().streams_cancelled < 1 {
        assert!(
            Instant::now() < deadline,
            "the upstream stream was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn lifecycle_sighup_reloads_while_a_stream_continues() {
    let upstream = upstream().await;
    let alias = |say: &str| {
        format!("[[models]]\nname = \"pick\"\nprovider = \"tk\"\nmodel = \"m?say={say}\"\n")
    };
    let mut serve = Serve::start(&(config(&upstream, "") + &alias("before")), &[]).await;
    let client = reqwest::Client::new();
    let (status, answer) = ask(&client, &serve, "pick").await;
    assert_eq!((status, content(&answer)), (200, "before"));
    let stream = start_stream(&serve, "tk/m?tokens=60&rate=20").await;
    wait_for_tokens(&upstream, 2).await;

    let fresh = "[[models]]\nname = \"fresh\"\nprovider = \"tk\"\nmodel = \"m?say=new\"\n";
    rewrite(&serve, &(config(&upstream, "") + &alias("after") + fresh));
    serve.signal("HUP");
    serve
        .wait_logged("reloading configuration", |log| {
            log["fields"]["trigger"] == "SIGHUP"
        })
        .await;
    serve.wait_logged("configuration reloaded", |_| true).await;
    assert_eq!(
        upstream.stats().streams_completed,
        0,
        "the stream ended before the reload"
    );

    // The same client: a kept-alive connection takes up the new configuration too.
    let (status, answer) = ask(&client, &serve, "pick").await;
    assert_eq!((status, content(&answer)), (200, "after"));
    let (status, answer) = ask(&client, &serve, "fresh").await;
    assert_eq!((status, content(&answer)), (200, "new"));
    let models: Value = client
        .get(format!("{}/v1/models", serve.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(models.to_string().contains("\"fresh\""), "{models}");

    // The stream that started before the reload finished on the old configuration.
    let (text, clean) = read_stream(stream).await;
    assert!(clean && text.contains("tok59\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    serve.stop().await;
    assert_eq!(records(&serve).iter().filter(|(o, _)| o == "ok").count(), 4);
}

#[tokio::test]
async fn lifecycle_bad_config_is_refused_and_the_old_one_kept() {
    let upstream = upstream().await;
    let good = config(&upstream, "")
        + "[[models]]\nname = \"pick\"\nprovider = \"tk\"\nmodel = \"m?say=kept\"\n";
    let mut serve = Serve::start(&good, &[]).await;
    let client = reqwest::Client::new();

    // Not TOML.
    rewrite(&serve, "[[providers]\nname = \"tk\"\n");
    serve.signal("HUP");
    serve
        .wait_logged("configuration refused; keeping the one in force", |log| {
            refused(log, "tandem.toml")
        })
        .await;
    let (status, answer) = ask(&client, &serve, "pick").await;
    assert_eq!((status, content(&answer)), (200, "kept"));

    // Valid, but the state directory only changes with a restart.
    std::fs::write(
        serve.dir().join("tandem.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = {:?}\n{good}",
            serve.dir().join("elsewhere").display().to_string()
        ),
    )
    .unwrap();
    serve.signal("HUP");
    let log = serve
        .wait_logged("configuration refused; keeping the one in force", |log| {
            refused(log, "server.state_dir")
        })
        .await;
    assert!(refused(&log, "cannot change without a restart"), "{log}");
    let (status, answer) = ask(&client, &serve, "pick").await;
    assert_eq!((status, content(&answer)), (200, "kept"));
    assert!(serve.logged("configuration reloaded", |_| true).is_empty());
    serve.stop().await;
}

#[tokio::test]
async fn lifecycle_policy_file_change_reloads_and_survives_a_config_reload() {
    let upstream = upstream().await;
    let policies = tempfile::tempdir().unwrap();
    let policy = policies.path().join("policy.cedar");
    std::fs::write(
        &policy,
        "@id(\"allow-all\")\npermit(principal, action, resource);\n",
    )
    .unwrap();
    let good = config(
        &upstream,
        &format!("[policy]\nfile = {:?}", policy.display().to_string()),
    );
    let mut serve = Serve::start(&good, &[]).await;
    let client = reqwest::Client::new();
    let (status, _) = ask(&client, &serve, "tk/m").await;
    assert_eq!(status, 200);

    std::fs::write(
        &policy,
        "@id(\"allow-all\")\npermit(principal, action, resource);\n\
         @id(\"no-models\")\nforbid(principal, action == Tandem::Action::\"use_model\", resource);\n",
    )
    .unwrap();
    serve.wait_logged("policy reloaded", |_| true).await;
    let (status, answer) = ask(&client, &serve, "tk/m").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("no-models"), "{answer}");

    // A configuration reload keeps the policy in force.
    rewrite(
        &serve,
        &(good + "[[models]]\nname = \"pick\"\nprovider = \"tk\"\nmodel = \"m\"\n"),
    );
    serve.signal("HUP");
    serve.wait_logged("configuration reloaded", |_| true).await;
    let (status, answer) = ask(&client, &serve, "pick").await;
    assert_eq!(status, 400, "{answer}");

    // The policy file is still watched after the reload.
    std::fs::write(
        &policy,
        "@id(\"allow-all\")\npermit(principal, action, resource);\n",
    )
    .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while serve.logged("policy reloaded", |_| true).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the policy file was not reloaded again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, answer) = ask(&client, &serve, "pick").await;
    assert_eq!(status, 200, "{answer}");
    serve.stop().await;
}

#[tokio::test]
async fn lifecycle_reload_keeps_budget_spend() {
    let upstream = upstream().await;
    let rules = |rpm: u32| {
        format!(
            "[[limits]]\nname = \"rpm\"\napplies_to = \"user:*\"\nrequests_per_minute = {rpm}\n\
             [[budgets]]\nname = \"daily\"\napplies_to = \"user:*\"\nperiod = \"day\"\nmax_tokens = 1000000\n"
        )
    };
    let alias =
        |name: &str| format!("[[models]]\nname = \"{name}\"\nprovider = \"tk\"\nmodel = \"m\"\n");
    let mut serve = Serve::start(
        &(config(&upstream, "") + &rules(2)),
        &[("TANDEM_ADMIN_TOKEN", "lifecycle-admin")],
    )
    .await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        assert_eq!(ask(&client, &serve, "tk/m").await.0, 200);
    }

    // Same rules: the same counters, so the rate limit is still spent.
    rewrite(&serve, &(config(&upstream, "") + &rules(2) + &alias("one")));
    serve.signal("HUP");
    wait_for_model(&client, &serve, "one").await;
    assert_eq!(ask(&client, &serve, "tk/m").await.0, 429);

    // Changed rules: a new ledger, starting from the old one's settled spend.
    rewrite(
        &serve,
        &(config(&upstream, "") + &rules(100) + &alias("two")),
    );
    serve.signal("HUP");
    wait_for_model(&client, &serve, "two").await;
    assert_eq!(ask(&client, &serve, "tk/m").await.0, 200);
    let usage: Value = client
        .get(format!("{}/admin/budgets", serve.base))
        .bearer_auth("lifecycle-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let daily = usage["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["rule"] == "daily")
        .unwrap_or_else(|| panic!("{usage}"));
    assert_eq!(daily["requests"], 3, "{usage}");
    serve.stop().await;
}

/// Waits (bounded) until `/v1/models` lists `name`: the reload that adds it is in force.
async fn wait_for_model(client: &reqwest::Client, serve: &Serve, name: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let models: Value = client
            .get(format!("{}/v1/models", serve.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == name)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{name}` never appeared: {models}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
