//! Serde types of a Responses `POST /v1/responses` body and their conversion to a canonical [`ChatRequest`].
//!
//! The top level is strict, so a misspelt or unknown option is refused by name. Input items, content parts
//! and tools are tolerant of extra fields, because clients replay output items verbatim and Codex adds
//! bookkeeping fields of its own (`id`, `status`, `internal_*`).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tandem_protocol::{
    ChatRequest, Message, Part, ReasoningEffort, Role, Tool, ToolChoice, ToolKind,
};

use crate::openai_responses::flat_name;
use crate::{Error, Result};

/// A client's request. Every documented field is listed so that anything else is refused by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    model: String,
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<Value>,
    #[serde(default)]
    store: Option<bool>,
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    reasoning: Option<Reasoning>,
    #[serde(default)]
    text: Option<TextOptions>,
    #[serde(default)]
    prompt_cache_key: Option<String>,
    #[serde(default)]
    prompt_cache_retention: Option<String>,
    #[serde(default)]
    client_metadata: Option<Value>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    max_tool_calls: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_logprobs: Option<u32>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    conversation: Option<Value>,
    #[serde(default)]
    truncation: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    service_tier: Option<String>,
    #[serde(default)]
    background: Option<bool>,
    #[serde(default)]
    safety_identifier: Option<String>,
    #[serde(default)]
    prompt: Option<Value>,
}

/// `input`: a plain user prompt or a list of items (kept raw here, decoded item by item below).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Value>),
}

#[derive(Debug, Deserialize)]
struct Reasoning {
    #[serde(default)]
    effort: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    generate_summary: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TextOptions {
    #[serde(default)]
    format: Option<TextFormat>,
    #[serde(default)]
    verbosity: Option<String>,
}

/// `text.format`: structured output, mapped onto the Chat Completions `response_format`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        strict: Option<bool>,
    },
}

impl Request {
    pub(crate) fn into_canonical(self) -> Result<ChatRequest> {
        if self.previous_response_id.is_some() {
            return Err(Error::Invalid(
                "previous_response_id is not supported: Tandem is stateless; send the whole history"
                    .to_owned(),
            ));
        }
        if self.conversation.is_some() {
            return Err(Error::Invalid(
                "conversation is not supported: Tandem is stateless; send the whole history"
                    .to_owned(),
            ));
        }
        if self.background == Some(true) {
            return Err(Error::Invalid(
                "background responses are not supported: Tandem is stateless".to_owned(),
            ));
        }
        if self.prompt.is_some() {
            return Err(Error::Invalid(
                "stored prompt templates (`prompt`) are not supported; send instructions and input"
                    .to_owned(),
            ));
        }
        // Accepted and deliberately not forwarded: storage and bookkeeping options of OpenAI's own service
        // (Tandem stores nothing and always returns reasoning it may replay), sampling details that chat
        // upstreams do not share, and the client's own metadata.
        let _ignored = (
            self.stream_options,
            self.store,
            self.include,
            self.prompt_cache_retention,
            self.client_metadata,
            self.max_tool_calls,
            self.top_logprobs,
            self.metadata,
            self.truncation,
            self.service_tier,
            self.reasoning
                .as_ref()
                .map(|r| (&r.summary, &r.generate_summary)),
            self.text.as_ref().map(|t| &t.verbosity),
        );

        let tools = decode_tools(self.tools.unwrap_or_default())?;
        let mut builder = Builder::default();
        if let Some(instructions) = self.instructions.filter(|i| !i.is_empty()) {
            builder.push(Message::text(Role::System, instructions));
        }
        match self.input {
            None => {}
            Some(Input::Text(text)) => builder.push(Message::text(Role::User, text)),
            Some(Input::Items(items)) => {
                for (index, item) in items.into_iter().enumerate() {
                    builder.item(item, &format!("input[{index}]"), &tools)?;
                }
            }
        }

        let mut req = ChatRequest::new(self.model, builder.finish());
        req.tool_choice = decode_tool_choice(self.tool_choice)?;
        req.tools = tools;
        req.parallel_tool_calls = self.parallel_tool_calls;
        req.max_output_tokens = self.max_output_tokens;
        req.temperature = self.temperature;
        req.top_p = self.top_p;
        req.reasoning_effort = match self.reasoning.and_then(|r| r.effort) {
            None => None,
            Some(effort) => Some(ReasoningEffort::parse(&effort).ok_or_else(|| Error::Json {
                path: "reasoning.effort".to_owned(),
                message: format!("unknown reasoning effort `{effort}`"),
            })?),
        };
        req.stream = self.stream.unwrap_or(false);
        req.user = self.user.or(self.safety_identifier);
        req.session = self.prompt_cache_key;
        if let Some(format) = self.text.and_then(|t| t.format)
            && let Some(response_format) = response_format(format)
        {
            req.openai_extra
                .insert("response_format".to_owned(), response_format);
        }
        Ok(req)
    }
}

/// The Chat Completions `response_format` equivalent of `text.format`, `None` for plain text.
fn response_format(format: TextFormat) -> Option<Value> {
    match format {
        TextFormat::Text => None,
        TextFormat::JsonObject => Some(json!({"type": "json_object"})),
        TextFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
        } => {
            let mut spec = Map::new();
            spec.insert("name".to_owned(), Value::String(name));
            spec.insert("schema".to_owned(), schema);
            if let Some(description) = description {
                spec.insert("description".to_owned(), Value::String(description));
            }
            if let Some(strict) = strict {
                spec.insert("strict".to_owned(), Value::Bool(strict));
            }
            Some(json!({"type": "json_schema", "json_schema": Value::Object(spec)}))
        }
    }
}

/// Decode `value` as `T`; errors name the JSON path below `path` (`input[3].content[0].text`).
fn parse<T: DeserializeOwned>(value: Value, path: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let path = match inner.as_str() {
            "." => path.to_owned(),
            _ if inner.starts_with('[') => format!("{path}{inner}"),
            _ => format!("{path}.{inner}"),
        };
        Error::Json {
            path,
            message: err.inner().to_string(),
        }
    })
}

/// The `type` of a tagged object, or a JSON error at `path`.
fn type_of<'a>(value: &'a Value, path: &str) -> Result<Option<&'a str>> {
    let Value::Object(object) = value else {
        return Err(Error::Json {
            path: path.to_owned(),
            message: "expected an object".to_owned(),
        });
    };
    match object.get("type") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(kind)) => Ok(Some(kind)),
        Some(_) => Err(Error::Json {
            path: format!("{path}.type"),
            message: "expected a string".to_owned(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tools

#[derive(Debug, Deserialize)]
struct FunctionTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct CustomTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    format: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct NamespaceTool {
    name: String,
    #[serde(default)]
    tools: Vec<Value>,
}

/// Decode the declared tools. Namespaces are flattened; hosted tools are dropped (see the module docs).
fn decode_tools(raw: Vec<Value>) -> Result<Vec<Tool>> {
    let mut tools = Vec::with_capacity(raw.len());
    for (index, value) in raw.into_iter().enumerate() {
        let path = format!("tools[{index}]");
        match type_of(&value, &path)? {
            Some("namespace") => {
                let namespace: NamespaceTool = parse(value, &path)?;
                for (inner, value) in namespace.tools.into_iter().enumerate() {
                    let path = format!("{path}.tools[{inner}]");
                    if let Some(mut tool) = decode_tool(value, &path)? {
                        tool.name = flat_name(&namespace.name, &tool.name);
                        tool.namespace = Some(namespace.name.clone());
                        tools.push(tool);
                    }
                }
            }
            _ => {
                if let Some(tool) = decode_tool(value, &path)? {
                    tools.push(tool);
                }
            }
        }
    }
    Ok(tools)
}

/// One function or custom tool; `None` for a hosted tool, which Tandem does not run.
fn decode_tool(value: Value, path: &str) -> Result<Option<Tool>> {
    match type_of(&value, path)? {
        Some("function") => {
            let tool: FunctionTool = parse(value, path)?;
            Ok(Some(Tool {
                name: tool.name,
                namespace: None,
                description: tool.description,
                parameters: tool.parameters.filter(|p| !p.is_null()),
                strict: tool.strict,
                kind: ToolKind::Function,
            }))
        }
        Some("custom") => {
            let tool: CustomTool = parse(value, path)?;
            Ok(Some(Tool {
                name: tool.name,
                namespace: None,
                description: tool.description,
                parameters: None,
                strict: None,
                kind: ToolKind::Custom {
                    format: tool.format.filter(|f| !f.is_null()),
                },
            }))
        }
        Some(_) => Ok(None),
        None => Err(Error::Json {
            path: format!("{path}.type"),
            message: "missing tool type".to_owned(),
        }),
    }
}

/// Map `tool_choice`: a mode string or `{type: function|custom, name}`.
fn decode_tool_choice(value: Option<Value>) -> Result<ToolChoice> {
    let invalid = |message: String| Error::Json {
        path: "tool_choice".to_owned(),
        message,
    };
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(ToolChoice::Auto);
    };
    match &value {
        Value::String(mode) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid(format!("unknown tool_choice `{other}`"))),
        },
        Value::Object(object) => {
            let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
            let name = object.get("name").and_then(Value::as_str);
            match (kind, name) {
                ("function" | "custom", Some(name)) => {
                    let name = match object.get("namespace") {
                        None | Some(Value::Null) => name.to_owned(),
                        Some(Value::String(namespace)) => flat_name(namespace, name),
                        Some(_) => {
                            return Err(invalid(
                                "tool_choice `namespace` must be a string".to_owned(),
                            ));
                        }
                    };
                    Ok(ToolChoice::Named(name))
                }
                ("function" | "custom", None) => Err(invalid(format!(
                    "tool_choice of type `{kind}` needs a `name`"
                ))),
                ("allowed_tools", _) => Err(invalid(
                    "tool_choice `allowed_tools` is not supported; send only the allowed tools"
                        .to_owned(),
                )),
                _ => Err(invalid(format!(
                    "tool_choice `{kind}` names a hosted tool, which Tandem does not run"
                ))),
            }
        }
        _ => Err(invalid("expected a string or an object".to_owned())),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Input items

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ItemRole {
    System,
    Developer,
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
struct MessageItem {
    role: ItemRole,
    content: Value,
}

/// A content part of a message. Extra fields (`annotations`, `logprobs`, `detail`) are ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    InputImage {
        #[serde(default)]
        image_url: Option<String>,
    },
    Refusal {
        refusal: String,
    },
}

#[derive(Debug, Deserialize)]
struct ReasoningItem {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    summary: Vec<SummaryPart>,
    #[serde(default)]
    content: Option<Vec<ReasoningContent>>,
    #[serde(default)]
    encrypted_content: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SummaryPart {
    SummaryText { text: String },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ReasoningContent {
    ReasoningText { text: String },
    Text { text: String },
}

#[derive(Debug, Deserialize)]
struct FunctionCallItem {
    call_id: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct CustomToolCallItem {
    call_id: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    input: String,
}

/// `function_call_output` and `custom_tool_call_output`.
#[derive(Debug, Deserialize)]
struct CallOutputItem {
    call_id: String,
    output: Value,
}

/// A content part of a tool output (`output` as an array).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutputPart {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    InputImage {
        #[serde(default)]
        image_url: Option<String>,
    },
}

/// Builds the canonical conversation from input items.
///
/// Consecutive assistant items (text, reasoning, tool calls) merge into one assistant message, and each
/// tool output becomes its own [`Role::Tool`] message. Images that a tool returned cannot ride in a
/// canonical tool result, so they follow the run of tool results as one user message.
#[derive(Debug, Default)]
struct Builder {
    messages: Vec<Message>,
    assistant: Vec<Part>,
    tool_images: Vec<Part>,
}

impl Builder {
    fn flush_assistant(&mut self) {
        if !self.assistant.is_empty() {
            let parts = std::mem::take(&mut self.assistant);
            self.messages.push(Message {
                role: Role::Assistant,
                parts,
            });
        }
    }

    fn flush_tool_images(&mut self) {
        if !self.tool_images.is_empty() {
            let parts = std::mem::take(&mut self.tool_images);
            self.messages.push(Message {
                role: Role::User,
                parts,
            });
        }
    }

    /// Add a non-assistant, non-tool message.
    fn push(&mut self, message: Message) {
        self.flush_assistant();
        self.flush_tool_images();
        self.messages.push(message);
    }

    fn push_assistant(&mut self, part: Part) {
        self.flush_tool_images();
        self.assistant.push(part);
    }

    fn push_tool_result(&mut self, call_id: String, content: String, images: Vec<Part>) {
        self.flush_assistant();
        self.messages.push(Message {
            role: Role::Tool,
            parts: vec![Part::ToolResult {
                call_id,
                content,
                is_error: false,
            }],
        });
        self.tool_images.extend(images);
    }

    fn finish(mut self) -> Vec<Message> {
        self.flush_assistant();
        self.flush_tool_images();
        self.messages
    }

    fn item(&mut self, value: Value, path: &str, tools: &[Tool]) -> Result<()> {
        let kind = match type_of(&value, path)? {
            Some(kind) => kind.to_owned(),
            None if value.get("role").is_some() => "message".to_owned(),
            None => {
                return Err(Error::Json {
                    path: format!("{path}.type"),
                    message: "input item has neither `type` nor `role`".to_owned(),
                });
            }
        };
        match kind.as_str() {
            "message" => {
                let item: MessageItem = parse(value, path)?;
                let parts = message_parts(item.content, &format!("{path}.content"))?;
                match item.role {
                    ItemRole::Assistant => {
                        for part in parts {
                            self.push_assistant(part);
                        }
                    }
                    ItemRole::System => self.push(Message {
                        role: Role::System,
                        parts,
                    }),
                    ItemRole::Developer => self.push(Message {
                        role: Role::Developer,
                        parts,
                    }),
                    ItemRole::User => self.push(Message {
                        role: Role::User,
                        parts,
                    }),
                }
            }
            "reasoning" => {
                let item: ReasoningItem = parse(value, path)?;
                let summary: Vec<String> = item
                    .summary
                    .into_iter()
                    .map(|SummaryPart::SummaryText { text }| text)
                    .collect();
                let text = if summary.is_empty() {
                    let content: Vec<String> = item
                        .content
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| match c {
                            ReasoningContent::ReasoningText { text }
                            | ReasoningContent::Text { text } => text,
                        })
                        .collect();
                    content.join("\n\n")
                } else {
                    summary.join("\n\n")
                };
                self.push_assistant(Part::Reasoning {
                    id: item.id,
                    text,
                    encrypted: item.encrypted_content,
                    signature: None,
                });
            }
            "function_call" => {
                let item: FunctionCallItem = parse(value, path)?;
                let name = match &item.namespace {
                    Some(namespace) => flat_name(namespace, &item.name),
                    None => item.name,
                };
                self.push_assistant(Part::ToolCall {
                    id: item.call_id,
                    name,
                    arguments: item.arguments,
                    kind: ToolKind::Function,
                });
            }
            "custom_tool_call" => {
                let item: CustomToolCallItem = parse(value, path)?;
                let name = match &item.namespace {
                    Some(namespace) => flat_name(namespace, &item.name),
                    None => item.name,
                };
                let kind = match tools.iter().find(|t| t.name == name) {
                    Some(Tool {
                        kind: kind @ ToolKind::Custom { .. },
                        ..
                    }) => kind.clone(),
                    _ => ToolKind::Custom { format: None },
                };
                self.push_assistant(Part::ToolCall {
                    id: item.call_id,
                    name,
                    arguments: item.input,
                    kind,
                });
            }
            "function_call_output" | "custom_tool_call_output" => {
                let item: CallOutputItem = parse(value, path)?;
                let (content, images) = call_output(item.output, &format!("{path}.output"))?;
                self.push_tool_result(item.call_id, content, images);
            }
            other => {
                return Err(Error::Invalid(format!(
                    "unsupported input item type `{other}` at `{path}`"
                )));
            }
        }
        Ok(())
    }
}

/// The parts of a message's `content`: a string or a list of content parts.
fn message_parts(content: Value, path: &str) -> Result<Vec<Part>> {
    match content {
        Value::String(text) => Ok(vec![Part::Text(text)]),
        Value::Array(raw) => {
            let mut parts = Vec::with_capacity(raw.len());
            for (index, value) in raw.into_iter().enumerate() {
                let path = format!("{path}[{index}]");
                let part = match parse::<ContentPart>(value, &path)? {
                    ContentPart::InputText { text } | ContentPart::OutputText { text } => {
                        Part::Text(text)
                    }
                    ContentPart::Refusal { refusal } => Part::Text(refusal),
                    ContentPart::InputImage { image_url } => Part::Image {
                        url: image_url.ok_or_else(|| Error::Json {
                            path: format!("{path}.image_url"),
                            message: "images by `file_id` are not supported; send an `image_url`"
                                .to_owned(),
                        })?,
                    },
                };
                parts.push(part);
            }
            Ok(parts)
        }
        _ => Err(Error::Json {
            path: path.to_owned(),
            message: "expected a string or an array of content parts".to_owned(),
        }),
    }
}

/// The text of a tool output and the images it carries.
fn call_output(output: Value, path: &str) -> Result<(String, Vec<Part>)> {
    match output {
        Value::String(text) => Ok((text, Vec::new())),
        Value::Array(raw) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for (index, value) in raw.into_iter().enumerate() {
                let path = format!("{path}[{index}]");
                match parse::<OutputPart>(value, &path)? {
                    OutputPart::InputText { text } | OutputPart::OutputText { text } => {
                        texts.push(text);
                    }
                    OutputPart::InputImage { image_url } => images.push(Part::Image {
                        url: image_url.ok_or_else(|| Error::Json {
                            path: format!("{path}.image_url"),
                            message: "images by `file_id` are not supported; send an `image_url`"
                                .to_owned(),
                        })?,
                    }),
                }
            }
            let mut text = texts.join("\n");
            if !images.is_empty() {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str("(the image output follows in the next message)");
            }
            Ok((text, images))
        }
        _ => Err(Error::Json {
            path: path.to_owned(),
            message: "expected a string or an array of content parts".to_owned(),
        }),
    }
}
