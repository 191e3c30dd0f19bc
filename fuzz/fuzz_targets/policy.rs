//! Fuzz target: `tandem_policy::Policy::parse` on arbitrary Cedar text either refuses with an
//! error or gives a policy whose ids are unique and which decides a fixed set of queries, one per
//! action, without panicking: deny by default, every allow names the permits that matched, every deny
//! names its forbids, says that no policy permitted the request or carries the evaluation error,
//! only policies of the set are named, a second evaluation (from the entity memo) decides the same,
//! and `explain` reports the same decision.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tandem_policy::{Action, Policy, Principal, Query};

/// One query per action, from a principal that is in teams and a project and holds an API key, so
/// that `in` and `has` conditions have something to match.
fn queries() -> Vec<Query> {
    let principal = Principal {
        user: "alice".to_owned(),
        groups: vec!["platform".to_owned(), "contractors".to_owned()],
        project: Some("payments".to_owned()),
        key_id: Some("key-1".to_owned()),
    };
    let actions = [
        Action::UseModel {
            tier: Some("live".to_owned()),
            provider: "openai".to_owned(),
            model: "gpt-5".to_owned(),
            alias: "tandem-live".to_owned(),
        },
        Action::UseModel {
            tier: None,
            provider: "local".to_owned(),
            model: "qwen".to_owned(),
            alias: "local/qwen".to_owned(),
        },
        Action::UseTool {
            name: "exec_command".to_owned(),
        },
        Action::EnableInternet,
    ];
    actions
        .into_iter()
        .map(|action| Query {
            principal: principal.clone(),
            action,
            context_tokens: 120_000,
            tools: 3,
            api: "responses".to_owned(),
            stream: true,
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let policy = match Policy::parse(&text, "fuzz.cedar") {
        Ok(policy) => policy,
        Err(err) => {
            assert!(!err.to_string().is_empty(), "an empty error for {text:?}");
            return;
        }
    };
    let ids = policy.ids();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "duplicate ids {ids:?} for {text:?}"
    );
    for query in queries() {
        let decision = policy.evaluate(&query);
        assert!(
            decision.policies.iter().all(|id| unique.contains(id)),
            "{decision:?} names a policy not in {ids:?} for {text:?}"
        );
        if decision.allowed {
            assert!(
                !decision.policies.is_empty(),
                "an allow that names no permit: {decision:?} for {text:?}"
            );
        } else {
            assert!(
                !decision.policies.is_empty()
                    || decision.reason.contains("(default deny)")
                    || !decision.errors.is_empty(),
                "a deny that names nothing: {decision:?} for {text:?}"
            );
        }
        assert!(
            !decision.reason.contains(['\n', '\r']),
            "a reason over several lines: {decision:?} for {text:?}"
        );
        assert_eq!(
            policy.evaluate(&query),
            decision,
            "a second evaluation differs for {text:?}"
        );
        let explained = policy.explain(&query);
        let verdict = if decision.allowed { "allow" } else { "deny" };
        assert!(
            explained.contains(&format!("decision: {verdict}\n")),
            "explain disagrees with {decision:?}:\n{explained}"
        );
    }
});
