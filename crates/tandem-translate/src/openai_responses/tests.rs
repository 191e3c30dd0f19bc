//! Tests for the Responses translation: Codex-shaped requests, answers and streams.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_protocol::{
    ChatRequest, ChatResponse, ErrorKind, FinishReason, Message, Part, Role, StreamEvent,
    ToolChoice, ToolKind, Usage,
};

use crate::openai_responses::{Encoder, decode_request, encode_response, error_body};
use crate::sse::Parser;
use crate::{EncodeContext, StreamEncoder};

fn decode(body: Value) -> ChatRequest {
    decode_request(body.to_string().as_bytes()).unwrap()
}

fn decode_err(body: Value) -> String {
    decode_request(body.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

/// A trimmed version of what Codex CLI 0.169 sends on its second turn of a session.
fn codex_request() -> Value {
    json!({
        "model": "gw-fast",
        "stream": true,
        "instructions": null,
        "input": [
            {"type": "message", "id": "msg_a", "role": "developer",
             "content": [{"type": "input_text", "text": "You are a coding agent running in the Codex CLI."}]},
            {"type": "message", "role": "developer", "content": [
                {"type": "input_text", "text": "<permissions instructions>\nread-only"},
                {"type": "input_text", "text": "<skills_instructions>none"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text",
             "text": "<environment_context>\n  <cwd>/work</cwd>\n  <shell>bash</shell>\n</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "add hello.txt"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [
                {"type": "summary_text", "text": "Look first."},
                {"type": "summary_text", "text": "Then patch."}],
             "content": null, "encrypted_content": "gAAAA-opaque"},
            {"type": "message", "role": "assistant", "status": "completed",
             "internal_chat_message_metadata_passthrough": {"x": 1},
             "content": [{"type": "output_text", "text": "Checking the tree.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "status": "completed", "call_id": "call_1",
             "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"},
            {"type": "function_call", "call_id": "call_2", "namespace": "multi_agent_v1",
             "name": "spawn_agent", "arguments": "{}"},
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "README.md\n"},
            {"type": "function_call_output", "call_id": "call_2", "output": [
                {"type": "input_text", "text": "agent started"}]},
            {"type": "custom_tool_call", "id": "ctc_1", "status": "completed", "call_id": "call_p1",
             "name": "apply_patch",
             "input": "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"},
            {"type": "custom_tool_call_output", "call_id": "call_p1",
             "output": "Exit code: 0\nOutput:\nSuccess. Updated the following files:\nA hello.txt\n"},
            {"role": "user", "content": "thanks"}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Runs a command in a PTY.",
             "strict": false, "parameters": {"type": "object",
                "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
            {"type": "custom", "name": "apply_patch",
             "description": "Use the `apply_patch` tool to edit files. This is a FREEFORM tool.",
             "format": {"type": "grammar", "syntax": "lark",
                "definition": "start: begin_patch hunk+ end_patch\nbegin_patch: \"*** Begin Patch\" LF"}},
            {"type": "namespace", "name": "multi_agent_v1",
             "description": "Tools for spawning and managing sub-agents.",
             "tools": [
                {"type": "function", "name": "spawn_agent", "description": "Spawn a sub-agent.",
                 "strict": false, "parameters": {"type": "object", "properties": {}}},
                {"type": "function", "name": "wait_agent", "parameters": {"type": "object", "properties": {}}}]},
            {"type": "web_search", "external_web_access": false},
            {"type": "tool_search", "execution": "client", "description": "Search tools",
             "parameters": {"type": "object"}}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "include": ["reasoning.encrypted_content"],
        "text": {"verbosity": "low"},
        "prompt_cache_key": "0199-thread",
        "client_metadata": {"session_id": "0199-thread", "x-codex-window-id": "0199-thread:0"}
    })
}

#[test]
fn decodes_a_codex_request() {
    insta::assert_debug_snapshot!(decode(codex_request()));
}

#[test]
fn unknown_top_level_field_is_named() {
    let err = decode_err(json!({"model": "m", "input": "hi", "bogus_field": 1}));
    assert!(err.contains("bogus_field"), "{err}");
}

#[test]
fn errors_name_the_path_inside_items() {
    let err = decode_err(json!({"model": "m", "input": [
        {"type": "message", "role": "user", "content": "ok"},
        {"type": "message", "role": "user", "content": [{"type": "input_audio", "data": "x"}]}]}));
    assert!(err.contains("input[1].content[0]"), "{err}");
    let err = decode_err(json!({"model": "m", "input": [
        {"type": "function_call", "name": "f", "arguments": "{}"}]}));
    assert!(err.contains("input[0]") && err.contains("call_id"), "{err}");
    let err = decode_err(json!({"model": "m", "reasoning": {"effort": "extreme"}}));
    assert!(err.contains("reasoning.effort"), "{err}");
}

#[test]
fn unknown_item_type_is_refused_by_name() {
    let err = decode_err(json!({"model": "m", "input": [
        {"type": "compaction", "encrypted_content": "x"}]}));
    assert_eq!(
        err,
        "unsupported input item type `compaction` at `input[0]`"
    );
}

/// Found by schemathesis (`tests/clients/test_openapi.py`): a `namespace` that is not a string was ignored, so the
/// choice named the tool outside its namespace; it is refused like a `name` that is not a string.
#[test]
fn tool_choice_namespace_must_be_a_string() {
    let choice = |namespace: Value| {
        json!({"model": "m", "input": "hi",
            "tool_choice": {"type": "function", "name": "f", "namespace": namespace}})
    };
    assert_eq!(
        decode_err(choice(json!(true))),
        "invalid request body at `tool_choice`: tool_choice `namespace` must be a string"
    );
    assert_eq!(
        decode(choice(json!("ns"))).tool_choice,
        ToolChoice::Named("ns__f".into())
    );
    assert_eq!(
        decode(choice(Value::Null)).tool_choice,
        ToolChoice::Named("f".into())
    );
}

#[test]
fn stateful_requests_are_refused() {
    let err = decode_err(json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}));
    assert_eq!(
        err,
        "previous_response_id is not supported: Tandem is stateless; send the whole history"
    );
    let err = decode_err(json!({"model": "m", "input": "hi", "conversation": "conv_1"}));
    assert!(err.starts_with("conversation is not supported"), "{err}");
}

#[test]
fn string_input_and_instructions() {
    let req = decode(json!({
        "model": "gpt-x", "instructions": "be brief", "input": "hello",
        "max_output_tokens": 100, "temperature": 0.2, "top_p": 0.9,
        "safety_identifier": "user-7", "tool_choice": {"type": "custom", "name": "apply_patch"}
    }));
    let mut expected = ChatRequest::new(
        "gpt-x",
        vec![
            Message::text(Role::System, "be brief"),
            Message::text(Role::User, "hello"),
        ],
    );
    expected.max_output_tokens = Some(100);
    expected.temperature = Some(0.2);
    expected.top_p = Some(0.9);
    expected.user = Some("user-7".into());
    expected.tool_choice = ToolChoice::Named("apply_patch".into());
    assert_eq!(req, expected);
}

#[test]
fn structured_output_becomes_response_format() {
    let req = decode(json!({
        "model": "m", "input": "hi",
        "text": {"format": {"type": "json_schema", "name": "answer", "strict": true,
            "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}
    }));
    assert_eq!(
        Value::Object(req.openai_extra),
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "answer",
            "strict": true, "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}})
    );
}

#[test]
fn tool_output_images_follow_the_tool_results() {
    let req = decode(json!({"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "message", "role": "user", "content": "what is it?"}]}));
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        vec![Role::Assistant, Role::Tool, Role::User, Role::User]
    );
    assert_eq!(
        req.messages[2].parts,
        vec![Part::Image {
            url: "data:image/png;base64,AAAA".into()
        }]
    );
}

// ---------------------------------------------------------------------------------------------------------
// Answers

/// The request the encoder tests answer: Codex's tools, already decoded.
fn answered_request() -> ChatRequest {
    decode(codex_request())
}

fn ctx(request: &ChatRequest) -> EncodeContext<'_> {
    EncodeContext {
        request,
        id: "t1",
        created: 1_700_000_000,
    }
}

/// Run `events` through a fresh encoder, then `finish()` (or `fail()` when `fail` is set).
fn stream(events: &[StreamEvent], fail: Option<(ErrorKind, &str)>) -> String {
    let request = answered_request();
    let mut encoder = Encoder::new(&ctx(&request));
    let mut out = String::new();
    for event in events {
        out.push_str(&encoder.encode(event));
    }
    match fail {
        Some((kind, message)) => out.push_str(&encoder.fail(kind, message)),
        None => out.push_str(&encoder.finish()),
    }
    assert_eq!(encoder.finish(), "", "nothing after the terminal event");
    check_stream(&out);
    out
}

/// Stream invariants: every frame names its type twice, and sequence numbers count up from 0.
fn check_stream(sse: &str) {
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    parser.feed(sse.as_bytes(), &mut events).unwrap();
    assert!(!parser.finish());
    for (n, event) in events.iter().enumerate() {
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(event.event.as_deref(), data["type"].as_str());
        assert_eq!(data["sequence_number"], json!(n));
    }
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: "up-1".into(),
        model: "upstream-model".into(),
    }
}

fn usage() -> StreamEvent {
    StreamEvent::Usage(Usage {
        input_tokens: 1200,
        output_tokens: 8,
        cached_input_tokens: 1000,
        reasoning_tokens: 3,
    })
}

#[test]
fn streams_a_text_answer() {
    insta::assert_snapshot!(stream(
        &[
            start(),
            StreamEvent::ReasoningDelta("Say hi".into()),
            StreamEvent::TextDelta("hi from ".into()),
            StreamEvent::TextDelta("the gateway".into()),
            StreamEvent::Finish(FinishReason::Stop),
            usage(),
        ],
        None
    ));
}

#[test]
fn streams_function_calls_with_namespaces() {
    insta::assert_snapshot!(stream(
        &[
            start(),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "exec_command".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"cmd\":".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "\"ls\"}".into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "call_2".into(),
                name: "multi_agent_v1__spawn_agent".into()
            },
            StreamEvent::Finish(FinishReason::ToolCalls),
            usage(),
        ],
        None
    ));
}

#[test]
fn streams_apply_patch_as_a_custom_tool_call() {
    let patch =
        "*** Begin Patch\n*** Add File: hello.txt\n+hello from gateway patch\n*** End Patch\n";
    let arguments = json!({ "input": patch }).to_string();
    let (head, tail) = arguments.split_at(20);
    let out = stream(
        &[
            start(),
            StreamEvent::ReasoningDelta("Need a file.".into()),
            StreamEvent::ReasoningSignature("sig-abc".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_p1".into(),
                name: "apply_patch".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: head.into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: tail.into(),
            },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ],
        None,
    );
    let done = item_done(&out, "custom_tool_call");
    assert_eq!(
        done,
        json!({"type": "custom_tool_call", "id": "ctc_t1_1", "call_id": "call_p1",
            "name": "apply_patch", "status": "completed", "input": patch})
    );
    insta::assert_snapshot!(out);
}

/// The `item` of the `response.output_item.done` event whose item has type `kind`.
fn item_done(sse: &str, kind: &str) -> Value {
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    parser.feed(sse.as_bytes(), &mut events).unwrap();
    events
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
        .find(|d| d["type"] == "response.output_item.done" && d["item"]["type"] == kind)
        .unwrap()["item"]
        .clone()
}

#[test]
fn custom_input_that_is_not_wrapped_passes_through() {
    let out = stream(
        &[
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c".into(),
                name: "apply_patch".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "*** Begin Patch\n*** End Patch".into(),
            },
        ],
        None,
    );
    assert_eq!(
        item_done(&out, "custom_tool_call")["input"],
        json!("*** Begin Patch\n*** End Patch")
    );
}

#[test]
fn length_finish_is_incomplete() {
    insta::assert_snapshot!(stream(
        &[
            start(),
            StreamEvent::TextDelta("truncat".into()),
            StreamEvent::Finish(FinishReason::Length),
            usage(),
        ],
        None
    ));
}

#[test]
fn failure_ends_with_response_failed() {
    let out = stream(
        &[start(), StreamEvent::TextDelta("partial".into())],
        Some((ErrorKind::Upstream, "upstream closed the connection")),
    );
    assert!(!out.contains("response.completed"));
    insta::assert_snapshot!(out);
}

#[test]
fn quota_failure_uses_the_code_codex_does_not_retry() {
    let out = stream(&[], Some((ErrorKind::QuotaExceeded, "budget spent")));
    assert!(out.contains(r#""code":"insufficient_quota""#), "{out}");
}

#[test]
fn encodes_a_non_stream_answer() {
    let request = answered_request();
    let resp = ChatResponse {
        id: "up-1".into(),
        model: "upstream-model".into(),
        parts: vec![
            Part::Reasoning {
                id: None,
                text: "Plan.".into(),
                encrypted: None,
                signature: Some("sig".into()),
            },
            Part::Text("Applying ".into()),
            Part::Text("the patch.".into()),
            Part::ToolCall {
                id: "call_p1".into(),
                name: "apply_patch".into(),
                arguments: json!({"input": "*** Begin Patch\n*** End Patch\n"}).to_string(),
                kind: ToolKind::Function,
            },
            Part::ToolCall {
                id: "call_2".into(),
                name: "multi_agent_v1__wait_agent".into(),
                arguments: String::new(),
                kind: ToolKind::Function,
            },
        ],
        finish: FinishReason::ToolCalls,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 5,
            cached_input_tokens: 0,
            reasoning_tokens: 2,
        },
    };
    insta::assert_json_snapshot!(encode_response(&resp, &ctx(&request)));
}

#[test]
fn error_bodies_use_the_openai_shape() {
    assert_eq!(
        error_body(ErrorKind::QuotaExceeded, "budget spent"),
        json!({"error": {"message": "budget spent", "type": "insufficient_quota",
            "param": null, "code": "insufficient_quota"}})
    );
    assert_eq!(
        error_body(ErrorKind::NotFound, "no such model")["error"]["code"],
        json!("model_not_found")
    );
}

#[test]
fn a_bare_signature_makes_an_opaque_reasoning_item() {
    let out = stream(
        &[
            StreamEvent::ReasoningSignature("sig-1".into()),
            StreamEvent::ReasoningDelta("second block".into()),
            StreamEvent::TextDelta("ok".into()),
        ],
        None,
    );
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    parser.feed(out.as_bytes(), &mut events).unwrap();
    let done: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap())
        .filter(|d| d["type"] == "response.output_item.done")
        .map(|d| d["item"].clone())
        .collect();
    assert_eq!(
        done,
        vec![
            json!({"type": "reasoning", "id": "rs_t1_0", "summary": [], "encrypted_content": "sig-1"}),
            json!({"type": "reasoning", "id": "rs_t1_1",
                "summary": [{"type": "summary_text", "text": "second block"}]}),
            json!({"type": "message", "id": "msg_t1_2", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "ok", "annotations": []}]}),
        ]
    );
}

#[test]
fn undeclared_names_are_not_split() {
    let out = stream(
        &[StreamEvent::ToolCallStart {
            index: 0,
            id: "c".into(),
            name: "mcp__server__tool".into(),
        }],
        None,
    );
    assert_eq!(
        item_done(&out, "function_call"),
        json!({"type": "function_call", "id": "fc_t1_0", "call_id": "c", "name": "mcp__server__tool",
            "status": "completed", "arguments": "{}"})
    );
}

#[test]
fn namespaces_keep_their_own_spelling() {
    let req = decode(
        json!({"model": "m", "tools": [{"type": "namespace", "name": "mcp__docs__",
        "tools": [{"type": "function", "name": "search"}]}]}),
    );
    assert_eq!(req.tools[0].name, "mcp__docs____search");
    let resp = ChatResponse {
        id: String::new(),
        model: String::new(),
        parts: vec![Part::ToolCall {
            id: "c".into(),
            name: "mcp__docs____search".into(),
            arguments: "{\"q\":\"x\"}".into(),
            kind: ToolKind::Function,
        }],
        finish: FinishReason::ToolCalls,
        usage: Usage::default(),
    };
    let body = encode_response(&resp, &ctx(&req));
    assert_eq!(body["output"][0]["namespace"], json!("mcp__docs__"));
    assert_eq!(body["output"][0]["name"], json!("search"));
}

#[test]
fn plain_tools_with_separator_in_their_name_are_not_split() {
    let req =
        decode(json!({"model": "m", "tools": [{"type": "function", "name": "mcp__fs__read"}]}));
    assert_eq!(req.tools[0].namespace, None);
    let resp = ChatResponse {
        id: String::new(),
        model: String::new(),
        parts: vec![Part::ToolCall {
            id: "c".into(),
            name: "mcp__fs__read".into(),
            arguments: "{}".into(),
            kind: ToolKind::Function,
        }],
        finish: FinishReason::ToolCalls,
        usage: Usage::default(),
    };
    let body = encode_response(&resp, &ctx(&req));
    assert_eq!(body["output"][0]["name"], json!("mcp__fs__read"));
    assert!(
        body["output"][0]
            .get("namespace")
            .is_none_or(Value::is_null),
        "{body}"
    );
}

/// Found by `fuzz/fuzz_targets/translate_stream.rs`: usage counts near `u64::MAX` overflowed
/// `total_tokens`; it saturates.
#[test]
fn total_tokens_saturates_on_huge_usage() {
    let huge = StreamEvent::Usage(Usage {
        input_tokens: u64::MAX,
        output_tokens: 1,
        ..Usage::default()
    });
    let out = stream(&[start(), huge], None);
    assert!(
        out.contains(&format!(r#""total_tokens":{}"#, u64::MAX)),
        "{out}"
    );
}
