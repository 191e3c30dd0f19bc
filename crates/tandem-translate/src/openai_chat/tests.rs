//! Tests for the Chat Completions translation: requests both ways, answers, and streams.

use pretty_assertions::assert_eq;
use serde_json::json;
use tandem_protocol::{
    ChatRequest, ChatResponse, FinishReason, Part, StreamEvent, ToolKind, Usage,
};

use crate::openai_chat::{Decoder, Encoder, decode_request, decode_response, encode_request};
use crate::sse::Parser;
use crate::{EncodeContext, StreamDecoder, StreamEncoder};

fn decode(body: serde_json::Value) -> ChatRequest {
    decode_request(body.to_string().as_bytes()).unwrap()
}

#[test]
fn unknown_field_is_named() {
    let err = decode_request(br#"{"model":"m","messages":[],"bogus_field":1}"#).unwrap_err();
    assert!(err.to_string().contains("bogus_field"), "{err}");
}

#[test]
fn wrong_type_names_the_path() {
    let err =
        decode_request(br#"{"model":"m","messages":[{"role":"user","content":5}]}"#).unwrap_err();
    assert!(err.to_string().contains("messages[0]"), "{err}");
}

#[test]
fn malformed_json_is_an_error() {
    assert!(decode_request(b"{\"model\":").is_err());
}

#[test]
fn request_round_trips_through_upstream_encoding() {
    let req = decode(json!({
        "model": "tandem-live",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 64, "seed": 7
    }));
    assert!(req.stream && req.stream_usage);
    let body = encode_request(&req, "upstream-model");
    assert_eq!(
        body,
        json!({
            "model": "upstream-model",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
            "max_tokens": 64,
            "seed": 7,
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[test]
fn custom_tool_calls_are_wrapped_for_chat_upstreams() {
    let mut req = ChatRequest::new("m", vec![]);
    req.messages.push(tandem_protocol::Message {
        role: tandem_protocol::Role::Assistant,
        parts: vec![Part::ToolCall {
            id: "p1".into(),
            name: "apply_patch".into(),
            arguments: "*** Begin Patch\n*** End Patch\n".into(),
            kind: ToolKind::Custom { format: None },
        }],
    });
    let body = encode_request(&req, "m");
    assert_eq!(
        body["messages"][0]["tool_calls"][0]["function"]["arguments"],
        json!("{\"input\":\"*** Begin Patch\\n*** End Patch\\n\"}")
    );
}

#[test]
fn decodes_non_stream_answer() {
    let resp = decode_response(
        json!({"id": "x", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": null, "tool_calls": [{"id": "c", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        resp,
        ChatResponse {
            id: "x".into(),
            model: "m".into(),
            parts: vec![Part::ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "{}".into(),
                kind: ToolKind::Function
            }],
            finish: FinishReason::ToolCalls,
            usage: Usage {
                input_tokens: 5,
                output_tokens: 3,
                ..Usage::default()
            },
        }
    );
}

#[test]
fn stream_decoder_reassembles_tool_calls_and_usage() {
    let transcript = concat!(
        "data: {\"id\":\"u1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"u1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"id\":\"u1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"u1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n",
        "data: {\"id\":\"u1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}}]}\n\n",
        "data: {\"id\":\"u1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"u1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n",
        "data: [DONE]\n\n",
    );
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    parser.feed(transcript.as_bytes(), &mut events).unwrap();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for event in &events {
        out.extend(decoder.decode(event).unwrap());
    }
    assert!(decoder.is_done());
    assert_eq!(
        out,
        vec![
            StreamEvent::Start {
                id: "u1".into(),
                model: "m".into()
            },
            StreamEvent::TextDelta("Hi".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"a\":".into()
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "1}".into()
            },
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::Usage(Usage {
                input_tokens: 9,
                output_tokens: 4,
                ..Usage::default()
            }),
        ]
    );
}

#[test]
fn stream_encoder_emits_usage_only_when_asked() {
    let mut req = ChatRequest::new("tandem-live", vec![]);
    req.stream = true;
    req.stream_usage = true;
    let ctx = EncodeContext {
        request: &req,
        id: "abc",
        created: 1700000000,
    };
    let mut enc = Encoder::new(&ctx);
    let mut out = String::new();
    for event in [
        StreamEvent::Start {
            id: "u".into(),
            model: "m".into(),
        },
        StreamEvent::TextDelta("Hi".into()),
        StreamEvent::Finish(FinishReason::Stop),
        StreamEvent::Usage(Usage {
            input_tokens: 2,
            output_tokens: 1,
            ..Usage::default()
        }),
    ] {
        out.push_str(&enc.encode(&event));
    }
    out.push_str(&enc.finish());
    insta::assert_snapshot!(out, @r#"
    data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"tandem-live","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}

    data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"tandem-live","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}

    data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"tandem-live","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}

    data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"tandem-live","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}

    data: [DONE]
    "#);
}

/// Found by `fuzz/fuzz_targets/translate_stream.rs`: an upstream's usage near `u64::MAX` overflowed
/// `total_tokens` in the client's usage chunk; it saturates.
#[test]
fn total_tokens_saturates_on_huge_usage() {
    let transcript = concat!(
        "data: {\"id\":\"u\",\"choices\":[],\"usage\":{\"prompt_tokens\":18446744073709551615,\"completion_tokens\":1}}\n\n",
        "data: [DONE]\n\n",
    );
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    parser.feed(transcript.as_bytes(), &mut events).unwrap();
    let mut decoder = Decoder::new();
    let mut req = ChatRequest::new("tandem-live", vec![]);
    req.stream_usage = true;
    let ctx = EncodeContext {
        request: &req,
        id: "abc",
        created: 1700000000,
    };
    let mut enc = Encoder::new(&ctx);
    let mut out = String::new();
    for event in &events {
        for event in decoder.decode(event).unwrap() {
            out.push_str(&enc.encode(&event));
        }
    }
    out.push_str(&enc.finish());
    assert!(
        out.contains(&format!(r#""total_tokens":{}"#, u64::MAX)),
        "{out}"
    );
}
