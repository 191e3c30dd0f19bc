//! Quality gates run on a proposed change before it is accepted: the project's own `test`, `lint`
//! and `typecheck` commands (from `[gates]` in `tandem.toml`), and two built-in gates, a DLP scan
//! of the lines the diff adds and a dependency gate that checks the packages a changed manifest
//! adds against allow and deny lists of names and SPDX licenses.
//!
//! Commands run through a [`Runner`] (the agent's sandbox, or [`PlainRunner`]); licenses come from
//! a [`LicenseSource`] ([`LocalLicenses`] reads what is installed, offline). Every gate runs and
//! reports a [`GateResult`]; [`passed`] says whether the change may be accepted.

mod diff;
mod error;
mod license;
mod manifest;
mod runner;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use diff::{AddedLine, added_lines, changed_files};
pub use error::{Error, Result};
pub use license::{
    DependencyLists, DependencyPolicy, LicenseSource, LocalLicenses, PackageRule, UnknownLicense,
    Verdict, python_license,
};
pub use manifest::{Dependency, Ecosystem, dependencies, new_dependencies};
pub use runner::{PlainRunner, RunOutput, Runner, SandboxRunner};

/// How much of a command's output a [`GateResult`] keeps.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// The gates to run on a change (built by `tandem-config` from `[gates]`).
#[derive(Clone, Debug)]
pub struct GatesConfig {
    /// The test command (`sh -c`, in the workspace).
    pub test: Option<String>,
    /// The lint command.
    pub lint: Option<String>,
    /// The typecheck command.
    pub typecheck: Option<String>,
    /// How long each command may run before it is killed (and fails).
    pub timeout: Duration,
    /// The scanner for the DLP gate; `None` turns the gate off.
    pub dlp: Option<Arc<tandem_dlp::Scanner>>,
    /// The dependency gate's policy.
    pub dependencies: DependencyPolicy,
}

/// A proposed change.
#[derive(Clone, Debug)]
pub struct Change {
    /// The workspace the commands run in.
    pub workspace: PathBuf,
    /// The change as a unified diff.
    pub diff: String,
    /// The changed manifests, before and after (other files are ignored by the dependency gate).
    pub manifests: Vec<ManifestChange>,
}

/// One changed file's contents before and after.
#[derive(Clone, Debug)]
pub struct ManifestChange {
    /// The path, relative to the workspace.
    pub path: String,
    /// The old contents; `None` for a new file.
    pub old: Option<String>,
    /// The new contents; `None` for a deleted file.
    pub new: Option<String>,
}

/// What one gate found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateResult {
    /// `test`, `lint`, `typecheck`, `dlp` or `dependencies`.
    pub name: String,
    /// The command, for command gates.
    pub command: Option<String>,
    /// Whether the change passes it.
    pub passed: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// The last [`OUTPUT_TAIL_BYTES`] of a command's output (empty for built-in gates).
    pub output_tail: String,
    /// What is wrong (or worth a look), one line each; secrets are named by rule and place, never
    /// by value.
    pub findings: Vec<String>,
}

/// Runs every configured gate on `change`: the DLP and dependency gates first (they are cheap),
/// then typecheck, lint and test. All run, whatever the earlier ones found.
pub fn run_all(
    config: &GatesConfig,
    change: &Change,
    runner: &dyn Runner,
    licenses: &dyn LicenseSource,
) -> Vec<GateResult> {
    let mut results = Vec::new();
    if let Some(scanner) = &config.dlp {
        results.push(dlp_gate(scanner, &change.diff));
    }
    if !change.manifests.is_empty() {
        results.push(dependency_gate(
            &config.dependencies,
            &change.manifests,
            licenses,
        ));
    }
    for (name, command) in [
        ("typecheck", &config.typecheck),
        ("lint", &config.lint),
        ("test", &config.test),
    ] {
        if let Some(command) = command {
            results.push(command_gate(
                name,
                command,
                &change.workspace,
                config.timeout,
                runner,
            ));
        }
    }
    results
}

/// Whether every gate passed.
pub fn passed(results: &[GateResult]) -> bool {
    results.iter().all(|r| r.passed)
}

/// Runs one command gate: it passes when the command exits 0 within `timeout`.
pub fn command_gate(
    name: &str,
    command: &str,
    cwd: &Path,
    timeout: Duration,
    runner: &dyn Runner,
) -> GateResult {
    let started = Instant::now();
    let (passed, output_tail, findings) = match runner.run(command, cwd, timeout) {
        Ok(out) => {
            let finding = match (out.timed_out, out.status) {
                (true, _) => Some(format!("timed out after {}s", timeout.as_secs_f64())),
                (false, Some(0)) => None,
                (false, Some(code)) => Some(format!("exited with status {code}")),
                (false, None) => Some("killed by a signal".to_owned()),
            };
            (
                out.success(),
                tail(&out.output),
                finding.into_iter().collect(),
            )
        }
        Err(err) => (false, String::new(), vec![err.to_string()]),
    };
    GateResult {
        name: name.to_owned(),
        command: Some(command.to_owned()),
        passed,
        duration_ms: millis(started),
        output_tail,
        findings,
    }
}

/// The DLP gate: scans only the lines `diff` adds. A secret in a removed or context line is not
/// the change's doing.
pub fn dlp_gate(scanner: &tandem_dlp::Scanner, diff: &str) -> GateResult {
    let started = Instant::now();
    let lines = added_lines(diff);
    let mut findings = Vec::new();
    // Consecutive added lines of a file are scanned together, so a multi-line secret (a private
    // key) is one finding.
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        while end < lines.len()
            && lines[end].file == lines[start].file
            && lines[end].line == lines[end - 1].line + 1
        {
            end += 1;
        }
        let block = &lines[start..end];
        let mut text = String::new();
        let mut starts = Vec::with_capacity(block.len());
        for line in block {
            starts.push(text.len());
            text.push_str(&line.text);
            text.push('\n');
        }
        for finding in scanner.scan_path(&block[0].file, text.as_bytes()) {
            let index = starts.partition_point(|&s| s <= finding.span.start).max(1) - 1;
            let message = format!(
                "{} in {}:{}",
                finding.rule, block[index].file, block[index].line
            );
            if !findings.contains(&message) {
                findings.push(message);
            }
        }
        start = end;
    }
    GateResult {
        name: "dlp".to_owned(),
        command: None,
        passed: findings.is_empty(),
        duration_ms: millis(started),
        output_tail: String::new(),
        findings,
    }
}

/// The dependency gate: every dependency a changed manifest adds must pass `policy`.
pub fn dependency_gate(
    policy: &DependencyPolicy,
    manifests: &[ManifestChange],
    licenses: &dyn LicenseSource,
) -> GateResult {
    let started = Instant::now();
    let mut passed = true;
    let mut findings = Vec::new();
    for manifest in manifests {
        let added = match new_dependencies(
            &manifest.path,
            manifest.old.as_deref(),
            manifest.new.as_deref(),
        ) {
            Ok(added) => added,
            Err(err) => {
                passed = false;
                findings.push(err.to_string());
                continue;
            }
        };
        for dep in added {
            let license = licenses.license(&dep);
            let verdict = policy.check(&dep, license.as_deref());
            passed &= verdict.passed;
            findings.extend(
                verdict
                    .findings
                    .into_iter()
                    .map(|f| format!("{}: {f}", manifest.path)),
            );
        }
    }
    GateResult {
        name: "dependencies".to_owned(),
        command: None,
        passed,
        duration_ms: millis(started),
        output_tail: String::new(),
        findings,
    }
}

/// The last [`OUTPUT_TAIL_BYTES`] of `output`, cut at a character boundary.
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let mut cut = text.len().saturating_sub(OUTPUT_TAIL_BYTES);
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    text[cut..].to_owned()
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
