//! Decisions of the example policy for every resource kind, default deny and forbid over permit.

use pretty_assertions::assert_eq;
use tandem_policy::{Action, Decision, Policy, Query};

use crate::{example, model, query, tool, user};

/// Evaluates `query` against the example policy and checks the whole decision.
#[track_caller]
fn check(query: &Query, allowed: bool, policies: &[&str], reason: &str) {
    check_with(&example(), query, allowed, policies, reason);
}

#[track_caller]
fn check_with(policy: &Policy, query: &Query, allowed: bool, policies: &[&str], reason: &str) {
    let expect = Decision {
        allowed,
        policies: policies.iter().map(|p| (*p).to_owned()).collect(),
        reason: reason.to_owned(),
        errors: Vec::new(),
    };
    assert_eq!(policy.evaluate(query), expect);
}

#[test]
fn models_by_tier() {
    let alice = user("alice", &["platform"], None);
    let bob = user("bob", &["frontend"], None);
    check(
        &query(
            bob.clone(),
            model(Some("live"), "anthropic", "claude-haiku"),
        ),
        true,
        &["live-for-everyone"],
        "allowed by policy `live-for-everyone`",
    );
    check(
        &query(alice, model(Some("deep"), "anthropic", "claude-opus")),
        true,
        &["deep-for-platform"],
        "allowed by policy `deep-for-platform`",
    );
    check(
        &query(bob, model(Some("deep"), "anthropic", "claude-opus")),
        false,
        &[],
        "denied: no policy permits use_model on model `anthropic/claude-opus` in tier `deep` for user `bob` (default deny)",
    );
}

#[test]
fn forbid_wins_over_permit() {
    // Carol is on the platform team (a permit) and a contractor (a forbid).
    let carol = user("carol", &["platform", "contractors"], None);
    check(
        &query(carol, model(Some("deep"), "anthropic", "claude-opus")),
        false,
        &["no-deep-for-contractors"],
        "denied by policy `no-deep-for-contractors`",
    );
}

#[test]
fn models_by_provider() {
    let dave = user("dave", &[], Some("payments"));
    check(
        &query(dave.clone(), model(None, "local", "qwen3-coder")),
        true,
        &["local-models-for-everyone"],
        "allowed by policy `local-models-for-everyone`",
    );
    check(
        &query(
            user("erin", &[], Some("web")),
            model(None, "openai", "gpt-5"),
        ),
        false,
        &[],
        "denied: no policy permits use_model on model `openai/gpt-5` (no tier) for user `erin` (default deny)",
    );
    // The live tier is open to everyone, but payments code never goes to OpenAI.
    check(
        &query(dave, model(Some("live"), "openai", "gpt-5-mini")),
        false,
        &["no-openai-for-payments"],
        "denied by policy `no-openai-for-payments`",
    );
    check(
        &query(
            user("erin", &[], Some("web")),
            model(Some("live"), "openai", "gpt-5-mini"),
        ),
        true,
        &["live-for-everyone"],
        "allowed by policy `live-for-everyone`",
    );
}

#[test]
fn context_size() {
    let bob = user("bob", &[], None);
    let mut big = query(bob, model(Some("live"), "anthropic", "claude-haiku"));
    big.context_tokens = 100_000;
    check(
        &big,
        true,
        &["live-for-everyone"],
        "allowed by policy `live-for-everyone`",
    );
    big.context_tokens = 100_001;
    check(
        &big,
        false,
        &["no-huge-live-contexts"],
        "denied by policy `no-huge-live-contexts`",
    );
    // Larger than Cedar's i64 saturates instead of wrapping.
    big.context_tokens = u64::MAX;
    check(
        &big,
        false,
        &["no-huge-live-contexts"],
        "denied by policy `no-huge-live-contexts`",
    );
}

#[test]
fn tools_per_project() {
    check(
        &query(user("frank", &[], Some("prod-readonly")), tool("read_file")),
        true,
        &["tools-allowed"],
        "allowed by policy `tools-allowed`",
    );
    check(
        &query(
            user("frank", &[], Some("prod-readonly")),
            tool("exec_command"),
        ),
        false,
        &["no-exec-in-prod-readonly"],
        "denied by policy `no-exec-in-prod-readonly`",
    );
    check(
        &query(user("frank", &[], Some("staging")), tool("exec_command")),
        true,
        &["tools-allowed"],
        "allowed by policy `tools-allowed`",
    );
}

#[test]
fn internet_per_project() {
    check(
        &query(user("gina", &[], Some("research")), Action::EnableInternet),
        true,
        &["internet-for-research"],
        "allowed by policy `internet-for-research`",
    );
    check(
        &query(user("gina", &[], Some("payments")), Action::EnableInternet),
        false,
        &[],
        "denied: no policy permits enable_internet on project `payments` for user `gina` (default deny)",
    );
    check(
        &query(user("gina", &["research"], None), Action::EnableInternet),
        false,
        &[],
        "denied: no policy permits enable_internet on a request with no project for user `gina` (default deny)",
    );
}

#[test]
fn key_ids_are_optional_attributes() {
    let mut henry = user("henry", &["platform"], None);
    henry.key_id = Some("key-ok".to_owned());
    check(
        &query(henry.clone(), tool("read_file")),
        true,
        &["tools-allowed"],
        "allowed by policy `tools-allowed`",
    );
    henry.key_id = Some("key-revoked".to_owned());
    check(
        &query(henry, tool("read_file")),
        false,
        &["revoked-key"],
        "denied by policy `revoked-key`",
    );
}

#[test]
fn several_determining_policies_are_named_in_file_order() {
    let policy = Policy::parse(
        r#"
@id("b-live") permit(principal, action, resource in Tandem::Tier::"live");
@id("a-team") permit(principal in Tandem::Team::"ml", action, resource);
@id("z-stream") forbid(principal, action, resource) when { context.stream && context.api == "chat" };
@id("y-tools") forbid(principal, action, resource) when { context.tools > 64 };
"#,
        "multi.cedar",
    )
    .unwrap();
    let mut q = query(
        user("ivy", &["ml"], None),
        model(Some("live"), "anthropic", "claude-haiku"),
    );
    check_with(
        &policy,
        &q,
        true,
        &["b-live", "a-team"],
        "allowed by policies `b-live`, `a-team`",
    );
    q.api = "chat".to_owned();
    q.tools = 65;
    check_with(
        &policy,
        &q,
        false,
        &["z-stream", "y-tools"],
        "denied by policies `z-stream`, `y-tools`",
    );
}

#[test]
fn the_default_policy_allows_everything() {
    let policy = Policy::default_policy().unwrap();
    for action in [
        model(Some("deep"), "openai", "gpt-5"),
        tool("exec_command"),
        Action::EnableInternet,
    ] {
        check_with(
            &policy,
            &query(user("jo", &[], None), action),
            true,
            &["default-allow-all"],
            "allowed by policy `default-allow-all`",
        );
    }
}

#[test]
fn a_forbid_that_fails_to_evaluate_denies() {
    let policy = Policy::parse(
        r#"
@id("everything") permit(principal, action, resource);
@id("overflowing") forbid(principal, action, resource) when { context.context_tokens * 1000000 > 5000000000 };
@id("overflowing-permit") permit(principal, action, resource) when { context.context_tokens * 1000000 > 0 };
"#,
        "overflow.cedar",
    )
    .unwrap();
    let mut q = query(user("kim", &[], None), tool("read_file"));
    check_with(
        &policy,
        &q,
        true,
        &["everything", "overflowing-permit"],
        "allowed by policies `everything`, `overflowing-permit`",
    );
    q.context_tokens = u64::MAX;
    let decision = policy.evaluate(&q);
    assert_eq!(
        (decision.allowed, decision.policies, decision.reason),
        (
            false,
            vec!["overflowing".to_owned()],
            "denied by policy `overflowing` (failed to evaluate; a failing forbid denies)"
                .to_owned()
        )
    );
    assert_eq!(
        decision.errors,
        [
            "error while evaluating policy `overflowing`: integer overflow while attempting to multiply the values `9223372036854775807` and `1000000`",
            "error while evaluating policy `overflowing-permit`: integer overflow while attempting to multiply the values `9223372036854775807` and `1000000`",
        ]
    );
}

#[test]
fn action_lists_and_unconstrained_actions_apply_to_each_action_they_name() {
    let policy = Policy::parse(
        r#"
@id("tools-and-internet") permit(principal, action in [Tandem::Action::"use_tool", Tandem::Action::"enable_internet"], resource);
@id("no-bots") forbid(principal in Tandem::Team::"bots", action, resource);
"#,
        "actions.cedar",
    )
    .unwrap();
    let alice = user("alice", &[], Some("web"));
    check_with(
        &policy,
        &query(alice.clone(), tool("read_file")),
        true,
        &["tools-and-internet"],
        "allowed by policy `tools-and-internet`",
    );
    check_with(
        &policy,
        &query(alice.clone(), Action::EnableInternet),
        true,
        &["tools-and-internet"],
        "allowed by policy `tools-and-internet`",
    );
    check_with(
        &policy,
        &query(alice, model(Some("live"), "openai", "gpt-5-mini")),
        false,
        &[],
        "denied: no policy permits use_model on model `openai/gpt-5-mini` in tier `live` for user `alice` (default deny)",
    );
    check_with(
        &policy,
        &query(user("robo", &["bots"], Some("web")), Action::EnableInternet),
        false,
        &["no-bots"],
        "denied by policy `no-bots`",
    );
}
