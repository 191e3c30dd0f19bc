//! The load scenarios: sequential non-streamed latency and streamed TTFT (direct and tandem alternating in
//! turns, LiteLLM in turns of its own), one long stream, and many concurrent streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::{Conn, Endpoint, StreamOutcome, check_completion};
use crate::stats::Summary;

/// Path of every measured request.
pub(crate) const PATH: &str = "/v1/chat/completions";

/// Which way requests reach the test upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Direct,
    Tandem,
    Litellm,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Tandem => "tandem",
            Kind::Litellm => "LiteLLM",
        }
    }
}

/// One way to reach the upstream, and how it spells model names.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) kind: Kind,
    pub(crate) endpoint: Arc<Endpoint>,
    /// The gateway's processes (none for direct).
    pub(crate) gateway: Option<Gateway>,
}

/// The processes of a gateway, whose CPU time tells when it has gone quiet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Gateway {
    /// One process (tandem).
    Process(u32),
    /// A process group (LiteLLM and its workers).
    Group(u32),
}

impl Gateway {
    fn cpu_seconds(self) -> Option<f64> {
        match self {
            Gateway::Process(pid) => crate::procs::cpu_seconds(pid),
            Gateway::Group(pgid) => Some(crate::procs::group_cpu_seconds(pgid)),
        }
    }
}

/// Requests sent at the start of each turn (with `block > 1`) and not recorded.
const TURN_WARMUP: u32 = 2;
/// How long a gateway's CPU time must stand still after its turn before the next target's turn starts.
const QUIET: Duration = Duration::from_millis(60);
/// The longest wait for a gateway to go quiet after its turn.
const SETTLE_LIMIT: Duration = Duration::from_secs(3);

/// Waits until `target`'s gateway has done the work it deferred past its answers (LiteLLM's logging and cost
/// tasks, tandem's batched writes), so that it does not run during the next target's turn: until its CPU time
/// has not moved for [`QUIET`], at most [`SETTLE_LIMIT`].
async fn settle(target: &Target) {
    let Some(gateway) = target.gateway else {
        return;
    };
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut last = gateway.cpu_seconds();
    let mut still_since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = gateway.cpu_seconds();
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= QUIET {
            return;
        }
    }
}

impl Target {
    /// The client model name that makes the testkit answer `upstream` (e.g. `bench?tokens=16`).
    pub(crate) fn model(&self, upstream: &str) -> String {
        match self.kind {
            Kind::Direct => upstream.to_owned(),
            Kind::Tandem => format!("testkit/{upstream}"),
            Kind::Litellm => litellm_alias(upstream),
        }
    }

    /// The request body: identical for every target apart from the model name.
    pub(crate) fn body(&self, upstream: &str, stream: bool) -> Bytes {
        let mut body = json!({
            "model": self.model(upstream),
            "messages": [{"role": "user", "content": "Benchmark: answer with the scripted tokens."}],
        });
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        Bytes::from(body.to_string())
    }
}

/// The LiteLLM `model_name` bound to the upstream model `upstream`.
pub(crate) fn litellm_alias(upstream: &str) -> String {
    upstream.replace(['?', '&', '='], "-")
}

/// The testkit model string for `tokens` tokens at `rate` tokens/s (0 = full speed).
pub(crate) fn upstream_model(tokens: u32, rate: f64) -> String {
    if rate > 0.0 {
        format!("bench?tokens={tokens}&rate={rate}")
    } else {
        format!("bench?tokens={tokens}")
    }
}

/// Settings of a sequential scenario.
#[derive(Debug, Clone)]
pub(crate) struct SequentialPlan {
    pub(crate) count: u32,
    pub(crate) warmup: u32,
    /// Requests in a row to one target before the next target's turn (at least 1).
    pub(crate) block: u32,
    pub(crate) tokens: u32,
    pub(crate) stream: bool,
    /// Total time one target may take before it is dropped from the scenario as timed out.
    pub(crate) budget: Duration,
    pub(crate) request_timeout: Duration,
}

/// Result of a sequential scenario for one target; `ms` is latency or TTFT.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Sequential {
    /// Requests sent, warm-up included.
    pub(crate) sent: u64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) timed_out: bool,
    pub(crate) ms: Summary,
    /// For streams: time to the end of the stream.
    pub(crate) total_ms: Option<Summary>,
}

/// Runs `plan` against all targets in turns of `plan.block` requests ([`turns`]), so that drift in the machine's
/// load hits all targets alike. After its turn, each gateway is given time to finish its deferred work
/// ([`settle`]).
///
/// Turns of blocks rather than single requests: with request-by-request turns each gateway request would follow
/// a LiteLLM request, ~20–50 ms of Python that parks the other gateway's threads and evicts its caches, while
/// direct would always follow tandem's one millisecond. `block = 1` measures that regime.
///
/// Direct and tandem share their turn and alternate request by request: a millisecond apart, a burst of load
/// from outside (another tenant's CPU time, taken from this VM as steal) hits both alike, so their difference
/// is the gateway's own. Each follows the other's sub-millisecond request, so neither pays for the switch.
pub(crate) async fn sequential(targets: &[Target], plan: &SequentialPlan) -> Vec<Sequential> {
    let upstream = upstream_model(plan.tokens, 0.0);
    let bodies: Vec<Bytes> = targets
        .iter()
        .map(|t| t.body(&upstream, plan.stream))
        .collect();
    let mut conns = Vec::with_capacity(targets.len());
    let mut results = vec![Sequential::default(); targets.len()];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut totals: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut spent = vec![Duration::ZERO; targets.len()];
    for (target, result) in targets.iter().zip(&mut results) {
        match Conn::connect(Arc::clone(&target.endpoint)).await {
            Ok(conn) => conns.push(Some(conn)),
            Err(err) => {
                result.errors += 1;
                result.first_error = Some(format!("{err:#}"));
                conns.push(None);
            }
        }
    }
    let requests = plan.warmup + plan.count;
    let block = plan.block.max(1);
    let groups = groups(targets);
    let mut previous = None;
    for Step { group, k, i } in turns(requests, block, &groups) {
        if let Some(last) = previous
            && last != group
        {
            // A new turn: the previous group has had its turn.
            for &other in &groups[last] {
                settle(&targets[other]).await;
            }
        }
        previous = Some(group);
        let measured = i >= plan.warmup;
        let Some(conn) = conns[k].as_mut() else {
            continue;
        };
        if results[k].timed_out {
            continue;
        }
        let started = Instant::now();
        if i % block == 0 && block > 1 {
            // The first requests of a turn pay for the switch (threads parked, caches cooled by the other
            // targets' turns): sent and checked, not recorded.
            for _ in 0..TURN_WARMUP {
                results[k].sent += 1;
                if let Err(err) = one(conn, &bodies[k], plan).await {
                    results[k].first_error.get_or_insert(err);
                }
            }
        }
        let outcome = one(conn, &bodies[k], plan).await;
        spent[k] += started.elapsed();
        let result = &mut results[k];
        result.sent += 1;
        match outcome {
            Ok((ms, total)) if measured => {
                result.ok += 1;
                samples[k].push(ms);
                if let Some(total) = total {
                    totals[k].push(total);
                }
            }
            Ok(_) => {}
            Err(err) => {
                if measured {
                    result.errors += 1;
                }
                result.first_error.get_or_insert(err);
            }
        }
        if spent[k] > plan.budget {
            result.timed_out = true;
        }
    }
    for (k, result) in results.iter_mut().enumerate() {
        result.ms = Summary::of(&mut samples[k]);
        if plan.stream {
            result.total_ms = Some(Summary::of(&mut totals[k]));
        }
    }
    results
}

/// Target `k`'s request number `i`, in a turn of the targets in `groups[group]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    group: usize,
    k: usize,
    i: u32,
}

/// Which targets share a turn: direct and tandem together, LiteLLM alone (see [`sequential`]).
fn groups(targets: &[Target]) -> Vec<Vec<usize>> {
    let (native, python): (Vec<usize>, Vec<usize>) =
        (0..targets.len()).partition(|&k| targets[k].kind != Kind::Litellm);
    std::iter::once(native)
        .filter(|g| !g.is_empty())
        .chain(python.into_iter().map(|k| vec![k]))
        .collect()
}

/// The order of a sequential scenario's requests: `requests` per target, the groups taking turns of `block`
/// requests per target, and the targets of a group alternating request by request within their turn.
fn turns(requests: u32, block: u32, groups: &[Vec<usize>]) -> Vec<Step> {
    let block = block.max(1);
    let mut order = Vec::new();
    for start in (0..requests).step_by(block as usize) {
        for (group, members) in groups.iter().enumerate() {
            for i in start..requests.min(start + block) {
                order.extend(members.iter().map(|&k| Step { group, k, i }));
            }
        }
    }
    order
}

/// One measured request: (latency or TTFT in ms, stream total in ms).
async fn one(
    conn: &mut Conn,
    body: &Bytes,
    plan: &SequentialPlan,
) -> Result<(f64, Option<f64>), String> {
    if plan.stream {
        let Ok(outcome) = tokio::time::timeout(
            plan.request_timeout,
            conn.stream(PATH, body.clone(), None, None),
        )
        .await
        else {
            conn.reset();
            return Err(format!("no answer within {:?}", plan.request_timeout));
        };
        outcome.check(plan.tokens)?;
        let ttft = outcome.ttft.ok_or("no content delta")?;
        Ok((ms(ttft), Some(ms(outcome.total))))
    } else {
        let started = Instant::now();
        let Ok(answer) =
            tokio::time::timeout(plan.request_timeout, conn.exchange(PATH, body.clone())).await
        else {
            conn.reset();
            return Err(format!("no answer within {:?}", plan.request_timeout));
        };
        let elapsed = started.elapsed();
        let (status, body) = answer.map_err(|err| format!("{err:#}"))?;
        check_completion(status, &body, plan.tokens)?;
        Ok((ms(elapsed), None))
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Result of the one-long-stream scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Single {
    pub(crate) requested: u32,
    pub(crate) received: u64,
    pub(crate) seconds: f64,
    pub(crate) tokens_per_sec: f64,
    pub(crate) ttft_ms: Option<f64>,
    pub(crate) error: Option<String>,
}

/// One warm-up stream, then one stream of `tokens` tokens; tokens/s counts from sending the request to the
/// end of the body.
pub(crate) async fn single(target: &Target, tokens: u32, budget: Duration) -> Single {
    let mut result = Single {
        requested: tokens,
        ..Single::default()
    };
    let mut conn = match Conn::connect(Arc::clone(&target.endpoint)).await {
        Ok(conn) => conn,
        Err(err) => {
            result.error = Some(format!("{err:#}"));
            return result;
        }
    };
    let warm = target.body(&upstream_model(16, 0.0), true);
    let _ = tokio::time::timeout(budget, conn.stream(PATH, warm, None, None)).await;
    let body = target.body(&upstream_model(tokens, 0.0), true);
    let deadline = tokio::time::Instant::now() + budget;
    // An unfinished stream reports the pace of what did arrive.
    let outcome = conn.stream(PATH, body, None, Some(deadline)).await;
    result.received = outcome.deltas;
    result.seconds = outcome.total.as_secs_f64();
    result.ttft_ms = outcome.ttft.map(ms);
    if result.seconds > 0.0 {
        result.tokens_per_sec = outcome.deltas as f64 / result.seconds;
    }
    result.error = outcome.check(tokens).err();
    result
}

/// Result of the concurrent-streams scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Concurrent {
    pub(crate) streams: u32,
    pub(crate) tokens_each: u32,
    pub(crate) ok: u64,
    /// Streams that failed: no connection, an error status, a broken or wrong answer.
    pub(crate) errors: u64,
    /// Streams still running at the scenario's deadline (not counted in `errors`).
    pub(crate) unfinished: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) wall_s: f64,
    pub(crate) tokens: u64,
    pub(crate) tokens_per_sec: f64,
    pub(crate) ttft_ms: Summary,
}

/// Settings of the concurrent scenario.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrentPlan {
    pub(crate) streams: u32,
    pub(crate) tokens: u32,
    pub(crate) rate: f64,
    pub(crate) budget: Duration,
}

/// Opens `streams` connections first (not timed), then starts all streams at once and waits for all of them.
pub(crate) async fn concurrent(target: &Target, plan: &ConcurrentPlan) -> Concurrent {
    let mut result = Concurrent {
        streams: plan.streams,
        tokens_each: plan.tokens,
        ..Concurrent::default()
    };
    let connecting = Arc::new(Semaphore::new(64));
    let mut connects = JoinSet::new();
    for _ in 0..plan.streams {
        let endpoint = Arc::clone(&target.endpoint);
        let connecting = Arc::clone(&connecting);
        connects.spawn(async move {
            let _permit = connecting.acquire_owned().await;
            tokio::time::timeout(Duration::from_secs(10), Conn::connect(endpoint)).await
        });
    }
    let mut conns = Vec::with_capacity(plan.streams as usize);
    while let Some(joined) = connects.join_next().await {
        match joined {
            Ok(Ok(Ok(conn))) => conns.push(conn),
            Ok(Ok(Err(err))) => note(&mut result, format!("connect: {err:#}")),
            Ok(Err(_)) => note(&mut result, "connect: timed out".to_owned()),
            Err(err) => note(&mut result, format!("connect task: {err}")),
        }
    }
    let body = target.body(&upstream_model(plan.tokens, plan.rate), true);
    // The gate opens with the deadline of every stream.
    let (go, gate) = watch::channel(None::<tokio::time::Instant>);
    // Content deltas received so far by all streams, finished or not.
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let body = body.clone();
        let mut gate = gate.clone();
        let received = Arc::clone(&received);
        tasks.spawn(async move {
            let deadline = match gate.wait_for(Option::is_some).await {
                Ok(deadline) => *deadline,
                Err(_) => None,
            };
            let outcome = conn.stream(PATH, body, Some(&received), deadline).await;
            (outcome, Instant::now())
        });
    }
    // Let every task reach the gate before opening it.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + plan.budget);
    let _ = go.send(Some(deadline));
    let mut ttfts = Vec::with_capacity(plan.streams as usize);
    let mut last_end = started;
    // The streams stop themselves at the deadline; this is only a safety net.
    let backstop = deadline + Duration::from_secs(10);
    loop {
        let joined = match tokio::time::timeout_at(backstop, tasks.join_next()).await {
            Ok(Some(joined)) => joined,
            Ok(None) => break,
            Err(_) => {
                let left = tasks.len() as u64;
                tasks.abort_all();
                result.unfinished += left;
                last_end = Instant::now();
                break;
            }
        };
        let (outcome, ended): (StreamOutcome, Instant) = match joined {
            Ok(done) => done,
            Err(err) => {
                note(&mut result, format!("stream task: {err}"));
                continue;
            }
        };
        last_end = last_end.max(ended);
        if let Some(ttft) = outcome.ttft {
            ttfts.push(ms(ttft));
        }
        if outcome.unfinished {
            result.unfinished += 1;
            continue;
        }
        match outcome.check(plan.tokens) {
            Ok(()) => result.ok += 1,
            Err(err) => note(&mut result, err),
        }
    }
    if result.unfinished > 0 {
        result.first_error.get_or_insert_with(|| {
            format!(
                "{} streams unfinished after {:?}",
                result.unfinished, plan.budget
            )
        });
    }
    result.tokens = received.load(Ordering::Relaxed);
    let wall = last_end.duration_since(started).as_secs_f64();
    result.wall_s = wall;
    if wall > 0.0 {
        result.tokens_per_sec = result.tokens as f64 / wall;
    }
    result.ttft_ms = Summary::of(&mut ttfts);
    result
}

fn note(result: &mut Concurrent, error: String) {
    result.errors += 1;
    result.first_error.get_or_insert(error);
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, Kind, Step, Target, groups, turns};

    fn steps(order: &[Step]) -> Vec<(usize, u32)> {
        order.iter().map(|s| (s.k, s.i)).collect()
    }

    #[test]
    fn groups_take_turns_in_blocks_and_each_target_gets_every_request_once() {
        // Direct (0) and tandem (1) share a turn, alternating; LiteLLM (2) has its own.
        let order = turns(5, 2, &[vec![0, 1], vec![2]]);
        assert_eq!(
            steps(&order),
            [
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1),
                (2, 0),
                (2, 1),
                (0, 2),
                (1, 2),
                (0, 3),
                (1, 3),
                (2, 2),
                (2, 3),
                (0, 4),
                (1, 4),
                (2, 4),
            ]
        );
        let groups: Vec<usize> = order.iter().map(|s| s.group).collect();
        assert_eq!(groups, [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1]);
        let interleaved = turns(2, 1, &[vec![0], vec![1]]);
        assert_eq!(steps(&interleaved), [(0, 0), (1, 0), (0, 1), (1, 1)]);
        assert_eq!(
            turns(3, 0, &[vec![0]]).len(),
            3,
            "a block of 0 is taken as 1"
        );
    }

    #[test]
    fn direct_and_tandem_share_a_turn_and_litellm_has_its_own() {
        let target = |kind| Target {
            kind,
            endpoint: Endpoint::new(([127, 0, 0, 1], 9).into(), None),
            gateway: None,
        };
        let all = [
            target(Kind::Direct),
            target(Kind::Tandem),
            target(Kind::Litellm),
        ];
        assert_eq!(groups(&all), [vec![0, 1], vec![2]]);
        assert_eq!(groups(&all[..2]), [vec![0, 1]]);
        assert_eq!(groups(&all[2..]), [vec![0]]);
    }
}
