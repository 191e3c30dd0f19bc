//! The governed pipeline: route the request to a tier and target, call it with fallbacks, meter the answer,
//! record the exchange.
//!
//! Both the gateway and (later) the agent go through [`Core`], so every exchange, whatever its client API,
//! ends as exactly one [`RequestRecord`]: answered, failed, rejected before routing, or cut off by the client.
//! Architecture invariant: no HTTP server types here; the gateway owns the wire, this crate owns the flow.

mod audit;
mod breaker;
mod budgets;
mod dlp;
mod error;
mod meter;
pub mod metrics;
mod pipeline;
mod reasoning;
mod recorder;
mod route;
mod session;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use audit::PolicyCheck;
pub use breaker::BreakerConfig;
pub use budgets::SharedCounters;
pub use dlp::DlpConfig;
pub use error::{Error, Result};
pub use meter::MeteredStream;
pub use pipeline::{Alias, Core, CoreConfig, Hints, Pace, finish_reason, int, record_event};
pub use route::{Attempt, RouteInfo, TargetConfig, TierConfig};
pub use session::SessionState;

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
    /// Who is asking, once authenticated.
    pub principal: Option<tandem_policy::Principal>,
    /// The client software (`User-Agent`).
    pub client: Option<String>,
    /// Keyed hash of the request body as received ([`Core::content_hash`]).
    pub prompt_hash: Option<String>,
    /// The request body, kept only when the audit ledger captures content ([`Core::captures`]);
    /// it is DLP-redacted before it is stored.
    pub prompt_text: Option<String>,
}

impl Exchange {
    /// Start an exchange now.
    pub fn start(id: String, api: Api) -> Self {
        let started_at_ms = now_ms();
        Exchange {
            id,
            api,
            started: Instant::now(),
            started_at_ms,
            principal: None,
            client: None,
            prompt_hash: None,
            prompt_text: None,
        }
    }

    /// Unix seconds at arrival.
    pub fn created(&self) -> u64 {
        u64::try_from(self.started_at_ms / 1000).unwrap_or(0)
    }
}

/// Unix milliseconds now: the one clock read for records, budgets and key expiry.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
