//! Deciding what to answer: model options first, then the scripted conversation rules, plus the usage numbers.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut as _, BytesMut};

use crate::options::{Options, Tokens};

/// The facts of a request's conversation that the scripted answers depend on, extracted per API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Conversation {
    /// Output of the first tool result of the trailing run of tool results, when the conversation ends with one.
    pub(crate) tool_result: Option<String>,
    /// Text of the last user message.
    pub(crate) last_user_text: String,
    /// Characters of all message text, for the prompt token count.
    pub(crate) prompt_chars: usize,
    /// Assistant messages so far: the turn the `turns` option answers.
    pub(crate) assistant_turns: usize,
}

/// A complete answer, before it is encoded for an API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) text: Option<Text>,
    pub(crate) tools: Vec<ToolCall>,
    pub(crate) finish: Finish,
    pub(crate) prompt_tokens: u64,
}

/// The text part of an answer, as a sequence of `len` tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text {
    source: Source,
    len: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// Token `i` is `"tok{i} "`.
    Counter,
    /// Token `i` is the `i`-th word.
    Words(Vec<String>),
    /// One token of this many `x` bytes.
    Bytes(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToolCall {
    /// Unique per server; rendered `call_<n>` or `toolu_<n>`.
    pub(crate) number: u64,
    pub(crate) name: String,
    /// Arguments as JSON text, passed through untouched.
    pub(crate) args: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    ToolCalls,
    Length,
}

const TOOL_LINE_PREFIX: &str = "testkit-tool:";
const TOOL_RESULT_MAX_CHARS: usize = 200;

/// Decides the answer to a request.
pub(crate) fn answer(
    options: &Options,
    conversation: &Conversation,
    max_tokens: Option<u64>,
    default_tokens: u32,
    call_numbers: &AtomicU64,
) -> Answer {
    let next_call = |name: &str, args: &str| ToolCall {
        number: call_numbers.fetch_add(1, Ordering::Relaxed),
        name: name.to_owned(),
        args: args.to_owned(),
    };
    let (text, tools) = if let Some(turns) = &options.turns {
        let turn = &turns[conversation.assistant_turns.min(turns.len() - 1)];
        match turn {
            crate::options::Turn::Say(say) => {
                let pieces = chunks(say, 3);
                let len = pieces.len();
                (Some((Source::Words(pieces), len)), Vec::new())
            }
            crate::options::Turn::Tools(list) => (
                None,
                list.iter().map(|t| next_call(&t.name, &t.args)).collect(),
            ),
        }
    } else if let Some(tool) = &options.tool {
        (None, vec![next_call(&tool.name, &tool.args)])
    } else if let Some(say) = options
        .say
        .as_ref()
        .or(options.echo.then_some(&conversation.last_user_text))
    {
        let pieces = chunks(say, 3);
        let len = pieces.len();
        (Some((Source::Words(pieces), len)), Vec::new())
    } else if let Some(bytes) = options.bytes {
        (Some((Source::Bytes(bytes), 1)), Vec::new())
    } else if let Some(tokens) = options.tokens {
        let count = match tokens {
            Tokens::Count(count) => count,
            Tokens::Default => default_tokens,
        };
        (Some((Source::Counter, count as usize)), Vec::new())
    } else if let Some(output) = &conversation.tool_result {
        (
            Some(words(&format!("done: {}", first_line(output)))),
            Vec::new(),
        )
    } else {
        let tools: Vec<ToolCall> = tool_lines(&conversation.last_user_text)
            .map(|(name, args)| next_call(name, args))
            .collect();
        match tools.is_empty() {
            true => (Some(words("hello from testkit")), Vec::new()),
            false => (None, tools),
        }
    };
    let mut finish = match tools.is_empty() {
        true => Finish::Stop,
        false => Finish::ToolCalls,
    };
    let text = text.map(|(source, natural)| {
        let limit = max_tokens.map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
        if natural > limit {
            finish = Finish::Length;
        }
        Text {
            source,
            len: natural.min(limit),
        }
    });
    Answer {
        text,
        tools,
        finish,
        prompt_tokens: prompt_tokens(conversation.prompt_chars),
    }
}

impl Answer {
    /// Completion tokens as documented in the crate docs.
    pub(crate) fn completion_tokens(&self) -> u64 {
        let text = self.text.as_ref().map_or(0, |text| text.len as u64);
        let tools: u64 = self
            .tools
            .iter()
            .map(|tool| 1 + tool.args.len().div_ceil(4) as u64)
            .sum();
        text + tools
    }
}

impl Text {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends token `i` as a JSON string literal.
    pub(crate) fn write_json_token(&self, i: usize, out: &mut BytesMut) {
        match &self.source {
            Source::Counter => {
                // Plain ASCII, so no escaping is needed.
                let _ = write!(out, "\"tok{i} \"");
            }
            Source::Words(words) => write_json_str(&words[i], out),
            Source::Bytes(n) => {
                out.reserve(n + 2);
                out.put_u8(b'"');
                out.put_bytes(b'x', *n);
                out.put_u8(b'"');
            }
        }
    }

    /// The whole text, for non-streaming answers.
    pub(crate) fn full(&self) -> String {
        match &self.source {
            Source::Counter => {
                let mut text = String::new();
                for i in 0..self.len {
                    let _ = write!(text, "tok{i} ");
                }
                text
            }
            Source::Words(words) => words[..self.len].concat(),
            Source::Bytes(n) => "x".repeat(if self.len == 0 { 0 } else { *n }),
        }
    }
}

impl ToolCall {
    /// The arguments split into two or three pieces at character boundaries, to exercise reassembly.
    pub(crate) fn arg_pieces(&self) -> Vec<&str> {
        let args = self.args.as_str();
        let count = args.chars().count();
        let parts = count.min(3);
        if parts <= 1 {
            return vec![args];
        }
        let mut pieces = Vec::with_capacity(parts);
        let mut rest = args;
        for part in (1..=parts).rev() {
            let take = rest.chars().count().div_ceil(part);
            let split = rest
                .char_indices()
                .nth(take)
                .map_or(rest.len(), |(at, _)| at);
            let (piece, tail) = rest.split_at(split);
            pieces.push(piece);
            rest = tail;
        }
        pieces
    }
}

/// Appends `text` as a JSON string literal.
pub(crate) fn write_json_str(text: &str, out: &mut BytesMut) {
    // Serializing a `str` into memory cannot fail.
    let _ = serde_json::to_writer((&mut *out).writer(), text);
}

/// `ceil(chars / 4)`, at least 1.
fn prompt_tokens(chars: usize) -> u64 {
    (chars.div_ceil(4) as u64).max(1)
}

/// Splits text into pieces of `n` characters.
fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// Splits text into tokens that start at each word, the leading space belonging to the word.
fn words(text: &str) -> (Source, usize) {
    let mut words = Vec::new();
    let mut start = 0;
    let mut previous_space = true;
    for (at, ch) in text.char_indices() {
        if ch == ' ' && !previous_space && at > 0 {
            words.push(text[start..at].to_owned());
            start = at;
        }
        previous_space = ch == ' ';
    }
    if start < text.len() {
        words.push(text[start..].to_owned());
    }
    let len = words.len();
    (Source::Words(words), len)
}

/// The first line of a tool output, trimmed and cut to 200 characters.
fn first_line(output: &str) -> &str {
    let line = output.trim().lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(TOOL_RESULT_MAX_CHARS) {
        Some((at, _)) => &line[..at],
        None => line,
    }
}

/// The `testkit-tool: NAME ARGS` lines of a message, as `(NAME, ARGS)`; ARGS defaults to `{}`.
fn tool_lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let rest = line.trim().strip_prefix(TOOL_LINE_PREFIX)?.trim();
        let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let args = args.trim();
        (!name.is_empty()).then_some((name, if args.is_empty() { "{}" } else { args }))
    })
}
