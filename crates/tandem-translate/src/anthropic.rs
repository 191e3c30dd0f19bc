//! Anthropic Messages API ↔ canonical model (client side and upstream side).
//!
//! Client side: [`decode_request`] reads `POST /v1/messages` bodies as Claude Code and the Anthropic SDKs
//! send them, strictly at the top level; [`encode_response`], [`Encoder`] and [`error_body`] answer in
//! Anthropic's shapes, echoing the client's model name and Tandem's ids.
//! Upstream side: [`encode_request`] builds the body for an Anthropic (or Anthropic-compatible) upstream;
//! [`decode_response`] and [`Decoder`] read its answers.
//!
//! Tool results live in canonical `Role::Tool` messages, so a user turn carrying `tool_result` blocks
//! splits into one tool message per result followed by a user message for any remaining text and images.
//! Thinking is kept with its signature and replayed only to Anthropic; reasoning without a signature
//! (from another backend, or `redacted_thinking`) is never forwarded upstream.

mod request;
mod response;
mod stream;
mod wire;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response, error_body};
pub use stream::{Decoder, Encoder};

#[cfg(test)]
mod tests;
