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

use std::future::Future;
use std::sync::Arc;

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
        let mut providers: Vec<Arc<dyn Provider>> = Vec::with_capacity(config.providers.len());
        for provider in &config.providers {
            providers.push(match provider {
                ProviderConfig::Http(http) => Arc::new(HttpProvider::new(http.clone())?),
                // Loads the model (about a second for the default one) before the server listens.
                ProviderConfig::Local(local) => Arc::new(LocalProvider::start(local.clone())?),
            });
        }
        let auth = governance::authenticator(config, &store)?;
        let mut core_config = core_config(config)?;
        if config.dlp.enabled {
            let key = tandem_config::dlp_key(&config.server.state_dir).map_err(Error::Config)?;
            core_config.dlp = Some(tandem_core::DlpConfig {
                redactor: tandem_dlp::Redactor::new(
                    Arc::clone(&config.dlp.scanner),
                    config.dlp.actions.clone(),
                    key,
                ),
                responses: config.dlp.responses,
                restore: config.dlp.restore,
            });
        }
        if config.audit.enabled {
            let audit = &config.audit;
            let options = tandem_audit::Options {
                name: audit.name.clone(),
                checkpoint_every: audit.checkpoint_every,
                fsync: audit.fsync,
                capture: audit.capture,
                retention: (audit.retention_days > 0)
                    .then(|| std::time::Duration::from_secs(audit.retention_days * 86_400)),
                ..tandem_audit::Options::default()
            };
            core_config.audit = Some(Arc::new(tandem_audit::Ledger::open(&audit.dir, options)?));
        }
        core_config
            .ledger
            .import(governance::from_rows(store.load_budget_usage()?));
        if let Some(url) = &config.storage.redis_url {
            use secrecy::ExposeSecret;
            let counters = tandem_counters::RedisCounters::connect(
                url.expose_secret(),
                &config.storage.redis_prefix,
            )
            .await?;
            core_config.shared_counters = Some(tandem_core::SharedCounters {
                counters,
                fail_open: config.storage.redis_fail == tandem_config::FailMode::Open,
            });
        }
        // A policy stored through the admin API (by any replica) is newer than the file's.
        let mut policy_version = 0;
        if let Some(stored) = store.policy_after(0)? {
            match tandem_policy::Policy::parse(&stored.text, &stored.source) {
                Ok(policy) => {
                    core_config.policy = Arc::new(policy);
                    policy_version = stored.version;
                }
                Err(err) => tracing::error!(version = stored.version, error = %err,
                    "stored policy version refused; keeping the configured policy"),
            }
        }
        let core = Core::new(providers, core_config, Arc::clone(&store))?;
        Ok(AppState {
            core: Arc::new(core),
            store,
            auth: Arc::new(auth),
            admin_token: config.auth.admin_token.clone(),
            policy_file: config.policy_file.clone(),
            policy_version: Arc::new(std::sync::atomic::AtomicI64::new(policy_version)),
            max_body_bytes: config.server.max_body_bytes,
            metrics_token: config.telemetry.metrics_token.clone(),
            exported: Arc::new(metrics::Exported::new(&config.budgets, &config.limits)),
            trace_context: None,
        })
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

/// The pipeline's part of the configuration.
fn core_config(config: &Config) -> Result<CoreConfig> {
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
    let ledger = tandem_budget::Ledger::new(config.budgets.clone(), config.limits.clone())
        .map_err(Error::Budget)?;
    Ok(CoreConfig {
        tiers,
        aliases,
        router,
        session_ttl,
        max_sessions,
        policy: Arc::clone(&config.policy),
        ledger,
        prices: tandem_budget::Prices::new(config.prices.clone()),
        dlp: None,
        audit: None,
        shared_counters: None,
    })
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
        .fallback(handler::not_found)
        .with_state(state)
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

/// Serve on `listener` until `shutdown` resolves, then flush the records.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let core = Arc::clone(&state.core);
    let store = Arc::clone(&state.store);
    let background = tokio::spawn(governance::background(
        Arc::clone(&core),
        Arc::clone(&store),
        state.policy_file.clone(),
        Arc::clone(&state.policy_version),
    ));
    let upkeep = tokio::spawn(async {
        let mut every = tokio::time::interval(metrics::UPKEEP_EVERY);
        loop {
            every.tick().await;
            if let Some(handle) = metrics::handle() {
                handle.run_upkeep();
            }
        }
    });
    let served = serve::serve(listener, app(state), serve::Timeouts::DEFAULT, shutdown).await;
    background.abort();
    upkeep.abort();
    governance::save_budgets(&core, &store);
    served.map_err(Error::Serve)?;
    core.flush()?;
    Ok(())
}
