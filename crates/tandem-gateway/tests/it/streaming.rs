//! Streaming behaviour: no buffering, cancellation reaches the upstream, faults end with an error event.

use std::time::{Duration, Instant};

use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::json;
use tandem_store::Outcome;

use crate::support::{Harness, Options, sse_data, sse_events};

#[tokio::test]
async fn chunks_pass_through_without_buffering_the_answer() {
    let h = Harness::start().await;
    // 10 tokens at 20 tokens/s take ~500 ms upstream; the first must reach the client long before that.
    let started = Instant::now();
    let resp = h
        .post(
            "/v1/chat/completions",
            &json!({"model": "tk/x?tokens=10&rate=20", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let mut first_token_at = None;
    while let Some(chunk) = body.next().await {
        seen.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if first_token_at.is_none() && seen.contains("tok0") {
            first_token_at = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let first = first_token_at.unwrap();
    assert!(total >= Duration::from_millis(400), "{total:?}");
    assert!(
        first * 2 < total,
        "first token at {first:?} of {total:?}: the answer was buffered"
    );
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_at_once() {
    let h = Harness::start().await;
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "tk/x?tokens=100000&rate=50", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "tka/x?tokens=100000&rate=50", "stream": true, "input": "hi"}),
        ),
        (
            "/v1/messages",
            json!({"model": "tk/x?tokens=100000&rate=50", "stream": true, "max_tokens": 100000,
            "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ] {
        let before = h.upstream.stats().streams_cancelled;
        let resp = h.post(path, &body).await;
        let mut stream = resp.bytes_stream();
        // Read until the first token arrived, then hang up.
        let mut seen = String::new();
        while !seen.contains("tok0") {
            seen.push_str(std::str::from_utf8(&stream.next().await.unwrap().unwrap()).unwrap());
        }
        drop(stream);
        let stats = h
            .wait_stats(Duration::from_secs(2), |s| s.streams_cancelled > before)
            .await;
        assert_eq!(
            stats.streams_cancelled,
            before + 1,
            "{path}: upstream still streaming"
        );
    }
    // Each cut-off exchange is recorded as cancelled, with the deltas seen as a (non-exact) count.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let records = h.records();
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r.outcome, Outcome::Cancelled, "{r:?}");
        assert!(!r.usage_exact && r.usage.output_tokens >= 1);
    }
}

#[tokio::test]
async fn mid_stream_faults_end_with_an_error_event_never_a_success_marker() {
    let h = Harness::with(Options {
        provider_extra: "idle_timeout_ms = 300",
        ..Options::default()
    })
    .await;
    for fault in [
        "reset_after=3",
        "truncate_after=3",
        "malformed_after=3",
        "stall_after=3",
    ] {
        for upstream in ["tk", "tka"] {
            let model = format!("{upstream}/x?tokens=10&{fault}");
            // Chat: an error chunk and no [DONE].
            let (status, text) = h
                .post_text(
                    "/v1/chat/completions",
                    &json!({"model": model, "stream": true,
                    "messages": [{"role": "user", "content": "hi"}]}),
                )
                .await;
            assert_eq!(status, 200);
            let data = sse_data(&text);
            assert!(
                data.iter()
                    .any(|d| d["content"].is_null() && d["error"]["type"] == "server_error"),
                "{model}: {text}"
            );
            assert!(!text.contains("[DONE]"), "{model}: {text}");
            // Responses: response.failed and no response.completed.
            let (_, text) = h
                .post_text(
                    "/v1/responses",
                    &json!({"model": model, "stream": true, "input": "hi"}),
                )
                .await;
            let events = sse_events(&text);
            assert_eq!(events.last().unwrap(), "response.failed", "{model}: {text}");
            assert!(!events.iter().any(|e| e == "response.completed"));
            // Messages: an error event and no message_stop.
            let (_, text) = h
                .post_text(
                    "/v1/messages",
                    &json!({"model": model, "stream": true, "max_tokens": 100,
                    "messages": [{"role": "user", "content": "hi"}]}),
                )
                .await;
            let events = sse_events(&text);
            assert_eq!(events.last().unwrap(), "error", "{model}: {text}");
            assert!(!events.iter().any(|e| e == "message_stop"));
        }
    }
    let records = h.records();
    assert_eq!(records.len(), 24);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Error && r.status >= 502),
        "{records:?}"
    );
}

#[tokio::test]
async fn long_stream_counts_every_token() {
    let h = Harness::start().await;
    let (_, text) = h
        .post_text("/v1/chat/completions", &json!({"model": "tk/x?tokens=20000", "stream": true,
            "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let data = sse_data(&text);
    // DLP may re-cut the deltas (it holds back a byte that could start a match), so count tokens in
    // the joined text rather than events.
    let joined: String = data
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(joined.matches("tok").count(), 20000);
    let usage = &data[data.len() - 2]["usage"];
    assert_eq!(usage["completion_tokens"], 20000);
    let records = h.records();
    assert_eq!(records[0].usage.output_tokens, 20000);
}
