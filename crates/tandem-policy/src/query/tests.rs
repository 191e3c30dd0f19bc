//! Unit tests for action names and resource descriptions.

use pretty_assertions::assert_eq;

use crate::query::resource_words;
use crate::{Action, Principal, Query};

fn query(project: Option<&str>, action: Action) -> Query {
    Query {
        principal: Principal {
            user: "u".to_owned(),
            groups: vec![],
            project: project.map(str::to_owned),
            key_id: None,
        },
        action,
        context_tokens: 0,
        tools: 0,
        api: "chat".to_owned(),
        stream: false,
    }
}

#[test]
fn actions_and_resources_in_words() {
    let deep = Action::UseModel {
        tier: Some("deep".to_owned()),
        provider: "openai".to_owned(),
        model: "gpt-5".to_owned(),
        alias: "auto".to_owned(),
    };
    let tool = Action::UseTool {
        name: "apply_patch".to_owned(),
    };
    let cases = [
        (
            query(None, deep),
            "use_model",
            "model `openai/gpt-5` in tier `deep`",
        ),
        (query(None, tool), "use_tool", "tool `apply_patch`"),
        (
            query(Some("research"), Action::EnableInternet),
            "enable_internet",
            "project `research`",
        ),
        (
            query(None, Action::EnableInternet),
            "enable_internet",
            "a request with no project",
        ),
    ];
    for (query, name, words) in cases {
        assert_eq!(
            (query.action.name(), resource_words(&query).as_str()),
            (name, words)
        );
    }
}
