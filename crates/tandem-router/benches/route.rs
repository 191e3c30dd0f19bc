//! `extract + route` on a ~40 KB Codex-shaped Responses request and on a short Chat Completions request.
//!
//! Run with `cargo bench -p tandem-router`; the target is under 50 µs per request. Decoding the body is
//! not measured: the gateway has already decoded it when it asks the router.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tandem_protocol::ChatRequest;
use tandem_router::{Router, RouterConfig, ScorerConfig, SessionFacts, extract};

/// A Codex-like mid-task request: instructions, environment context, the ask, then a dozen tool rounds
/// with file reads, searches, a failing test run and patches, padded to about 40 KB of JSON.
fn codex_body() -> Value {
    let instructions = "You are Codex, a coding agent. Follow the repository's AGENTS.md. \
        Prefer small, reviewable patches; run the narrowest tests; explain what you changed.\n"
        .repeat(40);
    let mut input = vec![
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": instructions}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text",
            "text": "<environment_context>\n  <cwd>/work/app</cwd>\n  <shell>bash</shell>\n</environment_context>"}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text",
            "text": "fix the failing test in tests/it/session.rs: `expired_sessions_are_evicted` panics after the store refactor in src/store/session.rs"}]}),
    ];
    let source = "    pub fn evict_expired(&mut self, now: Timestamp) -> usize {\n        let before = self.entries.len();\n        self.entries.retain(|_, s| s.expires_at > now);\n        before - self.entries.len()\n    }\n".repeat(6);
    let mut round = 0;
    while serde_json::to_vec(&json!({"input": input})).map_or(0, |v| v.len()) < 40_000 {
        let id = format!("call_{round}");
        let (cmd, output) = match round % 4 {
            0 => ("rg -n evict_expired", format!("Exit code: 0\nOutput:\nsrc/store/session.rs:{round}:    pub fn evict_expired(&mut self, now: Timestamp) -> usize {{\n")),
            1 => ("sed -n 1,120p src/store/session.rs", format!("Exit code: 0\nOutput:\n{source}")),
            2 => ("cargo test --test it session", "Exit code: 101\nOutput:\nrunning 9 tests\ntest expired_sessions_are_evicted ... FAILED\n\nfailures:\nthread 'expired_sessions_are_evicted' panicked at tests/it/session.rs:88:5:\nassertion `left == right` failed\n  left: 2\n right: 1\ntest result: FAILED. 8 passed; 1 failed\n".to_owned()),
            _ => ("git diff --stat", "Exit code: 0\nOutput:\n src/store/session.rs | 14 +++++++-------\n 1 file changed, 7 insertions(+), 7 deletions(-)\n".to_owned()),
        };
        input.push(
            json!({"type": "reasoning", "id": format!("rs_{round}"), "summary": [
            {"type": "summary_text", "text": "Checking how eviction compares timestamps."}],
            "content": null, "encrypted_content": "gAAAAB".repeat(20)}),
        );
        input.push(
            json!({"type": "function_call", "call_id": id, "name": "exec_command",
            "arguments": json!({"cmd": cmd}).to_string()}),
        );
        input.push(json!({"type": "function_call_output", "call_id": id, "output": output}));
        round += 1;
    }
    json!({
        "model": "auto", "stream": true, "input": input,
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Runs a command.",
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
            {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch."}
        ],
        "reasoning": {"effort": "medium"}, "store": false, "prompt_cache_key": "bench"
    })
}

fn short_body() -> Value {
    json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "rename `get_user` to `fetch_user` in src/users.rs"}]})
}

#[expect(clippy::expect_used, reason = "benchmark setup on fixed, valid bodies")]
fn requests() -> (ChatRequest, ChatRequest) {
    let codex = codex_body().to_string();
    assert!((38_000..46_000).contains(&codex.len()), "{}", codex.len());
    let codex = tandem_translate::openai_responses::decode_request(codex.as_bytes())
        .expect("codex body decodes");
    let short = tandem_translate::openai_chat::decode_request(short_body().to_string().as_bytes())
        .expect("short body decodes");
    (codex, short)
}

#[expect(clippy::expect_used, reason = "benchmark setup")]
fn bench(c: &mut Criterion) {
    let (codex, short) = requests();
    let mut config = RouterConfig::new("live", "deep");
    config.scorer = Some(ScorerConfig::Prior);
    let router = Router::new(config).expect("default config is valid");
    let session = SessionFacts::default();
    // Warm the shared automata so their one-time build is not measured.
    black_box(extract(&short, &session));

    c.bench_function("extract+route codex 40KB", |b| {
        b.iter(|| router.route(&extract(black_box(&codex), black_box(&session))));
    });
    c.bench_function("extract+route short", |b| {
        b.iter(|| router.route(&extract(black_box(&short), black_box(&session))));
    });
    c.bench_function("extract codex 40KB", |b| {
        b.iter(|| extract(black_box(&codex), black_box(&session)));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
