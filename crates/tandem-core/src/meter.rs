//! A stream wrapper that meters an answer as it passes and writes its record exactly once.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Stream;
use tandem_protocol::StreamEvent;
use tandem_providers::EventStream;
use tandem_store::{Outcome, RequestRecord};

use crate::audit::{AnswerHasher, Trail};
use crate::dlp::Findings;
use crate::elapsed_ms;
use crate::recorder::Recorder;

/// Called once with the final record of a stream.
pub(crate) type OnClose = Box<dyn FnOnce(&RequestRecord) + Send>;

/// The upstream's events, passed through unchanged, with usage, time to first token and outcome recorded.
///
/// The record is written when the stream ends, when it yields an error, or when it is dropped early
/// (the client went away): then the outcome is `cancelled` and, unless the upstream already reported usage,
/// the output count is the number of deltas seen, marked as not exact.
///
/// From the `Finish` event on, events are held back until the upstream stream ends and the exchange's
/// audit entry is journalled, so the client never sees a complete answer that the ledger could lose.
/// If the entry cannot be journalled, the stream ends with an error instead.
pub struct MeteredStream {
    inner: EventStream,
    record: Option<RequestRecord>,
    started: Instant,
    recorder: Arc<Recorder>,
    deltas: u64,
    /// Run once when the record is final (settles the budget reservation, counts interrupts).
    on_close: Option<OnClose>,
    /// Data loss prevention findings, stored with the record.
    findings: Option<Findings>,
    /// The audit context of the exchange.
    trail: Trail,
    /// Keyed hash of the answer, when auditing is on.
    hasher: Option<AnswerHasher>,
    /// Events from `Finish` on, released once the record is written.
    held: VecDeque<StreamEvent>,
    holding: bool,
    /// Set once the inner stream has ended and the record is written.
    done: bool,
}

impl MeteredStream {
    pub(crate) fn new(
        inner: EventStream,
        record: RequestRecord,
        started: Instant,
        recorder: Arc<Recorder>,
        on_close: Option<OnClose>,
    ) -> Self {
        let hasher = recorder.answer_hasher();
        MeteredStream {
            inner,
            record: Some(record),
            started,
            recorder,
            deltas: 0,
            on_close,
            findings: None,
            trail: Trail::default(),
            hasher,
            held: VecDeque::new(),
            holding: false,
            done: false,
        }
    }

    /// The audit context recorded with the exchange.
    pub(crate) fn with_trail(mut self, trail: Trail) -> Self {
        self.trail = trail;
        self
    }

    /// Stores these DLP findings with the record.
    pub(crate) fn with_findings(mut self, findings: Findings) -> Self {
        self.findings = Some(findings);
        self
    }

    fn observe(&mut self, event: &StreamEvent) {
        let Some(record) = self.record.as_mut() else {
            return;
        };
        if event.is_output() {
            self.deltas += 1;
            if record.ttft_ms.is_none() {
                record.ttft_ms = Some(elapsed_ms(self.started));
            }
        } else if let StreamEvent::Usage(usage) = event {
            record.usage = *usage;
            record.usage_exact = true;
        }
    }

    /// Writes the record once. Fails only when the audit entry could not be journalled.
    fn close(
        &mut self,
        outcome: Outcome,
        error: Option<&tandem_providers::Error>,
    ) -> Result<(), tandem_audit::Error> {
        let Some(mut record) = self.record.take() else {
            return Ok(());
        };
        record.outcome = outcome;
        record.latency_ms = elapsed_ms(self.started);
        if let Some(err) = error {
            record.status = err.kind().http_status();
            record.error = Some(err.to_string());
        }
        if !record.usage_exact {
            record.usage.output_tokens = self.deltas;
        }
        record.dlp = self.findings.as_ref().and_then(Findings::to_json);
        if let Some(on_close) = self.on_close.take() {
            on_close(&record);
        }
        let mut trail = std::mem::take(&mut self.trail);
        trail.answer_hash = self.hasher.take().map(AnswerHasher::finish);
        self.recorder.finish(record, trail)
    }
}

impl Stream for MeteredStream {
    type Item = tandem_providers::Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(this.held.pop_front().map(Ok));
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => {
                    this.observe(&event);
                    if let Some(hasher) = this.hasher.as_mut() {
                        hasher.event(&event);
                    }
                    if let Some(content) = this.trail.content.as_mut() {
                        capture(&mut content.answer, &event);
                    }
                    this.holding |= matches!(event, StreamEvent::Finish(_));
                    if !this.holding {
                        return Poll::Ready(Some(Ok(event)));
                    }
                    this.held.push_back(event);
                }
                Poll::Ready(Some(Err(err))) => {
                    this.held.clear();
                    this.done = true;
                    // The client gets the error either way; a failed audit append is logged.
                    let _ = this.close(Outcome::Error, Some(&err));
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if let Err(err) = this.close(Outcome::Ok, None) {
                        this.held.clear();
                        return Poll::Ready(Some(Err(tandem_providers::Error::Internal {
                            message: format!("the answer could not be recorded: {err}"),
                        })));
                    }
                }
            }
        }
    }
}

/// Adds an answer event's text to the captured answer, up to [`crate::audit::MAX_CAPTURE`].
fn capture(answer: &mut String, event: &StreamEvent) {
    if answer.len() >= crate::audit::MAX_CAPTURE {
        return;
    }
    match event {
        StreamEvent::TextDelta(t) => answer.push_str(t),
        StreamEvent::ToolCallStart { name, .. } => {
            answer.push_str("\n[tool call ");
            answer.push_str(name);
            answer.push_str("] ");
        }
        StreamEvent::ToolCallDelta { arguments, .. } => answer.push_str(arguments),
        _ => {}
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        let _ = self.close(Outcome::Cancelled, None);
    }
}
