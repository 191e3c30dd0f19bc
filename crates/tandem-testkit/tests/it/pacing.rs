//! Pacing: per-request rates, the configured default rate and full speed.

use std::time::{Duration, Instant};

use tandem_testkit::{Config, spawn};

use crate::support::{config, events, openai_body, openai_text, post, read_all, server};

#[tokio::test]
async fn rate_option_paces_tokens() {
    let server = server().await;
    let start = Instant::now();
    let (body, _) = read_all(
        post(
            &server,
            "/v1/chat/completions",
            &openai_body("m?tokens=20&rate=200", true),
        )
        .await,
    )
    .await;
    // 20 tokens at 200 tokens/s: the last one is due after 95 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(events(&body).len(), 1 + 20 + 2);
}

#[tokio::test]
async fn config_rate_is_the_default_and_rate_zero_overrides_it() {
    let server = spawn(Config {
        tokens_per_sec: 100.0,
        ..config()
    })
    .await
    .unwrap();
    let start = Instant::now();
    read_all(
        post(
            &server,
            "/v1/messages",
            &crate::support::anthropic_body("c?tokens=10", true),
        )
        .await,
    )
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "took {:?}",
        start.elapsed()
    );

    let start = Instant::now();
    let (body, _) = read_all(
        post(
            &server,
            "/v1/chat/completions",
            &openai_body("m?tokens=1000&rate=0", true),
        )
        .await,
    )
    .await;
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(events(&body).len(), 1 + 1000 + 2);
}

#[tokio::test]
async fn full_speed_stream_is_complete() {
    let server = server().await;
    let (body, failed) = read_all(
        post(
            &server,
            "/v1/chat/completions",
            &openai_body("m?tokens=100000", true),
        )
        .await,
    )
    .await;
    assert!(!failed);
    let events = events(&body);
    assert_eq!(events.len(), 1 + 100_000 + 2);
    assert!(openai_text(&events[..3]).starts_with("tok0 tok1 "));
    assert_eq!(
        events[100_000].json()["choices"][0]["delta"]["content"],
        "tok99999 "
    );
    assert_eq!(server.stats().tokens_sent, 100_000);
}
