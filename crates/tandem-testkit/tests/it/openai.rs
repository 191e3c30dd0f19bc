//! OpenAI chat completions: non-streaming and streaming answers, tool calls, usage and errors.

use serde_json::{Value, json};

use crate::support::{events, openai_body, openai_text, post, read_all, server, url, urlencode};

#[tokio::test]
async fn non_stream_default_answer() {
    let server = server().await;
    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("gpt-test", false),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-tk"));
    assert!(body["created"].as_u64().unwrap() > 0);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(
        body["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "hello from testkit"}, "finish_reason": "stop"}])
    );
    // "hi there" is 8 characters: 2 prompt tokens; the answer is 3 tokens.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
    );
    assert_eq!(server.stats().requests, 1);
    assert_eq!(server.stats().streams_started, 0);
}

#[tokio::test]
async fn stream_tokens() {
    let server = server().await;
    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?tokens=5", true),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (body, failed) = read_all(response).await;
    assert!(!failed);
    let events = events(&body);
    assert_eq!(events.len(), 1 + 5 + 1 + 1);
    let first = events[0].json();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "m?tokens=5");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(
        events[3].json()["choices"][0]["delta"],
        json!({"content": "tok2 "})
    );
    assert_eq!(openai_text(&events), "tok0 tok1 tok2 tok3 tok4 ");
    let finish = events[6].json();
    assert_eq!(
        finish["choices"][0],
        json!({"index": 0, "delta": {}, "finish_reason": "stop"})
    );
    assert!(finish.get("usage").is_none());
    assert_eq!(events[7].data, "[DONE]");
    let stats = server.stats();
    assert_eq!(
        (
            stats.streams_started,
            stats.streams_completed,
            stats.tokens_sent
        ),
        (1, 1, 5)
    );
    assert_eq!(stats.streams_cancelled, 0);
}

#[tokio::test]
async fn stream_default_answer_is_three_tokens() {
    let server = server().await;
    let (body, _) =
        read_all(post(&server, "/v1/chat/completions", &openai_body("m", true)).await).await;
    let events = events(&body);
    let contents: Vec<Value> = events[1..4]
        .iter()
        .map(|event| event.json()["choices"][0]["delta"]["content"].clone())
        .collect();
    assert_eq!(
        contents,
        vec![json!("hello"), json!(" from"), json!(" testkit")]
    );
}

#[tokio::test]
async fn include_usage_and_max_tokens() {
    let server = server().await;
    let mut request = openai_body("m?tokens=10", true);
    request["stream_options"] = json!({"include_usage": true});
    request["max_completion_tokens"] = json!(4);
    let (body, _) = read_all(post(&server, "/v1/chat/completions", &request).await).await;
    let events = events(&body);
    assert_eq!(openai_text(&events), "tok0 tok1 tok2 tok3 ");
    let n = events.len();
    assert_eq!(
        events[n - 3].json()["choices"][0]["finish_reason"],
        "length"
    );
    let usage = events[n - 2].json();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6})
    );
    assert_eq!(events[n - 1].data, "[DONE]");

    let mut request = openai_body("m?tokens=10", false);
    request["max_tokens"] = json!(2);
    let body: Value = post(&server, "/v1/chat/completions", &request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "tok0 tok1 ");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn stream_tool_option_reassembles() {
    let server = server().await;
    let args = r#"{"city":"Paris","unit":"C"}"#;
    let model = format!("m?tool=get_weather&args={}", urlencode(args));
    let (body, _) =
        read_all(post(&server, "/v1/chat/completions", &openai_body(&model, true)).await).await;
    let events = events(&body);
    let calls: Vec<Value> = events
        .iter()
        .filter(|event| event.data != "[DONE]")
        .filter_map(|event| {
            event.json()["choices"][0]["delta"]
                .get("tool_calls")
                .cloned()
        })
        .collect();
    assert!(
        calls.len() >= 3,
        "a start chunk and at least two argument pieces: {calls:?}"
    );
    let start = &calls[0][0];
    assert_eq!(start["index"], 0);
    assert!(start["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(start["type"], "function");
    assert_eq!(
        start["function"],
        json!({"name": "get_weather", "arguments": ""})
    );
    let reassembled: String = calls[1..]
        .iter()
        .map(|call| {
            call[0]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(reassembled, args);
    let finish = events[events.len() - 2].json();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn scripted_parallel_tool_calls_then_tool_result() {
    let server = server().await;
    let request = json!({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "do it\ntestkit-tool: read_file {\"path\":\"a.txt\"}\ntestkit-tool: list_dir {}"},
    ]});
    let body: Value = post(&server, "/v1/chat/completions", &request)
        .await
        .json()
        .await
        .unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]["function"],
        json!({"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"})
    );
    assert_eq!(
        calls[1]["function"],
        json!({"name": "list_dir", "arguments": "{}"})
    );
    assert_ne!(calls[0]["id"], calls[1]["id"]);
    // (1 + ceil(16 / 4)) + (1 + ceil(2 / 4)) = 7.
    assert_eq!(body["usage"]["completion_tokens"], 7);

    let request = json!({"model": "m", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": null, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "  line one  \nline two"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "other"},
    ]});
    let (body, _) = read_all(
        post(&server, "/v1/chat/completions", &{
            let mut request = request;
            request["stream"] = json!(true);
            request
        })
        .await,
    )
    .await;
    assert_eq!(openai_text(&events(&body)), "done: line one");
}

#[tokio::test]
async fn prompt_tokens_count_text_parts() {
    let server = server().await;
    let request = json!({"model": "m", "messages": [
        {"role": "system", "content": "12345"},
        {"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}]},
    ]});
    let body: Value = post(&server, "/v1/chat/completions", &request)
        .await
        .json()
        .await
        .unwrap();
    // 9 characters -> ceil(9 / 4) = 3.
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    let request = json!({"model": "m", "messages": []});
    let body: Value = post(&server, "/v1/chat/completions", &request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], 1);
}

#[tokio::test]
async fn errors_use_the_openai_shape() {
    let server = server().await;
    let response = reqwest::Client::new()
        .post(url(&server, "/v1/chat/completions"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );

    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?status=429", true),
    )
    .await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "testkit scripted status 429", "type": "rate_limit_error", "code": "rate_limit_exceeded"}})
    );

    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?status=500", false),
    )
    .await;
    assert_eq!(response.status(), 500);

    let response = post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?bogus=1", false),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "unknown model option `bogus`");
    assert_eq!(server.stats().requests, 4);
}
