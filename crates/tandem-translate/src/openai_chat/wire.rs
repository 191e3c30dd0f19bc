//! Serde types of the Chat Completions wire format: strict for client requests, lenient for upstream answers.

use serde::Deserialize;
use serde_json::{Map, Value};
use tandem_protocol::{ChatRequest, Message, Part, Role, Tool, ToolKind};

use crate::openai_chat::{decode_tool_choice, parse_effort};
use crate::{Error, Result};

/// A client's request. Every documented field is listed so that anything else is refused by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    model: String,
    messages: Vec<RequestMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<Vec<RequestTool>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    safety_identifier: Option<String>,
    #[serde(default)]
    prompt_cache_key: Option<String>,
    // Forwarded as-is to OpenAI-compatible upstreams.
    #[serde(default)]
    n: Option<Value>,
    #[serde(default)]
    seed: Option<Value>,
    #[serde(default)]
    presence_penalty: Option<Value>,
    #[serde(default)]
    frequency_penalty: Option<Value>,
    #[serde(default)]
    logit_bias: Option<Value>,
    #[serde(default)]
    logprobs: Option<Value>,
    #[serde(default)]
    top_logprobs: Option<Value>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    store: Option<Value>,
    #[serde(default)]
    service_tier: Option<Value>,
    #[serde(default)]
    modalities: Option<Value>,
    #[serde(default)]
    prediction: Option<Value>,
    #[serde(default)]
    audio: Option<Value>,
    #[serde(default)]
    web_search_options: Option<Value>,
    #[serde(default)]
    verbosity: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
    #[serde(default, rename = "include_obfuscation")]
    _include_obfuscation: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum RequestMessage {
    System {
        content: Content,
    },
    Developer {
        content: Content,
    },
    User {
        content: Content,
    },
    Assistant {
        #[serde(default)]
        content: Option<Content>,
        #[serde(default)]
        tool_calls: Option<Vec<RequestToolCall>>,
        #[serde(default)]
        reasoning_content: Option<String>,
    },
    Tool {
        content: Content,
        tool_call_id: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
    Refusal { refusal: String },
}

#[derive(Debug, Deserialize)]
struct ImageUrl {
    url: String,
}

#[derive(Debug, Deserialize)]
struct RequestToolCall {
    id: String,
    #[serde(default)]
    function: Option<FunctionCall>,
    #[serde(default)]
    custom: Option<CustomCall>,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct CustomCall {
    name: String,
    #[serde(default)]
    input: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RequestTool {
    Function { function: FunctionDef },
    Custom { custom: CustomDef },
}

#[derive(Debug, Deserialize)]
struct FunctionDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct CustomDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    format: Option<Value>,
}

impl Content {
    fn into_parts(self) -> Vec<Part> {
        match self {
            Content::Text(text) => vec![Part::Text(text)],
            Content::Parts(parts) => parts
                .into_iter()
                .map(|part| match part {
                    ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                        Part::Text(text)
                    }
                    ContentPart::ImageUrl { image_url } => Part::Image { url: image_url.url },
                })
                .collect(),
        }
    }

    fn into_text(self) -> String {
        Message {
            role: Role::Tool,
            parts: self.into_parts(),
        }
        .joined_text()
    }
}

impl Request {
    pub(crate) fn into_canonical(self) -> Result<ChatRequest> {
        let tools: Vec<Tool> = self
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|tool| match tool {
                RequestTool::Function { function } => Tool {
                    name: function.name,
                    namespace: None,
                    description: function.description,
                    parameters: function.parameters,
                    strict: function.strict,
                    kind: ToolKind::Function,
                },
                RequestTool::Custom { custom } => Tool {
                    name: custom.name,
                    namespace: None,
                    description: custom.description,
                    parameters: None,
                    strict: None,
                    kind: ToolKind::Custom {
                        format: custom.format,
                    },
                },
            })
            .collect();
        let mut messages = Vec::with_capacity(self.messages.len());
        for message in self.messages {
            messages.push(match message {
                RequestMessage::System { content } => Message {
                    role: Role::System,
                    parts: content.into_parts(),
                },
                RequestMessage::Developer { content } => Message {
                    role: Role::Developer,
                    parts: content.into_parts(),
                },
                RequestMessage::User { content } => Message {
                    role: Role::User,
                    parts: content.into_parts(),
                },
                RequestMessage::Assistant {
                    content,
                    tool_calls,
                    reasoning_content,
                } => {
                    let mut parts = Vec::new();
                    if let Some(text) = reasoning_content.filter(|r| !r.is_empty()) {
                        parts.push(Part::Reasoning {
                            id: None,
                            text,
                            encrypted: None,
                            signature: None,
                        });
                    }
                    parts.extend(content.map(Content::into_parts).unwrap_or_default());
                    for call in tool_calls.unwrap_or_default() {
                        parts.push(tool_call_part(call, &tools)?);
                    }
                    Message {
                        role: Role::Assistant,
                        parts,
                    }
                }
                RequestMessage::Tool {
                    content,
                    tool_call_id,
                } => Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult {
                        call_id: tool_call_id,
                        content: content.into_text(),
                        is_error: false,
                    }],
                },
            });
        }
        let mut extra = Map::new();
        for (key, value) in [
            ("n", self.n),
            ("seed", self.seed),
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
            ("logit_bias", self.logit_bias),
            ("logprobs", self.logprobs),
            ("top_logprobs", self.top_logprobs),
            ("response_format", self.response_format),
            ("metadata", self.metadata),
            ("store", self.store),
            ("service_tier", self.service_tier),
            ("modalities", self.modalities),
            ("prediction", self.prediction),
            ("audio", self.audio),
            ("web_search_options", self.web_search_options),
            ("verbosity", self.verbosity),
        ] {
            if let Some(value) = value.filter(|v| !v.is_null()) {
                extra.insert(key.to_owned(), value);
            }
        }
        if let Some(n) = extra.get("n").and_then(Value::as_u64).filter(|n| *n != 1) {
            return Err(Error::Json {
                path: "n".into(),
                message: format!("n = {n} is not supported; ask for one choice"),
            });
        }
        let stream = self.stream.unwrap_or(false);
        let mut req = ChatRequest::new(self.model, messages);
        req.tools = tools;
        req.tool_choice = decode_tool_choice(self.tool_choice)?;
        req.parallel_tool_calls = self.parallel_tool_calls;
        req.max_output_tokens = self.max_completion_tokens.or(self.max_tokens);
        req.temperature = self.temperature;
        req.top_p = self.top_p;
        req.stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        };
        req.reasoning_effort = parse_effort(self.reasoning_effort.as_deref())?;
        req.stream = stream;
        req.stream_usage = stream
            && self
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
        req.user = self.user.or(self.safety_identifier);
        req.session = self.prompt_cache_key;
        req.openai_extra = extra;
        Ok(req)
    }
}

fn tool_call_part(call: RequestToolCall, tools: &[Tool]) -> Result<Part> {
    match (call.function, call.custom) {
        (Some(function), _) => {
            let kind = tools
                .iter()
                .find(|t| t.name == function.name)
                .map_or(ToolKind::Function, |t| t.kind.clone());
            Ok(Part::ToolCall {
                id: call.id,
                name: function.name,
                arguments: function.arguments,
                kind,
            })
        }
        (None, Some(custom)) => Ok(Part::ToolCall {
            id: call.id,
            name: custom.name,
            arguments: custom.input,
            kind: ToolKind::Custom { format: None },
        }),
        (None, None) => Err(Error::Invalid(format!(
            "tool call `{}` has neither `function` nor `custom`",
            call.id
        ))),
    }
}

/// An upstream's non-stream answer (lenient: unknown fields are ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct Response {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) choices: Vec<Choice>,
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    pub(crate) message: AnswerMessage,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct AnswerMessage {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) reasoning_content: Option<String>,
    #[serde(default)]
    pub(crate) reasoning: Option<String>,
    #[serde(default)]
    pub(crate) tool_calls: Option<Vec<AnswerToolCall>>,
}

impl AnswerMessage {
    /// vLLM and DeepSeek call it `reasoning_content`, Ollama and OpenRouter `reasoning`.
    pub(crate) fn reasoning_text(&self) -> Option<String> {
        self.reasoning_content
            .clone()
            .or_else(|| self.reasoning.clone())
            .filter(|r| !r.is_empty())
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AnswerToolCall {
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) function: AnswerFunction,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct AnswerFunction {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) arguments: Option<String>,
}

/// Upstream usage counts.
#[derive(Debug, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl Usage {
    pub(crate) fn canonical(self) -> tandem_protocol::Usage {
        tandem_protocol::Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            cached_input_tokens: self
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: self
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// One upstream stream chunk (lenient).
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) delta: Option<AnswerMessageDelta>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

/// The delta of a stream chunk: like [`AnswerMessage`], with tool calls addressed by index.
pub(crate) type AnswerMessageDelta = AnswerMessage;
