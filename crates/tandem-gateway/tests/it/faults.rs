//! Fault injection beyond the single faults of `errors`, `streaming` and `routing`: storms of 5xx answers,
//! oversized and malformed upstream answers, clients that leave early, read slowly or not at all, send their
//! request a byte at a time, and many idle streams at once.
//!
//! Already covered elsewhere, and not repeated here:
//! - mid-stream reset, truncation, malformed event and stall (idle timeout), for both upstream kinds and all three
//!   client APIs: `streaming::mid_stream_faults_end_with_an_error_event_never_a_success_marker`;
//! - a client that hangs up mid-stream cancels the upstream: `streaming::client_disconnect_cancels_the_upstream_at_once`;
//! - upstream 4xx/5xx statuses become gateway errors: `errors::upstream_status_errors_map_to_gateway_errors`;
//! - unreachable upstream (502) and slow response headers (504): `errors::unreachable_upstream_is_502_and_slow_one_504`;
//! - oversized request bodies (413): `errors::oversized_body_is_413_with_or_without_content_length`;
//! - 5xx, slow headers, reset before the first token and a slow first token fall over to the next target, and the
//!   breaker then skips the failed one: `routing::failing_target_is_skipped_without_the_client_noticing`.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_gateway::serve::Timeouts;
use tandem_store::Outcome;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::support::{Harness, Options, sse_data, sse_events};

/// Longest wait for anything that must happen in these tests.
const PATIENCE: Duration = Duration::from_secs(20);

const CHAT: &str = "/v1/chat/completions";
const RESPONSES: &str = "/v1/responses";
const MESSAGES: &str = "/v1/messages";

/// A minimal request of `path`'s API for `model`.
fn request(path: &str, model: &str, stream: bool) -> Value {
    let messages = json!([{"role": "user", "content": "hi"}]);
    match path {
        CHAT => json!({"model": model, "stream": stream, "messages": messages}),
        RESPONSES => json!({"model": model, "stream": stream, "input": "hi"}),
        MESSAGES => {
            json!({"model": model, "stream": stream, "max_tokens": 100, "messages": messages})
        }
        other => panic!("no API at {other}"),
    }
}

/// Sends one request; its status and whole body.
async fn send(h: &Harness, path: &str, body: &Value) -> (u16, String) {
    let resp = h.client.post(h.url(path)).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The message of an error body, checked to be in the error shape of `path`'s API.
fn error_message(path: &str, text: &str) -> String {
    let v: Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
    if path == MESSAGES {
        assert_eq!(v["type"], "error", "{text}");
    }
    assert!(v["error"]["type"].is_string(), "{path}: {text}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

/// Whether a successful body (SSE or JSON) of `path`'s API holds the whole scripted answer and its end marker.
fn is_complete_answer(path: &str, stream: bool, text: &str) -> bool {
    if !stream {
        return text.contains("hello from testkit");
    }
    let joined_ok = text.contains("hello") && text.contains("testkit");
    joined_ok
        && match path {
            CHAT => sse_data(text).last() == Some(&json!("[DONE]")),
            RESPONSES => sse_events(text).last().map(String::as_str) == Some("response.completed"),
            _ => sse_events(text).last().map(String::as_str) == Some("message_stop"),
        }
}

/// One wave of `n` concurrent requests to `model`, spread over the three APIs, streamed and not.
async fn wave(h: &Harness, model: &str, n: usize) -> Vec<(&'static str, bool, u16, String)> {
    let sends = (0..n).map(|i| async move {
        let path = [CHAT, RESPONSES, MESSAGES][i % 3];
        let stream = (i / 3) % 2 == 0;
        let (status, text) = send(h, path, &request(path, model, stream)).await;
        (path, stream, status, text)
    });
    tokio::time::timeout(PATIENCE, join_all(sends))
        .await
        .expect("a wave of requests hung")
}

/// Requests that reached the upstream with a model starting with `prefix`.
fn upstream_calls(h: &Harness, prefix: &str) -> usize {
    h.upstream
        .requests()
        .iter()
        .filter(|body| {
            body["model"]
                .as_str()
                .is_some_and(|m| m.starts_with(prefix))
        })
        .count()
}

fn storm_tiers(storm: &str, fallback: bool) -> String {
    let calm = if fallback {
        "[[tiers.live.targets]]\nprovider = \"tka\"\nmodel = \"calm\"\nweight = 0\n"
    } else {
        ""
    };
    format!(
        r#"
[tiers.live]
[[tiers.live.targets]]
provider = "tk"
model = "{storm}"
breaker_failures = 3
breaker_cooldown_ms = 60000
{calm}
[tiers.deep]
[[tiers.deep.targets]]
provider = "tka"
model = "deep"
"#
    )
}

const WAVE: usize = 48;

#[tokio::test]
async fn storm_of_5xx_with_a_fallback_answers_everyone_and_opens_the_breaker() {
    let h = Harness::with(Options {
        extra_toml: storm_tiers("storm?status=503", true),
        ..Options::default()
    })
    .await;
    let mut after_first_wave = 0;
    for round in 0..3 {
        for (path, stream, status, text) in wave(&h, "tandem-live", WAVE).await {
            assert_eq!(status, 200, "{path} stream={stream}: {text}");
            assert!(
                is_complete_answer(path, stream, &text),
                "{path} stream={stream}: {text}"
            );
        }
        if round == 0 {
            after_first_wave = upstream_calls(&h, "storm");
        }
    }
    // The breaker opened during the first wave: no later request called the failing target.
    let storm = upstream_calls(&h, "storm");
    assert!((3..=WAVE).contains(&storm), "{storm} calls to the storm");
    assert_eq!(storm, after_first_wave);
    assert_eq!(upstream_calls(&h, "calm"), 3 * WAVE);
    // Every exchange is recorded as answered; those after the first wave skipped the open circuit.
    let records = h.records();
    assert_eq!(records.len(), 3 * WAVE);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Ok && r.status == 200)
    );
    let skipped = records
        .iter()
        .filter(|r| {
            let route: Value = serde_json::from_str(r.route.as_deref().unwrap()).unwrap();
            route["attempts"][0]["error"] == "circuit open"
        })
        .count();
    assert_eq!(skipped, 3 * WAVE - storm);
}

#[tokio::test]
async fn storm_of_5xx_without_a_fallback_is_an_api_shaped_error_for_everyone() {
    let h = Harness::with(Options {
        extra_toml: storm_tiers("storm?status=500", false),
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        for (path, stream, status, text) in wave(&h, "tandem-live", WAVE).await {
            assert_eq!(status, 502, "{path} stream={stream}: {text}");
            let message = error_message(path, &text);
            assert!(
                message.contains("returned HTTP 500") || message.contains("circuit open"),
                "{message}"
            );
        }
    }
    let storm = upstream_calls(&h, "storm");
    assert!((3..=WAVE).contains(&storm), "{storm} calls to the storm");
    let records = h.records();
    assert_eq!(records.len(), 3 * WAVE);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Error && r.status == 502),
        "{records:?}"
    );
}

#[tokio::test]
async fn oversized_upstream_answers_are_clean_errors() {
    let h = Harness::with(Options {
        provider_extra: "max_response_bytes = 65536",
        ..Options::default()
    })
    .await;
    let mut sent = 0;
    // One single SSE event, or one JSON body, far over the limit; the largest is 4 MB.
    for (upstream, bytes) in [("tk", 200_000), ("tka", 200_000), ("tk", 4_000_000)] {
        for path in [CHAT, RESPONSES, MESSAGES] {
            for stream in [false, true] {
                let model = format!("{upstream}/x?bytes={bytes}");
                let (status, text) = send(&h, path, &request(path, &model, stream)).await;
                sent += 1;
                let message = match status {
                    502 => error_message(path, &text),
                    // A failure after the first event arrives as the stream's error event.
                    200 if stream => {
                        assert!(!is_complete_answer(path, true, &text), "{model}: {text}");
                        text
                    }
                    _ => panic!("{model} {path} stream={stream}: {status} {text}"),
                };
                assert!(
                    message.contains("larger than 65536 bytes"),
                    "{model} {path} stream={stream}: {message}"
                );
            }
        }
    }
    let records = h.records();
    assert_eq!(records.len(), sent);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Error && r.status == 502),
        "{records:?}"
    );
}

#[tokio::test]
async fn broken_non_streamed_answers_are_errors_in_the_clients_shape() {
    let h = Harness::with(Options {
        provider_extra: "first_byte_timeout_ms = 300",
        ..Options::default()
    })
    .await;
    let mut expected = Vec::new();
    for (fault, status) in [
        ("malformed_after=0", 502),
        ("truncate_after=0", 502),
        ("reset_after=0", 502),
        ("stall_after=0", 504),
    ] {
        for upstream in ["tk", "tka"] {
            for path in [CHAT, RESPONSES, MESSAGES] {
                let model = format!("{upstream}/x?tokens=5&{fault}");
                let (got, text) = send(&h, path, &request(path, &model, false)).await;
                assert_eq!(got, status, "{model} {path}: {text}");
                let message = error_message(path, &text);
                assert!(message.contains("provider"), "{model} {path}: {message}");
                expected.push(status);
            }
        }
    }
    let records = h.records();
    let statuses: Vec<u16> = records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, expected);
    assert!(records.iter().all(|r| r.outcome == Outcome::Error));
}

#[tokio::test]
async fn a_client_that_leaves_before_the_first_token_cancels_the_upstream_and_is_recorded() {
    let h = Harness::start().await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    for stream in [true, false] {
        let body = request(CHAT, "tk/x?tokens=5&first_token_ms=30000", stream);
        let err = impatient
            .post(h.url(CHAT))
            .json(&body)
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
    }
    let stats = h.wait_stats(PATIENCE, |s| s.streams_cancelled == 1).await;
    assert_eq!(
        (stats.streams_started, stats.streams_cancelled),
        (1, 1),
        "the upstream still streams for a client that left"
    );
    // Neither exchange got an answer, and neither would be in the records without the `Abandoned` guard of
    // `tandem_core::Core::{complete, stream}`.
    let records = wait_records(&h, 2).await;
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Cancelled && r.status == 499),
        "{records:?}"
    );
}

/// The records, once there are `n` of them (bounded by [`PATIENCE`]).
async fn wait_records(h: &Harness, n: usize) -> Vec<tandem_store::RequestRecord> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let records = h.records();
        if records.len() >= n || tokio::time::Instant::now() > deadline {
            assert_eq!(records.len(), n, "{records:?}");
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request written by hand, for clients that misbehave below HTTP.
fn raw_request(path: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nhost: tandem\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads from `stream` until `needle` has arrived; everything read.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let reading = async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .unwrap_or_else(|_| panic!("{needle:?} never came"));
    String::from_utf8_lossy(&seen).into_owned()
}

/// Polls the upstream's counters until `tokens_sent` stops moving for half a second.
async fn upstream_at_rest(h: &Harness) -> tandem_testkit::Stats {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = h.upstream.stats();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = h.upstream.stats();
        if (now.tokens_sent == last.tokens_sent && now.tokens_sent > 0)
            || tokio::time::Instant::now() > deadline
        {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_pauses_the_upstream_instead_of_filling_memory() {
    let h = Harness::start().await;
    // About 2 KB per chunk (the model name is echoed in each), 400,000 chunks: some 800 MB that no buffer along
    // the way (socket buffers autotune to tens of MB on loopback) can hold.
    let tokens: u32 = 400_000;
    let model = format!("tk/{}?tokens={tokens}", "x".repeat(2000));
    let mut client = TcpStream::connect(h.addr()).await.unwrap();
    client
        .write_all(&raw_request(CHAT, &request(CHAT, &model, true)))
        .await
        .unwrap();
    // Read nothing: TCP back-pressure must reach the upstream, which stops well short of the end.
    let paused = upstream_at_rest(&h).await;
    assert_eq!(paused.streams_completed, 0, "{paused:?}");
    assert!(
        paused.tokens_sent < u64::from(tokens) / 4,
        "the gateway kept reading from the upstream: {paused:?}"
    );
    // Reading resumes the upstream.
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0;
    while read < 64 << 20 {
        let n = tokio::time::timeout(PATIENCE, client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        read += n;
    }
    let resumed = h.upstream.stats();
    assert!(resumed.tokens_sent > paused.tokens_sent, "{resumed:?}");
    // Hanging up cancels the upstream.
    drop(client);
    let stats = h.wait_stats(PATIENCE, |s| s.streams_cancelled == 1).await;
    assert_eq!(
        (stats.streams_completed, stats.streams_cancelled),
        (0, 1),
        "{stats:?}"
    );
    let records = wait_records(&h, 1).await;
    assert_eq!(records[0].outcome, Outcome::Cancelled);
}

/// Short deadlines so that slow clients are cut off within the test's patience.
const TIGHT: Timeouts = Timeouts {
    header_read: Duration::from_millis(500),
    body_read: Duration::from_millis(1000),
};

/// What became of a slow client.
#[derive(Debug)]
enum Fate {
    /// The server closed the connection without an answer.
    Closed,
    /// The server answered (and then closed).
    Answered(String),
}

/// Connects, writes `head` at once, then `trickle` one byte every 100 ms; returns once the server closes or
/// answers. Panics if the server has not done so within [`PATIENCE`].
async fn slow_client(addr: SocketAddr, head: Vec<u8>, trickle: Vec<u8>) -> Fate {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writing = async move {
        if write.write_all(&head).await.is_err() {
            return;
        }
        for byte in trickle {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
        }
        // Everything sent; keep the connection open.
        std::future::pending::<()>().await;
    };
    let reading = async move {
        let mut answer = Vec::new();
        loop {
            let mut buf = [0u8; 4096];
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        match answer.is_empty() {
            true => Fate::Closed,
            false => Fate::Answered(String::from_utf8_lossy(&answer).into_owned()),
        }
    };
    let fate = async {
        tokio::select! {
            () = writing => unreachable!(),
            fate = reading => fate,
        }
    };
    tokio::time::timeout(PATIENCE, fate)
        .await
        .expect("the server kept a slow client's connection open")
}

#[tokio::test]
async fn slowloris_clients_are_cut_off_and_do_not_block_others() {
    let h = Harness::with(Options {
        timeouts: Some(TIGHT),
        ..Options::default()
    })
    .await;
    let addr = h.addr();
    let body = request(CHAT, "tk/x", false).to_string();
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: tandem\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut slow = JoinSet::new();
    for i in 0..60 {
        let (head, trickle) = match i % 3 {
            // Connects and says nothing.
            0 => (Vec::new(), Vec::new()),
            // Sends the request head a byte at a time, never finishing within the deadline.
            1 => (Vec::new(), head.clone().into_bytes()),
            // Sends the head at once, then the body a byte at a time.
            _ => (head.clone().into_bytes(), body.clone().into_bytes()),
        };
        slow.spawn(async move { (i % 3, slow_client(addr, head, trickle).await) });
    }
    // Meanwhile, well-behaved clients are served as usual.
    for _ in 0..10 {
        let (status, text) =
            tokio::time::timeout(PATIENCE, send(&h, CHAT, &request(CHAT, "tk/x", false)))
                .await
                .expect("a normal client waited behind slow ones");
        assert_eq!(status, 200, "{text}");
    }
    let mut body_timeouts = 0;
    while let Some(joined) = slow.join_next().await {
        match joined.unwrap() {
            (0 | 1, Fate::Closed) => {}
            (2, Fate::Answered(answer)) => {
                assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
                let (_, json) = answer.split_once("\r\n\r\n").unwrap();
                let message = error_message(CHAT, json);
                assert!(message.contains("did not arrive within"), "{message}");
                body_timeouts += 1;
            }
            (kind, fate) => panic!("slow client {kind}: {fate:?}"),
        }
    }
    assert_eq!(body_timeouts, 20);
    // The trickled bodies are recorded as refused requests, next to the ten answered ones.
    let records = h.records();
    assert_eq!(records.len(), 30);
    assert_eq!(
        records.iter().filter(|r| r.status == 400).count(),
        20,
        "{records:?}"
    );
}

#[tokio::test]
async fn many_idle_streams_are_held_and_all_cancelled_when_their_clients_leave() {
    const STREAMS: usize = 2000;
    if let Some(reason) = too_few_files(STREAMS * 4 + 256) {
        eprintln!("skipped: {reason}");
        return;
    }
    let h = Harness::start().await;
    let addr = h.addr();
    // Each stream sends one token, then its upstream stalls for good.
    let raw = raw_request(CHAT, &request(CHAT, "tk/x?tokens=10&stall_after=1", true));
    let opening = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut opened = JoinSet::new();
    for _ in 0..STREAMS {
        let raw = raw.clone();
        let opening = std::sync::Arc::clone(&opening);
        opened.spawn(async move {
            let _permit = opening.acquire_owned().await.unwrap();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&raw).await.unwrap();
            let seen = read_until(&mut stream, "tok0").await;
            assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
            stream
        });
    }
    let mut streams = Vec::with_capacity(STREAMS);
    while let Some(joined) = opened.join_next().await {
        streams.push(joined.unwrap());
    }
    let stats = h.upstream.stats();
    assert_eq!(
        (stats.streams_started, stats.streams_cancelled),
        (STREAMS as u64, 0)
    );
    // The gateway still answers others.
    let health = tokio::time::timeout(PATIENCE, h.client.get(h.url("/healthz")).send())
        .await
        .expect("/healthz hung with idle streams open")
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, text) = send(&h, CHAT, &request(CHAT, "tk/x", true)).await;
    assert!(
        status == 200 && is_complete_answer(CHAT, true, &text),
        "{text}"
    );
    // Every client leaves: every upstream stream is cancelled, and every exchange recorded as cancelled.
    drop(streams);
    let stats = h
        .wait_stats(PATIENCE, |s| s.streams_cancelled == STREAMS as u64)
        .await;
    assert_eq!(stats.streams_cancelled, STREAMS as u64, "{stats:?}");
    let records = wait_records(&h, STREAMS + 1).await;
    assert_eq!(
        records
            .iter()
            .filter(|r| r.outcome == Outcome::Cancelled)
            .count(),
        STREAMS
    );
}

/// Raises the soft open-files limit to the hard one; why the test cannot run if that is still below `wanted`.
fn too_few_files(wanted: usize) -> Option<String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c >= wanted as u64) || limit.current.is_none() {
        return None;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let _ = setrlimit(Resource::Nofile, raised);
    match getrlimit(Resource::Nofile).current {
        Some(now) if now < wanted as u64 => Some(format!(
            "{wanted} open files are needed and the hard limit is {now}"
        )),
        _ => None,
    }
}
