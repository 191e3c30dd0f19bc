//! Tests for scope and pattern parsing, display and matching.

use pretty_assertions::assert_eq;

use crate::{Scope, ScopeKind, ScopePattern};

#[track_caller]
fn check_scope(input: &str, expect: Result<&str, &str>) {
    let got = Scope::parse(input)
        .map(|s| s.to_string())
        .map_err(|e| e.to_string());
    assert_eq!(got.as_deref().map_err(String::as_str), expect, "{input}");
}

#[test]
fn scopes_parse_and_display() {
    check_scope("user:alice", Ok("user:alice"));
    check_scope("team:payments", Ok("team:payments"));
    check_scope("project:acme/web", Ok("project:acme/web"));
    check_scope("key:ci-bot:2", Ok("key:ci-bot:2"));
    check_scope("user", Err("invalid scope `user`: expected `kind:value`"));
    check_scope(
        "org:x",
        Err("invalid scope `org:x`: kind must be `key`, `user`, `team` or `project`"),
    );
    check_scope(
        "user:",
        Err("invalid scope `user:`: the value after `:` is empty"),
    );
    check_scope(
        "user:*",
        Err("invalid scope `user:*`: a scope cannot contain `*`; that is a pattern"),
    );
    check_scope(
        "user:a\nb",
        Err("invalid scope `user:a\nb`: the value contains a control character"),
    );
}

#[test]
fn long_inputs_are_cut_in_errors() {
    let input = format!("user:{}", "é".repeat(300));
    let message = Scope::parse(&input).unwrap_err().to_string();
    assert!(message.len() < 160, "{message}");
    assert!(message.contains('…'));
}

#[test]
fn patterns_match_each_scope_of_a_kind_or_one_scope() {
    let alice = Scope::parse("user:alice").unwrap();
    let bob = Scope::parse("user:bob").unwrap();
    let payments = Scope::parse("team:payments").unwrap();

    let each_user = ScopePattern::parse("user:*").unwrap();
    assert_eq!(each_user, ScopePattern::Each(ScopeKind::User));
    assert!(each_user.matches(&alice) && each_user.matches(&bob) && !each_user.matches(&payments));

    let one_team = ScopePattern::parse("team:payments").unwrap();
    assert!(one_team.matches(&payments) && !one_team.matches(&alice));
    assert!(!one_team.matches(&Scope::parse("team:search").unwrap()));

    assert_eq!(each_user.to_string(), "user:*");
    assert_eq!(one_team.to_string(), "team:payments");
    assert!(ScopePattern::parse("team:pay*").is_err());
    assert!(ScopePattern::parse("*").is_err());
}

#[test]
fn serde_uses_the_text_form() {
    let scope: Scope = serde_json::from_str("\"key:laptop\"").unwrap();
    assert_eq!(scope, Scope::Key("laptop".to_owned()));
    assert_eq!(serde_json::to_string(&scope).unwrap(), "\"key:laptop\"");
    let err = serde_json::from_str::<ScopePattern>("\"group:*\"").unwrap_err();
    assert!(err.to_string().contains("kind must be"), "{err}");
}
