//! Tandem's embedded state store: one SQLite database (WAL mode) under the state directory.
//!
//! Request records are sent over a bounded channel to one writer thread that inserts them in batches,
//! so the request path never waits on the disk. [`Store::flush`] waits until everything sent so far is written.
//! Architecture invariant: this crate knows SQL and files, nothing about HTTP or providers.

mod error;
mod governance;
mod sqlite;

pub use error::{Error, Result};
pub use governance::{BudgetRow, KeyRow};
pub use sqlite::Store;
use tandem_protocol::Usage;

/// How an exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered in full.
    Ok,
    /// Failed; the client got an error.
    Error,
    /// The client went away before the answer was complete.
    Cancelled,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "ok" => Outcome::Ok,
            "cancelled" => Outcome::Cancelled,
            _ => Outcome::Error,
        }
    }
}

/// One client exchange as the gateway saw it. Holds no prompt or answer text.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// Tandem's request id.
    pub id: String,
    /// Unix milliseconds at which the request arrived.
    pub started_at_ms: i64,
    /// Client API: `chat`, `responses` or `messages`.
    pub api: String,
    /// The model name the client asked for.
    pub client_model: String,
    /// The provider that served it (empty when none was chosen).
    pub provider: String,
    /// The upstream model name.
    pub upstream_model: String,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// HTTP status sent to the client.
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// Error message for failed exchanges.
    pub error: Option<String>,
    /// Token counts.
    pub usage: Usage,
    /// Whether `usage` is the upstream's own count (false when a stream was cut before the upstream reported it).
    pub usage_exact: bool,
    /// Time from arrival to the end of the answer.
    pub latency_ms: u64,
    /// Time from arrival to the first streamed token.
    pub ttft_ms: Option<u64>,
    /// The tier the request went to, if any.
    pub tier: Option<String>,
    /// The routing record as JSON: tier, target, reason, rule, score, every attempt.
    pub route: Option<String>,
    /// Data loss prevention findings as JSON (direction, rule, class, action, fingerprint; never the
    /// value), when there were any.
    pub dlp: Option<String>,
    /// What the exchange cost in US dollars at the configured prices (0 when the model has no price).
    pub cost: f64,
}
