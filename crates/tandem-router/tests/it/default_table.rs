//! The default rule table on representative requests: `check(prompt, tier, rule)`.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_router::{Decision, Router, RouterConfig, SessionFacts, extract};

fn router() -> Router {
    Router::new(RouterConfig::new("live", "deep")).unwrap()
}

fn route(body: Value, session: &SessionFacts) -> Decision {
    let req = tandem_translate::openai_chat::decode_request(body.to_string().as_bytes()).unwrap();
    router().route(&extract(&req, session))
}

fn ask(prompt: &str) -> Value {
    json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": prompt}]})
}

/// The tier and deciding rule (`None` = no rule matched) for a one-message request.
#[track_caller]
fn check(prompt: &str, tier: &str, rule: Option<&str>) {
    let d = route(ask(prompt), &SessionFacts::default());
    assert_eq!(
        (d.tier.as_str(), d.rule.as_deref()),
        (tier, rule),
        "{prompt}\n{}",
        d.reason
    );
}

#[test]
fn spot_edits_go_live() {
    check(
        "rename `get_user` to `fetch_user` in src/users.rs",
        "live",
        Some("spot-edit"),
    );
    check("fix the typo in README.md", "live", Some("spot-edit"));
    check(
        "bump serde to 1.0.210 in Cargo.toml",
        "live",
        Some("spot-edit"),
    );
    check(
        "update the CI workflow to cache the cargo registry",
        "live",
        Some("spot-edit"),
    );
    check(
        "add a doc comment to `Router::route`",
        "live",
        Some("spot-edit"),
    );
    check(
        "set max_connections to 64 in config/production.toml",
        "live",
        Some("spot-edit"),
    );
}

#[test]
fn unmatched_requests_go_live_without_a_scorer() {
    check("add unit tests for parse_duration", "live", None);
    check(
        "fix the bug where parse panics on empty input",
        "live",
        None,
    );
    // Two files is not a spot edit any more, nor multi-file yet.
    check("rename foo to bar in src/a.rs and src/b.rs", "live", None);
}

#[test]
fn deep_signals() {
    check("refactor the session store", "deep", Some("deep-verbs"));
    check(
        "extract the retry loop into a helper",
        "deep",
        Some("deep-class"),
    );
    check(
        "migrate the server from axum 0.7 to 0.8",
        "deep",
        Some("deep-verbs"),
    );
    check(
        "update src/a.rs, src/b.rs and src/c.rs to use the new logger",
        "deep",
        Some("multi-file"),
    );
    check(
        "why does the stream stall after the first chunk?",
        "deep",
        Some("deep-verbs"),
    );
    check(
        "fix the flaky test in tests/it/session.rs",
        "deep",
        Some("deep-verbs"),
    );
    check(
        "rename `Config` to `Settings` everywhere",
        "deep",
        Some("deep-verbs"),
    );
    check(&"add this endpoint: ".repeat(300), "deep", Some("long-ask"));
}

#[test]
fn size_and_effort() {
    let mut body = ask("add a unit test for parse_args");
    body["messages"][0]["content"] = json!("x".repeat(200_000));
    let d = route(body, &SessionFacts::default());
    assert_eq!(d.reason, "rule:big-context prompt_tokens=50008>48000");

    let mut body = ask("add a unit test for parse_args");
    body["reasoning_effort"] = json!("high");
    let d = route(body, &SessionFacts::default());
    assert_eq!(d.reason, "rule:high-effort reasoning_effort=high>=high");
}

fn agent(outputs: &[&str]) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a coding agent."}),
        json!({"role": "user", "content": "rename `foo` to `bar` in src/lib.rs"}),
    ];
    for (i, output) in outputs.iter().enumerate() {
        let id = format!("call_{i}");
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": id,
            "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\":\"cargo check\"}"}}]}));
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
    }
    json!({"model": "auto", "messages": messages})
}

#[test]
fn escalation_comes_first() {
    let none = SessionFacts::default();
    // A spot edit whose last check passed stays live; a red build escalates it.
    assert_eq!(
        route(agent(&["Exit code: 0\nOutput:\n"]), &none).tier,
        "live"
    );
    let d = route(
        agent(&["Exit code: 0", "error[E0425]: cannot find value `bar`"]),
        &none,
    );
    assert_eq!(
        d.reason,
        "rule:tool-error-escalates trailing_tool_error=true==true"
    );
    let d = route(
        agent(&[
            "Exit code: 1",
            "Exit code: 1",
            "Exit code: 1",
            "Exit code: 0",
        ]),
        &none,
    );
    assert_eq!(d.reason, "rule:repeated-tool-errors tool_errors=3>=3");

    for (session, rule) in [
        (
            SessionFacts {
                escalated: true,
                ..SessionFacts::default()
            },
            "sticky-escalation",
        ),
        (
            SessionFacts {
                prior_failures: 1,
                ..SessionFacts::default()
            },
            "failure-escalates",
        ),
        (
            SessionFacts {
                retries: 2,
                ..SessionFacts::default()
            },
            "retry-escalates",
        ),
        (
            SessionFacts {
                interrupts: 2,
                ..SessionFacts::default()
            },
            "repeated-interrupts",
        ),
    ] {
        let d = route(ask("rename foo to bar"), &session);
        assert_eq!((d.tier.as_str(), d.rule.as_deref()), ("deep", Some(rule)));
    }
}

#[test]
fn codex_interrupts_count() {
    let aborted = "<turn_aborted><turn_id>t</turn_id><reason>interrupted</reason></turn_aborted>";
    let body = json!({"model": "auto", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "rename foo to bar"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": aborted}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "rename foo to bar"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": aborted}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go on"}]}
    ]});
    let req =
        tandem_translate::openai_responses::decode_request(body.to_string().as_bytes()).unwrap();
    let f = extract(&req, &SessionFacts::default());
    assert_eq!(
        (f.interrupts, f.task_class.as_str()),
        (2, "rename"),
        "the bare steer falls back to the ask"
    );
    assert_eq!(
        router().route(&f).rule.as_deref(),
        Some("repeated-interrupts")
    );
}
