//! A fixture history whose every figure was computed by hand (see the comments), checked against
//! `History::read` and `compute`.
//!
//! Timeline (T0 = Monday 2026-10-05 00:00 UTC; the report runs at T0 + 50 days over the whole period):
//! - c0  T0+0d 09:00  human: a.rs (10 lines), b.md (4 lines)
//! - c1  T0+1d 10:00  task t1 (rename, live), on main: replaces line 3, adds 2 lines after line 5 of
//!   a.rs (introduces 3 lines). First request 09:20 → lead 40 min.
//! - c2  T0+2d 10:00  human: changes one of c1's added lines (rework of c1 within 14 and 21 days)
//! - c3  T0+3d 12:00  task t2 (fix, deep) on a side branch: adds c.rs (4 lines); merged by m1 at
//!   T0+4d 12:00. First request T0+3d 08:00 → lead and bugfix time 28 h.
//! - c6  T0+17d 10:00 human: changes c1's line 3 (past c1's 14-day window, inside its 21-day one)
//! - c5  T0+20d 10:00 human: reverts c3, deleting c.rs (past c3's 14-day window, inside its 21-day one)
//! - c7  T0+45d 10:00 task t3 (docs, live): changes b.md line 1 (its windows are still open at T0+50d).
//!   First request T0+44d 23:00 → lead 11 h.
//! - c8  T0+46d 10:00 human: `Fixes: <c7>` → a regression of t3. A failed gate on b.md at T0+47d
//!   (task t5, rejected) would count too; one on a.rs at T0+30d is past c1's 21-day window.
//! - t4 (test, live) was accepted but never committed: a change, not merged.

use std::path::Path;
use std::process::Command;

use pretty_assertions::assert_eq;
use tandem_audit::{
    ChangeEntry, CheckRun, Entry, FileChange, Principal, RequestEntry, Sealed, Tokens,
};
use tandem_report::{History, Params, ReworkShare, Stat, compute};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// 2026-10-05T00:00:00Z, a Monday.
const T0: i64 = 1_791_158_400_000;

fn git(repo: &Path, at_ms: i64, args: &[&str]) -> String {
    let date = format!("@{} +0000", at_ms / 1000);
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Fixture", "-c", "user.email=f@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(repo: &Path, path: &str, lines: &[&str]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(repo.join(path), text).expect("write");
}

fn commit(repo: &Path, at_ms: i64, message: &str) -> String {
    git(repo, at_ms, &["add", "-A"]);
    git(repo, at_ms, &["commit", "-q", "-m", message]);
    git(repo, at_ms, &["rev-parse", "HEAD"])
}

struct Ids {
    c1: String,
    c3: String,
    c7: String,
}

fn build_repo(repo: &Path) -> Ids {
    git(repo, T0, &["init", "-q"]);
    let base: Vec<String> = (1..=10).map(|i| format!("L{i}")).collect();
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    write(repo, "a.rs", &base);
    write(repo, "b.md", &["# Title", "one", "two", "three"]);
    commit(repo, T0 + 9 * HOUR, "c0: initial");

    let a1 = [
        "L1", "L2", "X3a", "L4", "L5", "N1", "N2", "L6", "L7", "L8", "L9", "L10",
    ];
    write(repo, "a.rs", &a1);
    let c1 = commit(
        repo,
        T0 + DAY + 10 * HOUR,
        "Rename the helper\n\nAssisted-by: tandem:live/test/model\nTandem-Task: t1\nTandem-Ledger: 2",
    );
    let a2 = [
        "L1",
        "L2",
        "X3a",
        "L4",
        "L5",
        "N1 changed",
        "N2",
        "L6",
        "L7",
        "L8",
        "L9",
        "L10",
    ];
    write(repo, "a.rs", &a2);
    commit(repo, T0 + 2 * DAY + 10 * HOUR, "c2: tweak");

    git(repo, T0 + 3 * DAY, &["checkout", "-q", "-b", "tandem/t2"]);
    write(
        repo,
        "c.rs",
        &["fn fix() {", "    one();", "    two();", "}"],
    );
    let c3 = commit(
        repo,
        T0 + 3 * DAY + 12 * HOUR,
        "Fix the crash\n\nAssisted-by: tandem:deep/test/model\nTandem-Task: t2",
    );
    git(repo, T0 + 4 * DAY, &["checkout", "-q", "main"]);
    git(
        repo,
        T0 + 4 * DAY + 12 * HOUR,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "m1: merge tandem/t2",
            "tandem/t2",
        ],
    );

    let a6 = [
        "L1",
        "L2",
        "X3b",
        "L4",
        "L5",
        "N1 changed",
        "N2",
        "L6",
        "L7",
        "L8",
        "L9",
        "L10",
    ];
    write(repo, "a.rs", &a6);
    commit(repo, T0 + 17 * DAY + 10 * HOUR, "c6: rework line 3");
    std::fs::remove_file(repo.join("c.rs")).expect("rm");
    commit(
        repo,
        T0 + 20 * DAY + 10 * HOUR,
        &format!("Revert \"Fix the crash\"\n\nThis reverts commit {c3}."),
    );
    write(repo, "b.md", &["# New title", "one", "two", "three"]);
    let c7 = commit(
        repo,
        T0 + 45 * DAY + 10 * HOUR,
        "Docs: retitle\n\nAssisted-by: tandem:live/test/model\nTandem-Task: t3",
    );
    write(repo, "b.md", &["# Newer title", "one", "two", "three"]);
    commit(
        repo,
        T0 + 46 * DAY + 10 * HOUR,
        &format!("Fix the title\n\nFixes: {}", &c7[..12]),
    );
    Ids { c1, c3, c7 }
}

#[expect(clippy::too_many_arguments, reason = "one row of the fixture per call")]
fn request(
    id: &str,
    session: Option<&str>,
    tier: Option<&str>,
    started: i64,
    stream: bool,
    outcome: &str,
    (input, output): (u64, u64),
    cost: f64,
    (ttft, latency): (Option<u64>, u64),
    reason: Option<&str>,
) -> Entry {
    Entry::Request(RequestEntry {
        id: id.into(),
        started_at_ms: started,
        principal: Principal {
            user: "ada".into(),
            ..Principal::default()
        },
        session: session.map(Into::into),
        api: "chat".into(),
        stream,
        model: "auto".into(),
        tier: tier.map(Into::into),
        route_reason: reason.map(Into::into),
        status: if outcome == "error" { 502 } else { 200 },
        outcome: outcome.into(),
        tokens: Tokens {
            input,
            output,
            exact: true,
            ..Tokens::default()
        },
        cost_usd: cost,
        latency_ms: latency,
        ttft_ms: ttft,
        ..RequestEntry::default()
    })
}

fn change(task: &str, class: &str, tier: &str, files: &[&str], commit: Option<&str>) -> Entry {
    Entry::Change(ChangeEntry {
        task: task.into(),
        class: Some(class.into()),
        tier: Some(tier.into()),
        principal: Principal {
            user: "ada".into(),
            ..Principal::default()
        },
        files: files
            .iter()
            .map(|p| FileChange {
                path: (*p).into(),
                sha256: None,
                added: 1,
                removed: 0,
            })
            .collect(),
        diff_sha256: "00".into(),
        accepted: true,
        commit: commit.map(Into::into),
        ..ChangeEntry::default()
    })
}

fn failed_gate(task: &str, file: &str) -> Entry {
    let Entry::Change(mut c) = change(task, "other", "live", &[file], None) else {
        unreachable!()
    };
    c.accepted = false;
    c.checks = vec![CheckRun {
        name: "test".into(),
        command: Some("cargo test".into()),
        passed: false,
        duration_ms: 10,
    }];
    Entry::Change(c)
}

fn ledger(ids: &Ids) -> Vec<Sealed> {
    let entries: Vec<(i64, Entry)> = vec![
        // t1: a cut-off stream, then the answer that was applied.
        (
            T0 + DAY + 9 * HOUR,
            request(
                "r2",
                Some("t1"),
                Some("live"),
                T0 + DAY + 9 * HOUR + 20 * 60_000,
                true,
                "cancelled",
                (800, 20),
                0.002,
                (Some(80), 900),
                None,
            ),
        ),
        (
            T0 + DAY + 9 * HOUR,
            request(
                "r1",
                Some("t1"),
                Some("live"),
                T0 + DAY + 9 * HOUR + 30 * 60_000,
                true,
                "ok",
                (1000, 500),
                0.01,
                (Some(100), 1100),
                None,
            ),
        ),
        (
            T0 + DAY + 10 * HOUR,
            change("t1", "rename", "live", &["a.rs"], Some(&ids.c1)),
        ),
        // t2: live first, then escalated to deep.
        (
            T0 + 3 * DAY,
            request(
                "r3",
                Some("t2"),
                Some("live"),
                T0 + 3 * DAY + 8 * HOUR,
                false,
                "ok",
                (2000, 300),
                0.02,
                (None, 2000),
                None,
            ),
        ),
        (
            T0 + 3 * DAY,
            request(
                "r4",
                Some("t2"),
                Some("deep"),
                T0 + 3 * DAY + 9 * HOUR,
                true,
                "ok",
                (3000, 800),
                0.10,
                (Some(400), 4400),
                Some("escalate:check-failed"),
            ),
        ),
        (
            T0 + 3 * DAY,
            change("t2", "fix", "deep", &["c.rs"], Some(&ids.c3)),
        ),
        // A request that named a model directly.
        (
            T0 + 5 * DAY,
            request(
                "r7",
                None,
                None,
                T0 + 5 * DAY,
                false,
                "ok",
                (100, 10),
                0.001,
                (None, 300),
                None,
            ),
        ),
        // A failed gate on a.rs after c1's 21-day window: not a regression.
        (T0 + 30 * DAY, failed_gate("t6", "a.rs")),
        // t3
        (
            T0 + 45 * DAY,
            request(
                "r5",
                Some("t3"),
                Some("live"),
                T0 + 44 * DAY + 23 * HOUR,
                true,
                "ok",
                (500, 1000),
                0.005,
                (Some(50), 550),
                None,
            ),
        ),
        (
            T0 + 45 * DAY,
            change("t3", "docs", "live", &["b.md"], Some(&ids.c7)),
        ),
        // A failed gate on b.md two days after t3 merged: a regression (t3 also has a Fixes: trailer).
        (T0 + 47 * DAY, failed_gate("t5", "b.md")),
        // t4: accepted, never committed.
        (
            T0 + 48 * DAY,
            request(
                "r6",
                Some("t4"),
                Some("live"),
                T0 + 48 * DAY,
                true,
                "error",
                (0, 0),
                0.0,
                (None, 30),
                None,
            ),
        ),
        (
            T0 + 48 * DAY,
            change("t4", "test", "live", &["test.rs"], None),
        ),
    ];
    entries
        .into_iter()
        .enumerate()
        .map(|(i, (ts, entry))| Sealed {
            i: i as u64,
            prev: "0".repeat(64),
            ts,
            entry,
        })
        .collect()
}

fn share(commits: u64, lines: u64, reworked: u64) -> ReworkShare {
    ReworkShare {
        commits,
        lines,
        reworked,
        share: (lines > 0).then(|| reworked as f64 / lines as f64),
    }
}

fn stat(values: &[f64]) -> Stat {
    Stat {
        n: values.len() as u64,
        p50: values.first().copied(),
        p90: values.get(1).or(values.first()).copied(),
    }
}

#[test]
fn history_reads_merges_trailers_and_rework() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = build_repo(dir.path());
    let history = History::read(dir.path(), None, T0, T0 + 50 * DAY).expect("history");
    assert_eq!(history.branch, "main");
    assert_eq!(history.commits.len(), 9);
    let c1 = history.find(&ids.c1).expect("c1");
    assert_eq!(
        (c1.task.as_deref(), c1.merged_ms),
        (Some("t1"), T0 + DAY + 10 * HOUR)
    );
    assert_eq!(c1.files, ["a.rs"]);
    let r = c1.rework.expect("rework");
    assert_eq!((r.lines, r.within_14d, r.within_21d), (3, Some(1), Some(2)));
    let c3 = history.find(&ids.c3).expect("c3");
    // Reached main with the merge, a day after it was made.
    assert_eq!(c3.merged_ms, T0 + 4 * DAY + 12 * HOUR);
    let r = c3.rework.expect("rework");
    assert_eq!((r.lines, r.within_14d, r.within_21d), (4, Some(0), Some(4)));
    let c7 = history.find(&ids.c7).expect("c7");
    let r = c7.rework.expect("rework");
    assert_eq!((r.lines, r.within_14d, r.within_21d), (1, None, None));
    assert!(
        history
            .commits
            .iter()
            .any(|c| c.reverts == [ids.c3.clone()])
    );
    assert!(
        history
            .commits
            .iter()
            .any(|c| c.fixes == [ids.c7[..12].to_owned()])
    );
}

#[test]
fn report_matches_the_hand_computed_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = build_repo(dir.path());
    let now = T0 + 50 * DAY;
    let history = History::read(dir.path(), None, T0, now).expect("history");
    let report = compute(
        &ledger(&ids),
        &[history],
        &Params {
            since_ms: T0,
            now_ms: now,
        },
    );
    let row = |class: &str, tier: &str| {
        report
            .rows
            .iter()
            .find(|r| r.class == class && r.tier == tier)
            .unwrap_or_else(|| panic!("no row {class}/{tier}"))
            .clone()
    };
    let keys: Vec<(String, String)> = report
        .rows
        .iter()
        .map(|r| (r.class.clone(), r.tier.clone()))
        .collect();
    let expected_keys: Vec<(String, String)> = [
        ("rename", "live"),
        ("rename", "all"),
        ("fix", "live"),
        ("fix", "deep"),
        ("fix", "all"),
        ("test", "live"),
        ("test", "all"),
        ("docs", "live"),
        ("docs", "all"),
        ("other", "none"),
        ("other", "all"),
        ("all", "live"),
        ("all", "deep"),
        ("all", "none"),
        ("all", "all"),
    ]
    .iter()
    .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
    .collect();
    assert_eq!(keys, expected_keys);

    let t1 = row("rename", "live");
    assert_eq!((t1.changes, t1.merged, t1.requests), (1, 1, 2));
    assert!((t1.lead_time_h.p50.expect("lead") - 40.0 / 60.0).abs() < 1e-9);
    assert_eq!(
        (t1.rework_14d, t1.rework_21d),
        (share(1, 3, 1), share(1, 3, 2))
    );
    assert_eq!((t1.interrupts, t1.steers, t1.escalations), (1, 1, 0));
    assert_eq!(t1.tokens_per_merged, Some(2320.0));
    assert!((t1.cost_per_merged_usd.expect("cost") - 0.012).abs() < 1e-12);

    let t2 = row("fix", "deep");
    assert_eq!(
        (t2.changes, t2.merged, t2.reverts, t2.regressions),
        (1, 1, 1, 0)
    );
    assert_eq!(
        (t2.lead_time_h, t2.bugfix_time_h),
        (stat(&[28.0]), stat(&[28.0]))
    );
    assert_eq!(
        (t2.rework_14d, t2.rework_21d),
        (share(1, 4, 0), share(1, 4, 4))
    );
    // The deep request was the escalation; the live one sits in fix/live.
    assert_eq!((t2.requests, t2.escalations), (1, 1));
    assert_eq!(t2.tokens_per_merged, Some(6100.0));
    assert_eq!(
        (row("fix", "live").requests, row("fix", "live").changes),
        (1, 0)
    );

    let t3 = row("docs", "live");
    assert_eq!((t3.changes, t3.merged, t3.regressions), (1, 1, 1));
    assert_eq!(t3.lead_time_h, stat(&[11.0]));
    assert_eq!(t3.rework_14d, share(0, 0, 0));

    let t4 = row("test", "live");
    assert_eq!((t4.changes, t4.merged, t4.tokens_per_merged), (1, 0, None));

    let all = row("all", "all");
    assert_eq!(
        (all.changes, all.merged, all.reverts, all.regressions),
        (4, 3, 1, 1)
    );
    assert_eq!(
        (all.lead_time_h.n, all.lead_time_h.p50, all.lead_time_h.p90),
        (3, Some(11.0), Some(28.0))
    );
    assert_eq!(
        (all.rework_14d, all.rework_21d),
        (share(2, 7, 1), share(2, 7, 6))
    );
    assert_eq!(
        (all.requests, all.escalations, all.interrupts, all.steers),
        (7, 1, 1, 1)
    );
    assert_eq!(row("other", "none").requests, 1);

    let tiers: Vec<_> = report
        .tiers
        .iter()
        .map(|t| (t.tier.as_str(), t.requests, t.errors, t.cancelled))
        .collect();
    assert_eq!(
        tiers,
        [("live", 5, 1, 1), ("deep", 1, 0, 0), ("none", 1, 0, 0)]
    );
    let live = &report.tiers[0];
    assert_eq!(
        live.ttft_ms,
        Stat {
            n: 2,
            p50: Some(50.0),
            p90: Some(100.0)
        }
    );
    assert_eq!(
        live.tokens_per_s,
        Stat {
            n: 2,
            p50: Some(500.0),
            p90: Some(2000.0)
        }
    );
    assert_eq!(report.tiers[1].tokens_per_s, stat(&[200.0]));

    assert_eq!(report.weeks.len(), 8);
    let w0 = &report.weeks[0];
    assert_eq!(w0.start_ms, T0);
    assert_eq!((w0.changes, w0.merged, w0.escalations), (2, 2, 1));
    assert!((w0.lead_time_p50_h.expect("lead") - 40.0 / 60.0).abs() < 1e-9);
    let requests: Vec<_> = w0.requests.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert_eq!(requests, [("deep", 1), ("live", 3), ("none", 1)]);
    assert_eq!(w0.rework_14d, share(2, 7, 1));
    let w6 = &report.weeks[6];
    assert_eq!((w6.start_ms, w6.changes, w6.merged), (T0 + 42 * DAY, 2, 1));

    assert_eq!(report.repositories.len(), 1);
    assert_eq!(
        (
            report.repositories[0].commits,
            report.repositories[0].assisted
        ),
        (9, 3)
    );
}

#[test]
fn a_missing_repository_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = History::read(&dir.path().join("nope"), None, 0, 0).expect_err("no repo");
    assert!(err.to_string().starts_with("git: opening "), "{err}");
}
