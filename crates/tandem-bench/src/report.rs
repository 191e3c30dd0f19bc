//! The collected numbers, the pass/fail targets, and the Markdown report.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use serde::Serialize;

use crate::Settings;
use crate::machine::Machine;
use crate::scenario::{Concurrent, Kind, Sequential, Single, Target};
use crate::stats::Summary;

/// One value per target; `None` where the target was not measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PerTarget<T> {
    pub(crate) direct: Option<T>,
    pub(crate) tandem: Option<T>,
    pub(crate) litellm: Option<T>,
}

impl<T> Default for PerTarget<T> {
    fn default() -> Self {
        PerTarget {
            direct: None,
            tandem: None,
            litellm: None,
        }
    }
}

impl<T> PerTarget<T> {
    pub(crate) fn set(&mut self, kind: Kind, value: T) {
        match kind {
            Kind::Direct => self.direct = Some(value),
            Kind::Tandem => self.tandem = Some(value),
            Kind::Litellm => self.litellm = Some(value),
        }
    }

    /// The value of `kind`, inserted as the default when missing.
    pub(crate) fn entry(&mut self, kind: Kind) -> &mut T
    where
        T: Default,
    {
        let slot = match kind {
            Kind::Direct => &mut self.direct,
            Kind::Tandem => &mut self.tandem,
            Kind::Litellm => &mut self.litellm,
        };
        slot.get_or_insert_with(T::default)
    }

    pub(crate) fn get(&self, kind: Kind) -> Option<&T> {
        match kind {
            Kind::Direct => self.direct.as_ref(),
            Kind::Tandem => self.tandem.as_ref(),
            Kind::Litellm => self.litellm.as_ref(),
        }
    }
}

/// Memory and startup of one gateway; LiteLLM's numbers are summed over its process group.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GatewayMemory {
    pub(crate) startup_s: f64,
    pub(crate) processes: usize,
    pub(crate) idle_mb: f64,
    pub(crate) peak_mb: f64,
    pub(crate) after_load_mb: f64,
}

/// CPU time a gateway process (LiteLLM: its process group) used during each scenario, per unit of work.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct CpuCost {
    /// Scenario 1: microseconds per request (warm-up included).
    pub(crate) us_per_request: Option<f64>,
    /// Scenario 2: microseconds per 16-token stream (warm-up included).
    pub(crate) us_per_stream: Option<f64>,
    /// Scenario 3: microseconds per streamed token.
    pub(crate) us_per_token_single: Option<f64>,
    /// Scenario 4: microseconds per streamed token.
    pub(crate) us_per_token_concurrent: Option<f64>,
}

/// One target of the issue, evaluated.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Goal {
    pub(crate) name: &'static str,
    pub(crate) measured: String,
    /// `None` when it could not be measured in this run.
    pub(crate) pass: Option<bool>,
}

/// The share of the machine's CPU time stolen by the hypervisor (`/proc/stat`), in percent: on a shared VM the
/// tail percentiles follow it more than anything else.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Steal {
    pub(crate) run: Option<f64>,
    pub(crate) latency: Option<f64>,
    pub(crate) ttft: Option<f64>,
}

/// Steal (percent) from which a scenario's tail percentiles are flagged as the host's as much as the gateways'.
const NOISY_STEAL: f64 = 2.0;

/// Steal (percent of the machine's CPU time) up to which a round of the TTFT scenario counts as quiet.
///
/// Every full run with 1.3% steal or more (2026-11-29/30, `bench/README.md`) put direct's own TTFT p99 at
/// 0.8–1.6 ms, the scale of the target itself; every run at 0.0% put it at 0.3–0.5 ms.
pub(crate) const QUIET_STEAL: f64 = 0.5;

/// One round of the TTFT scenario: how much the hypervisor stole during it, and what it measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Round {
    /// Percent of the machine's CPU time; `None` where `/proc/stat` could not be read.
    pub(crate) steal: Option<f64>,
    /// tandem's TTFT p99 minus direct's in this round (ms).
    pub(crate) added_p99_ms: Option<f64>,
    /// Whether the report's TTFT figures are this round's.
    pub(crate) counted: bool,
}

/// Whether a round with `steal` counts as quiet; one whose steal is unknown does (there is nothing to wait for).
pub(crate) fn quiet(steal: Option<f64>) -> bool {
    steal.is_none_or(|s| s <= QUIET_STEAL)
}

/// The round whose figures a run reports: the first quiet one, else the one with the least steal.
pub(crate) fn counted_round(steals: &[Option<f64>]) -> Option<usize> {
    steals.iter().position(|s| quiet(*s)).or_else(|| {
        (0..steals.len()).min_by(|&a, &b| {
            let key = |i: usize| steals[i].unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        })
    })
}

/// Everything a run measured; written as the JSON report.
#[derive(Debug, Serialize)]
pub(crate) struct Results {
    pub(crate) settings: Settings,
    pub(crate) targets: Vec<Kind>,
    pub(crate) machine: Option<Machine>,
    pub(crate) litellm_version: Option<String>,
    pub(crate) litellm_note: Option<String>,
    /// Scenario 1, milliseconds per request.
    pub(crate) latency: PerTarget<Sequential>,
    /// Scenario 2, milliseconds to the first content delta.
    pub(crate) ttft: PerTarget<Sequential>,
    /// Scenario 3.
    pub(crate) single: PerTarget<Single>,
    /// Scenario 4.
    pub(crate) concurrent: PerTarget<Concurrent>,
    pub(crate) memory: PerTarget<GatewayMemory>,
    /// Gateway CPU time per unit of work (from `/proc/PID/stat`, 10 ms clock-tick resolution).
    pub(crate) cpu: PerTarget<CpuCost>,
    /// CPU time the hypervisor gave to other guests, in percent of the machine's, per scenario.
    pub(crate) steal: Steal,
    /// Every round of scenario 2 for direct and tandem, in order; the counted one's figures are in `ttft` (and
    /// `steal.ttft`).
    pub(crate) ttft_rounds: Vec<Round>,
    /// Scenario 2: direct's TTFT in LiteLLM's pass, which LiteLLM's added TTFT is measured against.
    pub(crate) ttft_litellm_direct: Option<Sequential>,
    pub(crate) goals: Vec<Goal>,
    pub(crate) tandem_alive: bool,
    pub(crate) litellm_alive: Option<bool>,
    /// Warning and error lines from tandem's log (it runs with `RUST_LOG=warn`).
    pub(crate) tandem_log: Vec<String>,
}

impl Results {
    pub(crate) fn new(settings: Settings, targets: &[Target]) -> Results {
        Results {
            settings,
            targets: targets.iter().map(|t| t.kind).collect(),
            machine: None,
            litellm_version: None,
            litellm_note: None,
            latency: PerTarget::default(),
            ttft: PerTarget::default(),
            single: PerTarget::default(),
            concurrent: PerTarget::default(),
            memory: PerTarget::default(),
            cpu: PerTarget::default(),
            steal: Steal::default(),
            ttft_rounds: Vec::new(),
            ttft_litellm_direct: None,
            goals: Vec::new(),
            tandem_alive: true,
            litellm_alive: None,
            tandem_log: Vec::new(),
        }
    }
}

/// A percentile of a target minus the same percentile of direct (ms), when both have samples.
pub(crate) fn added(
    per: &PerTarget<Sequential>,
    kind: Kind,
    pick: fn(&Summary) -> f64,
) -> Option<f64> {
    added_to(per.direct.as_ref(), per.get(kind), pick)
}

/// A percentile of `gateway` minus the same percentile of `direct` (ms), when both have samples.
fn added_to(
    direct: Option<&Sequential>,
    gateway: Option<&Sequential>,
    pick: fn(&Summary) -> f64,
) -> Option<f64> {
    let direct = direct.filter(|s| s.ms.count > 0)?;
    let gateway = gateway.filter(|s| s.ms.count > 0)?;
    Some(pick(&gateway.ms) - pick(&direct.ms))
}

fn p50(s: &Summary) -> f64 {
    s.p50
}
fn p90(s: &Summary) -> f64 {
    s.p90
}
pub(crate) fn p99(s: &Summary) -> f64 {
    s.p99
}

/// How many times LiteLLM's added time is tandem's; `None` when one is missing.
fn overhead_ratio(tandem: Option<f64>, litellm: Option<f64>) -> Option<Ratio> {
    let (tandem, litellm) = (tandem?, litellm?);
    Some(if tandem <= 0.0 {
        Ratio::TandemZero
    } else {
        Ratio::Times(litellm / tandem)
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ratio {
    Times(f64),
    /// tandem added nothing measurable (its percentile was at or below direct's).
    TandemZero,
}

impl Ratio {
    fn text(self) -> String {
        match self {
            Ratio::Times(x) => format!("{x:.1}×"),
            Ratio::TandemZero => "∞ (tandem ≤ direct)".to_owned(),
        }
    }
    fn at_least(self, x: f64) -> bool {
        match self {
            Ratio::Times(r) => r >= x,
            Ratio::TandemZero => true,
        }
    }
}

/// Evaluates the four targets of the benchmark issue.
pub(crate) fn goals(results: &Results) -> Vec<Goal> {
    let tandem_p99 = added(&results.latency, Kind::Tandem, p99);
    let litellm_p99 = added(&results.latency, Kind::Litellm, p99);
    let latency_goal = match (
        tandem_p99,
        litellm_p99,
        overhead_ratio(tandem_p99, litellm_p99),
    ) {
        (Some(t), Some(l), Some(ratio)) => Goal {
            name: "tandem's added p99 latency at least 10× lower than LiteLLM's",
            measured: format!(
                "tandem {} ms, LiteLLM {} ms: {}",
                signed(t),
                signed(l),
                ratio.text()
            ),
            pass: Some(ratio.at_least(10.0) && l > 0.0),
        },
        (t, _, _) => Goal {
            name: "tandem's added p99 latency at least 10× lower than LiteLLM's",
            measured: format!(
                "tandem {} ms, LiteLLM n/a",
                t.map_or_else(|| "n/a".to_owned(), signed)
            ),
            pass: None,
        },
    };
    let ttft = added(&results.ttft, Kind::Tandem, p99);
    let ttft_goal = Goal {
        name: "tandem's added time to first token under 1 ms p99",
        measured: ttft.map_or_else(
            || "n/a".to_owned(),
            |t| format!("{} ms{}", signed(t), round_note(&results.ttft_rounds)),
        ),
        pass: ttft.map(|t| t < 1.0),
    };
    let single = results.single.tandem.as_ref();
    let single_goal = Goal {
        name: "one stream through tandem at least 50,000 tokens/s",
        measured: single.map_or_else(
            || "n/a".to_owned(),
            |s| match &s.error {
                None => format!("{} tokens/s", int(s.tokens_per_sec)),
                Some(err) => format!("{} tokens/s, error: {err}", int(s.tokens_per_sec)),
            },
        ),
        pass: single.map(|s| s.error.is_none() && s.tokens_per_sec >= 50_000.0),
    };
    let memory = results.memory.tandem.as_ref();
    let memory_goal = Goal {
        name: "tandem memory under 50 MB idle (RSS)",
        measured: memory.map_or_else(|| "n/a".to_owned(), |m| format!("{:.1} MB", m.idle_mb)),
        pass: memory.map(|m| m.idle_mb < 50.0),
    };
    vec![latency_goal, ttft_goal, single_goal, memory_goal]
}

/// Which round of the TTFT scenario a figure comes from, when there was more than one or it was not quiet.
fn round_note(rounds: &[Round]) -> String {
    let Some((n, round)) = rounds.iter().enumerate().find(|(_, r)| r.counted) else {
        return String::new();
    };
    let steal = round
        .steal
        .map_or_else(|| "steal unknown".to_owned(), |s| format!("{s:.1}% steal"));
    if !quiet(round.steal) {
        format!(
            " (round {} of {}, {steal}: no round was quiet)",
            n + 1,
            rounds.len()
        )
    } else if rounds.len() > 1 {
        format!(" (round {} of {}, {steal})", n + 1, rounds.len())
    } else {
        String::new()
    }
}

/// One line per round of the TTFT scenario, for the machine section.
fn rounds_line(rounds: &[Round]) -> String {
    rounds
        .iter()
        .enumerate()
        .map(|(n, r)| {
            format!(
                "round {}: {} steal, added TTFT p99 {}, {}",
                n + 1,
                r.steal
                    .map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}%")),
                r.added_p99_ms
                    .map_or_else(|| "n/a".to_owned(), |t| format!("{} ms", signed(t))),
                if r.counted { "counted" } else { "set aside" }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The Markdown report.
pub(crate) fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let date = results.machine.as_ref().map_or("", |m| m.date_utc.as_str());
    let _ = writeln!(
        out,
        "# Gateway benchmark: direct vs tandem vs LiteLLM ({date})\n"
    );
    let _ = writeln!(
        out,
        "One run on loopback: a scripted upstream (`tandem testkit`) reached directly, through `tandem serve`, and through the LiteLLM proxy.\n\
         \"Added\" is a gateway's percentile minus the same percentile measured directly in the same run.\n\
         See `bench/README.md` for the method.\n"
    );
    if results.settings.quick {
        let _ = writeln!(
            out,
            "> **Quick smoke run** (`--quick`): small sample counts; the numbers are indicative only.\n"
        );
    }
    if results.machine.as_ref().is_some_and(|m| m.build == "debug") {
        let _ = writeln!(
            out,
            "> **Debug build**: these numbers are not meaningful.\n"
        );
    }

    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| Target | Measured | Result |\n|---|---|---|");
    for goal in &results.goals {
        let verdict = match goal.pass {
            Some(true) => "PASS",
            Some(false) => "**FAIL**",
            None => "n/a",
        };
        let _ = writeln!(out, "| {} | {} | {verdict} |", goal.name, goal.measured);
    }

    let _ = writeln!(out, "\n## Results\n");
    let _ = writeln!(
        out,
        "\"tandem advantage\" is LiteLLM ÷ tandem for added time and memory, tandem ÷ LiteLLM for throughput: higher is better for tandem.\n"
    );
    let _ = writeln!(
        out,
        "| Metric | direct | tandem | LiteLLM | tandem advantage |\n|---|---:|---:|---:|---:|"
    );
    let s = &results.settings;
    let mut table = Table {
        out: &mut out,
        has_litellm: results.targets.contains(&Kind::Litellm),
    };

    let turns = match s.block {
        1 => "targets interleaved request by request".to_owned(),
        n => format!(
            "direct and tandem alternating in turns of {n} each{}; 2 unrecorded per turn",
            if table.has_litellm {
                ", LiteLLM in turns of its own"
            } else {
                ""
            }
        ),
    };
    table.section(&format!(
        "Non-streamed: {} sequential requests per target ({}-token answer; {turns})",
        s.requests, s.answer_tokens
    ));
    sequential_rows(&mut table, &results.latency, "latency", None);
    cpu_row(
        &mut table,
        &results.cpu,
        "gateway CPU per request (µs)",
        |c| c.us_per_request,
    );
    let ttft_turns = match s.block {
        1 => "direct and tandem interleaved request by request".to_owned(),
        n => format!("direct and tandem alternating in turns of {n} each; 2 unrecorded per turn"),
    };
    let litellm_pass = if table.has_litellm {
        "; LiteLLM in a pass of its own, in turns against direct"
    } else {
        ""
    };
    table.section(&format!(
        "Streamed: {} sequential streams per target ({} tokens; {ttft_turns}, in rounds{litellm_pass}), time to first token (TTFT)",
        s.streams, s.answer_tokens
    ));
    sequential_rows(
        &mut table,
        &results.ttft,
        "TTFT",
        results.ttft_litellm_direct.as_ref(),
    );
    if let Some(direct) = results
        .ttft_litellm_direct
        .as_ref()
        .filter(|d| d.ms.count > 0)
    {
        table.row(
            "direct's TTFT p50 / p99 in LiteLLM's pass (ms)",
            Some(format!("{} / {}", ms(direct.ms.p50), ms(direct.ms.p99))),
            None,
            None,
            None,
        );
    }
    cpu_row(
        &mut table,
        &results.cpu,
        "gateway CPU per stream (µs)",
        |c| c.us_per_stream,
    );

    table.section("One stream at full speed");
    let single = &results.single;
    table.row(
        "tokens received / requested",
        single.direct.as_ref().map(|x| {
            format!(
                "{} / {}",
                int(x.received as f64),
                int(f64::from(x.requested))
            )
        }),
        single.tandem.as_ref().map(|x| {
            format!(
                "{} / {}",
                int(x.received as f64),
                int(f64::from(x.requested))
            )
        }),
        single.litellm.as_ref().map(|x| {
            format!(
                "{} / {}",
                int(x.received as f64),
                int(f64::from(x.requested))
            )
        }),
        None,
    );
    let tps = |x: &Single| x.tokens_per_sec;
    table.row(
        "tokens/s",
        single.direct.as_ref().map(|x| int(tps(x))),
        single.tandem.as_ref().map(|x| int(tps(x))),
        single.litellm.as_ref().map(|x| int(tps(x))),
        throughput_ratio(
            single.tandem.as_ref().map(tps),
            single.litellm.as_ref().map(tps),
        ),
    );
    table.row(
        "stream duration (s)",
        single.direct.as_ref().map(|x| format!("{:.3}", x.seconds)),
        single.tandem.as_ref().map(|x| format!("{:.3}", x.seconds)),
        single.litellm.as_ref().map(|x| format!("{:.3}", x.seconds)),
        None,
    );

    cpu_row(
        &mut table,
        &results.cpu,
        "gateway CPU per token (µs)",
        |c| c.us_per_token_single,
    );

    let rate = if s.concurrent_rate > 0.0 {
        format!("{} tokens/s each", s.concurrent_rate)
    } else {
        "full speed".to_owned()
    };
    table.section(&format!(
        "Concurrent: {} streams × {} tokens at once ({rate})",
        s.concurrency, s.concurrent_tokens
    ));
    let conc = &results.concurrent;
    let okerr = |x: &Concurrent| format!("{} / {} / {}", x.ok, x.errors, x.unfinished);
    table.row(
        "streams ok / failed / unfinished at the deadline",
        conc.direct.as_ref().map(okerr),
        conc.tandem.as_ref().map(okerr),
        conc.litellm.as_ref().map(okerr),
        None,
    );
    table.row(
        "wall time (s)",
        conc.direct.as_ref().map(|x| format!("{:.3}", x.wall_s)),
        conc.tandem.as_ref().map(|x| format!("{:.3}", x.wall_s)),
        conc.litellm.as_ref().map(|x| format!("{:.3}", x.wall_s)),
        None,
    );
    let agg = |x: &Concurrent| x.tokens_per_sec;
    table.row(
        "aggregate tokens/s",
        conc.direct.as_ref().map(|x| int(agg(x))),
        conc.tandem.as_ref().map(|x| int(agg(x))),
        conc.litellm.as_ref().map(|x| int(agg(x))),
        throughput_ratio(
            conc.tandem.as_ref().map(agg),
            conc.litellm.as_ref().map(agg),
        ),
    );
    for (label, pick) in [
        ("TTFT p50 under load (ms)", p50 as fn(&Summary) -> f64),
        ("TTFT p99 under load (ms)", p99),
    ] {
        let cell = |x: &Concurrent| {
            let n = x.ttft_ms.count;
            let value = ms(pick(&x.ttft_ms));
            match n {
                0 => None,
                n if n < x.streams as usize => Some(format!("{value} (of {n} started)")),
                _ => Some(value),
            }
        };
        table.row(
            label,
            conc.direct.as_ref().and_then(cell),
            conc.tandem.as_ref().and_then(cell),
            conc.litellm.as_ref().and_then(cell),
            None,
        );
    }

    cpu_row(
        &mut table,
        &results.cpu,
        "gateway CPU per token (µs)",
        |c| c.us_per_token_concurrent,
    );

    table.section("Gateway process memory (RSS; LiteLLM summed over its processes)");
    let mem = &results.memory;
    type Pick = fn(&GatewayMemory) -> f64;
    let rows: [(&str, Pick); 3] = [
        ("idle after startup (MB)", |m| m.idle_mb),
        ("peak during the run (MB)", |m| m.peak_mb),
        ("after the load (MB)", |m| m.after_load_mb),
    ];
    for (label, pick) in rows {
        let t = mem.tandem.as_ref().map(pick);
        let l = mem.litellm.as_ref().map(pick);
        table.row(
            label,
            None,
            t.map(|v| format!("{v:.1}")),
            l.map(|v| format!("{v:.1}")),
            match (t, l) {
                (Some(t), Some(l)) if t > 0.0 => Some(format!("{:.1}×", l / t)),
                _ => None,
            },
        );
    }
    table.row(
        "processes",
        None,
        mem.tandem.as_ref().map(|m| m.processes.to_string()),
        mem.litellm.as_ref().map(|m| m.processes.to_string()),
        None,
    );
    table.row(
        "startup until ready (s)",
        None,
        mem.tandem.as_ref().map(|m| format!("{:.2}", m.startup_s)),
        mem.litellm.as_ref().map(|m| format!("{:.2}", m.startup_s)),
        None,
    );

    problems(&mut out, results);
    machine(&mut out, results);
    out
}

/// The rows of a sequential scenario; LiteLLM's added time is measured against `litellm_direct` when direct ran
/// in a pass of its own with LiteLLM.
fn sequential_rows(
    table: &mut Table<'_>,
    per: &PerTarget<Sequential>,
    what: &str,
    litellm_direct: Option<&Sequential>,
) {
    for (name, pick) in [
        ("p50", p50 as fn(&Summary) -> f64),
        ("p90", p90),
        ("p99", p99),
    ] {
        let cell = |x: &Sequential| (x.ms.count > 0).then(|| ms(pick(&x.ms)));
        table.row(
            &format!("{what} {name} (ms)"),
            per.direct.as_ref().and_then(cell),
            per.tandem.as_ref().and_then(cell),
            per.litellm.as_ref().and_then(cell),
            None,
        );
    }
    for (name, pick) in [("p50", p50 as fn(&Summary) -> f64), ("p99", p99)] {
        let t = added(per, Kind::Tandem, pick);
        let l = added_to(
            litellm_direct.or(per.direct.as_ref()),
            per.litellm.as_ref(),
            pick,
        );
        table.row(
            &format!("**added {what} {name} (ms)**"),
            Some("—".to_owned()),
            t.map(signed),
            l.map(signed),
            overhead_ratio(t, l).map(Ratio::text),
        );
    }
    if let Some(totals) = per.direct.as_ref().and_then(|d| d.total_ms) {
        let cell = |x: &Sequential| x.total_ms.filter(|t| t.count > 0).map(|t| ms(t.p50));
        table.row(
            "whole stream p50 (ms)",
            (totals.count > 0).then(|| ms(totals.p50)),
            per.tandem.as_ref().and_then(cell),
            per.litellm.as_ref().and_then(cell),
            None,
        );
    }
    let okerr = |x: &Sequential| {
        let mut text = format!("{} / {}", x.ok, x.errors);
        if x.timed_out {
            text.push_str(" (timed out)");
        }
        text
    };
    table.row(
        "ok / errors",
        per.direct.as_ref().map(okerr),
        per.tandem.as_ref().map(okerr),
        per.litellm.as_ref().map(okerr),
        None,
    );
}

fn cpu_row(
    table: &mut Table<'_>,
    cpu: &PerTarget<CpuCost>,
    label: &str,
    pick: fn(&CpuCost) -> Option<f64>,
) {
    let t = cpu.tandem.as_ref().and_then(pick);
    let l = cpu.litellm.as_ref().and_then(pick);
    let ratio = match (t, l) {
        (Some(t), Some(l)) if t > 0.0 => Some(format!("{:.1}×", l / t)),
        _ => None,
    };
    let fmt = |v: f64| if v < 10.0 { format!("{v:.2}") } else { int(v) };
    table.row(label, None, t.map(fmt), l.map(fmt), ratio);
}

fn throughput_ratio(tandem: Option<f64>, litellm: Option<f64>) -> Option<String> {
    match (tandem, litellm) {
        (Some(t), Some(l)) if l > 0.0 => Some(format!("{:.1}×", t / l)),
        _ => None,
    }
}

struct Table<'a> {
    out: &'a mut String,
    has_litellm: bool,
}

impl Table<'_> {
    fn section(&mut self, title: &str) {
        let _ = writeln!(self.out, "| **{title}** | | | | |");
    }

    fn row(
        &mut self,
        label: &str,
        direct: Option<String>,
        tandem: Option<String>,
        litellm: Option<String>,
        ratio: Option<String>,
    ) {
        let na = |v: Option<String>| v.unwrap_or_else(|| "n/a".to_owned());
        let litellm = if self.has_litellm {
            na(litellm)
        } else {
            "n/a".to_owned()
        };
        let _ = writeln!(
            self.out,
            "| {label} | {} | {} | {litellm} | {} |",
            direct.unwrap_or_else(|| "—".to_owned()),
            na(tandem),
            ratio.unwrap_or_default()
        );
    }
}

fn problems(out: &mut String, results: &Results) {
    let mut lines = Vec::new();
    for kind in [Kind::Direct, Kind::Tandem, Kind::Litellm] {
        let label = kind.label();
        if let Some(e) = results
            .latency
            .get(kind)
            .and_then(|x| x.first_error.as_ref())
        {
            lines.push(format!("{label}, non-streamed: {e}"));
        }
        if let Some(e) = results.ttft.get(kind).and_then(|x| x.first_error.as_ref()) {
            lines.push(format!("{label}, TTFT streams: {e}"));
        }
        if let Some(e) = results.single.get(kind).and_then(|x| x.error.as_ref()) {
            lines.push(format!("{label}, one stream: {e}"));
        }
        if let Some(x) = results.concurrent.get(kind)
            && let Some(e) = &x.first_error
        {
            lines.push(format!(
                "{label}, concurrent: {} failed, {} unfinished at the deadline; first: {e}",
                x.errors, x.unfinished
            ));
        }
    }
    for (scenario, steal) in [
        ("non-streamed", results.steal.latency),
        ("TTFT", results.steal.ttft),
    ] {
        if let Some(steal) = steal.filter(|s| *s >= NOISY_STEAL) {
            lines.push(format!(
                "the hypervisor stole {steal:.1}% of the CPU time during the {scenario} scenario: its tail percentiles \
                 measure the host's other guests as much as the gateways; rerun on a quieter machine"
            ));
        }
    }
    if !results.tandem_alive {
        lines.push("tandem was no longer running at the end of the run".to_owned());
    }
    if results.litellm_alive == Some(false) {
        lines.push("LiteLLM was no longer running at the end of the run".to_owned());
    }
    for line in &results.tandem_log {
        lines.push(format!("tandem log: `{}`", line.replace('`', "'")));
    }
    if lines.is_empty() {
        let _ = writeln!(
            out,
            "\nNo errors: every answer had exactly the requested tokens, and tandem logged no warnings."
        );
        return;
    }
    let _ = writeln!(out, "\n## Errors and warnings\n");
    for line in lines {
        let _ = writeln!(out, "- {}", line.replace('\n', " "));
    }
}

fn machine(out: &mut String, results: &Results) {
    let _ = writeln!(out, "\n## Machine and command\n");
    if let Some(m) = &results.machine {
        let _ = writeln!(out, "- Date: {} {} UTC", m.date_utc, m.time_utc);
        let _ = writeln!(
            out,
            "- CPU: {} × {} ({:.1} GiB memory), Linux {}",
            m.nproc, m.cpu_model, m.mem_total_gib, m.kernel
        );
        let _ = writeln!(
            out,
            "- Load average (1/5/15 min) at start: {}; at end: {}",
            m.loadavg_start, m.loadavg_end
        );
        let pct = |p: Option<f64>| p.map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1}%"));
        let _ = writeln!(
            out,
            "- CPU time stolen by the hypervisor for other guests: {} of the run; {} during the non-streamed scenario, {} during the TTFT scenario",
            pct(results.steal.run),
            pct(results.steal.latency),
            pct(results.steal.ttft)
        );
        if results.ttft_rounds.len() > 1 {
            let _ = writeln!(
                out,
                "- TTFT rounds of direct and tandem (a round during which the hypervisor stole more than {QUIET_STEAL}% of \
                 the CPU time is set aside and the two run again, at most {} rounds): {}",
                results.settings.ttft_rounds,
                rounds_line(&results.ttft_rounds)
            );
        }
        let commit = m.git_commit.as_deref().unwrap_or("unknown");
        let dirty = if m.git_dirty {
            " (uncommitted changes)"
        } else {
            ""
        };
        let _ = writeln!(out, "- tandem: {} build, git {commit}{dirty}", m.build);
    }
    let litellm = match (&results.litellm_version, &results.litellm_note) {
        (_, Some(note)) => format!("n/a: {note}"),
        (Some(version), None) => format!(
            "{version}, {} worker(s), no database, callbacks off, cooldowns off, retries 0",
            results.settings.litellm_workers
        ),
        (None, None) => "version unknown".to_owned(),
    };
    let _ = writeln!(out, "- LiteLLM: {litellm}");
    let _ = writeln!(
        out,
        "- Load generator, testkit upstream, tandem and LiteLLM are separate processes sharing these CPUs."
    );
    if let Some(m) = &results.machine {
        let _ = writeln!(out, "- Command: `{}`", m.command);
    }
}

/// Milliseconds with precision that suits their size.
pub(crate) fn ms(v: f64) -> String {
    if v.abs() < 10.0 {
        format!("{v:.3}")
    } else if v.abs() < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// An added time, always with its sign.
pub(crate) fn signed(v: f64) -> String {
    let text = ms(v.abs());
    if v < 0.0 {
        format!("−{text}")
    } else {
        format!("+{text}")
    }
}

/// A rounded number with thousands separators.
pub(crate) fn int(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
