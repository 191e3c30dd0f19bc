//! `tandem dlp scan`: find secrets (and optionally personal data) in files, directories or standard
//! input, print them with a masked preview, and exit 1 when anything is found (for pre-commit hooks and
//! CI).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;
use tandem_dlp::{PiiConfig, Rules, Scanner};

/// Files larger than this are skipped (logs, dumps, binaries under another name).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Options of `tandem dlp scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories to scan (directories honour .gitignore); `-` or nothing reads standard
    /// input.
    pub paths: Vec<PathBuf>,
    /// Print JSON (one array of findings) instead of text.
    #[arg(long)]
    pub json: bool,
    /// A gitleaks-format rule file (with `[extend] useDefault = true` it adds to the defaults).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Also look for personal data: email, phone, card, iban or all (repeatable).
    #[arg(long = "pii", value_name = "KIND")]
    pub pii: Vec<String>,
}

/// One finding as printed.
struct Hit {
    file: String,
    line: usize,
    column: usize,
    rule: String,
    preview: String,
}

/// Runs the scan; `Ok(true)` when something was found.
pub fn scan(args: &ScanArgs) -> anyhow::Result<bool> {
    let rules = match &args.rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Rules::from_toml(&text).with_context(|| format!("rule file {}", path.display()))?
        }
        None => Rules::builtin().context("built-in rules")?,
    };
    let mut pii = PiiConfig::none();
    for kind in &args.pii {
        pii.enable(kind)
            .map_err(|err| anyhow::anyhow!("--pii {err}"))?;
    }
    let scanner = Arc::new(Scanner::new(&rules, &pii).context("compiling the rules")?);

    let mut hits = Vec::new();
    let stdin_only = args.paths.is_empty() || args.paths.iter().all(|p| p.as_os_str() == "-");
    if stdin_only {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        collect(&scanner, "-", &bytes, false, &mut hits);
    } else {
        for root in &args.paths {
            if root.as_os_str() == "-" {
                anyhow::bail!("`-` (standard input) cannot be mixed with paths");
            }
            walk(&scanner, root, &mut hits)?;
        }
    }

    if args.json {
        let rows: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({"file": h.file, "line": h.line, "column": h.column, "rule": h.rule, "preview": h.preview})
            })
            .collect();
        print(&serde_json::to_string_pretty(&rows)?);
    } else {
        let mut out = String::new();
        for h in &hits {
            out.push_str(&format!(
                "{}:{}:{}: {} {}\n",
                h.file, h.line, h.column, h.rule, h.preview
            ));
        }
        if hits.is_empty() {
            eprint("no secrets found");
        } else {
            print(out.trim_end());
            eprint(&format!("{} finding(s)", hits.len()));
        }
    }
    Ok(!hits.is_empty())
}

fn walk(scanner: &Scanner, root: &Path, hits: &mut Vec<Hit>) -> anyhow::Result<()> {
    if root.is_file() {
        let bytes = std::fs::read(root).with_context(|| format!("reading {}", root.display()))?;
        collect(scanner, &root.display().to_string(), &bytes, true, hits);
        return Ok(());
    }
    if !root.exists() {
        anyhow::bail!("{}: no such file or directory", root.display());
    }
    for entry in ignore::WalkBuilder::new(root).hidden(false).build() {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        let path = entry.path();
        if path.components().any(|c| c.as_os_str() == ".git") {
            continue;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if entry.metadata().map_or(true, |m| m.len() > MAX_FILE_BYTES) {
            continue;
        }
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // Binary files: a NUL in the first 8 KiB, as git decides.
        if bytes.iter().take(8192).any(|&b| b == 0) {
            continue;
        }
        collect(scanner, &path.display().to_string(), &bytes, true, hits);
    }
    Ok(())
}

fn collect(scanner: &Scanner, name: &str, bytes: &[u8], is_file: bool, hits: &mut Vec<Hit>) {
    let findings = if is_file {
        scanner.scan_path(name, bytes)
    } else {
        scanner.scan(bytes)
    };
    // Findings come sorted by offset: count lines incrementally, not from the start each time.
    let (mut at, mut line, mut line_start) = (0usize, 1usize, 0usize);
    for f in findings {
        let start = f.span.start.max(at);
        for (i, &b) in bytes[at..start].iter().enumerate() {
            if b == b'\n' {
                line += 1;
                line_start = at + i + 1;
            }
        }
        at = start;
        hits.push(Hit {
            file: name.to_owned(),
            line,
            column: f.span.start.saturating_sub(line_start) + 1,
            rule: f.rule.to_string(),
            preview: mask(&bytes[f.span.clone()]),
        });
    }
}

/// Up to the first four characters of the secret (usually its format prefix), then stars and the
/// length: enough to find it, not enough to use it.
fn mask(secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let first_line = text.lines().next().unwrap_or_default();
    let shown: String = first_line.chars().take(4).collect();
    format!("{shown}{} ({} bytes)", "*".repeat(8), secret.len())
}

#[expect(clippy::print_stdout, reason = "the scan prints its findings")]
fn print(text: &str) {
    println!("{text}");
}

#[expect(
    clippy::print_stderr,
    reason = "the summary goes to stderr so stdout stays parseable"
)]
fn eprint(text: &str) {
    eprintln!("{text}");
}
