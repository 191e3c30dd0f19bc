//! The governed pipeline: resolve the model to a provider, call it, meter the answer, record the exchange.
//!
//! Both the gateway and (later) the agent go through [`Core`], so every exchange, whatever its client API,
//! ends as exactly one [`RequestRecord`]: answered, failed, rejected before routing, or cut off by the client.
//! Architecture invariant: no HTTP server types here; the gateway owns the wire, this crate owns the flow.

mod error;
mod meter;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tandem_protocol::{ChatRequest, ChatResponse, ErrorKind, Usage};
use tandem_providers::Provider;
use tandem_store::{Outcome, RequestRecord, Store};

pub use error::{Error, Result};
pub use meter::MeteredStream;

/// Which client API an exchange came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI Chat Completions.
    Chat,
    /// OpenAI Responses.
    Responses,
    /// Anthropic Messages.
    Messages,
}

impl Api {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Responses => "responses",
            Api::Messages => "messages",
        }
    }
}

/// One client exchange in flight: its id, API and start time.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Tandem's request id (also sent to the client as `x-request-id`).
    pub id: String,
    /// The client API.
    pub api: Api,
    /// When the request arrived.
    pub started: Instant,
    /// Unix milliseconds at arrival.
    pub started_at_ms: i64,
}

impl Exchange {
    /// Start an exchange now.
    pub fn start(id: String, api: Api) -> Self {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Exchange {
            id,
            api,
            started: Instant::now(),
            started_at_ms,
        }
    }

    /// Unix seconds at arrival.
    pub fn created(&self) -> u64 {
        u64::try_from(self.started_at_ms / 1000).unwrap_or(0)
    }
}

/// Where a request goes.
#[derive(Clone)]
pub struct Route {
    /// The provider.
    pub provider: Arc<dyn Provider>,
    /// The model name sent upstream.
    pub upstream_model: String,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("provider", &self.provider.name())
            .field("upstream_model", &self.upstream_model)
            .finish()
    }
}

/// A model alias as the core needs it.
#[derive(Clone, Debug)]
pub struct Alias {
    /// The name clients send.
    pub name: String,
    /// The provider that serves it.
    pub provider: String,
    /// The upstream model name.
    pub model: String,
}

/// The pipeline. Shared by all requests.
pub struct Core {
    providers: Vec<Arc<dyn Provider>>,
    by_name: HashMap<String, usize>,
    aliases: HashMap<String, (usize, String)>,
    alias_names: Vec<String>,
    store: Arc<Store>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("providers", &self.by_name.keys().collect::<Vec<_>>())
            .field("aliases", &self.alias_names)
            .finish()
    }
}

impl Core {
    /// Build the pipeline. The first provider serves model names that match neither an alias nor `provider/…`.
    pub fn new(
        providers: Vec<Arc<dyn Provider>>,
        aliases: &[Alias],
        store: Arc<Store>,
    ) -> Result<Core> {
        if providers.is_empty() {
            return Err(Error::NoProviders);
        }
        let by_name: HashMap<String, usize> = providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name().to_owned(), i))
            .collect();
        let mut map = HashMap::new();
        for alias in aliases {
            let Some(&index) = by_name.get(&alias.provider) else {
                return Err(Error::UnknownProvider(alias.provider.clone()));
            };
            map.insert(alias.name.clone(), (index, alias.model.clone()));
        }
        Ok(Core {
            providers,
            by_name,
            aliases: map,
            alias_names: aliases.iter().map(|a| a.name.clone()).collect(),
            store,
        })
    }

    /// Model names to list on `/v1/models`: the aliases, then `provider/*` for each provider.
    pub fn model_names(&self) -> Vec<String> {
        let mut names = self.alias_names.clone();
        names.extend(self.providers.iter().map(|p| format!("{}/*", p.name())));
        names
    }

    /// Resolve a client model name: an alias, then `provider/model`, then the first provider as is.
    pub fn resolve(&self, model: &str) -> Result<Route> {
        if model.is_empty() {
            return Err(Error::EmptyModel);
        }
        if let Some((index, upstream)) = self.aliases.get(model) {
            return Ok(self.route(*index, upstream));
        }
        if let Some((provider, upstream)) = model.split_once('/')
            && let Some(&index) = self.by_name.get(provider)
        {
            if upstream.is_empty() {
                return Err(Error::EmptyModel);
            }
            return Ok(self.route(index, upstream));
        }
        Ok(self.route(0, model))
    }

    fn route(&self, index: usize, upstream_model: &str) -> Route {
        Route {
            provider: Arc::clone(&self.providers[index]),
            upstream_model: upstream_model.to_owned(),
        }
    }

    /// Whether the embedded store answers.
    pub fn ready(&self) -> Result<()> {
        self.store.ping().map_err(Error::Store)
    }

    /// Wait until all records so far are on disk.
    pub fn flush(&self) -> Result<()> {
        self.store.flush().map_err(Error::Store)
    }

    /// Answer without streaming; the exchange is recorded either way.
    pub async fn complete(&self, exchange: &Exchange, req: &ChatRequest) -> Result<ChatResponse> {
        let route = match self.resolve(&req.model) {
            Ok(route) => route,
            Err(err) => {
                self.record_failure(exchange, req, None, &err);
                return Err(err);
            }
        };
        match route.provider.complete(req, &route.upstream_model).await {
            Ok(resp) => {
                let record = self.record(exchange, req, Some(&route), Outcome::Ok, 200, None);
                self.store.record(RequestRecord {
                    usage: resp.usage,
                    usage_exact: true,
                    ..record
                });
                Ok(resp)
            }
            Err(err) => {
                let err = Error::Provider(err);
                self.record_failure(exchange, req, Some(&route), &err);
                Err(err)
            }
        }
    }

    /// Answer as a metered stream; the record is written when the stream ends, fails or is dropped.
    pub async fn stream(&self, exchange: &Exchange, req: &ChatRequest) -> Result<MeteredStream> {
        let route = match self.resolve(&req.model) {
            Ok(route) => route,
            Err(err) => {
                self.record_failure(exchange, req, None, &err);
                return Err(err);
            }
        };
        match route.provider.stream(req, &route.upstream_model).await {
            Ok(events) => {
                let record =
                    self.record(exchange, req, Some(&route), Outcome::Cancelled, 200, None);
                Ok(MeteredStream::new(
                    events,
                    record,
                    exchange.started,
                    Arc::clone(&self.store),
                ))
            }
            Err(err) => {
                let err = Error::Provider(err);
                self.record_failure(exchange, req, Some(&route), &err);
                Err(err)
            }
        }
    }

    /// Record an exchange refused before it reached the pipeline (malformed body, too large, ...).
    pub fn record_rejected(
        &self,
        exchange: &Exchange,
        model: &str,
        kind: ErrorKind,
        message: &str,
    ) {
        let req = ChatRequest::new(model, Vec::new());
        let record = self.record(
            exchange,
            &req,
            None,
            Outcome::Error,
            kind.http_status(),
            Some(message.to_owned()),
        );
        self.store.record(record);
    }

    fn record_failure(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        route: Option<&Route>,
        err: &Error,
    ) {
        let record = self.record(
            exchange,
            req,
            route,
            Outcome::Error,
            err.kind().http_status(),
            Some(err.to_string()),
        );
        self.store.record(record);
    }

    fn record(
        &self,
        exchange: &Exchange,
        req: &ChatRequest,
        route: Option<&Route>,
        outcome: Outcome,
        status: u16,
        error: Option<String>,
    ) -> RequestRecord {
        RequestRecord {
            id: exchange.id.clone(),
            started_at_ms: exchange.started_at_ms,
            api: exchange.api.as_str().to_owned(),
            client_model: req.model.clone(),
            provider: route
                .map(|r| r.provider.name().to_owned())
                .unwrap_or_default(),
            upstream_model: route.map(|r| r.upstream_model.clone()).unwrap_or_default(),
            stream: req.stream,
            status,
            outcome,
            error,
            usage: Usage::default(),
            usage_exact: false,
            latency_ms: elapsed_ms(exchange.started),
            ttft_ms: None,
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
