//! Parsing of the behaviour options carried in the request's `model` string (`name?k=v&k=v`).

#[cfg(test)]
mod tests;

use std::time::Duration;

/// What the model string asked for; every field is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Options {
    pub(crate) tokens: Option<Tokens>,
    pub(crate) rate: Option<f64>,
    pub(crate) delay: Duration,
    pub(crate) first_token: Duration,
    pub(crate) status: Option<u16>,
    pub(crate) fault: Option<Fault>,
    pub(crate) bytes: Option<usize>,
    pub(crate) tool: Option<ToolOption>,
    /// Answer with this text, in 3-character chunks.
    pub(crate) say: Option<String>,
    /// Answer with the last user message's text, in 3-character chunks.
    pub(crate) echo: bool,
    /// One scripted answer per turn, chosen by how many assistant messages the conversation has.
    pub(crate) turns: Option<Vec<Turn>>,
}

/// One scripted turn of the `turns` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Answer with this text.
    Say(String),
    /// Answer with these tool calls.
    Tools(Vec<ToolOption>),
}

/// Parses `turns=[{"say": "…"}, {"tool": "name", "args": {…}}, {"tools": [{"name", "args"}…]}]`.
fn parse_turns(value: &str) -> Result<Vec<Turn>, String> {
    let bad = |why: &str| format!("model option `turns`: {why}");
    let list: Vec<serde_json::Value> =
        serde_json::from_str(value).map_err(|e| bad(&e.to_string()))?;
    if list.is_empty() {
        return Err(bad("needs at least one turn"));
    }
    let tool = |v: &serde_json::Value, name_key: &str| -> Result<ToolOption, String> {
        let name = v[name_key]
            .as_str()
            .ok_or_else(|| bad("a tool needs a name"))?;
        Ok(ToolOption {
            name: name.to_owned(),
            args: v
                .get("args")
                .map_or_else(|| "{}".to_owned(), serde_json::Value::to_string),
        })
    };
    list.iter()
        .map(|turn| {
            if let Some(text) = turn["say"].as_str() {
                Ok(Turn::Say(text.to_owned()))
            } else if turn.get("tool").is_some() {
                Ok(Turn::Tools(vec![tool(turn, "tool")?]))
            } else if let Some(tools) = turn["tools"].as_array() {
                tools
                    .iter()
                    .map(|t| tool(t, "name"))
                    .collect::<Result<_, _>>()
                    .map(Turn::Tools)
            } else {
                Err(bad(
                    "each turn is {\"say\"}, {\"tool\", \"args\"} or {\"tools\": [...]}",
                ))
            }
        })
        .collect()
}

/// The `tokens` option: a count, or the configured default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tokens {
    Count(u32),
    Default,
}

/// A scripted stream fault, triggered after `after` chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) after: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Reset,
    Stall,
    Malformed,
    Truncate,
}

/// The `tool=NAME&args=JSON` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToolOption {
    pub(crate) name: String,
    pub(crate) args: String,
}

/// Parses the options of a model string; the message of the error is meant for the client.
pub(crate) fn parse(model: &str) -> Result<Options, String> {
    let mut options = Options::default();
    let Some((_, query)) = model.split_once('?') else {
        return Ok(options);
    };
    let mut args = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.as_ref();
        match key.as_ref() {
            "tokens" if value.is_empty() => options.tokens = Some(Tokens::Default),
            "tokens" => options.tokens = Some(Tokens::Count(number(&key, value)?)),
            "rate" => {
                let rate: f64 = number(&key, value)?;
                if !rate.is_finite() || rate < 0.0 {
                    return Err(format!(
                        "model option `rate` must be a finite number >= 0, got `{value}`"
                    ));
                }
                options.rate = Some(rate);
            }
            "delay_ms" => options.delay = Duration::from_millis(number(&key, value)?),
            "first_token_ms" => options.first_token = Duration::from_millis(number(&key, value)?),
            "status" => {
                let status: u16 = number(&key, value)?;
                if !(400..=599).contains(&status) {
                    return Err(format!(
                        "model option `status` must be within 400..=599, got {status}"
                    ));
                }
                options.status = Some(status);
            }
            "reset_after" => set_fault(&mut options, FaultKind::Reset, number(&key, value)?)?,
            "stall_after" => set_fault(&mut options, FaultKind::Stall, number(&key, value)?)?,
            "malformed_after" => {
                set_fault(&mut options, FaultKind::Malformed, number(&key, value)?)?
            }
            "truncate_after" => set_fault(&mut options, FaultKind::Truncate, number(&key, value)?)?,
            "bytes" => options.bytes = Some(number(&key, value)?),
            "tool" if value.is_empty() => return Err("model option `tool` needs a name".to_owned()),
            "tool" => {
                options.tool = Some(ToolOption {
                    name: value.to_owned(),
                    args: String::new(),
                });
            }
            "args" => args = Some(value.to_owned()),
            "say" => options.say = Some(value.to_owned()),
            "echo" => options.echo = true,
            "turns" => options.turns = Some(parse_turns(value)?),
            other => return Err(format!("unknown model option `{other}`")),
        }
    }
    match (&mut options.tool, args) {
        (Some(tool), args) => tool.args = args.unwrap_or_else(|| "{}".to_owned()),
        (None, Some(_)) => return Err("model option `args` needs `tool`".to_owned()),
        (None, None) => {}
    }
    Ok(options)
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("model option `{key}` has an invalid value `{value}`"))
}

fn set_fault(options: &mut Options, kind: FaultKind, after: u32) -> Result<(), String> {
    if options.fault.is_some() {
        return Err("at most one of `reset_after`, `stall_after`, `malformed_after`, `truncate_after` may be given".to_owned());
    }
    options.fault = Some(Fault { kind, after });
    Ok(())
}
