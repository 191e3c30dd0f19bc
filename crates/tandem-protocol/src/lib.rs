//! Tandem's vocabulary: the canonical chat request, response and stream events that every wire format
//! (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages) is translated to and from.
//!
//! Architecture invariant: this crate depends on serde and serde_json only and holds no logic beyond
//! small constructors and accessors.

mod canonical;
mod error;

pub use canonical::{
    ChatRequest, ChatResponse, FinishReason, Message, Part, ReasoningEffort, Role, StreamEvent,
    Tool, ToolChoice, ToolKind, Usage,
};
pub use error::ErrorKind;
