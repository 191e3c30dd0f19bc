//! Data loss prevention in the pipeline: requests are redacted before they leave, answers before
//! they reach the client, whatever the client API (all three meet here in canonical form).
//!
//! Requests: text, tool-call arguments and tool results of every message (reasoning parts are left
//! as they are: providers verify them against their signatures). Answers: text and reasoning deltas
//! go through a [`StreamRedactor`] per channel, so a secret split across chunks is still caught and
//! nothing of it is released early; tool-call arguments are held until the call is complete and
//! redacted whole. Final summary events (`output_item.done`, `response.completed`) are built by the
//! encoders from these redacted events, so they carry placeholders too. A block, an overflow or any
//! redaction error ends the stream with an error event: it fails closed.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use serde::Serialize;
use tandem_dlp::{Redactor, Report, StreamRedactor, StreamRestorer, Vault};
use tandem_protocol::{ChatRequest, ChatResponse, Part, StreamEvent};
use tandem_providers::EventStream;

/// DLP settings the pipeline needs.
#[derive(Clone, Debug)]
pub struct DlpConfig {
    /// Scanner, actions and placeholder key.
    pub redactor: Redactor,
    /// Whether answers are scanned too.
    pub responses: bool,
    /// Whether placeholders in answers are replaced by the real values for the client.
    pub restore: bool,
}

/// Which way the data was going.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    Request,
    Response,
}

/// One finding as stored with the exchange: never the value.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Logged {
    dir: Direction,
    rule: String,
    class: &'static str,
    action: &'static str,
    fingerprint: String,
}

/// Findings of one exchange, shared between the request side and the answer stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct Findings(Arc<Mutex<Vec<Logged>>>);

impl Findings {
    pub(crate) fn add(&self, dir: Direction, reports: Vec<Report>) {
        if reports.is_empty() {
            return;
        }
        let direction = match dir {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        for r in &reports {
            crate::metrics::dlp_finding(direction, &r.rule, r.action.as_str());
        }
        let mut logged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        logged.extend(reports.into_iter().map(|r| Logged {
            dir,
            rule: r.rule.to_string(),
            class: match r.class {
                tandem_dlp::Class::Secret => "secret",
                tandem_dlp::Class::Pii(_) => "pii",
            },
            action: r.action.as_str(),
            fingerprint: r.fingerprint,
        }));
    }

    /// The findings as JSON for the record; `None` when there are none.
    pub(crate) fn to_json(&self) -> Option<String> {
        let logged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if logged.is_empty() {
            return None;
        }
        serde_json::to_string(&*logged).ok()
    }
}

/// Redacts a request. Returns the redacted copy (or `None` when nothing changed) and the vault of
/// what was replaced. A block fails with the rule id.
/// BLAKE3 hashes of message parts that scanned clean, so the unchanged history that clients resend
/// every turn is hashed (several GB/s) instead of rescanned. Bounded; the oldest are forgotten
/// first. Only parts of [`CleanParts::MIN_BYTES`] or more are remembered.
/// The remembered hashes, and the order to forget them in.
type Remembered = (
    std::collections::HashSet<[u8; 32]>,
    std::collections::VecDeque<[u8; 32]>,
);

#[derive(Debug, Default)]
pub(crate) struct CleanParts {
    seen: Mutex<Remembered>,
}

impl CleanParts {
    const MIN_BYTES: usize = 1024;
    const CAPACITY: usize = 100_000;

    fn key(text: &str) -> Option<[u8; 32]> {
        (text.len() >= Self::MIN_BYTES).then(|| *blake3::hash(text.as_bytes()).as_bytes())
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.0.contains(key)
    }

    fn insert(&self, key: [u8; 32]) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.0.insert(key) {
            seen.1.push_back(key);
            if seen.1.len() > Self::CAPACITY
                && let Some(old) = seen.1.pop_front()
            {
                seen.0.remove(&old);
            }
        }
    }
}

pub(crate) fn redact_request(
    redactor: &Redactor,
    clean: &CleanParts,
    req: &ChatRequest,
    findings: &Findings,
) -> Result<(Option<ChatRequest>, Vault), tandem_dlp::Error> {
    let mut copy: Option<ChatRequest> = None;
    let mut reports = Vec::new();
    let mut vault = Vault::default();
    for (mi, message) in req.messages.iter().enumerate() {
        for (pi, part) in message.parts.iter().enumerate() {
            let Some(text) = scanned_text(part) else {
                continue;
            };
            let key = CleanParts::key(text);
            if key.as_ref().is_some_and(|k| clean.contains(k)) {
                continue;
            }
            if redactor.scanner().scan(text.as_bytes()).is_empty() {
                if let Some(key) = key {
                    clean.insert(key);
                }
                continue;
            }
            let mut redacted = text.to_owned();
            redactor.redact_in_place(&mut redacted, &mut reports, &mut vault)?;
            if redacted != text {
                let copy = copy.get_or_insert_with(|| req.clone());
                if let Some(slot) = copy.messages[mi]
                    .parts
                    .get_mut(pi)
                    .and_then(scanned_text_mut)
                {
                    *slot = redacted;
                }
            }
        }
    }
    findings.add(Direction::Request, reports);
    Ok((copy, vault))
}

fn scanned_text(part: &Part) -> Option<&str> {
    match part {
        Part::Text(t) => Some(t),
        Part::ToolCall { arguments, .. } => Some(arguments),
        Part::ToolResult { content, .. } => Some(content),
        Part::Image { .. } | Part::Reasoning { .. } => None,
    }
}

fn scanned_text_mut(part: &mut Part) -> Option<&mut String> {
    match part {
        Part::Text(t) => Some(t),
        Part::ToolCall { arguments, .. } => Some(arguments),
        Part::ToolResult { content, .. } => Some(content),
        Part::Image { .. } | Part::Reasoning { .. } => None,
    }
}

/// Redacts a whole answer in place, then restores the request's placeholders when configured.
pub(crate) fn redact_response(
    config: &DlpConfig,
    vault: &Vault,
    resp: &mut ChatResponse,
    findings: &Findings,
) -> Result<(), tandem_dlp::Error> {
    let mut reports = Vec::new();
    let mut produced = Vault::default();
    for part in &mut resp.parts {
        let text = match part {
            Part::Text(t) => t,
            Part::ToolCall { arguments, .. } => arguments,
            Part::Reasoning { text, .. } => text,
            Part::ToolResult { content, .. } => content,
            Part::Image { .. } => continue,
        };
        if config.responses {
            config
                .redactor
                .redact_in_place(text, &mut reports, &mut produced)?;
        }
        if config.restore && !vault.is_empty() {
            let restored = vault.restore(text).into_owned();
            *text = restored;
        }
    }
    findings.add(Direction::Response, reports);
    Ok(())
}

/// One text channel of the answer: redaction, then optional restoration.
struct Channel {
    redactor: StreamRedactor,
    restorer: Option<StreamRestorer>,
}

impl Channel {
    fn new(config: &DlpConfig, vault: &Vault) -> Channel {
        Channel {
            redactor: config.redactor.stream(),
            restorer: (config.restore && !vault.is_empty())
                .then(|| StreamRestorer::new(vault.clone())),
        }
    }

    fn push(&mut self, text: &str) -> Result<String, tandem_dlp::Error> {
        let out = self.redactor.push(text)?;
        Ok(match &mut self.restorer {
            Some(r) => r.push(&out),
            None => out,
        })
    }

    fn finish(&mut self) -> Result<String, tandem_dlp::Error> {
        let out = self.redactor.finish()?;
        Ok(match &mut self.restorer {
            Some(r) => {
                let mut s = r.push(&out);
                s.push_str(&r.finish());
                s
            }
            None => out,
        })
    }
}

/// A tool call held until complete.
struct HeldCall {
    id: String,
    name: String,
    arguments: String,
}

/// The answer stream with DLP applied; see the module docs.
pub(crate) struct DlpStream {
    inner: EventStream,
    config: DlpConfig,
    vault: Vault,
    findings: Findings,
    text: Option<Channel>,
    reasoning: Option<Channel>,
    calls: BTreeMap<u32, HeldCall>,
    ready: std::collections::VecDeque<StreamEvent>,
    done: bool,
}

impl DlpStream {
    pub(crate) fn new(
        inner: EventStream,
        config: DlpConfig,
        vault: Vault,
        findings: Findings,
    ) -> DlpStream {
        DlpStream {
            inner,
            config,
            vault,
            findings,
            text: None,
            reasoning: None,
            calls: BTreeMap::new(),
            ready: std::collections::VecDeque::new(),
            done: false,
        }
    }

    fn channel_push(
        &mut self,
        reasoning: bool,
        delta: &str,
    ) -> Result<Option<StreamEvent>, tandem_dlp::Error> {
        let (config, vault) = (&self.config, &self.vault);
        let slot = if reasoning {
            &mut self.reasoning
        } else {
            &mut self.text
        };
        let channel = slot.get_or_insert_with(|| Channel::new(config, vault));
        let out = channel.push(delta)?;
        // Record findings as they are released, so a client that hangs up mid-answer still leaves
        // them in the record.
        self.findings
            .add(Direction::Response, channel.redactor.take_reports());
        Ok((!out.is_empty()).then(|| wrap(reasoning, out)))
    }

    /// Ends a text channel, queueing what it still holds.
    fn close_channel(&mut self, reasoning: bool) -> Result<(), tandem_dlp::Error> {
        let slot = if reasoning {
            &mut self.reasoning
        } else {
            &mut self.text
        };
        if let Some(mut channel) = slot.take() {
            let out = channel.finish()?;
            self.findings
                .add(Direction::Response, channel.redactor.take_reports());
            if !out.is_empty() {
                self.ready.push_back(wrap(reasoning, out));
            }
        }
        Ok(())
    }

    /// Ends every channel and releases the held tool calls, redacted whole.
    fn flush(&mut self) -> Result<(), tandem_dlp::Error> {
        self.close_channel(true)?;
        self.close_channel(false)?;
        let mut reports = Vec::new();
        let mut produced = Vault::default();
        for (index, mut call) in std::mem::take(&mut self.calls) {
            self.config.redactor.redact_in_place(
                &mut call.arguments,
                &mut reports,
                &mut produced,
            )?;
            if self.config.restore && !self.vault.is_empty() {
                call.arguments = self.vault.restore(&call.arguments).into_owned();
            }
            self.ready.push_back(StreamEvent::ToolCallStart {
                index,
                id: call.id,
                name: call.name,
            });
            if !call.arguments.is_empty() {
                self.ready.push_back(StreamEvent::ToolCallDelta {
                    index,
                    arguments: call.arguments,
                });
            }
        }
        self.findings.add(Direction::Response, reports);
        Ok(())
    }

    /// Handles one upstream event, queueing what may go out now.
    fn handle(&mut self, event: StreamEvent) -> Result<(), tandem_dlp::Error> {
        match event {
            StreamEvent::TextDelta(delta) => {
                if let Some(e) = self.channel_push(false, &delta)? {
                    self.ready.push_back(e);
                }
            }
            StreamEvent::ReasoningDelta(delta) => {
                if let Some(e) = self.channel_push(true, &delta)? {
                    self.ready.push_back(e);
                }
            }
            StreamEvent::ReasoningSignature(sig) => {
                self.close_channel(true)?;
                self.ready.push_back(StreamEvent::ReasoningSignature(sig));
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.close_channel(false)?;
                self.calls.insert(
                    index,
                    HeldCall {
                        id,
                        name,
                        arguments: String::new(),
                    },
                );
            }
            StreamEvent::ToolCallDelta { index, arguments } => match self.calls.get_mut(&index) {
                Some(call) => call.arguments.push_str(&arguments),
                None => self
                    .ready
                    .push_back(StreamEvent::ToolCallDelta { index, arguments }),
            },
            StreamEvent::Finish(reason) => {
                self.flush()?;
                self.ready.push_back(StreamEvent::Finish(reason));
            }
            other @ (StreamEvent::Start { .. } | StreamEvent::Usage(_)) => {
                self.ready.push_back(other);
            }
        }
        Ok(())
    }
}

fn wrap(reasoning: bool, text: String) -> StreamEvent {
    if reasoning {
        StreamEvent::ReasoningDelta(text)
    } else {
        StreamEvent::TextDelta(text)
    }
}

fn refused(err: &tandem_dlp::Error) -> tandem_providers::Error {
    tandem_providers::Error::Refused {
        reason: err.to_string(),
    }
}

impl Stream for DlpStream {
    type Item = tandem_providers::Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => {
                    if let Err(err) = this.handle(event) {
                        this.done = true;
                        this.ready.clear();
                        return Poll::Ready(Some(Err(refused(&err))));
                    }
                }
                // An upstream failure: what is held stays held (it may be half a secret).
                Poll::Ready(Some(Err(err))) => {
                    this.done = true;
                    this.ready.clear();
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if let Err(err) = this.flush() {
                        this.ready.clear();
                        return Poll::Ready(Some(Err(refused(&err))));
                    }
                }
            }
        }
    }
}
