//! The HTTP provider: reqwest clients per upstream (one connection pool per thread), speaking Chat Completions or
//! Anthropic Messages.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use tandem_protocol::{ChatRequest, ChatResponse, StreamEvent};
use tandem_translate::{StreamDecoder, anthropic, openai_chat, sse};
use thread_local::ThreadLocal;

use crate::{Error, EventStream, Provider, Result};

/// Which wire format the upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamKind {
    /// `POST {base_url}/chat/completions`.
    OpenAi,
    /// `POST {base_url}/messages`.
    Anthropic,
}

/// Everything an [`HttpProvider`] needs; built by `tandem-config`.
#[derive(Clone, Debug)]
pub struct HttpProviderConfig {
    /// Provider name.
    pub name: String,
    /// Wire format.
    pub kind: UpstreamKind,
    /// Base URL including the API version path, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Credential sent upstream (bearer token or `x-api-key`).
    pub api_key: Option<SecretString>,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time from sending the request to the response headers.
    pub first_byte_timeout: Duration,
    /// Longest silence allowed between two pieces of a streamed answer, and for a whole non-stream answer.
    pub idle_timeout: Duration,
    /// Largest single SSE event or non-stream body accepted from the upstream.
    pub max_response_bytes: usize,
}

/// A client with `config`'s connection settings.
fn client(config: &HttpProviderConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|err| Error::Config {
            provider: config.name.clone(),
            message: err.to_string(),
        })
}

/// An upstream reached over HTTP.
#[derive(Debug)]
pub struct HttpProvider {
    config: HttpProviderConfig,
    /// A client, and so a connection pool, per thread that sends requests. A pooled connection is served by a
    /// task on the thread that opened it; shared with the connection workers of `tandem serve` (one thread
    /// each), a request on one worker would hop to another worker's thread and back on every exchange.
    clients: ThreadLocal<reqwest::Client>,
    /// Parsed once: re-parsing the URL on every request showed in profiles.
    url: reqwest::Url,
}

impl HttpProvider {
    /// Build the provider (and this thread's connection pool, which checks the settings).
    pub fn new(config: HttpProviderConfig) -> Result<Self> {
        let clients = ThreadLocal::new();
        clients.get_or_try(|| client(&config))?;
        let base = config.base_url.trim_end_matches('/');
        let url = match config.kind {
            UpstreamKind::OpenAi => format!("{base}/chat/completions"),
            UpstreamKind::Anthropic => format!("{base}/messages"),
        };
        let url = reqwest::Url::parse(&url).map_err(|err| Error::Config {
            provider: config.name.clone(),
            message: format!("base_url `{}`: {err}", config.base_url),
        })?;
        Ok(HttpProvider {
            config,
            clients,
            url,
        })
    }

    fn body(&self, req: &ChatRequest, upstream_model: &str) -> serde_json::Value {
        match self.config.kind {
            UpstreamKind::OpenAi => openai_chat::encode_request(req, upstream_model),
            UpstreamKind::Anthropic => anthropic::encode_request(req, upstream_model),
        }
    }

    /// Send the request and wait for the response headers; error statuses become [`Error::Status`].
    async fn send(&self, req: &ChatRequest, upstream_model: &str) -> Result<reqwest::Response> {
        let name = &self.config.name;
        let body = self.body(req, upstream_model);
        let client = self.clients.get_or_try(|| client(&self.config))?;
        let mut builder = client.post(self.url.clone()).json(&body);
        match self.config.kind {
            UpstreamKind::OpenAi => {
                if let Some(key) = &self.config.api_key {
                    builder = builder.bearer_auth(key.expose_secret());
                }
            }
            UpstreamKind::Anthropic => {
                builder = builder.header("anthropic-version", "2023-06-01");
                if let Some(key) = &self.config.api_key {
                    builder = builder.header("x-api-key", key.expose_secret());
                }
            }
        }
        if req.stream {
            builder = builder.header("accept", "text/event-stream");
        }
        let response = tokio::time::timeout(self.config.first_byte_timeout, builder.send())
            .await
            .map_err(|_| Error::Timeout {
                provider: name.clone(),
                phase: "first byte",
                elapsed: self.config.first_byte_timeout,
            })?
            .map_err(|err| self.request_error(&err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = read_limited(response, 4096, self.config.idle_timeout)
            .await
            .unwrap_or_default();
        Err(Error::Status {
            provider: name.clone(),
            status: status.as_u16(),
            message: error_message(&text).into(),
        })
    }

    fn request_error(&self, err: &reqwest::Error) -> Error {
        let provider = self.config.name.clone();
        if err.is_connect() {
            Error::Connect {
                provider,
                message: source_chain(err),
            }
        } else {
            Error::Reset {
                provider,
                message: source_chain(err),
            }
        }
    }
}

/// The whole cause chain of an error, so "connection refused" is not hidden behind "error sending request".
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The message inside an upstream error body (OpenAI or Anthropic shape), or the raw text.
fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .and_then(serde_json::Value::as_str)
    });
    let message = message.map_or_else(|| text.trim().to_owned(), str::to_owned);
    message.chars().take(500).collect()
}

/// Read at most `limit` bytes of a body; `None` if it is larger or breaks.
async fn read_limited(
    response: reqwest::Response,
    limit: usize,
    idle: Duration,
) -> Option<Vec<u8>> {
    let mut body = response.bytes_stream();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => {
                if out.len() + chunk.len() > limit {
                    let room = limit - out.len();
                    out.extend_from_slice(&chunk[..room]);
                    return Some(out);
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Some(out),
            Ok(Some(Err(_))) | Err(_) => return None,
        }
    }
}

#[async_trait::async_trait]
impl Provider for HttpProvider {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn api_name(&self) -> &'static str {
        match self.config.kind {
            UpstreamKind::OpenAi => "openai",
            UpstreamKind::Anthropic => "anthropic",
        }
    }

    fn address(&self) -> Option<(&str, u16)> {
        Some((self.url.host_str()?, self.url.port_or_known_default()?))
    }

    async fn complete(&self, req: &ChatRequest, upstream_model: &str) -> Result<ChatResponse> {
        let mut req_once;
        let req = if req.stream {
            req_once = req.clone();
            req_once.stream = false;
            &req_once
        } else {
            req
        };
        let response = self.send(req, upstream_model).await?;
        let name = &self.config.name;
        let mut body = response.bytes_stream();
        let mut bytes = Vec::new();
        loop {
            let next = tokio::time::timeout(self.config.idle_timeout, body.next())
                .await
                .map_err(|_| Error::Timeout {
                    provider: name.clone(),
                    phase: "idle answer",
                    elapsed: self.config.idle_timeout,
                })?;
            match next {
                None => break,
                Some(Err(err)) => return Err(self.request_error(&err)),
                Some(Ok(chunk)) => {
                    if bytes.len() + chunk.len() > self.config.max_response_bytes {
                        return Err(Error::Malformed {
                            provider: name.clone(),
                            source: tandem_translate::Error::Upstream(format!(
                                "answer larger than {} bytes",
                                self.config.max_response_bytes
                            )),
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
            }
        }
        let decoded = match self.config.kind {
            UpstreamKind::OpenAi => openai_chat::decode_response(&bytes),
            UpstreamKind::Anthropic => anthropic::decode_response(&bytes),
        };
        decoded.map_err(|source| Error::Malformed {
            provider: name.clone(),
            source,
        })
    }

    async fn stream(&self, req: &ChatRequest, upstream_model: &str) -> Result<EventStream> {
        let mut req_once;
        let req = if req.stream {
            req
        } else {
            req_once = req.clone();
            req_once.stream = true;
            &req_once
        };
        let response = self.send(req, upstream_model).await?;
        let decoder: Box<dyn StreamDecoder> = match self.config.kind {
            UpstreamKind::OpenAi => Box::new(openai_chat::Decoder::new()),
            UpstreamKind::Anthropic => Box::new(anthropic::Decoder::new()),
        };
        let state = Pull {
            provider: self.config.name.clone(),
            body: Box::pin(response.bytes_stream()),
            parser: sse::Parser::new(self.config.max_response_bytes),
            decoder,
            pending: VecDeque::new(),
            sse_events: Vec::new(),
            decoded: 0,
            idle: self.config.idle_timeout,
            ended: false,
            deferred: None,
        };
        Ok(Box::pin(futures::stream::unfold(state, Pull::next)))
    }
}

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// State of one streamed answer being pulled from the upstream.
struct Pull {
    provider: String,
    body: ByteStream,
    parser: sse::Parser,
    decoder: Box<dyn StreamDecoder>,
    pending: VecDeque<StreamEvent>,
    /// Events framed from the body but not yet decoded: `sse_events[decoded..]`.
    sse_events: Vec<sse::Event>,
    decoded: usize,
    idle: Duration,
    ended: bool,
    /// An error found after some good events: reported once those are delivered.
    deferred: Option<Error>,
}

impl Pull {
    /// The next canonical event. Events are decoded one at a time, as they are pulled: a fast upstream sends many
    /// in one read, and the first goes on to the client before the rest of the read is decoded.
    async fn next(mut self) -> Option<(Result<StreamEvent>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.decoded < self.sse_events.len() {
                self.decode_next();
                continue;
            }
            if let Some(err) = self.deferred.take() {
                return Some((Err(err), self));
            }
            if self.ended {
                return None;
            }
            let chunk = match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => {
                    let err = Error::Timeout {
                        provider: self.provider.clone(),
                        phase: "idle stream",
                        elapsed: self.idle,
                    };
                    return self.fail(err);
                }
                Ok(None) => {
                    if self.decoder.is_done() {
                        self.ended = true;
                        continue;
                    }
                    let err = Error::Truncated {
                        provider: self.provider.clone(),
                    };
                    return self.fail(err);
                }
                Ok(Some(Err(err))) => {
                    let err = Error::Reset {
                        provider: self.provider.clone(),
                        message: source_chain(&err),
                    };
                    return self.fail(err);
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            if let Err(err) = self.absorb(&chunk) {
                self.ended = true;
                self.deferred = Some(err);
            }
        }
    }

    /// Frame one body chunk into SSE events, to be decoded as they are pulled. Called only once every event
    /// framed before has been decoded; a chunk that breaks the framing adds none of its events.
    fn absorb(&mut self, chunk: &[u8]) -> Result<()> {
        self.sse_events.clear();
        self.decoded = 0;
        self.parser
            .feed(chunk, &mut self.sse_events)
            .map_err(|source| Error::Malformed {
                provider: self.provider.clone(),
                source,
            })
            .inspect_err(|_| self.sse_events.clear())
    }

    /// Decode the next framed event into pending canonical events. Once the answer is complete, or an event is
    /// malformed, the rest of the body is left unread (so the connection can go back to the pool).
    fn decode_next(&mut self) {
        let Some(event) = self.sse_events.get(self.decoded) else {
            return;
        };
        self.decoded += 1;
        if self.decoder.is_done() {
            self.decoded = self.sse_events.len();
            self.ended = true;
            return;
        }
        match self.decoder.decode(event) {
            Ok(events) => {
                self.pending.extend(events);
                if self.decoder.is_done() {
                    self.decoded = self.sse_events.len();
                    self.ended = true;
                }
            }
            Err(source) => {
                self.decoded = self.sse_events.len();
                self.ended = true;
                self.deferred = Some(Error::Malformed {
                    provider: self.provider.clone(),
                    source,
                });
            }
        }
    }

    fn fail(mut self, err: Error) -> Option<(Result<StreamEvent>, Self)> {
        self.ended = true;
        self.pending.clear();
        self.sse_events.clear();
        self.decoded = 0;
        Some((Err(err), self))
    }
}

#[cfg(test)]
mod tests;
