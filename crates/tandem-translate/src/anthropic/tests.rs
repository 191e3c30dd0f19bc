//! Tests for the Anthropic Messages translation: requests both ways, answers, streams and errors.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};
use tandem_protocol::{
    ChatRequest, ChatResponse, ErrorKind, FinishReason, Message, Part, ReasoningEffort, Role,
    StreamEvent, Tool, ToolChoice, ToolKind, Usage,
};

use crate::anthropic::{
    Decoder, Encoder, decode_request, decode_response, encode_request, encode_response, error_body,
};
use crate::sse::Parser;
use crate::{EncodeContext, Error, StreamDecoder, StreamEncoder};

fn decode(body: &Value) -> ChatRequest {
    decode_request(body.to_string().as_bytes()).unwrap()
}

fn decode_err(body: &Value) -> String {
    decode_request(body.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

/// A request shaped like Claude Code's: system blocks with cache markers, tools, a finished tool round
/// with thinking, and the beta fields it sends.
fn claude_code_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": true,
        "metadata": {"user_id": "user_abc_account_123_session_456"},
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "You are an interactive CLI tool.", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [
            {"name": "Bash", "description": "Run a shell command",
             "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                              "required": ["command"], "additionalProperties": false,
                              "$schema": "http://json-schema.org/draft-07/schema#"}},
            {"name": "Read", "description": "Read a file",
             "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
             "cache_control": {"type": "ephemeral"}}
        ],
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "list the files", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "sig-1"},
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "toolu_02", "name": "Read", "input": {"file_path": "/a.png"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.png\nb.txt"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": false, "content": [
                    {"type": "text", "text": "image file"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}
                ]},
                {"type": "text", "text": "thanks", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "opaque"}]}
        ]
    })
}

#[test]
fn decodes_a_claude_code_request() {
    let req = decode(&claude_code_request());
    insta::assert_debug_snapshot!(req);
}

#[test]
fn encodes_an_upstream_request() {
    let req = decode(&claude_code_request());
    insta::assert_json_snapshot!(encode_request(&req, "claude-sonnet-4-5"));
}

#[test]
fn encodes_a_request_from_another_client_format() {
    let mut req = ChatRequest::new(
        "alias",
        vec![
            Message::text(Role::Developer, "be brief"),
            Message::text(Role::System, "no emojis"),
            Message::text(Role::User, "patch it"),
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Reasoning {
                        id: Some("rs_1".into()),
                        text: "foreign summary".into(),
                        encrypted: Some("openai-blob".into()),
                        signature: None,
                    },
                    Part::ToolCall {
                        id: "call_1".into(),
                        name: "apply_patch".into(),
                        arguments: "*** Begin Patch\n*** End Patch".into(),
                        kind: ToolKind::Custom { format: None },
                    },
                    Part::ToolCall {
                        id: "call_2".into(),
                        name: "shell".into(),
                        arguments: String::new(),
                        kind: ToolKind::Function,
                    },
                ],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: "call_1".into(),
                    content: "done".into(),
                    is_error: false,
                }],
            },
            Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult {
                    call_id: "call_2".into(),
                    content: "boom".into(),
                    is_error: true,
                }],
            },
            Message {
                role: Role::User,
                parts: vec![Part::Image {
                    url: "https://example.com/cat.png".into(),
                }],
            },
        ],
    );
    req.tools = vec![
        Tool {
            name: "apply_patch".into(),
            namespace: None,
            description: Some("Edit files.".into()),
            parameters: None,
            strict: None,
            kind: ToolKind::Custom {
                format: Some(
                    json!({"type": "grammar", "syntax": "lark", "definition": "start: patch"}),
                ),
            },
        },
        Tool {
            name: "shell".into(),
            namespace: None,
            description: None,
            parameters: Some(json!({"properties": {"cmd": {"type": "string"}}})),
            strict: Some(true),
            kind: ToolKind::Function,
        },
    ];
    req.parallel_tool_calls = Some(false);
    req.reasoning_effort = Some(ReasoningEffort::Medium);
    req.temperature = Some(0.2);
    req.stop = vec!["END".into()];
    req.user = Some("u-1".into());
    req.openai_extra.insert(
        "response_format".into(),
        json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
    );
    insta::assert_json_snapshot!(encode_request(&req, "claude-haiku-4-5"));
}

#[test]
fn thinking_budget_respects_max_tokens_and_forced_tools() {
    let mut req = ChatRequest::new("m", vec![Message::text(Role::User, "hi")]);
    req.reasoning_effort = Some(ReasoningEffort::High);
    req.temperature = Some(0.5);
    let body = encode_request(&req, "m");
    assert_eq!(body["max_tokens"], json!(4096 + 24_576));
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 24_576})
    );
    assert_eq!(body.get("temperature"), None);

    req.max_output_tokens = Some(10_000);
    assert_eq!(
        encode_request(&req, "m")["thinking"]["budget_tokens"],
        json!(9_999)
    );
    req.max_output_tokens = Some(1_000);
    assert_eq!(encode_request(&req, "m").get("thinking"), None);

    req.max_output_tokens = None;
    req.tools = vec![Tool {
        name: "t".into(),
        namespace: None,
        description: None,
        parameters: None,
        strict: None,
        kind: ToolKind::Function,
    }];
    req.tool_choice = ToolChoice::Required;
    let body = encode_request(&req, "m");
    assert_eq!(body.get("thinking"), None);
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    assert_eq!(body["max_tokens"], json!(4096));
}

#[test]
fn decodes_request_options() {
    let req = decode(&json!({
        "model": "m", "max_tokens": 100, "system": "be terse", "temperature": 0.3, "top_p": 0.9, "top_k": 5,
        "stop_sequences": ["\n\nHuman:"], "service_tier": "auto",
        "tool_choice": {"type": "tool", "name": "Bash", "disable_parallel_tool_use": true},
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "max"},
        "output_format": {"type": "json_schema", "schema": {"type": "object"}},
        "messages": [{"role": "user", "content": "hi"}]
    }));
    assert_eq!(req.messages[0], Message::text(Role::System, "be terse"));
    assert_eq!(req.tool_choice, ToolChoice::Named("Bash".into()));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.reasoning_effort, Some(ReasoningEffort::High));
    assert_eq!(req.stop, vec!["\n\nHuman:".to_owned()]);
    assert_eq!(
        req.openai_extra["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}})
    );
    assert!(!req.stream);

    for (choice, expected) in [
        (json!({"type": "auto"}), ToolChoice::Auto),
        (json!({"type": "any"}), ToolChoice::Required),
        (json!({"type": "none"}), ToolChoice::None),
    ] {
        let req =
            decode(&json!({"model": "m", "max_tokens": 1, "messages": [], "tool_choice": choice}));
        assert_eq!(req.tool_choice, expected);
    }
    for (budget, effort) in [
        (1024, ReasoningEffort::Low),
        (8000, ReasoningEffort::Medium),
        (16_384, ReasoningEffort::High),
    ] {
        let req = decode(&json!({"model": "m", "max_tokens": 1, "messages": [],
            "thinking": {"type": "enabled", "budget_tokens": budget}}));
        assert_eq!(req.reasoning_effort, Some(effort), "budget {budget}");
    }
}

#[test]
fn request_errors_name_what_is_wrong() {
    let base = |extra: Value| {
        let mut body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        body
    };
    insta::assert_snapshot!(
        decode_err(&base(json!({"frequency_penalty": 1}))),
        @"invalid request body at `frequency_penalty`: unknown field `frequency_penalty`, expected one of `model`, `messages`, `max_tokens`, `system`, `stream`, `temperature`, `top_p`, `top_k`, `stop_sequences`, `tools`, `tool_choice`, `metadata`, `thinking`, `output_config`, `output_format`, `mcp_servers`, `service_tier`, `container`, `context_management`, `cache_control`, `inference_geo`, `speed` at line 1 column 92"
    );
    insta::assert_snapshot!(
        decode_err(&json!({"model": "m", "messages": []})),
        @"invalid request body at `.`: missing field `max_tokens` at line 1 column 27"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}))),
        @"unsupported content block type `document` at `messages[0].content[0]`"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "x"}]}]}))),
        @"invalid request body at `messages[0].content[0]`: invalid `tool_use` block: missing field `name` at line 1 column 96"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "x", "name": "n", "input": {}}]}]}))),
        @"`tool_use` blocks are not allowed in user messages (`messages[0].content[0]`)"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"messages": [{"role": "system", "content": "x"}]}))),
        @"invalid request body at `messages[0].role`: unknown variant `system`, expected `user` or `assistant` at line 1 column 57"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}))),
        @"unsupported tool type `web_search_20250305` (`tools[0]`, `web_search`): only client tools can be routed"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}))),
        @"`mcp_servers` is not supported: declare the MCP tools as client tools instead"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"system": [{"type": "image", "source": {"type": "url", "url": "u"}}]}))),
        @"unsupported content block type `image` in `system[0]`: only `text` blocks are allowed"
    );
    insta::assert_snapshot!(
        decode_err(&base(json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}))),
        @"unsupported image source `file` at `messages[0].content[0]`: use `base64` or `url`"
    );
    let err = decode_request(
        br#"{"model": "m", "max_tokens": 1, "messages": [], "tools": [{"name": "t"}]}"#,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
}

/// Found by schemathesis (`tests/clients/test_openapi.py`): an invalid `output_format` was never read when
/// `output_config.format` was given, so the request passed; both spellings are checked.
#[test]
fn output_format_is_checked_beside_output_config() {
    let body = |output_format: Value| {
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "output_format": output_format})
    };
    let err = decode_err(&body(json!({"schema": {}})));
    assert!(err.starts_with("unsupported output format"), "{err}");
    let req = decode(&body(
        json!({"type": "json_schema", "schema": {"type": "string"}}),
    ));
    assert_eq!(
        req.openai_extra["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}})
    );
}

#[test]
fn decodes_an_upstream_response() {
    let body = json!({
        "id": "msg_up", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Running it."},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la", "timeout": 5}},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 300,
                  "output_tokens": 40, "service_tier": "standard"}
    });
    let resp = decode_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        resp,
        ChatResponse {
            id: "msg_up".into(),
            model: "claude-sonnet-4-5-20250929".into(),
            parts: vec![
                Part::Reasoning {
                    id: None,
                    text: "hmm".into(),
                    encrypted: None,
                    signature: Some("sig".into())
                },
                Part::Text("Running it.".into()),
                Part::ToolCall {
                    id: "toolu_1".into(),
                    name: "Bash".into(),
                    arguments: r#"{"command":"ls -la","timeout":5}"#.into(),
                    kind: ToolKind::Function,
                },
            ],
            finish: FinishReason::ToolCalls,
            usage: Usage {
                input_tokens: 330,
                output_tokens: 40,
                cached_input_tokens: 300,
                reasoning_tokens: 0
            },
        }
    );
    for (reason, finish) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("refusal", FinishReason::ContentFilter),
    ] {
        let body = json!({"type": "message", "id": "i", "model": "m", "content": [], "stop_reason": reason,
                          "usage": {"input_tokens": 1, "output_tokens": 1}});
        assert_eq!(
            decode_response(body.to_string().as_bytes()).unwrap().finish,
            finish
        );
    }
    let err = decode_response(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed upstream answer: overloaded_error: Overloaded"
    );
    assert!(matches!(
        decode_response(b"{\"type\":\"message\"}"),
        Err(Error::Upstream(_))
    ));
}

fn context_request() -> ChatRequest {
    ChatRequest::new("claude-client-alias", vec![Message::text(Role::User, "hi")])
}

#[test]
fn encodes_a_client_response() {
    let req = context_request();
    let ctx = EncodeContext {
        request: &req,
        id: "abc",
        created: 1,
    };
    let resp = ChatResponse {
        id: "chatcmpl-up".into(),
        model: "gpt-5".into(),
        parts: vec![
            Part::Reasoning {
                id: Some("rs".into()),
                text: "thought".into(),
                encrypted: Some("blob".into()),
                signature: None,
            },
            Part::Text("Let me check.".into()),
            Part::ToolCall {
                id: "call_1".into(),
                name: "Read".into(),
                arguments: r#"{"file_path":"a"}"#.into(),
                kind: ToolKind::Function,
            },
        ],
        finish: FinishReason::Stop,
        usage: Usage {
            input_tokens: 100,
            output_tokens: 7,
            cached_input_tokens: 60,
            reasoning_tokens: 3,
        },
    };
    insta::assert_json_snapshot!(encode_response(&resp, &ctx), @r#"
    {
      "id": "msg_abc",
      "type": "message",
      "role": "assistant",
      "model": "claude-client-alias",
      "content": [
        {
          "type": "thinking",
          "thinking": "thought",
          "signature": ""
        },
        {
          "type": "text",
          "text": "Let me check."
        },
        {
          "type": "tool_use",
          "id": "call_1",
          "name": "Read",
          "input": {
            "file_path": "a"
          }
        }
      ],
      "stop_reason": "tool_use",
      "stop_sequence": null,
      "usage": {
        "input_tokens": 40,
        "output_tokens": 7,
        "cache_read_input_tokens": 60
      }
    }
    "#);
}

#[test]
fn error_bodies_use_anthropic_types() {
    assert_eq!(
        error_body(ErrorKind::NotFound, "no such model"),
        json!({"type": "error", "error": {"type": "not_found_error", "message": "no such model"}})
    );
    for (kind, name) in [
        (ErrorKind::BadRequest, "invalid_request_error"),
        (ErrorKind::PayloadTooLarge, "request_too_large"),
        (ErrorKind::Denied, "permission_error"),
        (ErrorKind::QuotaExceeded, "rate_limit_error"),
        (ErrorKind::Upstream, "api_error"),
        (ErrorKind::UpstreamTimeout, "api_error"),
        (ErrorKind::Unavailable, "overloaded_error"),
        (ErrorKind::Internal, "api_error"),
    ] {
        assert_eq!(error_body(kind, "x")["error"]["type"], json!(name));
    }
}

#[test]
fn encodes_a_client_stream() {
    let req = context_request();
    let ctx = EncodeContext {
        request: &req,
        id: "abc",
        created: 1,
    };
    let mut encoder = Encoder::new(&ctx);
    let events = [
        StreamEvent::Start {
            id: "up".into(),
            model: "gpt-5".into(),
        },
        StreamEvent::ReasoningDelta("Think".into()),
        StreamEvent::ReasoningSignature("sig".into()),
        StreamEvent::TextDelta("Hello".into()),
        StreamEvent::TextDelta(" there".into()),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "Bash".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{\"command\":".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "\"ls\"}".into(),
        },
        StreamEvent::Finish(FinishReason::ToolCalls),
        StreamEvent::Usage(Usage {
            input_tokens: 50,
            output_tokens: 9,
            cached_input_tokens: 20,
            reasoning_tokens: 0,
        }),
    ];
    let mut out: String = events.iter().map(|event| encoder.encode(event)).collect();
    out.push_str(&encoder.finish());
    assert_eq!(encoder.finish(), "");
    assert_eq!(encoder.encode(&StreamEvent::TextDelta("late".into())), "");
    insta::assert_snapshot!(out);
}

#[test]
fn failed_client_stream_ends_with_an_error_event() {
    let req = context_request();
    let ctx = EncodeContext {
        request: &req,
        id: "abc",
        created: 1,
    };
    let mut encoder = Encoder::new(&ctx);
    let mut out = encoder.encode(&StreamEvent::TextDelta("partial".into()));
    out.push_str(&encoder.fail(ErrorKind::Unavailable, "upstream went away"));
    out.push_str(&encoder.finish());
    insta::assert_snapshot!(out, @r#"
    event: message_start
    data: {"type":"message_start","message":{"id":"msg_abc","type":"message","role":"assistant","model":"claude-client-alias","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}

    event: content_block_start
    data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial"}}

    event: error
    data: {"type":"error","error":{"type":"overloaded_error","message":"upstream went away"}}
    "#);
}

#[test]
fn empty_client_stream_is_still_a_message() {
    let req = context_request();
    let ctx = EncodeContext {
        request: &req,
        id: "abc",
        created: 1,
    };
    let out = Encoder::new(&ctx).finish();
    let names: Vec<&str> = out
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    assert!(out.contains(r#""stop_reason":"end_turn""#), "{out}");
}

/// A streamed Anthropic answer with thinking, text and two tool calls, one with split input and one
/// with none, cut into odd chunks.
const UPSTREAM_STREAM: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_up","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":1000,"output_tokens":1}}}"#,
    "\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Need ls."}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":0}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me look."}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":1}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_A","name":"Bash","input":{}}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"comm"}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"and\": \"ls\"}"}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":2}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_B","name":"Status","input":{}}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":3}"#,
    "\n\nevent: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":87}}"#,
    "\n\nevent: message_stop\n",
    r#"data: {"type":"message_stop"}"#,
    "\n\n",
);

fn decode_stream(text: &str, chunk: usize) -> (Vec<StreamEvent>, bool) {
    let mut parser = Parser::new(1 << 16);
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for piece in text.as_bytes().chunks(chunk) {
        let mut events = Vec::new();
        parser.feed(piece, &mut events).unwrap();
        for event in &events {
            out.extend(decoder.decode(event).unwrap());
        }
    }
    (out, decoder.is_done())
}

#[test]
fn decodes_an_upstream_stream() {
    let (events, done) = decode_stream(UPSTREAM_STREAM, 7);
    assert!(done);
    assert_eq!(decode_stream(UPSTREAM_STREAM, 1000).0, events);
    insta::assert_debug_snapshot!(events);
}

/// Found by `fuzz/fuzz_targets/translate_stream.rs`: input, cache read and cache creation counts near
/// `u64::MAX` overflowed their sum; it saturates, in streams and in whole answers.
#[test]
fn usage_sums_saturate() {
    let usage = r#"{"input_tokens":18446744073709551615,"cache_read_input_tokens":5,"cache_creation_input_tokens":1,"output_tokens":2}"#;
    let expect = Usage {
        input_tokens: u64::MAX,
        output_tokens: 2,
        cached_input_tokens: 5,
        reasoning_tokens: 0,
    };
    let stream = format!(
        "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"i\",\"model\":\"m\",\"usage\":{usage}}}}}\n\n\
         event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
    );
    let (events, done) = decode_stream(&stream, 1000);
    assert!(done);
    assert_eq!(events.last(), Some(&StreamEvent::Usage(expect)));
    let body = format!(
        r#"{{"id":"i","type":"message","role":"assistant","model":"m","content":[],"stop_reason":"end_turn","usage":{usage}}}"#
    );
    assert_eq!(decode_response(body.as_bytes()).unwrap().usage, expect);
}

#[test]
fn upstream_stream_errors_and_usage_updates() {
    let mut decoder = Decoder::new();
    let event = |data: &str| crate::sse::Event {
        event: None,
        data: data.to_owned(),
    };
    decoder
        .decode(&event(r#"{"type":"message_start","message":{"id":"i","model":"m","usage":{"input_tokens":3}}}"#))
        .unwrap();
    let events = decoder
        .decode(&event(r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":30,"cache_read_input_tokens":5,"output_tokens":4}}"#))
        .unwrap();
    assert_eq!(events, vec![StreamEvent::Finish(FinishReason::Length)]);
    let events = decoder
        .decode(&event(r#"{"type":"message_stop"}"#))
        .unwrap();
    assert_eq!(
        events,
        vec![StreamEvent::Usage(Usage {
            input_tokens: 35,
            output_tokens: 4,
            cached_input_tokens: 5,
            reasoning_tokens: 0
        })]
    );

    let mut decoder = Decoder::new();
    let err = decoder
        .decode(&event(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed upstream answer: overloaded_error: Overloaded"
    );
    assert!(!decoder.is_done());
    assert!(decoder.decode(&event("not json")).is_err());

    // Server tool input is skipped; a tool_use start carrying its whole input needs no deltas.
    let mut decoder = Decoder::new();
    let events: Vec<StreamEvent> = [
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"Read","input":{"file_path":"a"}}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
    ]
    .iter()
    .flat_map(|data| decoder.decode(&event(data)).unwrap())
    .collect();
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCallStart {
                index: 0,
                id: "t".into(),
                name: "Read".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: r#"{"file_path":"a"}"#.into()
            },
        ]
    );
    assert_eq!(
        decoder
            .decode(&event(r#"{"type":"some_future_event"}"#))
            .unwrap(),
        vec![]
    );
}

/// Simple conversations: text turns and tool rounds, as every client format can express them.
fn conversation() -> impl Strategy<Value = Vec<Message>> {
    let text = "[a-zA-Z0-9 .,!?]{1,20}";
    let tool_round = (
        proptest::option::of(text),
        prop::collection::vec(("[a-z]{1,8}", 0i64..100, text, any::<bool>()), 1..3),
    )
        .prop_map(|(preamble, calls)| {
            let mut assistant = Vec::new();
            if let Some(preamble) = preamble {
                assistant.push(Part::Text(preamble));
            }
            let mut results = Vec::new();
            for (i, (name, arg, output, is_error)) in calls.into_iter().enumerate() {
                let id = format!("toolu_{i}");
                assistant.push(Part::ToolCall {
                    id: id.clone(),
                    name,
                    arguments: json!({"n": arg, "q": "x"}).to_string(),
                    kind: ToolKind::Function,
                });
                results.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult {
                        call_id: id,
                        content: output,
                        is_error,
                    }],
                });
            }
            let mut messages = vec![Message {
                role: Role::Assistant,
                parts: assistant,
            }];
            messages.extend(results);
            messages
        });
    let turn = prop_oneof![
        text.prop_map(|t| vec![Message::text(Role::Assistant, t)]),
        (text, text).prop_map(|(thinking, answer)| vec![Message {
            role: Role::Assistant,
            parts: vec![
                Part::Reasoning {
                    id: None,
                    text: thinking,
                    encrypted: None,
                    signature: Some("sig".into())
                },
                Part::Text(answer),
            ],
        }]),
        tool_round,
    ];
    (
        proptest::option::of(text),
        text,
        prop::collection::vec((turn, proptest::option::of(text)), 0..4),
    )
        .prop_map(|(system, first, turns)| {
            let mut messages = Vec::new();
            if let Some(system) = system {
                messages.push(Message::text(Role::System, system));
            }
            messages.push(Message::text(Role::User, first));
            for (turn, user) in turns {
                let ends_with_tools = turn.last().is_some_and(|m| m.role == Role::Tool);
                messages.extend(turn);
                match user {
                    Some(user) => messages.push(Message::text(Role::User, user)),
                    // Two assistant turns in a row would merge into one.
                    None if !ends_with_tools => messages.push(Message::text(Role::User, "go on")),
                    None => {}
                }
            }
            messages
        })
}

proptest! {
    #[test]
    fn upstream_encoding_round_trips(messages in conversation()) {
        let mut req = ChatRequest::new("m", messages.clone());
        req.max_output_tokens = Some(256);
        let body = encode_request(&req, "m");
        let back = decode_request(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(back.messages, messages);
    }
}
