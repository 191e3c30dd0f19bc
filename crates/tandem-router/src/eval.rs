//! Offline evaluation of a router on labelled traces, the RouteLLM way: no model is called.
//!
//! A trace is JSON lines, one labelled task per line:
//! `{"id": "...", "class": "rename", "request": {<client request body>}, "session": {<SessionFacts>},
//! "outcomes": {"live": {"success": true, "cost_usd": 0.0004, "latency_ms": 900}, "deep": {...}}}`.
//! `request` is a Chat Completions body (Responses and Messages bodies are accepted too), `session` is
//! optional. `outcomes` holds what each tier did on the task; a decision for any tier other than the
//! router's live tier counts as `deep`.
//!
//! Metrics (RouteLLM, arXiv 2406.18665, `evals/evaluate.py`):
//! - *quality*: success rate; *deep share*: share of tasks sent to deep.
//! - *sweep*: sort tasks by a score, highest first, and send the top k to deep for every k. Tasks with
//!   equal scores move together, so the quality-vs-deep-share curve has a point at every boundary between
//!   groups of equal scores and is linear in between (the expected curve under random tie-breaking).
//! - *APGR*: `(AUC - q_live) / (q_deep - q_live)`, the area under that curve over deep share `[0, 1]`
//!   (trapezoids) normalised so always-live is 0 and always-deep is 1 (random ≈ 0.5, oracle can exceed 1).
//! - *CPT(x)*: the smallest deep share at which the curve reaches `q_live + x (q_deep - q_live)`.
//! - APGR and CPT are undefined (`None`) when deep is not better than live on the trace.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tandem_protocol::ChatRequest;

use crate::{Error, Features, Result, Router, SessionFacts, TaskClass, extract};

#[cfg(test)]
mod tests;

/// Seed [`eval_file`] uses for the random baseline.
pub const DEFAULT_SEED: u64 = 1;

/// Number of seeds the random baseline averages over.
pub const RANDOM_SEEDS: u64 = 20;

/// What one tier did on one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The task was solved.
    pub success: bool,
    /// What the attempt cost.
    pub cost_usd: f64,
    /// How long it took.
    pub latency_ms: f64,
}

/// Both tiers' outcomes on one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    /// The fast tier.
    pub live: Outcome,
    /// The slow tier.
    pub deep: Outcome,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceLine {
    id: String,
    class: TaskClass,
    request: Value,
    #[serde(default)]
    session: SessionFacts,
    outcomes: Outcomes,
}

/// One labelled task.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEntry {
    /// Unique id.
    pub id: String,
    /// The labelled task class.
    pub class: TaskClass,
    /// The request, decoded.
    pub request: ChatRequest,
    /// Session facts at the time of the request.
    pub session: SessionFacts,
    /// What each tier did.
    pub outcomes: Outcomes,
}

impl TraceEntry {
    /// The router's features for this task.
    pub fn features(&self) -> Features {
        extract(&self.request, &self.session)
    }

    /// RouteLLM's training label: deep succeeds where live fails.
    pub fn deep_needed(&self) -> bool {
        self.outcomes.deep.success && !self.outcomes.live.success
    }

    /// The cascade's label: the live tier did not solve the task. This is what a gateway observes in
    /// production (a fast-tier answer failed its verifier), without running both tiers.
    pub fn live_failed(&self) -> bool {
        !self.outcomes.live.success
    }
}

/// Decode a client request body in any format Tandem serves: Chat Completions, then Responses, then
/// Anthropic Messages.
pub fn decode_any(body: &[u8]) -> Result<ChatRequest> {
    use tandem_translate::{anthropic, openai_chat, openai_responses};
    let chat = match openai_chat::decode_request(body) {
        Ok(req) => return Ok(req),
        Err(e) => e,
    };
    let responses = match openai_responses::decode_request(body) {
        Ok(req) => return Ok(req),
        Err(e) => e,
    };
    match anthropic::decode_request(body) {
        Ok(req) => Ok(req),
        Err(messages) => Err(Error::Body(format!(
            "as Chat Completions: {chat}; as Responses: {responses}; as Messages: {messages}"
        ))),
    }
}

/// Parse a JSON-lines trace; blank lines are skipped, ids must be unique.
pub fn parse_trace(text: &str) -> Result<Vec<TraceEntry>> {
    let mut entries = Vec::new();
    let mut ids = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| Error::Trace {
            line: line_no,
            message,
        };
        let raw: TraceLine = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        let body = serde_json::to_vec(&raw.request).map_err(|e| err(e.to_string()))?;
        let request = decode_any(&body).map_err(|e| err(format!("request: {e}")))?;
        for (tier, o) in [("live", &raw.outcomes.live), ("deep", &raw.outcomes.deep)] {
            let valid = |v: f64| v.is_finite() && v >= 0.0;
            if !valid(o.cost_usd) || !valid(o.latency_ms) {
                return Err(err(format!(
                    "outcomes.{tier}: cost and latency must be finite and non-negative"
                )));
            }
        }
        if !ids.insert(raw.id.clone()) {
            return Err(err(format!("duplicate id `{}`", raw.id)));
        }
        entries.push(TraceEntry {
            id: raw.id,
            class: raw.class,
            request,
            session: raw.session,
            outcomes: raw.outcomes,
        });
    }
    Ok(entries)
}

/// One policy's results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyResult {
    /// Policy name.
    pub name: String,
    /// How its operating point was chosen.
    pub point: String,
    /// Share of tasks sent to deep at the operating point.
    pub deep_share: f64,
    /// Success rate at the operating point.
    pub quality: f64,
    /// Total cost at the operating point.
    pub cost_usd: f64,
    /// Cost per task.
    pub cost_per_task_usd: f64,
    /// Mean latency per task.
    pub mean_latency_ms: f64,
    /// Area under the sweep curve, normalised; `None` for fixed policies or when deep is no better.
    pub apgr: Option<f64>,
    /// Smallest deep share reaching 50% of the quality gap.
    pub cpt50: Option<f64>,
    /// Smallest deep share reaching 80% of the quality gap.
    pub cpt80: Option<f64>,
}

/// Per-class view of the trace and the router.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassRow {
    /// The labelled class.
    pub class: TaskClass,
    /// Tasks of this class.
    pub tasks: usize,
    /// Live success rate.
    pub live_quality: f64,
    /// Deep success rate.
    pub deep_quality: f64,
    /// Share the router sent to deep.
    pub router_deep_share: f64,
    /// Router quality on this class.
    pub router_quality: f64,
    /// Share whose extracted task class equals the label.
    pub class_agreement: f64,
}

/// The evaluation of one router on one trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Tasks in the trace.
    pub tasks: usize,
    /// Seed of the random baseline.
    pub seed: u64,
    /// Share of tasks whose extracted task class equals the label.
    pub class_agreement: f64,
    /// Policies, fixed ones first.
    pub policies: Vec<PolicyResult>,
    /// Per labelled class.
    pub classes: Vec<ClassRow>,
}

impl Report {
    /// The policy with this name.
    pub fn policy(&self, name: &str) -> Option<&PolicyResult> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// A Markdown rendering: the policy table, then the per-class table.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_markdown(&mut out);
        out
    }

    fn write_markdown(&self, out: &mut String) -> std::fmt::Result {
        let opt = |v: Option<f64>, pct: bool| match v {
            Some(v) if pct => format!("{:.1}%", v * 100.0),
            Some(v) => format!("{v:.3}"),
            None => "-".to_owned(),
        };
        writeln!(
            out,
            "{} tasks; extracted task class agrees with the label on {:.1}%; random baseline: mean of {RANDOM_SEEDS} seeds from seed {}.",
            self.tasks,
            self.class_agreement * 100.0,
            self.seed
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "| policy | operating point | deep share | quality | cost | cost/task | mean latency | APGR | CPT(50%) | CPT(80%) |"
        )?;
        writeln!(
            out,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for p in &self.policies {
            writeln!(
                out,
                "| {} | {} | {:.1}% | {:.3} | ${:.4} | ${:.5} | {:.0} ms | {} | {} | {} |",
                p.name,
                p.point,
                p.deep_share * 100.0,
                p.quality,
                p.cost_usd,
                p.cost_per_task_usd,
                p.mean_latency_ms,
                opt(p.apgr, false),
                opt(p.cpt50, true),
                opt(p.cpt80, true),
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "| class | tasks | live quality | deep quality | router deep share | router quality | class agreement |"
        )?;
        writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")?;
        for c in &self.classes {
            writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | {:.1}% | {:.3} | {:.1}% |",
                c.class,
                c.tasks,
                c.live_quality,
                c.deep_quality,
                c.router_deep_share * 100.0,
                c.router_quality,
                c.class_agreement * 100.0
            )?;
        }
        Ok(())
    }
}

/// SplitMix64: a tiny deterministic generator for the random baseline (seeded by the caller).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "53-bit mantissa by construction"
        )]
        let v = (self.next_u64() >> 11) as f64;
        v / (1u64 << 53) as f64
    }
}

/// A point of the sweep curve: (tasks sent to deep, tasks solved).
type Point = (usize, i64);

/// The quality-vs-deep-count curve for `scores` (higher = deep first), one point per tie-group boundary.
fn sweep(trace: &[TraceEntry], scores: &[f64]) -> Vec<Point> {
    let mut order: Vec<usize> = (0..trace.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut solved: i64 = trace
        .iter()
        .map(|e| i64::from(e.outcomes.live.success))
        .sum();
    let mut points = vec![(0, solved)];
    for (k, &i) in order.iter().enumerate() {
        let o = &trace[i].outcomes;
        solved += i64::from(o.deep.success) - i64::from(o.live.success);
        let group_ends = order
            .get(k + 1)
            .is_none_or(|&next| scores[next].total_cmp(&scores[i]).is_ne());
        if group_ends {
            points.push((k + 1, solved));
        }
    }
    points
}

/// APGR and CPT(50%), CPT(80%) of a sweep curve.
fn curve_metrics(points: &[Point], n: usize) -> (Option<f64>, Option<f64>, Option<f64>) {
    let (Some(&(_, live)), Some(&(_, deep))) = (points.first(), points.last()) else {
        return (None, None, None);
    };
    if deep <= live || n == 0 {
        return (None, None, None);
    }
    #[expect(clippy::cast_precision_loss, reason = "trace sizes far below 2^52")]
    let (nf, live, gap) = (n as f64, live as f64, (deep - live) as f64);
    // Area in (tasks × solved) units, then normalised by n² (share × quality).
    let mut area = 0.0;
    for pair in points.windows(2) {
        let [(k0, s0), (k1, s1)] = [pair[0], pair[1]];
        #[expect(clippy::cast_precision_loss, reason = "trace sizes far below 2^52")]
        let (dk, sum) = ((k1 - k0) as f64, (s0 + s1) as f64);
        area += dk * sum / 2.0;
    }
    let auc = area / (nf * nf);
    let apgr = (auc - live / nf) / (gap / nf);
    let cpt = |x: f64| {
        let target = live + x * gap;
        for pair in points.windows(2) {
            let [(k0, s0), (k1, s1)] = [pair[0], pair[1]];
            #[expect(clippy::cast_precision_loss, reason = "trace sizes far below 2^52")]
            let (k0, s0, k1, s1) = (k0 as f64, s0 as f64, k1 as f64, s1 as f64);
            if s0 >= target - 1e-9 {
                return Some(k0 / nf);
            }
            if s1 >= target - 1e-9 {
                return Some((k0 + (target - s0) / (s1 - s0) * (k1 - k0)) / nf);
            }
        }
        points.last().map(|&(k, _)| {
            #[expect(clippy::cast_precision_loss, reason = "trace sizes far below 2^52")]
            let k = k as f64;
            k / nf
        })
    };
    (Some(apgr), cpt(0.5), cpt(0.8))
}

/// Point metrics of a deep mask: (deep share, quality, total cost, mean latency).
fn point(trace: &[TraceEntry], deep: &[bool]) -> (f64, f64, f64, f64) {
    let mut solved = 0u32;
    let mut deep_count = 0u32;
    let mut cost = 0.0;
    let mut latency = 0.0;
    for (e, &d) in trace.iter().zip(deep) {
        let o = if d {
            &e.outcomes.deep
        } else {
            &e.outcomes.live
        };
        solved += u32::from(o.success);
        deep_count += u32::from(d);
        cost += o.cost_usd;
        latency += o.latency_ms;
    }
    #[expect(clippy::cast_precision_loss, reason = "trace sizes far below 2^52")]
    let n = trace.len().max(1) as f64;
    (
        f64::from(deep_count) / n,
        f64::from(solved) / n,
        cost,
        latency / n,
    )
}

fn result(
    name: &str,
    point_desc: &str,
    trace: &[TraceEntry],
    deep: &[bool],
    curve: Option<(Option<f64>, Option<f64>, Option<f64>)>,
) -> PolicyResult {
    let (deep_share, quality, cost, latency) = point(trace, deep);
    let (apgr, cpt50, cpt80) = curve.unwrap_or((None, None, None));
    #[expect(clippy::cast_precision_loss, reason = "trace sizes far below 2^52")]
    let n = trace.len().max(1) as f64;
    PolicyResult {
        name: name.to_owned(),
        point: point_desc.to_owned(),
        deep_share,
        quality,
        cost_usd: cost,
        cost_per_task_usd: cost / n,
        mean_latency_ms: latency,
        apgr,
        cpt50,
        cpt80,
    }
}

/// The top `k` by score (ties by index, as in [`sweep`]).
fn top_k(scores: &[f64], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut deep = vec![false; scores.len()];
    for &i in order.iter().take(k) {
        deep[i] = true;
    }
    deep
}

/// Per-class mean gain (deep solved − live solved) learned on the other half (by index parity).
fn class_prior_scores(trace: &[TraceEntry], features: &[Features]) -> Vec<f64> {
    let mut out = vec![0.0; trace.len()];
    for fold in 0..2 {
        let mut sum = [0i64; 8];
        let mut count = [0i64; 8];
        for (i, (e, f)) in trace.iter().zip(features).enumerate() {
            if i % 2 != fold {
                let c = f.task_class.index();
                sum[c] += i64::from(e.outcomes.deep.success) - i64::from(e.outcomes.live.success);
                count[c] += 1;
            }
        }
        for (i, f) in features.iter().enumerate() {
            if i % 2 == fold {
                let c = f.task_class.index();
                #[expect(clippy::cast_precision_loss, reason = "trace sizes far below 2^52")]
                let mean = if count[c] == 0 {
                    0.0
                } else {
                    sum[c] as f64 / count[c] as f64
                };
                out[i] = mean;
            }
        }
    }
    out
}

/// Evaluate `router` on `trace` against the baselines: always-live, always-deep, random (mean of
/// [`RANDOM_SEEDS`] seeds derived from `seed`, 50% deep), prompt length, a 2-fold task-class prior, the
/// router's scorer alone, the router itself, and the oracle.
pub fn evaluate(trace: &[TraceEntry], router: &Router, seed: u64) -> Report {
    let n = trace.len();
    let features: Vec<Features> = trace.iter().map(TraceEntry::features).collect();
    let decisions: Vec<_> = features.iter().map(|f| router.route(f)).collect();
    let routed: Vec<bool> = decisions
        .iter()
        .map(|d| d.tier != router.live_tier())
        .collect();
    let router_k = routed.iter().filter(|d| **d).count();
    let at_router_share = format!("top {router_k} (router's share)");
    let mut policies = Vec::new();

    policies.push(result(
        "always-live",
        "all live",
        trace,
        &vec![false; n],
        None,
    ));
    policies.push(result(
        "always-deep",
        "all deep",
        trace,
        &vec![true; n],
        None,
    ));

    // Random: mean over seeds of both the 50% point and the sweep metrics.
    let mut rng = SplitMix64::new(seed);
    let mut acc = [0.0f64; 7];
    let mut defined = [0u32; 3];
    for _ in 0..RANDOM_SEEDS {
        let scores: Vec<f64> = (0..n).map(|_| rng.next_f64()).collect();
        let (share, quality, cost, latency) = point(trace, &top_k(&scores, n.div_ceil(2)));
        let metrics = curve_metrics(&sweep(trace, &scores), n);
        for (slot, v) in [share, quality, cost, latency].into_iter().enumerate() {
            acc[slot] += v;
        }
        for (slot, v) in [metrics.0, metrics.1, metrics.2].into_iter().enumerate() {
            if let Some(v) = v {
                acc[4 + slot] += v;
                defined[slot] += 1;
            }
        }
    }
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let (seeds, nf) = (RANDOM_SEEDS as f64, n.max(1) as f64);
    let mean_defined =
        |slot: usize| (defined[slot] > 0).then(|| acc[4 + slot] / f64::from(defined[slot]));
    policies.push(PolicyResult {
        name: "random".to_owned(),
        point: "50% deep".to_owned(),
        deep_share: acc[0] / seeds,
        quality: acc[1] / seeds,
        cost_usd: acc[2] / seeds,
        cost_per_task_usd: acc[2] / seeds / nf,
        mean_latency_ms: acc[3] / seeds,
        apgr: mean_defined(0),
        cpt50: mean_defined(1),
        cpt80: mean_defined(2),
    });

    #[expect(clippy::cast_precision_loss, reason = "token counts far below 2^52")]
    let length: Vec<f64> = features.iter().map(|f| f.prompt_tokens as f64).collect();
    policies.push(result(
        "prompt-length",
        &at_router_share,
        trace,
        &top_k(&length, router_k),
        Some(curve_metrics(&sweep(trace, &length), n)),
    ));

    let prior = class_prior_scores(trace, &features);
    policies.push(result(
        "class-prior (2-fold)",
        &at_router_share,
        trace,
        &top_k(&prior, router_k),
        Some(curve_metrics(&sweep(trace, &prior), n)),
    ));

    let scores: Vec<f64> = decisions.iter().map(|d| d.score).collect();
    let threshold_mask: Vec<bool> = scores.iter().map(|s| *s >= router.threshold()).collect();
    policies.push(result(
        &format!("scorer:{} alone", router.scorer_name()),
        &format!("score >= {:.2}", router.threshold()),
        trace,
        &threshold_mask,
        Some(curve_metrics(&sweep(trace, &scores), n)),
    ));

    let priority: Vec<f64> = decisions.iter().map(|d| d.priority).collect();
    policies.push(result(
        "router",
        "its decisions",
        trace,
        &routed,
        Some(curve_metrics(&sweep(trace, &priority), n)),
    ));

    let gain: Vec<f64> = trace
        .iter()
        .map(|e| f64::from(i8::from(e.outcomes.deep.success) - i8::from(e.outcomes.live.success)))
        .collect();
    let oracle: Vec<bool> = gain.iter().map(|g| *g > 0.0).collect();
    policies.push(result(
        "oracle",
        "deep iff only deep solves",
        trace,
        &oracle,
        Some(curve_metrics(&sweep(trace, &gain), n)),
    ));

    let mut classes = Vec::new();
    for class in TaskClass::ALL {
        let idx: Vec<usize> = (0..n).filter(|&i| trace[i].class == class).collect();
        if idx.is_empty() {
            continue;
        }
        #[expect(clippy::cast_precision_loss, reason = "small counts")]
        let m = idx.len() as f64;
        let count = |pred: &dyn Fn(usize) -> bool| {
            #[expect(clippy::cast_precision_loss, reason = "small counts")]
            let c = idx.iter().filter(|&&i| pred(i)).count() as f64;
            c / m
        };
        classes.push(ClassRow {
            class,
            tasks: idx.len(),
            live_quality: count(&|i| trace[i].outcomes.live.success),
            deep_quality: count(&|i| trace[i].outcomes.deep.success),
            router_deep_share: count(&|i| routed[i]),
            router_quality: count(&|i| {
                if routed[i] {
                    trace[i].outcomes.deep.success
                } else {
                    trace[i].outcomes.live.success
                }
            }),
            class_agreement: count(&|i| features[i].task_class == class),
        });
    }
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let class_agreement = trace
        .iter()
        .zip(&features)
        .filter(|(e, f)| e.class == f.task_class)
        .count() as f64
        / nf;

    Report {
        tasks: n,
        seed,
        class_agreement,
        policies,
        classes,
    }
}

/// Parse a trace and evaluate `router` on it with [`DEFAULT_SEED`].
pub fn eval_file(text: &str, router: &Router) -> Result<Report> {
    let trace = parse_trace(text)?;
    Ok(evaluate(&trace, router, DEFAULT_SEED))
}

/// Decode a request body (Chat Completions, Responses or Messages) and explain how `router` routes it,
/// with no session facts.
pub fn explain_request(body: &[u8], router: &Router) -> Result<String> {
    let request = decode_any(body)?;
    Ok(router.explain(&extract(&request, &SessionFacts::default())))
}
