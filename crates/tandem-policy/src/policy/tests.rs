//! Unit tests for positions, naming and the conformance of built requests to the schema.

use pretty_assertions::assert_eq;

use crate::policy::{line_col, name_policies, parse_schema};
use crate::{Action, Policy, Principal, Query};

#[test]
fn policies_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Policy>();
}

#[test]
fn line_col_counts_lines_and_characters() {
    let text = "ab\ncdé\nf";
    assert_eq!(line_col(text, 0), (1, 1));
    assert_eq!(line_col(text, 2), (1, 3));
    assert_eq!(line_col(text, 3), (2, 1));
    // `é` is two bytes but one column.
    assert_eq!(line_col(text, "ab\ncdé".len()), (2, 4));
    assert_eq!(line_col(text, text.len()), (3, 2));
    assert_eq!(line_col(text, 1_000), (3, 2));
}

#[test]
fn policies_are_named_in_backquotes() {
    assert_eq!(name_policies(&["a".to_owned()]), "policy `a`");
    assert_eq!(
        name_policies(&["a".to_owned(), "b\nc".to_owned()]),
        "policies `a`, `b\\nc`"
    );
}

#[test]
fn the_schema_parses_without_warnings() {
    let (_, warnings) = cedar_policy::Schema::from_cedarschema_str(crate::SCHEMA).unwrap();
    assert_eq!(warnings.count(), 0);
    parse_schema().unwrap();
}

/// Every kind of query, with and without the optional parts, builds a request and entities that
/// conform to the schema, so the request path can skip the schema checks.
#[test]
fn built_requests_conform_to_the_schema() {
    let policy = Policy::default_policy().unwrap();
    let principals = [
        Principal {
            user: "alice".to_owned(),
            groups: vec![],
            project: None,
            key_id: None,
        },
        Principal {
            user: "bob \"the builder\"".to_owned(),
            groups: vec!["platform".to_owned(), "contractors".to_owned()],
            project: Some("payments".to_owned()),
            key_id: Some("key-1".to_owned()),
        },
    ];
    let actions = [
        Action::UseModel {
            tier: Some("deep".to_owned()),
            provider: "anthropic".to_owned(),
            model: "claude-opus".to_owned(),
            alias: "tandem-deep".to_owned(),
        },
        Action::UseModel {
            tier: None,
            provider: "local".to_owned(),
            model: "qwen3-coder".to_owned(),
            alias: "local/qwen3-coder".to_owned(),
        },
        Action::UseTool {
            name: "exec_command".to_owned(),
        },
        Action::EnableInternet,
    ];
    for principal in &principals {
        for action in &actions {
            let query = Query {
                principal: principal.clone(),
                action: action.clone(),
                context_tokens: u64::MAX,
                tools: u32::MAX,
                api: "agent".to_owned(),
                stream: false,
            };
            policy.build_checked(&query).unwrap();
            assert!(policy.evaluate(&query).allowed);
        }
    }
}

#[test]
fn strange_names_stay_on_one_line() {
    let policy = Policy::parse(
        "@id(\"x\") permit(principal, action, resource in Tandem::Tier::\"live\");",
        "t",
    )
    .unwrap();
    let query = Query {
        principal: Principal {
            user: "eve\nX-Injected: 1".to_owned(),
            groups: vec![],
            project: None,
            key_id: None,
        },
        action: Action::UseTool {
            name: "a\r\nb".to_owned(),
        },
        context_tokens: 0,
        tools: 0,
        api: "chat".to_owned(),
        stream: false,
    };
    let decision = policy.evaluate(&query);
    assert_eq!(
        decision.reason,
        "denied: no policy permits use_tool on tool `a\\r\\nb` for user `eve\\nX-Injected: 1` (default deny)"
    );
}

/// Parents that no policy names are left out of entity stores; every way a policy can name a team or a
/// tier is collected, and decisions are the same as with every parent.
#[test]
fn pruning_unnamed_parents_does_not_change_decisions() {
    let policy = Policy::parse(
        r#"
@id("scope-in") permit(principal in Tandem::Team::"a", action == Tandem::Action::"use_tool", resource);
@id("scope-is-in") permit(principal is Tandem::User in Tandem::Team::"b", action == Tandem::Action::"use_model", resource in Tandem::Tier::"deep");
@id("set-in") forbid(principal, action == Tandem::Action::"use_tool", resource == Tandem::Tool::"exec_command") when { principal in [Tandem::Team::"c", Tandem::Team::"d"] };
@id("when-in") permit(principal, action == Tandem::Action::"use_model", resource) when { resource in Tandem::Tier::"live" && !(principal in Tandem::Team::"e") };
@id("in-resource") permit(principal, action == Tandem::Action::"enable_internet", resource) when { principal in resource };
@id("unless-in") forbid(principal, action, resource) unless { principal in Tandem::Team::"staff" || principal in Tandem::Team::"b" };
@id("project-scope") forbid(principal in Tandem::Project::"locked", action == Tandem::Action::"use_model", resource);
@id("project-set") permit(principal, action == Tandem::Action::"use_tool", resource) when { principal in [Tandem::Project::"research"] };
"#,
        "pruning.cedar",
    )
    .unwrap();
    assert_eq!(
        policy.referenced().names(),
        (
            false,
            [
                vec!["a", "b", "c", "d", "e", "staff"],
                vec!["deep", "live"],
                vec!["locked", "research"]
            ]
        )
    );

    let groups = [
        vec![],
        vec!["staff", "a"],
        vec!["staff", "b", "x", "y", "z"],
        vec!["staff", "c"],
        vec!["staff", "d", "e"],
        vec!["x", "y", "b"],
        vec!["x"],
    ];
    let actions = [
        Action::UseModel {
            tier: Some("deep".to_owned()),
            provider: "p".to_owned(),
            model: "m".to_owned(),
            alias: "a".to_owned(),
        },
        Action::UseModel {
            tier: Some("live".to_owned()),
            provider: "p".to_owned(),
            model: "m".to_owned(),
            alias: "a".to_owned(),
        },
        Action::UseModel {
            tier: Some("other".to_owned()),
            provider: "p".to_owned(),
            model: "m".to_owned(),
            alias: "a".to_owned(),
        },
        Action::UseTool {
            name: "exec_command".to_owned(),
        },
        Action::UseTool {
            name: "read_file".to_owned(),
        },
        Action::EnableInternet,
    ];
    let mut allowed = 0;
    for groups in &groups {
        for project in [None, Some("research"), Some("locked"), Some("web")] {
            for action in &actions {
                let query = Query {
                    principal: Principal {
                        user: "u".to_owned(),
                        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                        project: project.map(str::to_owned),
                        key_id: None,
                    },
                    action: action.clone(),
                    context_tokens: 10,
                    tools: 1,
                    api: "chat".to_owned(),
                    stream: false,
                };
                let decision = policy.evaluate(&query);
                assert_eq!(decision, policy.evaluate_unpruned(&query), "{query:?}");
                allowed += usize::from(decision.allowed);
            }
        }
    }
    // Both outcomes occur, so the comparison means something.
    assert!(allowed > 20 && allowed < 150, "{allowed}");
}

#[test]
fn the_example_names_its_teams_and_tiers() {
    let policy = Policy::parse(include_str!("../../tests/example.cedar"), "example.cedar").unwrap();
    assert_eq!(
        policy.referenced().names(),
        (
            false,
            [
                vec!["contractors", "platform"],
                vec!["deep", "live"],
                vec!["prod-readonly", "research"]
            ]
        )
    );
}
