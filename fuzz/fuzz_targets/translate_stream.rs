//! Fuzz target: an upstream SSE stream through a `StreamDecoder` (OpenAI Chat Completions or
//! Anthropic) and the canonical events it gives through every client `StreamEncoder`, as the provider
//! and the gateway drive them. No panic; every encoder writes well-formed SSE whose data is JSON
//! (or `[DONE]`); a stream that failed ends with the format's error event and never carries its
//! success marker, and one that succeeded ends with the success marker and carries no error event.
//! Responses events are numbered 0, 1, 2, …; Anthropic content blocks open and close in order.
//!
//! Input layout: byte 0 picks the decoder (bit 0: Chat Completions or Anthropic) and whether the
//! client asked for a usage chunk (bit 1). Byte 1, when not zero, fails the stream after that many
//! canonical events, as a DLP or audit failure in the gateway would. The rest is the upstream's SSE
//! body, fed whole (the `sse` target covers splits).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tandem_protocol::{ChatRequest, ErrorKind, StreamEvent};
use tandem_translate::sse::{Event, Parser};
use tandem_translate::{
    EncodeContext, StreamDecoder, StreamEncoder, anthropic, openai_chat, openai_responses,
};

/// The largest upstream event the parser accepts.
const MAX_EVENT_BYTES: usize = 1 << 16;

/// A Codex-style request with a function, a custom (free-text) and a namespaced tool, so that the
/// Responses encoder takes each of its tool call paths.
const REQUEST: &str = r#"{"model":"tandem-live","stream":true,"input":"hi","tools":[
{"type":"function","name":"exec_command","parameters":{"type":"object","properties":{"cmd":{"type":"string"}}}},
{"type":"custom","name":"apply_patch","description":"Edit files."},
{"type":"namespace","name":"multi_agent_v1","description":"Agents.","tools":[
 {"type":"function","name":"spawn_agent","parameters":{"type":"object","properties":{}}}]}]}"#;

/// The client request without and with a usage chunk asked for.
static REQUESTS: LazyLock<[ChatRequest; 2]> = LazyLock::new(|| {
    let request = openai_responses::decode_request(REQUEST.as_bytes())
        .unwrap_or_else(|err| panic!("the fixed request does not decode: {err}"));
    let mut with_usage = request.clone();
    with_usage.stream_usage = true;
    [request, with_usage]
});

/// The client formats, in the order the checks below name them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Chat,
    Responses,
    Anthropic,
}

impl Client {
    fn encoder(self, ctx: &EncodeContext<'_>) -> Box<dyn StreamEncoder> {
        match self {
            Client::Chat => Box::new(openai_chat::Encoder::new(ctx)),
            Client::Responses => Box::new(openai_responses::Encoder::new(ctx)),
            Client::Anthropic => Box::new(anthropic::Encoder::new(ctx)),
        }
    }

    fn is_success(self, event: &Event) -> bool {
        match self {
            Client::Chat => event.data == "[DONE]",
            Client::Responses => matches!(
                event.event.as_deref(),
                Some("response.completed" | "response.incomplete")
            ),
            Client::Anthropic => event.event.as_deref() == Some("message_stop"),
        }
    }

    fn is_error(self, event: &Event, json: Option<&Value>) -> bool {
        match self {
            Client::Chat => json.is_some_and(|json| json.get("error").is_some()),
            Client::Responses => event.event.as_deref() == Some("response.failed"),
            Client::Anthropic => event.event.as_deref() == Some("error"),
        }
    }
}

/// What the upstream gave: canonical events, then the error that ended it, if one did.
fn upstream(anthropic_upstream: bool, body: &[u8]) -> (Vec<StreamEvent>, Option<String>) {
    let mut decoder: Box<dyn StreamDecoder> = match anthropic_upstream {
        true => Box::new(anthropic::Decoder::new()),
        false => Box::new(openai_chat::Decoder::new()),
    };
    let mut parser = Parser::new(MAX_EVENT_BYTES);
    let mut sse = Vec::new();
    let parsed = parser.feed(body, &mut sse);
    let mut events = Vec::new();
    for event in &sse {
        if decoder.is_done() {
            break;
        }
        match decoder.decode(event) {
            Ok(decoded) => events.extend(decoded),
            Err(err) => return (events, Some(err.to_string())),
        }
    }
    if let Err(err) = parsed {
        return (events, Some(err.to_string()));
    }
    if !decoder.is_done() {
        return (events, Some("the upstream stream ended early".to_owned()));
    }
    (events, None)
}

/// Checks one encoder's whole output.
fn check(client: Client, out: &str, failed: bool) {
    let mut parser = Parser::new(usize::MAX);
    let mut events = Vec::new();
    if let Err(err) = parser.feed(out.as_bytes(), &mut events) {
        panic!("{client:?} wrote SSE that does not parse ({err}):\n{out}");
    }
    assert!(!parser.finish(), "{client:?} left an event open:\n{out}");
    let Some(last) = events.last() else {
        panic!("{client:?} wrote no events:\n{out}");
    };

    let mut open_block: Option<u64> = None;
    let mut blocks = 0u64;
    for (at, event) in events.iter().enumerate() {
        let json = match client == Client::Chat && event.data == "[DONE]" {
            true => None,
            false => match serde_json::from_str::<Value>(&event.data) {
                Ok(json) => Some(json),
                Err(err) => panic!("{client:?} event {at} is not JSON ({err}):\n{out}"),
            },
        };
        let is_last = at + 1 == events.len();
        if client.is_success(event) {
            assert!(
                !failed && is_last,
                "{client:?} success marker at {at} (failed: {failed}):\n{out}"
            );
        }
        if client.is_error(event, json.as_ref()) {
            assert!(failed && is_last, "{client:?} error event at {at}:\n{out}");
        }
        let Some(json) = json else {
            continue;
        };
        let kind = json.get("type").and_then(Value::as_str);
        match client {
            Client::Chat => {}
            Client::Responses => {
                assert_eq!(
                    kind,
                    event.event.as_deref(),
                    "{client:?} event {at}:\n{out}"
                );
                let seq = json.get("sequence_number").and_then(Value::as_u64);
                assert_eq!(
                    seq,
                    Some(at as u64),
                    "{client:?} event {at} numbered:\n{out}"
                );
            }
            Client::Anthropic => {
                assert_eq!(
                    kind,
                    event.event.as_deref(),
                    "{client:?} event {at}:\n{out}"
                );
                if at == 0 {
                    assert!(
                        matches!(kind, Some("message_start" | "error")),
                        "{client:?} starts with {kind:?}:\n{out}"
                    );
                }
                let index = json.get("index").and_then(Value::as_u64);
                match kind {
                    Some("content_block_start") => {
                        assert!(
                            open_block.is_none() && index == Some(blocks),
                            "{client:?} event {at} opens block {index:?} with {open_block:?} open \
                             and {blocks} started:\n{out}"
                        );
                        open_block = index;
                        blocks += 1;
                    }
                    Some("content_block_stop") => {
                        assert!(
                            open_block.is_some() && open_block == index,
                            "{client:?} event {at} closes block {index:?}, {open_block:?} open:\n{out}"
                        );
                        open_block = None;
                    }
                    Some("content_block_delta") => {
                        assert!(
                            index.is_some_and(|index| index < blocks),
                            "{client:?} event {at} writes to block {index:?} of {blocks}:\n{out}"
                        );
                    }
                    Some("message_delta" | "message_stop") => {
                        assert!(
                            open_block.is_none(),
                            "{client:?} event {at} ends the message with block {open_block:?} open:\n{out}"
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    match failed {
        true => assert!(
            client.is_error(last, serde_json::from_str(&last.data).ok().as_ref()),
            "{client:?} failed stream does not end with its error event:\n{out}"
        ),
        false => assert!(
            client.is_success(last),
            "{client:?} stream does not end with its success marker:\n{out}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, fail_after, body @ ..] = data else {
        return;
    };
    let (mut events, mut error) = upstream(selector & 1 != 0, body);
    if *fail_after != 0 && usize::from(*fail_after) <= events.len() {
        events.truncate(usize::from(*fail_after));
        error = Some("redaction failed".to_owned());
    }
    let request = &REQUESTS[usize::from(selector >> 1 & 1)];
    let ctx = EncodeContext {
        request,
        id: "fuzz",
        created: 1_700_000_000,
    };
    for client in [Client::Chat, Client::Responses, Client::Anthropic] {
        let mut encoder = client.encoder(&ctx);
        let mut out = String::new();
        for event in &events {
            out.push_str(&encoder.encode(event));
        }
        match &error {
            Some(message) => out.push_str(&encoder.fail(ErrorKind::Upstream, message)),
            None => out.push_str(&encoder.finish()),
        }
        check(client, &out, error.is_some());
    }
});
