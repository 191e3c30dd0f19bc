//! Data loss prevention through the gateway: requests redacted before they leave, answers redacted
//! before they reach the client (streamed or not, on all three APIs), blocks in each API's error
//! shape, findings in the record, and placeholders restored on the way back when configured.

use serde_json::{Value, json};

use crate::support::{Harness, Options, sse_data};

/// A fake GitHub token (format-valid, never live).
/// Split in the source so secret scanners do not flag this file.
const TOKEN: &str = concat!("ghp_", "R8fK2pLq9ZxT4mWv7NcB1yHs6DjQ3gUe5AoI");

async fn harness(extra: &str) -> Harness {
    Harness::with(Options {
        extra_toml: extra.to_owned(),
        ..Options::default()
    })
    .await
}

fn chat(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]})
}

fn say(text: &str) -> String {
    let encoded: String = url_encode(text);
    format!("scripted?say={encoded}")
}

/// The body without the echoed model string (the test upstream's options carry the token).
fn without_model(text: &str, model: &str) -> String {
    text.replace(model, "MODEL")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn secrets_in_requests_never_reach_the_upstream() {
    let h = harness("").await;
    let text = format!("please use {TOKEN} to push");
    let resp = h
        .post("/v1/chat/completions", &chat("scripted", &text, false))
        .await;
    assert_eq!(resp.status(), 200);
    let sent = h.upstream.requests().last().unwrap().to_string();
    assert!(!sent.contains(TOKEN), "upstream saw the token: {sent}");
    assert!(sent.contains("[REDACTED:github-pat:"), "{sent}");
    let record = h.records().into_iter().last().unwrap();
    let dlp: Value = serde_json::from_str(record.dlp.as_deref().unwrap()).unwrap();
    assert_eq!(dlp[0]["dir"], "request");
    assert_eq!(dlp[0]["rule"], "github-pat");
    assert_eq!(dlp[0]["action"], "redact");
    assert!(!record.dlp.unwrap().contains(TOKEN));
}

#[tokio::test]
async fn tool_results_and_tool_call_arguments_are_redacted_too() {
    let h = harness("").await;
    let body = json!({
        "model": "scripted",
        "messages": [
            {"role": "user", "content": "run it"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "sh", "arguments": format!("{{\"cmd\":\"git push https://x:{TOKEN}@github.com\"}}")}}]},
            {"role": "tool", "tool_call_id": "c1", "content": format!("export GITHUB_TOKEN={TOKEN}")}
        ]
    });
    assert_eq!(h.post("/v1/chat/completions", &body).await.status(), 200);
    let sent = h.upstream.requests().last().unwrap().to_string();
    assert!(!sent.contains(TOKEN), "{sent}");
}

#[tokio::test]
async fn blocked_requests_get_400_in_each_api_shape_naming_the_rule() {
    let h = harness("[dlp.actions]\n\"github-pat\" = \"block\"\n").await;
    let text = format!("token {TOKEN}");
    let cases = [
        ("/v1/chat/completions", chat("scripted", &text, false)),
        ("/v1/responses", json!({"model": "scripted", "input": text})),
        (
            "/v1/messages",
            json!({"model": "scripted", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}),
        ),
    ];
    for (path, body) in cases {
        let resp = h.post(path, &body).await;
        assert_eq!(resp.status(), 400, "{path}");
        let err: Value = resp.json().await.unwrap();
        let message = if path == "/v1/messages" {
            assert_eq!(err["type"], "error");
            err["error"]["message"].as_str().unwrap().to_owned()
        } else {
            err["error"]["message"].as_str().unwrap().to_owned()
        };
        assert!(message.contains("github-pat"), "{path}: {message}");
        assert!(!err.to_string().contains(TOKEN));
    }
    assert_eq!(h.upstream.stats().requests, 0, "nothing was sent upstream");
    let records = h.records();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.status == 400));
}

#[tokio::test]
async fn streamed_answers_are_redacted_across_chunks_on_every_api() {
    let h = harness("").await;
    let answer = format!("Here it is: {TOKEN} and more text.");
    let model = say(&answer);
    let cases = [
        ("/v1/chat/completions", chat(&model, "hi", true)),
        (
            "/v1/responses",
            json!({"model": model, "input": "hi", "stream": true}),
        ),
        (
            "/v1/messages",
            json!({"model": model, "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for (path, body) in cases {
        let (status, text) = h.post_text(path, &body).await;
        assert_eq!(status, 200, "{path}");
        let text = without_model(&text, &model);
        assert!(!text.contains("ghp_"), "{path} leaked: {text}");
        // Nothing of the token's body either, in any event (deltas and final summaries).
        assert!(
            !text.contains(&TOKEN[8..20]),
            "{path} leaked a piece: {text}"
        );
        assert!(text.contains("[REDACTED:github-pat:"), "{path}: {text}");
        let joined: String = sse_data(&text)
            .iter()
            .filter_map(|e| {
                e.pointer("/choices/0/delta/content")
                    .or_else(|| e.pointer("/delta/text"))
                    .or_else(|| (e["type"] == "response.output_text.delta").then(|| &e["delta"]))
                    .and_then(Value::as_str)
            })
            .collect();
        assert!(
            joined.starts_with("Here it is: [REDACTED:github-pat:"),
            "{path}: {joined}"
        );
        assert!(joined.ends_with("] and more text."), "{path}: {joined}");
        if path == "/v1/responses" {
            let completed = sse_data(&text)
                .into_iter()
                .find(|e| e["type"] == "response.completed")
                .unwrap();
            assert!(completed.to_string().contains("[REDACTED:github-pat:"));
        }
    }
    let records = h.records();
    assert!(
        records
            .iter()
            .all(|r| r.dlp.as_deref().is_some_and(|d| d.contains("\"response\"")))
    );
}

#[tokio::test]
async fn non_streamed_answers_are_redacted() {
    let h = harness("").await;
    let model = say(&format!("key {TOKEN}"));
    let resp = h
        .post("/v1/chat/completions", &chat(&model, "hi", false))
        .await;
    let body: Value = resp.json().await.unwrap();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("key [REDACTED:github-pat:"),
        "{content}"
    );
}

#[tokio::test]
async fn streamed_tool_call_arguments_are_redacted_whole() {
    let h = harness("").await;
    let args = format!("{{\"cmd\":\"export GITHUB_TOKEN={TOKEN}\"}}");
    let model = format!("scripted?tool=exec_command&args={}", url_encode(&args));
    let (status, text) = h
        .post_text("/v1/chat/completions", &chat(&model, "go", true))
        .await;
    assert_eq!(status, 200);
    let text = without_model(&text, &model);
    assert!(!text.contains("ghp_"), "{text}");
    let joined: String = sse_data(&text)
        .iter()
        .filter_map(|e| {
            e.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
        })
        .collect();
    let parsed: Value = serde_json::from_str(&joined).unwrap();
    assert!(
        parsed["cmd"]
            .as_str()
            .unwrap()
            .starts_with("export GITHUB_TOKEN=[REDACTED:github-pat:")
    );
}

#[tokio::test]
async fn a_blocked_answer_ends_the_stream_with_an_error_event() {
    let h = harness("[dlp.actions]\n\"github-pat\" = \"block\"\n").await;
    let model = say(&format!("first words then {TOKEN} then more"));
    let (status, text) = h
        .post_text("/v1/chat/completions", &chat(&model, "hi", true))
        .await;
    assert_eq!(status, 200);
    let text = without_model(&text, &model);
    assert!(!text.contains("ghp_"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(text.contains("github-pat"), "{text}");
    let (status, text) = h
        .post_text("/v1/messages", &json!({"model": model, "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(status, 200);
    assert!(!text.contains("message_stop"), "{text}");
    assert!(text.contains("event: error"), "{text}");
    let resp = h
        .post("/v1/chat/completions", &chat(&model, "hi", false))
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn restore_puts_real_values_back_for_the_client_only() {
    let h = harness("[dlp]\nrestore = true\n").await;
    let text = format!("echo {TOKEN} please");
    let (status, body) = h
        .post_text("/v1/chat/completions", &chat("scripted?echo", &text, true))
        .await;
    assert_eq!(status, 200);
    let sent = h.upstream.requests().last().unwrap().to_string();
    assert!(!sent.contains(TOKEN), "the model saw it: {sent}");
    let joined: String = sse_data(&body)
        .iter()
        .filter_map(|e| {
            e.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(joined, text, "the client gets the value back");
}

#[tokio::test]
async fn dlp_can_be_turned_off() {
    let h = harness("[dlp]\nenabled = false\n").await;
    let text = format!("token {TOKEN}");
    assert_eq!(
        h.post("/v1/chat/completions", &chat("scripted", &text, false))
            .await
            .status(),
        200
    );
    assert!(
        h.upstream
            .requests()
            .last()
            .unwrap()
            .to_string()
            .contains(TOKEN)
    );
}

#[tokio::test]
async fn personal_data_is_opt_in_and_per_kind() {
    let h = harness("[dlp]\ndetect_pii = [\"email\", \"card\"]\npii = \"redact\"\n").await;
    let text = "mail jane.doe@acmecorp.io card 4111 1111 1111 1111 call +44 20 7946 0958";
    assert_eq!(
        h.post("/v1/chat/completions", &chat("scripted", text, false))
            .await
            .status(),
        200
    );
    let sent = h.upstream.requests().last().unwrap().to_string();
    assert!(!sent.contains("jane.doe@acmecorp.io"), "{sent}");
    assert!(!sent.contains("4111 1111 1111 1111"), "{sent}");
    assert!(
        sent.contains("+44 20 7946 0958"),
        "phone detection was not enabled: {sent}"
    );
}

#[tokio::test]
async fn resent_history_is_remembered_clean_but_new_secrets_are_still_caught() {
    let h = harness("").await;
    let history = "fn main() { println!(\"hello\"); }\n".repeat(100);
    for _ in 0..2 {
        let resp = h
            .post("/v1/chat/completions", &chat("scripted", &history, false))
            .await;
        assert_eq!(resp.status(), 200);
    }
    let with_secret = format!("{history}let t = \"{TOKEN}\";\n");
    let resp = h
        .post(
            "/v1/chat/completions",
            &chat("scripted", &with_secret, false),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let sent = h.upstream.requests().last().unwrap().to_string();
    assert!(!sent.contains(TOKEN), "{sent}");
}
