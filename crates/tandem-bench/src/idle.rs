//! `tandem bench idle`: how much memory `tandem serve` needs per open stream that is waiting on its upstream, and
//! whether every upstream stream is cancelled once its client hangs up.
//!
//! The testkit upstream and `tandem serve` are child processes as in the gateway benchmark. This process opens
//! `--streams` connections to tandem, each with one streamed Chat Completions request whose upstream answer is
//! one token and then silence (`tokens=2&stall_after=1`), and reads each until that token arrived, so that every
//! stream is open end to end: client to tandem, tandem to the upstream. With all of them held, it reads tandem's
//! RSS and times one `GET /healthz`; then it closes every client connection and waits for the upstream to count
//! every stream as cancelled. `--rounds` repeats this: the allocator keeps freed memory for reuse, so RSS stays
//! up after the first round, and a later round that does not raise it further shows the memory is reused, not
//! leaked.
//!
//! Each stream holds two sockets in tandem, so the open-files limit caps the count: when its hard limit cannot hold
//! `--streams`, the run holds as many as fit and says so in the report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt as _;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{Conn, Endpoint};
use crate::machine::Machine;
use crate::report::int;
use crate::{Report, log_problems, mb, procs, raise_fd_limit, start_tandem, start_upstream};

/// Options of `tandem bench idle`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Concurrent idle streams to hold open.
    #[arg(long, default_value_t = 10_000)]
    pub streams: u32,
    /// Streams being opened at the same time.
    #[arg(long, default_value_t = 128)]
    pub opening: u32,
    /// Seconds to hold every stream open before reading tandem's memory.
    #[arg(long, default_value_t = 3)]
    pub settle: u64,
    /// Times to open and close all the streams.
    #[arg(long, default_value_t = 2)]
    pub rounds: u32,
    /// Directory of the Markdown and JSON reports.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
}

/// The upstream model of every stream: one token, then nothing until the client goes away.
const MODEL: &str = "testkit/idle?tokens=2&stall_after=1";

/// Descriptors kept free in tandem beyond two per stream (listener, epoll, store, logs, the probe).
const SPARE_FILES: u64 = 64;

/// The numbers of one run.
#[derive(Debug, Serialize)]
struct Results {
    machine: Machine,
    requested: u32,
    /// Streams attempted in each round: `requested`, or fewer when the open-files limit cannot hold them.
    attempted: u32,
    /// Why fewer than requested were attempted.
    limit_note: Option<String>,
    open_files_limit: Option<u64>,
    /// Open descriptors of tandem before any stream.
    tandem_files_idle: u64,
    startup_s: f64,
    /// Seconds between the last stream opening and the memory reading.
    settle_s: u64,
    rss_idle_mb: f64,
    /// (RSS with every stream of the first round open − idle RSS) / streams open.
    kib_per_stream: Option<f64>,
    /// Idle RSS plus `requested` streams at `kib_per_stream`, when fewer were held.
    projected_mb: Option<f64>,
    peak_mb: f64,
    rounds: Vec<Round>,
    tandem_alive: bool,
    tandem_log: Vec<String>,
}

/// One round: every stream opened, held, and closed.
#[derive(Debug, Serialize)]
struct Round {
    opened: u64,
    failed: u64,
    first_error: Option<String>,
    /// From the first connection to the last first token.
    open_s: f64,
    rss_open_mb: f64,
    /// One `GET /healthz` (new connection included) with every stream open.
    healthz_ms: Option<f64>,
    /// Streams the upstream started in this round.
    upstream_started: u64,
    /// Of those, cancelled once the clients closed.
    upstream_cancelled: u64,
    /// Of those, ended otherwise (none should).
    upstream_completed: u64,
    /// From closing the clients until the upstream counted every stream of the round as cancelled.
    cancel_s: Option<f64>,
    /// RSS 2 s after the upstream saw every stream cancelled.
    rss_closed_mb: f64,
}

/// Runs the benchmark and writes `idle-<date>.md` and `.json` into `--out`.
pub async fn run(args: Args) -> anyhow::Result<Report> {
    let mut machine = Machine::gather();
    if machine.build == "debug" {
        tracing::warn!(
            "this is a debug build: numbers are not meaningful; use `cargo build --release -p tandem-cli`"
        );
    }
    raise_fd_limit(args.streams);
    let exe = std::env::current_exe().context("finding the tandem executable")?;
    let temp = tempfile::Builder::new()
        .prefix("tandem-bench-idle-")
        .tempdir()
        .context("creating a temporary directory")?;
    let dir = temp.path();
    let (upstream, upstream_addr) = start_upstream(&exe, dir).await?;
    // A stalled stream must stay open for the whole run, not end at the default 120 s idle timeout.
    let (mut tandem, tandem_addr, startup) =
        start_tandem(&exe, dir, upstream_addr, "idle_timeout_ms = 3600000\n").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = procs::memory(tandem.pid()).unwrap_or_default();
    let tandem_files_idle = open_files(tandem.pid());

    let open_files_limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let mut attempted = args.streams;
    let mut limit_note = None;
    if let Some(limit) = open_files_limit {
        let fit = limit.saturating_sub(tandem_files_idle + SPARE_FILES) / 2;
        if u64::from(attempted) > fit {
            attempted = u32::try_from(fit).unwrap_or(u32::MAX);
            let note = format!(
                "{} streams requested, {attempted} held: the open-files limit is {limit} (hard limit, which this \
                 process cannot raise), tandem holds two sockets per stream and {tandem_files_idle} descriptors \
                 at idle, and {SPARE_FILES} are kept spare",
                args.streams
            );
            tracing::warn!("{note}");
            limit_note = Some(note);
        }
    }

    let mut rounds = Vec::new();
    let mut kib_per_stream = None;
    for number in 1..=args.rounds.max(1) {
        tracing::info!(round = number, streams = attempted, "opening idle streams");
        let round = round(&args, attempted, tandem.pid(), tandem_addr, upstream_addr).await?;
        if number == 1 && round.opened > 0 {
            kib_per_stream =
                Some((round.rss_open_mb - mb(idle.rss)) * 1024.0 / round.opened as f64);
        }
        rounds.push(round);
    }
    let end = procs::memory(tandem.pid()).unwrap_or_default();
    let projected_mb = kib_per_stream
        .filter(|_| attempted < args.streams)
        .map(|kib| mb(idle.rss) + kib * f64::from(args.streams) / 1024.0);
    machine.loadavg_end = crate::machine::loadavg();
    let results = Results {
        machine,
        requested: args.streams,
        attempted,
        limit_note,
        open_files_limit,
        tandem_files_idle,
        startup_s: startup.as_secs_f64(),
        settle_s: args.settle,
        rss_idle_mb: mb(idle.rss),
        kib_per_stream,
        projected_mb,
        peak_mb: mb(end.hwm),
        rounds,
        tandem_alive: tandem.running(),
        tandem_log: log_problems(&tandem),
    };
    drop(tandem);
    drop(upstream);
    write(&results, &args.out)
}

/// Opens `attempted` streams, holds them for `--settle` seconds, reads memory, closes them, and waits for the
/// upstream to see them cancelled.
async fn round(
    args: &Args,
    attempted: u32,
    tandem_pid: u32,
    tandem_addr: SocketAddr,
    upstream_addr: SocketAddr,
) -> anyhow::Result<Round> {
    let before = upstream_stats(upstream_addr).await?;
    let started = Instant::now();
    let (streams, failed, first_error) = open_streams(tandem_addr, attempted, args.opening).await;
    let open_s = started.elapsed().as_secs_f64();
    let opened = streams.len() as u64;
    tracing::info!(opened, failed, open_s, "streams open");
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let open = procs::memory(tandem_pid).unwrap_or_default();
    let healthz_ms = healthz(tandem_addr).await;
    let held = upstream_stats(upstream_addr).await?;

    drop(streams);
    let closed_at = Instant::now();
    let mut cancel_s = None;
    let mut stats = held;
    while closed_at.elapsed() < Duration::from_secs(120) {
        stats = upstream_stats(upstream_addr).await?;
        if stats.streams_cancelled >= held.streams_started {
            cancel_s = Some(closed_at.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(?cancel_s, "streams closed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let closed = procs::memory(tandem_pid).unwrap_or_default();
    Ok(Round {
        opened,
        failed,
        first_error,
        open_s,
        rss_open_mb: mb(open.rss),
        healthz_ms,
        upstream_started: held.streams_started - before.streams_started,
        upstream_cancelled: stats.streams_cancelled - before.streams_cancelled,
        upstream_completed: stats.streams_completed - before.streams_completed,
        cancel_s,
        rss_closed_mb: mb(closed.rss),
    })
}

/// Opens `count` streams, `opening` at a time; the open ones, how many failed, and the first failure.
async fn open_streams(
    addr: SocketAddr,
    count: u32,
    opening: u32,
) -> (Vec<TcpStream>, u64, Option<String>) {
    let body = serde_json::json!({
        "model": MODEL,
        "stream": true,
        "messages": [{"role": "user", "content": "Benchmark: one token, then silence."}],
    })
    .to_string();
    let request = Bytes::from(format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    ));
    let gate = Arc::new(Semaphore::new(opening.max(1) as usize));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let gate = Arc::clone(&gate);
        let request = request.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            tokio::time::timeout(Duration::from_secs(30), open_stream(addr, &request))
                .await
                .unwrap_or_else(|_| Err("no first token within 30 s".to_owned()))
        });
    }
    let mut streams = Vec::with_capacity(count as usize);
    let mut failed = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(err)) => {
                failed += 1;
                first_error.get_or_insert(err);
            }
            Err(err) => {
                failed += 1;
                first_error.get_or_insert(format!("stream task: {err}"));
            }
        }
    }
    (streams, failed, first_error)
}

/// Sends one streamed request and reads until its first token arrived.
async fn open_stream(addr: SocketAddr, request: &[u8]) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|err| format!("connecting: {err}"))?;
    stream
        .set_nodelay(true)
        .map_err(|err| format!("TCP_NODELAY: {err}"))?;
    stream
        .write_all(request)
        .await
        .map_err(|err| format!("sending: {err}"))?;
    let mut seen = Vec::with_capacity(2048);
    let mut buf = [0u8; 2048];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|err| format!("reading: {err}"))?;
        if n == 0 {
            return Err(format!(
                "closed before the first token: {}",
                String::from_utf8_lossy(&seen)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        seen.extend_from_slice(&buf[..n]);
        if !seen.starts_with(b"HTTP/1.1 200") && seen.len() >= 12 {
            return Err(format!(
                "answer: {}",
                String::from_utf8_lossy(&seen)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        if seen.windows(4).any(|w| w == b"tok0") {
            return Ok(stream);
        }
    }
}

/// Milliseconds of one `GET /healthz` on a new connection, if it answered 200 within 10 s.
async fn healthz(addr: SocketAddr) -> Option<f64> {
    let started = Instant::now();
    let probe = async {
        let mut conn = Conn::connect(Endpoint::new(addr, None)).await.ok()?;
        let response = conn
            .send(Method::GET, "/healthz", Bytes::new())
            .await
            .ok()?;
        let ok = response.status().is_success();
        response.into_body().collect().await.ok()?;
        ok.then_some(())
    };
    match tokio::time::timeout(Duration::from_secs(10), probe).await {
        Ok(Some(())) => Some(started.elapsed().as_secs_f64() * 1000.0),
        _ => None,
    }
}

/// The counters of the testkit upstream (`GET /testkit/stats`).
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
struct UpstreamStats {
    streams_started: u64,
    streams_completed: u64,
    streams_cancelled: u64,
}

async fn upstream_stats(addr: SocketAddr) -> anyhow::Result<UpstreamStats> {
    let mut conn = Conn::connect(Endpoint::new(addr, None)).await?;
    let response = conn
        .send(Method::GET, "/testkit/stats", Bytes::new())
        .await
        .context("GET /testkit/stats")?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "GET /testkit/stats: HTTP {status}");
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the testkit stats")?
        .to_bytes();
    serde_json::from_slice(&body).context("reading the testkit stats")
}

/// Open descriptors of a process.
fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// One cell of the per-round table.
type RoundCell = fn(&Round) -> String;

/// Writes `idle-<date>.md` and `.json`.
fn write(results: &Results, out: &std::path::Path) -> anyhow::Result<Report> {
    let m = &results.machine;
    let mut md = format!(
        "# Idle streams: memory of `tandem serve` per open stream\n\n\
         {} {} UTC, {} ({} cores visible), {:.0} GiB, kernel {}, build {}, commit {}{}.\n\
         Load average {} → {}.\n\nCommand: `{}`\n\n",
        m.date_utc,
        m.time_utc,
        m.cpu_model,
        m.nproc,
        m.mem_total_gib,
        m.kernel,
        m.build,
        m.git_commit.as_deref().unwrap_or("?"),
        if m.git_dirty { " (dirty)" } else { "" },
        m.loadavg_start,
        m.loadavg_end,
        m.command,
    );
    if let Some(note) = &results.limit_note {
        md.push_str(&format!("**Fewer streams than requested:** {note}.\n\n"));
    }
    md.push_str(&format!(
        "{} idle streams held open at once through tandem: **{} per stream** (RSS {:.1} MB idle, {:.1} MB with \
         the first round's streams open; peak {:.1} MB).\n",
        int(f64::from(results.attempted)),
        results
            .kib_per_stream
            .map_or_else(|| "n/a".to_owned(), |k| format!("{k:.1} KiB")),
        results.rss_idle_mb,
        results.rounds.first().map_or(0.0, |r| r.rss_open_mb),
        results.peak_mb,
    ));
    let rows: [(&str, RoundCell); 7] = [
        ("streams held open", |r| {
            let failed = match &r.first_error {
                Some(e) => format!(" ({} failed, first: {e})", r.failed),
                None => String::new(),
            };
            format!("{}{failed}", int(r.opened as f64))
        }),
        ("time to open them all", |r| format!("{:.1} s", r.open_s)),
        ("tandem RSS with every stream open", |r| {
            format!("{:.1} MB", r.rss_open_mb)
        }),
        ("`GET /healthz` with every stream open", |r| {
            r.healthz_ms
                .map_or_else(|| "no answer".to_owned(), |v| format!("{v:.2} ms"))
        }),
        ("upstream streams cancelled once the clients closed", |r| {
            format!(
                "{} of {}",
                int(r.upstream_cancelled as f64),
                int(r.upstream_started as f64)
            )
        }),
        ("time until the upstream saw every one cancelled", |r| {
            r.cancel_s
                .map_or_else(|| "not within 120 s".to_owned(), |s| format!("{s:.2} s"))
        }),
        ("tandem RSS 2 s later", |r| {
            format!("{:.1} MB", r.rss_closed_mb)
        }),
    ];
    md.push_str("\n| | ");
    let numbers: Vec<String> = (1..=results.rounds.len())
        .map(|n| format!("round {n}"))
        .collect();
    md.push_str(&numbers.join(" | "));
    md.push_str(" |\n|---|");
    md.push_str(&"---:|".repeat(results.rounds.len()));
    md.push('\n');
    for (measure, value) in rows {
        md.push_str(&format!("| {measure} |"));
        for round in &results.rounds {
            md.push_str(&format!(" {} |", value(round)));
        }
        md.push('\n');
    }
    if let Some(projected) = results.projected_mb {
        md.push_str(&format!(
            "\nAt that rate, {} streams would take about {projected:.0} MB.\n",
            int(f64::from(results.requested))
        ));
    }
    md.push_str(&format!(
        "\nEach stream: one streamed Chat Completions request (`{MODEL}`) on its own connection, read until its \
         first token, so that both tandem's client connection and its upstream connection are open and idle. \
         tandem runs its embedded default (DLP on every streamed answer, audit ledger, metrics) with the provider's \
         `idle_timeout_ms` raised to an hour. RSS is `VmRSS` of `/proc/PID/status`, read {} s after the last \
         stream opened; socket buffers are kernel memory and not in it. Freed memory stays with the allocator for \
         reuse, so RSS stays up after the first round; a later round that does not raise it shows it is reused, \
         not leaked. tandem was {} at the end.\n",
        results.settle_s,
        if results.tandem_alive {
            "running"
        } else {
            "**not running**"
        },
    ));
    if !results.tandem_log.is_empty() {
        md.push_str("\ntandem's log had warnings or errors:\n\n```\n");
        for line in &results.tandem_log {
            md.push_str(line);
            md.push('\n');
        }
        md.push_str("```\n");
    }
    let (markdown_path, json_path) =
        crate::save(out, &format!("idle-{}", m.date_utc), &md, results)?;
    Ok(Report {
        markdown: md,
        markdown_path,
        json_path,
    })
}
