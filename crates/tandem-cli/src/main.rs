//! The `tandem` binary: command-line parsing, logging setup, and dispatch to the library crates.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: per-token allocations on the streaming path are cheaper, and memory
/// freed after a burst of streams goes back to the system (glibc kept ~75 MB after 1,000 streams).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tandem: a governed two-pace gateway for AI coding assistants.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the OpenAI Chat Completions, OpenAI Responses and Anthropic Messages APIs.
    Serve {
        /// Config file; defaults to $TANDEM_CONFIG, then ./tandem.toml, then the embedded default.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding the config file (e.g. 127.0.0.1:4000).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run the scripted test upstream (OpenAI- and Anthropic-compatible) used by tests and benchmarks.
    Testkit {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Default streaming pace in tokens per second (0 = full speed).
        #[arg(long, default_value_t = 0.0)]
        tokens_per_sec: f64,
    },
    /// Benchmark the test upstream directly, through tandem and through LiteLLM; print and save the report.
    Bench(tandem_bench::Args),
    /// Explain and evaluate the `auto` router.
    Route {
        #[command(subcommand)]
        action: RouteAction,
    },
}

#[derive(Debug, Subcommand)]
enum RouteAction {
    /// Print the routing decision for a request body (Chat Completions, Responses or Messages JSON) and why.
    Explain {
        /// The request body, a JSON file.
        request: PathBuf,
        /// Config whose [tiers] and [router] to use; defaults as for `serve`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Replay a trace of labelled tasks: cost, latency and quality for always-live, always-deep, random and
    /// the router, with APGR and the deep share needed for 50% and 80% of the quality gap.
    Eval {
        /// The trace, JSON lines (see bench/route/README.md).
        trace: PathBuf,
        /// Config whose [tiers] and [router] to use; defaults as for `serve`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON instead of a Markdown table.
        #[arg(long)]
        json: bool,
        /// Also train a logistic scorer on the trace (label: deep solves what live does not) and write its
        /// weights here, for `[router] scorer = "..."`.
        #[arg(long)]
        train: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config, listen } => serve(config, listen).await,
        Command::Testkit {
            listen,
            tokens_per_sec,
        } => {
            let config = tandem_testkit::Config {
                listen,
                tokens_per_sec,
                default_tokens: 16,
            };
            tracing::info!(%listen, "tandem testkit listening");
            tandem_testkit::run(config, shutdown_signal())
                .await
                .context("test upstream failed")
        }
        Command::Bench(args) => bench(args).await,
        Command::Route { action } => route(action),
    }
}

/// The router of a config's [tiers] and [router], or the default rules on tiers `live` and `deep`.
fn router_from(config: Option<&std::path::Path>) -> anyhow::Result<tandem_router::Router> {
    let env = |name: &str| std::env::var(name).ok();
    let loaded = tandem_config::load(config, &env).context("loading configuration")?;
    let router_config = match loaded.router {
        Some(settings) => settings.router,
        None => tandem_router::RouterConfig::new("live", "deep"),
    };
    tandem_router::Router::new(router_config).context("building the router")
}

fn route(action: RouteAction) -> anyhow::Result<()> {
    match action {
        RouteAction::Explain { request, config } => {
            let router = router_from(config.as_deref())?;
            let body = std::fs::read(&request)
                .with_context(|| format!("reading {}", request.display()))?;
            let text = tandem_router::explain_request(&body, &router)
                .with_context(|| format!("explaining {}", request.display()))?;
            print_text(&text);
        }
        RouteAction::Eval {
            trace,
            config,
            json,
            train,
        } => {
            let router = router_from(config.as_deref())?;
            let text = std::fs::read_to_string(&trace)
                .with_context(|| format!("reading {}", trace.display()))?;
            let report = tandem_router::eval_file(&text, &router)
                .with_context(|| format!("evaluating {}", trace.display()))?;
            if json {
                print_text(&serde_json::to_string_pretty(&report).context("encoding the report")?);
            } else {
                print_text(&report.to_markdown());
            }
            if let Some(out) = train {
                let entries = tandem_router::eval::parse_trace(&text)?;
                let examples: Vec<_> = entries
                    .iter()
                    .map(|e| (e.features(), e.deep_needed()))
                    .collect();
                let scorer = tandem_router::LogisticScorer::train(&examples, 2000, 0.5, 0.001);
                std::fs::write(&out, scorer.to_json())
                    .with_context(|| format!("writing {}", out.display()))?;
                tracing::info!(path = %out.display(), examples = examples.len(), "wrote scorer weights");
            }
        }
    }
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the route commands print their answer")]
fn print_text(text: &str) {
    println!("{text}");
}

async fn bench(args: tandem_bench::Args) -> anyhow::Result<()> {
    let report = tandem_bench::run(args).await?;
    print_report(&report);
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the benchmark prints its table")]
fn print_report(report: &tandem_bench::Report) {
    println!("{}", report.markdown);
    println!(
        "Wrote {} and {}",
        report.markdown_path.display(),
        report.json_path.display()
    );
}

async fn serve(config: Option<PathBuf>, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let mut config =
        tandem_config::load(config.as_deref(), &env).context("loading configuration")?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let state = tandem_gateway::AppState::from_config(&config).context("starting the gateway")?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let source = match &config.source {
        tandem_config::Source::File(path) => path.display().to_string(),
        tandem_config::Source::Embedded => "embedded default".to_owned(),
    };
    tracing::info!(%addr, config = %source, state_dir = %config.server.state_dir.display(),
        upstream = %config.providers.first().map_or("", |p| p.base_url.as_str()), "tandem serve listening");
    tandem_gateway::run(listener, state, shutdown_signal())
        .await
        .context("gateway failed")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
