//! Tests of how a streamed answer is pulled from the upstream's body: decoded event by event, as pulled.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tandem_protocol::StreamEvent;
use tandem_translate::{StreamDecoder, sse};

use super::{ByteStream, Pull};
use crate::Error;

/// Decodes each `data:` as one text delta (`[DONE]` ends the answer), counting its calls.
struct Counting {
    calls: Arc<AtomicUsize>,
    done: bool,
}

impl StreamDecoder for Counting {
    fn decode(&mut self, event: &sse::Event) -> tandem_translate::Result<Vec<StreamEvent>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if event.data == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        Ok(vec![StreamEvent::TextDelta(event.data.clone())])
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// The pull state of a body made of `reads`, and its decoder's call counter.
fn pull(reads: &[&'static str]) -> (Arc<AtomicUsize>, Pull) {
    let calls = Arc::new(AtomicUsize::new(0));
    let chunks: Vec<reqwest::Result<Bytes>> = reads
        .iter()
        .map(|r| Ok(Bytes::from_static(r.as_bytes())))
        .collect();
    let body: ByteStream = Box::pin(futures::stream::iter(chunks));
    let state = Pull {
        provider: "up".to_owned(),
        body,
        parser: sse::Parser::new(1 << 20),
        decoder: Box::new(Counting {
            calls: Arc::clone(&calls),
            done: false,
        }),
        pending: VecDeque::new(),
        sse_events: Vec::new(),
        decoded: 0,
        idle: Duration::from_secs(5),
        ended: false,
        deferred: None,
    };
    (calls, state)
}

fn text(event: Option<Result<StreamEvent, Error>>) -> String {
    match event {
        Some(Ok(StreamEvent::TextDelta(text))) => text,
        other => panic!("expected a text delta, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_event_of_a_read_goes_out_before_the_rest_of_the_read_is_decoded() {
    let (calls, state) = pull(&["data: a\n\ndata: b\n\ndata: c\n\ndata: [DONE]\n\n"]);
    let mut events = Box::pin(futures::stream::unfold(state, Pull::next));
    assert_eq!(text(events.next().await), "a");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "only the first event is decoded"
    );
    assert_eq!(text(events.next().await), "b");
    assert_eq!(text(events.next().await), "c");
    assert!(events.next().await.is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn events_after_the_end_of_the_answer_are_not_decoded() {
    let (calls, state) = pull(&[
        "data: a\n\ndata: [DONE]\n\ndata: late\n\n",
        "data: later\n\n",
    ]);
    let mut events = Box::pin(futures::stream::unfold(state, Pull::next));
    assert_eq!(text(events.next().await), "a");
    assert!(events.next().await.is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_that_ends_early_fails_after_every_event_it_carried() {
    let (_, state) = pull(&["data: a\n\ndata: b", "\n\n"]);
    let mut events = Box::pin(futures::stream::unfold(state, Pull::next));
    assert_eq!(text(events.next().await), "a");
    assert_eq!(text(events.next().await), "b");
    assert!(matches!(
        events.next().await,
        Some(Err(Error::Truncated { .. }))
    ));
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn a_read_that_breaks_the_framing_fails_after_the_events_of_earlier_reads() {
    // An event over the parser's limit breaks the framing.
    let (_, mut state) = pull(&["data: a\n\n", "data: ", "0123456789\n\n"]);
    state.parser = sse::Parser::new(8);
    let mut events = Box::pin(futures::stream::unfold(state, Pull::next));
    assert_eq!(text(events.next().await), "a");
    assert!(matches!(
        events.next().await,
        Some(Err(Error::Malformed { .. }))
    ));
    assert!(events.next().await.is_none());
}
