//! Text rendering of a report (`tandem report --format text`); JSON is the report serialized, and
//! HTML is [`crate::ui::standalone`].

use std::fmt::Write;

use crate::{Report, ReworkShare, Stat};

fn hours(h: Option<f64>) -> String {
    match h {
        None => "—".to_owned(),
        Some(h) if h < 1.0 => format!("{:.0}m", h * 60.0),
        Some(h) if h < 48.0 => format!("{h:.1}h"),
        Some(h) => format!("{:.1}d", h / 24.0),
    }
}

fn share(r: &ReworkShare) -> String {
    r.share
        .map_or_else(|| "—".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

fn p50_p90(s: &Stat, decimals: usize) -> String {
    format!("{}/{}", num(s.p50, decimals), num(s.p90, decimals))
}

/// The UTC date of `ms`, as `YYYY-MM-DD`.
fn date(ms: i64) -> String {
    let mut text = tandem_budget::format_rfc3339(ms);
    text.truncate(10);
    text
}

/// Fixed-width tables: per class and tier, per tier, and per week.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Tandem report, {} to {} ({} ledger entries)",
        date(report.since_ms),
        date(report.now_ms),
        report.ledger_entries
    );
    for repo in &report.repositories {
        let _ = writeln!(
            out,
            "repository {} ({} at {}): {} commits in the period, {} assisted",
            repo.path,
            repo.branch,
            repo.head.get(..12).unwrap_or(&repo.head),
            repo.commits,
            repo.assisted
        );
    }
    let _ = writeln!(
        out,
        "\n{:<10} {:<5} {:>7} {:>6} {:>13} {:>7} {:>7} {:>7} {:>5} {:>5} {:>5} {:>9} {:>10} {:>9}",
        "class",
        "tier",
        "changes",
        "merged",
        "lead p50/p90",
        "bugfix",
        "rw 14d",
        "rw 21d",
        "revrt",
        "regr",
        "escal",
        "int/steer",
        "tok/merged",
        "$/merged"
    );
    for row in &report.rows {
        let lead = format!(
            "{}/{}",
            hours(row.lead_time_h.p50),
            hours(row.lead_time_h.p90)
        );
        let _ = writeln!(
            out,
            "{:<10} {:<5} {:>7} {:>6} {:>13} {:>7} {:>7} {:>7} {:>5} {:>5} {:>5} {:>9} {:>10} {:>9}",
            row.class,
            row.tier,
            row.changes,
            row.merged,
            lead,
            hours(row.bugfix_time_h.p50),
            share(&row.rework_14d),
            share(&row.rework_21d),
            row.reverts,
            row.regressions,
            row.escalations,
            format!("{}/{}", row.interrupts, row.steers),
            num(row.tokens_per_merged, 0),
            num(row.cost_per_merged_usd, 4),
        );
    }
    let _ = writeln!(
        out,
        "\n{:<6} {:>8} {:>6} {:>9} {:>14} {:>14} {:>10} {:>10}",
        "tier",
        "requests",
        "errors",
        "cancelled",
        "ttft ms 50/90",
        "tok/s 50/90",
        "tokens",
        "cost $"
    );
    for tier in &report.tiers {
        let _ = writeln!(
            out,
            "{:<6} {:>8} {:>6} {:>9} {:>14} {:>14} {:>10} {:>10.4}",
            tier.tier,
            tier.requests,
            tier.errors,
            tier.cancelled,
            p50_p90(&tier.ttft_ms, 0),
            p50_p90(&tier.tokens_per_s, 0),
            tier.input_tokens + tier.output_tokens,
            tier.cost_usd
        );
    }
    let _ = writeln!(
        out,
        "\n{:<10} {:>7} {:>6} {:>8} {:>7} {:>12} {:>5} {:>9}",
        "week", "changes", "merged", "lead p50", "rw 14d", "requests", "escal", "cost $"
    );
    for week in &report.weeks {
        let requests = week
            .requests
            .iter()
            .map(|(tier, n)| format!("{tier}:{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>6} {:>8} {:>7} {:>12} {:>5} {:>9.4}",
            date(week.start_ms),
            week.changes,
            week.merged,
            hours(week.lead_time_p50_h),
            share(&week.rework_14d),
            requests,
            week.escalations,
            week.cost_usd
        );
    }
    let _ = writeln!(
        out,
        "\nDefinitions: docs/report.md. Rework counts only commits whose window has ended."
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(super::date(0), "1970-01-01");
        assert_eq!(super::date(1_795_996_800_000), "2026-11-30");
        assert_eq!(super::date(951_782_400_000), "2000-02-29");
    }
}
