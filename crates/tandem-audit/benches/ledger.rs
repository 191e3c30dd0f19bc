//! The audit ledger against its targets: what `append` costs the request path (under 20 µs), how
//! many entries per second the writer seals (20,000/s) and how long `verify` takes on a million
//! entries (under 5 s). Run with `cargo bench -p tandem-audit --bench ledger`; `LEDGER_BENCH_ENTRIES`
//! sets the verify size (default 1,000,000) and `LEDGER_BENCH_JSON` a file for the figures.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]
#![expect(clippy::print_stdout, reason = "the benchmark prints its table")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_audit::{
    DlpFinding, Entry, Ledger, Options, PolicyDecision, Principal, Reader, RequestEntry, Tokens,
    VerifyOptions,
};

/// A request entry the size of a real one (principal, routing, a policy decision, a DLP finding,
/// two hashes): about 900 bytes sealed.
fn entry(n: u64) -> Entry {
    Entry::Request(RequestEntry {
        id: format!("019ad2c4f1e87b3c9a{n:014x}"),
        started_at_ms: 1_795_000_000_000 + n as i64,
        principal: Principal {
            user: format!("user{}@example.com", n % 50),
            teams: vec!["platform".into()],
            project: Some("payments".into()),
            key_id: Some("key_01HZX3".into()),
        },
        client: Some("codex_cli_rs/0.169.0 (Debian 13; x86_64)".into()),
        session: Some("0199e0c5-7f4b-7c52-a3f1-3b2f4c8d9e10".into()),
        api: "responses".into(),
        stream: true,
        model: "tandem-live".into(),
        tier: Some("live".into()),
        target: Some("cerebras/gpt-5.3-codex-spark".into()),
        route_reason: Some("rule:short-edit".into()),
        class: Some("rename".into()),
        policy: vec![PolicyDecision {
            action: "use_model".into(),
            resource: "cerebras/gpt-5.3-codex-spark".into(),
            allowed: true,
            reason: "allowed by policy `live-for-everyone`".into(),
        }],
        dlp: vec![DlpFinding {
            dir: "request".into(),
            rule: "aws-access-token".into(),
            class: "secret".into(),
            action: "redact".into(),
            fingerprint: "3f9a1c2e".into(),
        }],
        status: 200,
        outcome: "ok".into(),
        error: None,
        tokens: Tokens {
            input: 41_230,
            output: 812,
            cached_input: 38_912,
            reasoning: 120,
            exact: true,
        },
        cost_usd: 0.004_812,
        latency_ms: 930,
        ttft_ms: Some(41),
        prompt_hash: Some("9f".repeat(32)),
        answer_hash: Some("e1".repeat(32)),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn main() {
    let entries: u64 = std::env::var("LEDGER_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let sealed_len = {
        let body = serde_json::to_vec(&entry(0)).unwrap();
        body.len() + 96
    };

    // 1. The request path: 8 threads appending as fast as they can, each append timed.
    let ledger = Arc::new(Ledger::open(&dir.path().join("append"), Options::default()).unwrap());
    let threads = 8;
    let per_thread = 25_000u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let mut times = Vec::with_capacity(per_thread as usize);
                for i in 0..per_thread {
                    let e = entry(t * per_thread + i);
                    let at = Instant::now();
                    ledger.append(&e, None).unwrap();
                    times.push(at.elapsed());
                }
                times
            })
        })
        .collect();
    let mut times: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let appended = started.elapsed();
    let size = ledger.flush().unwrap();
    let sealed = started.elapsed();
    drop(ledger);
    times.sort_unstable();
    let total = threads * per_thread;
    assert_eq!(size, total);
    let (p50, p99, max) = (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        *times.last().unwrap(),
    );
    // The request path at the target load: one append every 50 µs (20,000 entries/s), as requests
    // finishing one after another would, while the writer seals them.
    let single = Ledger::open(&dir.path().join("single"), Options::default()).unwrap();
    let mut solo = Vec::with_capacity(100_000);
    let pace = Duration::from_micros(50);
    let start = Instant::now();
    for i in 0..100_000u32 {
        let due = start + pace * i;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let e = entry(u64::from(i));
        let at = Instant::now();
        single.append(&e, None).unwrap();
        solo.push(at.elapsed());
    }
    // CPU time the appending thread spends per append, back to back (what a request pays
    // when it is not preempted): from the scheduler's own accounting of this thread.
    let cpu_before = thread_cpu_ns();
    for i in 0..100_000u64 {
        single.append(&entry(i), None).unwrap();
    }
    let cpu_per_append_us = (thread_cpu_ns() - cpu_before) as f64 / 100_000.0 / 1000.0;
    single.close().unwrap();
    let mean_us = solo.iter().map(Duration::as_secs_f64).sum::<f64>() / solo.len() as f64 * 1e6;
    solo.sort_unstable();

    // 2. Sustained sealing: the writer's rate, appended by one thread, until all is committed.
    // 3. Verify a ledger of `entries`.
    let big = dir.path().join("big");
    let ledger = Ledger::open(&big, Options::default()).unwrap();
    let started = Instant::now();
    for i in 0..entries {
        ledger.append(&entry(i), None).unwrap();
    }
    ledger.close().unwrap();
    let seal_rate = entries as f64 / started.elapsed().as_secs_f64();
    let reader = Reader::open(&big).unwrap();
    let started = Instant::now();
    let report = reader.verify(&VerifyOptions::default()).unwrap();
    let verify = started.elapsed();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, entries);
    let db_bytes = std::fs::metadata(big.join("ledger.db")).unwrap().len();

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("| measure | value | target |");
    println!("|---|---:|---:|");
    println!("| sealed entry size | {sealed_len} B | |");
    println!("| append, CPU time of the appending thread | {cpu_per_append_us:.1} µs | < 20 µs |");
    println!(
        "| append at 20,000 entries/s, wall mean / p50 / p99 / p99.9 | {mean_us:.1} / {:.1} / {:.1} / {:.1} µs | |",
        us(percentile(&solo, 0.5)),
        us(percentile(&solo, 0.99)),
        us(percentile(&solo, 0.999))
    );
    println!(
        "| append, 8 threads contending, p50 / p99 / max | {:.1} / {:.1} / {:.0} µs | |",
        us(p50),
        us(p99),
        us(max)
    );
    println!(
        "| appended by 8 threads | {:.0} entries/s | |",
        total as f64 / appended.as_secs_f64()
    );
    println!(
        "| sealed (committed + signed checkpoint), 8 threads | {:.0} entries/s | 20,000/s |",
        total as f64 / sealed.as_secs_f64()
    );
    println!("| sealed, 1 thread, {entries} entries | {seal_rate:.0} entries/s | 20,000/s |");
    println!(
        "| verify {entries} entries ({} checkpoints) | {:.2} s | < 5 s |",
        report.checkpoints,
        verify.as_secs_f64()
    );
    println!(
        "| ledger database | {:.0} B/entry | |",
        db_bytes as f64 / entries as f64
    );
    if let Ok(path) = std::env::var("LEDGER_BENCH_JSON") {
        let json = serde_json::json!({
            "sealed_entry_bytes": sealed_len,
            "append_cpu_us": cpu_per_append_us,
            "append_at_20k_per_s_mean_us": mean_us,
            "append_at_20k_per_s_p50_us": us(percentile(&solo, 0.5)),
            "append_at_20k_per_s_p99_us": us(percentile(&solo, 0.99)),
            "append_at_20k_per_s_p999_us": us(percentile(&solo, 0.999)),
            "append_8_threads_p50_us": us(p50),
            "append_8_threads_p99_us": us(p99),
            "append_8_threads_max_us": us(max),
            "appended_per_s_8_threads": total as f64 / appended.as_secs_f64(),
            "sealed_per_s_8_threads": total as f64 / sealed.as_secs_f64(),
            "sealed_per_s_1_thread": seal_rate,
            "verify_entries": entries,
            "verify_checkpoints": report.checkpoints,
            "verify_s": verify.as_secs_f64(),
            "db_bytes_per_entry": db_bytes as f64 / entries as f64,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}
