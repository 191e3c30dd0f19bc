//! The HTTP boundary of `tandem serve`: OpenAI Chat Completions, OpenAI Responses and Anthropic Messages
//! in front of any configured upstream, plus `/v1/models`, `/healthz` and `/readyz`.
//!
//! Each client API is a [`format::ClientFormat`]; one generic handler decodes the body strictly, runs the
//! pipeline in `tandem-core`, and encodes the answer (JSON, or SSE chunk by chunk) in the client's format.
//! Errors become the client API's own error shape in one place ([`error::ApiError`]).
//! Architecture invariant: the only crate that knows axum and builds HTTP responses.

mod error;
mod format;
mod handler;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tandem_config::Config;
use tandem_core::{Alias, BreakerConfig, Core, CoreConfig, TargetConfig, TierConfig};
use tandem_providers::{HttpProvider, Provider};
use tandem_store::Store;
use tokio::net::TcpListener;

pub use error::{Error, Result};

/// Shared state of all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    core: Arc<Core>,
    max_body_bytes: usize,
}

impl AppState {
    /// Build the providers, open the store and assemble the pipeline from a validated config.
    pub fn from_config(config: &Config) -> Result<AppState> {
        let store = Arc::new(Store::open(&config.server.state_dir)?);
        let mut providers: Vec<Arc<dyn Provider>> = Vec::with_capacity(config.providers.len());
        for provider in &config.providers {
            providers.push(Arc::new(HttpProvider::new(provider.clone())?));
        }
        let core = Core::new(providers, core_config(config), store)?;
        Ok(AppState {
            core: Arc::new(core),
            max_body_bytes: config.server.max_body_bytes,
        })
    }

    /// The pipeline (for flushing records at shutdown and in tests).
    pub fn core(&self) -> &Core {
        &self.core
    }
}

/// The pipeline's part of the configuration.
fn core_config(config: &Config) -> CoreConfig {
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
    }
}

/// The router with every route.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handler::chat))
        .route("/v1/responses", post(handler::responses))
        .route("/v1/messages", post(handler::messages))
        .route("/v1/models", get(handler::models))
        .route("/healthz", get(handler::healthz))
        .route("/readyz", get(handler::readyz))
        .fallback(handler::not_found)
        .with_state(state)
}

/// Serve on `listener` until `shutdown` resolves, then flush the records.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let core = Arc::clone(&state.core);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)?;
    core.flush()?;
    Ok(())
}
