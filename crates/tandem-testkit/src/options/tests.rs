//! Unit tests of model-string option parsing.

use std::time::Duration;

use crate::options::{Fault, FaultKind, Options, Tokens, ToolOption, parse};

#[track_caller]
fn check(model: &str, expect: Result<Options, &str>) {
    assert_eq!(
        parse(model),
        expect.map_err(str::to_owned),
        "model string `{model}`"
    );
}

#[test]
fn plain_names_have_no_options() {
    check("gpt-4o", Ok(Options::default()));
    check("gpt-4o?", Ok(Options::default()));
}

#[test]
fn numbers_and_durations() {
    check(
        "m?tokens=5&rate=200.5&delay_ms=10&first_token_ms=20&status=429&bytes=7",
        Ok(Options {
            tokens: Some(Tokens::Count(5)),
            rate: Some(200.5),
            delay: Duration::from_millis(10),
            first_token: Duration::from_millis(20),
            status: Some(429),
            bytes: Some(7),
            ..Options::default()
        }),
    );
    check(
        "m?tokens",
        Ok(Options {
            tokens: Some(Tokens::Default),
            ..Options::default()
        }),
    );
}

#[test]
fn faults() {
    for (key, kind) in [
        ("reset_after", FaultKind::Reset),
        ("stall_after", FaultKind::Stall),
        ("malformed_after", FaultKind::Malformed),
        ("truncate_after", FaultKind::Truncate),
    ] {
        check(
            &format!("m?{key}=3"),
            Ok(Options {
                fault: Some(Fault { kind, after: 3 }),
                ..Options::default()
            }),
        );
    }
    check(
        "m?reset_after=1&stall_after=2",
        Err(
            "at most one of `reset_after`, `stall_after`, `malformed_after`, `truncate_after` may be given",
        ),
    );
}

#[test]
fn tools_with_urlencoded_args() {
    check(
        "m?tool=get_weather&args=%7B%22city%22%3A%22Paris%22%7D",
        Ok(Options {
            tool: Some(ToolOption {
                name: "get_weather".to_owned(),
                args: r#"{"city":"Paris"}"#.to_owned(),
            }),
            ..Options::default()
        }),
    );
    check(
        "m?tool=noop",
        Ok(Options {
            tool: Some(ToolOption {
                name: "noop".to_owned(),
                args: "{}".to_owned(),
            }),
            ..Options::default()
        }),
    );
    check("m?args={}", Err("model option `args` needs `tool`"));
}

#[test]
fn rejects_typos_and_bad_values() {
    check("m?tokenz=3", Err("unknown model option `tokenz`"));
    check(
        "m?tokens=x",
        Err("model option `tokens` has an invalid value `x`"),
    );
    check(
        "m?status=200",
        Err("model option `status` must be within 400..=599, got 200"),
    );
    check(
        "m?rate=-1",
        Err("model option `rate` must be a finite number >= 0, got `-1`"),
    );
}
