//! Serde shapes of the Anthropic Messages API, as far as Tandem reads them.
//!
//! Client requests are parsed strictly at the top level (`deny_unknown_fields`) and tolerantly inside
//! content blocks, tools and metadata, which Anthropic extends often. Upstream answers are parsed
//! tolerantly throughout: unknown events and block types are skipped rather than failing a stream.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

/// `POST /v1/messages` body as a client sends it: every documented top-level field, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Request {
    pub model: String,
    pub messages: Vec<InMessage>,
    pub max_tokens: u32,
    pub system: Option<Content>,
    pub stream: Option<bool>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Not expressible in the canonical model; dropped.
    #[serde(rename = "top_k")]
    pub _top_k: Option<u32>,
    pub stop_sequences: Option<Vec<String>>,
    pub tools: Option<Vec<InTool>>,
    pub tool_choice: Option<InToolChoice>,
    pub metadata: Option<Metadata>,
    pub thinking: Option<Thinking>,
    pub output_config: Option<OutputConfig>,
    /// The beta spelling of `output_config.format`.
    pub output_format: Option<Value>,
    /// Server-side MCP connectors; refused when non-empty.
    pub mcp_servers: Option<Vec<IgnoredAny>>,
    /// Capacity choice on Anthropic's side; dropped.
    #[serde(rename = "service_tier")]
    pub _service_tier: Option<IgnoredAny>,
    /// Code-execution container reuse; only meaningful with server tools, which are refused.
    #[serde(rename = "container")]
    pub _container: Option<IgnoredAny>,
    /// Server-side context editing (Claude Code sends it); dropped.
    #[serde(rename = "context_management")]
    pub _context_management: Option<IgnoredAny>,
    /// Automatic prompt caching; Tandem sets its own breakpoints upstream.
    #[serde(rename = "cache_control")]
    pub _cache_control: Option<IgnoredAny>,
    /// Inference region; dropped.
    #[serde(rename = "inference_geo")]
    pub _inference_geo: Option<IgnoredAny>,
    /// Fast mode; dropped.
    #[serde(rename = "speed")]
    pub _speed: Option<IgnoredAny>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum InRole {
    User,
    Assistant,
}

#[derive(Deserialize)]
pub(super) struct InMessage {
    pub role: InRole,
    pub content: Content,
}

/// A `content` (or `system`, or tool result `content`) field: a string or an array of blocks.
pub(super) enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Content, E> {
                Ok(Content::Text(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Content, E> {
                Ok(Content::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut blocks = Vec::new();
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(Content::Blocks(blocks))
            }
        }

        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One request content block. Unknown fields (`cache_control`, `citations`, ...) are ignored; unknown
/// block types are kept as [`Block::Unsupported`] so the caller can name them in its error.
pub(super) enum Block {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Option<Content>,
        is_error: bool,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    Unsupported(String),
}

/// The block types Tandem understands, decoded once the `type` is known to be one of them.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum KnownBlock {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<Content>,
        #[serde(default)]
        is_error: Option<bool>,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
}

const KNOWN_BLOCKS: &[&str] = &[
    "text",
    "image",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
];

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            return Err(de::Error::custom("content block without a string `type`"));
        };
        if !KNOWN_BLOCKS.contains(&kind) {
            return Ok(Block::Unsupported(kind.to_owned()));
        }
        let kind = kind.to_owned();
        let known = KnownBlock::deserialize(value)
            .map_err(|err| de::Error::custom(format!("invalid `{kind}` block: {err}")))?;
        Ok(match known {
            KnownBlock::Text { text } => Block::Text { text },
            KnownBlock::Image { source } => Block::Image { source },
            KnownBlock::ToolUse { id, name, input } => Block::ToolUse { id, name, input },
            KnownBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => Block::ToolResult {
                tool_use_id,
                content,
                is_error: is_error.unwrap_or(false),
            },
            KnownBlock::Thinking {
                thinking,
                signature,
            } => Block::Thinking {
                thinking,
                signature: signature.unwrap_or_default(),
            },
            KnownBlock::RedactedThinking { data } => Block::RedactedThinking { data },
        })
    }
}

/// An image `source`: `base64` (`media_type` + `data`), `url`, or `file` (refused: needs the Files API).
#[derive(Deserialize)]
pub(super) struct ImageSource {
    #[serde(rename = "type")]
    pub kind: String,
    pub media_type: Option<String>,
    pub data: Option<String>,
    pub url: Option<String>,
}

/// A tool declaration. `type` is absent or `custom` for client tools; anything else is a server tool.
#[derive(Deserialize)]
pub(super) struct InTool {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Option<Value>,
    pub strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum InToolChoice {
    Auto {
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

#[derive(Deserialize)]
pub(super) struct Metadata {
    pub user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Thinking {
    Enabled { budget_tokens: u32 },
    Disabled,
    Adaptive,
}

#[derive(Deserialize)]
pub(super) struct OutputConfig {
    pub effort: Option<String>,
    pub format: Option<Value>,
}

/// A non-streamed upstream answer: a message, or an error object sent with a success status.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ResponseBody {
    Message(OutMessage),
    Error { error: ErrorDetail },
}

#[derive(Deserialize)]
pub(super) struct OutMessage {
    pub id: String,
    pub model: String,
    #[serde(default)]
    pub content: Vec<OutBlock>,
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// Server tool blocks and future types: skipped.
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default, Clone, Copy)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// One upstream stream event, read from its `data` (the `type` field repeats the `event:` name).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum StreamWire {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: ErrorDetail,
    },
    /// `ping` and future event types.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
pub(super) struct StartMessage {
    pub id: String,
    pub model: String,
    #[serde(default)]
    pub usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    /// `redacted_thinking`, server tool blocks and future types.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
pub(super) enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    /// `citations_delta` and future types.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
pub(super) struct MessageDeltaBody {
    pub stop_reason: Option<String>,
}
