//! Unit tests of the scripted answers and usage numbers.

use std::sync::atomic::AtomicU64;

use crate::options::parse;
use crate::script::{Conversation, Finish, ToolCall, answer, first_line, tool_lines, words};

fn full_text(
    model: &str,
    conversation: &Conversation,
    max_tokens: Option<u64>,
) -> (Option<String>, Finish) {
    let options = parse(model).unwrap();
    let answer = answer(&options, conversation, max_tokens, 4, &AtomicU64::new(1));
    (answer.text.as_ref().map(|text| text.full()), answer.finish)
}

#[test]
fn default_answer_is_hello() {
    let (text, finish) = full_text("m", &Conversation::default(), None);
    assert_eq!(text.as_deref(), Some("hello from testkit"));
    assert_eq!(finish, Finish::Stop);
    assert_eq!(words("hello from testkit").1, 3);
}

#[test]
fn tokens_option_and_max_tokens() {
    let conversation = Conversation::default();
    assert_eq!(
        full_text("m?tokens=3", &conversation, None).0.as_deref(),
        Some("tok0 tok1 tok2 ")
    );
    assert_eq!(
        full_text("m?tokens", &conversation, None).0.as_deref(),
        Some("tok0 tok1 tok2 tok3 ")
    );
    assert_eq!(
        full_text("m?tokens=3", &conversation, Some(2)),
        (Some("tok0 tok1 ".to_owned()), Finish::Length)
    );
    assert_eq!(
        full_text("m?tokens=3", &conversation, Some(3)).1,
        Finish::Stop
    );
    assert_eq!(
        full_text("m?bytes=5", &conversation, None).0.as_deref(),
        Some("xxxxx")
    );
}

#[test]
fn tool_results_and_tool_lines() {
    let conversation = Conversation {
        tool_result: Some("  42 degrees\nsecond line".to_owned()),
        ..Conversation::default()
    };
    assert_eq!(
        full_text("m", &conversation, None).0.as_deref(),
        Some("done: 42 degrees")
    );

    let conversation = Conversation {
        last_user_text: "please\ntestkit-tool: read {\"path\":\"a\"}\n testkit-tool: ls\n"
            .to_owned(),
        ..Conversation::default()
    };
    let options = parse("m").unwrap();
    let answer = answer(&options, &conversation, None, 4, &AtomicU64::new(7));
    assert_eq!(answer.finish, Finish::ToolCalls);
    assert_eq!(answer.text, None);
    assert_eq!(
        answer.tools,
        vec![
            ToolCall {
                number: 7,
                name: "read".to_owned(),
                args: r#"{"path":"a"}"#.to_owned()
            },
            ToolCall {
                number: 8,
                name: "ls".to_owned(),
                args: "{}".to_owned()
            },
        ]
    );
    // 1 + ceil(12 / 4) + 1 + ceil(2 / 4).
    assert_eq!(answer.completion_tokens(), 4 + 2);
}

#[test]
fn helpers() {
    assert_eq!(first_line(&"y".repeat(300)).len(), 200);
    assert_eq!(first_line(""), "");
    assert_eq!(tool_lines("testkit-tool:").count(), 0);
    let (_, len) = words("done:  a b");
    assert_eq!(len, 3);
}

#[test]
fn arg_pieces_split_at_char_boundaries() {
    let call = |args: &str| ToolCall {
        number: 1,
        name: "t".to_owned(),
        args: args.to_owned(),
    };
    assert_eq!(call("").arg_pieces(), vec![""]);
    assert_eq!(call("{}").arg_pieces(), vec!["{", "}"]);
    assert_eq!(call(r#"{"é":"ü"}"#).arg_pieces().concat(), r#"{"é":"ü"}"#);
    assert_eq!(
        call(r#"{"a":1}"#).arg_pieces(),
        vec![r#"{"a"#, r#"":"#, "1}"]
    );
}
