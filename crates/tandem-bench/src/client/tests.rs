//! Tests of the SSE counter and the answer checks.

use http::StatusCode;

use crate::client::{SseCounter, StreamOutcome, check_completion, expected_bytes};

fn stream_text(tokens: u32) -> String {
    let mut text = String::from(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    );
    for i in 0..tokens {
        text.push_str(&format!(
            "data: {{\"choices\": [{{\"index\": 0, \"delta\": {{\"content\": \"tok{i} \"}}}}]}}\r\n\r\n"
        ));
    }
    text.push_str("data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\n");
    text.push_str(": keep-alive comment\n\ndata: [DONE]\n\n");
    text
}

#[test]
fn counts_deltas_whatever_the_frame_cuts() {
    let text = stream_text(12);
    for cut in [1, 2, 7, 50, 300, text.len()] {
        let mut counter = SseCounter::default();
        for piece in text.as_bytes().chunks(cut) {
            counter.feed(piece);
        }
        assert_eq!(counter.deltas, 12, "cut {cut}");
        assert_eq!(counter.content_bytes, expected_bytes(12), "cut {cut}");
        assert!(counter.done, "cut {cut}");
        assert_eq!(counter.bad_events, 0, "cut {cut}");
    }
}

#[test]
fn error_events_and_garbage_are_reported() {
    let mut counter = SseCounter::default();
    counter.feed(b"data: {not json\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\n");
    assert_eq!(counter.bad_events, 2);
    assert!(
        counter
            .first_error
            .as_deref()
            .is_some_and(|e| e.contains("boom"))
    );
}

#[test]
fn expected_bytes_counts_digits() {
    assert_eq!(expected_bytes(0), 0);
    assert_eq!(expected_bytes(1), "tok0 ".len() as u64);
    let text: String = (0..123).map(|i| format!("tok{i} ")).collect();
    assert_eq!(expected_bytes(123), text.len() as u64);
}

#[test]
fn stream_check_wants_the_exact_answer() {
    let good = StreamOutcome {
        status: 200,
        deltas: 3,
        content_bytes: expected_bytes(3),
        done: true,
        ..StreamOutcome::default()
    };
    assert_eq!(good.check(3), Ok(()));
    assert!(good.check(4).is_err());
    let undone = StreamOutcome {
        done: false,
        ..good.clone()
    };
    assert!(undone.check(3).is_err());
}

#[test]
fn completion_check() {
    let body = br#"{"choices":[{"message":{"role":"assistant","content":"tok0 tok1 "}}]}"#;
    assert_eq!(check_completion(StatusCode::OK, body, 2), Ok(()));
    assert!(check_completion(StatusCode::OK, body, 3).is_err());
    assert!(check_completion(StatusCode::BAD_GATEWAY, b"{}", 2).is_err());
}
