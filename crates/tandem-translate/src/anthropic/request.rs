//! Requests: Anthropic Messages body → canonical (client side) and canonical → Anthropic body (upstream side).

use serde_json::{Map, Value, json};
use tandem_protocol::{
    ChatRequest, Message, Part, ReasoningEffort, Role, Tool, ToolChoice, ToolKind,
};

use crate::anthropic::wire::{
    Block, Content, ImageSource, InMessage, InRole, InTool, InToolChoice, Request, Thinking,
};
use crate::{Error, Result, json};

/// Output limit sent upstream when the client gave none (Anthropic requires one).
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Thinking budgets sent upstream for each effort; [`effort_for_budget`] maps them back to the same effort.
const LOW_BUDGET: u32 = 2048;
const MEDIUM_BUDGET: u32 = 8192;
const HIGH_BUDGET: u32 = 24_576;
/// The smallest thinking budget Anthropic accepts.
const MIN_BUDGET: u32 = 1024;

/// Decode a client's `POST /v1/messages` body.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest> {
    let wire: Request = json::from_slice(body)?;

    if wire
        .mcp_servers
        .as_ref()
        .is_some_and(|servers| !servers.is_empty())
    {
        return Err(Error::Invalid(
            "`mcp_servers` is not supported: declare the MCP tools as client tools instead"
                .to_owned(),
        ));
    }

    let mut messages = Vec::new();
    match wire.system {
        Some(Content::Text(text)) if !text.is_empty() => {
            messages.push(Message::text(Role::System, text));
        }
        None | Some(Content::Text(_)) => {}
        Some(Content::Blocks(blocks)) => {
            // One canonical message per block keeps the blocks apart (Claude Code's first block is its
            // identity line, which an Anthropic upstream may check on its own).
            for (i, block) in blocks.into_iter().enumerate() {
                match block {
                    Block::Text { text } => messages.push(Message::text(Role::System, text)),
                    other => {
                        return Err(Error::Invalid(format!(
                            "unsupported content block type `{}` in `system[{i}]`: only `text` blocks are allowed",
                            block_type(&other)
                        )));
                    }
                }
            }
        }
    }
    for (i, message) in wire.messages.into_iter().enumerate() {
        decode_message(i, message, &mut messages)?;
    }

    let mut tools = Vec::new();
    for (i, tool) in wire.tools.unwrap_or_default().into_iter().enumerate() {
        tools.push(decode_tool(i, tool)?);
    }

    let (tool_choice, disable_parallel) = match wire.tool_choice {
        None => (ToolChoice::Auto, None),
        Some(InToolChoice::Auto {
            disable_parallel_tool_use,
        }) => (ToolChoice::Auto, disable_parallel_tool_use),
        Some(InToolChoice::Any {
            disable_parallel_tool_use,
        }) => (ToolChoice::Required, disable_parallel_tool_use),
        Some(InToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        }) => (ToolChoice::Named(name), disable_parallel_tool_use),
        Some(InToolChoice::None) => (ToolChoice::None, None),
    };

    let effort_from_config = wire
        .output_config
        .as_ref()
        .and_then(|config| config.effort.as_deref())
        .and_then(parse_effort);
    let effort_from_thinking = match wire.thinking {
        Some(Thinking::Enabled { budget_tokens }) => Some(effort_for_budget(budget_tokens)),
        Some(Thinking::Disabled | Thinking::Adaptive) | None => None,
    };

    let mut openai_extra = Map::new();
    // Both spellings are checked, so one is never passed over unread; `output_config.format` wins.
    let format = wire
        .output_config
        .and_then(|config| config.format)
        .map(response_format)
        .transpose()?;
    let beta_format = wire.output_format.map(response_format).transpose()?;
    if let Some(format) = format.or(beta_format) {
        openai_extra.insert("response_format".to_owned(), format);
    }

    let user_id = wire.metadata.and_then(|metadata| metadata.user_id);
    let mut req = ChatRequest::new(wire.model, messages);
    req.tools = tools;
    req.tool_choice = tool_choice;
    req.parallel_tool_calls = disable_parallel.map(|disable| !disable);
    req.max_output_tokens = Some(wire.max_tokens);
    req.temperature = wire.temperature;
    req.top_p = wire.top_p;
    req.stop = wire.stop_sequences.unwrap_or_default();
    req.reasoning_effort = effort_from_config.or(effort_from_thinking);
    req.stream = wire.stream.unwrap_or(false);
    // Anthropic streams always end with usage.
    req.stream_usage = true;
    req.user = user_id.clone();
    req.session = user_id;
    req.openai_extra = openai_extra;
    Ok(req)
}

/// The effort a thinking budget stands for: under 4k tokens low, under 16k medium, else high.
fn effort_for_budget(budget: u32) -> ReasoningEffort {
    match budget {
        0..4096 => ReasoningEffort::Low,
        4096..16_384 => ReasoningEffort::Medium,
        _ => ReasoningEffort::High,
    }
}

/// `output_config.effort`: `low`, `medium`, `high`, `xhigh`, `max`; unknown values are ignored.
fn parse_effort(effort: &str) -> Option<ReasoningEffort> {
    match effort {
        "max" => Some(ReasoningEffort::High),
        other => ReasoningEffort::parse(other),
    }
}

/// Anthropic structured output (`{"type":"json_schema","schema":...}`) as an OpenAI `response_format`.
fn response_format(format: Value) -> Result<Value> {
    let kind = format.get("type").and_then(Value::as_str);
    let schema = format.get("schema");
    match (kind, schema) {
        (Some("json_schema"), Some(schema)) => Ok(json!({
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema},
        })),
        _ => Err(Error::Invalid(
            "unsupported output format: only `{\"type\": \"json_schema\", \"schema\": ...}` is supported"
                .to_owned(),
        )),
    }
}

fn block_type(block: &Block) -> &str {
    match block {
        Block::Text { .. } => "text",
        Block::Image { .. } => "image",
        Block::ToolUse { .. } => "tool_use",
        Block::ToolResult { .. } => "tool_result",
        Block::Thinking { .. } => "thinking",
        Block::RedactedThinking { .. } => "redacted_thinking",
        Block::Unsupported(kind) => kind,
    }
}

fn decode_message(i: usize, message: InMessage, out: &mut Vec<Message>) -> Result<()> {
    let role = match message.role {
        InRole::User => Role::User,
        InRole::Assistant => Role::Assistant,
    };
    let blocks = match message.content {
        Content::Text(text) => {
            out.push(Message::text(role, text));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    // Tool results become `Role::Tool` messages, in order, ahead of the user's own text and images.
    let mut parts = Vec::new();
    let mut tool_results = 0;
    for (j, block) in blocks.into_iter().enumerate() {
        let at = || format!("`messages[{i}].content[{j}]`");
        match (role, block) {
            (_, Block::Text { text }) => parts.push(Part::Text(text)),
            (Role::User, Block::Image { source }) => parts.push(Part::Image {
                url: image_url(source, &at())?,
            }),
            (
                Role::User,
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                },
            ) => {
                let mut text = String::new();
                match content {
                    None => {}
                    Some(Content::Text(content)) => text = content,
                    Some(Content::Blocks(blocks)) => {
                        for (k, block) in blocks.into_iter().enumerate() {
                            match block {
                                Block::Text { text: piece } => {
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(&piece);
                                }
                                // The canonical tool result is text only: images travel in the user
                                // message that follows the results.
                                Block::Image { source } => parts.push(Part::Image {
                                    url: image_url(source, &format!("{}.content[{k}]", at()))?,
                                }),
                                other => {
                                    return Err(Error::Invalid(format!(
                                        "unsupported content block type `{}` in tool result {}.content[{k}]",
                                        block_type(&other),
                                        at()
                                    )));
                                }
                            }
                        }
                    }
                }
                tool_results += 1;
                out.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult {
                        call_id: tool_use_id,
                        content: text,
                        is_error,
                    }],
                });
            }
            (Role::Assistant, Block::ToolUse { id, name, input }) => parts.push(Part::ToolCall {
                id,
                name,
                arguments: input.to_string(),
                kind: ToolKind::Function,
            }),
            (
                Role::Assistant,
                Block::Thinking {
                    thinking,
                    signature,
                },
            ) => parts.push(Part::Reasoning {
                id: None,
                text: thinking,
                encrypted: None,
                signature: (!signature.is_empty()).then_some(signature),
            }),
            (Role::Assistant, Block::RedactedThinking { data }) => parts.push(Part::Reasoning {
                id: None,
                text: String::new(),
                encrypted: Some(data),
                signature: None,
            }),
            (_, Block::Unsupported(kind)) => {
                return Err(Error::Invalid(format!(
                    "unsupported content block type `{kind}` at {}",
                    at()
                )));
            }
            (_, other) => {
                return Err(Error::Invalid(format!(
                    "`{}` blocks are not allowed in {} messages ({})",
                    block_type(&other),
                    role.as_str(),
                    at()
                )));
            }
        }
    }
    if !parts.is_empty() || tool_results == 0 {
        out.push(Message { role, parts });
    }
    Ok(())
}

fn image_url(source: ImageSource, at: &str) -> Result<String> {
    match (
        source.kind.as_str(),
        source.media_type,
        source.data,
        source.url,
    ) {
        ("base64", Some(media_type), Some(data), _) => {
            Ok(format!("data:{media_type};base64,{data}"))
        }
        ("url", _, _, Some(url)) => Ok(url),
        (kind, ..) => Err(Error::Invalid(format!(
            "unsupported image source `{kind}` at {at}: use `base64` or `url`"
        ))),
    }
}

fn decode_tool(i: usize, tool: InTool) -> Result<Tool> {
    if let Some(kind) = tool.kind.as_deref().filter(|kind| *kind != "custom") {
        return Err(Error::Invalid(format!(
            "unsupported tool type `{kind}` (`tools[{i}]`, `{}`): only client tools can be routed",
            tool.name
        )));
    }
    let Some(schema) = tool.input_schema else {
        return Err(Error::Invalid(format!(
            "tool `{}` (`tools[{i}]`) has no `input_schema`",
            tool.name
        )));
    };
    Ok(Tool {
        name: tool.name,
        namespace: None,
        description: tool.description,
        parameters: Some(schema),
        strict: tool.strict,
        kind: ToolKind::Function,
    })
}

/// Build the body for an Anthropic upstream.
///
/// System and developer messages are hoisted into `system`; tool results become `tool_result` blocks in
/// user turns; consecutive turns of the same role are merged. Reasoning is forwarded only when it carries
/// an Anthropic signature. Prompt-cache breakpoints are set on the tools, the system prompt and the last
/// turn, because clients that reach Anthropic through Tandem lose their own `cache_control` markers.
pub fn encode_request(req: &ChatRequest, upstream_model: &str) -> Value {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &req.messages {
        match message.role {
            Role::System | Role::Developer => {
                let text = message.joined_text();
                if !text.is_empty() {
                    system.push(json!({"type": "text", "text": text}));
                }
            }
            Role::User | Role::Tool => push_turn(&mut turns, "user", encode_parts(message)),
            Role::Assistant => push_turn(&mut turns, "assistant", encode_parts(message)),
        }
    }
    // Anthropic wants a user turn's tool results ahead of its other blocks.
    for (role, blocks) in &mut turns {
        if *role == "user" {
            blocks.sort_by_key(|block| block["type"] != "tool_result");
        }
    }
    if let Some(block) = turns
        .last_mut()
        .and_then(|(_, blocks)| blocks.iter_mut().rev().find(|b| b["type"] != "thinking"))
    {
        set_cache_breakpoint(block);
    }
    if let Some(block) = system.last_mut() {
        set_cache_breakpoint(block);
    }

    let mut tools: Vec<Value> = req.tools.iter().map(encode_tool).collect();
    if let Some(tool) = tools.last_mut() {
        set_cache_breakpoint(tool);
    }

    let forced_tool = matches!(req.tool_choice, ToolChoice::Required | ToolChoice::Named(_));
    let budget = match req.reasoning_effort {
        // Anthropic refuses thinking together with a forced tool choice, and in the middle of a tool
        // loop whose assistant turn has no thinking to replay.
        _ if forced_tool && !tools.is_empty() => None,
        _ if !thinking_allowed(&turns) => None,
        None | Some(ReasoningEffort::Minimal) => None,
        Some(ReasoningEffort::Low) => Some(LOW_BUDGET),
        Some(ReasoningEffort::Medium) => Some(MEDIUM_BUDGET),
        Some(ReasoningEffort::High) => Some(HIGH_BUDGET),
    };
    let (max_tokens, budget) = match (req.max_output_tokens, budget) {
        (None, None) => (DEFAULT_MAX_TOKENS, None),
        (None, Some(budget)) => (DEFAULT_MAX_TOKENS + budget, Some(budget)),
        (Some(max), budget) => {
            // The budget counts against `max_tokens` and must stay below it.
            let budget = budget
                .map(|budget| budget.min(max.saturating_sub(1)))
                .filter(|budget| *budget >= MIN_BUDGET);
            (max, budget)
        }
    };

    let mut body = Map::new();
    body.insert("model".to_owned(), json!(upstream_model));
    body.insert("max_tokens".to_owned(), json!(max_tokens));
    if !system.is_empty() {
        body.insert("system".to_owned(), Value::Array(system));
    }
    let messages = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    body.insert("messages".to_owned(), Value::Array(messages));
    if !tools.is_empty() {
        let mut choice = match &req.tool_choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Named(name) => json!({"type": "tool", "name": name}),
        };
        if req.parallel_tool_calls == Some(false) && req.tool_choice != ToolChoice::None {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        body.insert("tools".to_owned(), Value::Array(tools));
        body.insert("tool_choice".to_owned(), choice);
    }
    match budget {
        Some(budget) => {
            // With thinking on, Anthropic only accepts its default sampling settings.
            body.insert(
                "thinking".to_owned(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        None => {
            // Recent Claude models refuse `temperature` and `top_p` together; temperature wins.
            if let Some(temperature) = req.temperature {
                body.insert("temperature".to_owned(), json!(temperature));
            } else if let Some(top_p) = req.top_p {
                body.insert("top_p".to_owned(), json!(top_p));
            }
        }
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".to_owned(), json!(req.stop));
    }
    if let Some(user) = &req.user {
        body.insert("metadata".to_owned(), json!({"user_id": user}));
    }
    if let Some(schema) = req
        .openai_extra
        .get("response_format")
        .filter(|format| format["type"] == "json_schema")
        .and_then(|format| format["json_schema"].get("schema"))
    {
        body.insert(
            "output_config".to_owned(),
            json!({"format": {"type": "json_schema", "schema": schema}}),
        );
    }
    body.insert("stream".to_owned(), json!(req.stream));
    Value::Object(body)
}

/// Whether Anthropic accepts thinking for these turns. During a tool loop (the last user turn carries
/// tool results) the assistant turn before it must start with a thinking block, which turns produced by
/// another backend, or by clients that drop reasoning, lack. A trailing assistant turn (prefill) never
/// mixes with thinking.
fn thinking_allowed(turns: &[(&'static str, Vec<Value>)]) -> bool {
    match turns {
        [.., (_, assistant), ("user", user)] if user.iter().any(|b| b["type"] == "tool_result") => {
            assistant.first().is_some_and(|b| b["type"] == "thinking")
        }
        [.., ("assistant", _)] => false,
        _ => true,
    }
}

fn set_cache_breakpoint(block: &mut Value) {
    if let Value::Object(map) = block {
        map.insert("cache_control".to_owned(), json!({"type": "ephemeral"}));
    }
}

fn push_turn(turns: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((last, existing)) if *last == role => existing.extend(blocks),
        _ => turns.push((role, blocks)),
    }
}

fn encode_parts(message: &Message) -> Vec<Value> {
    let mut blocks = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text(text) => {
                // Anthropic refuses empty text blocks.
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
            Part::Image { url } => {
                blocks.push(json!({"type": "image", "source": image_source(url)}))
            }
            Part::ToolCall {
                id,
                name,
                arguments,
                kind,
            } => blocks.push(json!({
                "type": "tool_use",
                "id": id,
                "name": name,
                "input": tool_input(arguments, kind),
            })),
            Part::ToolResult {
                call_id,
                content,
                is_error,
            } => {
                let mut block = json!({"type": "tool_result", "tool_use_id": call_id});
                if !content.is_empty() {
                    block["content"] = json!(content);
                }
                if *is_error {
                    block["is_error"] = json!(true);
                }
                blocks.push(block);
            }
            Part::Reasoning {
                text,
                signature: Some(signature),
                ..
            } if message.role == Role::Assistant && !signature.is_empty() => {
                blocks.push(json!({"type": "thinking", "thinking": text, "signature": signature}));
            }
            // Reasoning from another backend (or without a signature) cannot be verified upstream.
            Part::Reasoning { .. } => {}
        }
    }
    blocks
}

fn image_source(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return json!({"type": "base64", "media_type": media_type, "data": data});
    }
    json!({"type": "url", "url": url})
}

/// The `input` object of a `tool_use` block. Anthropic needs an object: custom-tool text and anything
/// that is not a JSON object are wrapped as `{"input": text}`, matching the schema [`encode_tool`] declares.
pub(super) fn tool_input(arguments: &str, kind: &ToolKind) -> Value {
    if let ToolKind::Custom { .. } = kind {
        return json!({"input": arguments});
    }
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({"input": arguments}),
    }
}

fn encode_tool(tool: &Tool) -> Value {
    let mut out = Map::new();
    out.insert("name".to_owned(), json!(tool.name));
    match &tool.kind {
        ToolKind::Function => {
            if let Some(description) = &tool.description {
                out.insert("description".to_owned(), json!(description));
            }
            let mut schema = match &tool.parameters {
                Some(Value::Object(schema)) => schema.clone(),
                _ => Map::new(),
            };
            schema.entry("type").or_insert_with(|| json!("object"));
            if schema.get("type") == Some(&json!("object")) {
                schema.entry("properties").or_insert_with(|| json!({}));
            }
            out.insert("input_schema".to_owned(), Value::Object(schema));
            if tool.strict == Some(true) {
                out.insert("strict".to_owned(), json!(true));
            }
        }
        ToolKind::Custom { format } => {
            let mut description = tool.description.clone().unwrap_or_default();
            let definition = format
                .as_ref()
                .and_then(|format| format.get("definition"))
                .and_then(Value::as_str);
            if let Some(definition) = definition {
                let syntax = format
                    .as_ref()
                    .and_then(|format| format.get("syntax"))
                    .and_then(Value::as_str)
                    .unwrap_or("given");
                description.push_str(&format!(
                    "\n\nThe `input` string must follow this {syntax} grammar:\n```\n{definition}\n```"
                ));
            }
            if !description.is_empty() {
                out.insert("description".to_owned(), json!(description.trim_start()));
            }
            out.insert(
                "input_schema".to_owned(),
                json!({
                    "type": "object",
                    "properties": {"input": {"type": "string"}},
                    "required": ["input"],
                }),
            );
        }
    }
    Value::Object(out)
}
