//! Non-streamed answers (upstream body → canonical, canonical → client body) and the error body.

use serde_json::{Value, json};
use tandem_protocol::{ChatResponse, ErrorKind, FinishReason, Part, Usage};

use crate::anthropic::request::tool_input;
use crate::anthropic::wire::{OutBlock, ResponseBody, WireUsage};
use crate::{EncodeContext, Error, Result, json};

/// Decode an Anthropic upstream's non-streamed answer.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse> {
    let message = match json::upstream_from_slice(body)? {
        ResponseBody::Message(message) => message,
        ResponseBody::Error { error } => {
            return Err(Error::Upstream(format!(
                "{}: {}",
                error.kind, error.message
            )));
        }
    };
    let mut parts = Vec::new();
    for block in message.content {
        match block {
            OutBlock::Text { text } => parts.push(Part::Text(text)),
            OutBlock::ToolUse { id, name, input } => parts.push(Part::ToolCall {
                id,
                name,
                arguments: compact_input(&input),
                kind: tandem_protocol::ToolKind::Function,
            }),
            OutBlock::Thinking {
                thinking,
                signature,
            } => parts.push(Part::Reasoning {
                id: None,
                text: thinking,
                encrypted: None,
                signature: signature.filter(|s| !s.is_empty()),
            }),
            OutBlock::RedactedThinking { data } => parts.push(Part::Reasoning {
                id: None,
                text: String::new(),
                encrypted: Some(data),
                signature: None,
            }),
            OutBlock::Other => {}
        }
    }
    Ok(ChatResponse {
        id: message.id,
        model: message.model,
        parts,
        finish: finish_reason(message.stop_reason.as_deref()),
        usage: usage(&message.usage),
    })
}

/// Tool input as compact JSON text; a missing input is an empty object.
pub(super) fn compact_input(input: &Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// Map Anthropic's `stop_reason`; `pause_turn` and unknown reasons count as a natural stop.
pub(super) fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Anthropic's `stop_reason` for a canonical finish; a turn that called tools always ends in `tool_use`.
pub(super) fn stop_reason(finish: &FinishReason, called_tools: bool) -> &'static str {
    match finish {
        _ if called_tools => "tool_use",
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// Canonical usage from Anthropic's, whose `input_tokens` leaves out cache reads and writes.
pub(super) fn usage(wire: &WireUsage) -> Usage {
    let cache_read = wire.cache_read_input_tokens.unwrap_or(0);
    let cache_creation = wire.cache_creation_input_tokens.unwrap_or(0);
    Usage {
        // Saturating: the counts are the upstream's, and a wrapped sum would undercount the usage.
        input_tokens: wire
            .input_tokens
            .unwrap_or(0)
            .saturating_add(cache_read)
            .saturating_add(cache_creation),
        output_tokens: wire.output_tokens.unwrap_or(0),
        cached_input_tokens: cache_read,
        reasoning_tokens: 0,
    }
}

/// Anthropic's usage object for canonical usage: cached tokens are reported apart from `input_tokens`.
pub(super) fn wire_usage(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens.saturating_sub(usage.cached_input_tokens),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
    })
}

/// Encode a canonical answer as the non-streamed message body a client expects.
pub fn encode_response(resp: &ChatResponse, ctx: &EncodeContext<'_>) -> Value {
    let mut content = Vec::new();
    let mut called_tools = false;
    for part in &resp.parts {
        match part {
            Part::Text(text) => {
                if !text.is_empty() {
                    content.push(json!({"type": "text", "text": text}));
                }
            }
            Part::ToolCall {
                id,
                name,
                arguments,
                kind,
            } => {
                called_tools = true;
                content.push(json!({
                    "type": "tool_use",
                    "id": id,
                    "name": name,
                    "input": tool_input(arguments, kind),
                }));
            }
            Part::Reasoning {
                text, signature, ..
            } => {
                // Reasoning without readable text (encrypted only) has nothing to show.
                if !text.is_empty() {
                    content.push(json!({
                        "type": "thinking",
                        "thinking": text,
                        "signature": signature.as_deref().unwrap_or(""),
                    }));
                }
            }
            Part::Image { .. } | Part::ToolResult { .. } => {}
        }
    }
    json!({
        "id": format!("msg_{}", ctx.id),
        "type": "message",
        "role": "assistant",
        "model": ctx.request.model,
        "content": content,
        "stop_reason": stop_reason(&resp.finish, called_tools),
        "stop_sequence": null,
        "usage": wire_usage(&resp.usage),
    })
}

/// Anthropic's error `type` for an error category.
pub(super) fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest => "invalid_request_error",
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::Denied => "permission_error",
        ErrorKind::QuotaExceeded => "rate_limit_error",
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::Upstream | ErrorKind::UpstreamTimeout | ErrorKind::Internal => "api_error",
    }
}

/// The error body an Anthropic client expects: `{"type":"error","error":{"type":...,"message":...}}`.
pub fn error_body(kind: ErrorKind, message: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type(kind), "message": message},
    })
}
