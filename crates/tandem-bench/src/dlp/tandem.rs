//! Tandem's own scanner, measured in-process on one thread: a cold start (rules, compile, first scan), then
//! warm-up scans and timed scans of the planted and the clean corpus.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context as _;
use tandem_dlp::{Class, PiiConfig, Rules, Scanner};

use super::corpus::LineIndex;
use super::peers::LineFinding;
use crate::stats::Summary;

/// The numbers of one scanner configuration.
#[derive(Debug, Clone)]
pub(crate) struct TandemRun {
    /// `Rules::builtin()` + `Scanner::new`, in milliseconds.
    pub(crate) build_ms: f64,
    /// The same plus the first scan of the planted corpus.
    pub(crate) cold_ms: f64,
    pub(crate) rule_count: usize,
    pub(crate) planted_ms: Summary,
    pub(crate) clean_ms: Summary,
    pub(crate) findings: Vec<LineFinding>,
    pub(crate) clean_findings: Vec<LineFinding>,
}

/// Builds the default rules (plus every personal-data detector when `pii`) and times `scan` on both corpora.
pub(crate) fn measure(
    planted: &[u8],
    clean: &[u8],
    pii: bool,
    warmup: u32,
    iterations: u32,
) -> anyhow::Result<TandemRun> {
    let started = Instant::now();
    let rules = Rules::builtin().context("loading tandem-dlp's builtin rules")?;
    let config = if pii {
        PiiConfig::all()
    } else {
        PiiConfig::none()
    };
    let scanner = Scanner::new(&rules, &config).context("compiling tandem-dlp's rules")?;
    let build_ms = started.elapsed().as_secs_f64() * 1e3;
    let first = scanner.scan(black_box(planted));
    let cold_ms = started.elapsed().as_secs_f64() * 1e3;

    let planted_ms = time(&scanner, planted, warmup, iterations);
    let clean_ms = time(&scanner, clean, warmup, iterations);
    Ok(TandemRun {
        build_ms,
        cold_ms,
        rule_count: scanner.rule_count(),
        planted_ms,
        clean_ms,
        findings: lines(planted, &first),
        clean_findings: lines(clean, &scanner.scan(clean)),
    })
}

fn time(scanner: &Scanner, text: &[u8], warmup: u32, iterations: u32) -> Summary {
    for _ in 0..warmup {
        black_box(scanner.scan(black_box(text)));
    }
    let mut samples = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let started = Instant::now();
        let findings = scanner.scan(black_box(text));
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        black_box(findings);
    }
    Summary::of(&mut samples)
}

/// Findings as (line, rule); personal-data rules are marked `pii:` so the report can tell them apart.
fn lines(text: &[u8], findings: &[tandem_dlp::Finding]) -> Vec<LineFinding> {
    let index = LineIndex::new(text);
    findings
        .iter()
        .map(|f| LineFinding {
            line: index.line(f.span.start),
            rule: match f.class {
                Class::Secret => f.rule.to_string(),
                Class::Pii(_) => format!("pii:{}", f.rule),
            },
        })
        .collect()
}
