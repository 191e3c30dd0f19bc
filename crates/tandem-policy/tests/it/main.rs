//! Integration tests for `tandem-policy`: load errors, decisions for every resource kind on the
//! example policy, and `explain` output.

#[cfg(test)]
mod decisions;
#[cfg(test)]
mod explain;
#[cfg(test)]
mod load;

use tandem_policy::{Action, Policy, Principal, Query};

/// The example policy the README documents.
pub const EXAMPLE: &str = include_str!("../example.cedar");

#[cfg(test)]
pub fn example() -> Policy {
    Policy::parse(EXAMPLE, "example.cedar").unwrap()
}

/// A principal in `groups`, acting for `project` when given.
pub fn user(name: &str, groups: &[&str], project: Option<&str>) -> Principal {
    Principal {
        user: name.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        project: project.map(str::to_owned),
        key_id: None,
    }
}

/// A `use_model` action on `provider/model` in `tier`.
pub fn model(tier: Option<&str>, provider: &str, model: &str) -> Action {
    Action::UseModel {
        tier: tier.map(str::to_owned),
        provider: provider.to_owned(),
        model: model.to_owned(),
        alias: tier.map_or_else(|| format!("{provider}/{model}"), |t| format!("tandem-{t}")),
    }
}

pub fn tool(name: &str) -> Action {
    Action::UseTool {
        name: name.to_owned(),
    }
}

/// A 2,000-token streamed Responses request with 3 tools.
pub fn query(principal: Principal, action: Action) -> Query {
    Query {
        principal,
        action,
        context_tokens: 2_000,
        tools: 3,
        api: "responses".to_owned(),
        stream: true,
    }
}
