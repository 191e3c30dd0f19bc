//! Fuzz target: tandem-translate's SSE parser gives the same events and the same error however the
//! input is split into chunks, never emits an event larger than its size limit, and a limit only
//! ever cuts the event list short, never changes it; an event written back with `sse::frame` parses
//! to itself.
//!
//! Input layout: byte 0 picks the size limit (`LIMITS`, low three bits). Byte 1 is a header: if its
//! high bit is set the stream is fed one byte at a time; otherwise its low five bits are a count `n`,
//! and the next `n` bytes are chunk lengths (0 feeds an empty chunk). The rest is the stream; what the
//! lengths leave over is the last chunk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_translate::sse::{Event, Parser, frame};

/// The size limits byte 0 chooses from: small ones so that the limit is reached often.
const LIMITS: [usize; 8] = [0, 1, 7, 16, 64, 256, 4096, 1 << 20];

/// What one parse gave: the events, the error message if it stopped on one, and `finish`'s answer
/// when it did not.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    error: Option<String>,
    pending: Option<bool>,
}

fn parse<'a>(limit: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = Parser::new(limit);
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(err) = parser.feed(chunk, &mut events) {
            return Outcome {
                events,
                error: Some(err.to_string()),
                pending: None,
            };
        }
    }
    Outcome {
        events,
        error: None,
        pending: Some(parser.finish()),
    }
}

/// Splits `stream` as the header asks.
fn chunks<'a>(header: u8, lengths: &[u8], stream: &'a [u8]) -> Vec<&'a [u8]> {
    if header & 0x80 != 0 {
        return stream.chunks(1).collect();
    }
    let mut out = Vec::with_capacity(lengths.len() + 1);
    let mut at = 0;
    for &length in lengths {
        let end = (at + usize::from(length)).min(stream.len());
        out.push(&stream[at..end]);
        at = end;
    }
    out.push(&stream[at..]);
    out
}

fuzz_target!(|data: &[u8]| {
    let [selector, header, rest @ ..] = data else {
        return;
    };
    let limit = LIMITS[usize::from(selector & 7)];
    let count = if header & 0x80 != 0 {
        0
    } else {
        usize::from(header & 0x1f).min(rest.len())
    };
    let (lengths, stream) = rest.split_at(count);

    let whole = parse(limit, [stream]);
    let split = parse(limit, chunks(*header, lengths, stream));
    assert_eq!(
        split,
        whole,
        "split {:?} differs from whole for {stream:?}",
        chunks(*header, lengths, stream)
    );

    for event in &whole.events {
        let size = event.data.len() + event.event.as_ref().map_or(0, String::len);
        assert!(
            size <= limit,
            "event of {size} bytes passed the limit of {limit}: {event:?}"
        );
    }

    let unlimited = parse(usize::MAX, [stream]);
    assert!(
        unlimited.events.starts_with(&whole.events),
        "the limit {limit} changed the events: {:?} vs {:?}",
        whole.events,
        unlimited.events
    );
    if whole.error.is_none() {
        assert_eq!(
            whole, unlimited,
            "the limit {limit} changed a stream it did not refuse"
        );
    }

    // `frame` writes single-line data; the parser joins data lines with `\n`.
    for event in unlimited.events.iter().filter(|e| !e.data.contains('\n')) {
        let text = frame(event.event.as_deref(), &event.data);
        let again = parse(usize::MAX, [text.as_bytes()]);
        assert_eq!(
            again.events,
            vec![event.clone()],
            "{event:?} framed as {text:?} does not parse back"
        );
    }
});
