//! OpenAI Chat Completions ↔ canonical model, both as the client API and as the upstream API.
//!
//! The upstream side speaks the common denominator of OpenAI-compatible servers (OpenAI, Cerebras, vLLM,
//! SGLang, llama.cpp server, Ollama): `developer` becomes `system`, reasoning is never forwarded, custom
//! (free-text) tools become functions with one string parameter `input`, and usage is always requested.

mod wire;

use serde_json::{Map, Value, json};
use tandem_protocol::{
    ChatRequest, ChatResponse, ErrorKind, FinishReason, Message, Part, ReasoningEffort, Role,
    StreamEvent, Tool, ToolChoice, ToolKind, Usage,
};

use crate::{EncodeContext, Error, Result, StreamDecoder, StreamEncoder, json, sse, total_tokens};

/// JSON schema of the single-string function that stands in for a custom tool on chat-only upstreams.
pub fn custom_tool_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The raw tool input."}},
        "required": ["input"],
        "additionalProperties": false
    })
}

/// Wrap free-text input of a custom tool call as the JSON arguments of its stand-in function.
fn wrap_custom_input(input: &str) -> String {
    json!({ "input": input }).to_string()
}

/// Decode a client's `POST /v1/chat/completions` body.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest> {
    let wire: wire::Request = json::from_slice(body)?;
    wire.into_canonical()
}

/// Encode a canonical request as the body for an OpenAI-compatible upstream.
pub fn encode_request(req: &ChatRequest, upstream_model: &str) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len());
    for message in &req.messages {
        encode_message(message, &mut messages);
    }
    let mut body = Map::new();
    body.insert("model".into(), Value::String(upstream_model.to_owned()));
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools = req.tools.iter().map(encode_tool).collect();
        body.insert("tools".into(), Value::Array(tools));
        body.insert("tool_choice".into(), encode_tool_choice(&req.tool_choice));
        if let Some(parallel) = req.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    }
    if let Some(max) = req.max_output_tokens {
        body.insert("max_tokens".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        body.insert("stop".into(), json!(req.stop));
    }
    if let Some(effort) = req.reasoning_effort {
        body.insert("reasoning_effort".into(), json!(effort.as_str()));
    }
    if let Some(user) = &req.user {
        body.insert("user".into(), json!(user));
    }
    for (key, value) in &req.openai_extra {
        body.insert(key.clone(), value.clone());
    }
    if req.stream {
        body.insert("stream".into(), Value::Bool(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

fn encode_message(message: &Message, out: &mut Vec<Value>) {
    match message.role {
        Role::System | Role::Developer => {
            out.push(json!({"role": "system", "content": message.joined_text()}));
        }
        Role::User => out.push(json!({"role": "user", "content": encode_user_content(message)})),
        Role::Assistant => {
            let text = message.joined_text();
            let calls: Vec<Value> = message
                .parts
                .iter()
                .filter_map(|part| match part {
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                        kind,
                    } => {
                        let arguments = match kind {
                            ToolKind::Function => arguments.clone(),
                            ToolKind::Custom { .. } => wrap_custom_input(arguments),
                        };
                        Some(json!({"id": id, "type": "function",
                            "function": {"name": name, "arguments": arguments}}))
                    }
                    _ => None,
                })
                .collect();
            let mut msg = Map::new();
            msg.insert("role".into(), json!("assistant"));
            msg.insert(
                "content".into(),
                if text.is_empty() && !calls.is_empty() {
                    Value::Null
                } else {
                    Value::String(text)
                },
            );
            if !calls.is_empty() {
                msg.insert("tool_calls".into(), Value::Array(calls));
            }
            out.push(Value::Object(msg));
        }
        Role::Tool => {
            for part in &message.parts {
                if let Part::ToolResult {
                    call_id, content, ..
                } = part
                {
                    out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
                }
            }
        }
    }
}

fn encode_user_content(message: &Message) -> Value {
    let has_image = message
        .parts
        .iter()
        .any(|p| matches!(p, Part::Image { .. }));
    if !has_image {
        return Value::String(message.joined_text());
    }
    let parts = message
        .parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(json!({"type": "text", "text": text})),
            Part::Image { url } => Some(json!({"type": "image_url", "image_url": {"url": url}})),
            _ => None,
        })
        .collect();
    Value::Array(parts)
}

fn encode_tool(tool: &Tool) -> Value {
    let parameters = match &tool.kind {
        ToolKind::Function => tool
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        ToolKind::Custom { .. } => custom_tool_schema(),
    };
    let mut function = Map::new();
    function.insert("name".into(), json!(tool.name));
    if let Some(description) = &tool.description {
        function.insert("description".into(), json!(description));
    }
    function.insert("parameters".into(), parameters);
    if let (ToolKind::Function, Some(strict)) = (&tool.kind, tool.strict) {
        function.insert("strict".into(), json!(strict));
    }
    json!({"type": "function", "function": Value::Object(function)})
}

fn encode_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

/// Decode a non-stream answer from an OpenAI-compatible upstream.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse> {
    let wire: wire::Response = json::upstream_from_slice(body)?;
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(Error::Upstream("answer has no choices".to_owned()));
    };
    let mut parts = Vec::new();
    if let Some(reasoning) = choice.message.reasoning_text() {
        parts.push(Part::Reasoning {
            id: None,
            text: reasoning,
            encrypted: None,
            signature: None,
        });
    }
    if let Some(text) = choice.message.content.filter(|t| !t.is_empty()) {
        parts.push(Part::Text(text));
    }
    for call in choice.message.tool_calls.unwrap_or_default() {
        parts.push(Part::ToolCall {
            id: call.id.unwrap_or_default(),
            name: call.function.name.unwrap_or_default(),
            arguments: call.function.arguments.unwrap_or_default(),
            kind: ToolKind::Function,
        });
    }
    Ok(ChatResponse {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        parts,
        finish: parse_finish(choice.finish_reason.as_deref()),
        usage: wire.usage.map(wire::Usage::canonical).unwrap_or_default(),
    })
}

fn parse_finish(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn finish_str(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": total_tokens(usage),
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    })
}

/// Encode a canonical answer as a client's non-stream `chat.completion` body.
pub fn encode_response(resp: &ChatResponse, ctx: &EncodeContext) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in &resp.parts {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::Reasoning { text: r, .. } => reasoning.push_str(r),
            Part::ToolCall {
                id,
                name,
                arguments,
                ..
            } => calls.push(json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}})),
            Part::Image { .. } | Part::ToolResult { .. } => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    message.insert("refusal".into(), Value::Null);
    json!({
        "id": format!("chatcmpl-{}", ctx.id),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.request.model,
        "choices": [{"index": 0, "message": Value::Object(message),
            "logprobs": null, "finish_reason": finish_str(&resp.finish)}],
        "usage": usage_json(&resp.usage),
    })
}

/// The OpenAI error body, shared by Chat Completions and Responses.
pub fn error_body(kind: ErrorKind, message: &str) -> Value {
    let (kind_str, code) = match kind {
        ErrorKind::BadRequest => ("invalid_request_error", Value::Null),
        ErrorKind::Unauthorized => ("invalid_request_error", json!("invalid_api_key")),
        ErrorKind::NotFound => ("invalid_request_error", json!("model_not_found")),
        ErrorKind::PayloadTooLarge => ("invalid_request_error", json!("request_too_large")),
        ErrorKind::Denied => ("invalid_request_error", json!("policy_denied")),
        ErrorKind::QuotaExceeded => ("insufficient_quota", json!("insufficient_quota")),
        ErrorKind::Upstream | ErrorKind::Unavailable => ("server_error", json!("upstream_error")),
        ErrorKind::UpstreamTimeout => ("server_error", json!("upstream_timeout")),
        ErrorKind::Internal => ("server_error", json!("internal_error")),
    };
    json!({"error": {"message": message, "type": kind_str, "param": null, "code": code}})
}

/// Decodes an OpenAI-compatible upstream's `chat.completion.chunk` stream.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    finished: bool,
    usage_seen: bool,
    done: bool,
    /// Tool call indexes already announced with `ToolCallStart`.
    started_calls: Vec<u32>,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Decoder::default()
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: &sse::Event) -> Result<Vec<StreamEvent>> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let chunk: wire::Chunk = json::upstream_from_slice(data.as_bytes())?;
        if let Some(error) = chunk.error {
            return Err(Error::Upstream(format!("upstream stream error: {error}")));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id.clone().unwrap_or_default(),
                model: chunk.model.clone().unwrap_or_default(),
            });
        }
        for choice in chunk.choices.into_iter().flatten() {
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(r) = delta.reasoning_text().filter(|r| !r.is_empty()) {
                    out.push(StreamEvent::ReasoningDelta(r));
                }
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(text));
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    let index = call.index.unwrap_or(0);
                    if !self.started_calls.contains(&index) {
                        self.started_calls.push(index);
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: call.id.unwrap_or_default(),
                            name: call.function.name.clone().unwrap_or_default(),
                        });
                    }
                    if let Some(args) = call.function.arguments.filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolCallDelta {
                            index,
                            arguments: args,
                        });
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                out.push(StreamEvent::Finish(parse_finish(Some(&reason))));
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage_seen = true;
            out.push(StreamEvent::Usage(usage.canonical()));
        }
        Ok(out)
    }

    fn is_done(&self) -> bool {
        self.done || (self.finished && self.usage_seen)
    }
}

/// Encodes canonical events as a client's `chat.completion.chunk` stream.
#[derive(Debug)]
pub struct Encoder {
    /// `{"id":…,"object":…,"created":…,"model":…,"choices":` — the prefix every chunk shares.
    prefix: String,
    include_usage: bool,
    started: bool,
}

impl Encoder {
    /// An encoder for one exchange.
    pub fn new(ctx: &EncodeContext) -> Self {
        let head = json!({
            "id": format!("chatcmpl-{}", ctx.id),
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.request.model,
        })
        .to_string();
        // `head` ends with `}`; reopen it so each chunk only appends its own fields.
        let prefix = format!("{},", head.trim_end_matches('}'));
        Encoder {
            prefix,
            include_usage: ctx.request.stream_usage,
            started: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        let choice =
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        let data = format!("{}\"choices\":{}}}", self.prefix, choice);
        sse::frame(None, &data)
    }

    /// The hot path: one text or reasoning delta, written straight into `out` without building a JSON tree.
    fn delta_chunk(&self, out: &mut String, field: &str, text: &str) {
        out.push_str("data: ");
        out.push_str(&self.prefix);
        out.push_str("\"choices\":[{\"index\":0,\"delta\":{\"");
        out.push_str(field);
        out.push_str("\":");
        match serde_json::to_string(text) {
            Ok(quoted) => out.push_str(&quoted),
            Err(_) => out.push_str("\"\""),
        }
        out.push_str("},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }

    fn start(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            out.push_str(&self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent) -> String {
        let mut out = String::new();
        self.start(&mut out);
        match event {
            StreamEvent::Start { .. } | StreamEvent::ReasoningSignature(_) => {}
            StreamEvent::TextDelta(text) => self.delta_chunk(&mut out, "content", text),
            StreamEvent::ReasoningDelta(text) => {
                self.delta_chunk(&mut out, "reasoning_content", text);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let delta = json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]});
                out.push_str(&self.chunk(delta, None));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                let delta =
                    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]});
                out.push_str(&self.chunk(delta, None));
            }
            StreamEvent::Finish(reason) => {
                out.push_str(&self.chunk(json!({}), Some(finish_str(reason))));
            }
            StreamEvent::Usage(usage) => {
                if self.include_usage {
                    let data = format!(
                        "{}\"choices\":[],\"usage\":{}}}",
                        self.prefix,
                        usage_json(usage)
                    );
                    out.push_str(&sse::frame(None, &data));
                }
            }
        }
        out
    }

    fn finish(&mut self) -> String {
        let mut out = String::new();
        self.start(&mut out);
        out.push_str("data: [DONE]\n\n");
        out
    }

    fn fail(&mut self, kind: ErrorKind, message: &str) -> String {
        sse::frame(None, &error_body(kind, message).to_string())
    }
}

/// Map a chat `tool_choice` value.
fn decode_tool_choice(value: Option<Value>) -> Result<ToolChoice> {
    let Some(value) = value else {
        return Ok(ToolChoice::Auto);
    };
    match &value {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(Error::Json {
                path: "tool_choice".into(),
                message: format!("unknown tool_choice `{other}`"),
            }),
        },
        Value::Object(obj) => {
            let name = obj
                .get("function")
                .or_else(|| obj.get("custom"))
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match name {
                Some(name) => Ok(ToolChoice::Named(name.to_owned())),
                None => Err(Error::Json {
                    path: "tool_choice".into(),
                    message: "expected {\"type\":\"function\",\"function\":{\"name\":…}}".into(),
                }),
            }
        }
        _ => Err(Error::Json {
            path: "tool_choice".into(),
            message: "expected a string or an object".into(),
        }),
    }
}

fn parse_effort(effort: Option<&str>) -> Result<Option<ReasoningEffort>> {
    match effort {
        None => Ok(None),
        Some(e) => ReasoningEffort::parse(e)
            .map(Some)
            .ok_or_else(|| Error::Json {
                path: "reasoning_effort".into(),
                message: format!("unknown reasoning effort `{e}`"),
            }),
    }
}

#[cfg(test)]
mod tests;
