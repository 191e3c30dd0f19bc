//! Anthropic messages: non-streaming and streaming answers, tool use, tool results and errors.

use serde_json::{Value, json};

use crate::support::{anthropic_body, events, post, read_all, server, urlencode};

#[tokio::test]
async fn non_stream_default_answer() {
    let server = server().await;
    let mut request = anthropic_body("claude-test", false);
    request["system"] = json!("1234");
    let response = post(&server, "/v1/messages", &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("msg_tk"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-test");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "hello from testkit"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    // "1234" + "hi there" = 12 characters -> 3 input tokens.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 3, "output_tokens": 3})
    );
}

#[tokio::test]
async fn stream_tokens() {
    let server = server().await;
    let (body, failed) =
        read_all(post(&server, "/v1/messages", &anthropic_body("c?tokens=3", true)).await).await;
    assert!(!failed);
    let events = events(&body);
    let names: Vec<&str> = events
        .iter()
        .map(|event| event.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for event in &events {
        assert_eq!(event.json()["type"], event.name.as_deref().unwrap());
    }
    let start = events[0].json();
    assert_eq!(
        start["message"]["usage"],
        json!({"input_tokens": 2, "output_tokens": 1})
    );
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        events[3].json(),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tok1 "}})
    );
    assert_eq!(
        events[6].json(),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 3}})
    );
    let stats = server.stats();
    assert_eq!(
        (
            stats.streams_started,
            stats.streams_completed,
            stats.tokens_sent
        ),
        (1, 1, 3)
    );
}

#[tokio::test]
async fn max_tokens_cuts_the_answer() {
    let server = server().await;
    let mut request = anthropic_body("c?tokens=9", false);
    request["max_tokens"] = json!(2);
    let body: Value = post(&server, "/v1/messages", &request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["content"][0]["text"], "tok0 tok1 ");
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn tool_use_stream_and_non_stream() {
    let server = server().await;
    let args = r#"{"query":"rust"}"#;
    let model = format!("c?tool=search&args={}", urlencode(args));
    let (body, _) =
        read_all(post(&server, "/v1/messages", &anthropic_body(&model, true)).await).await;
    let events = events(&body);
    let start = events[1].json();
    assert_eq!(start["index"], 0);
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "search");
    assert_eq!(start["content_block"]["input"], json!({}));
    assert!(
        start["content_block"]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    let pieces: Vec<String> = events
        .iter()
        .filter(|event| event.name.as_deref() == Some("content_block_delta"))
        .map(|event| {
            let delta = event.json()["delta"].clone();
            assert_eq!(delta["type"], "input_json_delta");
            delta["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(pieces.len() >= 2);
    assert_eq!(pieces.concat(), args);
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    // 1 + ceil(16 / 4).
    assert_eq!(delta["usage"]["output_tokens"], 5);

    let body: Value = post(&server, "/v1/messages", &anthropic_body(&model, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0]["type"], "tool_use");
    assert_eq!(body["content"][0]["input"], json!({"query": "rust"}));
}

#[tokio::test]
async fn scripted_tools_and_tool_results() {
    let server = server().await;
    let mut request = anthropic_body("c", false);
    request["messages"] = json!([{"role": "user", "content": [
        {"type": "text", "text": "testkit-tool: a {\"x\":1}"},
        {"type": "text", "text": "testkit-tool: b"},
    ]}]);
    let body: Value = post(&server, "/v1/messages", &request)
        .await
        .json()
        .await
        .unwrap();
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(
        (&content[0]["name"], &content[0]["input"]),
        (&json!("a"), &json!({"x": 1}))
    );
    assert_eq!(
        (&content[1]["name"], &content[1]["input"]),
        (&json!("b"), &json!({}))
    );

    request["messages"] = json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "result text\nmore"}]},
        ]},
    ]);
    request["stream"] = json!(true);
    let (body, _) = read_all(post(&server, "/v1/messages", &request).await).await;
    let text: String = events(&body)
        .iter()
        .filter(|event| event.name.as_deref() == Some("content_block_delta"))
        .map(|event| event.json()["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "done: result text");
}

#[tokio::test]
async fn errors_use_the_anthropic_shape() {
    let server = server().await;
    let mut request = anthropic_body("c", false);
    request.as_object_mut().unwrap().remove("max_tokens");
    let response = post(&server, "/v1/messages", &request).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}})
    );

    let response = post(
        &server,
        "/v1/messages",
        &anthropic_body("c?status=529", true),
    )
    .await;
    assert_eq!(response.status(), 529);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");

    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", server.addr()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
}
