//! Pace routing end to end: tier aliases, the pace header, `auto`, fallbacks under injected faults, circuit
//! breaking and recovery, session stickiness, escalation, and the reasoning-blob rule.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_store::Outcome;

use crate::support::{Harness, Options};

/// Live tier: two targets; deep tier: one Anthropic-kind target. Faults are chosen per target via `live_a`.
fn tiers(live_a: &str, extra_live_a: &str) -> String {
    format!(
        r#"
[tiers.live]
fallback_tier = "deep"
[[tiers.live.targets]]
provider = "tk"
model = "{live_a}"
breaker_failures = 1
breaker_cooldown_ms = 60000
{extra_live_a}
[[tiers.live.targets]]
provider = "tk"
model = "live-b"
weight = 0
[tiers.deep]
[[tiers.deep.targets]]
provider = "tka"
model = "deep-a"
"#
    )
}

async fn harness(live_a: &str, extra: &str) -> Harness {
    Harness::with(Options {
        extra_toml: tiers(live_a, extra),
        ..Options::default()
    })
    .await
}

fn chat(model: &str, prompt: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": prompt}]})
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Send and return (status, tier, target, reason).
async fn route(
    h: &Harness,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, String, String, String) {
    let resp = h.post_with("/v1/chat/completions", body, headers).await;
    let out = (
        resp.status().as_u16(),
        header(&resp, "x-tandem-tier"),
        header(&resp, "x-tandem-target"),
        header(&resp, "x-tandem-route-reason"),
    );
    let _ = resp.bytes().await.unwrap();
    out
}

#[tokio::test]
async fn aliases_header_and_auto_pick_tiers() {
    let h = harness("live-a", "").await;
    let (status, tier, target, reason) = route(&h, &chat("tandem-live", "hi"), &[]).await;
    assert_eq!(
        (status, tier.as_str(), target.as_str(), reason.as_str()),
        (200, "live", "tk/live-a", "alias")
    );
    let (_, tier, target, reason) = route(&h, &chat("tandem-deep", "hi"), &[]).await;
    assert_eq!(
        (tier.as_str(), target.as_str(), reason.as_str()),
        ("deep", "tka/deep-a", "alias")
    );
    let (_, tier, _, reason) =
        route(&h, &chat("whatever", "hi"), &[("x-tandem-pace", "deep")]).await;
    assert_eq!((tier.as_str(), reason.as_str()), ("deep", "header"));
    // auto: a spot edit goes live, a migration across files goes deep; the reason names the rule.
    let (_, tier, _, reason) =
        route(&h, &chat("auto", "rename foo to bar in src/lib.rs"), &[]).await;
    assert_eq!(tier, "live", "{reason}");
    assert!(reason.contains("spot-edit"), "{reason}");
    let (_, tier, _, reason) = route(
        &h,
        &chat("auto", "migrate the storage layer from sqlite to postgres across src/db.rs src/store.rs src/main.rs"),
        &[],
    )
    .await;
    assert_eq!(tier, "deep", "{reason}");
    assert!(reason.starts_with("rule:"), "{reason}");
    // The pace header `auto` routes any model name.
    let (_, tier, _, _) = route(
        &h,
        &chat("anything", "fix typo in README.md"),
        &[("x-tandem-pace", "auto")],
    )
    .await;
    assert_eq!(tier, "live");
    // Unknown tier in the header: 404 naming it.
    let (status, ..) = route(&h, &chat("x", "hi"), &[("x-tandem-pace", "nope")]).await;
    assert_eq!(status, 404);
    let records = h.records();
    let route_json: Value = serde_json::from_str(records[0].route.as_deref().unwrap()).unwrap();
    assert_eq!(route_json["tier"], "live");
    assert_eq!(route_json["attempts"][0]["target"], "tk/live-a");
    assert_eq!(records[0].tier.as_deref(), Some("live"));
}

#[tokio::test]
async fn failing_target_is_skipped_without_the_client_noticing() {
    for (fault, extra) in [
        ("live-a?status=500", ""),
        ("live-a?status=503", ""),
        ("live-a?delay_ms=3000", "first_token_timeout_ms = 200"),
        ("live-a?reset_after=0", ""),
        ("live-a?first_token_ms=3000", "first_token_timeout_ms = 200"),
    ] {
        let h = harness(fault, extra).await;
        for stream in [false, true] {
            let mut body = chat("tandem-live", "hi");
            body["stream"] = json!(stream);
            let resp = h.post("/v1/chat/completions", &body).await;
            assert_eq!(resp.status(), 200, "{fault} stream={stream}");
            assert_eq!(header(&resp, "x-tandem-tier"), "live");
            let target = header(&resp, "x-tandem-target");
            let text = resp.text().await.unwrap();
            assert!(
                text.contains("hello") && !text.contains("\"error\""),
                "{fault}: {text}"
            );
            // The first request fails over to live-b; the breaker then skips live-a without calling it.
            assert_eq!(target, "tk/live-b", "{fault} stream={stream}");
        }
        let records = h.records();
        let first: Value = serde_json::from_str(records[0].route.as_deref().unwrap()).unwrap();
        assert!(first["attempts"][0]["error"].is_string(), "{first}");
        assert_eq!(
            first["attempts"][1],
            json!({"target": "tk/live-b", "error": null})
        );
        let second: Value = serde_json::from_str(records[1].route.as_deref().unwrap()).unwrap();
        assert_eq!(
            second["attempts"][0]["error"], "circuit open",
            "{fault}: {second}"
        );
        assert!(records.iter().all(|r| r.outcome == Outcome::Ok));
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_elsewhere() {
    let h = harness("live-a?status=400", "").await;
    let (status, ..) = route(&h, &chat("tandem-live", "hi"), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        h.upstream.stats().requests,
        1,
        "a 400 is the request's fault: no fallback"
    );
}

#[tokio::test]
async fn all_live_targets_failing_falls_back_to_the_deep_tier() {
    let toml = r#"
[tiers.live]
fallback_tier = "deep"
[[tiers.live.targets]]
provider = "tk"
model = "a?status=502"
[[tiers.live.targets]]
provider = "tk"
model = "b?status=500"
retries = 1
[tiers.deep]
[[tiers.deep.targets]]
provider = "tka"
model = "deep-a"
"#;
    let h = Harness::with(Options {
        extra_toml: toml.into(),
        ..Options::default()
    })
    .await;
    let (status, tier, target, _) = route(&h, &chat("tandem-live", "hi"), &[]).await;
    assert_eq!(
        (status, tier.as_str(), target.as_str()),
        (200, "live", "tka/deep-a")
    );
    // a once, b twice (one retry), then deep.
    assert_eq!(h.upstream.stats().requests, 4);
}

#[tokio::test]
async fn broken_target_recovers_after_the_cooldown() {
    // live-a points at a port nothing listens on yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let toml = format!(
        r#"
[[providers]]
name = "late"
kind = "openai"
base_url = "http://127.0.0.1:{port}/v1"
[tiers.live]
[[tiers.live.targets]]
provider = "late"
model = "live-a"
breaker_failures = 1
breaker_cooldown_ms = 300
[[tiers.live.targets]]
provider = "tk"
model = "live-b"
weight = 0
[tiers.deep]
[[tiers.deep.targets]]
provider = "tka"
model = "deep-a"
"#
    );
    let h = Harness::with(Options {
        extra_toml: toml,
        ..Options::default()
    })
    .await;
    let (_, _, target, _) = route(&h, &chat("tandem-live", "hi"), &[]).await;
    assert_eq!(target, "tk/live-b");
    let (_, _, target, _) = route(&h, &chat("tandem-live", "hi"), &[]).await;
    assert_eq!(target, "tk/live-b", "breaker open: live-a skipped");
    // Bring live-a up and wait out the cooldown: the half-open probe succeeds and closes the breaker.
    let _late = tandem_testkit::spawn(tandem_testkit::Config {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        tokens_per_sec: 0.0,
        default_tokens: 16,
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..3 {
        let (_, _, target, _) = route(&h, &chat("tandem-live", "hi"), &[]).await;
        assert_eq!(target, "late/live-a");
    }
}

#[tokio::test]
async fn sessions_stick_to_their_tier_and_escalate_on_failure() {
    let h = harness("live-a", "").await;
    let session = [("session-id", "s-1")];
    let (_, tier, _, _) = route(&h, &chat("auto", "rename foo to bar"), &session).await;
    assert_eq!(tier, "live");
    // A task the router alone would send deep stays live: the session chose its tier.
    let deep_ask = chat(
        "auto",
        "refactor the whole module and migrate src/a.rs src/b.rs src/c.rs",
    );
    let (_, tier, _, reason) = route(&h, &deep_ask, &session).await;
    assert_eq!((tier.as_str(), reason.as_str()), ("live", "session:sticky"));
    // A failed tool call in the history escalates to deep, and the session stays there.
    let failed = json!({"model": "auto", "tools": [{"type": "function", "function": {"name": "sh", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "rename foo to bar"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sh", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "error: cannot find value `bar` in this scope\nProcess exited with code 1"}]});
    let (_, tier, _, reason) = route(&h, &failed, &session).await;
    assert_eq!(
        (tier.as_str(), reason.as_str()),
        ("deep", "escalate:tool-error")
    );
    let (_, tier, _, reason) = route(&h, &chat("auto", "rename foo to bar"), &session).await;
    assert_eq!(
        (tier.as_str(), reason.as_str()),
        ("deep", "session:escalated")
    );
    assert!(h.state_session("s-1").escalated);

    // A check reported failed by the client escalates too.
    let other = [("session-id", "s-2")];
    route(&h, &chat("auto", "fix typo in README.md"), &other).await;
    let (_, tier, _, reason) = route(
        &h,
        &chat("auto", "fix typo in README.md, again"),
        &[other[0], ("x-tandem-signal", "check-failed")],
    )
    .await;
    assert_eq!(
        (tier.as_str(), reason.as_str()),
        ("deep", "escalate:check-failed")
    );

    // The same task sent again unchanged is a retry: escalate.
    let third = [("session-id", "s-3")];
    let ask = chat("auto", "fix typo in docs/intro.md");
    route(&h, &ask, &third).await;
    let (_, tier, _, reason) = route(&h, &ask, &third).await;
    assert_eq!((tier.as_str(), reason.as_str()), ("deep", "escalate:retry"));

    // Bad signal values are refused by name.
    let (status, ..) = route(&h, &chat("auto", "hi"), &[("x-tandem-signal", "meh")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn prompt_cache_key_is_the_session_key_and_interrupts_are_counted() {
    let h = harness("live-a", "").await;
    let mut body = chat("auto", "rename foo to bar");
    body["prompt_cache_key"] = json!("thread-9");
    route(&h, &body, &[]).await;
    assert_eq!(h.state_session("thread-9").tier.as_deref(), Some("live"));
    // Cut a stream off: the session counts an interrupt.
    let mut long = chat("tandem-live", "hi");
    long["model"] = json!("tk/x?tokens=100000&rate=100");
    long["stream"] = json!(true);
    long["prompt_cache_key"] = json!("thread-9");
    let resp = h.post("/v1/chat/completions", &long).await;
    let mut stream = resp.bytes_stream();
    use futures::StreamExt;
    let _ = stream.next().await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.state_session("thread-9").interrupts, 1);
}

#[tokio::test]
async fn reasoning_blobs_never_cross_backends() {
    let h = harness("live-a", "").await;
    // Ask deep (Anthropic kind) for an answer, then replay a thinking block signed by another backend and one
    // signed by deep itself: only deep's own signature reaches the upstream.
    let tagged = |backend: &str, sig: &str| format!("tdm1:{}:{backend}:{sig}", backend.len());
    let body = json!({"model": "tandem-deep", "max_tokens": 100, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "mine", "signature": tagged("tka/deep-a", "SIG-DEEP")},
            {"type": "thinking", "thinking": "theirs", "signature": tagged("tk/live-a", "SIG-LIVE")},
            {"type": "text", "text": "hello"}]},
        {"role": "user", "content": "again"}]});
    let resp = h.post("/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    let sent = h.upstream.requests().last().unwrap().to_string();
    assert!(sent.contains("SIG-DEEP"), "{sent}");
    assert!(
        !sent.contains("SIG-LIVE") && !sent.contains("tdm1:"),
        "{sent}"
    );
}
