//! `tandem bench`: a side-by-side benchmark of the scripted test upstream reached directly, through
//! `tandem serve`, and through the LiteLLM proxy, all on loopback in one run.
//!
//! The load generator is this process; the testkit upstream, tandem and LiteLLM are child processes (the
//! first two are `current_exe() testkit|serve`), each in its own process group and killed when the run ends
//! or fails. Every request is `POST /v1/chat/completions` with the same body apart from the model name.
//! See `bench/README.md` for the method and [`run`] for the order of the scenarios.
//! `tandem bench dlp` is a separate benchmark of the secret scanner against its peers (see [`dlp`]);
//! `tandem bench idle` one of the gateway's memory per open, idle stream (see [`idle`]); and `tandem bench scale`
//! one of one and several replicas on shared PostgreSQL and Redis, loaded by `wrk` (see [`scale`]).

mod client;
pub mod dlp;
pub mod idle;
pub mod local;
mod machine;
mod procs;
mod report;
pub mod scale;
mod scenario;
mod stats;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::client::Endpoint;
use crate::machine::{CpuTimes, Machine};
use crate::procs::Child;
use crate::report::{GatewayMemory, PerTarget, Results};
use crate::scenario::{ConcurrentPlan, Kind, SequentialPlan, Target};

/// Pause before a TTFT round that follows one the hypervisor disturbed: steal comes in bursts of seconds.
const ROUND_PAUSE: Duration = Duration::from_secs(5);

/// Master key of the benchmark's LiteLLM proxy (loopback only).
const LITELLM_KEY: &str = "sk-tandem-bench";

/// Options of `tandem bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Short smoke run with small counts (200 requests, 50 streams, 100 concurrent streams, 20k-token stream).
    #[arg(long)]
    pub quick: bool,
    /// Sequential non-streamed requests per target, after warm-up [default: 2000, quick: 200].
    #[arg(long)]
    pub requests: Option<u32>,
    /// Sequential streams per target for time to first token [default: 2000, quick: 50].
    #[arg(long)]
    pub streams: Option<u32>,
    /// Warm-up requests per target before each sequential scenario [default: 100, quick: 20].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Requests in a row to one target in the sequential scenarios before the next target's turn; 1 interleaves
    /// the targets request by request [default: 50, quick: 10].
    #[arg(long)]
    pub block: Option<u32>,
    /// Most rounds of direct and tandem in the time-to-first-token scenario: a round during which the hypervisor
    /// stole more than 0.5% of the CPU time is set aside and the two run again; the report shows every round
    /// [default: 5, quick: 1].
    #[arg(long)]
    pub ttft_rounds: Option<u32>,
    /// Tokens of the single-stream throughput test for direct and tandem [default: 200000, quick: 20000].
    #[arg(long)]
    pub stream_tokens: Option<u32>,
    /// Tokens of the single-stream throughput test for LiteLLM, which is far slower [default: 20000, quick: 2000].
    #[arg(long)]
    pub litellm_stream_tokens: Option<u32>,
    /// Concurrent streams in the aggregate-throughput test [default: 1000, quick: 100].
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Tokens per concurrent stream.
    #[arg(long, default_value_t = 200)]
    pub concurrent_tokens: u32,
    /// Pace of each concurrent stream in tokens per second (0 = full speed).
    #[arg(long, default_value_t = 0.0)]
    pub concurrent_rate: f64,
    /// Time limit of one scenario for one target, in seconds; a target over it is reported as timed out.
    #[arg(long, default_value_t = 120)]
    pub scenario_timeout: u64,
    /// The `litellm` executable [default: $TANDEM_BENCH_CACHE or ~/.cache/tandem-bench, then /litellm-venv/bin/litellm].
    #[arg(long)]
    pub litellm_bin: Option<PathBuf>,
    /// LiteLLM worker processes (`--num_workers`).
    #[arg(long, default_value_t = 1)]
    pub litellm_workers: u32,
    /// Measure direct and tandem only.
    #[arg(long)]
    pub no_litellm: bool,
    /// Directory of the Markdown and JSON reports.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    /// Another benchmark instead of the gateway one.
    #[command(subcommand)]
    pub command: Option<Bench>,
}

/// The benchmarks other than the gateway one.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Bench {
    /// Benchmark the DLP scanner against detect-secrets, Betterleaks and ripsecrets on a planted corpus.
    Dlp(dlp::Args),
    /// Benchmark the local tier against llama.cpp's llama-bench, and plain against prompt-lookup decoding.
    Local(local::Args),
    /// Requests/s, added latency and memory of one and several replicas on shared PostgreSQL and Redis (wrk).
    Scale(scale::Args),
    /// Hold many concurrent idle streams open through `tandem serve`: its memory per stream, and cancellation.
    Idle(idle::Args),
}

/// The settings of a run after `--quick` defaults are applied.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Settings {
    pub(crate) quick: bool,
    pub(crate) requests: u32,
    pub(crate) streams: u32,
    pub(crate) warmup: u32,
    pub(crate) block: u32,
    pub(crate) ttft_rounds: u32,
    pub(crate) answer_tokens: u32,
    pub(crate) stream_tokens: u32,
    pub(crate) litellm_stream_tokens: u32,
    pub(crate) concurrency: u32,
    pub(crate) concurrent_tokens: u32,
    pub(crate) concurrent_rate: f64,
    pub(crate) scenario_timeout_s: u64,
    pub(crate) litellm_workers: u32,
}

impl Settings {
    fn from_args(args: &Args) -> Settings {
        let pick = |value: Option<u32>, full: u32, quick: u32| {
            value.unwrap_or(if args.quick { quick } else { full })
        };
        Settings {
            quick: args.quick,
            requests: pick(args.requests, 2000, 200),
            streams: pick(args.streams, 2000, 50),
            warmup: pick(args.warmup, 100, 20),
            block: pick(args.block, 50, 10).max(1),
            ttft_rounds: pick(args.ttft_rounds, 5, 1).max(1),
            answer_tokens: 16,
            stream_tokens: pick(args.stream_tokens, 200_000, 20_000),
            litellm_stream_tokens: pick(args.litellm_stream_tokens, 20_000, 2_000),
            concurrency: pick(args.concurrency, 1000, 100),
            concurrent_tokens: args.concurrent_tokens,
            concurrent_rate: args.concurrent_rate,
            scenario_timeout_s: args.scenario_timeout,
            litellm_workers: args.litellm_workers.max(1),
        }
    }

    /// Every upstream model string a run uses, for LiteLLM's model list.
    fn upstream_models(&self) -> Vec<String> {
        let mut models = vec![
            scenario::upstream_model(self.answer_tokens, 0.0),
            scenario::upstream_model(self.stream_tokens, 0.0),
            scenario::upstream_model(self.litellm_stream_tokens, 0.0),
            scenario::upstream_model(self.concurrent_tokens, self.concurrent_rate),
        ];
        models.sort();
        models.dedup();
        models
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Report {
    /// The Markdown report (also written to `markdown_path`).
    pub markdown: String,
    pub markdown_path: PathBuf,
    pub json_path: PathBuf,
}

/// Runs the whole benchmark (or, with the `idle` or `scale` subcommand, that one), stopping (and killing the
/// children) on Ctrl-C, SIGTERM or SIGHUP; or, with the `dlp` or `local` subcommand, that benchmark (on a blocking
/// thread, with the default signal handling).
pub async fn run(args: Args) -> anyhow::Result<Report> {
    if let Some(Bench::Dlp(dlp_args)) = args.command {
        return tokio::task::spawn_blocking(move || dlp::run(&dlp_args))
            .await
            .context("the DLP benchmark thread")?;
    }
    if let Some(Bench::Local(local_args)) = args.command {
        return tokio::task::spawn_blocking(move || local::run(&local_args))
            .await
            .context("the local-tier benchmark thread")?;
    }
    if let Some(Bench::Scale(scale_args)) = args.command {
        return until_signal(scale::run(scale_args)).await;
    }
    if let Some(Bench::Idle(idle_args)) = args.command {
        return until_signal(idle::run(idle_args)).await;
    }
    until_signal(run_inner(args)).await
}

/// Runs `bench` unless Ctrl-C, SIGTERM or SIGHUP comes first; dropping it then kills its children.
async fn until_signal(
    bench: impl std::future::Future<Output = anyhow::Result<Report>>,
) -> anyhow::Result<Report> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::select! {
        result = bench => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        _ = term.recv() => anyhow::bail!("terminated"),
        _ = hangup.recv() => anyhow::bail!("hung up"),
    }
}

async fn run_inner(args: Args) -> anyhow::Result<Report> {
    let settings = Settings::from_args(&args);
    let mut machine = Machine::gather();
    let run_times = CpuTimes::read();
    if machine.build == "debug" {
        tracing::warn!(
            "this is a debug build: numbers are not meaningful; use `cargo build --release -p tandem-cli`"
        );
    }
    raise_fd_limit(settings.concurrency);
    let exe = std::env::current_exe().context("finding the tandem executable")?;
    let temp = tempfile::Builder::new()
        .prefix("tandem-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let dir = temp.path();

    let (upstream, upstream_addr) = start_upstream(&exe, dir).await?;
    let (mut tandem, tandem_addr, tandem_startup) =
        start_tandem(&exe, dir, upstream_addr, "").await?;

    // LiteLLM, when installed.
    let mut litellm_note = None;
    let mut litellm_version = None;
    let mut litellm = None;
    let mut litellm_startup = None;
    let mut litellm_addr = None;
    if args.no_litellm {
        litellm_note = Some("skipped (--no-litellm)".to_owned());
    } else {
        let bin = args
            .litellm_bin
            .clone()
            .unwrap_or_else(procs::default_litellm_bin);
        if bin.exists() {
            litellm_version = procs::litellm_version(&bin);
            let addr = procs::free_addr()?;
            match start_litellm(&bin, addr, upstream_addr, &settings, dir).await {
                Ok((child, startup)) => {
                    tracing::info!(%addr, ?startup, "LiteLLM ready");
                    litellm = Some(child);
                    litellm_startup = Some(startup);
                    litellm_addr = Some(addr);
                }
                Err(err) => {
                    tracing::error!(
                        "LiteLLM did not start; measuring direct and tandem only: {err:#}"
                    );
                    litellm_note = Some(format!(
                        "failed to start: {}",
                        first_line(&format!("{err:#}"))
                    ));
                }
            }
        } else {
            let venv = procs::cache_dir().join("litellm-venv");
            let message = format!(
                "LiteLLM not found at {}; measuring direct and tandem only. Install it with:\n  python3 -m venv {venv}\n  {venv}/bin/pip install 'litellm[proxy]'\nor pass --litellm-bin PATH.",
                bin.display(),
                venv = venv.display()
            );
            tracing::warn!("{message}");
            litellm_note = Some(format!("not installed at {}", bin.display()));
        }
    }

    // Idle memory, before any load.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tandem_idle = procs::memory(tandem.pid()).unwrap_or_default();
    let litellm_idle = litellm.as_ref().map(|c| procs::group_rss(c.pid()));
    let litellm_processes = litellm.as_ref().map(|c| procs::group_size(c.pid()));

    let mut targets = vec![
        Target {
            kind: Kind::Direct,
            endpoint: Endpoint::new(upstream_addr, Some(LITELLM_KEY)),
            gateway: None,
        },
        Target {
            kind: Kind::Tandem,
            endpoint: Endpoint::new(tandem_addr, Some(LITELLM_KEY)),
            gateway: Some(scenario::Gateway::Process(tandem.pid())),
        },
    ];
    if let (Some(addr), Some(child)) = (litellm_addr, litellm.as_ref()) {
        targets.push(Target {
            kind: Kind::Litellm,
            endpoint: Endpoint::new(addr, Some(LITELLM_KEY)),
            gateway: Some(scenario::Gateway::Group(child.pid())),
        });
    }

    let sampler = procs::PeakSampler::start(
        (tandem.pid(), tandem_idle.rss),
        litellm
            .as_ref()
            .map(|child| (child.pid(), litellm_idle.unwrap_or(0))),
    );

    let budget = Duration::from_secs(settings.scenario_timeout_s);
    let mut results = Results::new(settings.clone(), &targets);
    let cpu = CpuClock {
        tandem: tandem.pid(),
        litellm: litellm.as_ref().map(Child::pid),
    };

    tracing::info!(
        requests = settings.requests,
        "scenario 1/4: sequential non-streamed requests"
    );
    let pause = sampler.pause();
    let before = cpu.read();
    let times = CpuTimes::read();
    let latency = scenario::sequential(
        &targets,
        &SequentialPlan {
            count: settings.requests,
            warmup: settings.warmup,
            block: settings.block,
            tokens: settings.answer_tokens,
            stream: false,
            budget,
            request_timeout: Duration::from_secs(30),
        },
    )
    .await;
    results.steal.latency = CpuTimes::read().steal_percent_since(&times);
    let used = cpu.since(&before);
    for (target, result) in targets.iter().zip(latency) {
        if let Some(seconds) = used.get(target.kind) {
            results.cpu.entry(target.kind).us_per_request = per_unit(*seconds, result.sent);
        }
        results.latency.set(target.kind, result);
    }

    tracing::info!(
        streams = settings.streams,
        "scenario 2/4: sequential streams, time to first token"
    );
    // Direct and tandem run in rounds of their own: direct's own TTFT p99 follows the hypervisor's steal
    // (bench/README.md), so a round it disturbed is set aside and the two run again; every round is reported.
    // LiteLLM, 50 times slower, then takes one pass in turns against direct.
    let plan = SequentialPlan {
        count: settings.streams,
        warmup: settings.warmup,
        block: settings.block,
        tokens: settings.answer_tokens,
        stream: true,
        budget,
        request_timeout: Duration::from_secs(30),
    };
    let native: Vec<Target> = targets
        .iter()
        .filter(|t| t.kind != Kind::Litellm)
        .cloned()
        .collect();
    let mut rounds = Vec::new();
    for round in 0..settings.ttft_rounds {
        if round > 0 {
            tokio::time::sleep(ROUND_PAUSE).await;
        }
        let before = cpu.read();
        let times = CpuTimes::read();
        let ttft = scenario::sequential(&native, &plan).await;
        let steal = CpuTimes::read().steal_percent_since(&times);
        let used = cpu.since(&before);
        let mut per = PerTarget::default();
        for (target, result) in native.iter().zip(&ttft) {
            per.set(target.kind, result.clone());
        }
        let added_p99_ms = report::added(&per, Kind::Tandem, report::p99);
        tracing::info!(
            round = round + 1,
            steal = steal.unwrap_or(f64::NAN),
            added_p99_ms = added_p99_ms.unwrap_or(f64::NAN),
            "TTFT round"
        );
        results.ttft_rounds.push(report::Round {
            steal,
            added_p99_ms,
            counted: false,
        });
        rounds.push((ttft, used, steal));
        if report::quiet(steal) {
            break;
        }
    }
    let steals: Vec<Option<f64>> = rounds.iter().map(|(_, _, steal)| *steal).collect();
    if let Some(counted) = report::counted_round(&steals) {
        results.ttft_rounds[counted].counted = true;
        let (ttft, used, steal) = rounds.swap_remove(counted);
        results.steal.ttft = steal;
        for (target, result) in native.iter().zip(ttft) {
            if let Some(seconds) = used.get(target.kind) {
                results.cpu.entry(target.kind).us_per_stream = per_unit(*seconds, result.sent);
            }
            results.ttft.set(target.kind, result);
        }
    }
    let paired: Vec<Target> = targets
        .iter()
        .filter(|t| t.kind != Kind::Tandem)
        .cloned()
        .collect();
    if paired.iter().any(|t| t.kind == Kind::Litellm) {
        let before = cpu.read();
        let ttft = scenario::sequential(&paired, &plan).await;
        let used = cpu.since(&before);
        for (target, result) in paired.into_iter().zip(ttft) {
            match target.kind {
                Kind::Litellm => {
                    if let Some(seconds) = used.get(Kind::Litellm) {
                        results.cpu.entry(Kind::Litellm).us_per_stream =
                            per_unit(*seconds, result.sent);
                    }
                    results.ttft.set(Kind::Litellm, result);
                }
                Kind::Direct => results.ttft_litellm_direct = Some(result),
                Kind::Tandem => {}
            }
        }
    }
    drop(pause);

    tracing::info!("scenario 3/4: one long stream");
    for target in &targets {
        let tokens = match target.kind {
            Kind::Litellm => settings.litellm_stream_tokens,
            Kind::Direct | Kind::Tandem => settings.stream_tokens,
        };
        let before = cpu.read();
        let result = scenario::single(target, tokens, budget).await;
        if let Some(seconds) = cpu.since(&before).get(target.kind) {
            // The warm-up stream's 16 tokens count too.
            results.cpu.entry(target.kind).us_per_token_single =
                per_unit(*seconds, result.received + 16);
        }
        tracing::info!(
            target = target.kind.label(),
            tokens_per_sec = result.tokens_per_sec as u64,
            "single stream"
        );
        results.single.set(target.kind, result);
    }

    tracing::info!(
        streams = settings.concurrency,
        "scenario 4/4: concurrent streams"
    );
    for target in &targets {
        let before = cpu.read();
        let result = scenario::concurrent(
            target,
            &ConcurrentPlan {
                streams: settings.concurrency,
                tokens: settings.concurrent_tokens,
                rate: settings.concurrent_rate,
                budget,
            },
        )
        .await;
        if let Some(seconds) = cpu.since(&before).get(target.kind) {
            results.cpu.entry(target.kind).us_per_token_concurrent =
                per_unit(*seconds, result.tokens);
        }
        tracing::info!(
            target = target.kind.label(),
            tokens_per_sec = result.tokens_per_sec as u64,
            errors = result.errors,
            "concurrent streams"
        );
        results.concurrent.set(target.kind, result);
        // Let the closed connections drain before the next target.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Memory after the load has ended.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (tandem_peak, litellm_peak) = sampler.stop();
    let tandem_after = procs::memory(tandem.pid()).unwrap_or_default();
    results.memory.tandem = Some(GatewayMemory {
        startup_s: tandem_startup.as_secs_f64(),
        processes: 1,
        idle_mb: mb(tandem_idle.rss),
        peak_mb: mb(tandem_peak.max(tandem_after.hwm)),
        after_load_mb: mb(tandem_after.rss),
    });
    if let Some(child) = &litellm {
        results.memory.litellm = Some(GatewayMemory {
            startup_s: litellm_startup.map_or(0.0, |d| d.as_secs_f64()),
            processes: litellm_processes.unwrap_or(0),
            idle_mb: mb(litellm_idle.unwrap_or(0)),
            peak_mb: mb(litellm_peak),
            after_load_mb: mb(procs::group_rss(child.pid())),
        });
    }
    results.tandem_alive = tandem.running();
    results.litellm_alive = litellm.as_mut().map(Child::running);
    results.tandem_log = log_problems(&tandem);
    results.litellm_note = litellm_note;
    results.litellm_version = litellm_version;
    machine.loadavg_end = machine::loadavg();
    results.machine = Some(machine);
    results.steal.run = CpuTimes::read().steal_percent_since(&run_times);

    results.goals = report::goals(&results);
    let markdown = report::markdown(&results);
    let (markdown_path, json_path) = write(&args.out, &results, &markdown)?;
    drop(litellm);
    drop(tandem);
    drop(upstream);
    Ok(Report {
        markdown,
        markdown_path,
        json_path,
    })
}

/// Starts `tandem testkit` on a free loopback port and waits until it answers.
pub(crate) async fn start_upstream(
    exe: &Path,
    dir: &Path,
) -> anyhow::Result<(Child, std::net::SocketAddr)> {
    let upstream_addr = procs::free_addr()?;
    let mut command = Command::new(exe);
    command
        .args(["testkit", "--listen", &upstream_addr.to_string()])
        .env("RUST_LOG", "warn");
    let mut upstream = Child::spawn("testkit", command, dir.join("testkit.log"))?;
    upstream
        .wait_ready(upstream_addr, "/healthz", Duration::from_secs(20))
        .await?;
    tracing::info!(%upstream_addr, "testkit upstream ready");
    Ok((upstream, upstream_addr))
}

/// Starts `tandem serve` on a free loopback port with one `openai` provider, `testkit`, at `upstream_addr`
/// (`provider_extra` is appended to its table), and waits until it answers; also returns its startup time.
pub(crate) async fn start_tandem(
    exe: &Path,
    dir: &Path,
    upstream_addr: std::net::SocketAddr,
    provider_extra: &str,
) -> anyhow::Result<(Child, std::net::SocketAddr, Duration)> {
    let tandem_addr = procs::free_addr()?;
    let config_path = dir.join("tandem.toml");
    let config = format!(
        "[server]\nlisten = \"{tandem_addr}\"\nstate_dir = {state:?}\n\n[[providers]]\nname = \"testkit\"\nkind = \"openai\"\nbase_url = \"http://{upstream_addr}/v1\"\n{provider_extra}",
        state = dir.join("tandem-state").display().to_string(),
    );
    std::fs::write(&config_path, config).context("writing the tandem config")?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let mut tandem = Child::spawn("tandem", command, dir.join("tandem.log"))?;
    let tandem_startup = tandem
        .wait_ready(tandem_addr, "/healthz", Duration::from_secs(20))
        .await?;
    tracing::info!(%tandem_addr, ?tandem_startup, "tandem ready");
    Ok((tandem, tandem_addr, tandem_startup))
}

/// Reads the CPU time of the gateway processes.
struct CpuClock {
    tandem: u32,
    litellm: Option<u32>,
}

impl CpuClock {
    fn read(&self) -> PerTarget<f64> {
        PerTarget {
            direct: None,
            tandem: procs::cpu_seconds(self.tandem),
            litellm: self.litellm.map(procs::group_cpu_seconds),
        }
    }

    /// CPU seconds each gateway used since `before`.
    fn since(&self, before: &PerTarget<f64>) -> PerTarget<f64> {
        let now = self.read();
        let delta = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        PerTarget {
            direct: None,
            tandem: delta(now.tandem, before.tandem),
            litellm: delta(now.litellm, before.litellm),
        }
    }
}

/// Microseconds per unit, when there were units.
fn per_unit(seconds: f64, units: u64) -> Option<f64> {
    (units > 0).then(|| seconds * 1e6 / units as f64)
}

async fn start_litellm(
    bin: &Path,
    addr: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
    settings: &Settings,
    dir: &Path,
) -> anyhow::Result<(Child, Duration)> {
    let model_list: Vec<_> = settings
        .upstream_models()
        .iter()
        .map(|upstream_model| {
            json!({
                "model_name": scenario::litellm_alias(upstream_model),
                "litellm_params": {
                    "model": format!("openai/{upstream_model}"),
                    "api_base": format!("http://{upstream}/v1"),
                    "api_key": "sk-testkit",
                },
            })
        })
        .collect();
    // JSON is YAML, so the config needs no YAML writer.
    let config = json!({
        "model_list": model_list,
        "general_settings": {"master_key": LITELLM_KEY},
        "litellm_settings": {"callbacks": [], "num_retries": 0, "request_timeout": 600},
        "router_settings": {"disable_cooldowns": true},
    });
    let config_path = dir.join("litellm.yaml");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)
        .context("writing the LiteLLM config")?;
    let mut command = Command::new(bin);
    command
        .arg("--config")
        .arg(&config_path)
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--num_workers", &settings.litellm_workers.to_string()])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let mut child = Child::spawn("litellm", command, dir.join("litellm.log"))?;
    let startup = child
        .wait_ready(addr, "/health/liveliness", Duration::from_secs(180))
        .await?;
    Ok((child, startup))
}

/// Raises the soft open-files limit to the hard limit; the children inherit it.
pub(crate) fn raise_fd_limit(concurrency: u32) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = u64::from(concurrency) * 2 + 512;
    if limit.current.is_some_and(|c| c >= wanted) {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(err) = setrlimit(Resource::Nofile, raised) {
        tracing::warn!(%err, "could not raise the open-files limit");
    }
    let now = getrlimit(Resource::Nofile);
    if now.current.is_some_and(|c| c < wanted) {
        tracing::warn!(limit = ?now.current, wanted, "the open-files limit is low for this concurrency");
    }
}

/// Warning and error lines of a child's log (at most 10, plus the total count).
pub(crate) fn log_problems(child: &Child) -> Vec<String> {
    let text = std::fs::read_to_string(&child.log).unwrap_or_default();
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked"))
        .collect();
    let mut out: Vec<String> = problems.iter().take(10).map(|l| strip_ansi(l)).collect();
    if problems.len() > 10 {
        out.push(format!("… {} lines in all", problems.len()));
    }
    out
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

pub(crate) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

/// Writes `gateway-<date>[-quick].md` and `.json` into `out`.
fn write(out: &Path, results: &Results, markdown: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let date = results
        .machine
        .as_ref()
        .map_or_else(|| machine::utc_now().0, |m| m.date_utc.clone());
    let suffix = if results.settings.quick { "-quick" } else { "" };
    save(out, &format!("gateway-{date}{suffix}"), markdown, results)
}

/// Writes a benchmark's report as `<stem>.md` (the table) and `<stem>.json` (the same numbers) into
/// `out`, creating it; returns both paths.
pub(crate) fn save(
    out: &Path,
    stem: &str,
    markdown: &str,
    results: &impl serde::Serialize,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let markdown_path = out.join(format!("{stem}.md"));
    let json_path = out.join(format!("{stem}.json"));
    std::fs::write(&markdown_path, markdown)
        .with_context(|| format!("writing {}", markdown_path.display()))?;
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    Ok((markdown_path, json_path))
}
