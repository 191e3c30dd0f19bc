//! Scanner and stream-redactor cost on half a megabyte of this repository's own source code.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_dlp::{Actions, PiiConfig, Redactor, Rules, Scanner};

/// About 0.5 MB of ordinary Rust: the workspace's own crates (not this one), repeated as needed.
fn corpus() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("tandem-dlp") && !path.ends_with("target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    while out.len() < 500_000 {
        for f in &files {
            out.extend(std::fs::read(f).unwrap());
            if out.len() >= 500_000 {
                break;
            }
        }
    }
    out.truncate(500_000);
    out
}

fn bench(c: &mut Criterion) {
    let text = corpus();
    let rules = Rules::builtin().unwrap();
    let secrets = Scanner::new(&rules, &PiiConfig::none()).unwrap();
    let with_pii = Arc::new(Scanner::new(&rules, &PiiConfig::all()).unwrap());
    let mut g = c.benchmark_group("scan-0.5MB");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("secrets", |b| b.iter(|| secrets.scan(&text)));
    g.bench_function("secrets+pii", |b| b.iter(|| with_pii.scan(&text)));
    g.finish();

    let redactor = Redactor::new(with_pii, Actions::redact_all(), [1; 32]);
    let s = String::from_utf8_lossy(&text[..50_000]).into_owned();
    let mut g = c.benchmark_group("stream-50KB");
    g.throughput(Throughput::Bytes(s.len() as u64));
    g.bench_function("4-byte pieces", |b| {
        b.iter(|| {
            let mut st = redactor.stream();
            let mut n = 0;
            let bytes = s.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let mut j = (i + 4).min(bytes.len());
                while !s.is_char_boundary(j) {
                    j += 1;
                }
                n += st.push(&s[i..j]).unwrap().len();
                i = j;
            }
            n + st.finish().unwrap().len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
