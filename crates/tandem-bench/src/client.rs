//! A minimal HTTP/1.1 load-generator client: one kept-alive connection per [`Conn`], TCP_NODELAY, and an
//! incremental SSE reader that counts content deltas of Chat Completions chunks.
//!
//! hyper's connection API is used directly (no pool) so that each sequential scenario reuses exactly one
//! connection and each concurrent stream owns exactly one.

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;

/// Where requests go: an address, the bearer token sent to it, and its `Host` header.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    host: String,
    auth: Option<String>,
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, token: Option<&str>) -> Arc<Self> {
        Arc::new(Endpoint {
            addr,
            host: addr.to_string(),
            auth: token.map(|t| format!("Bearer {t}")),
        })
    }
}

/// One client connection, re-established when the server closed it.
pub(crate) struct Conn {
    endpoint: Arc<Endpoint>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// Connects now, so that connection setup is not part of the first measured request.
    pub(crate) async fn connect(endpoint: Arc<Endpoint>) -> anyhow::Result<Conn> {
        let sender = handshake(endpoint.addr).await?;
        Ok(Conn {
            endpoint,
            sender: Some(sender),
        })
    }

    /// Drops the connection (after a timed-out request); the next request connects anew.
    pub(crate) fn reset(&mut self) {
        self.sender = None;
    }

    /// Sends one request and returns the response head with its unread body.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<hyper::Response<Incoming>> {
        let alive = match &mut self.sender {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            self.sender = Some(handshake(self.endpoint.addr).await?);
        }
        let Some(sender) = self.sender.as_mut() else {
            bail!("no connection to {}", self.endpoint.addr);
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.endpoint.host.as_str());
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(auth) = &self.endpoint.auth {
            request = request.header(AUTHORIZATION, auth.as_str());
        }
        let request = request
            .body(Full::new(body))
            .context("building the request")?;
        let response = sender.send_request(request).await;
        match response {
            Ok(response) => Ok(response),
            Err(err) => {
                self.sender = None;
                Err(err).with_context(|| format!("request to {}", self.endpoint.addr))
            }
        }
    }

    /// A non-streamed exchange: status and the whole body.
    pub(crate) async fn exchange(
        &mut self,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let response = self.send(Method::POST, path, body).await?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok((status, body))
    }

    /// A streamed exchange, timed from just before the request is written; `progress`, when given, is
    /// increased by each content delta as it arrives. At `deadline` the stream is abandoned and reported as
    /// unfinished with what it received so far.
    pub(crate) async fn stream(
        &mut self,
        path: &str,
        body: Bytes,
        progress: Option<&AtomicU64>,
        deadline: Option<tokio::time::Instant>,
    ) -> StreamOutcome {
        let started = Instant::now();
        let mut outcome = StreamOutcome::default();
        let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let deadline = deadline.unwrap_or(far);
        let response =
            match tokio::time::timeout_at(deadline, self.send(Method::POST, path, body)).await {
                Ok(Ok(response)) => response,
                Ok(Err(err)) => {
                    outcome.error = Some(format!("{err:#}"));
                    outcome.total = started.elapsed();
                    return outcome;
                }
                Err(_) => {
                    self.reset();
                    outcome.unfinished = true;
                    outcome.error = Some("no answer by the deadline".to_owned());
                    outcome.total = started.elapsed();
                    return outcome;
                }
            };
        outcome.status = response.status().as_u16();
        let mut body = response.into_body();
        let mut sse = SseCounter::default();
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await else {
                self.reset();
                outcome.unfinished = true;
                outcome.error = Some("unfinished at the deadline".to_owned());
                break;
            };
            match frame {
                None => break,
                Some(Err(err)) => {
                    outcome.error = Some(format!("reading the stream: {err}"));
                    break;
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let before = sse.deltas;
                    sse.feed(&data);
                    if before == 0 && sse.deltas > 0 {
                        outcome.ttft = Some(started.elapsed());
                    }
                    if let Some(progress) = progress {
                        progress.fetch_add(sse.deltas - before, Ordering::Relaxed);
                    }
                }
            }
        }
        outcome.total = started.elapsed();
        outcome.deltas = sse.deltas;
        outcome.content_bytes = sse.content_bytes;
        outcome.done = sse.done;
        outcome.bad_events = sse.bad_events;
        if outcome.error.is_none() {
            outcome.error = sse.first_error;
        }
        if outcome.error.is_none() && outcome.status != 200 {
            outcome.error = Some(format!("HTTP {}", outcome.status));
        }
        outcome
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.endpoint.addr)
            .finish()
    }
}

async fn handshake(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP handshake with {addr}"))?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped; either is fine here.
        let _ = connection.await;
    });
    Ok(sender)
}

/// What one streamed exchange produced.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamOutcome {
    pub(crate) status: u16,
    /// Time to the first non-empty content delta.
    pub(crate) ttft: Option<Duration>,
    /// Time to the end of the body.
    pub(crate) total: Duration,
    /// Chunks carrying non-empty `choices[].delta.content`.
    pub(crate) deltas: u64,
    pub(crate) content_bytes: u64,
    /// Whether `data: [DONE]` arrived.
    pub(crate) done: bool,
    /// `data:` lines that were not JSON chunks.
    pub(crate) bad_events: u64,
    /// Abandoned at the deadline.
    pub(crate) unfinished: bool,
    pub(crate) error: Option<String>,
}

impl StreamOutcome {
    /// Whether the stream delivered exactly the text of `tokens` testkit tokens and ended cleanly.
    /// The number of deltas may differ by a few: the gateway's DLP stream redaction holds back a
    /// byte that could start a match and releases it with the next delta.
    pub(crate) fn check(&self, tokens: u32) -> Result<(), String> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let deltas_ok = self.deltas.abs_diff(u64::from(tokens)) <= 1 + u64::from(tokens) / 100;
        if !deltas_ok || self.content_bytes != expected_bytes(tokens) {
            return Err(format!(
                "expected {tokens} content deltas ({} bytes), got {} ({} bytes)",
                expected_bytes(tokens),
                self.deltas,
                self.content_bytes
            ));
        }
        if !self.done {
            return Err("stream ended without data: [DONE]".to_owned());
        }
        if self.bad_events > 0 {
            return Err(format!("{} malformed events", self.bad_events));
        }
        Ok(())
    }
}

/// Bytes of the testkit answer `tok0 tok1 … tok{n-1} `.
pub(crate) fn expected_bytes(tokens: u32) -> u64 {
    (0..tokens)
        .map(|i| 4 + u64::from(i.checked_ilog10().unwrap_or(0)) + 1)
        .sum()
}

/// Checks a non-streamed Chat Completions body: exactly the testkit answer of `tokens` tokens.
pub(crate) fn check_completion(status: StatusCode, body: &[u8], tokens: u32) -> Result<(), String> {
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(body);
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    let parsed: Completion<'_> =
        serde_json::from_slice(body).map_err(|err| format!("body: {err}"))?;
    let content: u64 = parsed
        .choices
        .iter()
        .filter_map(|c| c.message.content.as_deref())
        .map(|c| c.len() as u64)
        .sum();
    if content != expected_bytes(tokens) {
        return Err(format!(
            "expected {} content bytes, got {content}",
            expected_bytes(tokens)
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow)]
    choices: Vec<CompletionChoice<'a>>,
}

#[derive(Deserialize)]
struct CompletionChoice<'a> {
    #[serde(borrow)]
    message: Delta<'a>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

/// Incremental SSE reader: splits lines across body frames and counts content deltas.
#[derive(Debug, Default)]
pub(crate) struct SseCounter {
    partial: Vec<u8>,
    pub(crate) deltas: u64,
    pub(crate) content_bytes: u64,
    pub(crate) done: bool,
    pub(crate) bad_events: u64,
    pub(crate) first_error: Option<String>,
}

impl SseCounter {
    pub(crate) fn feed(&mut self, data: &[u8]) {
        let mut rest = data;
        if !self.partial.is_empty() {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                self.partial.extend_from_slice(rest);
                return;
            };
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..end]);
            self.line(&line);
            rest = &rest[end + 1..];
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.line(&rest[..end]);
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        let payload = payload.trim_ascii_start();
        if payload == b"[DONE]" {
            self.done = true;
            return;
        }
        match serde_json::from_slice::<Chunk<'_>>(payload) {
            Ok(chunk) => {
                if let Some(error) = chunk.error {
                    self.bad_events += 1;
                    if self.first_error.is_none() {
                        let text = error.to_string();
                        self.first_error = Some(format!(
                            "error event: {}",
                            text.chars().take(200).collect::<String>()
                        ));
                    }
                }
                for choice in chunk.choices {
                    let Some(content) = choice.delta.and_then(|d| d.content) else {
                        continue;
                    };
                    if !content.is_empty() {
                        self.deltas += 1;
                        self.content_bytes += content.len() as u64;
                    }
                }
            }
            Err(_) => self.bad_events += 1,
        }
    }
}
