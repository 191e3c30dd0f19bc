//! The streaming state machine shared by both APIs: pacing, scripted faults, batching and cancellation accounting.
//!
//! At full speed, consecutive events are batched into frames of about 16 KiB; when paced, each chunk is its own
//! frame and is handed to hyper as soon as it is due.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Frame;
use tokio::time::Instant;

use crate::Error;
use crate::options::{Fault, FaultKind};
use crate::script::{Answer, Text, ToolCall};
use crate::server::State;

/// Response body type of the server.
pub(crate) type Body = UnsyncBoxBody<Bytes, Error>;

/// Frames are flushed once they reach this size at full speed.
const FRAME_TARGET: usize = 16 * 1024;

/// How long a scripted reset waits after the last frame, for hyper to write it out.
const RESET_GRACE: Duration = Duration::from_millis(10);

/// An API's encoding of the abstract stream events.
pub(crate) trait Wire: Send + 'static {
    fn start(&mut self, answer: &Answer, out: &mut BytesMut);
    fn text_start(&mut self, out: &mut BytesMut);
    fn token(&mut self, text: &Text, i: usize, out: &mut BytesMut);
    fn text_stop(&mut self, out: &mut BytesMut);
    fn tool_start(&mut self, index: usize, call: &ToolCall, out: &mut BytesMut);
    fn tool_args(&mut self, index: usize, piece: &str, out: &mut BytesMut);
    fn tool_stop(&mut self, index: usize, out: &mut BytesMut);
    /// The terminal events: finish reason, usage and end marker.
    fn finish(&mut self, answer: &Answer, out: &mut BytesMut);
    /// An event whose data is not JSON.
    fn malformed(&mut self, out: &mut BytesMut);
}

/// How a stream is paced and which fault it carries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
    /// Tokens per second; `None` is full speed.
    pub(crate) rate: Option<f64>,
    pub(crate) first_token: Duration,
    pub(crate) fault: Option<Fault>,
}

/// Builds the streaming body and counts the stream as started.
pub(crate) fn body<W: Wire>(state: Arc<State>, wire: W, answer: Answer, pacing: Pacing) -> Body {
    state.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let streamer = Streamer {
        state,
        wire,
        answer,
        pacing,
        phase: Phase::Start,
        units: 0,
        unflushed_units: 0,
        base: None,
        buf: BytesMut::new(),
        ended: false,
    };
    let frames = futures::stream::unfold(streamer, |mut streamer| async move {
        let frame = streamer.next_frame().await?;
        Some((frame.map(Frame::data), streamer))
    });
    http_body_util::StreamBody::new(frames).boxed_unsync()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    TextStart,
    Token(usize),
    TextStop,
    ToolStart(usize),
    ToolArgs(usize, usize),
    ToolStop(usize),
    Finish,
    Done,
}

struct Streamer<W> {
    state: Arc<State>,
    wire: W,
    answer: Answer,
    pacing: Pacing,
    phase: Phase,
    /// Paced chunks emitted so far.
    units: u64,
    /// Paced chunks not yet added to the stats.
    unflushed_units: u64,
    /// When the first paced chunk was due.
    base: Option<Instant>,
    buf: BytesMut,
    /// The stream reached its scripted end; dropping it now is not a cancellation.
    ended: bool,
}

impl<W: Wire> Streamer<W> {
    async fn next_frame(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            if self.buf.len() >= FRAME_TARGET {
                return Some(Ok(self.take()));
            }
            match self.phase {
                Phase::Done => {
                    if !self.buf.is_empty() {
                        return Some(Ok(self.take()));
                    }
                    self.end();
                    return None;
                }
                Phase::Token(_) | Phase::ToolStart(_) | Phase::ToolArgs(..) => {
                    if let Some(fault) = self.pacing.fault
                        && self.units == u64::from(fault.after)
                    {
                        return self.fault(fault).await;
                    }
                    if let Some(frame) = self.wait_for_unit().await {
                        return Some(Ok(frame));
                    }
                    self.emit();
                    self.units += 1;
                    self.unflushed_units += 1;
                }
                Phase::Finish => {
                    if let Some(fault) = self.pacing.fault {
                        return self.fault(fault).await;
                    }
                    self.emit();
                }
                _ => self.emit(),
            }
        }
    }

    /// Waits until the next paced chunk is due; returns the pending frame first if there is one to flush.
    async fn wait_for_unit(&mut self) -> Option<Bytes> {
        if self.base.is_none() {
            if !self.pacing.first_token.is_zero() {
                if !self.buf.is_empty() {
                    return Some(self.take());
                }
                tokio::time::sleep(self.pacing.first_token).await;
            }
            self.base = Some(Instant::now());
        }
        let (Some(rate), Some(base)) = (self.pacing.rate, self.base) else {
            return None;
        };
        let due = base + Duration::from_secs_f64(self.units as f64 / rate);
        if due > Instant::now() {
            if !self.buf.is_empty() {
                return Some(self.take());
            }
            tokio::time::sleep_until(due).await;
        }
        None
    }

    /// Plays a scripted fault; the pending frame goes out first.
    async fn fault(&mut self, fault: Fault) -> Option<Result<Bytes, Error>> {
        if !self.buf.is_empty() {
            return Some(Ok(self.take()));
        }
        match fault.kind {
            FaultKind::Reset => {
                // Give hyper time to flush what was sent, so the client sees exactly `after` chunks before the abort.
                tokio::time::sleep(RESET_GRACE).await;
                self.end();
                Some(Err(Error::ScriptedReset { after: fault.after }))
            }
            FaultKind::Stall => {
                self.flush_units();
                futures::future::pending().await
            }
            FaultKind::Malformed => {
                self.wire.malformed(&mut self.buf);
                self.phase = Phase::Done;
                Some(Ok(self.take()))
            }
            FaultKind::Truncate => {
                self.phase = Phase::Done;
                self.end();
                None
            }
        }
    }

    /// Encodes the event of the current phase and moves to the next one.
    fn emit(&mut self) {
        let Self {
            wire, answer, buf, ..
        } = self;
        let text_len = answer.text.as_ref().map(Text::len);
        self.phase = match self.phase {
            Phase::Start => {
                wire.start(answer, buf);
                match &answer.text {
                    Some(_) => Phase::TextStart,
                    None => first_tool(answer),
                }
            }
            Phase::TextStart => {
                wire.text_start(buf);
                match text_len {
                    Some(len) if len > 0 => Phase::Token(0),
                    _ => Phase::TextStop,
                }
            }
            Phase::Token(i) => {
                if let Some(text) = &answer.text {
                    wire.token(text, i, buf);
                }
                match text_len {
                    Some(len) if i + 1 < len => Phase::Token(i + 1),
                    _ => Phase::TextStop,
                }
            }
            Phase::TextStop => {
                wire.text_stop(buf);
                first_tool(answer)
            }
            Phase::ToolStart(index) => {
                wire.tool_start(index, &answer.tools[index], buf);
                Phase::ToolArgs(index, 0)
            }
            Phase::ToolArgs(index, piece) => {
                let pieces = answer.tools[index].arg_pieces();
                wire.tool_args(index, pieces[piece], buf);
                if piece + 1 < pieces.len() {
                    Phase::ToolArgs(index, piece + 1)
                } else {
                    Phase::ToolStop(index)
                }
            }
            Phase::ToolStop(index) => {
                wire.tool_stop(index, buf);
                if index + 1 < answer.tools.len() {
                    Phase::ToolStart(index + 1)
                } else {
                    Phase::Finish
                }
            }
            Phase::Finish => {
                wire.finish(answer, buf);
                Phase::Done
            }
            Phase::Done => Phase::Done,
        };
    }

    fn take(&mut self) -> Bytes {
        self.flush_units();
        self.buf.split().freeze()
    }

    fn flush_units(&mut self) {
        if self.unflushed_units > 0 {
            self.state
                .stats
                .tokens_sent
                .fetch_add(self.unflushed_units, Ordering::Relaxed);
            self.unflushed_units = 0;
        }
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.flush_units();
            self.state
                .stats
                .streams_completed
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn first_tool(answer: &Answer) -> Phase {
    match answer.tools.is_empty() {
        true => Phase::Finish,
        false => Phase::ToolStart(0),
    }
}

impl<W> Drop for Streamer<W> {
    fn drop(&mut self) {
        if !self.ended {
            self.state
                .stats
                .streams_cancelled
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(units = self.units, "testkit stream cancelled by the client");
        }
    }
}
