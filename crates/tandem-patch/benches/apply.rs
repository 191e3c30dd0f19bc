//! Parse and apply cost of a 40-edit search/replace response on a 2,000-line file.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use std::fmt::Write as _;

use criterion::{Criterion, criterion_group, criterion_main};
use tandem_patch::{Event, ParserConfig, parse};

/// A 2,000-line Rust-like file: 200 functions of 10 lines, each with a distinct name and body.
fn file() -> String {
    let mut out = String::new();
    for f in 0..200 {
        let _ = write!(
            out,
            "/// Function {f}.\npub fn f{f}(x: u32) -> u32 {{\n    let a = x + {f};\n    let b = a * 2;\n    if b > 100 {{\n        return b - {f};\n    }}\n    a + b\n}}\n\n"
        );
    }
    out
}

/// Forty edits, one in every fifth function, streamed as search/replace blocks with prose between them.
fn response() -> String {
    let mut out = String::from("I'll update the arithmetic in several functions.\n\n");
    for f in (0..200).step_by(5) {
        let _ = write!(
            out,
            "src/big.rs\n```rust\n<<<<<<< SEARCH\npub fn f{f}(x: u32) -> u32 {{\n    let a = x + {f};\n    let b = a * 2;\n=======\npub fn f{f}(x: u32) -> u32 {{\n    let a = x.saturating_add({f});\n    let b = a.saturating_mul(2);\n>>>>>>> REPLACE\n```\n\n"
        );
    }
    out
}

fn bench(c: &mut Criterion) {
    let original = file();
    let text = response();
    let config = ParserConfig {
        default_path: None,
        bare_fence_is_rewrite: false,
    };
    c.bench_function("parse_apply_40_edits_2000_lines", |b| {
        b.iter(|| {
            let events = parse(&text, config.clone());
            let edits: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Edit(edit) => Some(edit),
                    Event::Malformed { .. } => None,
                })
                .collect();
            assert_eq!(edits.len(), 40);
            tandem_patch::apply_all(&original, edits).unwrap()
        });
    });
    c.bench_function("parse_only_40_edits", |b| {
        b.iter(|| parse(&text, config.clone()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
