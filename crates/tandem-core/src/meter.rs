//! A stream wrapper that meters an answer as it passes and writes its record exactly once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Stream;
use tandem_protocol::StreamEvent;
use tandem_providers::EventStream;
use tandem_store::{Outcome, RequestRecord};

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
}

impl MeteredStream {
    pub(crate) fn new(
        inner: EventStream,
        record: RequestRecord,
        started: Instant,
        recorder: Arc<Recorder>,
        on_close: Option<OnClose>,
    ) -> Self {
        MeteredStream {
            inner,
            record: Some(record),
            started,
            recorder,
            deltas: 0,
            on_close,
            findings: None,
        }
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
        match event {
            StreamEvent::TextDelta(_)
            | StreamEvent::ReasoningDelta(_)
            | StreamEvent::ToolCallStart { .. }
            | StreamEvent::ToolCallDelta { .. } => {
                self.deltas += 1;
                if record.ttft_ms.is_none() {
                    record.ttft_ms = Some(elapsed_ms(self.started));
                }
            }
            StreamEvent::Usage(usage) => {
                record.usage = *usage;
                record.usage_exact = true;
            }
            StreamEvent::Start { .. }
            | StreamEvent::ReasoningSignature(_)
            | StreamEvent::Finish(_) => {}
        }
    }

    fn close(&mut self, outcome: Outcome, error: Option<&tandem_providers::Error>) {
        let Some(mut record) = self.record.take() else {
            return;
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
        self.recorder.finish(record);
    }
}

impl Stream for MeteredStream {
    type Item = tandem_providers::Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(event))) => {
                this.observe(&event);
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.close(Outcome::Error, Some(&err));
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.close(Outcome::Ok, None);
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        self.close(Outcome::Cancelled, None);
    }
}
