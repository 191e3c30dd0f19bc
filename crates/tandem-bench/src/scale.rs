//! `tandem bench scale`: requests/s, added latency and memory of `tandem serve` with shared storage, as one
//! replica and as several replicas on the same PostgreSQL database and Redis key prefix, measured with `wrk`.
//!
//! One run, three phases on loopback, each a `--warmup` of untimed load and then `--duration` seconds of
//! measured load from `--connections` kept-alive connections, non-streamed Chat Completions with a short
//! answer:
//!
//! 1. **direct**: one `wrk` against the testkit upstream itself, the baseline of "added latency";
//! 2. **one replica**: one `wrk` against one `tandem serve` with API-key auth, a budget and a rate limit (both
//!    far above what the run can spend, so nothing is refused but the Redis scripts run on every request) and
//!    its keys and records in PostgreSQL;
//! 3. **N replicas** (`--replicas`, default 3) on the same database and prefix: one `wrk` per replica, all at
//!    once, with the connections split evenly, as a round-robin load balancer would spread them; requests/s
//!    are summed and the worst replica's percentiles are reported.
//!
//! The replicas are stopped with SIGTERM after their phase, and the database's `requests` table is then
//! counted against what `wrk` saw answered. The database is created fresh for the run (and dropped after it
//! unless `--keep-database`), the Redis prefix is fresh too.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{Conn, Endpoint, check_completion};
use crate::machine::{self, Machine};
use crate::procs::{self, Child};
use crate::report::{int, ms, signed};
use crate::{Report, log_problems, mb, start_upstream};

/// Options of `tandem bench scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// PostgreSQL URL of a role that may create databases; the run creates a fresh database through it.
    #[arg(long, env = "TANDEM_BENCH_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Redis URL; the run uses a fresh key prefix on it.
    #[arg(long, env = "TANDEM_BENCH_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Replicas of the scaled-out phase (at least 2).
    #[arg(long, default_value_t = 3)]
    pub replicas: u32,
    /// Open connections per phase, in all; the scaled-out phase splits them evenly over its replicas.
    #[arg(long, default_value_t = 48)]
    pub connections: u32,
    /// Threads of each `wrk` process.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Seconds of measured load per phase.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of untimed load before each measured one.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Tokens of each answer.
    #[arg(long, default_value_t = 16)]
    pub answer_tokens: u32,
    /// The `wrk` executable.
    #[arg(long, default_value = "wrk")]
    pub wrk: PathBuf,
    /// Keep the run's database instead of dropping it at the end.
    #[arg(long)]
    pub keep_database: bool,
    /// Directory of the Markdown and JSON reports.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
}

/// Token of the replicas' admin API (loopback only).
const ADMIN_TOKEN: &str = "tandem-bench-scale-admin";

/// Far above anything a run can spend: the budget and the rate limit never refuse, but are checked.
const BUDGET_TOKENS: u64 = 1_000_000_000_000;
const LIMIT_RPM: u32 = 1_000_000_000;

/// How long a replica may take to flush its records and exit after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// The prefix of the line that the `wrk` script's `done` prints.
const WRK_MARK: &str = "TANDEM_BENCH_WRK ";

/// The settings of a run.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    replicas: u32,
    connections: u32,
    threads: u32,
    duration_s: u64,
    warmup_s: u64,
    answer_tokens: u32,
    budget_tokens: u64,
    limit_rpm: u32,
}

/// What one `wrk` process reported (from its `done` hook, so percentiles are in whole microseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct WrkRun {
    /// Complete responses, whatever their status.
    requests: u64,
    duration_us: u64,
    bytes: u64,
    connect_errors: u64,
    read_errors: u64,
    write_errors: u64,
    /// Responses with a status of 400 or more (wrk's "Non-2xx or 3xx responses").
    status_errors: u64,
    timeouts: u64,
    mean_us: f64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl WrkRun {
    fn requests_per_sec(&self) -> f64 {
        if self.duration_us == 0 {
            0.0
        } else {
            self.requests as f64 * 1e6 / self.duration_us as f64
        }
    }

    fn socket_errors(&self) -> u64 {
        self.connect_errors + self.read_errors + self.write_errors + self.timeouts
    }
}

/// The measured load of one phase: one `wrk` run, or several at once combined.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
struct Load {
    /// Summed over the `wrk` processes.
    requests: u64,
    requests_per_sec: f64,
    /// The worst (highest) of the processes' percentiles.
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    status_errors: u64,
    socket_errors: u64,
}

/// Combines simultaneous `wrk` runs: requests/s summed, the worst percentile of any.
fn combine(runs: &[WrkRun]) -> Load {
    let worst = |f: fn(&WrkRun) -> u64| runs.iter().map(f).max().unwrap_or(0) as f64 / 1000.0;
    Load {
        requests: runs.iter().map(|r| r.requests).sum(),
        requests_per_sec: runs.iter().map(WrkRun::requests_per_sec).sum(),
        p50_ms: worst(|r| r.p50_us),
        p90_ms: worst(|r| r.p90_us),
        p99_ms: worst(|r| r.p99_us),
        max_ms: worst(|r| r.max_us),
        status_errors: runs.iter().map(|r| r.status_errors).sum(),
        socket_errors: runs.iter().map(WrkRun::socket_errors).sum(),
    }
}

/// One `tandem serve` replica's figures.
#[derive(Debug, Clone, Default, Serialize)]
struct Replica {
    addr: String,
    startup_s: f64,
    /// One second after it answered its health probe, the key made and the probe request answered.
    idle_mb: f64,
    /// Two seconds after the measured load ended.
    after_load_mb: f64,
    /// `VmHWM` after the load.
    peak_mb: f64,
    /// User plus system CPU during the measured load.
    cpu_s: f64,
    /// The measured load against this replica.
    load: Load,
    /// From SIGTERM to its exit.
    stop_s: Option<f64>,
    /// Exited with status 0 after SIGTERM.
    clean_exit: bool,
    exit: String,
    log: Vec<String>,
}

/// The shared database's `requests` rows of one phase against what `wrk` saw answered.
#[derive(Debug, Clone, Default, Serialize)]
struct Records {
    /// Complete responses: the probe requests, the warm-up and the measured load.
    answered: u64,
    rows: u64,
    /// Rows with status 200.
    ok_rows: u64,
    /// Rows by `outcome`.
    by_outcome: BTreeMap<String, u64>,
    /// Entries of the shared audit ledger (`audit_entries`) of kind `request`.
    audit_requests: u64,
    /// Requests `wrk` may have left in flight when its runs ended (connections × runs), recorded by the
    /// replicas but not counted by `wrk`.
    cut_bound: u64,
}

impl Records {
    /// Every answered request is recorded, and no more rows than the cut requests can explain.
    fn consistent(&self) -> bool {
        self.ok_rows >= self.answered && self.rows <= self.answered + self.cut_bound
    }

    /// Every recorded request has its audit entry, and no more.
    fn audited(&self) -> bool {
        self.audit_requests == self.rows
    }
}

/// One phase of the run.
#[derive(Debug, Clone, Serialize)]
struct Phase {
    label: String,
    wrk_processes: u32,
    connections_per_process: Vec<u32>,
    warmup_requests: u64,
    load: Load,
    added_p50_ms: Option<f64>,
    added_p99_ms: Option<f64>,
    /// Replicas' CPU during the measured load per measured request, in µs.
    cpu_us_per_request: Option<f64>,
    replicas: Vec<Replica>,
    records: Option<Records>,
}

/// The check list of the report.
#[derive(Debug, Clone, Serialize)]
struct Check {
    what: String,
    pass: bool,
    detail: String,
}

/// The numbers of one run.
#[derive(Debug, Serialize)]
struct Results {
    machine: Machine,
    settings: Settings,
    wrk_version: String,
    postgres_version: String,
    postgres: String,
    redis: String,
    database: String,
    database_dropped: bool,
    redis_prefix: String,
    phases: Vec<Phase>,
    checks: Vec<Check>,
}

/// Runs the benchmark and writes `scale-<date>.md` and `.json` into `--out`.
pub async fn run(args: Args) -> anyhow::Result<Report> {
    let (Some(postgres_url), Some(redis_url)) = (
        args.postgres_url.clone().filter(|u| !u.is_empty()),
        args.redis_url.clone().filter(|u| !u.is_empty()),
    ) else {
        bail!(
            "tandem bench scale needs PostgreSQL and Redis: pass --postgres-url and --redis-url, or set \
             TANDEM_BENCH_POSTGRES_URL and TANDEM_BENCH_REDIS_URL (the PostgreSQL role must be allowed to create \
             databases); `cargo xtask services` starts private servers and prints their URLs"
        );
    };
    if args.replicas < 2 {
        bail!("--replicas must be at least 2");
    }
    if args.connections < args.replicas {
        bail!(
            "--connections must be at least --replicas ({})",
            args.replicas
        );
    }
    let wrk_version = wrk_version(&args.wrk)?;
    let mut machine = Machine::gather();
    machine.command = machine
        .command
        .replace(&postgres_url, "$TANDEM_BENCH_POSTGRES_URL")
        .replace(&redis_url, "$TANDEM_BENCH_REDIS_URL");
    if machine.build == "debug" {
        tracing::warn!(
            "this is a debug build: numbers are not meaningful; use `cargo build --release -p tandem-cli`"
        );
    }
    let settings = Settings {
        replicas: args.replicas,
        connections: args.connections,
        threads: args.threads.max(1),
        duration_s: args.duration.max(1),
        warmup_s: args.warmup,
        answer_tokens: args.answer_tokens.max(1),
        budget_tokens: BUDGET_TOKENS,
        limit_rpm: LIMIT_RPM,
    };

    let stamp = unique_stamp();
    let database = format!("tandem_bench_{stamp}");
    let redis_prefix = format!("tandem-bench-{stamp}:");
    let admin = pg_connect(&postgres_url)
        .await
        .context("connecting to PostgreSQL (--postgres-url)")?;
    let postgres_version: String = admin
        .query_one("SHOW server_version", &[])
        .await
        .context("asking PostgreSQL for its version")?
        .get(0);
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .with_context(|| format!("creating the database {database}"))?;
    let database_url = database_url(&postgres_url, &database);
    tracing::info!(%database, %redis_prefix, "fresh database and Redis prefix");

    let exe = std::env::current_exe().context("finding the tandem executable")?;
    let temp = tempfile::Builder::new()
        .prefix("tandem-bench-scale-")
        .tempdir()
        .context("creating a temporary directory")?;
    let dir = temp.path();
    let storage = Storage {
        postgres_url: &database_url,
        redis_url: &redis_url,
        redis_prefix: &redis_prefix,
    };
    let measured = run_phases(&args, &settings, &exe, dir, &storage).await;

    let mut database_dropped = false;
    if !args.keep_database {
        // The replicas are gone by now (or killed when `measured` failed and its children dropped).
        match admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {database}"))
            .await
        {
            Ok(()) => database_dropped = true,
            Err(err) => tracing::warn!(%err, %database, "could not drop the run's database"),
        }
    }
    let (phases, checks) = measured?;
    machine.loadavg_end = machine::loadavg();
    let results = Results {
        machine,
        settings,
        wrk_version,
        postgres_version,
        postgres: redact_url(&postgres_url),
        redis: redact_url(&redis_url),
        database,
        database_dropped,
        redis_prefix,
        phases,
        checks,
    };
    let markdown = markdown(&results);
    let (markdown_path, json_path) = write(&args.out, &results, &markdown)?;
    Ok(Report {
        markdown,
        markdown_path,
        json_path,
    })
}

/// Where the replicas keep their shared state.
struct Storage<'a> {
    postgres_url: &'a str,
    redis_url: &'a str,
    redis_prefix: &'a str,
}

async fn run_phases(
    args: &Args,
    settings: &Settings,
    exe: &Path,
    dir: &Path,
    storage: &Storage<'_>,
) -> anyhow::Result<(Vec<Phase>, Vec<Check>)> {
    let mut checks = Vec::new();
    let upstream_model = format!("bench?tokens={}", settings.answer_tokens);
    // The testkit answers at full speed unless the model asks for a rate.
    let (upstream, upstream_addr) = start_upstream(exe, dir).await?;

    // 1. Direct.
    tracing::info!("phase 1/3: direct to the upstream");
    let direct_script = dir.join("direct.lua");
    std::fs::write(&direct_script, wrk_script(&upstream_model, None))
        .context("writing the wrk script")?;
    probe(upstream_addr, None, &upstream_model, settings.answer_tokens)
        .await
        .context("a request straight to the upstream")?;
    let targets = [(upstream_addr, settings.connections)];
    let warmup = load(
        &args.wrk,
        settings,
        &targets,
        &direct_script,
        Timing::Warmup,
    )
    .await?;
    let runs = load(
        &args.wrk,
        settings,
        &targets,
        &direct_script,
        Timing::Measured,
    )
    .await?;
    let direct = Phase {
        label: "direct".to_owned(),
        wrk_processes: 1,
        connections_per_process: vec![settings.connections],
        warmup_requests: warmup.iter().map(|r| r.requests).sum(),
        load: combine(&runs),
        added_p50_ms: None,
        added_p99_ms: None,
        cpu_us_per_request: None,
        replicas: Vec::new(),
        records: None,
    };

    // 2. One replica.
    tracing::info!("phase 2/3: one tandem replica");
    let tandem_model = format!("testkit/{upstream_model}");
    let mut one = vec![start_replica(exe, dir, 1, upstream_addr, storage).await?];
    let key = create_key(one[0].1).await?;
    let tandem_script = dir.join("tandem.lua");
    std::fs::write(&tandem_script, wrk_script(&tandem_model, Some(&key)))
        .context("writing the wrk script")?;
    let mut single = measure_replicas(
        "tandem ×1",
        &args.wrk,
        settings,
        &mut one,
        &tandem_script,
        &key,
        &tandem_model,
        &direct.load,
    )
    .await?;
    drop(one);
    // The database is fresh: every row so far is this phase's.
    let before = Records::default();
    let after = count_records(storage.postgres_url).await?;
    single.records = Some(phase_records(&after, &before, &single, settings));

    // 3. N replicas.
    tracing::info!(replicas = settings.replicas, "phase 3/3: tandem replicas");
    let mut many = Vec::new();
    for i in 0..settings.replicas {
        many.push(start_replica(exe, dir, i + 2, upstream_addr, storage).await?);
    }
    let before = after;
    let label = format!("tandem ×{}", settings.replicas);
    let mut scaled = measure_replicas(
        &label,
        &args.wrk,
        settings,
        &mut many,
        &tandem_script,
        &key,
        &tandem_model,
        &direct.load,
    )
    .await?;
    let after = count_records(storage.postgres_url).await?;
    scaled.records = Some(phase_records(&after, &before, &scaled, settings));
    drop(many);
    drop(upstream);

    for phase in [&direct, &single, &scaled] {
        let load = &phase.load;
        checks.push(Check {
            what: format!("{}: no error responses or socket errors", phase.label),
            pass: load.status_errors == 0 && load.socket_errors == 0,
            detail: format!(
                "{} responses with status ≥ 400, {} socket errors",
                load.status_errors, load.socket_errors
            ),
        });
    }
    for phase in [&single, &scaled] {
        if let Some(records) = &phase.records {
            checks.push(Check {
                what: format!(
                    "{}: every answered request is in the shared `requests` table",
                    phase.label
                ),
                pass: records.consistent(),
                detail: format!(
                    "{} answered (wrk + probes), {} rows with status 200, {} rows in all; at most {} cut at the end of wrk's runs",
                    records.answered, records.ok_rows, records.rows, records.cut_bound
                ),
            });
            checks.push(Check {
                what: format!(
                    "{}: every recorded request has one entry in the shared audit ledger",
                    phase.label
                ),
                pass: records.audited(),
                detail: format!(
                    "{} `request` entries in `audit_entries`, {} rows in `requests`",
                    records.audit_requests, records.rows
                ),
            });
        }
        let clean = phase.replicas.iter().all(|r| r.clean_exit);
        checks.push(Check {
            what: format!("{}: every replica exits cleanly on SIGTERM", phase.label),
            pass: clean,
            detail: phase
                .replicas
                .iter()
                .map(|r| match r.stop_s {
                    Some(s) => format!("{} in {s:.2} s", r.exit),
                    None => r.exit.clone(),
                })
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    checks.push(Check {
        what: "an API key made through one replica authenticates on the others".to_owned(),
        pass: true,
        detail: format!(
            "made through the replica of the one-replica phase; each of the {} fresh replicas answered a probe request with it",
            settings.replicas
        ),
    });
    Ok((vec![direct, single, scaled], checks))
}

/// Loads `replicas` at once, one `wrk` each, and reads their memory and CPU; then stops them with SIGTERM.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per phase, each argument distinct"
)]
async fn measure_replicas(
    label: &str,
    wrk: &Path,
    settings: &Settings,
    replicas: &mut [(Child, SocketAddr, Duration)],
    script: &Path,
    key: &str,
    model: &str,
    direct: &Load,
) -> anyhow::Result<Phase> {
    for (_, addr, _) in replicas.iter() {
        probe(*addr, Some(key), model, settings.answer_tokens)
            .await
            .with_context(|| format!("a probe request to the replica at {addr}"))?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle: Vec<u64> = replicas
        .iter()
        .map(|(child, ..)| procs::memory(child.pid()).unwrap_or_default().rss)
        .collect();
    let split = split_connections(settings.connections, replicas.len());
    let targets: Vec<(SocketAddr, u32)> = replicas
        .iter()
        .zip(&split)
        .map(|((_, addr, _), conns)| (*addr, *conns))
        .collect();
    let warmup = load(wrk, settings, &targets, script, Timing::Warmup).await?;
    let cpu_before: Vec<f64> = replicas
        .iter()
        .map(|(child, ..)| procs::cpu_seconds(child.pid()).unwrap_or(0.0))
        .collect();
    let runs = load(wrk, settings, &targets, script, Timing::Measured).await?;
    let cpu: Vec<f64> = replicas
        .iter()
        .zip(&cpu_before)
        .map(|((child, ..), before)| procs::cpu_seconds(child.pid()).unwrap_or(0.0) - before)
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut out: Vec<Replica> = Vec::new();
    for (i, (child, addr, startup)) in replicas.iter().enumerate() {
        let after = procs::memory(child.pid()).unwrap_or_default();
        out.push(Replica {
            addr: addr.to_string(),
            startup_s: startup.as_secs_f64(),
            idle_mb: mb(idle[i]),
            after_load_mb: mb(after.rss),
            peak_mb: mb(after.hwm.max(after.rss)),
            cpu_s: cpu[i],
            load: combine(&runs[i..=i]),
            stop_s: None,
            clean_exit: false,
            exit: String::new(),
            log: Vec::new(),
        });
    }
    // Stop them all at once, as a rolling deploy or a scale-in would, and wait for their records.
    let stopping = Instant::now();
    for (child, ..) in replicas.iter() {
        child.terminate();
    }
    for ((child, ..), replica) in replicas.iter_mut().zip(&mut out) {
        let remaining = STOP_LIMIT.saturating_sub(stopping.elapsed());
        match child.wait_exit(remaining).await {
            Some(status) => {
                replica.stop_s = Some(stopping.elapsed().as_secs_f64());
                replica.clean_exit = status.success();
                replica.exit = status.to_string();
            }
            None => {
                replica.exit = format!("still running {} s after SIGTERM", STOP_LIMIT.as_secs())
            }
        }
        replica.log = log_problems(child);
    }
    let load = combine(&runs);
    let cpu_total: f64 = cpu.iter().sum();
    Ok(Phase {
        label: label.to_owned(),
        wrk_processes: u32::try_from(replicas.len()).unwrap_or(u32::MAX),
        connections_per_process: split,
        warmup_requests: warmup.iter().map(|r| r.requests).sum(),
        added_p50_ms: Some(load.p50_ms - direct.p50_ms),
        added_p99_ms: Some(load.p99_ms - direct.p99_ms),
        cpu_us_per_request: (load.requests > 0).then(|| cpu_total * 1e6 / load.requests as f64),
        load,
        replicas: out,
        records: None,
    })
}

/// The rows a phase added to the `requests` table (`after` minus `before`) against what it answered.
fn phase_records(after: &Records, before: &Records, phase: &Phase, settings: &Settings) -> Records {
    let mut by_outcome = after.by_outcome.clone();
    for (outcome, n) in &before.by_outcome {
        if let Some(count) = by_outcome.get_mut(outcome) {
            *count = count.saturating_sub(*n);
        }
    }
    by_outcome.retain(|_, n| *n > 0);
    let probes = phase.replicas.len() as u64;
    // Each process's warm-up and measured run can each leave its connections' requests in flight.
    let cut_bound = 2 * u64::from(settings.connections);
    Records {
        answered: probes + phase.warmup_requests + phase.load.requests,
        rows: after.rows.saturating_sub(before.rows),
        ok_rows: after.ok_rows.saturating_sub(before.ok_rows),
        by_outcome,
        audit_requests: after.audit_requests.saturating_sub(before.audit_requests),
        cut_bound,
    }
}

/// The `requests` table's rows so far.
async fn count_records(url: &str) -> anyhow::Result<Records> {
    let client = pg_connect(url)
        .await
        .context("connecting to the run's database")?;
    let rows = client
        .query(
            "SELECT outcome, count(*), count(*) FILTER (WHERE status = 200) FROM requests GROUP BY outcome",
            &[],
        )
        .await
        .context("counting the recorded requests")?;
    let mut records = Records::default();
    for row in rows {
        let outcome: String = row.get(0);
        let all: i64 = row.get(1);
        let ok: i64 = row.get(2);
        let all = u64::try_from(all).unwrap_or(0);
        records.rows += all;
        records.ok_rows += u64::try_from(ok).unwrap_or(0);
        records.by_outcome.insert(outcome, all);
    }
    let audited: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_entries WHERE kind = 'request'",
            &[],
        )
        .await
        .context("counting the audit entries")?
        .get(0);
    records.audit_requests = u64::try_from(audited).unwrap_or(0);
    Ok(records)
}

async fn pg_connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// `url` with its database replaced by `database` (any query string kept).
fn database_url(url: &str, database: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (url, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// `url` with the password of its user info, if any, masked.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

/// `connections` spread over `n` processes, the first ones taking the remainder.
fn split_connections(connections: u32, n: usize) -> Vec<u32> {
    let n32 = u32::try_from(n.max(1)).unwrap_or(1);
    (0..n32)
        .map(|i| connections / n32 + u32::from(i < connections % n32))
        .collect()
}

/// A run-unique suffix for the database name and the Redis prefix: seconds since the epoch and the pid.
fn unique_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}_{}", std::process::id())
}

/// The `wrk` script: method, body and headers of every request, and a `done` hook that prints the summary
/// as one JSON line (exact microseconds, unlike wrk's rounded text).
fn wrk_script(model: &str, key: Option<&str>) -> String {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Benchmark: answer with the scripted tokens."}],
    });
    let auth = key.map_or_else(String::new, |key| {
        format!("wrk.headers[\"Authorization\"] = [==[Bearer {key}]==]\n")
    });
    format!(
        r#"-- Generated by `tandem bench scale`.
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{auth}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{WRK_MARK}{{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"mean_us":%.1f,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"#
    )
}

/// The summary line of a `wrk` run's output.
fn parse_wrk(stdout: &str) -> anyhow::Result<WrkRun> {
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix(WRK_MARK)) else {
        bail!(
            "wrk printed no summary line; its output:\n{}",
            stdout.trim()
        );
    };
    serde_json::from_str(line).with_context(|| format!("wrk's summary line: {line}"))
}

/// Whether a `wrk` run is the untimed warm-up or the measured one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timing {
    Warmup,
    Measured,
}

/// Runs one `wrk` per target at once and returns their summaries in the targets' order; an empty warm-up
/// returns nothing.
async fn load(
    wrk: &Path,
    settings: &Settings,
    targets: &[(SocketAddr, u32)],
    script: &Path,
    timing: Timing,
) -> anyhow::Result<Vec<WrkRun>> {
    let seconds = match timing {
        Timing::Warmup => settings.warmup_s,
        Timing::Measured => settings.duration_s,
    };
    if seconds == 0 {
        return Ok(Vec::new());
    }
    let runs = targets.iter().map(|&(addr, connections)| {
        let wrk_name = wrk.display().to_string();
        let mut command = tokio::process::Command::new(wrk);
        command
            .arg("-t")
            .arg(settings.threads.min(connections).max(1).to_string())
            .arg("-c")
            .arg(connections.to_string())
            .arg("-d")
            .arg(format!("{seconds}s"))
            .args(["--timeout", "10s", "--latency", "-s"])
            .arg(script)
            .arg(format!("http://{addr}/v1/chat/completions"))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        async move {
            let output = tokio::time::timeout(Duration::from_secs(seconds + 30), command.output())
                .await
                .with_context(|| format!("wrk against {addr} did not finish"))?
                .with_context(|| format!("running {wrk_name}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                bail!(
                    "wrk against {addr} failed ({}): {}{}",
                    output.status,
                    stdout.trim(),
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            tracing::debug!(%addr, output = %stdout, "wrk");
            parse_wrk(&stdout)
        }
    });
    let handles: Vec<_> = runs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.context("a wrk task")??);
    }
    Ok(out)
}

/// `wrk`'s version line; a clear error with the way to install it when it is missing.
fn wrk_version(wrk: &Path) -> anyhow::Result<String> {
    // `wrk -v` prints its version and usage and exits with status 1.
    match Command::new(wrk)
        .arg("-v")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(output) => Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "`{}` is not on PATH: tandem bench scale drives the wrk load generator; install it \
             (Debian and Ubuntu: `sudo apt-get install wrk`; macOS: `brew install wrk`) or pass --wrk PATH",
            wrk.display()
        ),
        Err(err) => Err(err).with_context(|| format!("running {}", wrk.display())),
    }
}

/// Starts replica `n`: `tandem serve` with its own state directory and the shared storage, API keys only, one
/// budget and one rate limit for every user.
async fn start_replica(
    exe: &Path,
    dir: &Path,
    n: u32,
    upstream: SocketAddr,
    storage: &Storage<'_>,
) -> anyhow::Result<(Child, SocketAddr, Duration)> {
    let addr = procs::free_addr()?;
    let config = format!(
        "[server]\nlisten = \"{addr}\"\nstate_dir = {state:?}\n\n\
         [[providers]]\nname = \"testkit\"\nkind = \"openai\"\nbase_url = \"http://{upstream}/v1\"\n\n\
         [auth]\nanonymous = false\napi_keys = true\n\n\
         [storage]\nredis_prefix = {prefix:?}\n\n\
         [audit]\ndir = {audit:?}\n\n\
         [[budgets]]\nname = \"bench-daily\"\napplies_to = \"user:*\"\nperiod = \"day\"\nmax_tokens = {BUDGET_TOKENS}\n\n\
         [[limits]]\nname = \"bench-rate\"\napplies_to = \"user:*\"\nrequests_per_minute = {LIMIT_RPM}\n",
        state = dir.join(format!("replica-{n}")).display().to_string(),
        prefix = storage.redis_prefix,
        audit = dir.join("audit").display().to_string(),
    );
    let config_path = dir.join(format!("replica-{n}.toml"));
    std::fs::write(&config_path, config).context("writing a replica's config")?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env_remove("TANDEM_CONFIG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("TANDEM_POSTGRES_URL", storage.postgres_url)
        .env("TANDEM_REDIS_URL", storage.redis_url)
        .env("TANDEM_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let mut child = Child::spawn("tandem", command, dir.join(format!("replica-{n}.log")))?;
    let startup = child
        .wait_ready(addr, "/healthz", Duration::from_secs(30))
        .await?;
    tracing::info!(%addr, ?startup, replica = n, "tandem replica ready");
    Ok((child, addr, startup))
}

/// Makes an API key for the user `bench` through a replica's admin API.
async fn create_key(addr: SocketAddr) -> anyhow::Result<String> {
    let mut conn = Conn::connect(Endpoint::new(addr, Some(ADMIN_TOKEN))).await?;
    let (status, body) = conn
        .exchange(
            "/admin/keys",
            Bytes::from(json!({"user": "bench"}).to_string()),
        )
        .await?;
    if !status.is_success() {
        bail!(
            "POST /admin/keys answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&body).context("the answer of POST /admin/keys")?;
    answer["key"]
        .as_str()
        .map(str::to_owned)
        .context("no `key` in the answer of POST /admin/keys")
}

/// One request like `wrk`'s, checked for status 200 and the exact answer.
async fn probe(
    addr: SocketAddr,
    key: Option<&str>,
    model: &str,
    tokens: u32,
) -> anyhow::Result<()> {
    let mut conn = Conn::connect(Endpoint::new(addr, key)).await?;
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Benchmark: answer with the scripted tokens."}],
    });
    let (status, answer) = conn
        .exchange("/v1/chat/completions", Bytes::from(body.to_string()))
        .await?;
    check_completion(status, &answer, tokens).map_err(anyhow::Error::msg)
}

/// The Markdown report.
fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let m = &results.machine;
    let s = &results.settings;
    let _ = writeln!(
        md,
        "# Scale-out benchmark: one and {} replicas on shared PostgreSQL and Redis ({})\n",
        s.replicas, m.date_utc
    );
    let columns: Vec<&Phase> = results.phases.iter().collect();
    let header: Vec<String> = columns.iter().map(|p| p.label.clone()).collect();
    let _ = writeln!(md, "| | {} |", header.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(columns.len()));
    let row = |md: &mut String, name: &str, cell: &dyn Fn(&Phase) -> String| {
        let cells: Vec<String> = columns.iter().map(|p| cell(p)).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    };
    row(&mut md, "wrk processes × connections", &|p| {
        let conns: Vec<String> = p
            .connections_per_process
            .iter()
            .map(u32::to_string)
            .collect();
        if conns.iter().all(|c| *c == conns[0]) {
            format!("{} × {}", p.wrk_processes, conns[0])
        } else {
            format!("{} × ({})", p.wrk_processes, conns.join(", "))
        }
    });
    row(&mut md, "requests/s", &|p| int(p.load.requests_per_sec));
    row(&mut md, "latency p50 / p99 (ms)", &|p| {
        format!("{} / {}", ms(p.load.p50_ms), ms(p.load.p99_ms))
    });
    row(
        &mut md,
        "added latency p50 / p99 (ms)",
        &|p| match (p.added_p50_ms, p.added_p99_ms) {
            (Some(a), Some(b)) => format!("{} / {}", signed(a), signed(b)),
            _ => "—".to_owned(),
        },
    );
    row(&mut md, "responses ≥ 400 / socket errors", &|p| {
        format!("{} / {}", p.load.status_errors, p.load.socket_errors)
    });
    row(&mut md, "replica RSS idle → after load (MB)", &|p| {
        if p.replicas.is_empty() {
            return "—".to_owned();
        }
        p.replicas
            .iter()
            .map(|r| format!("{:.1} → {:.1}", r.idle_mb, r.after_load_mb))
            .collect::<Vec<_>>()
            .join("; ")
    });
    row(&mut md, "replica CPU per request (µs)", &|p| {
        p.cpu_us_per_request.map_or_else(|| "—".to_owned(), int)
    });
    row(&mut md, "audit ledger `request` entries", &|p| {
        p.records
            .as_ref()
            .map_or_else(|| "—".to_owned(), |r| int(r.audit_requests as f64))
    });
    row(
        &mut md,
        "rows in `requests` (status 200) / answered",
        &|p| {
            p.records.as_ref().map_or_else(
                || "—".to_owned(),
                |r| {
                    format!(
                        "{} ({}) / {}",
                        int(r.rows as f64),
                        int(r.ok_rows as f64),
                        int(r.answered as f64)
                    )
                },
            )
        },
    );

    if let Some(scaled) = results.phases.last() {
        let _ = writeln!(md, "\n## Per replica in the {} phase\n", scaled.label);
        let _ = writeln!(
            md,
            "| replica | requests/s | p50 / p99 (ms) | RSS idle / after / peak (MB) | CPU (s) | stop after SIGTERM |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
        for (i, r) in scaled.replicas.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {} / {} | {:.1} / {:.1} / {:.1} | {:.2} | {} |",
                i + 1,
                r.addr,
                int(r.load.requests_per_sec),
                ms(r.load.p50_ms),
                ms(r.load.p99_ms),
                r.idle_mb,
                r.after_load_mb,
                r.peak_mb,
                r.cpu_s,
                r.stop_s
                    .map_or_else(|| r.exit.clone(), |t| format!("{t:.2} s, {}", r.exit)),
            );
        }
    }

    let _ = writeln!(md, "\n## Checks\n");
    for check in &results.checks {
        let _ = writeln!(
            md,
            "- {} {}: {}",
            if check.pass { "PASS" } else { "FAIL" },
            check.what,
            check.detail
        );
    }
    for phase in &results.phases {
        if let Some(r) = &phase.records {
            let outcomes: Vec<String> = r
                .by_outcome
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                md,
                "- {} rows by outcome: {}",
                phase.label,
                if outcomes.is_empty() {
                    "none".to_owned()
                } else {
                    outcomes.join(", ")
                }
            );
        }
        let problems: Vec<&String> = phase.replicas.iter().flat_map(|r| &r.log).collect();
        if !problems.is_empty() {
            let _ = writeln!(md, "- {} replica log lines (`RUST_LOG=warn`):", phase.label);
            for line in problems {
                let _ = writeln!(md, "  - `{}`", line.replace('`', "'"));
            }
        }
    }

    let _ = writeln!(md, "\n## Method\n");
    let _ = writeln!(
        md,
        "- Load: `wrk` ({}), {} thread(s) per process, {} s warm-up then {} s measured per phase, {} connections in all, non-streamed `POST /v1/chat/completions` with a {}-token answer from `tandem testkit` at full speed. Closed loop: each connection sends its next request when the answer arrives, so the latencies include queueing at saturation.",
        results.wrk_version, s.threads, s.warmup_s, s.duration_s, s.connections, s.answer_tokens
    );
    let _ = writeln!(
        md,
        "- Replicas: `tandem serve` (`RUST_LOG=warn`, defaults otherwise: DLP, metrics, the audit ledger) with API-key auth, a daily token budget of {} and a rate limit of {} requests/minute for every user (never reached: the Redis scripts run on every request but refuse nothing), keys, request records and the audit ledger (one signing key shared by the replicas, each entry committed before its answer ends) in PostgreSQL {} (fresh database `{}`{}), budget and rate counters in Redis under the fresh prefix `{}`.",
        int(s.budget_tokens as f64),
        int(f64::from(s.limit_rpm)),
        results.postgres_version,
        results.database,
        if results.database_dropped {
            ", dropped after the run"
        } else {
            ", kept"
        },
        results.redis_prefix
    );
    let _ = writeln!(
        md,
        "- The {}-replica phase runs one `wrk` per replica at the same time with the connections split evenly, as a round-robin load balancer would spread them; its requests/s are the sum and its percentiles the worst replica's. The key was made through the first replica's admin API and used on every replica.",
        s.replicas
    );
    let _ = writeln!(
        md,
        "- \"Added latency pXX\" is the phase's pXX minus the direct phase's pXX: a difference of percentiles, not a percentile of per-request differences (requests are not paired), as in the gateway benchmark. Under closed-loop saturation it is mostly the queueing that lower throughput causes, not the per-request work alone."
    );
    let _ = writeln!(
        md,
        "- Memory: `VmRSS` of each replica one second after it was ready and had answered a probe request, and two seconds after the measured load; peak is `VmHWM`. CPU: user + system time of the replicas during the measured load per measured request."
    );
    let _ = writeln!(
        md,
        "- Records: the replicas are stopped with SIGTERM after their phase; then the rows the phase added to `requests` are counted against the requests it answered (probe requests, warm-up and measured, as `wrk` counted them). `wrk` does not count requests still in flight when a run ends; the replicas may record those too (as answered or as cancelled by the client), at most one per connection per run."
    );
    let _ = writeln!(
        md,
        "- Machine: every process (the replicas, PostgreSQL, Redis, the upstream and `wrk`) shares the same {} CPU(s), so the {}-replica figure shows correctness and overhead under contention, not a scale-out speedup.",
        m.nproc, s.replicas
    );
    let _ = writeln!(md, "\n## Machine\n");
    let _ = writeln!(
        md,
        "- {} UTC, {} × {}, {:.1} GiB, Linux {}",
        m.time_utc, m.nproc, m.cpu_model, m.mem_total_gib, m.kernel
    );
    let _ = writeln!(
        md,
        "- load average at start / end: {} / {}",
        m.loadavg_start, m.loadavg_end
    );
    let _ = writeln!(
        md,
        "- build: {}, commit {}{}",
        m.build,
        m.git_commit.as_deref().unwrap_or("unknown"),
        if m.git_dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "- services: PostgreSQL at `{}`, Redis at `{}`",
        results.postgres, results.redis
    );
    let _ = writeln!(md, "- command: `{}`", m.command);
    md
}

/// Writes `scale-<date>.md` and `.json` into `out`.
fn write(out: &Path, results: &Results, markdown: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    crate::save(
        out,
        &format!("scale-{}", results.machine.date_utc),
        markdown,
        results,
    )
}
