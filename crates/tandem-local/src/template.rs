//! The chat template: a conversation rendered into the prompt text the model was trained on.
//!
//! The Jinja template from the GGUF metadata (`tokenizer.chat_template`) is rendered with minijinja (with
//! Python-style string methods, as Hugging Face templates expect), with tools passed the way Hugging Face's
//! `apply_chat_template` passes them. Models without a template get ChatML.

use minijinja::{Environment, ErrorKind, Value as Jinja, context};
use serde_json::{Value, json};
use tandem_protocol::{Message, Part, Role, Tool, ToolKind};

use crate::error::{Error, Result};

/// ChatML, for models that carry no template.
const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A compiled chat template.
pub struct Template {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl Template {
    /// Compile `source` (or ChatML when `None`).
    pub fn new(source: Option<&str>, bos: String, eos: String) -> Result<Self> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<Jinja, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned("chat", source.unwrap_or(CHATML).to_owned())
            .map_err(|e| Error::Template(e.to_string()))?;
        Ok(Template { env, bos, eos })
    }

    /// The prompt for `messages` and `tools`, ending where the assistant's answer begins.
    pub fn render(&self, messages: &[Message], tools: &[Tool]) -> Result<String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Template(e.to_string()))?;
        let messages: Vec<Value> = messages.iter().map(message_json).collect();
        let tools: Vec<Value> = tools.iter().map(tool_json).collect();
        let ctx = context! {
            messages => Jinja::from_serialize(&messages),
            tools => if tools.is_empty() { Jinja::from(()) } else { Jinja::from_serialize(&tools) },
            add_generation_prompt => true,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
        };
        template
            .render(ctx)
            .map_err(|e| Error::Template(e.to_string()))
    }
}

/// A message as Hugging Face templates expect it.
fn message_json(message: &Message) -> Value {
    let role = match message.role {
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut tool_call_id = None;
    for part in &message.parts {
        match part {
            Part::Text(text) => content.push_str(text),
            Part::ToolCall {
                id,
                name,
                arguments,
                kind,
            } => {
                // A custom (free-text) tool is shown to the model as a function of one string `input`.
                let arguments: Value = match kind {
                    ToolKind::Custom { .. } => json!({ "input": arguments }),
                    ToolKind::Function => serde_json::from_str(arguments)
                        .unwrap_or_else(|_| Value::String(arguments.clone())),
                };
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}));
            }
            Part::ToolResult {
                call_id,
                content: c,
                ..
            } => {
                content.push_str(c);
                tool_call_id = Some(call_id.clone());
            }
            // Images cannot be shown to a text model; reasoning from another model is not replayed.
            Part::Image { .. } | Part::Reasoning { .. } => {}
        }
    }
    let mut out = json!({"role": role, "content": content});
    if !calls.is_empty() {
        out["tool_calls"] = Value::Array(calls);
    }
    if let Some(id) = tool_call_id {
        out["tool_call_id"] = Value::String(id);
    }
    out
}

fn tool_json(tool: &Tool) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description.clone().unwrap_or_default(),
            "parameters": tool.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {"input": {"type": "string"}}})),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_without_a_template() {
        let t = Template::new(None, String::new(), String::new()).unwrap();
        let prompt = t
            .render(
                &[
                    Message::text(Role::Developer, "Be brief."),
                    Message::text(Role::User, "hi"),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_tools_and_raise_exception() {
        let src = "{% if tools %}{% for t in tools %}{{ t.function.name | tojson }}{% endfor %}{% endif %}\
                   {% for m in messages %}{{ m.content.strip() }}{% if m.tool_calls %}{{ m.tool_calls[0].function.arguments | tojson }}{% endif %};{% endfor %}\
                   {% if messages | length > 3 %}{{ raise_exception('too long') }}{% endif %}";
        let t = Template::new(Some(src), "<s>".into(), "</s>".into()).unwrap();
        let tool = Tool {
            name: "exec".into(),
            namespace: None,
            description: None,
            parameters: None,
            strict: None,
            kind: tandem_protocol::ToolKind::Function,
        };
        let call = Message {
            role: Role::Assistant,
            parts: vec![Part::ToolCall {
                id: "c1".into(),
                name: "exec".into(),
                arguments: r#"{"cmd":"ls"}"#.into(),
                kind: tandem_protocol::ToolKind::Function,
            }],
        };
        let out = t
            .render(&[Message::text(Role::User, "  hi  "), call], &[tool])
            .unwrap();
        assert_eq!(out, r#""exec"hi;{"cmd":"ls"};"#);
        let err = t
            .render(&vec![Message::text(Role::User, "x"); 4], &[])
            .unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
    }
}
