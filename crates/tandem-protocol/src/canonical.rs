//! The canonical chat model: one request, response and stream-event shape that all wire formats map onto.
//!
//! A conversation is a list of [`Message`]s made of [`Part`]s. Tool calls live in assistant messages and
//! tool results in [`Role::Tool`] messages, whatever the client format groups them as. Reasoning is kept as
//! a part so that it can be replayed to the backend that produced it, and dropped for any other backend.

use serde_json::{Map, Value};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Operator instructions (OpenAI `system`, Anthropic `system`).
    System,
    /// Developer instructions (OpenAI `developer`); sent as `system` to backends without that role.
    Developer,
    /// The person or client.
    User,
    /// The model.
    Assistant,
    /// Results of tool calls; holds only [`Part::ToolResult`].
    Tool,
}

impl Role {
    /// The lowercase name used by the OpenAI formats.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// Whether a tool takes JSON arguments (`function`) or free text (`custom`, e.g. Codex's `apply_patch`).
#[derive(Clone, Debug, PartialEq)]
pub enum ToolKind {
    /// JSON-schema arguments.
    Function,
    /// Free-form text input, optionally constrained by a grammar (`format`, kept verbatim).
    Custom {
        /// The client's `format` object, e.g. a lark grammar.
        format: Option<Value>,
    },
}

/// One piece of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Plain text.
    Text(String),
    /// An image by URL (`https:` or `data:`).
    Image {
        /// The image URL.
        url: String,
    },
    /// A call the model made to a tool.
    ToolCall {
        /// The call id, echoed by the matching result.
        id: String,
        /// The tool name.
        name: String,
        /// JSON text for function tools, free text for custom tools.
        arguments: String,
        /// The tool kind as the client declared it.
        kind: ToolKind,
    },
    /// The output of a tool call.
    ToolResult {
        /// The id of the call this answers.
        call_id: String,
        /// The output text.
        content: String,
        /// Whether the tool reported a failure.
        is_error: bool,
    },
    /// Model reasoning. Opaque fields are only valid for the backend that produced them.
    Reasoning {
        /// Item id, when the client format has one.
        id: Option<String>,
        /// Readable reasoning or its summary.
        text: String,
        /// OpenAI `encrypted_content`.
        encrypted: Option<String>,
        /// Anthropic thinking `signature`.
        signature: Option<String>,
    },
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The author.
    pub role: Role,
    /// The content, in order.
    pub parts: Vec<Part>,
}

impl Message {
    /// A message holding one text part.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            parts: vec![Part::Text(text.into())],
        }
    }

    /// All text parts joined, for formats whose content is a single string.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if let Part::Text(text) = part {
                out.push_str(text);
            }
        }
        out
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// The tool name as upstreams see it: for a tool inside a client namespace, `{namespace}__{name}`.
    pub name: String,
    /// The client's namespace (OpenAI Responses `namespace` tools), so answers can be mapped back exactly.
    pub namespace: Option<String>,
    /// What the tool does.
    pub description: Option<String>,
    /// JSON schema of the arguments (function tools); `None` for custom tools.
    pub parameters: Option<Value>,
    /// Strict schema adherence, when the client asked for it.
    pub strict: Option<bool>,
    /// Function or custom.
    pub kind: ToolKind,
}

/// Which tools the model may or must call.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool.
    Named(String),
}

/// Requested reasoning depth, passed to backends that understand it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasoningEffort {
    /// `minimal`.
    Minimal,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
}

impl ReasoningEffort {
    /// Parse the OpenAI spelling (also accepts `none` as minimal).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" | "minimal" => Some(ReasoningEffort::Minimal),
            "low" => Some(ReasoningEffort::Low),
            "medium" => Some(ReasoningEffort::Medium),
            "high" | "xhigh" => Some(ReasoningEffort::High),
            _ => None,
        }
    }

    /// The OpenAI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

/// A chat request in canonical form.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// The model name the client asked for (an alias, `provider/model`, or an upstream name).
    pub model: String,
    /// The conversation, system and developer messages included, in order.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Tool choice.
    pub tool_choice: ToolChoice,
    /// Whether several tool calls may come in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Output token limit.
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Reasoning depth.
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Whether the client wants a stream.
    pub stream: bool,
    /// Whether the client asked for a usage chunk at the end of a stream (OpenAI `include_usage`).
    /// Upstreams are always asked for usage, so Tandem can count it either way.
    pub stream_usage: bool,
    /// End-user id, when the client sent one.
    pub user: Option<String>,
    /// Session key (`prompt_cache_key`, Anthropic `metadata.user_id`, or a session header).
    pub session: Option<String>,
    /// OpenAI-only parameters (e.g. `seed`, `response_format`) forwarded to OpenAI-compatible upstreams.
    pub openai_extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request with the given model and messages and every option unset.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: None,
            max_output_tokens: None,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
            reasoning_effort: None,
            stream: false,
            stream_usage: false,
            user: None,
            session: None,
            openai_extra: Map::new(),
        }
    }

    /// The declared tool with this name, if any.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }
}

/// Token counts of one answer, as reported by the upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens served from the upstream's cache.
    pub cached_input_tokens: u64,
    /// Completion tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum FinishReason {
    /// Natural end or stop sequence.
    #[default]
    Stop,
    /// Output token limit reached.
    Length,
    /// The turn ends with tool calls.
    ToolCalls,
    /// The upstream filtered the content.
    ContentFilter,
}

/// A complete (non-streamed) answer in canonical form.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The upstream's response id.
    pub id: String,
    /// The model that answered, as the upstream named it.
    pub model: String,
    /// Reasoning, text and tool calls, in order.
    pub parts: Vec<Part>,
    /// Why the model stopped.
    pub finish: FinishReason,
    /// Token counts.
    pub usage: Usage,
}

/// One event of a streamed answer in canonical form.
///
/// A well-formed stream is `Start`, then any mix of deltas, then `Finish`, then at most one `Usage`.
/// Tool call deltas refer to a call by the `index` its `ToolCallStart` gave.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The upstream accepted the request.
    Start {
        /// The upstream's response id.
        id: String,
        /// The model that answers.
        model: String,
    },
    /// More answer text.
    TextDelta(String),
    /// More reasoning text.
    ReasoningDelta(String),
    /// The signature or encrypted content closing the current reasoning block.
    ReasoningSignature(String),
    /// A tool call begins.
    ToolCallStart {
        /// Position of the call among this answer's calls.
        index: u32,
        /// The call id.
        id: String,
        /// The tool name.
        name: String,
    },
    /// More argument text for a started tool call.
    ToolCallDelta {
        /// Position of the call among this answer's calls.
        index: u32,
        /// The next piece of the arguments.
        arguments: String,
    },
    /// The model stopped.
    Finish(FinishReason),
    /// Token counts for the whole answer.
    Usage(Usage),
}

impl StreamEvent {
    /// Whether this event is output of the model (text, reasoning or a tool call): the first one is the
    /// answer's first token, from which time to first token is measured.
    pub fn is_output(&self) -> bool {
        matches!(
            self,
            StreamEvent::TextDelta(_)
                | StreamEvent::ReasoningDelta(_)
                | StreamEvent::ToolCallStart { .. }
                | StreamEvent::ToolCallDelta { .. }
        )
    }
}
