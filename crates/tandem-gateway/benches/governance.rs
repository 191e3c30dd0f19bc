//! What identity, policy and budgets cost per request: `AppState::preflight` (authenticate + route + Cedar
//! checks + budget reserve/settle) with governance on, against the same call with it off.
//! Target: governance adds under 100 µs per request. Run: `cargo bench -p tandem-gateway --bench governance`.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup: a failure should abort the run loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tandem_config::Source;
use tandem_gateway::AppState;
use tandem_protocol::{ChatRequest, Message, Role, Tool, ToolKind};

const POLICY: &str = r#"
@id("live-for-everyone")
permit(principal, action == Tandem::Action::"use_model", resource in Tandem::Tier::"live");
@id("deep-for-platform")
permit(principal in Tandem::Team::"platform", action == Tandem::Action::"use_model", resource in Tandem::Tier::"deep");
@id("tools-allowed")
permit(principal, action == Tandem::Action::"use_tool", resource);
@id("no-shell-in-readonly")
forbid(principal, action == Tandem::Action::"use_tool", resource == Tandem::Tool::"exec_command")
when { context.project == "prod-readonly" };
@id("live-context-cap")
forbid(principal, action == Tandem::Action::"use_model", resource in Tandem::Tier::"live")
when { context.context_tokens > 100000 };
@id("no-internet")
forbid(principal, action == Tandem::Action::"enable_internet", resource)
unless { resource == Tandem::Project::"research" };
"#;

fn state(rt: &tokio::runtime::Runtime, governed: bool, dir: &std::path::Path) -> AppState {
    let policy = dir.join("policy.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    let mut text = format!(
        "[server]\nstate_dir = {:?}\n[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [tiers.live]\n[[tiers.live.targets]]\nprovider = \"tk\"\nmodel = \"live\"\n\
         [tiers.deep]\n[[tiers.deep.targets]]\nprovider = \"tk\"\nmodel = \"deep\"\n",
        dir.display().to_string()
    );
    if governed {
        text.push_str(&format!(
            "[auth]\nanonymous = false\n[policy]\nfile = {:?}\n\
             [[budgets]]\nname = \"user-daily\"\napplies_to = \"user:*\"\nperiod = \"day\"\nmax_tokens = 1000000000\n\
             [[budgets]]\nname = \"team-monthly\"\napplies_to = \"team:*\"\nperiod = \"month\"\nmax_cost_usd = 1000000.0\n\
             [[limits]]\nname = \"user-rpm\"\napplies_to = \"user:*\"\nrequests_per_minute = 1000000000\ntokens_per_minute = 1000000000000\n\
             [prices.\"tk/*\"]\ninput_per_mtok = 1.0\noutput_per_mtok = 4.0\n",
            policy.display().to_string()
        ));
    }
    let config = tandem_config::parse(&text, Source::Embedded, &|_| None).unwrap();
    rt.block_on(AppState::from_config(&config)).unwrap()
}

fn request() -> ChatRequest {
    let mut req = ChatRequest::new(
        "tandem-live",
        vec![
            Message::text(Role::System, "You are a coding agent.".repeat(50)),
            Message::text(Role::User, "rename foo to bar in src/lib.rs"),
        ],
    );
    for name in ["exec_command", "apply_patch", "view_image"] {
        req.tools.push(Tool {
            name: name.into(),
            namespace: None,
            description: None,
            parameters: None,
            strict: None,
            kind: ToolKind::Function,
        });
    }
    req
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let req = request();
    let open_dir = tempfile::tempdir().unwrap();
    let open = state(&rt, false, open_dir.path());
    let governed_dir = tempfile::tempdir().unwrap();
    let governed = state(&rt, true, governed_dir.path());
    let (_, key) =
        tandem_gateway::admin::create(governed.store(), "alice", Some("platform"), None, None)
            .unwrap();
    assert!(rt.block_on(governed.preflight(Some(&key), &req)).is_ok());
    let mut group = c.benchmark_group("preflight");
    group.bench_function("governance off (anonymous, allow-all, no budgets)", |b| {
        b.iter(|| rt.block_on(open.preflight(None, black_box(&req))))
    });
    group.bench_function(
        "governance on (API key, 6 Cedar policies, 2 budgets, 1 rate limit)",
        |b| b.iter(|| rt.block_on(governed.preflight(Some(&key), black_box(&req)))),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
