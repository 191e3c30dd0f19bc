//! `tandem report`: the audit ledger joined with git history, per task class and tier, as text,
//! JSON or a self-contained HTML page (the dashboard's page with the data inline).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use crate::audit::{LedgerArgs, open, time_ms};

/// Arguments of `tandem report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Start of the period: an age (`30d`, `12w`) or an RFC 3339 time.
    #[arg(long, default_value = "30d")]
    since: String,
    /// `text`, `json` or `html`.
    #[arg(long, default_value = "text")]
    format: String,
    /// A repository to join with the ledger (repeatable); defaults to `[report] repositories`, then
    /// the current directory when it is a git repository.
    #[arg(long = "repo", value_name = "PATH")]
    repos: Vec<PathBuf>,
    /// The branch read as the main branch; defaults to `[report] branch`, then each repository's HEAD.
    #[arg(long)]
    branch: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    ledger: LedgerArgs,
}

pub(crate) fn now_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Runs `tandem report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    if !["text", "json", "html"].contains(&args.format.as_str()) {
        bail!(
            "--format must be `text`, `json` or `html`, not `{}`",
            args.format
        );
    }
    let params = tandem_report::Params {
        since_ms: time_ms(&args.since)?,
        now_ms: now_ms(),
    };
    let config = if args.ledger.dir.is_none() {
        let env = |name: &str| std::env::var(name).ok();
        Some(
            tandem_config::load(args.ledger.config.as_deref(), &env)
                .context("loading configuration")?,
        )
    } else {
        None
    };
    let (mut repos, mut branch) = (args.repos.clone(), args.branch.clone());
    if let Some(settings) = config.as_ref().map(|c| &c.report) {
        if repos.is_empty() {
            repos.clone_from(&settings.repositories);
        }
        if branch.is_none() {
            branch.clone_from(&settings.branch);
        }
    }
    if repos.is_empty() && std::path::Path::new(".git").exists() {
        repos.push(PathBuf::from("."));
    }
    let reader = open(&args.ledger)?;
    let entries = tandem_report::entries(&reader).context("reading the audit ledger")?;
    let report = tandem_report::report(&entries, &repos, branch.as_deref(), &params, false)?;
    let text = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&report)? + "\n",
        "html" => tandem_report::ui::standalone(&tandem_report::Dashboard {
            report,
            ..tandem_report::Dashboard::default()
        })?,
        _ => tandem_report::render::text(&report),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// The text report of a freshly written demo (the last 30 days), with a note that it is synthetic.
pub(crate) fn demo_report(config: &tandem_config::Config) -> anyhow::Result<String> {
    let now = now_ms();
    let params = tandem_report::Params {
        since_ms: now - 30 * 86_400_000,
        now_ms: now,
    };
    let reader =
        tandem_audit::Reader::open(&config.audit.dir).context("opening the demo's audit ledger")?;
    let entries = tandem_report::entries(&reader)?;
    let report = tandem_report::report(
        &entries,
        &config.report.repositories,
        config.report.branch.as_deref(),
        &params,
        false,
    )?;
    let path = match &config.source {
        tandem_config::Source::File(path) => path.display().to_string(),
        tandem_config::Source::Embedded => String::new(),
    };
    Ok(format!(
        "A SYNTHETIC history (written by `tandem demo`), last 30 days:\n\n{}\nAgain, over the whole history: tandem report --config {path} --since 60d\n",
        tandem_report::render::text(&report),
    ))
}
