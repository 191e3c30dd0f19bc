//! The OpenAI chat-completions wire format: request reading, non-streaming bodies and stream chunks.

use bytes::{BufMut as _, BytesMut};
use serde_json::{Value, json};

use crate::script::{Answer, Conversation, Finish, Text, ToolCall, write_json_str};
use crate::server::Exchange;
use crate::stream::Wire;

/// Reads the parts of a chat-completions request that the testkit uses.
pub(crate) fn exchange(body: &Value) -> Result<Exchange, String> {
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return Err("`model` is required and must be a string".to_owned());
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err("`messages` is required and must be an array".to_owned());
    };
    let max_tokens = body
        .get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| body.get("max_tokens").and_then(Value::as_u64));
    Ok(Exchange {
        model: model.to_owned(),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        max_tokens,
        conversation: conversation(messages),
    })
}

fn conversation(messages: &[Value]) -> Conversation {
    let text = |message: &Value| text_parts(message.get("content")).join("\n");
    let prompt_chars = messages
        .iter()
        .flat_map(|message| text_parts(message.get("content")))
        .map(|part| part.chars().count())
        .sum();
    let trailing_tools = messages
        .iter()
        .rev()
        .take_while(|message| role(message) == "tool")
        .last();
    let last_user_text = messages
        .iter()
        .rev()
        .find(|message| role(message) == "user")
        .map(text)
        .unwrap_or_default();
    Conversation {
        tool_result: trailing_tools.map(text),
        last_user_text,
        prompt_chars,
        assistant_turns: messages.iter().filter(|m| role(m) == "assistant").count(),
    }
}

fn role(message: &Value) -> &str {
    message
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The texts of a message's `content`: a string, or the `text` parts of an array.
fn text_parts(content: Option<&Value>) -> Vec<&str> {
    match content {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::ToolCalls => "tool_calls",
        Finish::Length => "length",
    }
}

fn usage(answer: &Answer) -> Value {
    let completion = answer.completion_tokens();
    json!({
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    })
}

fn call_id(call: &ToolCall) -> String {
    format!("call_{}", call.number)
}

/// The non-streaming `chat.completion` body.
pub(crate) fn completion(id: u64, created: u64, model: &str, answer: &Answer) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": answer.text.as_ref().map(Text::full),
    });
    if !answer.tools.is_empty() {
        message["tool_calls"] = answer
            .tools
            .iter()
            .map(|call| {
                json!({
                    "id": call_id(call),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.args},
                })
            })
            .collect();
    }
    json!({
        "id": format!("chatcmpl-tk{id}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(answer.finish)}],
        "usage": usage(answer),
    })
}

/// The error body `{"error": {"message", "type", "code"}}`.
pub(crate) fn error(kind: &str, code: &str, message: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "code": code}})
}

/// Encodes `chat.completion.chunk` events.
pub(crate) struct ChunkWire {
    /// `data: {"id":…,"choices":[{"index":0,"delta":` — every chunk starts with it.
    head: Vec<u8>,
    /// The header of the usage chunk, whose `choices` is empty.
    usage_head: Vec<u8>,
    include_usage: bool,
}

impl ChunkWire {
    pub(crate) fn new(id: u64, created: u64, model: &str, include_usage: bool) -> Self {
        let mut model_json = BytesMut::new();
        write_json_str(model, &mut model_json);
        let model_json = String::from_utf8_lossy(&model_json);
        let common = format!(
            r#"data: {{"id":"chatcmpl-tk{id}","object":"chat.completion.chunk","created":{created},"model":{model_json},"#
        );
        Self {
            head: format!(r#"{common}"choices":[{{"index":0,"delta":"#).into_bytes(),
            usage_head: format!(r#"{common}"choices":[],"usage":"#).into_bytes(),
            include_usage,
        }
    }

    /// Writes a chunk with this delta (JSON object text) and finish reason.
    fn chunk(&self, delta: &[u8], finish: Option<Finish>, out: &mut BytesMut) {
        out.put_slice(&self.head);
        out.put_slice(delta);
        match finish {
            Some(finish) => {
                out.put_slice(br#","finish_reason":""#);
                out.put_slice(finish_reason(finish).as_bytes());
                out.put_slice(b"\"}]}\n\n");
            }
            None => out.put_slice(b",\"finish_reason\":null}]}\n\n"),
        }
    }

    fn value_chunk(&self, delta: &Value, out: &mut BytesMut) {
        self.chunk(delta.to_string().as_bytes(), None, out);
    }
}

impl Wire for ChunkWire {
    fn start(&mut self, _answer: &Answer, out: &mut BytesMut) {
        self.chunk(br#"{"role":"assistant","content":""}"#, None, out);
    }

    fn text_start(&mut self, _out: &mut BytesMut) {}

    fn token(&mut self, text: &Text, i: usize, out: &mut BytesMut) {
        out.put_slice(&self.head);
        out.put_slice(br#"{"content":"#);
        text.write_json_token(i, out);
        out.put_slice(b"},\"finish_reason\":null}]}\n\n");
    }

    fn text_stop(&mut self, _out: &mut BytesMut) {}

    fn tool_start(&mut self, index: usize, call: &ToolCall, out: &mut BytesMut) {
        let delta = json!({"tool_calls": [{
            "index": index,
            "id": call_id(call),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }]});
        self.value_chunk(&delta, out);
    }

    fn tool_args(&mut self, index: usize, piece: &str, out: &mut BytesMut) {
        let delta = json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]});
        self.value_chunk(&delta, out);
    }

    fn tool_stop(&mut self, _index: usize, _out: &mut BytesMut) {}

    fn finish(&mut self, answer: &Answer, out: &mut BytesMut) {
        self.chunk(b"{}", Some(answer.finish), out);
        if self.include_usage {
            out.put_slice(&self.usage_head);
            out.put_slice(usage(answer).to_string().as_bytes());
            out.put_slice(b"}\n\n");
        }
        out.put_slice(b"data: [DONE]\n\n");
    }

    fn malformed(&mut self, out: &mut BytesMut) {
        out.put_slice(b"data: {not json\n\n");
    }
}
