//! Each client API in front of each upstream kind: text, tools, usage, and the exchange records.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_store::Outcome;

use crate::support::{Harness, sse_data, sse_events};

const UPSTREAMS: [&str; 2] = ["tk/scripted", "tka/scripted"];

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn chat_non_stream_passes_usage_exactly() {
    let h = Harness::start().await;
    for model in UPSTREAMS {
        let resp = h
            .post(
                "/v1/chat/completions",
                &json!({"model": model, "messages": user("0123456789")}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().contains_key("x-request-id"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], model);
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "hello from testkit"
        );
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        // testkit: ceil(10 chars / 4) = 3 prompt tokens, 3 completion tokens.
        assert_eq!(body["usage"]["prompt_tokens"], 3, "{model}");
        assert_eq!(body["usage"]["completion_tokens"], 3, "{model}");
    }
    let records = h.records();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(
            (
                r.outcome,
                r.status,
                r.usage.input_tokens,
                r.usage.output_tokens
            ),
            (Outcome::Ok, 200, 3, 3)
        );
        assert!(r.usage_exact);
    }
    assert_eq!(records[1].provider, "tka");
}

#[tokio::test]
async fn chat_stream_with_usage_and_alias() {
    let h = Harness::start().await;
    for model in ["scripted-alias", "tka/scripted"] {
        let (status, text) = h
            .post_text(
                "/v1/chat/completions",
                &json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
                    "messages": user("abcd")}),
            )
            .await;
        assert_eq!(status, 200);
        let data = sse_data(&text);
        let joined: String = data
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(joined, "hello from testkit");
        assert_eq!(data.last().unwrap(), &json!("[DONE]"));
        let usage = &data[data.len() - 2]["usage"];
        assert_eq!(
            (
                usage["prompt_tokens"].clone(),
                usage["completion_tokens"].clone()
            ),
            (json!(1), json!(3))
        );
    }
    let records = h.records();
    assert_eq!(records[0].upstream_model, "scripted");
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Ok && r.usage_exact && r.ttft_ms.is_some())
    );
}

#[tokio::test]
async fn chat_tool_call_round_trip() {
    let h = Harness::start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    for model in UPSTREAMS {
        for stream in [false, true] {
            let body = json!({"model": model, "stream": stream, "tools": tools,
                "messages": user("testkit-tool: get_weather {\"city\":\"Paris\"}")});
            let (status, text) = h.post_text("/v1/chat/completions", &body).await;
            assert_eq!(status, 200, "{text}");
            let (id, name, args, finish) = if stream {
                let data = sse_data(&text);
                let calls: Vec<&Value> = data
                    .iter()
                    .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
                    .collect();
                let args: String = calls
                    .iter()
                    .filter_map(|c| c["function"]["arguments"].as_str())
                    .collect();
                let finish = data
                    .iter()
                    .find_map(|c| c["choices"][0]["finish_reason"].as_str())
                    .unwrap()
                    .to_owned();
                (
                    calls[0]["id"].clone(),
                    calls[0]["function"]["name"].clone(),
                    args,
                    finish,
                )
            } else {
                let v: Value = serde_json::from_str(&text).unwrap();
                let call = &v["choices"][0]["message"]["tool_calls"][0];
                (
                    call["id"].clone(),
                    call["function"]["name"].clone(),
                    call["function"]["arguments"].as_str().unwrap().to_owned(),
                    v["choices"][0]["finish_reason"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            };
            assert_eq!(name, "get_weather");
            assert_eq!(finish, "tool_calls", "{model} stream={stream}");
            let args: Value = serde_json::from_str(&args).unwrap();
            assert_eq!(args, json!({"city": "Paris"}), "{model} stream={stream}");
            // Send the result back: the upstream answers `done: <first line>`.
            let follow = json!({"model": model, "tools": tools, "messages": [
                {"role": "user", "content": "testkit-tool: get_weather {\"city\":\"Paris\"}"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": id, "content": "sunny\nmore"}]});
            let v: Value = h
                .post("/v1/chat/completions", &follow)
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(
                v["choices"][0]["message"]["content"], "done: sunny",
                "{model}"
            );
        }
    }
}

#[tokio::test]
async fn responses_stream_as_codex_reads_it() {
    let h = Harness::start().await;
    for model in UPSTREAMS {
        let (status, text) = h
            .post_text("/v1/responses", &json!({"model": model, "stream": true, "store": false,
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}))
            .await;
        assert_eq!(status, 200);
        let events = sse_events(&text);
        assert_eq!(events.first().unwrap(), "response.created");
        assert_eq!(events.last().unwrap(), "response.completed");
        let data = sse_data(&text);
        let done = data
            .iter()
            .find(|d| d["type"] == "response.output_item.done")
            .unwrap();
        assert_eq!(done["item"]["content"][0]["text"], "hello from testkit");
        let completed = data.last().unwrap();
        assert_eq!(
            completed["response"]["usage"]["output_tokens"], 3,
            "{model}"
        );
        assert_eq!(completed["response"]["usage"]["input_tokens"], 1, "{model}");
    }
}

#[tokio::test]
async fn responses_custom_tool_becomes_custom_tool_call() {
    let h = Harness::start().await;
    let patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n";
    let prompt = format!("testkit-tool: apply_patch {}", json!({"input": patch}));
    for model in UPSTREAMS {
        let body = json!({"model": model, "stream": true,
            "tools": [{"type": "custom", "name": "apply_patch", "description": "patch",
                       "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
                      {"type": "function", "name": "exec_command", "parameters": {"type": "object"}}],
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]});
        let (_, text) = h.post_text("/v1/responses", &body).await;
        let data = sse_data(&text);
        let item = &data
            .iter()
            .find(|d| d["type"] == "response.output_item.done")
            .unwrap()["item"];
        assert_eq!(item["type"], "custom_tool_call", "{model}: {text}");
        assert_eq!(item["name"], "apply_patch");
        assert_eq!(item["input"], patch);
        // The follow-up carries the custom call and its output: the upstream sees a tool result.
        let follow = json!({"model": model, "stream": true, "tools": body["tools"],
            "input": [body["input"][0].clone(), item.clone(),
                {"type": "custom_tool_call_output", "call_id": item["call_id"], "output": "Success. Updated the following files:\nA hello.txt"}]});
        let (_, text) = h.post_text("/v1/responses", &follow).await;
        let data = sse_data(&text);
        let done = data
            .iter()
            .find(|d| d["type"] == "response.output_item.done")
            .unwrap();
        assert_eq!(
            done["item"]["content"][0]["text"],
            "done: Success. Updated the following files:"
        );
    }
}

#[tokio::test]
async fn messages_stream_and_tool_use() {
    let h = Harness::start().await;
    for model in UPSTREAMS {
        let (status, text) = h
            .post_text(
                "/v1/messages",
                &json!({"model": model, "max_tokens": 100, "stream": true,
                "system": "be brief", "messages": user("hi")}),
            )
            .await;
        assert_eq!(status, 200);
        let events = sse_events(&text);
        assert_eq!(events.first().unwrap(), "message_start");
        assert_eq!(events.last().unwrap(), "message_stop");
        let text_out: String = sse_data(&text)
            .iter()
            .filter_map(|d| d["delta"]["text"].as_str())
            .collect();
        assert_eq!(text_out, "hello from testkit");

        let v: Value = h
            .post(
                "/v1/messages",
                &json!({"model": model, "max_tokens": 100,
                "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
                "messages": user("testkit-tool: get_weather {\"city\":\"Oslo\"}")}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["stop_reason"], "tool_use", "{v}");
        let block = &v["content"][0];
        assert_eq!(
            (block["type"].clone(), block["input"].clone()),
            (json!("tool_use"), json!({"city": "Oslo"}))
        );
        let follow = json!({"model": model, "max_tokens": 100,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "testkit-tool: get_weather {\"city\":\"Oslo\"}"},
                {"role": "assistant", "content": [block.clone()]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "rainy"}]}]});
        let v: Value = h.post("/v1/messages", &follow).await.json().await.unwrap();
        assert_eq!(v["content"][0]["text"], "done: rainy", "{model}");
    }
}

#[tokio::test]
async fn models_and_probes() {
    let h = Harness::start().await;
    let v: Value = h
        .client
        .get(h.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["scripted-alias", "tk/*", "tka/*"]);
    let v: Value = h
        .client
        .get(h.url("/v1/models"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            h.client.get(h.url(path)).send().await.unwrap().status(),
            200
        );
    }
}
