//! Streams: Anthropic upstream SSE → canonical events ([`Decoder`]) and canonical events → client SSE
//! ([`Encoder`]).
//!
//! Invariant: the encoder emits Anthropic's event grammar (`message_start`, then content blocks each opened
//! by `content_block_start` and closed by `content_block_stop`, then `message_delta` and `message_stop`),
//! whatever order the canonical events come in; a failed stream ends with one `error` event instead.

use std::collections::HashMap;

use serde_json::{Value, json};
use tandem_protocol::{ErrorKind, FinishReason, StreamEvent, Usage};

use crate::anthropic::response::{
    compact_input, error_body, finish_reason, stop_reason, usage, wire_usage,
};
use crate::anthropic::wire::{Delta, StartBlock, StreamWire, WireUsage};
use crate::sse::{self, frame};
use crate::{EncodeContext, Error, Result, StreamDecoder, StreamEncoder, json};

/// Decodes an Anthropic upstream's SSE stream into canonical events.
pub struct Decoder {
    /// Index the next tool call gets among this answer's calls.
    next_tool: u32,
    /// Open `tool_use` blocks by content block index: the tool call index and whether input came.
    tools: HashMap<u32, (u32, bool)>,
    /// Usage as reported so far (`message_start`, then cumulative `message_delta`s).
    usage: WireUsage,
    finished: bool,
    done: bool,
}

impl Decoder {
    /// A decoder for one answer.
    pub fn new() -> Self {
        Decoder {
            next_tool: 0,
            tools: HashMap::new(),
            usage: WireUsage::default(),
            finished: false,
            done: false,
        }
    }

    fn merge_usage(&mut self, update: &WireUsage) {
        let usage = &mut self.usage;
        usage.input_tokens = update.input_tokens.or(usage.input_tokens);
        usage.output_tokens = update.output_tokens.or(usage.output_tokens);
        usage.cache_read_input_tokens = update
            .cache_read_input_tokens
            .or(usage.cache_read_input_tokens);
        usage.cache_creation_input_tokens = update
            .cache_creation_input_tokens
            .or(usage.cache_creation_input_tokens);
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: &sse::Event) -> Result<Vec<StreamEvent>> {
        if self.done {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        match json::upstream_from_slice(event.data.as_bytes())? {
            StreamWire::MessageStart { message } => {
                self.merge_usage(&message.usage);
                out.push(StreamEvent::Start {
                    id: message.id,
                    model: message.model,
                });
            }
            StreamWire::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                StartBlock::Text { text } => {
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta(text));
                    }
                }
                StartBlock::Thinking { thinking } => {
                    if !thinking.is_empty() {
                        out.push(StreamEvent::ReasoningDelta(thinking));
                    }
                }
                StartBlock::ToolUse { id, name, input } => {
                    let tool = self.next_tool;
                    self.next_tool += 1;
                    out.push(StreamEvent::ToolCallStart {
                        index: tool,
                        id,
                        name,
                    });
                    // Some Anthropic-compatible servers send the whole input here and no deltas.
                    let has_input = input.as_object().is_some_and(|input| !input.is_empty());
                    if has_input {
                        out.push(StreamEvent::ToolCallDelta {
                            index: tool,
                            arguments: compact_input(&input),
                        });
                    }
                    self.tools.insert(index, (tool, has_input));
                }
                // Redacted thinking has no canonical stream event; it is dropped.
                StartBlock::Other => {}
            },
            StreamWire::ContentBlockDelta { index, delta } => match delta {
                Delta::Text { text } => {
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta(text));
                    }
                }
                Delta::Thinking { thinking } => {
                    if !thinking.is_empty() {
                        out.push(StreamEvent::ReasoningDelta(thinking));
                    }
                }
                Delta::Signature { signature } => {
                    out.push(StreamEvent::ReasoningSignature(signature));
                }
                Delta::InputJson { partial_json } => {
                    // Input for blocks that are not client tool calls (server tools) is skipped.
                    if let Some((tool, has_input)) = self.tools.get_mut(&index)
                        && !partial_json.is_empty()
                    {
                        *has_input = true;
                        out.push(StreamEvent::ToolCallDelta {
                            index: *tool,
                            arguments: partial_json,
                        });
                    }
                }
                Delta::Other => {}
            },
            StreamWire::ContentBlockStop { index } => {
                if let Some((tool, has_input)) = self.tools.remove(&index)
                    && !has_input
                {
                    out.push(StreamEvent::ToolCallDelta {
                        index: tool,
                        arguments: "{}".to_owned(),
                    });
                }
            }
            StreamWire::MessageDelta {
                delta,
                usage: update,
            } => {
                if let Some(update) = update {
                    self.merge_usage(&update);
                }
                if !self.finished {
                    self.finished = true;
                    out.push(StreamEvent::Finish(finish_reason(
                        delta.stop_reason.as_deref(),
                    )));
                }
            }
            StreamWire::MessageStop => {
                if !self.finished {
                    self.finished = true;
                    out.push(StreamEvent::Finish(FinishReason::Stop));
                }
                out.push(StreamEvent::Usage(usage(&self.usage)));
                self.done = true;
            }
            StreamWire::Error { error } => {
                return Err(Error::Upstream(format!(
                    "{}: {}",
                    error.kind, error.message
                )));
            }
            StreamWire::Other => {}
        }
        Ok(out)
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// The kind of the content block the encoder has open.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    Tool(u32),
}

/// Encodes canonical events as the SSE stream an Anthropic client expects.
pub struct Encoder {
    /// `msg_` + Tandem's exchange id.
    id: String,
    /// The model name the client asked for.
    model: String,
    started: bool,
    ended: bool,
    next_block: u32,
    open: Option<(u32, BlockKind)>,
    /// Content block index of each canonical tool call index.
    tool_blocks: HashMap<u32, u32>,
    finish: FinishReason,
    usage: Usage,
}

impl Encoder {
    /// An encoder for one answer to the request in `ctx`.
    pub fn new(ctx: &EncodeContext<'_>) -> Self {
        Encoder {
            id: format!("msg_{}", ctx.id),
            model: ctx.request.model.clone(),
            started: false,
            ended: false,
            next_block: 0,
            open: None,
            tool_blocks: HashMap::new(),
            finish: FinishReason::Stop,
            usage: Usage::default(),
        }
    }

    fn start(&mut self, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        let event = json!({
            "type": "message_start",
            "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        });
        push(out, "message_start", &event);
    }

    fn close_block(&mut self, out: &mut String) {
        if let Some((index, _)) = self.open.take() {
            push(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// Open a new block of `kind` (closing the open one) and return its index.
    fn open_block(&mut self, kind: BlockKind, content_block: Value, out: &mut String) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        push(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        );
        index
    }

    /// The index of the open block if it has `kind`, else of a new block of `kind` starting as `content_block`.
    fn ensure_block(&mut self, kind: BlockKind, content_block: Value, out: &mut String) -> u32 {
        match self.open {
            Some((index, open)) if open == kind => index,
            _ => self.open_block(kind, content_block, out),
        }
    }
}

fn empty_thinking() -> Value {
    json!({"type": "thinking", "thinking": "", "signature": ""})
}

fn push(out: &mut String, name: &str, event: &Value) {
    out.push_str(&frame(Some(name), &event.to_string()));
}

fn push_delta(out: &mut String, index: u32, delta: Value) {
    push(
        out,
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": delta}),
    );
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent) -> String {
        let mut out = String::new();
        if self.ended {
            return out;
        }
        self.start(&mut out);
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta(text) => {
                if !text.is_empty() {
                    let index = self.ensure_block(
                        BlockKind::Text,
                        json!({"type": "text", "text": ""}),
                        &mut out,
                    );
                    push_delta(&mut out, index, json!({"type": "text_delta", "text": text}));
                }
            }
            StreamEvent::ReasoningDelta(text) => {
                if !text.is_empty() {
                    let index = self.ensure_block(BlockKind::Thinking, empty_thinking(), &mut out);
                    push_delta(
                        &mut out,
                        index,
                        json!({"type": "thinking_delta", "thinking": text}),
                    );
                }
            }
            StreamEvent::ReasoningSignature(signature) => {
                // The signature ends its thinking block.
                let index = self.ensure_block(BlockKind::Thinking, empty_thinking(), &mut out);
                push_delta(
                    &mut out,
                    index,
                    json!({"type": "signature_delta", "signature": signature}),
                );
                self.close_block(&mut out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let block = self.open_block(
                    BlockKind::Tool(*index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    &mut out,
                );
                self.tool_blocks.insert(*index, block);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                // A delta for a call whose block was closed still goes to that block's index, which
                // Anthropic clients accumulate by.
                if let Some(&block) = self.tool_blocks.get(index)
                    && !arguments.is_empty()
                {
                    push_delta(
                        &mut out,
                        block,
                        json!({"type": "input_json_delta", "partial_json": arguments}),
                    );
                }
            }
            StreamEvent::Finish(finish) => self.finish = finish.clone(),
            StreamEvent::Usage(usage) => self.usage = *usage,
        }
        out
    }

    fn finish(&mut self) -> String {
        let mut out = String::new();
        if self.ended {
            return out;
        }
        self.start(&mut out);
        self.close_block(&mut out);
        self.ended = true;
        let delta = json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(&self.finish, !self.tool_blocks.is_empty()),
                "stop_sequence": null,
            },
            "usage": wire_usage(&self.usage),
        });
        push(&mut out, "message_delta", &delta);
        push(&mut out, "message_stop", &json!({"type": "message_stop"}));
        out
    }

    fn fail(&mut self, kind: ErrorKind, message: &str) -> String {
        if self.ended {
            return String::new();
        }
        self.ended = true;
        frame(Some("error"), &error_body(kind, message).to_string())
    }
}
