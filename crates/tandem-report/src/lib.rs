//! Measures the loop: the audit ledger joined with git history, per task class and tier.
//!
//! [`History::read`] walks a repository's main branch with gix: every commit, which of them Tandem
//! assisted (the `Tandem-Task` trailer), when each reached the branch, what later reverted or fixed it,
//! and how many of its lines were changed again within 14 and 21 days (gix's blame at the branch as it
//! was that many days later). [`compute`] joins that with the ledger's request and change entries into a
//! [`Report`]; `render` turns a report into text or a self-contained HTML page, and `ui` holds the web
//! dashboard's files, which `tandem serve` serves at `/ui` with a [`Dashboard`].
//!
//! The definitions of every figure are in `docs/report.md`.

mod compute;
mod error;
mod history;
pub mod render;
pub mod ui;

pub use compute::{Params, compute};
pub use error::{Error, Result};
pub use history::{Commit, History, Rework};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The router's task classes, in report order.
pub const CLASSES: [&str; 8] = [
    "rename",
    "fix",
    "test",
    "refactor",
    "migration",
    "docs",
    "config",
    "other",
];

/// A distribution's median, 90th percentile and sample count; `None`s when it has no samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// How many samples.
    pub n: u64,
    /// The median (nearest rank).
    pub p50: Option<f64>,
    /// The 90th percentile (nearest rank).
    pub p90: Option<f64>,
}

/// Lines of assisted commits changed again within a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReworkShare {
    /// Assisted commits whose window had ended by the report's time (only these count).
    pub commits: u64,
    /// Lines those commits added.
    pub lines: u64,
    /// Of those, lines changed or deleted again within the window.
    pub reworked: u64,
    /// `reworked / lines`, when any lines were added.
    pub share: Option<f64>,
}

/// The figures of one task class on one tier (or `all`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// A task class, or `all`.
    pub class: String,
    /// A tier, or `all`.
    pub tier: String,
    /// Changes the agent recorded as accepted in the period.
    pub changes: u64,
    /// Of those, changes whose commit reached the main branch.
    pub merged: u64,
    /// First request of the task to the commit reaching the main branch, in hours.
    pub lead_time_h: Stat,
    /// The lead time of `fix` changes only (the time to fix a bug once someone asked), in hours.
    pub bugfix_time_h: Stat,
    /// Rework within 14 days.
    pub rework_14d: ReworkShare,
    /// Rework within 21 days.
    pub rework_21d: ReworkShare,
    /// Merged changes a later commit reverted.
    pub reverts: u64,
    /// Merged changes with a later regression: a `Fixes:` trailer naming the commit, or a gate that
    /// failed within 21 days on a later change to a file this change was the last merged one to touch.
    pub regressions: u64,
    /// Requests the router escalated from the live to the deep tier.
    pub escalations: u64,
    /// Streams the client cut off (interrupts).
    pub interrupts: u64,
    /// Interrupts followed by another request of the same session (steers).
    pub steers: u64,
    /// Requests.
    pub requests: u64,
    /// Tokens (prompt and answer) of those requests.
    pub tokens: u64,
    /// Their cost in US dollars.
    pub cost_usd: f64,
    /// Tokens of the tasks' requests per merged change.
    pub tokens_per_merged: Option<f64>,
    /// Cost of the tasks' requests per merged change, in US dollars.
    pub cost_per_merged_usd: Option<f64>,
}

/// Speed and use of one tier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TierRow {
    /// The tier (`none` for requests that named a model directly).
    pub tier: String,
    /// Requests.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Requests the client cut off.
    pub cancelled: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Time to first token of streamed answers, in milliseconds.
    pub ttft_ms: Stat,
    /// Answer tokens per second of streamed answers, after the first token.
    pub tokens_per_s: Stat,
}

/// One week of the period (weeks start on Monday, UTC).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Week {
    /// Unix milliseconds of the week's start.
    pub start_ms: i64,
    /// Changes accepted that week.
    pub changes: u64,
    /// Changes merged that week.
    pub merged: u64,
    /// Median lead time of the changes merged that week, in hours.
    pub lead_time_p50_h: Option<f64>,
    /// Rework within 14 days of the assisted commits merged that week.
    pub rework_14d: ReworkShare,
    /// Requests per tier.
    pub requests: BTreeMap<String, u64>,
    /// Escalations from live to deep.
    pub escalations: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

/// A repository the report read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RepositoryRow {
    /// Its path.
    pub path: String,
    /// The branch read as the main branch.
    pub branch: String,
    /// The branch's commit.
    pub head: String,
    /// Commits on the branch in the period.
    pub commits: u64,
    /// Of those, commits Tandem assisted.
    pub assisted: u64,
}

/// What `tandem report` computes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the report was computed (Unix milliseconds).
    pub now_ms: i64,
    /// Start of the period (Unix milliseconds).
    pub since_ms: i64,
    /// Entries read from the ledger (all of it).
    pub ledger_entries: u64,
    /// The repositories read.
    pub repositories: Vec<RepositoryRow>,
    /// Every class and tier that had a change or a request in the period, then each class over all
    /// tiers, then `all`/`all`.
    pub rows: Vec<Row>,
    /// Per tier.
    pub tiers: Vec<TierRow>,
    /// Per week, oldest first.
    pub weeks: Vec<Week>,
    /// Repositories that could not be read, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The whole ledger, in order.
pub fn entries(reader: &tandem_audit::Reader) -> Result<Vec<tandem_audit::Sealed>> {
    let mut out = Vec::new();
    reader.entries(&tandem_audit::Filter::default(), |stored| {
        out.push(stored.sealed);
        Ok(())
    })?;
    Ok(out)
}

/// The report of `entries` joined with `repositories` (each read at `branch`, else its `HEAD`).
/// A repository that cannot be read is left out and named in [`Report::warnings`] when `lenient`,
/// else it is the error.
pub fn report(
    entries: &[tandem_audit::Sealed],
    repositories: &[std::path::PathBuf],
    branch: Option<&str>,
    params: &Params,
    lenient: bool,
) -> Result<Report> {
    let mut histories = Vec::new();
    let mut warnings = Vec::new();
    for path in repositories {
        match History::read(path, branch, params.since_ms, params.now_ms) {
            Ok(history) => histories.push(history),
            Err(err) if lenient => warnings.push(err.to_string()),
            Err(err) => return Err(err),
        }
    }
    let mut report = compute(entries, &histories, params);
    report.warnings = warnings;
    Ok(report)
}

/// Budget use of one scope, for the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetUse {
    /// The rule's name.
    pub rule: String,
    /// `team:<name>`, `project:<name>`, `user:<name>` or `key:<id>`.
    pub scope: String,
    /// `day`, `month` or `minute`.
    pub window: String,
    /// `tokens`, `usd` or `requests`.
    pub unit: String,
    /// Used in the current window.
    pub used: f64,
    /// The limit.
    pub limit: f64,
}

/// One ledger entry, summarised for the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EntryRow {
    /// Its index in the ledger.
    pub index: u64,
    /// When it was appended (Unix milliseconds).
    pub ts_ms: i64,
    /// `request` or `change`.
    pub kind: String,
    /// Who.
    pub user: String,
    /// Tier.
    pub tier: Option<String>,
    /// Task class.
    pub class: Option<String>,
    /// A request's model and status (`gpt-x 200 ok`), or a change's files and decision.
    pub summary: String,
    /// A change's task id.
    pub task: Option<String>,
    /// A change's commit.
    pub commit: Option<String>,
}

/// The audit ledger's state, for the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditStatus {
    /// Entries in the ledger.
    pub size: u64,
    /// Whether the last `verify` passed; `None` before the first has run.
    pub verified: Option<bool>,
    /// The ledger size that check covered.
    pub verified_size: u64,
    /// When it ran (Unix milliseconds).
    pub verified_at_ms: Option<i64>,
    /// What it found (the first problem, or a summary).
    pub message: String,
    /// The newest entries, newest first.
    pub latest: Vec<EntryRow>,
}

/// Everything the dashboard shows (`GET /ui/api/dashboard`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// The report over the period.
    pub report: Report,
    /// Budget use per scope in the current windows.
    pub budgets: Vec<BudgetUse>,
    /// The audit ledger.
    pub audit: AuditStatus,
}
