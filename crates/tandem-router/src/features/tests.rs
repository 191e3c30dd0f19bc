//! Tests for feature extraction: task classes, verbs, files, tool errors, interrupts, steers, sizes.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_protocol::{ChatRequest, ReasoningEffort};

use crate::features::{FeatureExtractor, is_path_like};
use crate::{Features, SessionFacts, TaskClass, extract};

fn chat(body: Value) -> ChatRequest {
    tandem_translate::openai_chat::decode_request(body.to_string().as_bytes()).unwrap()
}

fn ask(text: &str) -> Features {
    let req = chat(json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": text}]}));
    extract(&req, &SessionFacts::default())
}

#[track_caller]
fn check_class(text: &str, class: TaskClass, deep_verbs: u32, live_verbs: u32) {
    let f = ask(text);
    assert_eq!(
        (f.task_class, f.deep_verbs, f.live_verbs),
        (class, deep_verbs, live_verbs),
        "{text}"
    );
}

#[test]
fn task_class_and_verbs() {
    use TaskClass::*;
    check_class("rename `get_user` to `fetch_user`", Rename, 0, 1);
    check_class("Fix the typo in README.md", Rename, 0, 1);
    check_class("bump serde to 1.0.210", Rename, 0, 1);
    check_class("run rustfmt and fix the formatting", Rename, 0, 2);
    check_class("fix the failing test in tests/parser.rs", Fix, 0, 0);
    check_class(
        "cargo build fails with a borrow error, please fix",
        Fix,
        0,
        0,
    );
    check_class("add unit tests for parse_duration", Test, 0, 0);
    check_class("add a test for the bug in the tokenizer", Test, 0, 0);
    check_class("refactor the session store", Refactor, 1, 0);
    check_class("extract the retry loop into a helper", Refactor, 0, 0);
    check_class("migrate the config from YAML to TOML", Migration, 1, 0);
    check_class("upgrade axum from 0.7 to 0.8", Migration, 1, 0);
    check_class("document the public API of the store crate", Docs, 0, 0);
    check_class("add a doc comment to Router::route", Docs, 0, 1);
    check_class("update the CI workflow to cache cargo", Config, 0, 0);
    check_class(
        "why does the stream stall after the first chunk?",
        Other,
        1,
        0,
    );
    check_class("design a plugin architecture for providers", Other, 2, 0);
    check_class("investigate the flaky race in the scheduler", Other, 3, 0);
    check_class("hello", Other, 0, 0);
    // Word starts and allowed suffixes only.
    check_class(
        "the report is portable and the prefix is latest",
        Other,
        0,
        0,
    );
    check_class("it keeps failing", Fix, 0, 0);
    check_class("rename it across the codebase", Rename, 2, 1);
    // Words inside paths do not count; the named file votes for its kind.
    check_class("enable the `strict` option in tsconfig.json", Config, 0, 0);
    check_class("tidy up docs/guide.md", Docs, 0, 0);
    check_class("look at src/config.rs and tests/it/parse.rs", Test, 0, 0);
    check_class("replace the status string with an enum", Refactor, 0, 0);
}

#[test]
fn file_kinds() {
    use super::file_class;
    use TaskClass::*;
    for (path, class) in [
        ("tests/it/parse.rs", Some(Test)),
        ("src/utils/date.test.ts", Some(Test)),
        ("app/test_orders.py", Some(Test)),
        ("pkg/server_test.go", Some(Test)),
        ("Cargo.toml", Some(Config)),
        (".github/workflows/ci.yml", Some(Config)),
        ("Dockerfile", Some(Config)),
        ("tsconfig.json", Some(Config)),
        ("requirements.txt", Some(Config)),
        ("README.md", Some(Docs)),
        ("docs/guide.rst", Some(Docs)),
        ("src/lib.rs", None),
        ("src/config.rs", None),
    ] {
        assert_eq!(file_class(path), class, "{path}");
    }
}

#[track_caller]
fn check_files(text: &str, expect: &[&str]) {
    let mut files = Vec::new();
    super::collect_files(text, &mut files);
    assert_eq!(files, expect, "{text}");
    assert_eq!(ask(text).files_named as usize, expect.len(), "{text}");
}

#[test]
fn files_named() {
    check_files("fix src/foo.rs", &["src/foo.rs"]);
    check_files(
        "update ./a/b.py and Cargo.toml, then `crates/x/src/lib.rs:42`.",
        &["a/b.py", "Cargo.toml", "crates/x/src/lib.rs"],
    );
    check_files(
        "src/foo.rs and ./src/foo.rs and src/foo.rs:10:4",
        &["src/foo.rs"],
    );
    check_files(
        "edit the Makefile and .github/workflows/ci.yml",
        &["Makefile", ".github/workflows/ci.yml"],
    );
    check_files("see https://example.com/a.rs and Node.js, e.g. v1.2.3", &[]);
    check_files("self.config and foo::bar() and and/or", &[]);
    check_files("look in ../shared/notes", &["../shared/notes"]);
    check_files(
        "(lib.rs) [mod.rs] \"main.go\" 'app.tsx'",
        &["lib.rs", "mod.rs", "main.go", "app.tsx"],
    );
}

#[test]
fn path_like_tokens() {
    assert_eq!(is_path_like("src/lib.rs:12:3"), Some("src/lib.rs"));
    assert_eq!(is_path_like("@src/app.ts"), Some("src/app.ts"));
    assert_eq!(is_path_like("file.unknownext"), None);
    assert_eq!(is_path_like(".gitignore"), Some(".gitignore"));
    assert_eq!(is_path_like("./"), None);
}

#[track_caller]
fn check_output(content: &str, failed: bool) {
    let x = FeatureExtractor::build().unwrap();
    assert_eq!(x.output_failed(content), failed, "{content:?}");
}

#[test]
fn tool_output_failures() {
    check_output("Exit code: 0\nWall time: 1.2s\nOutput:\nok", false);
    check_output("Exit code: 1\nOutput:\n", true);
    check_output("exit code 101", true);
    check_output("Process exited with code 2", true);
    check_output("exit status 10", true);
    check_output(
        "Exit code: 0\nwarning: unused\nerror: nothing really",
        false,
    );
    check_output("Exit code: 0\nthen exit code 3", false);
    check_output("error: linking failed\nexit code 0", true);
    check_output("error[E0308]: mismatched types", true);
    check_output("test result: FAILED. 3 passed; 1 failed", true);
    check_output("Traceback (most recent call last):\n  File \"a.py\"", true);
    check_output("thread 'main' panicked at src/main.rs:3:5", true);
    check_output("bash: rg: command not found", true);
    check_output("README.md\nsrc\n", false);
    check_output("no errors found", false);
    check_output("exit code 0x", false);
}

fn agent_history(outputs: &[(&str, bool)], tail: Option<&str>) -> ChatRequest {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a coding agent."}),
        json!({"role": "user", "content": "fix the failing test in tests/it/parse.rs"}),
    ];
    for (i, (output, _)) in outputs.iter().enumerate() {
        let id = format!("call_{i}");
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\":\"cargo test\"}"}}]}));
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
    }
    if let Some(tail) = tail {
        messages.push(json!({"role": "user", "content": tail}));
    }
    chat(json!({"model": "auto", "messages": messages}))
}

#[test]
fn tool_errors_and_trailing() {
    let req = agent_history(
        &[("Exit code: 1\nFAILED", true), ("Exit code: 0\nok", false)],
        None,
    );
    let f = extract(&req, &SessionFacts::default());
    assert_eq!((f.tool_errors, f.trailing_tool_error), (1, false));

    let req = agent_history(
        &[("Exit code: 0", false), ("error: could not compile", true)],
        None,
    );
    let f = extract(&req, &SessionFacts::default());
    assert_eq!((f.tool_errors, f.trailing_tool_error), (1, true));
    assert_eq!((f.turns, f.messages, f.task_class), (1, 6, TaskClass::Fix));
    // A user message right after a tool result is a steer.
    let req = agent_history(&[("Exit code: 0", false)], Some("no, the other test"));
    let f = extract(&req, &SessionFacts::default());
    assert_eq!((f.steers, f.turns, f.task_class), (1, 2, TaskClass::Test));
}

#[test]
fn turn_aborted_and_synthetic_parts() {
    let req = tandem_translate::openai_responses::decode_request(
        json!({"model": "auto", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text",
             "text": "<environment_context>\n  <cwd>/work</cwd>\n</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "refactor src/a.rs"}]},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "aborted"},
            {"type": "message", "role": "user", "content": [{"type": "input_text",
             "text": "<turn_aborted><turn_id>t1</turn_id><reason>interrupted</reason></turn_aborted>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "just rename it"}]}
        ], "reasoning": {"effort": "high"}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let session = SessionFacts {
        interrupts: 1,
        steers: 2,
        prior_failures: 3,
        retries: 4,
        escalated: true,
    };
    let f = extract(&req, &session);
    assert_eq!(f.interrupts, 2);
    assert_eq!(
        f.steers, 2,
        "the turn_aborted marker sits between the tool result and the user"
    );
    assert_eq!(f.turns, 2);
    assert_eq!(f.task_class, TaskClass::Rename);
    assert_eq!(f.last_user_tokens, 4, "\"just rename it\" is 14 chars");
    assert_eq!(f.reasoning_effort, Some(ReasoningEffort::High));
    assert_eq!((f.prior_failures, f.retries, f.escalated), (3, 4, true));
    assert_eq!(
        f.tool_errors, 0,
        "an aborted call is an interrupt, not an error"
    );
}

#[test]
fn sizes_are_chars_over_four() {
    let req = chat(json!({"model": "auto", "messages": [
        {"role": "system", "content": "12345678"},
        {"role": "user", "content": "ééé"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}));
    let f = extract(&req, &SessionFacts::default());
    assert_eq!((f.prompt_tokens, f.last_user_tokens), (3, 1));
    assert_eq!((f.messages, f.tools, f.turns), (2, 1, 1));
}

#[test]
fn no_user_message() {
    let req = chat(json!({"model": "auto", "messages": [{"role": "system", "content": "x"}]}));
    let f = extract(&req, &SessionFacts::default());
    assert_eq!(
        (f.turns, f.task_class, f.last_user_tokens),
        (0, TaskClass::Other, 0)
    );
}

#[test]
fn task_class_round_trips() {
    for class in TaskClass::ALL {
        assert_eq!(TaskClass::parse(class.as_str()), Some(class));
        assert_eq!(
            serde_json::to_value(class).unwrap(),
            Value::String(class.as_str().to_owned())
        );
    }
    assert_eq!(TaskClass::parse("Rename"), None);
}

#[test]
fn features_serialize_for_logs() {
    let f = ask("rename a.rs");
    let v = serde_json::to_value(&f).unwrap();
    assert_eq!(v["task_class"], "rename");
    assert_eq!(v["reasoning_effort"], Value::Null);
    assert_eq!(v["files_named"], 1);
}
