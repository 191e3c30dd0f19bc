//! The HTTP boundary of `tandem serve`: OpenAI Chat Completions, OpenAI Responses and Anthropic Messages
//! in front of any configured upstream, plus `/v1/models`, `/healthz`, `/readyz` and `/metrics` (Prometheus).
//!
//! Each client API is a [`format::ClientFormat`]; one generic handler decodes the body strictly, runs the
//! pipeline in `tandem-core`, and encodes the answer (JSON, or SSE chunk by chunk) in the client's format.
//! Errors become the client API's own error shape in one place ([`error::ApiError`]).
//! Architecture invariant: the only crate that knows axum and builds HTTP responses.

pub mod admin;
mod changes;
mod error;
mod format;
pub mod governance;
mod handler;
pub mod metrics;
pub mod serve;
mod ui;
pub mod workers;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use axum::Router;
use axum::routing::{get, post};
use tandem_config::Config;
use tandem_config::ProviderConfig;
use tandem_core::{Alias, BreakerConfig, Core, CoreConfig, TargetConfig, TierConfig};
use tandem_local::LocalProvider;
use tandem_providers::{HttpProvider, Provider};
use tandem_store::Store;
use tokio::net::TcpListener;

pub use error::{Error, Result};

/// Shared state of all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    core: Arc<Core>,
    store: Arc<Store>,
    auth: Arc<tandem_auth::Authenticator>,
    admin_token: Option<secrecy::SecretString>,
    policy_file: Option<std::path::PathBuf>,
    /// The stored policy version in force (0: none stored yet), shared with the reload task.
    policy_version: Arc<std::sync::atomic::AtomicI64>,
    max_body_bytes: usize,
    metrics_token: Option<secrecy::SecretString>,
    exported: Arc<metrics::Exported>,
    trace_context: Option<TraceContext>,
    /// The configuration this state was built from; [`AppState::reload`] compares the next one with it.
    config: Arc<Config>,
    /// The providers, in the configuration's order (a reload keeps local models whose settings stay).
    providers: Providers,
    /// Budget and rate-limit counters shared with other replicas (Redis), kept across reloads.
    shared_counters: Option<tandem_core::SharedCounters>,
    /// Set when shutdown begins, for every state built since: `/readyz` answers 503.
    draining: Arc<AtomicBool>,
    /// The dashboard's last ledger verification, kept across reloads.
    ui: Arc<ui::Cache>,
}

/// The providers of a state; `dyn Provider` has no `Debug`.
#[derive(Clone)]
struct Providers(Vec<Arc<dyn Provider>>);

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| p.name()))
            .finish()
    }
}

/// What [`assemble`] builds a state from besides its configuration: the pieces opened once per process
/// (store, audit ledger, shared counters) and the ones a reload may carry over.
struct Parts {
    store: Arc<Store>,
    audit: Option<Arc<tandem_audit::Ledger>>,
    shared_counters: Option<tandem_core::SharedCounters>,
    providers: Vec<Arc<dyn Provider>>,
    ledger: tandem_budget::Ledger,
    policy: Arc<tandem_policy::Policy>,
    policy_version: Arc<AtomicI64>,
    draining: Arc<AtomicBool>,
    trace_context: Option<TraceContext>,
    ui: Arc<ui::Cache>,
}

/// Sets the parent of each request's span from the request's headers (W3C `traceparent`). Installed by the binary
/// that owns the tracing subscriber, so that this crate needs no OpenTelemetry.
#[derive(Clone)]
pub struct TraceContext(Arc<SetParent>);

/// What a [`TraceContext`] runs for each request.
type SetParent = dyn Fn(&axum::http::HeaderMap, &tracing::Span) + Send + Sync;

impl TraceContext {
    /// Wrap the function that sets a span's parent from request headers.
    pub fn new(
        set_parent: impl Fn(&axum::http::HeaderMap, &tracing::Span) + Send + Sync + 'static,
    ) -> TraceContext {
        TraceContext(Arc::new(set_parent))
    }
}

impl std::fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TraceContext")
    }
}

impl AppState {
    /// Build the providers, open the store (SQLite, or PostgreSQL with migrations applied), connect the
    /// shared counters (Redis) when configured and assemble the pipeline from a validated config.
    pub async fn from_config(config: &Config) -> Result<AppState> {
        // Before the first exchange, so that the pipeline's metric handles reach the exporter.
        metrics::handle();
        let store = Arc::new(open_store(config, true).await?);
        let providers = build_providers(config, None)?;
        let audit = open_audit(&config.audit, &config.storage)?;
        let ledger = budget_ledger(config)?;
        ledger.import(governance::from_rows(store.load_budget_usage()?));
        let shared_counters = connect_counters(&config.storage).await?;
        // The newest stored policy version (an upload through any replica's admin API) is in force,
        // unless the policy file was changed after it was stored.
        let mut policy = Arc::clone(&config.policy);
        let mut policy_version = 0;
        let file_changed_ms = config
            .policy_file
            .as_deref()
            .and_then(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let stored = store.policy_after(0)?;
        if let (Some(stored), Some(changed)) = (&stored, file_changed_ms)
            && changed > stored.created_at_ms
        {
            tracing::info!(
                version = stored.version,
                "the policy file is newer than the stored policy version; the file is in force"
            );
            // Stored as the newest version, so replicas that follow versions take it up too.
            let path = config
                .policy_file
                .as_deref()
                .unwrap_or(std::path::Path::new(""));
            let version = std::sync::atomic::AtomicI64::new(stored.version);
            if let Ok(text) = std::fs::read_to_string(path) {
                governance::store_policy(&store, &text, &path.display().to_string(), &version);
            }
            policy_version = version.load(std::sync::atomic::Ordering::SeqCst);
        } else if let Some(stored) = stored {
            match tandem_policy::Policy::parse(&stored.text, &stored.source) {
                Ok(parsed) => {
                    policy = Arc::new(parsed);
                    policy_version = stored.version;
                }
                Err(err) => tracing::error!(version = stored.version, error = %err,
                    "stored policy version refused; keeping the configured policy"),
            }
        }
        assemble(
            config,
            Parts {
                store,
                audit,
                shared_counters,
                providers,
                ledger,
                policy,
                policy_version: Arc::new(AtomicI64::new(policy_version)),
                draining: Arc::new(AtomicBool::new(false)),
                trace_context: None,
                ui: Arc::default(),
            },
        )
    }

    /// The state for a new configuration of the running server (SIGHUP, a changed config file).
    ///
    /// Providers, tiers, router, aliases, budget and rate-limit rules, prices, DLP, authentication, the
    /// admin and metrics tokens and the body limit are rebuilt from `config`. Kept from this state: the store,
    /// the audit ledger (one writer per directory), the shared counters, local models whose settings did
    /// not change, and the policy in force unless `[policy] file` names another file (whose policy is then
    /// put in force and stored as the newest version). With unchanged budgets and limits the budget ledger
    /// itself is kept (spend, reservations in flight, rate windows); otherwise the new one starts from the
    /// old one's settled spend.
    ///
    /// Refused, with the settings named, when `config` changes what only a restart can: the listen address,
    /// the state directory, `[storage]`, `[audit]` or how traces and logs are exported.
    pub fn reload(&self, config: &Config) -> Result<AppState> {
        let fixed = restart_only(&self.config, config);
        if !fixed.is_empty() {
            return Err(Error::Config(tandem_config::Error::Invalid {
                source_name: source_name(&config.source),
                message: format!("{} cannot change without a restart", fixed.join(", ")),
            }));
        }
        let ledger = if config.budgets == self.config.budgets && config.limits == self.config.limits
        {
            self.core.ledger().clone()
        } else {
            let ledger = budget_ledger(config)?;
            ledger.import(self.core.ledger().export());
            ledger
        };
        let policy = match &config.policy_file {
            Some(path) if config.policy_file != self.config.policy_file => {
                if let Ok(text) = std::fs::read_to_string(path) {
                    governance::store_policy(
                        &self.store,
                        &text,
                        &path.display().to_string(),
                        &self.policy_version,
                    );
                }
                Arc::clone(&config.policy)
            }
            _ => self.core.policy(),
        };
        let providers = build_providers(config, Some(self))?;
        assemble(
            config,
            Parts {
                store: Arc::clone(&self.store),
                audit: self.core.audit_ledger().cloned(),
                shared_counters: self.shared_counters.clone(),
                providers,
                ledger,
                policy,
                policy_version: Arc::clone(&self.policy_version),
                draining: Arc::clone(&self.draining),
                trace_context: self.trace_context.clone(),
                ui: Arc::clone(&self.ui),
            },
        )
    }

    /// Continue incoming traces: `set_parent` gets each request's headers and span before the span starts.
    pub fn with_trace_context(mut self, trace_context: TraceContext) -> AppState {
        self.trace_context = Some(trace_context);
        self
    }

    /// The pipeline (for flushing records at shutdown and in tests).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The embedded store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Authenticate a credential and run routing, policy and budget checks for `req` without calling
    /// an upstream: everything governance does to a request, for benchmarks and dry runs.
    pub async fn preflight(
        &self,
        bearer: Option<&str>,
        req: &tandem_protocol::ChatRequest,
    ) -> std::result::Result<tandem_core::RouteInfo, String> {
        let principal = self
            .auth
            .authenticate(bearer, governance::now_ms())
            .await
            .map_err(|e| e.to_string())?;
        let hints = tandem_core::Hints {
            principal: Some(tandem_policy::Principal {
                user: principal.user,
                groups: principal.groups,
                project: principal.project,
                key_id: principal.key_id,
            }),
            ..tandem_core::Hints::default()
        };
        self.core
            .preflight(req, &hints, "chat")
            .await
            .map_err(|e| e.to_string())
    }
}

/// A state: the pipeline, authentication and the handlers' settings from `config`, on `parts`.
fn assemble(config: &Config, parts: Parts) -> Result<AppState> {
    let auth = governance::authenticator(config, &parts.store)?;
    let mut core_config = core_config(config, parts.policy, parts.ledger);
    core_config.dlp = dlp_config(config)?;
    core_config.audit = parts.audit;
    core_config.shared_counters = parts.shared_counters.clone();
    let core = Core::new(
        parts.providers.clone(),
        core_config,
        Arc::clone(&parts.store),
    )?;
    Ok(AppState {
        core: Arc::new(core),
        store: parts.store,
        auth: Arc::new(auth),
        admin_token: config.auth.admin_token.clone(),
        policy_file: config.policy_file.clone(),
        policy_version: parts.policy_version,
        max_body_bytes: config.server.max_body_bytes,
        metrics_token: config.telemetry.metrics_token.clone(),
        exported: Arc::new(metrics::Exported::new(&config.budgets, &config.limits)),
        trace_context: parts.trace_context,
        config: Arc::new(config.clone()),
        providers: Providers(parts.providers),
        shared_counters: parts.shared_counters,
        draining: parts.draining,
        ui: parts.ui,
    })
}

/// The configured providers. A reload passes the running state, whose local models are kept when their
/// settings did not change, so that a model is not loaded a second time.
fn build_providers(config: &Config, running: Option<&AppState>) -> Result<Vec<Arc<dyn Provider>>> {
    let mut providers: Vec<Arc<dyn Provider>> = Vec::with_capacity(config.providers.len());
    for provider in &config.providers {
        providers.push(match provider {
            ProviderConfig::Http(http) => Arc::new(HttpProvider::new(http.clone())?),
            ProviderConfig::Local(local) => {
                let kept = running.and_then(|state| {
                    state
                        .config
                        .providers
                        .iter()
                        .zip(&state.providers.0)
                        .find_map(|(old, built)| match old {
                            ProviderConfig::Local(old) if old == local => Some(Arc::clone(built)),
                            _ => None,
                        })
                });
                match kept {
                    Some(kept) => kept,
                    // Loads the model (about a second for the default one) before the server listens.
                    None => Arc::new(LocalProvider::start(local.clone())?),
                }
            }
        });
    }
    Ok(providers)
}

/// The audit ledger, when `[audit]` enables it: in PostgreSQL when `[storage] postgres_url` is set (shared
/// by every replica, signed with the key in the audit directory), else in the audit directory. Opening a
/// directory ledger takes its lock: once per process.
fn open_audit(
    audit: &tandem_config::AuditSettings,
    storage: &tandem_config::StorageSettings,
) -> Result<Option<Arc<tandem_audit::Ledger>>> {
    if !audit.enabled {
        return Ok(None);
    }
    let options = tandem_audit::Options {
        name: audit.name.clone(),
        checkpoint_every: audit.checkpoint_every,
        fsync: audit.fsync,
        capture: audit.capture,
        retention: (audit.retention_days > 0)
            .then(|| std::time::Duration::from_secs(audit.retention_days * 86_400)),
        ..tandem_audit::Options::default()
    };
    let ledger = match &storage.postgres_url {
        Some(url) => {
            use secrecy::ExposeSecret;
            tandem_audit::Ledger::open_postgres(url.expose_secret(), &audit.dir, options)?
        }
        None => tandem_audit::Ledger::open(&audit.dir, options)?,
    };
    Ok(Some(Arc::new(ledger)))
}

/// The budget counters shared with other replicas, when `[storage] redis_url` is set.
async fn connect_counters(
    storage: &tandem_config::StorageSettings,
) -> Result<Option<tandem_core::SharedCounters>> {
    let Some(url) = &storage.redis_url else {
        return Ok(None);
    };
    use secrecy::ExposeSecret;
    let counters =
        tandem_counters::RedisCounters::connect(url.expose_secret(), &storage.redis_prefix).await?;
    Ok(Some(tandem_core::SharedCounters {
        counters,
        fail_open: storage.redis_fail == tandem_config::FailMode::Open,
    }))
}

/// The budget ledger of `config`'s budgets and limits, empty.
fn budget_ledger(config: &Config) -> Result<tandem_budget::Ledger> {
    tandem_budget::Ledger::new(config.budgets.clone(), config.limits.clone()).map_err(Error::Budget)
}

/// The DLP stage, when `[dlp]` enables it.
fn dlp_config(config: &Config) -> Result<Option<tandem_core::DlpConfig>> {
    if !config.dlp.enabled {
        return Ok(None);
    }
    let key = tandem_config::dlp_key(&config.server.state_dir).map_err(Error::Config)?;
    Ok(Some(tandem_core::DlpConfig {
        redactor: tandem_dlp::Redactor::new(
            Arc::clone(&config.dlp.scanner),
            config.dlp.actions.clone(),
            key,
        ),
        responses: config.dlp.responses,
        restore: config.dlp.restore,
    }))
}

/// The settings `next` changes that only a restart applies: what is bound or opened once per process
/// (listen address, state directory, `[storage]`, `[audit]`) and the log and trace export the binary sets up.
fn restart_only(running: &Config, next: &Config) -> Vec<&'static str> {
    use secrecy::ExposeSecret;
    let secret =
        |s: &Option<secrecy::SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
    let (old, new) = (&running.storage, &next.storage);
    let (old_t, new_t) = (&running.telemetry, &next.telemetry);
    [
        ("server.listen", running.server.listen == next.server.listen),
        (
            "server.state_dir",
            running.server.state_dir == next.server.state_dir,
        ),
        (
            "storage.postgres_url",
            secret(&old.postgres_url) == secret(&new.postgres_url),
        ),
        (
            "storage.postgres_pool",
            old.postgres_pool == new.postgres_pool,
        ),
        (
            "storage.redis_url",
            secret(&old.redis_url) == secret(&new.redis_url),
        ),
        ("storage.redis_prefix", old.redis_prefix == new.redis_prefix),
        ("storage.redis_fail", old.redis_fail == new.redis_fail),
        ("[audit]", running.audit == next.audit),
        (
            "telemetry.otlp_endpoint",
            old_t.otlp_endpoint == new_t.otlp_endpoint,
        ),
        (
            "telemetry.service_name",
            old_t.service_name == new_t.service_name,
        ),
        (
            "telemetry.sample_ratio",
            old_t.sample_ratio == new_t.sample_ratio,
        ),
        ("telemetry.log_format", old_t.log_format == new_t.log_format),
    ]
    .into_iter()
    .filter_map(|(name, same)| (!same).then_some(name))
    .collect()
}

/// How errors name a configuration's source.
fn source_name(source: &tandem_config::Source) -> String {
    match source {
        tandem_config::Source::File(path) => path.display().to_string(),
        tandem_config::Source::Embedded => "embedded default".to_owned(),
    }
}

/// The pipeline's part of the configuration, with the policy and budget ledger to put in force.
fn core_config(
    config: &Config,
    policy: Arc<tandem_policy::Policy>,
    ledger: tandem_budget::Ledger,
) -> CoreConfig {
    let tiers = config
        .tiers
        .iter()
        .map(|tier| TierConfig {
            name: tier.name.clone(),
            aliases: tier.aliases.clone(),
            fallback_tier: tier.fallback_tier.clone(),
            targets: tier
                .targets
                .iter()
                .map(|t| TargetConfig {
                    provider: t.provider.clone(),
                    model: t.model.clone(),
                    weight: t.weight,
                    retries: t.retries,
                    first_token_timeout: t.first_token_timeout,
                    breaker: BreakerConfig {
                        failures: t.breaker_failures,
                        cooldown: t.breaker_cooldown,
                    },
                })
                .collect(),
        })
        .collect();
    let aliases = config
        .models
        .iter()
        .map(|m| Alias {
            name: m.name.clone(),
            provider: m.provider.clone(),
            model: m.model.clone(),
        })
        .collect();
    let (router, session_ttl, max_sessions) = match &config.router {
        Some(r) => (Some(r.router.clone()), r.session_ttl, r.max_sessions),
        None => (None, std::time::Duration::from_secs(3600), 100_000),
    };
    CoreConfig {
        tiers,
        aliases,
        router,
        session_ttl,
        max_sessions,
        policy,
        ledger,
        prices: tandem_budget::Prices::new(config.prices.clone()),
        dlp: None,
        audit: None,
        shared_counters: None,
    }
}

/// The configured store: PostgreSQL when `[storage] postgres_url` is set, else SQLite under the state
/// directory. With `migrate`, pending migrations are applied; without it, a PostgreSQL schema that needs
/// them is refused.
pub async fn open_store(config: &Config, migrate: bool) -> Result<Store> {
    match &config.storage.postgres_url {
        None => Ok(Store::open(&config.server.state_dir)?),
        Some(url) => {
            use secrecy::ExposeSecret;
            let url = url.expose_secret().to_owned();
            let pool = config.storage.postgres_pool;
            // Connecting blocks for up to the connect timeout: keep it off the async workers.
            let (store, report) =
                tokio::task::spawn_blocking(move || Store::postgres(&url, pool, migrate))
                    .await
                    .map_err(|err| {
                        Error::Store(tandem_store::Error::Postgres(format!(
                            "connecting failed: {err}"
                        )))
                    })??;
            if !report.applied.is_empty() {
                tracing::info!(
                    from = report.from,
                    to = report.to,
                    "postgres schema migrated"
                );
            }
            Ok(store)
        }
    }
}

/// The router with every route.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handler::chat))
        .route("/v1/responses", post(handler::responses))
        .route("/v1/messages", post(handler::messages))
        .route("/v1/models", get(handler::models))
        .route("/v1/tandem/changes", post(changes::record))
        .route("/healthz", get(handler::healthz))
        .route("/readyz", get(handler::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi))
        .route("/admin/keys", get(admin::list_keys).post(admin::create_key))
        .route("/admin/keys/{id}", axum::routing::delete(admin::revoke_key))
        .route("/admin/budgets", get(admin::budgets))
        .route(
            "/admin/policy",
            get(admin::get_policy).put(admin::put_policy),
        )
        .route("/ui", get(ui::page))
        .route("/ui/login", post(ui::login))
        .route("/ui/logout", post(ui::logout))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::styles))
        .route("/ui/api/dashboard", get(ui::dashboard))
        .route("/ui/api/entry/{index}", get(ui::entry))
        .fallback(handler::not_found)
        // A safety net: no handler should panic (the lints forbid it), but a dependency might. The
        // client gets a 500 in the error shape and the connection stays usable.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// The answer to a request whose handler panicked.
fn panicked(detail: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let detail = detail
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| detail.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(detail, "a request handler panicked");
    admin::error(
        tandem_protocol::ErrorKind::Internal,
        "internal error: the request failed; the server log has the details",
    )
}

/// The OpenAPI document of every route [`app`] serves (`openapi.json`, checked against the router by the tests).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /openapi.json`, unauthenticated like `/healthz`.
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Serve on `listener` until `shutdown` resolves, then drain (see [`run_with`]) and flush the records.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (_, reloads) = tokio::sync::mpsc::channel(1);
    run_with(listener, state, shutdown, reloads).await
}

/// Serve on `listener`, switching to each configuration `reloads` delivers, until `shutdown` resolves.
///
/// A configuration [`AppState::reload`] refuses is logged and the one in force stays. New connections, and
/// new requests on open ones, are served by the newest state; requests and streams in flight finish on the
/// state they started on.
///
/// When `shutdown` resolves, `/readyz` answers 503 and no connection is accepted any more; requests and
/// streams in flight may finish within `[server] drain_timeout_s`. Connections still open then are closed,
/// which drops their requests and streams: the pipeline records each as cancelled and journals its audit
/// entry as it is dropped. Then budget spend is saved and the records and the audit ledger are flushed.
pub async fn run_with(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut reloads: tokio::sync::mpsc::Receiver<Config>,
) -> Result<()> {
    // PostgreSQL waits block the thread they run on: see `workers`.
    let waits_on_network = state.store.engine() == "postgres"
        || state
            .core
            .audit_ledger()
            .is_some_and(|ledger| ledger.is_remote());
    let (states, current) = tokio::sync::watch::channel(state.clone());
    let (routes, served_routes) = tokio::sync::watch::channel(app(state));
    let background = tokio::spawn(governance::background(current.clone()));
    let upkeep = tokio::spawn(async {
        let mut every = tokio::time::interval(metrics::UPKEEP_EVERY);
        loop {
            every.tick().await;
            if let Some(handle) = metrics::handle() {
                handle.run_upkeep();
            }
        }
    });
    let reloader = tokio::spawn(async move {
        while let Some(config) = reloads.recv().await {
            let running = states.borrow().clone();
            match running.reload(&config) {
                Ok(next) => {
                    routes.send_modify(|router| *router = app(next.clone()));
                    states.send_replace(next);
                    tracing::info!(config = %source_name(&config.source), "configuration reloaded");
                }
                Err(err) => {
                    tracing::error!(error = %err, "configuration refused; keeping the one in force");
                }
            }
        }
    });
    let draining = current.clone();
    let stop = async move {
        shutdown.await;
        let state = draining.borrow().clone();
        state.draining.store(true, Ordering::SeqCst);
        Some(state.config.server.drain_timeout)
    };
    let workers = match workers::Workers::wanted(waits_on_network) {
        Some(count) => Some(workers::Workers::start(count).map_err(Error::Serve)?),
        None => None,
    };
    tracing::info!(
        connection_workers = workers.as_ref().map_or(0, workers::Workers::len),
        "serving"
    );
    let served = serve::serve_with(
        listener,
        served_routes,
        serve::Timeouts::DEFAULT,
        stop,
        workers.as_ref(),
    )
    .await;
    // `workers` is dropped last, at the end: work the last answers left on them (a budget settlement sent to
    // Redis) has the time of the budget save and the flush below to finish.
    reloader.abort();
    background.abort();
    upkeep.abort();
    let state = current.borrow().clone();
    governance::save_budgets(&state.core, &state.store);
    served.map_err(Error::Serve)?;
    // The store and the audit ledger are shared by every state a reload built.
    state.core.flush()?;
    tracing::info!("stopped; records and audit ledger flushed");
    Ok(())
}

#[cfg(test)]
mod panic_tests {
    #[test]
    fn a_panic_becomes_a_500_in_the_error_shape() {
        let response = super::panicked(Box::new("boom".to_owned()));
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}
