//! What Prometheus metrics cost per finished exchange: `tandem_core::metrics::finished` (the one call in
//! `Recorder::finish`) against the installed exporter, for a streamed answer (tokens, cost, duration, first token).
//! Target: under 1 µs. Run: `cargo bench -p tandem-gateway --bench metrics`.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup: a failure should abort the run loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tandem_protocol::Usage;
use tandem_store::{Outcome, RequestRecord};

fn record(model: &str) -> RequestRecord {
    RequestRecord {
        id: "0192f0c1a2b34c5d8e9f00112233aabb".to_owned(),
        started_at_ms: 1_700_000_000_000,
        api: "chat".to_owned(),
        client_model: "tandem-live".to_owned(),
        provider: "tk".to_owned(),
        upstream_model: model.to_owned(),
        stream: true,
        status: 200,
        outcome: Outcome::Ok,
        error: None,
        usage: Usage {
            input_tokens: 12_000,
            output_tokens: 800,
            cached_input_tokens: 9_000,
            reasoning_tokens: 200,
        },
        usage_exact: true,
        latency_ms: 2_400,
        ttft_ms: Some(180),
        tier: Some("live".to_owned()),
        route: None,
        dlp: None,
        cost: 0.0042,
    }
}

fn bench(c: &mut Criterion) {
    let handle = tandem_gateway::metrics::handle().unwrap();
    let known = record("gpt-live");
    // Registers `gpt-live` as a configured model, as `Core::new` does for tier targets.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nstate_dir = {:?}\n\
         [[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [tiers.live]\n[[tiers.live.targets]]\nprovider = \"tk\"\nmodel = \"gpt-live\"\n",
        dir.path().display().to_string()
    );
    let config = tandem_config::parse(&text, tandem_config::Source::Embedded, &|_| None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _state = rt
        .block_on(tandem_gateway::AppState::from_config(&config))
        .unwrap();
    let unknown = record("client-chosen-model");
    // As the gateway does every few seconds: fold histogram samples into buckets so memory stays flat.
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
            handle.run_upkeep();
        }
    });
    let mut group = c.benchmark_group("metrics");
    group.bench_function("finished (configured model, cached labels)", |b| {
        b.iter(|| tandem_core::metrics::finished(black_box(&known)))
    });
    group.bench_function("finished (unknown model, folded into `other`)", |b| {
        b.iter(|| tandem_core::metrics::finished(black_box(&unknown)))
    });
    group.finish();
    assert!(handle.render().contains("model=\"gpt-live\""));
    assert!(!handle.render().contains("client-chosen-model"));
}

criterion_group!(benches, bench);
criterion_main!(benches);
