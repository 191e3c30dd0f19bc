//! Joins ledger entries and git histories into a [`Report`]. No IO: entries and histories come in,
//! figures go out, so the fixture tests compute every figure by hand.
//!
//! How an entry finds its figures:
//! - a change's requests are the ids it lists plus every request whose session key is the change's task
//!   id (`tandem edit` and `tandem task` send it), so steered and escalated calls count too;
//! - a change's commit is the branch commit whose `Tandem-Task` trailer names the task (which survives
//!   rebases and squash merges), else the commit the change recorded, if it is on the branch;
//! - a change's time is its commit's time, else its first request's arrival, else when it was sealed;
//! - a request that belongs to no change takes the router's class, or `other`; its tier is the tier it
//!   went to, or `none` for a request that named a model directly.

use std::collections::{BTreeMap, HashMap, HashSet};

use tandem_audit::{ChangeEntry, Entry, RequestEntry, Sealed};

use crate::{
    CLASSES, History, Report, RepositoryRow, ReworkShare, Row, Stat, TierRow, Week, history::Commit,
};

const HOUR_MS: f64 = 3_600_000.0;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How long after a merge a failed gate on the same files counts as a regression.
const REGRESSION_WINDOW_MS: i64 = 21 * DAY_MS;

/// The period a report covers.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Start of the period (Unix milliseconds).
    pub since_ms: i64,
    /// The report's time (Unix milliseconds); rework windows must have ended by then.
    pub now_ms: i64,
}

/// Nearest-rank percentiles of `values`.
pub(crate) fn stat(values: &mut [f64]) -> Stat {
    if values.is_empty() {
        return Stat::default();
    }
    values.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        let n = values.len() as f64;
        let index = ((q * n).ceil() as usize).clamp(1, values.len()) - 1;
        values[index]
    };
    Stat {
        n: values.len() as u64,
        p50: Some(rank(0.5)),
        p90: Some(rank(0.9)),
    }
}

fn add_rework(total: &mut ReworkShare, lines: u64, reworked: Option<u64>) {
    if let Some(reworked) = reworked {
        total.commits += 1;
        total.lines += lines;
        total.reworked += reworked;
    }
}

fn finish_rework(total: &mut ReworkShare) {
    total.share = (total.lines > 0).then(|| total.reworked as f64 / total.lines as f64);
}

/// Monday 00:00 UTC of the week holding `ms`.
pub(crate) fn week_start(ms: i64) -> i64 {
    let days = ms.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: Monday is 3 days before.
    (days - (days + 3).rem_euclid(7)) * DAY_MS
}

#[derive(Default)]
struct Acc {
    row: Row,
    lead: Vec<f64>,
    bugfix: Vec<f64>,
    merged_tokens: u64,
    merged_cost: f64,
}

/// Figures of one change, once joined.
struct Joined<'a> {
    task: &'a str,
    files: Vec<&'a str>,
    class: String,
    tier: String,
    time_ms: i64,
    commit: Option<&'a Commit>,
    lead_h: Option<f64>,
    tokens: u64,
    cost: f64,
    reverted: bool,
    regressed: bool,
}

fn class_of(class: Option<&str>) -> String {
    match class {
        Some(c) if CLASSES.contains(&c) => c.to_owned(),
        _ => "other".to_owned(),
    }
}

fn tokens(r: &RequestEntry) -> u64 {
    r.tokens.input.saturating_add(r.tokens.output)
}

/// Computes the report of `entries` (the whole ledger, in order) and `histories` over `params`.
pub fn compute(entries: &[Sealed], histories: &[History], params: &Params) -> Report {
    let Params { since_ms, now_ms } = *params;
    let mut requests: Vec<&RequestEntry> = Vec::new();
    let mut changes: BTreeMap<&str, (i64, &ChangeEntry)> = BTreeMap::new();
    let mut failed_gates: Vec<(i64, &ChangeEntry)> = Vec::new();
    for sealed in entries {
        match &sealed.entry {
            Entry::Request(r) => requests.push(r),
            Entry::Change(c) => {
                if c.checks.iter().any(|check| !check.passed) {
                    failed_gates.push((sealed.ts, c));
                }
                if c.accepted {
                    // The last accepted record of a task stands for it.
                    changes.insert(c.task.as_str(), (sealed.ts, c));
                }
            }
        }
    }
    let by_id: HashMap<&str, &RequestEntry> =
        requests.iter().map(|r| (r.id.as_str(), *r)).collect();
    let mut by_session: HashMap<&str, Vec<&RequestEntry>> = HashMap::new();
    for r in &requests {
        if let Some(session) = &r.session {
            by_session.entry(session.as_str()).or_default().push(r);
        }
    }
    let commits: Vec<&Commit> = histories.iter().flat_map(|h| &h.commits).collect();
    let by_task: HashMap<&str, &Commit> = commits
        .iter()
        .filter_map(|c| c.task.as_deref().map(|t| (t, *c)))
        .collect();
    let by_commit: HashMap<&str, &Commit> = commits.iter().map(|c| (c.id.as_str(), *c)).collect();
    // Every `This reverts commit` and `Fixes:` reference, with when the referring commit landed.
    let references = |of: fn(&Commit) -> &[String]| -> Vec<(&str, i64)> {
        commits
            .iter()
            .flat_map(|c| of(c).iter().map(move |id| (id.as_str(), c.merged_ms)))
            .collect()
    };
    let reverts = references(|c| &c.reverts);
    let fixes = references(|c| &c.fixes);

    // Changes, joined with their requests and commits.
    let mut owner: HashMap<&str, (String, String)> = HashMap::new();
    let mut joined = Vec::new();
    for (task, (sealed_ms, change)) in &changes {
        let mut mine: Vec<&RequestEntry> = change
            .requests
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .collect();
        mine.extend(by_session.get(task).into_iter().flatten().copied());
        let mut seen = HashSet::new();
        mine.retain(|r| seen.insert(r.id.as_str()));
        let class = class_of(change.class.as_deref());
        let tier = change.tier.clone().unwrap_or_else(|| "none".to_owned());
        for r in &mine {
            owner.insert(r.id.as_str(), (class.clone(), tier.clone()));
        }
        let commit = by_task.get(task).copied().or_else(|| {
            let id = change.commit.as_deref()?;
            by_commit.get(id).copied().or_else(|| {
                // An abbreviated id: look it up among all.
                (id.len() >= 7)
                    .then(|| commits.iter().copied().find(|c| c.id.starts_with(id)))
                    .flatten()
            })
        });
        let first_request = mine.iter().map(|r| r.started_at_ms).min();
        let time_ms = commit
            .map(|c| c.time_ms)
            .or(first_request)
            .unwrap_or(*sealed_ms);
        let lead_h = match (commit, first_request) {
            (Some(c), Some(start)) => Some((c.merged_ms - start).max(0) as f64 / HOUR_MS),
            _ => None,
        };
        // Named by a commit that landed at or after it.
        let named = |refs: &[(&str, i64)]| {
            commit.is_some_and(|c| {
                refs.iter()
                    .any(|(id, at)| *at >= c.merged_ms && c.id.starts_with(id))
            })
        };
        let (reverted, regressed) = (named(&reverts), named(&fixes));
        let mut files: Vec<&str> = change.files.iter().map(|f| f.path.as_str()).collect();
        if let Some(c) = commit {
            files.extend(c.files.iter().map(String::as_str));
        }
        joined.push(Joined {
            task,
            files,
            class,
            tier,
            time_ms,
            commit,
            lead_h,
            tokens: mine.iter().map(|r| tokens(r)).sum(),
            cost: mine.iter().map(|r| r.cost_usd).sum(),
            reverted,
            regressed,
        });
    }

    // A gate that failed after a merge blames the newest change merged before it that touched one
    // of the failing change's files, within the window.
    for (sealed_ms, failed) in &failed_gates {
        // When the gate ran: its task's first request, else when its entry was sealed.
        let ts = &failed
            .requests
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .chain(by_session.get(failed.task.as_str()).into_iter().flatten())
            .map(|r| r.started_at_ms)
            .min()
            .unwrap_or(*sealed_ms);
        for file in &failed.files {
            let culprit = joined
                .iter_mut()
                .filter(|j| j.task != failed.task && j.files.contains(&file.path.as_str()))
                .filter(|j| {
                    j.commit.is_some_and(|c| {
                        c.merged_ms < *ts && *ts - c.merged_ms <= REGRESSION_WINDOW_MS
                    })
                })
                .max_by_key(|j| j.commit.map_or(0, |c| c.merged_ms));
            if let Some(culprit) = culprit {
                culprit.regressed = true;
            }
        }
    }

    let mut accs: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut each = |class: &str, tier: &str, f: &mut dyn FnMut(&mut Acc)| {
        for key in [
            (class.to_owned(), tier.to_owned()),
            (class.to_owned(), "all".to_owned()),
            ("all".to_owned(), tier.to_owned()),
            ("all".to_owned(), "all".to_owned()),
        ] {
            f(accs.entry(key).or_default());
        }
    };
    let mut weeks: BTreeMap<i64, Week> = BTreeMap::new();
    let mut week_lead: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    let first_week = week_start(since_ms);
    let mut w = first_week;
    while w <= now_ms {
        weeks.insert(
            w,
            Week {
                start_ms: w,
                ..Week::default()
            },
        );
        w += 7 * DAY_MS;
    }

    for j in &joined {
        let in_period = j.time_ms >= since_ms && j.time_ms <= now_ms;
        let merged_in_period = j
            .commit
            .is_some_and(|c| c.merged_ms >= since_ms && c.merged_ms <= now_ms);
        if !in_period && !merged_in_period {
            continue;
        }
        if in_period && let Some(week) = weeks.get_mut(&week_start(j.time_ms)) {
            week.changes += 1;
        }
        let rework = j.commit.and_then(|c| c.rework);
        each(&j.class, &j.tier, &mut |acc| {
            if in_period {
                acc.row.changes += 1;
            }
            if merged_in_period {
                acc.row.merged += 1;
                acc.merged_tokens += j.tokens;
                acc.merged_cost += j.cost;
                if let Some(lead) = j.lead_h {
                    acc.lead.push(lead);
                    if j.class == "fix" {
                        acc.bugfix.push(lead);
                    }
                }
                if let Some(r) = rework {
                    add_rework(&mut acc.row.rework_14d, r.lines, r.within_14d);
                    add_rework(&mut acc.row.rework_21d, r.lines, r.within_21d);
                }
                acc.row.reverts += u64::from(j.reverted);
                acc.row.regressions += u64::from(j.regressed);
            }
        });
        if let (true, Some(c)) = (merged_in_period, j.commit) {
            let start = week_start(c.merged_ms);
            if let Some(week) = weeks.get_mut(&start) {
                week.merged += 1;
                if let Some(r) = rework {
                    add_rework(&mut week.rework_14d, r.lines, r.within_14d);
                }
            }
            if let Some(lead) = j.lead_h {
                week_lead.entry(start).or_default().push(lead);
            }
        }
    }

    // Requests: use, speed, escalations, interrupts and steers.
    let mut tiers: BTreeMap<String, (TierRow, Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in &requests {
        if r.started_at_ms < since_ms || r.started_at_ms > now_ms {
            continue;
        }
        let tier = r.tier.clone().unwrap_or_else(|| "none".to_owned());
        let class = owner
            .get(r.id.as_str())
            .map(|(class, _)| class.clone())
            .unwrap_or_else(|| class_of(r.class.as_deref()));
        let escalated = r
            .route_reason
            .as_deref()
            .is_some_and(|reason| reason.starts_with("escalate:"));
        let interrupted = r.outcome == "cancelled";
        let steered = interrupted
            && r.session.as_deref().is_some_and(|s| {
                by_session.get(s).is_some_and(|all| {
                    all.iter()
                        .any(|other| other.id != r.id && other.started_at_ms > r.started_at_ms)
                })
            });
        each(&class, &tier, &mut |acc| {
            acc.row.requests += 1;
            acc.row.tokens += tokens(r);
            acc.row.cost_usd += r.cost_usd;
            acc.row.escalations += u64::from(escalated);
            acc.row.interrupts += u64::from(interrupted);
            acc.row.steers += u64::from(steered);
        });
        if let Some(week) = weeks.get_mut(&week_start(r.started_at_ms)) {
            *week.requests.entry(tier.clone()).or_default() += 1;
            week.escalations += u64::from(escalated);
            week.cost_usd += r.cost_usd;
        }
        let (row, ttfts, speeds) = tiers.entry(tier.clone()).or_insert_with(|| {
            (
                TierRow {
                    tier,
                    ..TierRow::default()
                },
                Vec::new(),
                Vec::new(),
            )
        });
        row.requests += 1;
        row.errors += u64::from(r.outcome == "error");
        row.cancelled += u64::from(interrupted);
        row.input_tokens += r.tokens.input;
        row.output_tokens += r.tokens.output;
        row.cost_usd += r.cost_usd;
        if let (true, "ok", Some(ttft)) = (r.stream, r.outcome.as_str(), r.ttft_ms) {
            ttfts.push(ttft as f64);
            let streaming_ms = r.latency_ms.saturating_sub(ttft);
            if streaming_ms > 0 && r.tokens.output > 0 {
                speeds.push(r.tokens.output as f64 * 1000.0 / streaming_ms as f64);
            }
        }
    }

    let mut rows = Vec::new();
    let mut tier_names: Vec<String> = accs
        .keys()
        .map(|(_, t)| t.clone())
        .filter(|t| t != "all")
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    tier_names.sort_by_key(|t| (tier_rank(t), t.clone()));
    tier_names.push("all".to_owned());
    for class in CLASSES.iter().copied().chain(["all"]) {
        for tier in &tier_names {
            if let Some(mut acc) = accs.remove(&(class.to_owned(), tier.clone())) {
                acc.row.class = class.to_owned();
                acc.row.tier = tier.clone();
                acc.row.lead_time_h = stat(&mut acc.lead);
                acc.row.bugfix_time_h = stat(&mut acc.bugfix);
                finish_rework(&mut acc.row.rework_14d);
                finish_rework(&mut acc.row.rework_21d);
                if acc.row.merged > 0 {
                    let merged = acc.row.merged as f64;
                    acc.row.tokens_per_merged = Some(acc.merged_tokens as f64 / merged);
                    acc.row.cost_per_merged_usd = Some(acc.merged_cost / merged);
                }
                rows.push(acc.row);
            }
        }
    }

    let mut tier_rows: Vec<TierRow> = tiers
        .into_values()
        .map(|(mut row, mut ttfts, mut speeds)| {
            row.ttft_ms = stat(&mut ttfts);
            row.tokens_per_s = stat(&mut speeds);
            row
        })
        .collect();
    tier_rows.sort_by_key(|t| (tier_rank(&t.tier), t.tier.clone()));

    let weeks = weeks
        .into_values()
        .map(|mut week| {
            week.lead_time_p50_h = week_lead
                .get_mut(&week.start_ms)
                .and_then(|lead| stat(lead).p50);
            finish_rework(&mut week.rework_14d);
            week
        })
        .collect();

    let repositories = histories
        .iter()
        .map(|h| {
            let recent = h
                .commits
                .iter()
                .filter(|c| c.merged_ms >= since_ms && c.merged_ms <= now_ms);
            let (commits, assisted) =
                recent.fold((0, 0), |(n, a), c| (n + 1, a + u64::from(c.assisted)));
            RepositoryRow {
                path: h.path.clone(),
                branch: h.branch.clone(),
                head: h.head.clone(),
                commits,
                assisted,
            }
        })
        .collect();

    Report {
        now_ms,
        since_ms,
        ledger_entries: entries.len() as u64,
        repositories,
        rows,
        tiers: tier_rows,
        weeks,
        warnings: Vec::new(),
    }
}

/// Live first, then deep, then the rest by name.
fn tier_rank(tier: &str) -> u8 {
    match tier {
        "live" => 0,
        "deep" => 1,
        "all" => 3,
        _ => 2,
    }
}
