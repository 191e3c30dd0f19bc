//! Upstream model providers behind one object-safe [`Provider`] trait.
//!
//! [`HttpProvider`] speaks to OpenAI-compatible servers (OpenAI, Cerebras, vLLM, SGLang, llama.cpp server,
//! Ollama) and to Anthropic, translating the canonical request with `tandem-translate`.
//! Streams are pulled lazily: nothing is buffered beyond one SSE event, and dropping the returned stream
//! drops the HTTP response, which closes the upstream connection at once (an interrupted turn stops paying).
//!
//! Architecture invariant: providers do not govern (no policy, no DLP, no budgets) and never log bodies.

mod error;
mod http;

use std::pin::Pin;

use futures::Stream;
use tandem_protocol::{ChatRequest, ChatResponse, StreamEvent};

pub use error::{Error, Result};
pub use http::{HttpProvider, HttpProviderConfig, UpstreamKind};

/// A stream of canonical events from an upstream; ends after the last event or the first error.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent>> + Send>>;

/// An upstream that can answer canonical chat requests.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The configured provider name (used in `provider/model` names and records).
    fn name(&self) -> &str;

    /// The wire API's `gen_ai.provider.name` for traces (`openai`, `anthropic`); empty when not known.
    fn api_name(&self) -> &'static str {
        ""
    }

    /// Host and port of the upstream, for `server.address` and `server.port` in traces.
    fn address(&self) -> Option<(&str, u16)> {
        None
    }

    /// Answer without streaming.
    async fn complete(&self, req: &ChatRequest, upstream_model: &str) -> Result<ChatResponse>;

    /// Answer as a stream. Returns once the upstream has accepted the request (status and headers read).
    async fn stream(&self, req: &ChatRequest, upstream_model: &str) -> Result<EventStream>;
}
