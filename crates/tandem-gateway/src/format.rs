//! The three client APIs as one trait, so a single handler serves them all.

use serde_json::Value;
use tandem_core::Api;
use tandem_protocol::{ChatRequest, ChatResponse, ErrorKind};
use tandem_translate::{EncodeContext, StreamEncoder, anthropic, openai_chat, openai_responses};

/// A client-facing API: how its requests are read and its answers and errors written.
pub(crate) trait ClientFormat: Send + Sync + 'static {
    /// Which API this is.
    const API: Api;
    /// Decode a request body.
    fn decode(body: &[u8]) -> tandem_translate::Result<ChatRequest>;
    /// Encode a complete answer.
    fn encode_response(resp: &ChatResponse, ctx: &EncodeContext) -> Value;
    /// An encoder for a streamed answer.
    fn encoder(ctx: &EncodeContext) -> Box<dyn StreamEncoder>;
    /// The API's error body.
    fn error_body(kind: ErrorKind, message: &str) -> Value;
}

/// OpenAI Chat Completions.
pub(crate) struct Chat;
/// OpenAI Responses.
pub(crate) struct Responses;
/// Anthropic Messages.
pub(crate) struct Messages;

impl ClientFormat for Chat {
    const API: Api = Api::Chat;
    fn decode(body: &[u8]) -> tandem_translate::Result<ChatRequest> {
        openai_chat::decode_request(body)
    }
    fn encode_response(resp: &ChatResponse, ctx: &EncodeContext) -> Value {
        openai_chat::encode_response(resp, ctx)
    }
    fn encoder(ctx: &EncodeContext) -> Box<dyn StreamEncoder> {
        Box::new(openai_chat::Encoder::new(ctx))
    }
    fn error_body(kind: ErrorKind, message: &str) -> Value {
        openai_chat::error_body(kind, message)
    }
}

impl ClientFormat for Responses {
    const API: Api = Api::Responses;
    fn decode(body: &[u8]) -> tandem_translate::Result<ChatRequest> {
        openai_responses::decode_request(body)
    }
    fn encode_response(resp: &ChatResponse, ctx: &EncodeContext) -> Value {
        openai_responses::encode_response(resp, ctx)
    }
    fn encoder(ctx: &EncodeContext) -> Box<dyn StreamEncoder> {
        Box::new(openai_responses::Encoder::new(ctx))
    }
    fn error_body(kind: ErrorKind, message: &str) -> Value {
        openai_responses::error_body(kind, message)
    }
}

impl ClientFormat for Messages {
    const API: Api = Api::Messages;
    fn decode(body: &[u8]) -> tandem_translate::Result<ChatRequest> {
        anthropic::decode_request(body)
    }
    fn encode_response(resp: &ChatResponse, ctx: &EncodeContext) -> Value {
        anthropic::encode_response(resp, ctx)
    }
    fn encoder(ctx: &EncodeContext) -> Box<dyn StreamEncoder> {
        Box::new(anthropic::Encoder::new(ctx))
    }
    fn error_body(kind: ErrorKind, message: &str) -> Value {
        anthropic::error_body(kind, message)
    }
}
