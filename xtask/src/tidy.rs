//! `cargo xtask tidy`: repository-wide checks that the compiler and clippy cannot express.
//!
//! - Every `.rs` file under `crates/`, `xtask/` and `fuzz/` opens with a `//!` module doc (after optional inner attributes).
//! - No test is skipped with an ignore attribute, and no lint is silenced with an allow attribute
//!   (use `#[expect(lint, reason = "...")]`).
//! - The sans-IO crates have no tokio in their normal dependency tree, and OpenTelemetry stays in the binary: the
//!   pipeline and the gateway only create `tracing` spans (checked with `cargo tree -i`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Source trees whose `.rs` files are checked.
const SOURCE_DIRS: &[&str] = &["crates", "xtask", "fuzz"];

/// Crates and the crates they must not depend on (normal edges only): tokio for the sans-IO crates, OpenTelemetry for
/// the pipeline and the gateway (spans are `tracing` spans; only `tandem-cli` exports them).
const DEPENDENCY_ABSENCES: &[(&str, &[&str])] = &[
    ("tandem-protocol", &["tokio"]),
    ("tandem-translate", &["tokio"]),
    ("tandem-router", &["tokio"]),
    ("tandem-policy", &["tokio"]),
    ("tandem-budget", &["tokio"]),
    ("tandem-dlp", &["tokio"]),
    ("tandem-patch", &["tokio"]),
    ("tandem-gates", &["tokio"]),
    ("tandem-core", &["opentelemetry"]),
    ("tandem-gateway", &["opentelemetry"]),
];

/// Attribute openings that tidy rejects. Built with `concat!` so this file does not match itself.
const BANNED: &[(&str, &str)] = &[
    (
        concat!("#[", "ignore]"),
        "tests are not skipped: fix or delete the test",
    ),
    (
        concat!("#[", "ignore ="),
        "tests are not skipped: fix or delete the test",
    ),
    (
        concat!("#[", "allow("),
        "use #[expect(lint, reason = \"...\")] instead of allow",
    ),
    (
        concat!("#![", "allow("),
        "use #![expect(lint, reason = \"...\")] instead of allow",
    ),
];

/// Runs every check and reports all problems at once.
pub(crate) fn run(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        collect_rust_files(&root.join(dir), &mut files)?;
    }
    for file in &files {
        let text =
            fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        check_module_doc(&shown, &text, &mut problems);
        check_banned(&shown, &text, &mut problems);
    }
    check_dependency_absences(root, &mut problems)?;
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("tidy: {problem}");
        }
        bail!("tidy found {} problem(s)", problems.len());
    }
    eprintln!("tidy: ok ({} Rust files checked)", files.len());
    Ok(())
}

/// Collects `.rs` files below `dir`, skipping build output and hidden directories.
fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if file_type.is_dir() {
            if name.starts_with('.') || name == "target" {
                continue;
            }
            collect_rust_files(&path, files)?;
        } else if file_type.is_file() && name.ends_with(".rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The first line that is neither blank nor part of an inner attribute must be a `//!` comment.
fn check_module_doc(file: &str, text: &str, problems: &mut Vec<String>) {
    let mut attribute_depth = 0_i32;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if attribute_depth > 0 || trimmed.starts_with("#![") {
            attribute_depth += bracket_balance(trimmed);
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        if !trimmed.starts_with("//!") {
            problems.push(format!(
                "{file}:{}: file must start with a `//!` module doc comment explaining what it is for",
                index + 1
            ));
        }
        return;
    }
    problems.push(format!(
        "{file}: file is empty; it must start with a `//!` module doc comment"
    ));
}

fn bracket_balance(line: &str) -> i32 {
    line.chars()
        .map(|c| match c {
            '[' => 1,
            ']' => -1,
            _ => 0,
        })
        .sum()
}

fn check_banned(file: &str, text: &str, problems: &mut Vec<String>) {
    for (index, line) in text.lines().enumerate() {
        for (needle, advice) in BANNED {
            if line.contains(needle) {
                problems.push(format!(
                    "{file}:{}: `{needle}` is not allowed: {advice}",
                    index + 1
                ));
            }
        }
    }
}

/// `cargo tree -p CRATE -e normal -i DEP` must print nothing for each absence rule.
fn check_dependency_absences(root: &Path, problems: &mut Vec<String>) -> Result<()> {
    for (krate, forbidden) in DEPENDENCY_ABSENCES {
        if !root.join("crates").join(krate).join("Cargo.toml").exists() {
            eprintln!("tidy: skipping dependency check of {krate}: the crate does not exist yet");
            continue;
        }
        for dep in *forbidden {
            let mut command = cmd::cargo(["tree", "-p", krate, "-e", "normal", "-i", dep]);
            let line = cmd::display(&command);
            let captured = cmd::capture(&mut command)?;
            // With `-p`, cargo reports a dependency outside that crate's graph as an unmatched spec.
            let absent_from_graph = format!("`{dep}` did not match any packages");
            match captured.success {
                true if captured.stdout.trim().is_empty() => {}
                true => problems.push(format!(
                    "{krate} must not depend on {dep}, but `{line}` prints:\n{}",
                    captured.stdout.trim_end()
                )),
                false if captured.stderr.contains(&absent_from_graph) => {}
                false => bail!("`{line}` failed:\n{}", captured.stderr.trim_end()),
            }
        }
    }
    Ok(())
}
