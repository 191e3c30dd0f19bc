//! The model, through the governed pipeline: OpenAI Chat Completions, streamed, against a
//! `tandem serve` (so policy, DLP, budgets, routing and the audit ledger apply to the agent's own
//! calls as to any client's). Dropping the stream closes the connection, which cancels the
//! upstream request at once.

use futures::StreamExt;
use serde_json::{Value, json};
use tandem_protocol::StreamEvent;
use tandem_translate::StreamDecoder;

use crate::{Error, Result};

/// Where the model is and who is asking.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Base URL of a `tandem serve`, e.g. `http://127.0.0.1:4000`.
    pub base_url: String,
    /// A Tandem API key or an OIDC token, when the server wants one.
    pub token: Option<String>,
    /// The model (or tier alias, e.g. `tandem-live`) to ask.
    pub model: String,
    /// The session key sent with every call (`x-tandem-session`): the task id, so the gateway keeps
    /// a task on its tier and the report joins the task's requests to its change.
    pub session: Option<String>,
}

/// Adds the endpoint's credentials and session key to a request.
fn authorize(mut request: reqwest::RequestBuilder, endpoint: &Endpoint) -> reqwest::RequestBuilder {
    if let Some(token) = &endpoint.token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = &endpoint.session {
        request = request.header("x-tandem-session", session);
    }
    request
}

/// What a finished answer reported.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The full text.
    pub text: String,
    /// The server's request id (`x-request-id`), recorded with the change.
    pub request_id: Option<String>,
    /// The tier and target that answered (`x-tandem-tier`, `x-tandem-target`).
    pub tier: Option<String>,
    /// `provider/model` that answered.
    pub target: Option<String>,
}

/// The request id and routing the gateway reported in its headers.
fn routed(resp: &reqwest::Response) -> Answer {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        request_id: header("x-request-id"),
        tier: header("x-tandem-tier"),
        target: header("x-tandem-target"),
        ..Answer::default()
    }
}

/// Streams one chat completion, calling `on_text` with each text delta as it arrives.
pub async fn stream(
    endpoint: &Endpoint,
    messages: Vec<Value>,
    mut on_text: impl FnMut(&str),
) -> Result<Answer> {
    stream_predicted(endpoint, messages, None, |text| on_text(text)).await
}

/// [`stream`] with a predicted output (OpenAI's `prediction`): the text the answer is expected to
/// mostly repeat, which speculative decoding upstream verifies instead of generating token by
/// token. A whole-file rewrite passes the original file.
pub async fn stream_predicted(
    endpoint: &Endpoint,
    messages: Vec<Value>,
    prediction: Option<&str>,
    mut on_text: impl FnMut(&str),
) -> Result<Answer> {
    let client = reqwest::Client::new();
    let mut body = json!({
        "model": endpoint.model,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": messages,
    });
    if let Some(content) = prediction {
        body["prediction"] = json!({"type": "content", "content": content});
    }
    let request = client
        .post(format!(
            "{}/v1/chat/completions",
            endpoint.base_url.trim_end_matches('/')
        ))
        .json(&body);
    let resp = authorize(request, endpoint)
        .send()
        .await
        .map_err(|e| Error::Model(e.to_string()))?;
    let mut answer = routed(&resp);
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(Error::Model(format!("{status}: {body}")));
    }
    let mut parser = tandem_translate::sse::Parser::new(1 << 20);
    let mut decoder = tandem_translate::openai_chat::Decoder::new();
    let mut body = resp.bytes_stream();
    let mut events = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::Model(format!("stream: {e}")))?;
        events.clear();
        parser
            .feed(&chunk, &mut events)
            .map_err(|e| Error::Model(e.to_string()))?;
        for event in &events {
            for item in decoder
                .decode(event)
                .map_err(|e| Error::Model(e.to_string()))?
            {
                if let StreamEvent::TextDelta(text) = item {
                    on_text(&text);
                    answer.text.push_str(&text);
                }
            }
        }
        if decoder.is_done() {
            return Ok(answer);
        }
    }
    Err(Error::Model(
        "the stream ended before the answer was complete".into(),
    ))
}

/// One non-streamed chat completion with tools; the assistant message as the API returned it.
pub async fn complete(
    endpoint: &Endpoint,
    messages: &[Value],
    tools: &Value,
) -> Result<(Value, Answer)> {
    let request = reqwest::Client::new()
        .post(format!(
            "{}/v1/chat/completions",
            endpoint.base_url.trim_end_matches('/')
        ))
        .json(&json!({"model": endpoint.model, "messages": messages, "tools": tools}));
    let resp = authorize(request, endpoint)
        .send()
        .await
        .map_err(|e| Error::Model(e.to_string()))?;
    let answer = routed(&resp);
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| Error::Model(format!("{status}: {e}")))?;
    if !status.is_success() {
        return Err(Error::Model(format!("{status}: {body}")));
    }
    let mut message = body["choices"][0]["message"].clone();
    if message.is_null() {
        return Err(Error::Model(format!("no message in {body}")));
    }
    // Sent back as it came, minus fields the API adds only to answers.
    if let Some(obj) = message.as_object_mut() {
        obj.remove("refusal");
        obj.remove("annotations");
    }
    Ok((message, answer))
}
