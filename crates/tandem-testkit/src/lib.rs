//! A scripted, deterministic imitation of an OpenAI-compatible and an Anthropic upstream, for tests and benchmarks only.
//!
//! The server answers `POST /v1/chat/completions`, `GET /v1/models`, `POST /v1/messages` and `GET /healthz`.
//! It also serves `GET /testkit/stats` ([`Stats`] as JSON) and `GET /testkit/requests`
//! (the captured requests as a JSON array of `{"method", "path", "headers", "body"}`) for out-of-process tests.
//!
//! # Choosing a behaviour
//!
//! Behaviour is chosen by the request's `model` string, `name?k=v&k=v` (query part optional, values
//! form-urlencoded, so `+` is a space and a literal `+` is `%2B`).
//! Answers echo the full model string, options included.
//!
//! - `tokens=N`: answer with `N` text tokens, token `i` being `"tok{i} "`.
//!   A bare `tokens` (no value) means [`Config::default_tokens`] tokens.
//! - `rate=R`: tokens per second for this request (overrides [`Config::tokens_per_sec`]; `0` is full speed).
//! - `delay_ms=N`: wait `N` ms before sending the response headers.
//! - `first_token_ms=N`: send the headers at once, wait `N` ms before the first token.
//! - `status=CODE` (400 to 599): answer with that status and an error body in the API's error shape.
//! - `reset_after=N`: stream `N` tokens, then abort the connection (no terminal chunk).
//! - `stall_after=N`: stream `N` tokens, then send nothing more until the client goes away.
//! - `malformed_after=N`: stream `N` tokens, then a `data: {not json` event, then end the body.
//! - `truncate_after=N`: stream `N` tokens, then end the body cleanly without the format's terminal events.
//! - `bytes=N`: one single text token of `N` bytes (`"x"` repeated).
//! - `tool=NAME&args=JSON`: answer with one tool call (`args` defaults to `{}`).
//! - `say=TEXT`: answer with TEXT, streamed in 3-character chunks (so words split across events).
//! - `echo`: answer with the last user message's text, in 3-character chunks.
//! - `turns=JSON`: one answer per turn, `[{"say": "…"}, {"tool": "name", "args": {…}}, {"tools": [{"name", "args"}…]}]`;
//!   the answer is the entry at the number of assistant messages in the conversation (the last one repeats).
//!
//! Unknown options and malformed values are answered with HTTP 400, so typos in tests fail loudly.
//! At most one of the four fault options may be given.
//! A fault point past the end of the answer triggers just before the terminal events.
//! Fault points count streamed chunks: text tokens, tool-call starts and tool-argument pieces.
//!
//! Non-streaming requests honour `status`, `delay_ms`, `first_token_ms` (as an extra delay), `rate` (the whole
//! answer is delayed by its token count divided by the rate), `tokens`, `bytes` and `tool`.
//! For them, `reset_after` closes the connection without a response, `stall_after` never answers,
//! `malformed_after` answers 200 with a body that is not JSON, and `truncate_after` answers a cut JSON body.
//!
//! # Scripted default
//!
//! Without `tokens`, `bytes` or `tool` the conversation decides:
//!
//! 1. If the last message is a tool result (OpenAI `role: "tool"`; Anthropic a user message with a `tool_result`
//!    block), the answer is `done: ` followed by the first line of the tool output (trimmed, at most 200 chars).
//!    For parallel results the first result of the trailing run is used, in both APIs.
//! 2. Else each line `testkit-tool: NAME ARGS` in the last user message's text becomes one tool call, in order.
//! 3. Else the answer is `hello from testkit`, streamed as the three tokens `hello`, ` from`, ` testkit`.
//!
//! Answers made of words are streamed one word per chunk, each word but the first carrying its leading space.
//!
//! # Usage numbers
//!
//! The numbers are deterministic so that gateway tests can assert exact pass-through:
//!
//! - `prompt_tokens` / `input_tokens` = total characters (Unicode scalar values) of all message text, divided by
//!   four and rounded up, at least 1.
//!   Message text is string content, `text` parts or blocks, and tool-result content (string or text blocks);
//!   for Anthropic the top-level `system` text counts too.
//!   Tool-call arguments and images do not count.
//! - `completion_tokens` / `output_tokens` = text tokens emitted, plus for each tool call
//!   `1 + ceil(arguments.len() / 4)` (length in bytes).
//! - `max_tokens` / `max_completion_tokens` smaller than the text answer cut it at that many tokens, and the
//!   finish reason becomes `length` / `max_tokens`.
//!
//! # Counters
//!
//! [`Stats::requests`] counts requests to the two completion endpoints.
//! A stream is *completed* when the server reaches the scripted end of it, including a scripted fault, and
//! *cancelled* when the client goes away before that.
//! [`Stats::tokens_sent`] counts streamed chunks as the fault points do.

mod anthropic;
mod error;
mod openai;
mod options;
mod script;
mod server;
mod stream;

use std::future::Future;
use std::net::SocketAddr;

pub use crate::error::{Error, Result};
pub use crate::server::{Server, spawn};

/// How a test upstream listens and paces its answers.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to bind; use port 0 for an ephemeral port.
    pub listen: SocketAddr,
    /// Default pace of streamed chunks in tokens per second; `0.0` is full speed.
    pub tokens_per_sec: f64,
    /// Number of tokens answered for a bare `tokens` model option.
    pub default_tokens: u32,
}

/// Counters of a running server, also served as JSON at `GET /testkit/stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Requests to `/v1/chat/completions` and `/v1/messages`, including rejected ones.
    pub requests: u64,
    /// Streaming responses whose headers were produced.
    pub streams_started: u64,
    /// Streams that reached their scripted end (a scripted fault included).
    pub streams_completed: u64,
    /// Streams whose client went away before their scripted end.
    pub streams_cancelled: u64,
    /// Streamed chunks: text tokens, tool-call starts and tool-argument pieces.
    pub tokens_sent: u64,
}

/// Serves until `shutdown` resolves; meant for the `tandem testkit` command.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    server::run(config, shutdown).await
}
