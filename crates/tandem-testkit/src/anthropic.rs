//! The Anthropic messages wire format: request reading, non-streaming bodies and stream events.

use bytes::{BufMut as _, BytesMut};
use serde_json::{Value, json};

use crate::script::{Answer, Conversation, Finish, Text, ToolCall};
use crate::server::Exchange;
use crate::stream::Wire;

/// Reads the parts of a messages request that the testkit uses.
pub(crate) fn exchange(body: &Value) -> Result<Exchange, String> {
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return Err("model: Field required".to_owned());
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err("messages: Field required".to_owned());
    };
    let Some(max_tokens) = body.get("max_tokens").and_then(Value::as_u64) else {
        return Err("max_tokens: Field required".to_owned());
    };
    Ok(Exchange {
        model: model.to_owned(),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: false,
        max_tokens: Some(max_tokens),
        conversation: conversation(body.get("system"), messages),
    })
}

fn conversation(system: Option<&Value>, messages: &[Value]) -> Conversation {
    let mut prompt_chars = text_parts(system)
        .iter()
        .map(|part| part.chars().count())
        .sum::<usize>();
    for message in messages {
        let content = message.get("content");
        prompt_chars += text_parts(content)
            .iter()
            .map(|part| part.chars().count())
            .sum::<usize>();
        for block in blocks(message).iter().filter(|block| is_tool_result(block)) {
            prompt_chars += text_parts(block.get("content"))
                .iter()
                .map(|part| part.chars().count())
                .sum::<usize>();
        }
    }
    let tool_result = messages
        .last()
        .filter(|message| role(message) == "user")
        .and_then(|message| blocks(message).iter().find(|block| is_tool_result(block)))
        .map(|block| text_parts(block.get("content")).join("\n"));
    let last_user_text = messages
        .iter()
        .rev()
        .find(|message| role(message) == "user")
        .map(|message| text_parts(message.get("content")).join("\n"))
        .unwrap_or_default();
    Conversation {
        tool_result,
        last_user_text,
        prompt_chars,
        assistant_turns: messages.iter().filter(|m| role(m) == "assistant").count(),
    }
}

fn blocks(message: &Value) -> &[Value] {
    message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn is_tool_result(block: &Value) -> bool {
    block.get("type").and_then(Value::as_str) == Some("tool_result")
}

fn role(message: &Value) -> &str {
    message
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The texts of a content value: a string, or the `text` blocks of an array.
fn text_parts(content: Option<&Value>) -> Vec<&str> {
    match content {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::ToolCalls => "tool_use",
        Finish::Length => "max_tokens",
    }
}

fn tool_id(call: &ToolCall) -> String {
    format!("toolu_{}", call.number)
}

/// The non-streaming message body; fails when tool arguments are not JSON.
pub(crate) fn message(id: u64, model: &str, answer: &Answer) -> Result<Value, String> {
    let mut content = Vec::new();
    if let Some(text) = &answer.text {
        content.push(json!({"type": "text", "text": text.full()}));
    }
    for call in &answer.tools {
        let input: Value = serde_json::from_str(&call.args)
            .map_err(|error| format!("tool arguments of `{}` are not JSON: {error}", call.name))?;
        content.push(
            json!({"type": "tool_use", "id": tool_id(call), "name": call.name, "input": input}),
        );
    }
    Ok(json!({
        "id": format!("msg_tk{id}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(answer.finish),
        "stop_sequence": null,
        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens()},
    }))
}

/// The error body `{"type": "error", "error": {"type", "message"}}`.
pub(crate) fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Encodes message stream events.
pub(crate) struct EventWire {
    id: u64,
    model: String,
    /// Index of the content block being streamed.
    block: usize,
    /// Everything of a text delta event before the token.
    token_head: Vec<u8>,
}

impl EventWire {
    pub(crate) fn new(id: u64, model: &str) -> Self {
        Self {
            id,
            model: model.to_owned(),
            block: 0,
            token_head: Vec::new(),
        }
    }
}

fn event(name: &str, data: &Value, out: &mut BytesMut) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(data.to_string().as_bytes());
    out.put_slice(b"\n\n");
}

impl Wire for EventWire {
    fn start(&mut self, answer: &Answer, out: &mut BytesMut) {
        let message = json!({"type": "message_start", "message": {
            "id": format!("msg_tk{}", self.id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1},
        }});
        event("message_start", &message, out);
    }

    fn text_start(&mut self, out: &mut BytesMut) {
        let data = json!({"type": "content_block_start", "index": self.block, "content_block": {"type": "text", "text": ""}});
        event("content_block_start", &data, out);
        self.token_head = format!(
            r#"event: content_block_delta
data: {{"type":"content_block_delta","index":{},"delta":{{"type":"text_delta","text":"#,
            self.block
        )
        .into_bytes();
    }

    fn token(&mut self, text: &Text, i: usize, out: &mut BytesMut) {
        out.put_slice(&self.token_head);
        text.write_json_token(i, out);
        out.put_slice(b"}}\n\n");
    }

    fn text_stop(&mut self, out: &mut BytesMut) {
        event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": self.block}),
            out,
        );
        self.block += 1;
    }

    fn tool_start(&mut self, _index: usize, call: &ToolCall, out: &mut BytesMut) {
        let data = json!({"type": "content_block_start", "index": self.block, "content_block": {
            "type": "tool_use", "id": tool_id(call), "name": call.name, "input": {},
        }});
        event("content_block_start", &data, out);
    }

    fn tool_args(&mut self, _index: usize, piece: &str, out: &mut BytesMut) {
        let data = json!({"type": "content_block_delta", "index": self.block, "delta": {
            "type": "input_json_delta", "partial_json": piece,
        }});
        event("content_block_delta", &data, out);
    }

    fn tool_stop(&mut self, _index: usize, out: &mut BytesMut) {
        event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": self.block}),
            out,
        );
        self.block += 1;
    }

    fn finish(&mut self, answer: &Answer, out: &mut BytesMut) {
        let data = json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(answer.finish), "stop_sequence": null},
            "usage": {"output_tokens": answer.completion_tokens()},
        });
        event("message_delta", &data, out);
        event("message_stop", &json!({"type": "message_stop"}), out);
    }

    fn malformed(&mut self, out: &mut BytesMut) {
        out.put_slice(b"event: content_block_delta\ndata: {not json\n\n");
    }
}
