//! Fuzz target: every client format's `decode_request` (Chat Completions, Responses, Anthropic
//! Messages) on arbitrary bytes either refuses with an error or gives a request that both upstream
//! encoders (`openai_chat::encode_request`, `anthropic::encode_request`) turn into a body; a request
//! decoded from the Chat Completions or Anthropic format, encoded for an upstream of the same format,
//! decodes again (the upstream body is one that format's own decoder accepts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_protocol::ChatRequest;
use tandem_translate::{Result, anthropic, openai_chat, openai_responses};

/// The model name the upstream bodies carry.
const UPSTREAM_MODEL: &str = "upstream-model";

/// One client format: its name and its request decoder.
type Decode = fn(&[u8]) -> Result<ChatRequest>;

const CLIENTS: [(&str, Decode); 3] = [
    ("openai_chat", openai_chat::decode_request),
    ("openai_responses", openai_responses::decode_request),
    ("anthropic", anthropic::decode_request),
];

fuzz_target!(|data: &[u8]| {
    for (client, decode) in CLIENTS {
        let Ok(request) = decode(data) else {
            continue;
        };
        let chat = openai_chat::encode_request(&request, UPSTREAM_MODEL).to_string();
        let messages = anthropic::encode_request(&request, UPSTREAM_MODEL).to_string();
        if client == "openai_chat"
            && let Err(err) = openai_chat::decode_request(chat.as_bytes())
        {
            panic!("{client} request re-encoded as {chat} does not decode: {err}\n{request:?}");
        }
        if client == "anthropic"
            && let Err(err) = anthropic::decode_request(messages.as_bytes())
        {
            panic!("{client} request re-encoded as {messages} does not decode: {err}\n{request:?}");
        }
    }
});
