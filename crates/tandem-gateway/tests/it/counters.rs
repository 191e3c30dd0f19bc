//! Budgets counted in Redis: while Redis is down, a fail-closed gateway refuses the requests a rule
//! applies to and a fail-open one counts in its own memory; when Redis is back, shared counting resumes.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Harness, Options};

/// A private `redis-server` on `port`, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts one, or returns `None` (the test says it is skipped) when `redis-server` is not installed;
    /// with `TANDEM_REQUIRE_SERVICES` set that is a failure instead.
    fn start(port: u16) -> Option<Redis> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            assert!(
                std::env::var_os("TANDEM_REQUIRE_SERVICES").is_none(),
                "redis-server is not installed but TANDEM_REQUIRE_SERVICES is set"
            );
            eprintln!("skipped: redis-server is not installed");
            return None;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis { child, port })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn gateway(redis: &Redis, mode: &str) -> Harness {
    Harness::with(Options {
        extra_toml: format!(
            "[[budgets]]\nname = \"daily\"\napplies_to = \"user:*\"\nperiod = \"day\"\nmax_tokens = 1000000\n\
             [storage]\nredis_url = \"{}\"\nredis_prefix = \"t{}:\"\nredis_fail = \"{mode}\"\n",
            redis.url(),
            redis.port
        ),
        ..Options::default()
    })
    .await
}

async fn ask(h: &Harness) -> (u16, String) {
    h.post_text(
        "/v1/chat/completions",
        &json!({"model": "tk/m?tokens=2", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

#[tokio::test]
async fn fail_closed_refuses_while_redis_is_down_and_recovers() {
    let port = free_port();
    let Some(redis) = Redis::start(port) else {
        return;
    };
    let h = gateway(&redis, "closed").await;
    assert_eq!(ask(&h).await.0, 200);
    drop(redis);
    let (status, body) = ask(&h).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("budgets cannot be checked"), "{body}");
    let _back = Redis::start(port).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ask(&h).await.0 != 200 {
        assert!(Instant::now() < deadline, "shared counting never resumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn fail_open_counts_locally_while_redis_is_down() {
    let Some(redis) = Redis::start(free_port()) else {
        return;
    };
    let h = gateway(&redis, "open").await;
    assert_eq!(ask(&h).await.0, 200);
    drop(redis);
    let (status, body) = ask(&h).await;
    assert_eq!(status, 200, "{body}");
    let usage = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        usage.contains("tandem_budget_counter_errors_total"),
        "the failed call is counted"
    );
}
