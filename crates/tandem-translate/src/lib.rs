//! Sans-IO translation between the wire formats Tandem speaks and the canonical model in `tandem-protocol`.
//!
//! Each format module offers the same four directions, so any client API can sit in front of any upstream kind:
//! - `decode_request` (client side): raw body → [`ChatRequest`], strict, errors name the offending field;
//! - `encode_request` (upstream side): [`ChatRequest`] → JSON body for that upstream;
//! - `decode_response` / [`StreamDecoder`] implementations (upstream side): upstream answer → canonical;
//! - `encode_response` / [`StreamEncoder`] implementations (client side): canonical → client answer.
//!
//! Architecture invariant: no IO, no clock, no randomness; ids and timestamps come in through [`EncodeContext`].

pub mod anthropic;
mod error;
mod json;
pub mod openai_chat;
pub mod openai_responses;
pub mod sse;

pub use error::{Error, Result};
use tandem_protocol::{ChatRequest, ErrorKind, StreamEvent, Usage};

/// What a client-side encoder needs besides the canonical answer.
#[derive(Clone, Copy, Debug)]
pub struct EncodeContext<'a> {
    /// The request as the client sent it (its model name and declared tools are echoed back).
    pub request: &'a ChatRequest,
    /// Tandem's id for this exchange; each format adds its own prefix (`chatcmpl-`, `resp_`, `msg_`).
    pub id: &'a str,
    /// Unix seconds at which the exchange started.
    pub created: u64,
}

/// Turns upstream SSE events into canonical stream events.
pub trait StreamDecoder: Send {
    /// Feed one SSE event; returns the canonical events it carries (possibly none).
    fn decode(&mut self, event: &sse::Event) -> Result<Vec<StreamEvent>>;
    /// Whether the upstream has signalled the end of the answer (`[DONE]`, `message_stop`, ...).
    fn is_done(&self) -> bool;
}

/// Turns canonical stream events into the client's SSE bytes.
pub trait StreamEncoder: Send {
    /// Encode one event; returns SSE text to send (possibly empty).
    fn encode(&mut self, event: &StreamEvent) -> String;
    /// Close a stream that ended well: whatever the format sends last (`[DONE]`, `response.completed`, ...).
    fn finish(&mut self) -> String;
    /// Close a stream that failed: the format's terminal error event, never a success marker.
    fn fail(&mut self, kind: ErrorKind, message: &str) -> String;
}

/// A client answer's `total_tokens`: input plus output, saturating, because the counts are the
/// upstream's and may be anything up to `u64::MAX` (`Usage::total_tokens` would overflow on them).
pub(crate) fn total_tokens(usage: &Usage) -> u64 {
    usage.input_tokens.saturating_add(usage.output_tokens)
}
