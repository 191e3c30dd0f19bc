//! OpenAI Responses API ↔ canonical model, client side: what Codex CLI and the OpenAI SDKs send to
//! `POST /v1/responses`, and the answer (a `response` object or its SSE stream) they expect back.
//!
//! Tandem is stateless, so a request must carry the whole conversation: `previous_response_id`,
//! `conversation`, `background` and stored `prompt` templates are refused (Codex never sends them).
//!
//! Tools:
//! - `function` and `custom` (free text, optionally grammar-constrained, e.g. Codex's `apply_patch`) tools
//!   are kept. Upstreams that only know functions see a custom tool as a function with one string
//!   parameter `input`; this module unwraps that object again when encoding the call for the client.
//! - A `namespace` tool is flattened: each inner tool becomes `{namespace}__{name}` (the namespace spelt
//!   as the client sent it, trailing underscores included). Answers map the name back: the call item
//!   carries `namespace` and the inner `name`, which is how Codex routes it. A declared name is read as
//!   namespaced when it contains `__`, split at the last `__`.
//! - Hosted tools (`web_search`, `tool_search`, `file_search`, `local_shell`, `image_generation`,
//!   `code_interpreter`, `mcp`, ...) are dropped without notice: Tandem does not run them, and Codex works
//!   without them.
//!
//! Reasoning items are replayed to the model as [`Part::Reasoning`]; their `encrypted_content` is kept
//! as opaque bytes that only the upstream which produced them can use. Streamed answers emit
//! `encrypted_content` only when the upstream sent a reasoning signature.

mod wire;

use serde_json::{Map, Value, json};
use tandem_protocol::{
    ChatRequest, ChatResponse, ErrorKind, FinishReason, Part, StreamEvent, ToolChoice, ToolKind,
    Usage,
};

use crate::{EncodeContext, Result, StreamEncoder, json, openai_chat, sse, total_tokens};

/// Joins a namespace and an inner tool name into the flat name upstreams see.
const NAMESPACE_SEPARATOR: &str = "__";

/// The flat name of tool `name` in `namespace`.
fn flat_name(namespace: &str, name: &str) -> String {
    format!("{namespace}{NAMESPACE_SEPARATOR}{name}")
}

/// Decode a client's `POST /v1/responses` body.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest> {
    let wire: wire::Request = json::from_slice(body)?;
    wire.into_canonical()
}

/// The OpenAI error body `{"error": {message, type, param, code}}`, the same as Chat Completions uses.
pub fn error_body(kind: ErrorKind, message: &str) -> Value {
    openai_chat::error_body(kind, message)
}

/// Encode a canonical answer as a non-stream `response` object.
pub fn encode_response(resp: &ChatResponse, ctx: &EncodeContext) -> Value {
    let shape = Shape::new(ctx);
    let mut items: Vec<Item> = Vec::new();
    for part in &resp.parts {
        let index = items.len();
        match part {
            Part::Text(text) => match items.last_mut() {
                Some(Item::Message { text: open, .. }) => open.push_str(text),
                _ => items.push(Item::Message {
                    id: shape.item_id("msg", index),
                    text: text.clone(),
                    done: true,
                }),
            },
            Part::Reasoning {
                text,
                encrypted,
                signature,
                ..
            } => items.push(Item::Reasoning {
                id: shape.item_id("rs", index),
                text: text.clone(),
                encrypted: encrypted.clone().or_else(|| signature.clone()),
                done: true,
            }),
            Part::ToolCall {
                id,
                name,
                arguments,
                kind,
            } => {
                let custom = matches!(kind, ToolKind::Custom { .. }) || shape.is_custom(name);
                items.push(Item::Call {
                    id: shape.item_id(if custom { "ctc" } else { "fc" }, index),
                    call_id: id.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                    custom,
                    done: true,
                });
            }
            Part::Image { .. } | Part::ToolResult { .. } => {}
        }
    }
    let output = items.iter().map(|item| shape.item_json(item)).collect();
    shape.response(
        &Outcome::Finished(resp.finish.clone()),
        output,
        Some(&resp.usage),
    )
}

/// What a client needs to know about the exchange to shape items and the `response` object.
#[derive(Debug)]
struct Shape {
    response_id: String,
    /// Tandem's exchange id, used to derive item ids.
    id: String,
    created: u64,
    model: String,
    tool_choice: Value,
    parallel_tool_calls: bool,
    /// Declared tools by canonical name, and whether each is a custom (free-text) tool.
    /// Declared tools: flat name, whether custom, client namespace.
    tools: Vec<(String, bool, Option<String>)>,
}

/// How the answer ended.
#[derive(Debug)]
enum Outcome {
    InProgress,
    Finished(FinishReason),
    Failed { code: &'static str, message: String },
}

/// One output item being built.
#[derive(Debug)]
enum Item {
    Message {
        id: String,
        text: String,
        done: bool,
    },
    Reasoning {
        id: String,
        text: String,
        encrypted: Option<String>,
        done: bool,
    },
    Call {
        id: String,
        call_id: String,
        /// The canonical (possibly flattened) tool name.
        name: String,
        /// Argument text as the upstream sent it.
        arguments: String,
        custom: bool,
        done: bool,
    },
}

impl Item {
    fn done(&self) -> bool {
        match self {
            Item::Message { done, .. } | Item::Reasoning { done, .. } | Item::Call { done, .. } => {
                *done
            }
        }
    }

    fn set_done(&mut self) {
        match self {
            Item::Message { done, .. } | Item::Reasoning { done, .. } | Item::Call { done, .. } => {
                *done = true;
            }
        }
    }

    fn id(&self) -> &str {
        match self {
            Item::Message { id, .. } | Item::Reasoning { id, .. } | Item::Call { id, .. } => id,
        }
    }
}

impl Shape {
    fn new(ctx: &EncodeContext) -> Self {
        let request: &ChatRequest = ctx.request;
        Shape {
            response_id: format!("resp_{}", ctx.id),
            id: ctx.id.to_owned(),
            created: ctx.created,
            model: request.model.clone(),
            tool_choice: match &request.tool_choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Named(name) => {
                    let kind = match request.tool(name).map(|t| &t.kind) {
                        Some(ToolKind::Custom { .. }) => "custom",
                        _ => "function",
                    };
                    json!({"type": kind, "name": name})
                }
            },
            parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
            tools: request
                .tools
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        matches!(t.kind, ToolKind::Custom { .. }),
                        t.namespace.clone(),
                    )
                })
                .collect(),
        }
    }

    fn item_id(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_{}_{index}", self.id)
    }

    fn is_custom(&self, name: &str) -> bool {
        self.tools.iter().any(|(n, custom, _)| n == name && *custom)
    }

    /// The client's `(namespace, name)` for a canonical tool name.
    fn client_name<'a>(&'a self, name: &'a str) -> (Option<&'a str>, &'a str) {
        let namespace = self
            .tools
            .iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, _, ns)| ns.as_deref());
        match namespace {
            Some(ns) => {
                let inner = name
                    .strip_prefix(ns)
                    .and_then(|rest| rest.strip_prefix(NAMESPACE_SEPARATOR))
                    .unwrap_or(name);
                (Some(ns), inner)
            }
            None => (None, name),
        }
    }

    fn item_json(&self, item: &Item) -> Value {
        match item {
            Item::Message { id, text, done } => {
                let content = if *done {
                    json!([{"type": "output_text", "text": text, "annotations": []}])
                } else {
                    json!([])
                };
                json!({"type": "message", "id": id, "role": "assistant",
                    "status": status_str(*done), "content": content})
            }
            Item::Reasoning {
                id,
                text,
                encrypted,
                done,
            } => {
                let summary = if *done && !text.is_empty() {
                    json!([{"type": "summary_text", "text": text}])
                } else {
                    json!([])
                };
                let mut item = json!({"type": "reasoning", "id": id, "summary": summary});
                if let (true, Some(encrypted), Value::Object(fields)) =
                    (*done, encrypted, &mut item)
                {
                    fields.insert("encrypted_content".to_owned(), json!(encrypted));
                }
                item
            }
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                custom,
                done,
            } => {
                let (namespace, name) = self.client_name(name);
                let kind = if *custom {
                    "custom_tool_call"
                } else {
                    "function_call"
                };
                let mut fields = Map::new();
                fields.insert("type".to_owned(), json!(kind));
                fields.insert("id".to_owned(), json!(id));
                fields.insert("call_id".to_owned(), json!(call_id));
                if let Some(namespace) = namespace {
                    fields.insert("namespace".to_owned(), json!(namespace));
                }
                fields.insert("name".to_owned(), json!(name));
                fields.insert("status".to_owned(), json!(status_str(*done)));
                if *custom {
                    let input = if *done {
                        custom_input(arguments)
                    } else {
                        String::new()
                    };
                    fields.insert("input".to_owned(), json!(input));
                } else {
                    let arguments = if *done {
                        function_arguments(arguments)
                    } else {
                        ""
                    };
                    fields.insert("arguments".to_owned(), json!(arguments));
                }
                Value::Object(fields)
            }
        }
    }

    /// The `response` object in the given state.
    fn response(&self, outcome: &Outcome, output: Vec<Value>, usage: Option<&Usage>) -> Value {
        let (status, incomplete, error) = match outcome {
            Outcome::InProgress => ("in_progress", Value::Null, Value::Null),
            Outcome::Finished(FinishReason::Length) => (
                "incomplete",
                json!({"reason": "max_output_tokens"}),
                Value::Null,
            ),
            Outcome::Finished(FinishReason::ContentFilter) => (
                "incomplete",
                json!({"reason": "content_filter"}),
                Value::Null,
            ),
            Outcome::Finished(FinishReason::Stop | FinishReason::ToolCalls) => {
                ("completed", Value::Null, Value::Null)
            }
            Outcome::Failed { code, message } => (
                "failed",
                Value::Null,
                json!({"code": code, "message": message}),
            ),
        };
        json!({
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": error,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": self.parallel_tool_calls,
            "tool_choice": self.tool_choice,
            "usage": usage.map_or(Value::Null, usage_json),
        })
    }
}

fn status_str(done: bool) -> &'static str {
    if done { "completed" } else { "in_progress" }
}

/// Function arguments as the client expects them: a JSON text, `{}` when the upstream sent nothing.
fn function_arguments(arguments: &str) -> &str {
    if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    }
}

/// The free-text input of a custom tool call.
///
/// Upstreams see a custom tool as a function taking `{"input": "<text>"}`; when the arguments have that
/// shape the text is unwrapped, otherwise they are passed on as the model wrote them.
fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Map<String, Value>>(arguments) {
        Ok(mut object) => match object.remove("input") {
            Some(Value::String(input)) => input,
            _ => arguments.to_owned(),
        },
        Err(_) => arguments.to_owned(),
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": total_tokens(usage),
    })
}

/// The `error.code` of a `response.failed` event.
///
/// Codex treats `insufficient_quota` (and `context_length_exceeded`, which Tandem never invents) as final
/// and retries every other code.
fn failure_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::QuotaExceeded => "insufficient_quota",
        ErrorKind::BadRequest
        | ErrorKind::Unauthorized
        | ErrorKind::NotFound
        | ErrorKind::PayloadTooLarge
        | ErrorKind::Denied => "invalid_prompt",
        ErrorKind::Upstream
        | ErrorKind::UpstreamTimeout
        | ErrorKind::Unavailable
        | ErrorKind::Internal => "server_error",
    }
}

/// Encodes canonical stream events as the Responses SSE stream.
///
/// Text and reasoning each open an output item that closes when anything else starts; a reasoning item
/// also closes at its signature. Tool call items stay open until the end, because their arguments may
/// arrive interleaved. Every event carries a `sequence_number`.
#[derive(Debug)]
pub struct Encoder {
    shape: Shape,
    seq: u64,
    started: bool,
    /// Set once a terminal event went out; later calls emit nothing.
    closed: bool,
    items: Vec<Item>,
    /// The open message or reasoning item, by output index.
    open: Option<usize>,
    /// Stream tool call index → output index.
    calls: Vec<(u32, usize)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Encoder {
    /// An encoder for one exchange.
    pub fn new(ctx: &EncodeContext) -> Self {
        Encoder {
            shape: Shape::new(ctx),
            seq: 0,
            started: false,
            closed: false,
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    fn emit(&mut self, out: &mut String, kind: &str, fields: Value) {
        let mut event = Map::new();
        event.insert("type".to_owned(), json!(kind));
        event.insert("sequence_number".to_owned(), json!(self.seq));
        if let Value::Object(fields) = fields {
            event.extend(fields);
        }
        self.seq += 1;
        out.push_str(&sse::frame(Some(kind), &Value::Object(event).to_string()));
    }

    fn start(&mut self, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.shape.response(&Outcome::InProgress, Vec::new(), None);
        self.emit(out, "response.created", json!({"response": response}));
        let response = self.shape.response(&Outcome::InProgress, Vec::new(), None);
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    /// Open a new output item and announce it.
    fn add_item(&mut self, out: &mut String, item: Item) -> usize {
        let index = self.items.len();
        let json = self.shape.item_json(&item);
        self.items.push(item);
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": json}),
        );
        index
    }

    fn text_delta(&mut self, out: &mut String, delta: &str) {
        let index = match self.open {
            Some(index) if matches!(self.items[index], Item::Message { .. }) => index,
            _ => {
                self.close_open(out);
                let id = self.shape.item_id("msg", self.items.len());
                let index = self.add_item(
                    out,
                    Item::Message {
                        id: id.clone(),
                        text: String::new(),
                        done: false,
                    },
                );
                self.emit(
                    out,
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []}}),
                );
                self.open = Some(index);
                index
            }
        };
        if let Item::Message { id, text, .. } = &mut self.items[index] {
            text.push_str(delta);
            let id = id.clone();
            self.emit(
                out,
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                    "delta": delta, "logprobs": []}),
            );
        }
    }

    /// The open reasoning item that can still take text or a signature, opening one if needed.
    fn reasoning_item(&mut self, out: &mut String) -> usize {
        if let Some(index) = self.open
            && matches!(self.items[index], Item::Reasoning { .. })
        {
            return index;
        }
        self.close_open(out);
        let id = self.shape.item_id("rs", self.items.len());
        let index = self.add_item(
            out,
            Item::Reasoning {
                id,
                text: String::new(),
                encrypted: None,
                done: false,
            },
        );
        self.open = Some(index);
        index
    }

    fn reasoning_delta(&mut self, out: &mut String, delta: &str) {
        let index = self.reasoning_item(out);
        let Item::Reasoning { id, text, .. } = &mut self.items[index] else {
            return;
        };
        let first = text.is_empty();
        text.push_str(delta);
        let id = id.clone();
        if first {
            self.emit(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
            );
        }
        self.emit(
            out,
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
        );
    }

    fn reasoning_signature(&mut self, out: &mut String, signature: &str) {
        let index = self.reasoning_item(out);
        if let Item::Reasoning { encrypted, .. } = &mut self.items[index] {
            *encrypted = Some(signature.to_owned());
        }
        self.close_open(out);
    }

    fn tool_call_start(&mut self, out: &mut String, index: u32, call_id: &str, name: &str) {
        self.close_open(out);
        let custom = self.shape.is_custom(name);
        let id = self
            .shape
            .item_id(if custom { "ctc" } else { "fc" }, self.items.len());
        let output_index = self.add_item(
            out,
            Item::Call {
                id,
                call_id: call_id.to_owned(),
                name: name.to_owned(),
                arguments: String::new(),
                custom,
                done: false,
            },
        );
        self.calls.push((index, output_index));
    }

    fn tool_call_delta(&mut self, out: &mut String, index: u32, delta: &str) {
        let Some(&(_, output_index)) = self.calls.iter().rev().find(|(i, _)| *i == index) else {
            return;
        };
        let Item::Call {
            id,
            arguments,
            custom,
            done: false,
            ..
        } = &mut self.items[output_index]
        else {
            return;
        };
        arguments.push_str(delta);
        // Custom tool input is only known once the wrapping object is complete, so it goes out at the end.
        if !*custom {
            let id = id.clone();
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": output_index, "delta": delta}),
            );
        }
    }

    /// Close the open message or reasoning item, if any.
    fn close_open(&mut self, out: &mut String) {
        if let Some(index) = self.open.take() {
            self.close(out, index);
        }
    }

    /// Emit the closing events of item `index` and mark it done.
    fn close(&mut self, out: &mut String, index: usize) {
        let Some(item) = self.items.get_mut(index).filter(|item| !item.done()) else {
            return;
        };
        item.set_done();
        let id = item.id().to_owned();
        match &self.items[index] {
            Item::Message { text, .. } => {
                let text = text.clone();
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                        "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                        "part": {"type": "output_text", "text": text, "annotations": []}}),
                );
            }
            Item::Reasoning { text, .. } => {
                if !text.is_empty() {
                    let text = text.clone();
                    self.emit(
                        out,
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                            "text": text}),
                    );
                    self.emit(
                        out,
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                            "part": {"type": "summary_text", "text": text}}),
                    );
                }
            }
            Item::Call {
                arguments, custom, ..
            } => {
                if *custom {
                    let input = custom_input(arguments);
                    self.emit(
                        out,
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": id, "output_index": index, "delta": input}),
                    );
                    self.emit(
                        out,
                        "response.custom_tool_call_input.done",
                        json!({"item_id": id, "output_index": index, "input": input}),
                    );
                } else {
                    let arguments = function_arguments(arguments).to_owned();
                    self.emit(
                        out,
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "arguments": arguments}),
                    );
                }
            }
        }
        let item = self.shape.item_json(&self.items[index]);
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
    }

    /// The output items that are complete, in order.
    fn done_output(&self) -> Vec<Value> {
        self.items
            .iter()
            .filter(|item| item.done())
            .map(|item| self.shape.item_json(item))
            .collect()
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent) -> String {
        let mut out = String::new();
        if self.closed {
            return out;
        }
        self.start(&mut out);
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta(delta) => {
                if !delta.is_empty() {
                    self.text_delta(&mut out, delta);
                }
            }
            StreamEvent::ReasoningDelta(delta) => {
                if !delta.is_empty() {
                    self.reasoning_delta(&mut out, delta);
                }
            }
            StreamEvent::ReasoningSignature(signature) => {
                self.reasoning_signature(&mut out, signature);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.tool_call_start(&mut out, *index, id, name);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.tool_call_delta(&mut out, *index, arguments);
            }
            StreamEvent::Finish(reason) => self.finish = Some(reason.clone()),
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
        out
    }

    fn finish(&mut self) -> String {
        let mut out = String::new();
        if self.closed {
            return out;
        }
        self.start(&mut out);
        self.close_open(&mut out);
        for index in 0..self.items.len() {
            self.close(&mut out, index);
        }
        self.closed = true;
        let outcome = Outcome::Finished(self.finish.clone().unwrap_or_default());
        let kind = match outcome {
            Outcome::Finished(FinishReason::Length | FinishReason::ContentFilter) => {
                "response.incomplete"
            }
            _ => "response.completed",
        };
        let response = self
            .shape
            .response(&outcome, self.done_output(), self.usage.as_ref());
        self.emit(&mut out, kind, json!({"response": response}));
        out
    }

    fn fail(&mut self, kind: ErrorKind, message: &str) -> String {
        let mut out = String::new();
        if self.closed {
            return out;
        }
        self.start(&mut out);
        self.closed = true;
        let outcome = Outcome::Failed {
            code: failure_code(kind),
            message: message.to_owned(),
        };
        let response = self
            .shape
            .response(&outcome, self.done_output(), self.usage.as_ref());
        self.emit(&mut out, "response.failed", json!({"response": response}));
        out
    }
}

#[cfg(test)]
mod tests;
