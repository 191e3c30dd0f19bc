//! `Policy::evaluate` on the 10-policy example set (`tests/example.cedar`), for an allowed model, a
//! forbidden model, a default deny and a tool, plus loading the set once.
//!
//! `evaluate/*` repeats one query, as a gateway repeats its users and models: the entity store comes
//! from the policy's memo. `evaluate_cold/*` gives every query a new user, so every evaluation builds
//! its entity store (transitive closure included).
//!
//! Run with `cargo bench -p tandem-policy`; the target is well under 30 µs per evaluation, because auth,
//! policy and budget checks together must add under 100 µs per request.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tandem_policy::{Action, Policy, Principal, Query};

const EXAMPLE: &str = include_str!("../tests/example.cedar");

/// A query from a user in `groups` plus four groups no policy names, as an identity provider sends them.
fn query(groups: &[&str], project: Option<&str>, action: Action) -> Query {
    let other_groups = ["all-staff", "eng", "eng-backend", "oncall"];
    Query {
        principal: Principal {
            user: "alice".to_owned(),
            groups: groups
                .iter()
                .chain(&other_groups)
                .map(|g| (*g).to_owned())
                .collect(),
            project: project.map(str::to_owned),
            key_id: Some("key-42".to_owned()),
        },
        action,
        context_tokens: 48_000,
        tools: 12,
        api: "responses".to_owned(),
        stream: true,
    }
}

fn model(tier: &str, provider: &str, model: &str) -> Action {
    Action::UseModel {
        tier: Some(tier.to_owned()),
        provider: provider.to_owned(),
        model: model.to_owned(),
        alias: "auto".to_owned(),
    }
}

fn bench(c: &mut Criterion) {
    let Ok(policy) = Policy::parse(EXAMPLE, "example.cedar") else {
        return;
    };
    let cases = [
        (
            "evaluate/model_allowed",
            query(
                &["platform"],
                Some("web"),
                model("deep", "anthropic", "claude-opus"),
            ),
        ),
        (
            "evaluate/model_forbidden",
            query(
                &["platform", "contractors"],
                Some("payments"),
                model("deep", "anthropic", "claude-opus"),
            ),
        ),
        (
            "evaluate/model_default_deny",
            query(&["frontend"], None, model("deep", "openai", "gpt-5")),
        ),
        (
            "evaluate/tool_allowed",
            query(
                &["platform"],
                Some("prod-readonly"),
                Action::UseTool {
                    name: "apply_patch".to_owned(),
                },
            ),
        ),
    ];
    for (name, query) in &cases {
        c.bench_function(name, |b| b.iter(|| policy.evaluate(black_box(query))));
    }
    for (name, query) in &cases {
        let name = name.replace("evaluate/", "evaluate_cold/");
        let mut n = 0_u64;
        c.bench_function(&name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let mut query = query.clone();
                    query.principal.user = format!("user-{n}");
                    query
                },
                |query| policy.evaluate(&query),
                BatchSize::SmallInput,
            )
        });
    }
    c.bench_function("parse/example", |b| {
        b.iter(|| Policy::parse(black_box(EXAMPLE), "example.cedar"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
