//! Scripted faults: resets, stalls, malformed and truncated streams, oversized chunks, delays and cancellation.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    anthropic_body, events, openai_body, openai_text, post, read_all, server, wait_for,
};

#[tokio::test]
async fn reset_after_aborts_the_body() {
    let server = server().await;
    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?tokens=10&reset_after=3", true),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (body, failed) = read_all(response).await;
    assert!(failed, "the body must end with an error, got {body:?}");
    assert!(body.contains("tok2 "));
    assert!(!body.contains("tok3 "));
    assert!(!body.contains("[DONE]"));
    let stats = wait_for(&server, |stats| stats.streams_completed == 1).await;
    assert_eq!(
        (
            stats.streams_completed,
            stats.streams_cancelled,
            stats.tokens_sent
        ),
        (1, 0, 3)
    );

    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", server.addr()))
        .json(&openai_body("m?reset_after=0", false))
        .send()
        .await;
    assert!(
        response.is_err(),
        "a non-streaming reset closes the connection without an answer"
    );
}

#[tokio::test]
async fn stall_after_then_client_leaves() {
    let server = server().await;
    let mut response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?tokens=10&stall_after=2", true),
    )
    .await;
    let mut body = Vec::new();
    while !String::from_utf8_lossy(&body).contains("tok1 ") {
        body.extend_from_slice(&response.chunk().await.unwrap().unwrap());
    }
    let next = tokio::time::timeout(Duration::from_millis(200), response.chunk()).await;
    assert!(next.is_err(), "nothing may follow a stall");
    assert_eq!(server.stats().streams_cancelled, 0);
    let dropped_at = Instant::now();
    drop(response);
    let stats = wait_for(&server, |stats| stats.streams_cancelled == 1).await;
    assert!(
        dropped_at.elapsed() < Duration::from_millis(500),
        "cancellation seen after {:?}",
        dropped_at.elapsed()
    );
    assert_eq!((stats.streams_cancelled, stats.streams_completed), (1, 0));
}

#[tokio::test]
async fn malformed_after_sends_broken_json() {
    let server = server().await;
    let (body, failed) = read_all(
        post(
            &server,
            "/v1/chat/completions",
            &openai_body("m?tokens=5&malformed_after=2", true),
        )
        .await,
    )
    .await;
    assert!(!failed);
    assert!(
        body.ends_with("tok1 \"},\"finish_reason\":null}]}\n\ndata: {not json\n\n"),
        "{body}"
    );
    assert!(!body.contains("[DONE]"));

    let (body, _) = read_all(
        post(
            &server,
            "/v1/messages",
            &anthropic_body("c?malformed_after=1", true),
        )
        .await,
    )
    .await;
    assert!(
        body.ends_with("event: content_block_delta\ndata: {not json\n\n"),
        "{body}"
    );
    assert!(!body.contains("message_stop"));

    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?malformed_after=0", false),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{not json");
}

#[tokio::test]
async fn truncate_after_ends_cleanly_without_terminal_events() {
    let server = server().await;
    let (body, failed) = read_all(
        post(
            &server,
            "/v1/chat/completions",
            &openai_body("m?tokens=5&truncate_after=2", true),
        )
        .await,
    )
    .await;
    assert!(!failed);
    let events = events(&body);
    assert_eq!(openai_text(&events), "tok0 tok1 ");
    assert!(
        events
            .iter()
            .all(|event| event.json()["choices"][0]["finish_reason"].is_null())
    );

    let (body, failed) = read_all(
        post(
            &server,
            "/v1/messages",
            &anthropic_body("c?truncate_after=99", true),
        )
        .await,
    )
    .await;
    assert!(!failed);
    let names: Vec<String> = events_names(&body);
    assert_eq!(names.last().map(String::as_str), Some("content_block_stop"));
    assert!(
        !names
            .iter()
            .any(|name| name == "message_delta" || name == "message_stop")
    );

    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?truncate_after=0", false),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());
    let stats = server.stats();
    assert_eq!((stats.streams_completed, stats.streams_cancelled), (2, 0));
}

fn events_names(body: &str) -> Vec<String> {
    events(body)
        .into_iter()
        .filter_map(|event| event.name)
        .collect()
}

#[tokio::test]
async fn bytes_sends_one_oversized_token() {
    let server = server().await;
    let (body, _) = read_all(
        post(
            &server,
            "/v1/chat/completions",
            &openai_body("m?bytes=100000", true),
        )
        .await,
    )
    .await;
    let events = events(&body);
    assert_eq!(events.len(), 4);
    assert_eq!(openai_text(&events), "x".repeat(100_000));

    let body: Value = post(
        &server,
        "/v1/messages",
        &anthropic_body("c?bytes=10", false),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["content"][0]["text"], "xxxxxxxxxx");
    assert_eq!(body["usage"]["output_tokens"], 1);
}

#[tokio::test]
async fn delay_ms_delays_the_headers() {
    let server = server().await;
    let start = Instant::now();
    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?delay_ms=150", true),
    )
    .await;
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status(), 200);

    let start = Instant::now();
    let response = post(
        &server,
        "/v1/messages",
        &anthropic_body("c?delay_ms=100&status=503", false),
    )
    .await;
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn first_token_ms_sends_headers_first() {
    let server = server().await;
    let start = Instant::now();
    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?first_token_ms=400", true),
    )
    .await;
    let headers_at = start.elapsed();
    let (body, _) = read_all(response).await;
    let body_at = start.elapsed();
    assert!(body_at >= Duration::from_millis(400));
    assert!(
        headers_at + Duration::from_millis(200) <= body_at,
        "headers at {headers_at:?}, body at {body_at:?}"
    );
    assert_eq!(openai_text(&events(&body)), "hello from testkit");
}

#[tokio::test]
async fn client_disconnect_counts_as_cancelled() {
    let server = server().await;
    let mut response = post(
        &server,
        "/v1/messages",
        &anthropic_body("c?tokens=100000&rate=1000", true),
    )
    .await;
    response.chunk().await.unwrap().unwrap();
    response.chunk().await.unwrap().unwrap();
    let dropped_at = Instant::now();
    drop(response);
    let stats = wait_for(&server, |stats| stats.streams_cancelled == 1).await;
    assert_eq!(
        (
            stats.streams_started,
            stats.streams_cancelled,
            stats.streams_completed
        ),
        (1, 1, 0)
    );
    assert!(
        dropped_at.elapsed() < Duration::from_millis(500),
        "cancellation seen after {:?}",
        dropped_at.elapsed()
    );
}
