//! Tests for the SSE parser: fixed examples and chunk-split invariance.

use proptest::prelude::*;

use crate::sse::{Event, Parser};

fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
    let mut parser = Parser::new(1 << 20);
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut out).unwrap();
    }
    out
}

#[test]
fn parses_named_and_multiline_events() {
    let got = parse_all(&[b"event: a\ndata: 1\ndata: 2\n\n: comment\ndata:x\r\n\r\nid: 7\n\n"]);
    assert_eq!(
        got,
        vec![
            Event {
                event: Some("a".into()),
                data: "1\n2".into()
            },
            Event {
                event: None,
                data: "x".into()
            },
        ]
    );
}

#[test]
fn incomplete_event_is_reported_at_finish() {
    let mut parser = Parser::new(1024);
    let mut out = Vec::new();
    parser.feed(b"data: {\"a\":1}\n", &mut out).unwrap();
    assert!(out.is_empty());
    assert!(parser.finish());
}

#[test]
fn oversized_event_is_refused() {
    let mut parser = Parser::new(8);
    let mut out = Vec::new();
    let err = parser.feed(b"data: 0123456789\n\n", &mut out).unwrap_err();
    assert!(err.to_string().contains("larger than 8 bytes"), "{err}");
}

proptest! {
    #[test]
    fn split_anywhere_gives_same_events(
        events in proptest::collection::vec(("[a-z.]{0,8}", "[ -~]{0,40}"), 0..6),
        cuts in proptest::collection::vec(0usize..400, 0..10),
        crlf in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        for (name, data) in &events {
            if !name.is_empty() { text.push_str(&format!("event: {name}{nl}")); }
            text.push_str(&format!("data: {data}{nl}{nl}"));
        }
        let bytes = text.as_bytes();
        let whole = parse_all(&[bytes]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for cut in cuts { pieces.push(&bytes[last..cut]); last = cut; }
        pieces.push(&bytes[last..]);
        prop_assert_eq!(parse_all(&pieces), whole.clone());
        prop_assert_eq!(whole.len(), events.len());
    }
}
